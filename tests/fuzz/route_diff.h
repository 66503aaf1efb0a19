/*
 * route_diff.h: differential check of route_match() against TF Serving's own regular
 * expressions, shared by fuzz_http_request.c and fuzz_route.c.
 */
#ifndef TFG_ROUTE_DIFF_H
#define TFG_ROUTE_DIFF_H

#include <regex.h>

#include "fuzz.h"
#include "route.h"

/*
 * TF Serving's RE2 patterns (http_rest_api_util.cc) in POSIX ERE form, anchored,
 * case-insensitive. For these patterns POSIX leftmost-longest and RE2 leftmost-first
 * pick the same model capture: the model group ends at '/', ':' or the end, so it is
 * either the longest run or skipped (empty).
 */
static const char route_predict_ere[] =
    "^/v1/models/([^/:]+)((/versions/([0-9]+))|(/labels/([^/:]+)))?:(classify|regress|predict)$";
static const char route_status_ere[] =
    "^/v1/models(/([^/:]+))?((/versions/([0-9]+))|(/labels/([^/:]+)))?(/(metadata))?$";
static regex_t route_predict_re, route_status_re;
static int route_re_ready;

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Differential check of route_match() against the regexes: whenever TF Serving would
 * dispatch to a model, we either refuse (400) or name the same decoded model; when it
 * would not, we do not accept.
 */
static void check_route_differential(enum http_method m, const char *t, size_t n,
				     const struct route *rt, int rc)
{
	regmatch_t mt[10];
	char *z, want[CONF_MODEL_MAX + 4];
	const regex_t *re;
	size_t i, o = 0;
	int mg, bad = 0;

	if (m != HTTP_M_GET && m != HTTP_M_POST)
		return;
	if (!route_re_ready) {
		if (regcomp(&route_predict_re, route_predict_ere, REG_EXTENDED | REG_ICASE) ||
		    regcomp(&route_status_re, route_status_ere, REG_EXTENDED | REG_ICASE))
			abort();
		route_re_ready = 1;
	}
	re = m == HTTP_M_POST ? &route_predict_re : &route_status_re;
	mg = m == HTTP_M_POST ? 1 : 2;
	z = calloc(1, n + 1);
	if (!z)
		abort();
	memcpy(z, t, n);
	if (n == 30 && memcmp(t, "/monitoring/prometheus/metrics", 30) == 0) {
		free(z);
		return;
	}
	if (regexec(re, z, 10, mt, 0) != 0 || mt[mg].rm_so < 0 || mt[mg].rm_eo == mt[mg].rm_so) {
		/* TF Serving would not reach a model: neither may we */
		FUZZ_CHECK(rc == -1);
		free(z);
		return;
	}
	for (i = (size_t)mt[mg].rm_so; i < (size_t)mt[mg].rm_eo; i++) {
		int c = (unsigned char)z[i];

		if (c == '%' && i + 2 < (size_t)mt[mg].rm_eo && hexv(z[i + 1]) >= 0 &&
		    hexv(z[i + 2]) >= 0) {
			c = hexv(z[i + 1]) << 4 | hexv(z[i + 2]);
			i += 2;
		} else if (c == '%') {
			bad = 1; /* curl keeps it; we refuse */
		}
		if (c == '/' || c < 0x20 || c == 0x7f || o >= CONF_MODEL_MAX - 1)
			bad = 1;
		if (o < sizeof(want) - 1)
			want[o++] = (char)c;
	}
	want[o] = '\0';
	if (strcmp(want, ".") == 0 || strcmp(want, "..") == 0)
		bad = 1;
	if (rc == -1) {
		/* refusing is fine only for a name we do not pass, or a version overflow */
		FUZZ_CHECK(rt->rt_status == 400);
	} else {
		FUZZ_CHECK(!bad);
		FUZZ_CHECK(rt->rt_model_len == o && memcmp(rt->rt_model, want, o) == 0);
		FUZZ_CHECK(m == HTTP_M_POST
			       ? (rt->rt_kind == ROUTE_PREDICT || rt->rt_kind == ROUTE_CLASSIFY ||
				  rt->rt_kind == ROUTE_REGRESS)
			       : (rt->rt_kind == ROUTE_MODEL_STATUS ||
				  rt->rt_kind == ROUTE_MODEL_METADATA));
	}
	free(z);
}

#define CAP 16

#endif
