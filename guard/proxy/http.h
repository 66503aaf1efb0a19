/*
 * http: strict, allocation-free HTTP/1.1 message-head parsers (RFC 9110, RFC 9112)
 * and an incremental chunked-body validator.
 *
 * The parsers work on a byte buffer that may hold a partial head: call them again
 * with more bytes (the same start, a longer length) until they return a length.
 * Every struct http_str they produce points into the caller's buffer, so the buffer
 * must stay put (not grow, not be compacted) while the result is in use. The header
 * array is the caller's (typically embedded in struct conn): no allocation per request.
 *
 * The request parser is deliberately stricter than RFC 9112 where the RFC allows
 * lenience that has been used for request smuggling; each such place is marked
 * "RFC 9112 §x: deviation" in http.c. A message the parser rejects must never be
 * forwarded: the caller answers with req->r_status and closes the connection.
 *
 * Pure functions, no global state: reentrant and thread-safe.
 */
#ifndef TFG_HTTP_H
#define TFG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Return values of http_parse_request() / http_parse_response() / http_chunked_feed(). */
#define HTTP_INCOMPLETE (-1) /* need more bytes; nothing seen so far is wrong or over a limit */
#define HTTP_BAD	(-2) /* reject: the status to send is in r_status / s_status / ch_status */

/* 32 KiB default head cap: nginx's large_client_header_buffers is 4 x 8 KiB. */
#define HTTP_MAX_HEAD_DEFAULT (32u << 10)
/* 8 KiB request line: nginx's default single-line buffer; longer → 414. */
#define HTTP_MAX_LINE_DEFAULT (8u << 10)
/* Header count cap when the caller has no better idea (array capacity decides). */
#define HTTP_MAX_HEADERS 64

/* A slice of the caller's buffer: not NUL-terminated. */
struct http_str {
	const char *p;
	size_t n;
};

enum http_method {
	HTTP_M_OTHER = 0, /* a syntactically valid token we do not know → 501 */
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS,
	HTTP_M_PATCH,
	HTTP_M_CONNECT,
	HTTP_M_TRACE,
};

/* How the message body is delimited (RFC 9112 §6.3). */
enum http_framing {
	HTTP_BODY_NONE = 0, /* no body at all (request without CL/TE, HEAD response, 1xx/204/304) */
	HTTP_BODY_LENGTH,   /* exactly *_content_length bytes (may be 0) */
	HTTP_BODY_CHUNKED,  /* Transfer-Encoding: chunked; validate with http_chunked_feed() */
	HTTP_BODY_CLOSE,    /* response only: until the upstream closes; never reuse it */
};

/*
 * Header classes, so the runtime can rewrite a head without comparing names again.
 * HTTP_H_HOP is every hop-by-hop field of RFC 9110 §7.6.1 that is not named
 * separately (Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authorization,
 * Proxy-Authenticate); fields *listed* in Connection are found with http_header_is_hop().
 */
enum http_hdr_kind {
	HTTP_H_OTHER = 0,
	HTTP_H_HOST,
	HTTP_H_CONTENT_LENGTH,
	HTTP_H_TRANSFER_ENCODING,
	HTTP_H_CONNECTION,
	HTTP_H_EXPECT,
	HTTP_H_AUTHORIZATION,
	HTTP_H_X_FORWARDED, /* "X-Forwarded-*", "X-Real-IP", also spelt with '_': never trusted */
	HTTP_H_FORWARDED,   /* RFC 7239 Forwarded */
	HTTP_H_HOP,
};

struct http_header {
	struct http_str h_name;	 /* as sent (case preserved) */
	struct http_str h_value; /* leading/trailing OWS trimmed; may be empty */
	enum http_hdr_kind h_kind;
};

struct http_req {
	/* --- set by http_req_init() (the caller owns r_hdrs) --- */
	struct http_header *r_hdrs;
	size_t r_hdr_cap;  /* more header lines than this → 431 */
	size_t r_max_head; /* bytes up to and including the blank line; over → 431 */
	size_t r_max_line; /* request-line bytes; over → 414 */

	/* --- results, valid after a return > 0 --- */
	enum http_method r_method;
	struct http_str r_method_str;
	struct http_str r_target; /* origin-form: starts with '/', includes "?query" */
	struct http_str r_path;	  /* r_target up to (not including) the first '?' */
	struct http_str r_query;  /* after the '?', empty if none */
	int r_minor;		  /* HTTP/1.<r_minor>: 0 or 1 */
	struct http_str r_host;	  /* the Host value (empty for an HTTP/1.0 request without one) */
	size_t r_nhdrs;
	enum http_framing r_framing; /* HTTP_BODY_NONE, _LENGTH or _CHUNKED */
	uint64_t r_content_length;   /* valid for HTTP_BODY_LENGTH */
	bool r_expect_continue;	     /* "Expect: 100-continue" in an HTTP/1.1 request */
	bool r_keepalive; /* the client wants the connection kept (version + Connection) */
	const struct http_header *r_authorization; /* the single Authorization header, or NULL */

	/* --- results, valid after HTTP_BAD --- */
	int r_status;	     /* 400, 414, 417, 431, 501 or 505 */
	const char *r_error; /* short static reason, for the log (not for the client) */

