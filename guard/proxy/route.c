/*
 * route: TF Serving REST path classification and the per-user model ACL (see route.h).
 *
 * The two RE2 patterns are matched by hand. Both are anchored (FullMatch), so every
 * "[^/:]+" group is followed by '/', ':' or the end: backtracking to a shorter capture
 * can never make them match, so each group takes the longest run. The one exception is
 * the optional model group of the status pattern: "/v1/models/versions/1" matches with
 * the group skipped and an empty model, which TF Serving answers with "Missing model
 * name" (400) without touching any model; we answer 404 for it.
 */
#include <string.h>

#include "route.h"

#define ROUTE_METRICS_PATH "/monitoring/prometheus/metrics"

static unsigned char route_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* Does t[*i..n) start with lit, ASCII case-insensitively? Advances *i if so. */
static bool route_ilit(const char *t, size_t n, size_t *i, const char *lit)
{
	size_t k = strlen(lit), j;

	if (n - *i < k)
		return false;
	for (j = 0; j < k; j++)
		if (route_lower((unsigned char)t[*i + j]) != (unsigned char)lit[j])
			return false;
	*i += k;
	return true;
}

/* Length of the longest run of t[i..n) without '/' or ':' (RE2 [^/:]+). */
static size_t route_segment(const char *t, size_t n, size_t i)
{
	size_t j = i;

	while (j < n && t[j] != '/' && t[j] != ':')
		j++;
	return j - i;
}

static int route_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int route_fail(struct route *rt, int status, const char *error)
{
	rt->rt_kind = ROUTE_NONE;
	rt->rt_status = status;
	rt->rt_error = error;
	return -1;
}

/*
 * Percent-decodes the model name like curl_easy_unescape() (what TF Serving uses),
 * but refuses what curl would pass through or produce silently. Returns 0 or -1.
 */
static int route_decode_model(const char *s, size_t n, struct route *rt)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			/* curl leaves "%zz" and a trailing "%4" as they are; we refuse them */
			if (i + 2 >= n)
				return route_fail(rt, 400, "bad percent-escape in model name");
			hi = route_hexval((unsigned char)s[i + 1]);
			lo = route_hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return route_fail(rt, 400, "bad percent-escape in model name");
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			/* "%2F" would give TF Serving a model name with a slash in it */
			if (c == '/')
				return route_fail(rt, 400, "encoded slash in model name");
		}
		if (c < 0x20 || c == 0x7f)
			return route_fail(rt, 400, "control byte in model name");
		if (o + 1 >= sizeof(rt->rt_model))
			return route_fail(rt, 400, "model name too long");
		rt->rt_model[o++] = (char)c;
	}
	rt->rt_model[o] = '\0';
	rt->rt_model_len = o;
	if (o == 0)
		return route_fail(rt, 404, "missing model name");
	if ((o == 1 && rt->rt_model[0] == '.') || (o == 2 && memcmp(rt->rt_model, "..", 2) == 0))
		return route_fail(rt, 400, "dot-segment as model name");
	return 0;
}

/* RE2 \d+ and absl::SimpleAtoi into int64. Returns digits consumed (0: none). */
static size_t route_version(const char *t, size_t n, size_t i, struct route *rt, bool *overflow)
{
	size_t j = i;
	uint64_t v = 0;

	*overflow = false;
	while (j < n && t[j] >= '0' && t[j] <= '9') {
		if (v > ((uint64_t)INT64_MAX - (uint64_t)(t[j] - '0')) / 10)
			*overflow = true;
		else
			v = v * 10 + (uint64_t)(t[j] - '0');
		j++;
	}
	rt->rt_version = v;
	return j - i;
}

/*
 * The optional "(?:/versions/(\d+)|/labels/([^/:]+))" group at t[*i]. Returns 1 if
 * it matched (and advanced *i), 0 if it did not, -1 on an unconvertible version.
 */
static int route_version_or_label(const char *t, size_t n, size_t *i, struct route *rt)
{
	size_t j = *i, k;
	bool overflow;

	if (route_ilit(t, n, &j, "/versions/")) {
		k = route_version(t, n, j, rt, &overflow);
		if (k == 0)
			return 0;
		/* TF Serving: "Failed to convert version" (400) */
		if (overflow) {
			route_fail(rt, 400, "version out of range");
			return -1;
		}
		rt->rt_has_version = true;
		*i = j + k;
		return 1;
	}
	j = *i;
	if (route_ilit(t, n, &j, "/labels/")) {
		k = route_segment(t, n, j);
		if (k == 0)
			return 0;
		rt->rt_label = (struct http_str){ t + j, k };
		*i = j + k;
		return 1;
	}
	return 0;
}

/*
 * (?i)/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)
 * Returns the kind (0 if no match, -1 on a bad version) and the raw model's
 * offset and length in *mb / *mlen.
 */
