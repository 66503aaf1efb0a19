/*
 * fuzz_route: route_match() on raw targets, checked against TF Serving's regexes.
 *
 * The first byte picks the method, the rest is the target. Any bytes are fed to
 * route_match() (it must not crash or over-read on them); the differential check runs
 * on targets the HTTP parser would let through (RFC 3986 bytes, valid escapes), since
 * only those ever reach it in the proxy.
 */
#include "route_diff.h"

static int parser_would_pass(const char *t, size_t n)
{
	size_t i;

	if (n == 0 || t[0] != '/')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr("-._~!$&'()*+,;=:@/?%", c))))
			return 0;
		if (c == '%' && (i + 2 >= n || hexv(t[i + 1]) < 0 || hexv(t[i + 2]) < 0))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum http_method methods[] = { HTTP_M_GET, HTTP_M_POST, HTTP_M_HEAD,
						    HTTP_M_OTHER };
	enum http_method m;
	struct route rt;
	char *t;
	size_t n;
	int rc;

	if (size == 0)
		return 0;
	m = methods[data[0] & 3];
	n = size - 1;
	t = fuzz_dup(data + 1, n);
	rc = route_match(m, t, n, &rt);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		FUZZ_CHECK(rt.rt_kind != ROUTE_NONE && rt.rt_status == 0);
		FUZZ_CHECK(rt.rt_model_len < sizeof(rt.rt_model) &&
			   strlen(rt.rt_model) == rt.rt_model_len);
		FUZZ_CHECK(!strchr(rt.rt_model, '/'));
		FUZZ_CHECK(fuzz_inside(rt.rt_label.p, rt.rt_label.n, t, n));
	} else {
		FUZZ_CHECK(rt.rt_kind == ROUTE_NONE && rt.rt_status != 0 && rt.rt_error);
	}
	if (parser_would_pass(t, n))
		check_route_differential(m, t, n, &rt, rc);
	free(t);
	return 0;
}
