/*
 * http: strict HTTP/1.1 head parsers and the chunked validator (see http.h).
 *
 * Parsing is two passes over the head. The scan (http_scan) runs over new bytes
 * only, checks line endings, NUL and the size limits, and finds the empty line that
 * ends the head; it is what runs on every partial read. The second pass parses the
 * complete head once. Places where we are stricter than RFC 9112 allows a recipient
 * to be are marked "deviation".
 */
#include <string.h>

#include "http.h"

/* RFC 9110 §5.6.2 tchar. */
static const unsigned char http_tchar[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
	['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
	['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
	['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
	['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
	['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
	['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
	['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool http_is_tchar(unsigned char c)
{
	return http_tchar[c] != 0;
}

/*
 * Bytes allowed in an origin-form target (RFC 3986 §3.3 pchar, plus '/' and '?' for
 * path and query): unreserved, sub-delims, ':', '@', '/', '?', and '%' (checked
 * separately to start a valid pct-encoded triplet).
 */
static bool http_is_target_char(unsigned char c)
{
	static const unsigned char punct[256] = {
		['!'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
		['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1,	['/'] = 1, [':'] = 1,
		[';'] = 1, ['='] = 1, ['?'] = 1, ['@'] = 1, ['_'] = 1,	['~'] = 1
	};

	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       punct[c];
}

static int http_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned char http_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

bool http_str_ieq(struct http_str s, const char *name)
{
	size_t i;

	for (i = 0; i < s.n; i++) {
		if (name[i] == '\0' ||
		    http_lower((unsigned char)s.p[i]) != http_lower((unsigned char)name[i]))
			return false;
	}
	return name[i] == '\0';
}

const char *http_method_name(enum http_method m)
{
	static const char *const names[] = {
		[HTTP_M_OTHER] = "",	      [HTTP_M_GET] = "GET",
		[HTTP_M_HEAD] = "HEAD",	      [HTTP_M_POST] = "POST",
		[HTTP_M_PUT] = "PUT",	      [HTTP_M_DELETE] = "DELETE",
		[HTTP_M_OPTIONS] = "OPTIONS", [HTTP_M_PATCH] = "PATCH",
		[HTTP_M_CONNECT] = "CONNECT", [HTTP_M_TRACE] = "TRACE",
	};

	if ((unsigned)m >= sizeof(names) / sizeof(names[0]))
		return "";
	return names[m];
}

static enum http_method http_method_parse(struct http_str s)
{
	enum http_method m;

	/* Methods are case-sensitive (RFC 9110 §9.1): "get" is an unknown method. */
	for (m = HTTP_M_GET; m <= HTTP_M_TRACE; m++) {
		const char *name = http_method_name(m);

		if (strlen(name) == s.n && memcmp(name, s.p, s.n) == 0)
			return m;
	}
	return HTTP_M_OTHER;
}

/*
 * Prefix match where '_' in name also matches '-': some back ends (CGI-style header
 * maps, WSGI) turn X_Forwarded_For into the same variable as X-Forwarded-For, so a
 * client must not be able to smuggle a forwarded header past us under that spelling.
 */
static bool http_name_dash_iprefix(struct http_str name, const char *prefix)
{
	size_t k = strlen(prefix), i;

	if (name.n < k)
		return false;
	for (i = 0; i < k; i++) {
		unsigned char c = http_lower((unsigned char)name.p[i]);

		if (c == '_')
			c = '-';
		if (c != (unsigned char)prefix[i])
			return false;
	}
	return true;
}

static enum http_hdr_kind http_hdr_classify(struct http_str name)
{
	static const struct {
		const char *name;
		enum http_hdr_kind kind;
		size_t len;
	} known[] = {
		{ "host", HTTP_H_HOST, 4 },
		{ "content-length", HTTP_H_CONTENT_LENGTH, 14 },
		{ "transfer-encoding", HTTP_H_TRANSFER_ENCODING, 17 },
		{ "connection", HTTP_H_CONNECTION, 10 },
		{ "expect", HTTP_H_EXPECT, 6 },
		{ "authorization", HTTP_H_AUTHORIZATION, 13 },
		{ "forwarded", HTTP_H_FORWARDED, 9 },
		/* RFC 9110 §7.6.1 hop-by-hop fields, plus the non-standard Proxy-Connection */
		{ "keep-alive", HTTP_H_HOP, 10 },
		{ "proxy-connection", HTTP_H_HOP, 16 },
		{ "te", HTTP_H_HOP, 2 },
		{ "trailer", HTTP_H_HOP, 7 },
		{ "upgrade", HTTP_H_HOP, 7 },
		{ "proxy-authorization", HTTP_H_HOP, 19 },
		{ "proxy-authenticate", HTTP_H_HOP, 18 },
	};
	size_t i;

	/* most fields are none of these: the first letter rules out nearly all */
	switch (http_lower((unsigned char)name.p[0])) {
	case 'a':
	case 'c':
	case 'e':
	case 'f':
	case 'h':
	case 'k':
	case 'p':
	case 't':
	case 'u':
		break;
	case 'x':
		if (http_name_dash_iprefix(name, "x-forwarded-") ||
		    http_name_dash_iprefix(name, "x-real-ip"))
			return HTTP_H_X_FORWARDED;
		return HTTP_H_OTHER;
	default:
		return HTTP_H_OTHER;
	}
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].len == name.n && http_str_ieq(name, known[i].name))
			return known[i].kind;
	return HTTP_H_OTHER;
}

const struct http_header *http_header_find(const struct http_header *hdrs, size_t nhdrs,
					   const char *name)
{
	size_t i;

	for (i = 0; i < nhdrs; i++)
		if (http_str_ieq(hdrs[i].h_name, name))
			return &hdrs[i];
	return NULL;
}

/*
 * Calls fn for each element of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed,
 * empty elements skipped. Returns -1 as soon as fn does, else 0.
 */
static int http_list_each(struct http_str v, int (*fn)(struct http_str tok, void *arg), void *arg)
{
	size_t i = 0;

	while (i < v.n) {
		size_t b, e;

		while (i < v.n && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		b = i;
		while (i < v.n && v.p[i] != ',')
			i++;
		e = i;
		while (e > b && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
			e--;
		if (e > b && fn((struct http_str){ v.p + b, e - b }, arg) < 0)
			return -1;
	}
	return 0;
}

struct http_hop_ctx {
	struct http_str name;
	bool found;
};

static int http_hop_match(struct http_str tok, void *arg)
{
	struct http_hop_ctx *ctx = arg;

	if (tok.n == ctx->name.n) {
		size_t i;

		for (i = 0; i < tok.n; i++)
			if (http_lower((unsigned char)tok.p[i]) !=
			    http_lower((unsigned char)ctx->name.p[i]))
				break;
		if (i == tok.n) {
			ctx->found = true;
			return -1;
		}
	}
	return 0;
}

bool http_header_is_hop(const struct http_header *hdrs, size_t nhdrs, const struct http_header *h)
{
	struct http_hop_ctx ctx = { h->h_name, false };
	size_t i;

	if (h->h_kind == HTTP_H_CONNECTION || h->h_kind == HTTP_H_HOP)
		return true;
	/* Framing is forwarded byte-exact, whatever Connection says about it. */
	if (h->h_kind == HTTP_H_CONTENT_LENGTH || h->h_kind == HTTP_H_TRANSFER_ENCODING)
		return false;
	for (i = 0; i < nhdrs && !ctx.found; i++)
		if (hdrs[i].h_kind == HTTP_H_CONNECTION)
			(void)http_list_each(hdrs[i].h_value, http_hop_match, &ctx);
	return ctx.found;
}

/* ---- the scan: line endings, NUL, limits, end of head --------------------------- */

struct http_scan {
	size_t *scanned, *linestart, *lines;
	size_t *start;	    /* NULL: no empty lines allowed before the first line */
	size_t max_head;    /* bytes through the final empty line */
	size_t max_line;    /* first-line bytes (without CRLF) */
	size_t max_lines;   /* header lines */
	int status;	    /* out, on HTTP_BAD */
	const char *error;  /* out, on HTTP_BAD */
	int line_too_long;  /* status for an over-long first line: 414 / 502 */
	int head_too_large; /* status for an over-large head: 431 / 502 */
};

static ssize_t http_scan_bad(struct http_scan *s, int status, const char *error)
{
	s->status = status;
	s->error = error;
	return HTTP_BAD;
}

/*
 * Scans p[*scanned..n). Returns the length of the head (through its empty line),
 * HTTP_INCOMPLETE or HTTP_BAD.
 */
static ssize_t http_scan(const char *p, size_t n, struct http_scan *s)
{
	size_t i = *s->scanned;
	/* the head, CRLF CRLF included, must fit in max_head bytes: look no further */
	size_t lim = n < s->max_head ? n : s->max_head;
	/*
	 * The first line may have max_line bytes before its CR. Judged byte by byte (the
	 * first byte past the limit answers 414), so that the answer does not depend on
	 * how the bytes were split across reads.
	 */
	size_t lim1 = *s->lines == 0 ? *s->linestart + s->max_line : SIZE_MAX;

	for (; i < lim; i++) {
		unsigned char c = (unsigned char)p[i];

		/* the common case first: one compare for every byte that is not special */
		if (c > '\r' || (c != '\0' && c != '\r' && c != '\n')) {
			if (i >= lim1)
				return http_scan_bad(s, s->line_too_long, "request line too long");
			continue;
		}
		if (c == '\0')
			return http_scan_bad(s, 400, "NUL byte in head");
		if (c == '\r') {
			if (i + 1 == n)
				break; /* judge this CR when its next byte has arrived */
			/*
			 * RFC 9112 §2.2: a bare CR must be rejected (or replaced by SP);
			 * we reject.
			 */
			if (p[i + 1] != '\n')
				return http_scan_bad(s, 400, "bare CR in head");
			continue;
		}
		/*
		 * RFC 9112 §2.2 lets a recipient accept a bare LF as a line terminator.
		 * Deviation: we do not, because a front end and a back end that disagree
		 * about line ends disagree about where headers (and bodies) begin.
		 */
		if (i == 0 || p[i - 1] != '\r')
			return http_scan_bad(s, 400, "bare LF in head");
		if (i - 1 == *s->linestart) {
			/* an empty line */
			if (*s->lines == 0 && s->start) {
				/* RFC 9112 §2.2: empty lines before the request line are ignored */
				*s->start = i + 1;
				*s->linestart = i + 1;
				lim1 = i + 1 + s->max_line;
				continue;
			}
			if (*s->lines == 0)
				return http_scan_bad(s, 400, "empty first line");
			*s->scanned = i + 1;
			return (ssize_t)(i + 1);
		}
		(*s->lines)++;
		if (*s->lines > s->max_lines + 1)
			return http_scan_bad(s, s->head_too_large, "too many header fields");
		*s->linestart = i + 1;
		lim1 = SIZE_MAX;
	}
	*s->scanned = i;
	if (n >= s->max_head)
		return http_scan_bad(s, s->head_too_large, "head too large");
	return HTTP_INCOMPLETE;
}

/* ---- header fields ------------------------------------------------------------- */

/*
 * Parses the header lines in p[b..e) (each ending in CRLF, e is the start of the
 * empty line) into hdrs. Returns the count, or -1 with *error set (400).
 */
static ssize_t http_parse_fields(const char *p, size_t b, size_t e, struct http_header *hdrs,
				 size_t cap, const char **error)
{
	size_t i = b, nh = 0;

	while (i < e) {
		size_t ns = i, ne, vs, ve;

		/*
		 * RFC 9112 §5.2: a line starting with SP/HTAB is obs-fold; a server must
		 * reject it or unfold it. We reject it. It also catches whitespace between
		 * the start line and the first field (RFC 9112 §2.2).
		 */
		while (i < e && http_is_tchar((unsigned char)p[i]))
			i++;
		ne = i;
		if (ne == ns) {
			*error = (p[i] == ' ' || p[i] == '\t') ? "obs-fold or leading whitespace"
							       : "bad header name";
			return -1;
		}
		if (p[i] != ':') {
			/* RFC 9112 §5.1: no whitespace between field name and colon (MUST 400) */
			*error = (p[i] == ' ' || p[i] == '\t') ? "whitespace before colon"
				 : (p[i] == '\r')	       ? "header line without colon"
							       : "bad header name";
			return -1;
		}
		i++;
		while (p[i] == ' ' || p[i] == '\t')
			i++;
		vs = i;
		for (; p[i] != '\r'; i++) {
			unsigned char c = (unsigned char)p[i];

			/* RFC 9110 §5.5: field-vchar, SP, HTAB, obs-text; no other CTL */
			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				*error = "control byte in header value";
				return -1;
			}
		}
		ve = i;
		while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
			ve--;
		if (nh == cap) {
			*error = "too many header fields";
			return -2;
		}
		hdrs[nh].h_name = (struct http_str){ p + ns, ne - ns };
		hdrs[nh].h_value = (struct http_str){ p + vs, ve - vs };
		hdrs[nh].h_kind = http_hdr_classify(hdrs[nh].h_name);
		nh++;
		i += 2; /* CRLF, guaranteed by the scan */
	}
	return (ssize_t)nh;
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6), no sign, no list, no overflow. */
static int http_parse_length(struct http_str v, uint64_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (v.n == 0)
		return -1;
	for (i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (c < '0' || c > '9')
			return -1;
		if (x > (UINT64_MAX - 9) / 10)
			return -1;
		x = x * 10 + (c - '0');
	}
	/* keep lengths representable as off_t/ssize_t everywhere downstream */
	if (x > (uint64_t)INT64_MAX)
		return -1;
	*out = x;
	return 0;
}

struct http_conn_tokens {
	bool close, keepalive, bad;
};

static int http_conn_token(struct http_str tok, void *arg)
{
	struct http_conn_tokens *t = arg;
	size_t i;

	for (i = 0; i < tok.n; i++)
		if (!http_is_tchar((unsigned char)tok.p[i])) {
			t->bad = true;
			return -1;
		}
	if (http_str_ieq(tok, "close"))
		t->close = true;
	else if (http_str_ieq(tok, "keep-alive"))
		t->keepalive = true;
	return 0;
}

/* Host = uri-host [ ":" port ] (RFC 9110 §7.2); may be empty. */
static bool http_host_valid(struct http_str v)
{
	size_t i;

	for (i = 0; i < v.n; i++) {
		unsigned char c = (unsigned char)v.p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("-._~!$&'()*+,;=:[]%", c)) ||
		    c == '\0')
			return false;
	}
	return true;
}

/* "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3). Returns minor, -1 (400) or -2 (505). */
static int http_parse_version(const char *p, size_t n)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
	    p[7] < '0' || p[7] > '9')
		return -1;
	if (p[5] != '1')
		return -2;
	/* RFC 9110 §6.2: a higher 1.x minor is treated as the highest we implement */
	return p[7] >= '1' ? 1 : 0;
}

/* ---- requests ------------------------------------------------------------------- */

void http_req_init(struct http_req *req, struct http_header *hdrs, size_t cap, size_t max_head,
		   size_t max_line)
{
	memset(req, 0, sizeof(*req));
	req->r_hdrs = hdrs;
	req->r_hdr_cap = cap;
	req->r_max_head = max_head ? max_head : HTTP_MAX_HEAD_DEFAULT;
	req->r_max_line = max_line ? max_line : HTTP_MAX_LINE_DEFAULT;
}

static ssize_t http_req_bad(struct http_req *req, int status, const char *error)
{
	req->r_status = status;
	req->r_error = error;
	return HTTP_BAD;
}

/* Checks the request target (origin-form only). Returns 0 or -1 with *error set. */
static int http_check_target(struct http_req *req, const char **error)
{
	const char *t = req->r_target.p;
	size_t n = req->r_target.n, i, q = n;

	if (n == 0 || t[0] != '/') {
		/*
		 * RFC 9112 §3.2.2 says a server MUST accept absolute-form. Deviation: we
		 * accept only origin-form. Clients send absolute-form only to forward
		 * proxies; for a gateway it would add a second, competing authority (the
		 * Host header) and a second path syntax that the ACL would have to
		 * normalise. Asterisk-form (OPTIONS *) and authority-form (CONNECT) are
		 * refused here as well: neither reaches TF Serving.
		 */
		*error = "target is not origin-form";
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		/*
		 * Raw bytes outside RFC 3986 (SP, '"', '<', '\\', '#', bytes >= 0x80, ...)
		 * are refused, which also keeps RE2 Unicode case folding away from
		 * TF Serving's (?i) routes (see route.h).
		 */
		if (!http_is_target_char(c)) {
			*error = "bad byte in target";
			return -1;
		}
		if (c == '%' && (i + 2 >= n || http_hexval((unsigned char)t[i + 1]) < 0 ||
				 http_hexval((unsigned char)t[i + 2]) < 0)) {
			*error = "bad percent-escape in target";
			return -1;
		}
		if (c == '?' && q == n)
			q = i;
	}
	req->r_path = (struct http_str){ t, q };
	req->r_query =
	    q < n ? (struct http_str){ t + q + 1, n - q - 1 } : (struct http_str){ t + n, 0 };
	return 0;
}

/* Parses the request line in p[b..e) (e at its CR). */
static ssize_t http_parse_request_line(const char *p, size_t b, size_t e, struct http_req *req)
{
	const char *sp1, *sp2, *error = NULL;
	int minor;

	/* RFC 9112 §3: method SP request-target SP HTTP-version; exactly one SP each */
	sp1 = memchr(p + b, ' ', e - b);
	if (!sp1)
		return http_req_bad(req, 400, "no target in request line");
	sp2 = memchr(sp1 + 1, ' ', (size_t)(p + e - sp1 - 1));
	if (!sp2)
		return http_req_bad(req, 400, "no version in request line (HTTP/0.9?)");
	req->r_method_str = (struct http_str){ p + b, (size_t)(sp1 - (p + b)) };
	req->r_target = (struct http_str){ sp1 + 1, (size_t)(sp2 - sp1 - 1) };
	if (req->r_method_str.n == 0)
		return http_req_bad(req, 400, "empty method");
	for (size_t i = 0; i < req->r_method_str.n; i++)
		if (!http_is_tchar((unsigned char)req->r_method_str.p[i]))
			return http_req_bad(req, 400, "bad method");
	req->r_method = http_method_parse(req->r_method_str);
	minor = http_parse_version(sp2 + 1, (size_t)(p + e - sp2 - 1));
	if (minor == -2)
		return http_req_bad(req, 505, "unsupported HTTP version");
	if (minor < 0)
		return http_req_bad(req, 400, "bad HTTP version");
	req->r_minor = minor;
	if (http_check_target(req, &error) < 0)
		return http_req_bad(req, 400, error);
	return 0;
}

ssize_t http_parse_request(const char *p, size_t n, struct http_req *req)
{
	struct http_scan s = {
		.scanned = &req->r_scanned,
		.linestart = &req->r_linestart,
		.lines = &req->r_lines,
		.start = &req->r_start,
		.max_head = req->r_max_head,
		.max_line = req->r_max_line,
		.max_lines = req->r_hdr_cap,
		.line_too_long = 414,
		.head_too_large = 431,
	};
	const struct http_header *host = NULL, *cl = NULL, *te = NULL;
	struct http_conn_tokens conn = { false, false, false };
	const char *error = NULL, *cr;
	ssize_t end, nh;
	size_t i, line_end;

	if (req->r_end) {
		/* parsed before: start over rather than scan on into the body */
		req->r_scanned = req->r_linestart = req->r_lines = req->r_start = req->r_end = 0;
		req->r_authorization = NULL;
		req->r_expect_continue = false;
	}
	end = http_scan(p, n, &s);
	if (end == HTTP_BAD)
		return http_req_bad(req, s.status, s.error);
	if (end == HTTP_INCOMPLETE)
		return HTTP_INCOMPLETE;

	cr = memchr(p + req->r_start, '\r', (size_t)end - req->r_start);
	line_end = (size_t)(cr - p); /* the scan guarantees a CRLF */
	if (http_parse_request_line(p, req->r_start, line_end, req) < 0)
		return HTTP_BAD;

	nh = http_parse_fields(p, line_end + 2, (size_t)end - 2, req->r_hdrs, req->r_hdr_cap,
			       &error);
	if (nh == -2)
		return http_req_bad(req, 431, error);
	if (nh < 0)
		return http_req_bad(req, 400, error);
	req->r_nhdrs = (size_t)nh;

	for (i = 0; i < req->r_nhdrs; i++) {
		const struct http_header *h = &req->r_hdrs[i];

		switch (h->h_kind) {
		case HTTP_H_HOST:
			/* RFC 9112 §3.2: more than one Host → 400 */
			if (host)
				return http_req_bad(req, 400, "duplicate Host");
			host = h;
			break;
		case HTTP_H_CONTENT_LENGTH:
			/*
			 * RFC 9110 §8.6 lets a recipient accept repeated identical values
			 * ("5, 5" or two headers). Deviation: any repetition is rejected;
			 * smuggling attacks live in exactly this leniency.
			 */
			if (cl)
				return http_req_bad(req, 400, "duplicate Content-Length");
			cl = h;
			if (http_parse_length(h->h_value, &req->r_content_length) < 0)
				return http_req_bad(req, 400, "bad Content-Length");
			break;
		case HTTP_H_TRANSFER_ENCODING:
			if (te)
				return http_req_bad(req, 400, "duplicate Transfer-Encoding");
			te = h;
			break;
		case HTTP_H_AUTHORIZATION:
			/*
			 * RFC 9110 §5.3: only list-valued fields may repeat. Two credentials
			 * must not let us and the back end pick different ones.
			 */
			if (req->r_authorization)
				return http_req_bad(req, 400, "duplicate Authorization");
			req->r_authorization = h;
			break;
		case HTTP_H_CONNECTION:
			if (http_list_each(h->h_value, http_conn_token, &conn) < 0 || conn.bad)
				return http_req_bad(req, 400, "bad Connection");
			break;
		case HTTP_H_EXPECT:
			/* RFC 9110 §10.1.1: an expectation we cannot meet → 417 */
			if (!http_str_ieq(h->h_value, "100-continue"))
				return http_req_bad(req, 417, "unsupported Expect");
			/* RFC 9110 §10.1.1: ignored in an HTTP/1.0 request */
			req->r_expect_continue = req->r_minor >= 1;
			break;
		default:
			break;
		}
	}

	if (host) {
		if (!http_host_valid(host->h_value))
			return http_req_bad(req, 400, "bad Host");
		req->r_host = host->h_value;
	} else if (req->r_minor >= 1) {
		/* RFC 9112 §3.2: an HTTP/1.1 request without Host → 400 */
		return http_req_bad(req, 400, "missing Host");
	}

	if (te) {
		/*
		 * RFC 9112 §6.3 ¶3: with both CL and TE the TE wins, but the message
		 * "ought to be handled as an error"; a server MAY reject. We do (400).
		 */
		if (cl)
			return http_req_bad(req, 400, "both Content-Length and Transfer-Encoding");
		/* RFC 9112 §6.1: TE in an HTTP/1.0 request means faulty framing */
		if (req->r_minor == 0)
			return http_req_bad(req, 400, "Transfer-Encoding in HTTP/1.0");
		/*
		 * RFC 9112 §6.1: an unknown coding → 501. We implement only "chunked",
		 * alone: "gzip, chunked" is 501, "chunked, chunked" and "chunked;x" too.
		 */
		if (!http_str_ieq(te->h_value, "chunked"))
			return http_req_bad(req, 501, "unsupported Transfer-Encoding");
		req->r_framing = HTTP_BODY_CHUNKED;
	} else if (cl) {
		req->r_framing = HTTP_BODY_LENGTH;
	} else {
		/* RFC 9112 §6.3 ¶7: a request without either has no body */
		req->r_framing = HTTP_BODY_NONE;
	}

	if (req->r_minor >= 1)
		req->r_keepalive = !conn.close;
	else
		req->r_keepalive = conn.keepalive && !conn.close;
	req->r_end = (size_t)end;
	return end;
}

/* ---- responses ------------------------------------------------------------------ */

void http_resp_init(struct http_resp *resp, struct http_header *hdrs, size_t cap, size_t max_head)
{
	memset(resp, 0, sizeof(*resp));
	resp->s_hdrs = hdrs;
	resp->s_hdr_cap = cap;
	resp->s_max_head = max_head ? max_head : HTTP_MAX_HEAD_DEFAULT;
}

static ssize_t http_resp_bad(struct http_resp *resp, const char *error)
{
	resp->s_status_err = 502;
	resp->s_error = error;
	return HTTP_BAD;
}

ssize_t http_parse_response(const char *p, size_t n, enum http_method req_method,
			    struct http_resp *resp)
{
	struct http_scan s = {
		.scanned = &resp->s_scanned,
		.linestart = &resp->s_linestart,
		.lines = &resp->s_lines,
		.start = NULL,
		.max_head = resp->s_max_head,
		.max_line = resp->s_max_head,
		.max_lines = resp->s_hdr_cap,
		.line_too_long = 502,
		.head_too_large = 502,
	};
	const struct http_header *cl = NULL, *te = NULL;
	struct http_conn_tokens conn = { false, false, false };
	const char *error = NULL, *cr;
	ssize_t end, nh;
	size_t i, line_end, k;
	int minor;

	if (resp->s_end)
		resp->s_scanned = resp->s_linestart = resp->s_lines = resp->s_end = 0;
	end = http_scan(p, n, &s);
	if (end == HTTP_BAD)
		return http_resp_bad(resp, s.error);
	if (end == HTTP_INCOMPLETE)
		return HTTP_INCOMPLETE;

	cr = memchr(p, '\r', (size_t)end);
	line_end = (size_t)(cr - p);
	/* RFC 9112 §4: HTTP-version SP 3DIGIT SP [ reason-phrase ] */
	if (line_end < 12 || p[8] != ' ')
		return http_resp_bad(resp, "bad status line");
	minor = http_parse_version(p, 8);
	if (minor < 0)
		return http_resp_bad(resp, "bad response version");
	resp->s_minor = minor;
	for (k = 9; k < 12; k++)
		if (p[k] < '0' || p[k] > '9')
			return http_resp_bad(resp, "bad status code");
	resp->s_status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (resp->s_status < 100 || resp->s_status > 599)
		return http_resp_bad(resp, "bad status code");
	if (line_end > 12) {
		if (p[12] != ' ')
			return http_resp_bad(resp, "bad status line");
		for (k = 13; k < line_end; k++) {
			unsigned char c = (unsigned char)p[k];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return http_resp_bad(resp, "control byte in reason");
		}
		resp->s_reason = (struct http_str){ p + 13, line_end - 13 };
	} else {
		/* tolerated: a missing reason-phrase without its SP (old servers) */
		resp->s_reason = (struct http_str){ p + 12, 0 };
	}
	if (resp->s_status == 101)
		return http_resp_bad(resp, "unexpected 101 Switching Protocols");

	nh = http_parse_fields(p, line_end + 2, (size_t)end - 2, resp->s_hdrs, resp->s_hdr_cap,
			       &error);
	if (nh < 0)
		return http_resp_bad(resp, error);
	resp->s_nhdrs = (size_t)nh;
	for (i = 0; i < resp->s_nhdrs; i++) {
		const struct http_header *h = &resp->s_hdrs[i];

		if (h->h_kind == HTTP_H_CONTENT_LENGTH) {
			if (cl)
				return http_resp_bad(resp, "duplicate Content-Length");
			cl = h;
			if (http_parse_length(h->h_value, &resp->s_content_length) < 0)
				return http_resp_bad(resp, "bad Content-Length");
		} else if (h->h_kind == HTTP_H_TRANSFER_ENCODING) {
			if (te)
				return http_resp_bad(resp, "duplicate Transfer-Encoding");
			te = h;
		} else if (h->h_kind == HTTP_H_CONNECTION) {
			if (http_list_each(h->h_value, http_conn_token, &conn) < 0 || conn.bad)
				return http_resp_bad(resp, "bad Connection");
		}
	}
	resp->s_keepalive = minor >= 1 ? !conn.close : (conn.keepalive && !conn.close);

	/* RFC 9112 §6.3 ¶1-2: these never have a body, whatever the headers say */
	if (req_method == HTTP_M_HEAD || resp->s_status < 200 || resp->s_status == 204 ||
	    resp->s_status == 304) {
		resp->s_framing = HTTP_BODY_NONE;
		resp->s_end = (size_t)end;
		return end;
	}
	if (te) {
		/*
		 * RFC 9112 §6.3 ¶3-4: CL+TE must close the connection afterwards, and a
		 * final coding other than chunked means close-delimited. Deviation: both
		 * are errors (502); our back end never sends them, so either is a bug or
		 * an attack on the framing we forward.
		 */
		if (cl)
			return http_resp_bad(resp, "both Content-Length and Transfer-Encoding");
		if (!http_str_ieq(te->h_value, "chunked"))
			return http_resp_bad(resp, "unsupported Transfer-Encoding");
		resp->s_framing = HTTP_BODY_CHUNKED;
	} else if (cl) {
		resp->s_framing = HTTP_BODY_LENGTH;
	} else {
		resp->s_framing = HTTP_BODY_CLOSE;
		resp->s_keepalive = false;
	}
	resp->s_end = (size_t)end;
	return end;
}

/* ---- chunked bodies ------------------------------------------------------------- */

enum {
	CH_SIZE = 0,	/* chunk-size hex digits */
	CH_SIZE_WS,	/* BWS after the size: only ';' may follow */
	CH_EXT_PRE,	/* after ';': BWS, then a name */
	CH_EXT_NAME,	/* in a name */
	CH_EXT_NAME_WS, /* BWS after a name: '=', ';' or CR */
	CH_EXT_VAL_PRE, /* after '=': BWS, then token or quoted-string */
	CH_EXT_VAL,	/* in a token value */
	CH_EXT_QVAL,	/* in a quoted-string */
	CH_EXT_QESC,	/* after a backslash in a quoted-string */
	CH_EXT_END,	/* after a value: BWS, then ';' or CR */
	CH_SIZE_LF,	/* CR seen at the end of the size line */
	CH_DATA,	/* chunk data */
	CH_DATA_CR,	/* CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER, /* start of a trailer line (or the final CRLF) */
	CH_TRAILER_NAME,
	CH_TRAILER_VAL,
	CH_TRAILER_LF,
	CH_END_LF, /* the final CRLF's LF */
	CH_DONE,
};

/* Size-line cap: 16 hex digits plus room for a few short extensions. */
#define HTTP_CHUNK_LINE_MAX 1024
/* Trailer section cap (responses only; requests may not have trailers). */
#define HTTP_CHUNK_TRAILER_MAX (8u << 10)

void http_chunked_init(struct http_chunked *ch, uint64_t max, bool trailers_ok)
{
	memset(ch, 0, sizeof(*ch));
	ch->ch_max = max;
	ch->ch_trailers_ok = trailers_ok;
	ch->ch_state = CH_SIZE;
}

static ssize_t http_chunked_bad(struct http_chunked *ch, int status, const char *error)
{
	ch->ch_status = status;
	ch->ch_error = error;
	return HTTP_BAD;
}

/* End of a size line (its LF seen): start the data, or the trailers after size 0. */
static void http_chunked_line_done(struct http_chunked *ch)
{
	ch->ch_linelen = 0;
	ch->ch_digits = 0;
	ch->ch_state = ch->ch_left ? CH_DATA : CH_TRAILER;
}

ssize_t http_chunked_feed(struct http_chunked *ch, const char *p, size_t n)
{
	size_t i = 0;

	if (ch->ch_state == CH_DONE)
		return 0;
	if (ch->ch_status)
		return HTTP_BAD;
	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		int hv;

		if (ch->ch_state == CH_DATA) {
			uint64_t take = n - i < ch->ch_left ? n - i : ch->ch_left;

			ch->ch_left -= take;
			i += (size_t)take;
			if (ch->ch_left == 0)
				ch->ch_state = CH_DATA_CR;
			continue;
		}
		i++;
		if (ch->ch_state <= CH_SIZE_LF && ++ch->ch_linelen > HTTP_CHUNK_LINE_MAX)
			return http_chunked_bad(ch, 400, "chunk size line too long");
		switch (ch->ch_state) {
		case CH_SIZE:
			hv = http_hexval(c);
			if (hv >= 0) {
				/*
				 * 16 hex digits fill a uint64_t; more (even leading zeros)
				 * is refused rather than risk a wrap-around.
				 */
				if (++ch->ch_digits > 16)
					return http_chunked_bad(ch, 400, "chunk size too long");
				ch->ch_left = (ch->ch_left << 4) | (uint64_t)hv;
				break;
			}
			if (ch->ch_digits == 0)
				return http_chunked_bad(ch, 400, "bad chunk size");
			if (ch->ch_max &&
			    (ch->ch_left > ch->ch_max || ch->ch_total > ch->ch_max - ch->ch_left))
				return http_chunked_bad(ch, 413, "chunked body too large");
			ch->ch_total += ch->ch_left;
			if (c == '\r')
				ch->ch_state = CH_SIZE_LF;
			else if (c == ';')
				ch->ch_state = CH_EXT_PRE;
			else if (c == ' ' || c == '\t')
				ch->ch_state = CH_SIZE_WS;
			else
				return http_chunked_bad(ch, 400, "bad chunk size");
			break;
		case CH_SIZE_WS:
			/* RFC 9112 §7.1.1: BWS is allowed only before ';' */
			if (c == ';')
				ch->ch_state = CH_EXT_PRE;
			else if (c != ' ' && c != '\t')
				return http_chunked_bad(ch, 400, "bad chunk size");
			break;
		case CH_EXT_PRE:
			if (http_is_tchar(c))
				ch->ch_state = CH_EXT_NAME;
			else if (c != ' ' && c != '\t')
				return http_chunked_bad(ch, 400, "bad chunk extension");
			break;
		case CH_EXT_NAME:
		case CH_EXT_VAL:
			if (http_is_tchar(c))
				break;
			if (c == '=' && ch->ch_state == CH_EXT_NAME)
				ch->ch_state = CH_EXT_VAL_PRE;
			else if (c == ';')
				ch->ch_state = CH_EXT_PRE;
			else if (c == '\r')
				ch->ch_state = CH_SIZE_LF;
			else if (c == ' ' || c == '\t')
				ch->ch_state =
				    ch->ch_state == CH_EXT_NAME ? CH_EXT_NAME_WS : CH_EXT_END;
			else
				return http_chunked_bad(ch, 400, "bad chunk extension");
			break;
		case CH_EXT_NAME_WS:
			if (c == '=')
				ch->ch_state = CH_EXT_VAL_PRE;
			else if (c == ';')
				ch->ch_state = CH_EXT_PRE;
			else if (c == '\r')
				ch->ch_state = CH_SIZE_LF;
			else if (c != ' ' && c != '\t')
				return http_chunked_bad(ch, 400, "bad chunk extension");
			break;
		case CH_EXT_VAL_PRE:
			if (http_is_tchar(c))
				ch->ch_state = CH_EXT_VAL;
			else if (c == '"')
				ch->ch_state = CH_EXT_QVAL;
			else if (c != ' ' && c != '\t')
				return http_chunked_bad(ch, 400, "bad chunk extension");
			break;
		case CH_EXT_QVAL:
			/* RFC 9110 §5.6.4 qdtext / quoted-pair */
			if (c == '"')
				ch->ch_state = CH_EXT_END;
			else if (c == '\\')
				ch->ch_state = CH_EXT_QESC;
			else if ((c < 0x20 && c != '\t') || c == 0x7f)
				return http_chunked_bad(ch, 400, "bad chunk extension");
			break;
		case CH_EXT_QESC:
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return http_chunked_bad(ch, 400, "bad chunk extension");
			ch->ch_state = CH_EXT_QVAL;
			break;
		case CH_EXT_END:
			if (c == ';')
				ch->ch_state = CH_EXT_PRE;
			else if (c == '\r')
				ch->ch_state = CH_SIZE_LF;
			else if (c != ' ' && c != '\t')
				return http_chunked_bad(ch, 400, "bad chunk extension");
			break;
		case CH_SIZE_LF:
			if (c != '\n')
				return http_chunked_bad(ch, 400, "bare CR in chunk size line");
			http_chunked_line_done(ch);
			break;
		case CH_DATA_CR:
			if (c != '\r')
				return http_chunked_bad(ch, 400, "missing CRLF after chunk data");
			ch->ch_state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (c != '\n')
				return http_chunked_bad(ch, 400, "missing CRLF after chunk data");
			ch->ch_state = CH_SIZE;
			ch->ch_left = 0;
			ch->ch_digits = 0;
			ch->ch_linelen = 0;
			break;
		case CH_TRAILER:
			if (c == '\r') {
				ch->ch_state = CH_END_LF;
				break;
			}
			/*
			 * RFC 9112 §7.1.2 lets a recipient discard or merge trailer
			 * fields. Deviation: requests with trailers are refused, because
			 * we forward the body byte-exact and TF Serving's libevent merges
			 * trailers into the request headers (a way around our header
			 * rewriting).
			 */
			if (!ch->ch_trailers_ok)
				return http_chunked_bad(ch, 400, "trailer fields in request");
			if (!http_is_tchar(c))
				return http_chunked_bad(ch, 400, "bad trailer field");
			ch->ch_state = CH_TRAILER_NAME;
			__attribute__((fallthrough));
		case CH_TRAILER_NAME:
		case CH_TRAILER_VAL:
			if (++ch->ch_trailer_bytes > HTTP_CHUNK_TRAILER_MAX)
				return http_chunked_bad(ch, 400, "trailer section too large");
			if (ch->ch_state == CH_TRAILER_NAME && c == ':')
				ch->ch_state = CH_TRAILER_VAL;
			else if (ch->ch_state == CH_TRAILER_NAME && !http_is_tchar(c))
				return http_chunked_bad(ch, 400, "bad trailer field");
			else if (ch->ch_state == CH_TRAILER_VAL && c == '\r')
				ch->ch_state = CH_TRAILER_LF;
			else if (ch->ch_state == CH_TRAILER_VAL &&
				 ((c < 0x20 && c != '\t') || c == 0x7f))
				return http_chunked_bad(ch, 400, "bad trailer field");
			break;
		case CH_TRAILER_LF:
			if (c != '\n')
				return http_chunked_bad(ch, 400, "bare CR in trailer");
			ch->ch_state = CH_TRAILER;
			break;
		case CH_END_LF:
			if (c != '\n')
				return http_chunked_bad(ch, 400, "bare CR after last chunk");
			ch->ch_state = CH_DONE;
			ch->ch_done = true;
			return (ssize_t)i;
		default:
			return http_chunked_bad(ch, 400, "chunked decoder state");
		}
	}
	return (ssize_t)i;
}