static int route_match_predict(const char *t, size_t n, struct route *rt, size_t *mb, size_t *mlen)
{
	size_t i = 0;
	int vl;

	if (!route_ilit(t, n, &i, "/v1/models/"))
		return 0;
	*mb = i;
	*mlen = route_segment(t, n, i);
	if (*mlen == 0)
		return 0;
	i += *mlen;
	vl = route_version_or_label(t, n, &i, rt);
	if (vl < 0)
		return -1;
	if (i >= n || t[i] != ':')
		return 0;
	i++;
	/* the verb is case-insensitive too: the (?i) covers the whole pattern */
	{
		size_t j = i;

		if (route_ilit(t, n, &j, "predict") && j == n)
			return ROUTE_PREDICT;
		j = i;
		if (route_ilit(t, n, &j, "classify") && j == n)
			return ROUTE_CLASSIFY;
		j = i;
		if (route_ilit(t, n, &j, "regress") && j == n)
			return ROUTE_REGRESS;
	}
	return 0;
}

/*
 * (?i)/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?
 * with the model group taken (see the top of the file).
 */
static int route_match_status(const char *t, size_t n, struct route *rt, size_t *mb, size_t *mlen)
{
	size_t i = 0, j;
	int vl;

	if (!route_ilit(t, n, &i, "/v1/models/"))
		return 0;
	*mb = i;
	*mlen = route_segment(t, n, i);
	if (*mlen == 0)
		return 0;
	i += *mlen;
	if (i == n)
		return ROUTE_MODEL_STATUS;
	vl = route_version_or_label(t, n, &i, rt);
	if (vl < 0)
		return -1;
	if (i == n)
		return ROUTE_MODEL_STATUS;
	j = i;
	if (route_ilit(t, n, &j, "/metadata") && j == n)
		return ROUTE_MODEL_METADATA;
	return 0;
}

int route_match(enum http_method method, const char *target, size_t n, struct route *rt)
{
	struct route scratch;
	size_t mb = 0, mlen = 0;
	int kind;

	memset(rt, 0, sizeof(*rt));
	rt->rt_label = (struct http_str){ target, 0 };
	if (n == strlen(ROUTE_METRICS_PATH) && memcmp(target, ROUTE_METRICS_PATH, n) == 0) {
		if (method == HTTP_M_GET) {
			rt->rt_kind = ROUTE_METRICS;
			return 0;
		}
		return route_fail(rt, method == HTTP_M_OTHER ? 501 : 405, "method not allowed");
	}
	if (method == HTTP_M_POST)
		kind = route_match_predict(target, n, rt, &mb, &mlen);
	else if (method == HTTP_M_GET)
		kind = route_match_status(target, n, rt, &mb, &mlen);
	else
		kind = 0;
	if (kind < 0)
		return -1;
	if (kind == 0) {
		/* a known path with another method is 405; the scratch result is dropped */
		size_t b, l;

		if (route_match_predict(target, n, &scratch, &b, &l) > 0 ||
		    route_match_status(target, n, &scratch, &b, &l) > 0)
			return route_fail(rt, method == HTTP_M_OTHER ? 501 : 405,
					  "method not allowed");
		memset(rt, 0, sizeof(*rt));
		return route_fail(rt, 404, "not a TF Serving API path");
	}
	if (route_decode_model(target + mb, mlen, rt) < 0)
		return -1;
	rt->rt_kind = (enum route_kind)kind;
	rt->rt_status = 0;
	rt->rt_error = NULL;
	return 0;
}

const char *route_kind_name(enum route_kind k)
{
	switch (k) {
	case ROUTE_MODEL_STATUS:
		return "status";
	case ROUTE_MODEL_METADATA:
		return "metadata";
	case ROUTE_PREDICT:
		return "predict";
	case ROUTE_CLASSIFY:
		return "classify";
	case ROUTE_REGRESS:
		return "regress";
	case ROUTE_METRICS:
		return "metrics";
	case ROUTE_NONE:
		break;
	}
	return "none";
}

bool route_acl_allows(const struct conf *c, const char *user, const struct route *rt)
{
	const struct conf_acl *acl;
	size_t i;

	if (rt->rt_kind == ROUTE_NONE)
		return false;
	if (c->c_nacl == 0)
		return rt->rt_kind != ROUTE_METRICS;
	acl = conf_acl_find(c, user);
	if (!acl)
		return false;
	if (rt->rt_kind == ROUTE_METRICS) {
		for (i = 0; i < acl->acl_nmodels; i++)
			if (strcmp(acl->acl_models[i], ROUTE_ACL_METRICS) == 0)
				return true;
		return false;
	}
	if (acl->acl_all)
		return true;
	for (i = 0; i < acl->acl_nmodels; i++) {
		const char *m = acl->acl_models[i];

		/* "@..." entries are grants of pseudo-paths, never model names */
		if (m[0] == '@')
			continue;
		if (strcmp(m, "*") == 0)
			return true;
		if (strlen(m) == rt->rt_model_len && memcmp(m, rt->rt_model, rt->rt_model_len) == 0)
			return true;
	}
	return false;
}
