/*
 * Unit tests for guard/proxy/http.c. Every input is placed so that it ends exactly
 * at a PROT_NONE page: reading one byte too far crashes, with or without ASan.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http.h"
#include "tap.h"

#define ARENA (256u << 10)

static char *arena;
static size_t pagesz;

static void guard_init(void)
{
	pagesz = (size_t)sysconf(_SC_PAGESIZE);
	arena =
	    mmap(NULL, ARENA + pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || mprotect(arena + ARENA, pagesz, PROT_NONE) != 0)
		abort();
}

/* Copies s[0..n) so that its last byte is the last readable byte before the guard. */
static const char *guard(const char *s, size_t n)
{
	char *p = arena + ARENA - n;

	if (n > ARENA)
		abort();
	memcpy(p, s, n);
	return p;
}

static struct http_header hdrs[HTTP_MAX_HEADERS];

static ssize_t req_parse(const char *s, struct http_req *req)
{
	size_t n = strlen(s);

	http_req_init(req, hdrs, HTTP_MAX_HEADERS, 0, 0);
	return http_parse_request(guard(s, n), n, req);
}

/* Expects s to be rejected with status. */
static void req_bad(const char *s, int status, const char *name)
{
	struct http_req req;
	ssize_t r = req_parse(s, &req);

	if (!ok(r == HTTP_BAD && req.r_status == status, name))
		printf("#   r=%zd status=%d error=%s\n", r, req.r_status,
		       req.r_error ? req.r_error : "");
}

static bool str_is(struct http_str s, const char *want)
{
	return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

static void test_request_basic(void)
{
	static const char r1[] = "GET /v1/models/m?x=1 HTTP/1.1\r\n"
				 "Host: example.com:8443\r\n"
				 "User-Agent: curl/8\r\n"
				 "X-Empty:\r\n"
				 "Accept:   */*  \r\n"
				 "\r\n";
	struct http_req req;
	ssize_t r;

	subtest("requests that parse");
	r = req_parse(r1, &req);
	is_int(r, (ssize_t)strlen(r1), "simple GET: whole head consumed");
	is_int(req.r_method, HTTP_M_GET, "method GET");
	ok(str_is(req.r_target, "/v1/models/m?x=1"), "target with query");
	ok(str_is(req.r_path, "/v1/models/m"), "path without query");
	ok(str_is(req.r_query, "x=1"), "query");
	is_int(req.r_minor, 1, "HTTP/1.1");
	ok(str_is(req.r_host, "example.com:8443"), "Host value");
	is_int(req.r_nhdrs, 4, "four headers");
	ok(str_is(req.r_hdrs[2].h_value, ""), "empty header value");
	ok(str_is(req.r_hdrs[3].h_value, "*/*"), "OWS trimmed around value");
	is_int(req.r_framing, HTTP_BODY_NONE, "GET without CL/TE has no body");
	ok(req.r_keepalive, "1.1 defaults to keep-alive");
	ok(!req.r_expect_continue, "no Expect");
	ok(req.r_authorization == NULL, "no Authorization");

	r = req_parse("POST /v1/models/m:predict HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n"
		      "Expect: 100-Continue\r\nConnection: close\r\n\r\n{\"instances\":",
		      &req);
	ok(r > 0 && req.r_framing == HTTP_BODY_LENGTH && req.r_content_length == 12,
	   "POST with Content-Length, body bytes after the head not consumed");
	ok(req.r_expect_continue, "Expect: 100-continue (any case)");
	ok(!req.r_keepalive, "Connection: close");

	r = req_parse("POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n", &req);
	ok(r > 0 && req.r_framing == HTTP_BODY_CHUNKED, "Transfer-Encoding: chunked (any case)");

	r = req_parse("GET / HTTP/1.0\r\n\r\n", &req);
	ok(r > 0 && req.r_minor == 0 && !req.r_keepalive && req.r_host.n == 0,
	   "HTTP/1.0 without Host, closes by default");
	r = req_parse("POST / HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n", &req);
	ok(r > 0 && !req.r_expect_continue, "Expect: 100-continue ignored in HTTP/1.0");
	r = req_parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req);
	ok(r > 0 && req.r_keepalive, "HTTP/1.0 with Connection: keep-alive");
	r = req_parse("GET / HTTP/1.9\r\nHost: h\r\n\r\n", &req);
	ok(r > 0 && req.r_minor == 1, "HTTP/1.9 treated as 1.1 (RFC 9110 §6.2)");
	r = req_parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", &req);
	ok(r == (ssize_t)strlen("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") &&
	       req.r_method == HTTP_M_GET,
	   "empty lines before the request line are skipped");
	r = req_parse("get / HTTP/1.1\r\nHost: h\r\n\r\n", &req);
	ok(r > 0 && req.r_method == HTTP_M_OTHER, "lower-case method is an unknown method");
	r = req_parse("GET / HTTP/1.1\r\nHost: h\r\nX: a\x80\xff b\r\n\r\n", &req);
	ok(r > 0, "obs-text in a header value is allowed");
	r = req_parse("GET / HTTP/1.1\r\nHost: [::1]:8443\r\nAuthorization: Basic eDp5\r\n\r\n",
		      &req);
	ok(r > 0 && req.r_authorization && str_is(req.r_authorization->h_value, "Basic eDp5"),
	   "Authorization found, IPv6 Host");
	r = req_parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &req);
	ok(r > 0, "empty Host value is allowed");
	r = req_parse("GET /a/b;c=d/%7Euser/@x:y!$&'()*+,= HTTP/1.1\r\nHost: h\r\n\r\n", &req);
	ok(r > 0, "every RFC 3986 pchar in the target");
}

