/*
 * route: which TF Serving REST call a request target is, and may this user make it.
 *
 * route_match() mirrors how tensorflow_model_server dispatches (model_servers/
 * http_rest_api_util.cc, HEAD 9d981c5): it RE2::FullMatch()es the *raw* path plus
 * "?query" against
 *   POST (?i)/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)
 *   GET  (?i)/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?
 * and only then percent-decodes the model name with curl_easy_unescape(). So the whole
 * pattern is case-insensitive ("/V1/MODELS/x/VERSIONS/1:PREDICT" reaches model "x"), a
 * query string becomes part of the last segment ("/v1/models/m?a=b" is model "m?a=b"),
 * and "%41" in a model name is "A". route_match() computes the model name exactly the
 * same way, from the exact bytes the proxy forwards (the caller must forward r_target
 * unmodified), so the ACL sees the name TF Serving will use. On top of that it refuses
 * (400) what TF Serving would turn into surprising names: encoded '/', '%00' or other
 * control bytes after decoding, malformed escapes ("%zz", "%4"), "." / ".." names and
 * names longer than CONF_MODEL_MAX - 1. Raw bytes >= 0x80 never reach it (the HTTP
 * parser rejects them), which also rules out RE2's Unicode case folding ("ſ" ~ "s").
 * The metrics path is matched byte-exact, without a query. Everything else → 404, a
 * known path with the wrong method → 405 (GET for the status/metadata paths and the
 * metrics path, POST for the three verbs).
 *
 * ACL (route_acl_allows): the [acl] section of the config maps a user to the model
 * names it may call, compared byte-exact with the decoded name (TF Serving model names
 * are case-sensitive). "*" grants every model. The metrics path is granted only by the
 * pseudo-model "@metrics" ("*" does not include it). A user without an [acl] line is
 * denied everything, unless the config has no [acl] entries at all: then every
 * authenticated user may call every model, and nobody may read the metrics.
 *
 * Pure functions: reentrant. struct route owns its decoded name (no pointers into the
 * request besides rt_version_str/rt_label, which point into the target given).
 */
#ifndef TFG_ROUTE_H
#define TFG_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "http.h"

enum route_kind {
	ROUTE_NONE = 0,	      /* no TF Serving API path: rt_status is 404 / 405 / 400 */
	ROUTE_MODEL_STATUS,   /* GET /v1/models/{m}[/versions/{v}|/labels/{l}] */
	ROUTE_MODEL_METADATA, /* GET ... /metadata */
	ROUTE_PREDICT,	      /* POST ...:predict */
	ROUTE_CLASSIFY,	      /* POST ...:classify */
	ROUTE_REGRESS,	      /* POST ...:regress */
	ROUTE_METRICS,	      /* GET /monitoring/prometheus/metrics */
};

/* The pseudo-model that grants the metrics path in an [acl] list. */
#define ROUTE_ACL_METRICS "@metrics"

struct route {
	enum route_kind rt_kind;
	int rt_status;		       /* 0 when rt_kind != ROUTE_NONE; else 400, 404, 405 or 501 */
	const char *rt_error;	       /* static reason for the log when rt_status != 0 */
	char rt_model[CONF_MODEL_MAX]; /* decoded, NUL-terminated; "" for ROUTE_METRICS */
	size_t rt_model_len;
	bool rt_has_version;
	uint64_t rt_version;	  /* valid if rt_has_version (fits in int64, like TF's) */
	struct http_str rt_label; /* raw (still encoded) label, empty if none */
};

/*
 * Classifies method + target (origin-form, as parsed by http_parse_request: path and
 * query together). Returns 0 and fills rt for an API call, or -1 with rt->rt_status /
 * rt_error set (400: bad escape or forbidden name; 404: not an API path; 405: wrong
 * method for a known path; 501: unknown method). Never reads beyond target[n).
 */
int route_match(enum http_method method, const char *target, size_t n, struct route *rt);

/* The kind as a short lowercase word for logs ("predict", "metadata", ...). Static. */
const char *route_kind_name(enum route_kind k);

/*
 * True if user (NUL-terminated, already authenticated) may make the call rt describes
 * under c's [acl] rules, as documented above. rt must come from a successful
 * route_match(). Reads c only; safe to call from many threads on one read-only c.
 */
bool route_acl_allows(const struct conf *c, const char *user, const struct route *rt);

#endif
