/*
 * fuzz_http_request: the request and response head parsers, and route_match() on
 * every target the request parser accepts.
 *
 * Invariants: consumed <= len; every slice lies inside the head; a status for every
 * rejection; a head that parses from a prefix parses to the same length from the
 * whole input, and a rejected prefix stays rejected; feeding the input in growing
 * pieces with one state gives the same answer as one call; route results are sane.
 */
#include "fuzz.h"
#include "http.h"
#include "route.h"

#include "route_diff.h"

static void check_req(const char *p, size_t n, ssize_t r, const struct http_req *req)
{
	size_t i;

	FUZZ_CHECK(r == HTTP_INCOMPLETE || r == HTTP_BAD || (r > 0 && (size_t)r <= n));
	if (r == HTTP_BAD) {
		FUZZ_CHECK(req->r_status == 400 || req->r_status == 414 || req->r_status == 417 ||
			   req->r_status == 431 || req->r_status == 501 || req->r_status == 505);
		FUZZ_CHECK(req->r_error != NULL);
	}
	if (r <= 0)
		return;
	FUZZ_CHECK(fuzz_inside(req->r_method_str.p, req->r_method_str.n, p, (size_t)r));
	FUZZ_CHECK(req->r_method_str.n > 0);
	FUZZ_CHECK(fuzz_inside(req->r_target.p, req->r_target.n, p, (size_t)r));
	FUZZ_CHECK(req->r_target.n > 0 && req->r_target.p[0] == '/');
	FUZZ_CHECK(fuzz_inside(req->r_path.p, req->r_path.n, req->r_target.p, req->r_target.n));
	FUZZ_CHECK(fuzz_inside(req->r_query.p, req->r_query.n, req->r_target.p, req->r_target.n));
	FUZZ_CHECK(req->r_host.n == 0 || fuzz_inside(req->r_host.p, req->r_host.n, p, (size_t)r));
	FUZZ_CHECK(req->r_nhdrs <= CAP);
	FUZZ_CHECK(req->r_minor == 0 || req->r_minor == 1);
	FUZZ_CHECK(req->r_framing == HTTP_BODY_NONE || req->r_framing == HTTP_BODY_LENGTH ||
		   req->r_framing == HTTP_BODY_CHUNKED);
	for (i = 0; i < req->r_nhdrs; i++) {
		const struct http_header *h = &req->r_hdrs[i];
		size_t k;

		FUZZ_CHECK(h->h_name.n > 0 && fuzz_inside(h->h_name.p, h->h_name.n, p, (size_t)r));
		FUZZ_CHECK(fuzz_inside(h->h_value.p, h->h_value.n, p, (size_t)r));
		for (k = 0; k < h->h_value.n; k++) {
			unsigned char c = (unsigned char)h->h_value.p[k];

			/* nothing that could split a header when forwarded */
			FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0');
		}
		(void)http_header_is_hop(req->r_hdrs, req->r_nhdrs, h);
	}
	for (i = 0; i < req->r_target.n; i++) {
		unsigned char c = (unsigned char)req->r_target.p[i];

		FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '#');
	}
	{
		struct route rt;
		int rc = route_match(req->r_method, req->r_target.p, req->r_target.n, &rt);

		check_route_differential(req->r_method, req->r_target.p, req->r_target.n, &rt, rc);

		if (rc == 0) {
			FUZZ_CHECK(rt.rt_kind != ROUTE_NONE && rt.rt_status == 0);
			FUZZ_CHECK(rt.rt_model_len < sizeof(rt.rt_model));
			FUZZ_CHECK(strlen(rt.rt_model) == rt.rt_model_len);
			FUZZ_CHECK(!strchr(rt.rt_model, '/'));
			FUZZ_CHECK(rt.rt_kind == ROUTE_METRICS || rt.rt_model_len > 0);
			FUZZ_CHECK(strcmp(rt.rt_model, ".") != 0 && strcmp(rt.rt_model, "..") != 0);
			for (i = 0; i < rt.rt_model_len; i++)
				FUZZ_CHECK((unsigned char)rt.rt_model[i] >= 0x20 &&
					   rt.rt_model[i] != 0x7f);
		} else {
			FUZZ_CHECK(rc == -1 && rt.rt_kind == ROUTE_NONE);
			FUZZ_CHECK(rt.rt_status == 400 || rt.rt_status == 404 ||
				   rt.rt_status == 405 || rt.rt_status == 501);
		}
	}
}