static void test_request_incremental(void)
{
	static const char r1[] = "POST /v1/models/m:predict HTTP/1.1\r\n"
				 "Host: h\r\n"
				 "Content-Length: 3\r\n"
				 "\r\n"
				 "abc";
	size_t head = strlen(r1) - 3, n;
	struct http_req req;
	bool all_incomplete = true, fresh_incomplete = true;
	ssize_t r = 0;

	subtest("partial heads");
	http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
	for (n = 0; n < head; n++) {
		r = http_parse_request(guard(r1, n), n, &req);
		if (r != HTTP_INCOMPLETE)
			all_incomplete = false;
		/* the arena moved the bytes: the scan state is relative, so that is fine */
	}
	ok(all_incomplete, "every prefix of the head is incomplete (same state)");
	r = http_parse_request(guard(r1, head), head, &req);
	is_int(r, (ssize_t)head, "complete head after byte-by-byte feeding");
	for (n = 0; n < head; n++) {
		struct http_req fresh;

		http_req_init(&fresh, hdrs, HTTP_MAX_HEADERS, 0, 0);
		if (http_parse_request(guard(r1, n), n, &fresh) != HTTP_INCOMPLETE)
			fresh_incomplete = false;
	}
	ok(fresh_incomplete, "every prefix is incomplete (fresh state)");
	r = req_parse(r1, &req);
	is_int(r, (ssize_t)head, "body bytes are not part of the head");
	{
		const char *g = guard(r1, strlen(r1));

		http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
		r = http_parse_request(g, strlen(r1), &req);
		ok(r == (ssize_t)head && http_parse_request(g, strlen(r1), &req) == r &&
		       req.r_content_length == 3 && req.r_nhdrs == 2,
		   "parsing again after success gives the same head, not the body");
	}
	r = req_parse("GET / HTTP/1.1\r\nHost: h\r\n\r", &req);
	is_int(r, HTTP_INCOMPLETE, "final CR without its LF is incomplete");
	r = req_parse("GET / HTTP/1.1\r", &req);
	is_int(r, HTTP_INCOMPLETE, "request line CR without LF is incomplete");
}