	/* --- private: incremental scan state --- */
	size_t r_scanned;   /* bytes already known to hold no complete head */
	size_t r_linestart; /* start of the line being scanned */
	size_t r_lines;	    /* complete non-empty lines so far */
	size_t r_start;	    /* first byte of the request line (after empty lines) */
	size_t r_end;	    /* head length after a success (parsing again starts over) */
};

struct http_resp {
	/* --- set by http_resp_init() --- */
	struct http_header *s_hdrs;
	size_t s_hdr_cap;
	size_t s_max_head;

	/* --- results, valid after a return > 0 --- */
	int s_status; /* 100..599 */
	int s_minor;
	struct http_str s_reason;
	size_t s_nhdrs;
	enum http_framing s_framing; /* NONE, LENGTH, CHUNKED or CLOSE */
	uint64_t s_content_length;
	bool s_keepalive; /* the upstream connection may be reused after this response */

	/* --- results, valid after HTTP_BAD (the caller answers 502) --- */
	int s_status_err; /* always 502 */
	const char *s_error;

	/* --- private --- */
	size_t s_scanned;
	size_t s_linestart;
	size_t s_lines;
	size_t s_end;
};

/*
 * Prepares req for a new request: hdrs/cap is the caller's header array, max_head
 * and max_line the limits (0 = the defaults above). Call once per request, before
 * the first http_parse_request() on a buffer.
 */
void http_req_init(struct http_req *req, struct http_header *hdrs, size_t cap, size_t max_head,
		   size_t max_line);

/*
 * Parses the request head at p[0..n). Returns the head's length in bytes (request
 * line through the terminating empty line; the body starts at p + return value),
 * HTTP_INCOMPLETE (call again with the same p and a larger n; nothing is wrong yet and
 * no limit is exceeded), or HTTP_BAD with req->r_status / r_error set. Any empty
 * lines before the request line (RFC 9112 §2.2) are included in the length.
 * Slices point into p. Never reads p[n] or beyond.
 */
ssize_t http_parse_request(const char *p, size_t n, struct http_req *req);

/* Same as http_req_init(), for an upstream response. */
void http_resp_init(struct http_resp *resp, struct http_header *hdrs, size_t cap, size_t max_head);

/*
 * Parses an upstream response head at p[0..n). req_method is the method of the request
 * it answers (HEAD responses have no body, RFC 9110 §9.3.2). Returns the head length,
 * HTTP_INCOMPLETE or HTTP_BAD (s_error set; answer 502 and close the upstream).
 * A 1xx response (other than 101, which is HTTP_BAD: we never ask for an upgrade) is
 * returned like any other, with s_framing HTTP_BODY_NONE: forward it if it is a 100 the
 * client asked for, then parse the next head after it.
 */
ssize_t http_parse_response(const char *p, size_t n, enum http_method req_method,
			    struct http_resp *resp);

/*
 * The first header whose name equals name (ASCII case-insensitive), searching
 * hdrs[0..nhdrs), or NULL.
 */
const struct http_header *http_header_find(const struct http_header *hdrs, size_t nhdrs,
					   const char *name);

/*
 * True if the header must not be forwarded by a proxy: Connection itself, every
 * HTTP_H_HOP header, and every header whose name is listed in a Connection header of
 * the same message (RFC 9110 §7.6.1). Content-Length/Transfer-Encoding are never "hop"
 * here: the caller forwards framing byte-exact.
 */
bool http_header_is_hop(const struct http_header *hdrs, size_t nhdrs, const struct http_header *h);

/* "GET" etc. for a known method, "" for HTTP_M_OTHER. Static string. */
const char *http_method_name(enum http_method m);

/* True if name equals the n bytes at p, ASCII case-insensitively (no locale). */
bool http_str_ieq(struct http_str s, const char *name);

/*
 * Incremental validator for a chunked body (RFC 9112 §7.1). The caller forwards the
 * bytes it was told were consumed exactly as received (byte-exact, no re-encoding);
 * the validator only decides where the body ends and whether it is well-formed.
 */
struct http_chunked {
	/* --- set by http_chunked_init() --- */
	uint64_t ch_max;     /* max sum of chunk sizes; over → 413 (0 = no limit) */
	bool ch_trailers_ok; /* false (requests): any trailer field → 400 */

	/* --- results --- */
	uint64_t ch_total; /* payload bytes so far (sum of chunk sizes) */
	bool ch_done;	   /* the final CRLF after the last chunk / trailers was consumed */
	int ch_status;	   /* after HTTP_BAD: 400 or 413 (requests), the caller's choice else */
	const char *ch_error;

	/* --- private --- */
	int ch_state;
	uint64_t ch_left; /* payload bytes left in the current chunk */
	unsigned ch_digits;
	size_t ch_linelen;
	size_t ch_trailer_bytes;
};

/* max: payload limit (0 = none); trailers_ok: accept trailer fields (responses). */
void http_chunked_init(struct http_chunked *ch, uint64_t max, bool trailers_ok);

/*
 * Feeds n more body bytes. Returns how many of them belong to the chunked body (all
 * of them, unless the body ended inside p: then the rest is the next message), or
 * HTTP_BAD with ch_status / ch_error set. After ch_done, returns 0. Never reads p[n].
 * Reasons for HTTP_BAD: non-hex or empty chunk size, size over 16 hex digits or over
 * ch_max, a missing CRLF after chunk data, bare CR or LF, malformed chunk extensions
 * or trailers.
 */
ssize_t http_chunked_feed(struct http_chunked *ch, const char *p, size_t n);

#endif