static ssize_t parse_req(const char *p, size_t n, struct http_req *req, struct http_header *h)
{
	/* small limits so that the limit paths are reachable */
	http_req_init(req, h, CAP, 2048, 512);
	return http_parse_request(p, n, req);
}

static void fuzz_request(const char *p, size_t n)
{
	struct http_header h[CAP], h2[CAP];
	struct http_req req, req2;
	ssize_t r, r2;
	size_t k, step;

	r = parse_req(p, n, &req, h);
	check_req(p, n, r, &req);

	/* prefixes: success is stable, rejection is stable */
	for (k = 0; k < n; k += k < 64 ? 1 : 61) {
		r2 = parse_req(p, k, &req2, h2);
		check_req(p, k, r2, &req2);
		if (r2 > 0)
			FUZZ_CHECK(r == r2);
		if (r2 == HTTP_BAD)
			FUZZ_CHECK(r == HTTP_BAD && req.r_status == req2.r_status);
	}
	if (r > 0) {
		r2 = parse_req(p, (size_t)r, &req2, h2);
		FUZZ_CHECK(r2 == r);
	}

	/* incremental: one state, growing length */
	step = n > 0 ? 1 + (unsigned char)p[0] % 7 : 1;
	http_req_init(&req2, h2, CAP, 2048, 512);
	r2 = HTTP_INCOMPLETE;
	for (k = 0; k <= n && r2 == HTTP_INCOMPLETE;
	     k = k == n ? n + 1 : (k + step > n ? n : k + step))
		r2 = http_parse_request(p, k, &req2);
	FUZZ_CHECK(r2 == r);
	if (r == HTTP_BAD)
		FUZZ_CHECK(req.r_status == req2.r_status);
	if (r > 0)
		FUZZ_CHECK(req.r_nhdrs == req2.r_nhdrs && req.r_framing == req2.r_framing &&
			   req.r_content_length == req2.r_content_length);
}

static void fuzz_response(const char *p, size_t n)
{
	struct http_header h[CAP];
	struct http_resp resp;
	enum http_method m = n && (p[n - 1] & 1) ? HTTP_M_HEAD : HTTP_M_GET;
	ssize_t r, r2;
	size_t i, k;

	http_resp_init(&resp, h, CAP, 2048);
	r = http_parse_response(p, n, m, &resp);
	FUZZ_CHECK(r == HTTP_INCOMPLETE || r == HTTP_BAD || (r > 0 && (size_t)r <= n));
	if (r == HTTP_BAD)
		FUZZ_CHECK(resp.s_status_err == 502 && resp.s_error);
	if (r > 0) {
		FUZZ_CHECK(resp.s_status >= 100 && resp.s_status <= 599 && resp.s_status != 101);
		FUZZ_CHECK(resp.s_nhdrs <= CAP);
		FUZZ_CHECK(fuzz_inside(resp.s_reason.p, resp.s_reason.n, p, (size_t)r));
		for (i = 0; i < resp.s_nhdrs; i++)
			FUZZ_CHECK(fuzz_inside(h[i].h_value.p, h[i].h_value.n, p, (size_t)r));
		if (m == HTTP_M_HEAD || resp.s_status < 200 || resp.s_status == 204 ||
		    resp.s_status == 304)
			FUZZ_CHECK(resp.s_framing == HTTP_BODY_NONE);
		if (resp.s_framing == HTTP_BODY_CLOSE)
			FUZZ_CHECK(!resp.s_keepalive);
	}
	for (k = 0; k < n; k += k < 64 ? 1 : 61) {
		struct http_resp r2s;
		struct http_header h2[CAP];

		http_resp_init(&r2s, h2, CAP, 2048);
		r2 = http_parse_response(p, k, m, &r2s);
		if (r2 > 0)
			FUZZ_CHECK(r2 == r);
		if (r2 == HTTP_BAD)
			FUZZ_CHECK(r == HTTP_BAD);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_dup(data, size);

	fuzz_request(p, size);
	fuzz_response(p, size);
	free(p);
	return 0;
}