static void test_request_errors(void)
{
	subtest("requests that are refused");
	req_bad(
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	    400, "CL and TE together → 400");
	req_bad(
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	    400, "TE and CL together → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400,
		"duplicate identical Content-Length → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", 400,
		"Content-Length list → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", 400,
		"Content-Length with sign → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400,
		"negative Content-Length → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400,
		"hex Content-Length → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400,
		"empty Content-Length → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n", 400,
		"Content-Length overflow → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", 400,
		"Content-Length over INT64_MAX → 400");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
		"TE gzip, chunked → 501");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501,
		"TE chunked, chunked → 501");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501,
		"TE identity → 501");
	req_bad("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
		"chunked\r\n\r\n",
		400, "two Transfer-Encoding headers → 400");
	req_bad("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
		"TE in HTTP/1.0 → 400");
	req_bad("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400, "obs-fold → 400");
	req_bad("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400,
		"obs-fold with tab → 400");
	req_bad("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400,
		"whitespace before the first header → 400");
	req_bad("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, "bare CR → 400");
	req_bad("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400, "bare LF → 400");
	req_bad("GET / HTTP/1.1\nHost: h\n\n", 400, "LF-only line ends → 400");
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
	{
		struct http_req req;

		http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
		ok(http_parse_request(guard(nul, sizeof(nul) - 1), sizeof(nul) - 1, &req) ==
			   HTTP_BAD &&
		       req.r_status == 400,
		   "NUL in a header value → 400");
	}
	req_bad("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400,
		"control byte in value → 400");
	req_bad("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n", 400, "DEL in value → 400");
	req_bad("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, "header without colon → 400");
	req_bad("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "space before colon → 400");
	req_bad("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400, "tab before colon → 400");
	req_bad("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400, "non-token header name → 400");
	req_bad("GET / HTTP/1.1\r\n: h\r\n\r\n", 400, "empty header name → 400");
	req_bad("GET /\r\n\r\n", 400, "HTTP/0.9 request → 400");
	req_bad("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "HTTP/2.0 → 505");
	req_bad("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505, "HTTP/0.9 version → 505");
	req_bad("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "lower-case version → 400");
	req_bad("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "trailing space after version → 400");
	req_bad("GET / HTTP/11\r\nHost: h\r\n\r\n", 400, "version without dot → 400");
	req_bad("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "two spaces after method → 400");
	req_bad("GET http://h/v1/models/m HTTP/1.1\r\nHost: h\r\n\r\n", 400, "absolute-form → 400");
	req_bad("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 400, "asterisk-form → 400");
	req_bad("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "authority-form → 400");
	req_bad("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "space inside the target → 400");
	req_bad("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400, "fragment in target → 400");
	req_bad("GET /a\"b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "quote in target → 400");
	req_bad("GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n", 400, "backslash in target → 400");
	req_bad("GET /mode\xc5\xbf HTTP/1.1\r\nHost: h\r\n\r\n", 400, "raw UTF-8 in target → 400");
	req_bad("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400, "bad escape in target → 400");
	req_bad("GET /%4 HTTP/1.1\r\nHost: h\r\n\r\n", 400, "truncated escape in target → 400");
	req_bad("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "non-token method → 400");
	req_bad(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "space before method → 400");
	req_bad("GET / HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host → 400");
	req_bad("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Host headers → 400");
	req_bad("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "space in Host → 400");
	req_bad("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "slash in Host → 400");
	req_bad(
	    "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Basic a\r\nAuthorization: Basic b\r\n\r\n",
	    400, "two Authorization headers → 400");
	req_bad("GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417, "unknown Expect → 417");
	req_bad("GET / HTTP/1.1\r\nHost: h\r\nConnection: clo\"se\r\n\r\n", 400,
		"bad Connection token → 400");
}

static void test_request_limits(void)
{
	static char big[80 << 10];
	struct http_req req;
	size_t i, n;
	ssize_t r;

	subtest("limits");
	/* a request line of 9000 bytes, complete or not */
	n = (size_t)snprintf(big, sizeof(big), "GET /");
	memset(big + n, 'a', 9000);
	n += 9000;
	http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
	r = http_parse_request(guard(big, n), n, &req);
	ok(r == HTTP_BAD && req.r_status == 414, "over-long request line, incomplete → 414");
	n += (size_t)snprintf(big + n, sizeof(big) - n, " HTTP/1.1\r\nHost: h\r\n\r\n");
	http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
	r = http_parse_request(guard(big, n), n, &req);
	ok(r == HTTP_BAD && req.r_status == 414, "over-long request line, complete → 414");

	/* a line of exactly the limit is fine */
	n = (size_t)snprintf(big, sizeof(big), "GET /");
	memset(big + n, 'a', HTTP_MAX_LINE_DEFAULT - 5 - 9);
	n += HTTP_MAX_LINE_DEFAULT - 5 - 9;
	n += (size_t)snprintf(big + n, sizeof(big) - n, " HTTP/1.1\r\nHost: h\r\n\r\n");
	http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
	r = http_parse_request(guard(big, n), n, &req);
	ok(r == (ssize_t)n, "request line of exactly the limit → ok");

	/* header block over 32 KiB */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < 40; i++) {
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%zu: ", i);
		memset(big + n, 'v', 1000);
		n += 1000;
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	}
	http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
	r = http_parse_request(guard(big, n), n, &req);
	ok(r == HTTP_BAD && req.r_status == 431, "header block over 32 KiB, incomplete → 431");
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 0, 0);
	r = http_parse_request(guard(big, n), n, &req);
	ok(r == HTTP_BAD && req.r_status == 431, "header block over 32 KiB, complete → 431");
	http_req_init(&req, hdrs, HTTP_MAX_HEADERS, 1024, 0);
	r = http_parse_request(guard(big, 1500), 1500, &req);
	ok(r == HTTP_BAD && req.r_status == 431, "configured 1 KiB head limit → 431");

	/* header count */
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < 10; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%zu: v\r\n", i);
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	http_req_init(&req, hdrs, 11, 0, 0);
	ok(http_parse_request(guard(big, n), n, &req) == (ssize_t)n, "11 headers with room for 11");
	http_req_init(&req, hdrs, 10, 0, 0);
	r = http_parse_request(guard(big, n), n, &req);
	ok(r == HTTP_BAD && req.r_status == 431, "11 headers with room for 10 → 431");
	http_req_init(&req, hdrs, 10, 0, 0);
	r = http_parse_request(guard(big, n - 2), n - 2, &req);
	ok(r == HTTP_BAD && req.r_status == 431, "11 headers with room for 10, incomplete → 431");
}

static void test_headers_hop(void)
{
	static const char r1[] = "GET / HTTP/1.1\r\n"
				 "Host: h\r\n"
				 "Connection: keep-alive, X-Secret , Upgrade\r\n"
				 "X-Secret: 1\r\n"
				 "Upgrade: h2c\r\n"
				 "Keep-Alive: 5\r\n"
				 "X-Forwarded-For: 6.6.6.6\r\n"
				 "X-Real-IP: 6.6.6.6\r\n"
				 "X_Forwarded_User: admin\r\n"
				 "Forwarded: for=6.6.6.6\r\n"
				 "Proxy-Authorization: Basic x\r\n"
				 "TE: trailers\r\n"
				 "Content-Type: application/json\r\n"
				 "\r\n";
	struct http_req req;
	const struct http_header *h;

	subtest("header classes and hop-by-hop");
	ok(req_parse(r1, &req) > 0, "parses");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "x-secret");
	ok(h && http_header_is_hop(req.r_hdrs, req.r_nhdrs, h),
	   "header named in Connection is hop");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "connection");
	ok(h && http_header_is_hop(req.r_hdrs, req.r_nhdrs, h), "Connection itself is hop");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "UPGRADE");
	ok(h && h->h_kind == HTTP_H_HOP, "Upgrade is hop");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "keep-alive");
	ok(h && h->h_kind == HTTP_H_HOP, "Keep-Alive is hop");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "te");
	ok(h && h->h_kind == HTTP_H_HOP, "TE is hop");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "proxy-authorization");
	ok(h && h->h_kind == HTTP_H_HOP, "Proxy-Authorization is hop");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "x-forwarded-for");
	ok(h && h->h_kind == HTTP_H_X_FORWARDED, "X-Forwarded-For classified");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "x-real-ip");
	ok(h && h->h_kind == HTTP_H_X_FORWARDED, "X-Real-IP classified");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "x_forwarded_user");
	ok(h && h->h_kind == HTTP_H_X_FORWARDED, "X_Forwarded_User (underscores) classified");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "forwarded");
	ok(h && h->h_kind == HTTP_H_FORWARDED, "Forwarded classified");
	h = http_header_find(req.r_hdrs, req.r_nhdrs, "content-type");
	ok(h && !http_header_is_hop(req.r_hdrs, req.r_nhdrs, h), "Content-Type is end-to-end");
	ok(http_header_find(req.r_hdrs, req.r_nhdrs, "missing") == NULL, "missing header → NULL");
	ok(req.r_keepalive, "keep-alive token among others");
	ok(http_str_ieq((struct http_str){ "AbC", 3 }, "abc"), "http_str_ieq ignores case");
	ok(!http_str_ieq((struct http_str){ "AbC", 3 }, "abcd"), "http_str_ieq checks length");
	is_str(http_method_name(HTTP_M_POST), "POST", "method name");
}

static struct http_header rhdrs[HTTP_MAX_HEADERS];

static ssize_t resp_parse(const char *s, enum http_method m, struct http_resp *resp)
{
	size_t n = strlen(s);

	http_resp_init(resp, rhdrs, HTTP_MAX_HEADERS, 0);
	return http_parse_response(guard(s, n), n, m, resp);
}

static void test_response(void)
{
	struct http_resp resp;
	ssize_t r;

	subtest("responses");
	r = resp_parse(
	    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n",
	    HTTP_M_POST, &resp);
	ok(r > 0 && resp.s_status == 200 && resp.s_framing == HTTP_BODY_LENGTH &&
	       resp.s_content_length == 17 && resp.s_keepalive,
	   "200 with Content-Length");
	ok(str_is(resp.s_reason, "OK"), "reason phrase");
	r = resp_parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_M_GET, &resp);
	ok(r > 0 && resp.s_framing == HTTP_BODY_CHUNKED, "chunked response");
	r = resp_parse("HTTP/1.1 200 OK\r\n\r\n", HTTP_M_GET, &resp);
	ok(r > 0 && resp.s_framing == HTTP_BODY_CLOSE && !resp.s_keepalive,
	   "no framing → close-delimited, not reusable");
	r = resp_parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", HTTP_M_HEAD, &resp);
	ok(r > 0 && resp.s_framing == HTTP_BODY_NONE, "HEAD response has no body");
	r = resp_parse("HTTP/1.1 204 No Content\r\n\r\n", HTTP_M_GET, &resp);
	ok(r > 0 && resp.s_framing == HTTP_BODY_NONE && resp.s_keepalive, "204 has no body");
	r = resp_parse("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", HTTP_M_GET, &resp);
	ok(r > 0 && resp.s_framing == HTTP_BODY_NONE, "304 has no body");
	r = resp_parse("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", HTTP_M_POST, &resp);
	ok(r == 25 && resp.s_status == 100 && resp.s_framing == HTTP_BODY_NONE,
	   "100 Continue is returned alone");
	r = resp_parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, &resp);
	ok(r > 0 && !resp.s_keepalive, "HTTP/1.0 response closes");
	r = resp_parse("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", HTTP_M_GET, &resp);
	ok(r > 0 && resp.s_status == 404 && resp.s_reason.n == 0, "status line without reason");
	r = resp_parse("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
		       "Content-Length: 2\r\n\r\n",
		       HTTP_M_GET, &resp);
	ok(r > 0 && !resp.s_keepalive, "Connection: close response");
	r = resp_parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_INCOMPLETE, "partial response head");
	{
		static const char s2[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
		const char *g = guard(s2, strlen(s2));

		http_resp_init(&resp, rhdrs, HTTP_MAX_HEADERS, 0);
		r = http_parse_response(g, strlen(s2), HTTP_M_GET, &resp);
		ok(r == 38 && http_parse_response(g, strlen(s2), HTTP_M_GET, &resp) == 38,
		   "response: parsing again after success gives the same head");
	}

	r = resp_parse("HTTP/1.1 101 Switching Protocols\r\n\r\n", HTTP_M_GET, &resp);
	ok(r == HTTP_BAD && resp.s_status_err == 502, "101 → bad gateway");
	r = resp_parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		       HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "CL and TE in a response → bad");
	r = resp_parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "TE gzip in a response → bad");
	r = resp_parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		       HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "duplicate CL in a response → bad");
	r = resp_parse("HTTP/1.1 2000 OK\r\n\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "four-digit status → bad");
	r = resp_parse("HTTP/1.1 099 X\r\n\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "status below 100 → bad");
	r = resp_parse("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "obs-fold in a response → bad");
	r = resp_parse("HTTP/2 200\r\n\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "HTTP/2 status line → bad");
	r = resp_parse("\r\nHTTP/1.1 200 OK\r\n\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "empty line before a response → bad");
	r = resp_parse("HTTP/1.1 200 O\x01K\r\n\r\n", HTTP_M_GET, &resp);
	is_int(r, HTTP_BAD, "control byte in reason → bad");
}

/* Feeds s to a validator in pieces of step bytes; returns total consumed or HTTP_BAD. */
static ssize_t chunk_feed(struct http_chunked *ch, const char *s, size_t n, size_t step)
{
	size_t off = 0;

	while (off < n && !ch->ch_done) {
		size_t k = n - off < step ? n - off : step;
		ssize_t r = http_chunked_feed(ch, guard(s + off, k), k);

		if (r < 0)
			return r;
		off += (size_t)r;
		if ((size_t)r < k && !ch->ch_done)
			return -99; /* stopped early without finishing: a bug */
	}
	return (ssize_t)off;
}

static void chunk_ok(const char *s, bool trailers_ok, uint64_t payload, const char *name)
{
	size_t n = strlen(s), step;
	bool good = true;

	for (step = 1; step <= n; step = step < 8 ? step + 1 : step * 2) {
		struct http_chunked ch;
		ssize_t r;

		http_chunked_init(&ch, 0, trailers_ok);
		r = chunk_feed(&ch, s, n, step);
		if (r != (ssize_t)n || !ch.ch_done || ch.ch_total != payload) {
			printf("#   step %zu: r=%zd done=%d total=%llu err=%s\n", step, r,
			       ch.ch_done, (unsigned long long)ch.ch_total,
			       ch.ch_error ? ch.ch_error : "");
			good = false;
		}
	}
	ok(good, name);
}

static void chunk_bad(const char *s, bool trailers_ok, uint64_t max, int status, const char *name)
{
	size_t n = strlen(s), step;
	bool good = true;

	for (step = 1; step <= n; step = step < 8 ? step + 1 : step * 2) {
		struct http_chunked ch;
		ssize_t r;

		http_chunked_init(&ch, max, trailers_ok);
		r = chunk_feed(&ch, s, n, step);
		if (r != HTTP_BAD || ch.ch_status != status) {
			printf("#   step %zu: r=%zd status=%d\n", step, r, ch.ch_status);
			good = false;
		}
	}
	ok(good, name);
}

static void test_chunked(void)
{
	struct http_chunked ch;
	static const char two[] = "5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	ssize_t r;

	subtest("chunked bodies");
	chunk_ok("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", false, 11, "two chunks, any split");
	chunk_ok("0\r\n\r\n", false, 0, "empty body");
	chunk_ok("A\r\n0123456789\r\n0\r\n\r\n", false, 10, "upper-case hex size");
	chunk_ok("00000000000000a\r\n0123456789\r\n0\r\n\r\n", false, 10, "leading zeros");
	chunk_ok("5;ext\r\nhello\r\n0;a=b;c=\"d\\\"e\"\r\n\r\n", false, 5, "chunk extensions");
	chunk_ok("5 ; ext = v \r\nhello\r\n0\r\n\r\n", false, 5, "BWS in extensions");
	chunk_ok("5\r\nhello\r\n0\r\nX-Trailer: 1\r\nY: 2\r\n\r\n", true, 5,
		 "trailers accepted when allowed");
	chunk_ok("2\r\n\r\n\r\n0\r\n\r\n", false, 2, "CRLF inside chunk data is data");

	http_chunked_init(&ch, 0, false);
	r = http_chunked_feed(&ch, guard(two, strlen(two)), strlen(two));
	ok(r == 15 && ch.ch_done, "stops at the end of the body; next request left alone");
	ok(http_chunked_feed(&ch, guard("x", 1), 1) == 0, "after the end, consumes nothing");

	chunk_bad("5\r\nhello\r\n0\r\nX: 1\r\n\r\n", false, 0, 400, "trailer in a request → 400");
	chunk_bad("\r\nhello\r\n0\r\n\r\n", false, 0, 400, "empty chunk size → 400");
	chunk_bad("g\r\nhello\r\n0\r\n\r\n", false, 0, 400, "non-hex size → 400");
	chunk_bad("-5\r\nhello\r\n0\r\n\r\n", false, 0, 400, "negative size → 400");
	chunk_bad("0x5\r\nhello\r\n0\r\n\r\n", false, 0, 400, "0x prefix → 400");
	chunk_bad("10000000000000000\r\n", false, 0, 400, "17 hex digits → 400");
	chunk_bad("00000000000000005\r\nhello\r\n", false, 0, 400, "17 digits with zeros → 400");
	chunk_bad("5\r\nhelloX\r\n0\r\n\r\n", false, 0, 400, "data longer than size → 400");
	chunk_bad("5\r\nhello\n0\r\n\r\n", false, 0, 400, "LF only after data → 400");
	chunk_bad("5\nhello\r\n0\r\n\r\n", false, 0, 400, "LF only after size → 400");
	chunk_bad("5\rhello\r\n0\r\n\r\n", false, 0, 400, "bare CR after size → 400");
	chunk_bad("5 \r\nhello\r\n0\r\n\r\n", false, 0, 400, "space after size without ext → 400");
	chunk_bad("5;\r\nhello\r\n", false, 0, 400, "empty extension name → 400");
	chunk_bad("5;a=\r\nhello\r\n", false, 0, 400, "empty extension value → 400");
	chunk_bad("5;a=\"x\r\nhello\r\n", false, 0, 400, "unterminated quoted extension → 400");
	chunk_bad("5;a\x01\r\nhello\r\n", false, 0, 400, "control byte in extension → 400");
	chunk_bad("0\r\n\n", false, 0, 400, "bare LF at the end → 400");
	chunk_bad("0\r\nX\r\n\r\n", true, 0, 400, "trailer without colon → 400");
	chunk_bad("0\r\n X: 1\r\n\r\n", true, 0, 400, "folded trailer → 400");
	chunk_bad("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", false, 10, 413, "over the limit → 413");
	chunk_bad("ffffffffffffffff\r\n", false, 1000, 413, "huge size over the limit → 413");
	{
		char line[1100];

		memset(line, 0, sizeof(line));
		memcpy(line, "5;a=", 4);
		memset(line + 4, 'x', 1050);
		chunk_bad(line, false, 0, 400, "size line over 1 KiB → 400");
	}
	http_chunked_init(&ch, 0, false);
	ok(chunk_feed(&ch, "ffffffffffffffff\r\n", 18, 18) == 18 && ch.ch_total == UINT64_MAX,
	   "16 f's without a limit: accepted as a size");
}

int main(void)
{
	guard_init();
	test_request_basic();
	test_request_incremental();
	test_request_errors();
	test_request_limits();
	test_headers_hop();
	test_response();
	test_chunked();
	return done_testing();
}
