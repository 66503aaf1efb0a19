/*
 * conn: one client connection, driven by an explicit state machine.
 *
 *   TLS_HANDSHAKE → READ_HEAD → AUTH → [SEND_CONTINUE] → UPSTREAM_CONNECT → SEND_HEAD →
 *   BODY_TO_UPSTREAM → READ_RESPONSE → BODY_TO_CLIENT → KEEPALIVE | CLOSING
 *   (any state) → SEND_ERROR → KEEPALIVE | CLOSING
 *
 * Only conn_step() changes c_state. Each state's handler tries its I/O first and
 * returns the next state, CONN_WAIT (with the interest it needs on the client
 * and/or the upstream socket in c_want_c / c_want_u) or CONN_CLOSE. Trying first
 * matters for TLS: bytes OpenSSL already decrypted never wake epoll.
 *
 * Bodies are streamed without copies: request body bytes are written to the
 * backend straight out of c_in, response bytes to the client straight out of
 * c_uin. A buffer is refilled only once it has been written out, which is the
 * back-pressure: a slow reader stops reads on the other side.
 *
 * Ownership: a conn owns its buffers, its TLS object, its leased upstream and its
 * auth job (unless the verifier pool holds it). conn_close() is the one place that
 * releases them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "accesslog.h"
#include "h2.h"
#include "http.h"
#include "ident.h"
#include "log.h"
#include "proxy.h"
#include "route.h"

enum conn_state {
	CONN_TLS_HANDSHAKE,
	CONN_READ_HEAD,
	CONN_AUTH,
	CONN_SEND_CONTINUE,
	CONN_UPSTREAM_CONNECT,
	CONN_SEND_HEAD,
	CONN_BODY_TO_UPSTREAM,
	CONN_READ_RESPONSE,
	CONN_BODY_TO_CLIENT,
	CONN_SEND_ERROR,
	CONN_KEEPALIVE,
	CONN_CLOSING,
	CONN_LIMIT_QUEUE, /* waiting for an in-flight slot ([limits] queue) */
	CONN_NSTATES
};

#define CONN_WAIT  (-1)
#define CONN_CLOSE (-2)
/* conn_ident(): the credentials are Basic, go on with the Basic path */
#define CONN_IDENT_BASIC (-3)
#define CONN_GONE	 (-4) /* handed over to h2.c: c is freed */

/*
 * Lingering close: after an error answer we half-close and swallow what the client still
 * sends for up to 2 s or 64 MiB, so that its unread upload does not turn our close into an
 * RST that destroys the answer before the client read it (a client that sees the answer
 * stops sending long before either bound).
 */
#define CONN_LINGER_MS	  2000
#define CONN_LINGER_BYTES (64u << 20)
/* Our own answers (errors, 100 Continue) and rewritten response heads go through c_out. */
#define CONN_OUT_EXTRA 2048
/* Buffer for response bytes: the head limit plus room to stream the body in 16 KiB records. */
#define CONN_UIN_EXTRA (16u << 10)
#define CONN_LOG_PATH  512
/*
 * A keep-alive connection that stays idle this long gives back its buffers and header
 * arrays (about 150 KiB of address space, the touched part of it resident); the next
 * request takes them again. Busy connections keep them: no allocation per request.
 */
#define CONN_IDLE_SHRINK_MS 100
/* TLS: at most this much response body joins the head in one record (RFC 8446 §5.1). */
#define CONN_TLS_RECORD (16u << 10)

#define CONN_LOG_METHOD 16
#define CONN_LOG_UA	128

/* What only a request in progress needs: freed with the buffers of an idle connection. */
struct conn_reqmem {
	struct http_header rm_hdrs[2 * HTTP_MAX_HEADERS]; /* request fields, response fields */
	char rm_method[CONN_LOG_METHOD];
	char rm_path[CONN_LOG_PATH];
	char rm_ua[CONN_LOG_UA];
};

struct cbuf {
	char *b;
	size_t off, len, cap; /* pending data is b[off..len) */
};

struct conn {
	struct worker *c_w;
	struct conn *c_prev, *c_next;
	enum conn_state c_state;
	int c_fd;
	struct tls *c_tls;
	bool c_is_tls;
	struct tls_peer c_peer_id; /* the client certificate's verdict, after the handshake */
	unsigned c_peer_gen;	   /* the snapshot generation c_peer_id was made under */
	struct sockaddr_storage c_peer;
	socklen_t c_peerlen;
	char c_peer_text[ADDR_TEXT_MAX];
	char c_peer_ip[ADDR_TEXT_MAX];
	uint8_t c_akey[16];
	size_t c_akeylen;
	struct ev_timer c_timer;
	uint32_t c_want_c, c_want_u;
	/* The last read of the socket found it empty (short read, EAGAIN): skip reading
	 * until epoll reports EPOLLIN, which clears the flag (no read that returns EAGAIN). */
	bool c_c_drained, c_u_drained;
	bool c_idle_shrunk; /* this keep-alive period's buffers were already given back */
	bool c_linger_started;
	bool c_timed_out; /* the deadline fired: conn_step() runs conn_timeout_next() */
	size_t c_linger_bytes;

	struct cbuf c_in;   /* client → proxy: heads and request bodies */
	struct cbuf c_out;  /* proxy-made bytes for the client */
	struct cbuf c_uin;  /* backend → proxy: response heads and bodies */
	struct cbuf c_uout; /* the request head for the backend */

	/* --- the request in progress --- */
	bool c_req_active;	    /* a request head was read and is not logged yet */
	struct http_header *c_hdrs; /* then c_rhdrs: in struct conn_reqmem (conn_bufs_get) */
	struct http_req c_req;
	size_t c_head_len;
	struct route c_rt;
	bool c_routed;
	char c_user[HTPASSWD_USER_MAX]; /* set only once the password verified */
	size_t c_user_len;
	char c_try_user[HTPASSWD_USER_MAX]; /* the name the client sent, for the failure log */
	size_t c_try_user_len;
	char *c_method; /* c_method, c_path, c_ua: in the request block (struct conn_reqmem) */
	size_t c_method_len;
	char *c_path;
	size_t c_path_len;
	char *c_ua;
	size_t c_ua_len;
	uint64_t c_start_us, c_start_ms;
	int c_status;
	uint64_t c_bytes_in, c_bytes_out;
	bool c_keepalive;     /* keep the client connection after this exchange */
	bool c_body_done;     /* the whole request body went to the backend (or there is none) */
	uint64_t c_body_left; /* HTTP_BODY_LENGTH: bytes still to forward */
	struct http_chunked c_ch;
	size_t c_ch_val; /* HTTP_BODY_CHUNKED: validated bytes at c_in.off not yet sent */
	struct auth_job *c_job;
	bool c_auth_done;
	bool c_retried;

	/* --- the backend side --- */
	struct upstream *c_up;
	bool c_up_bytes; /* the backend sent something for this request */
	struct http_header *c_rhdrs;
	struct http_resp c_resp;
	uint64_t c_rbody_left;
	struct http_chunked c_rch;
	size_t c_rch_val;
	bool c_resp_started; /* response bytes went to the client: no error page possible */

	/* --- [limits] (limit.h) --- */
	enum limit_kind c_limit;  /* which limit refused this request, LIMIT_NONE if none */
	const char *c_auth_limit; /* "auth_fail"/"auth_inflight": refused by the login throttle */
	bool c_lim_held;	  /* holds an in-flight slot of c_user: released once */
	bool c_lim_queued;	  /* waits in c_user's queue */
	uint64_t c_lim_deadline;  /* queue_timeout, on the loop's ms clock */
};

static const char *const conn_state_names[CONN_NSTATES] = {
	"tls_handshake", "read_head",	     "auth",	      "send_continue",	"upstream_connect",
	"send_head",	 "body_to_upstream", "read_response", "body_to_client", "send_error",
	"keepalive",	 "closing",	     "limit_queue",
};

static void conn_step(struct conn *c);
static void conn_close(struct conn *c);
static void conn_timeout_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg);
static int conn_timeout_next(struct conn *c);
static void conn_resp_coalesce(struct conn *c);

/* Pushes the current phase's deadline back after progress (body idle timeouts). */
static void conn_rearm(struct conn *c, uint64_t ms)
{
	ev_timer_add(c->c_w->w_loop, &c->c_timer, ms, conn_timeout_cb, c);
}

static const struct conf_proxy *conn_cfg(const struct conn *c)
{
	return &c->c_w->w_px->px_conf.c_proxy;
}

static uint64_t conn_wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

/* ---- buffers ---------------------------------------------------------------------------- */

static int cbuf_alloc(struct cbuf *b, size_t cap)
{
	if (b->b != NULL)
		return 0;
	b->b = malloc(cap);
	if (b->b == NULL)
		return -1;
	b->cap = cap;
	b->off = b->len = 0;
	return 0;
}

static void cbuf_free(struct cbuf *b, bool wipe)
{
	if (b->b != NULL && wipe)
		explicit_bzero(b->b, b->len);
	free(b->b);
	*b = (struct cbuf){ 0 };
}

static size_t cbuf_pending(const struct cbuf *b)
{
	return b->len - b->off;
}

/* Moves pending bytes to the front (never while slices point into the buffer). */
static void cbuf_compact(struct cbuf *b)
{
	size_t n = b->len - b->off;

	if (b->off == 0)
		return;
	if (n > 0)
		memmove(b->b, b->b + b->off, n);
	b->off = 0;
	b->len = n;
}

static int cbuf_put(struct cbuf *b, const void *p, size_t n)
{
	if (b->cap - b->len < n)
		return -1;
	memcpy(b->b + b->len, p, n);
	b->len += n;
	return 0;
}

static int cbuf_puts(struct cbuf *b, const char *s)
{
	return cbuf_put(b, s, strlen(s));
}

static int cbuf_printf(struct cbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cbuf_printf(struct cbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->b + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		return -1;
	b->len += (size_t)n;
	return 0;
}

/* What a request needs on the client side: c_in, c_out and the header arrays. */
static int conn_bufs_get(struct conn *c)
{
	const struct conf_proxy *p = conn_cfg(c);

	if (c->c_hdrs == NULL) {
		struct conn_reqmem *rm = malloc(sizeof(*rm));

		if (rm == NULL)
			return -1;
		c->c_hdrs = rm->rm_hdrs; /* the first member: free(c_hdrs) frees rm */
		c->c_rhdrs = rm->rm_hdrs + HTTP_MAX_HEADERS;
		c->c_method = rm->rm_method;
		c->c_path = rm->rm_path;
		c->c_ua = rm->rm_ua;
	}
	if (cbuf_alloc(&c->c_in, p->p_max_header_bytes + 4096) < 0 ||
	    cbuf_alloc(&c->c_out, p->p_max_header_bytes + CONN_OUT_EXTRA) < 0)
		return -1;
	return 0;
}

/* Gives back every buffer (idle keep-alive, close); c_in held the Authorization header. */
static void conn_bufs_release(struct conn *c)
{
	cbuf_free(&c->c_in, true);
	cbuf_free(&c->c_out, false);
	cbuf_free(&c->c_uin, false);
	cbuf_free(&c->c_uout, false);
	free(c->c_hdrs);
	c->c_hdrs = c->c_rhdrs = NULL;
	c->c_method = c->c_path = c->c_ua = NULL;
}

/* ---- I/O: client (TLS or plain) and backend (plain) ---------------------------------------- */

/* Bytes read, 0 at EOF, TLS_WANT_READ/TLS_WANT_WRITE, or -1. */
static ssize_t conn_cread(struct conn *c, void *p, size_t n)
{
	ssize_t r;

	if (c->c_c_drained && (c->c_tls == NULL || !tls_pending(c->c_tls)))
		return TLS_WANT_READ;
	if (c->c_tls != NULL)
		return tls_read(c->c_tls, p, n);
	r = recv(c->c_fd, p, n, 0);
	if (r < 0) {
		c->c_c_drained = errno == EAGAIN;
		return (errno == EAGAIN || errno == EINTR) ? TLS_WANT_READ : -1;
	}
	c->c_c_drained = (size_t)r < n;
	return r;
}

/* Bytes written (> 0), TLS_WANT_READ/TLS_WANT_WRITE, or -1. */
static ssize_t conn_cwrite(struct conn *c, const void *p, size_t n)
{
	ssize_t r;

	if (c->c_tls != NULL)
		return tls_write(c->c_tls, p, n);
	r = send(c->c_fd, p, n, MSG_NOSIGNAL);
	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? TLS_WANT_WRITE : -1;
	return r;
}

static int conn_want(struct conn *c, ssize_t r)
{
	c->c_want_c |= r == TLS_WANT_WRITE ? EV_WRITE : EV_READ;
	return CONN_WAIT;
}

/* Flushes c_out. 1 when empty, CONN_WAIT, or CONN_CLOSE. */
static int conn_flush(struct conn *c)
{
	while (cbuf_pending(&c->c_out) > 0) {
		ssize_t r = conn_cwrite(c, c->c_out.b + c->c_out.off, cbuf_pending(&c->c_out));

		if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
			return conn_want(c, r);
		if (r <= 0)
			return CONN_CLOSE;
		c->c_out.off += (size_t)r;
		c->c_bytes_out += (uint64_t)r;
	}
	c->c_out.off = c->c_out.len = 0;
	return 1;
}

static ssize_t conn_uread(struct conn *c, void *p, size_t n)
{
	ssize_t r;

	if (c->c_u_drained)
		return TLS_WANT_READ;
	r = recv(c->c_up->u_fd, p, n, 0);
	c->c_u_drained = r < 0 ? errno == EAGAIN : (size_t)r < n;
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return TLS_WANT_READ;
	return r;
}

static ssize_t conn_uwrite(struct conn *c, const void *p, size_t n)
{
	ssize_t r = send(c->c_up->u_fd, p, n, MSG_NOSIGNAL);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return TLS_WANT_WRITE;
	return r;
}

/* ---- upstream lifetime ------------------------------------------------------------------- */

static void conn_up_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg);

static void conn_up_release(struct conn *c, bool reusable)
{
	if (c->c_up == NULL)
		return;
	upstream_release(c->c_up, reusable);
	c->c_up = NULL;
	/* Bytes the old backend connection sent past its response must never be parsed as
	 * the next response (that would desynchronise requests and answers). */
	c->c_uin.off = c->c_uin.len = 0;
}

/* ---- limits ([limits], see limit.h) ------------------------------------------------------ */

static const struct conf_limits *conn_limits(struct conn *c)
{
	return &worker_snap(c->c_w)->s_conf.c_limits;
}

/* The request is over, whatever the reason: give back its slot or queue place, once. */
static void conn_limit_end(struct conn *c)
{
	struct limit *l = c->c_w->w_px->px_limit;

	if (c->c_lim_held)
		limit_inflight_release(l, c->c_user, c->c_user_len);
	if (c->c_lim_queued)
		limit_inflight_dequeue(l, c->c_user, c->c_user_len, false);
	c->c_lim_held = c->c_lim_queued = false;
}

static int conn_error(struct conn *c, int status, const char *msg, const char *extra);

/* 429 for limit k; the request never reaches the backend. */
static int conn_limited(struct conn *c, enum limit_kind k, unsigned retry_s)
{
	static const char *const msgs[LIMIT_NKINDS] = {
		[LIMIT_CLIENT] = "Too many requests from this address; retry later",
		[LIMIT_USER] = "Too many requests for this user; retry later",
		[LIMIT_MODEL] = "Too many requests for this model; retry later",
		[LIMIT_INFLIGHT] = "Too many requests in flight for this user; retry later",
		[LIMIT_QUEUE_TIMEOUT] = "Too many requests in flight for this user (waited "
					"queue_timeout); retry later",
	};
	char hdr[48];

	c->c_limit = k;
	snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", retry_s ? retry_s : 1);
	return conn_error(c, 429, msgs[k], hdr);
}

/* ---- logging ---------------------------------------------------------------------------- */

static void conn_log_request(struct conn *c)
{
	struct alog_rec r;
	uint64_t dur;
	const char *model = c->c_routed ? c->c_rt.rt_model : "";
	size_t mlen = c->c_routed ? c->c_rt.rt_model_len : 0;

	conn_limit_end(c);
	if (!c->c_req_active)
		return;
	c->c_req_active = false;
	dur = (ev_now(c->c_w->w_loop) - c->c_start_ms) * 1000u;
	{
		/* µs resolution: the wall clock, bounded below by the loop's ms clock. */
		uint64_t wall = conn_wall_us();

		if (wall > c->c_start_us)
			dur = wall - c->c_start_us;
	}
	if (c->c_status == 0)
		c->c_status = 499; /* the client went away before an answer (nginx's code) */
	r = (struct alog_rec){
		.ar_start_us = c->c_start_us,
		.ar_dur_us = dur,
		.ar_client = c->c_peer_text,
		.ar_user = c->c_user,
		.ar_userlen = c->c_user_len,
		.ar_model = model,
		.ar_modellen = mlen,
		.ar_method = c->c_method,
		.ar_methodlen = c->c_method_len,
		.ar_path = c->c_path,
		.ar_pathlen = c->c_path_len,
		.ar_ua = c->c_ua,
		.ar_ualen = c->c_ua_len,
		.ar_status = c->c_status,
		.ar_bytes_in = c->c_bytes_in,
		.ar_bytes_out = c->c_bytes_out,
		.ar_limit = c->c_auth_limit ? c->c_auth_limit : limit_name(c->c_limit),
	};
	accesslog_write_buf(&c->c_w->w_alog, &r);
	metrics_request(&c->c_w->w_m, model, mlen, c->c_status, dur);
	metrics_add(&c->c_w->w_m.m_bytes_in, c->c_bytes_in);
	metrics_add(&c->c_w->w_m.m_bytes_out, c->c_bytes_out);
}

/*
 * One line per failed login, for fail2ban:
 *   tfguard-proxy: auth: failed login from 192.0.2.7 user "bob" (wrong password or unknown user)
 * The user name is what the client sent, escaped (never the password).
 */
static void conn_log_auth_fail(struct conn *c, const char *user, size_t ulen, const char *why)
{
	char esc[256];

	accesslog_escape(esc, sizeof(esc), user, ulen, 0);
	log_warn("auth: failed login from %s user \"%s\" (%s)", c->c_peer_ip, esc, why);
}

/*
 * Backend trouble is logged at most once a second per worker: with the backend down,
 * every request fails the same way and the log must not grow with the request rate.
 * The metrics count every occurrence.
 */
static void conn_log_backend(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_log_backend(struct conn *c, const char *fmt, ...)
{
	struct worker *w = c->c_w;
	uint64_t now = ev_now(w->w_loop);
	va_list ap;

	if (w->w_backend_logged != 0 && now - w->w_backend_logged < 1000)
		return;
	w->w_backend_logged = now;
	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_WARN, fmt, ap);
	va_end(ap);
}

/*
 * 429 for an address the failure throttle blocks, or (busy) whose guesses being verified
 * plus its failures already reach auth_fail_limit. Logged at most once a second per
 * worker, with the number of refusals since the last line: a client retrying in a loop
 * must not flood the log (each failed login itself is still one line, for fail2ban).
 */
static int conn_throttled(struct conn *c, unsigned wait, bool busy)
{
	struct worker *w = c->c_w;
	uint64_t now = ev_now(w->w_loop);
	char hdr[64];

	metrics_add(busy ? &w->w_m.m_auth_busy : &w->w_m.m_auth_throttled, 1);
	c->c_auth_limit = busy ? "auth_inflight" : "auth_fail";
	if (w->w_throttle_logged == 0 || now - w->w_throttle_logged >= 1000) {
		if (busy)
			log_warn(
			    "auth: busy %s: auth_fail_limit logins from this address being "
			    "verified or failed; retry in 1 s (%lu more refusals in this worker "
			    "since the last line)",
			    c->c_peer_ip, w->w_throttle_quiet);
		else
			log_warn("auth: throttled %s for %u s (too many failed logins; %lu more "
				 "refusals in this worker since the last line)",
				 c->c_peer_ip, wait, w->w_throttle_quiet);
		w->w_throttle_logged = now;
		w->w_throttle_quiet = 0;
	} else {
		w->w_throttle_quiet++;
	}
	snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", wait);
	if (busy)
		return conn_error(c, 429, "Too many logins from this address being verified; retry",
				  hdr);
	return conn_error(c, 429, "Too many failed logins from this address", hdr);
}

/* ---- answers made by the proxy ---------------------------------------------------------- */

static const char *conn_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

/*
 * Queues a TF Serving-shaped error, {"error": "..."}, and returns CONN_SEND_ERROR, or
 * CONN_CLOSE when the response has already begun. The connection is kept only when
 * the request was read completely and the client asked for keep-alive.
 */
static int conn_error(struct conn *c, int status, const char *msg, const char *extra)
{
	char body[512];
	int n;

	if (c->c_resp_started)
		return CONN_CLOSE;
	conn_up_release(c, false);
	c->c_status = status;
	if (!c->c_body_done)
		c->c_keepalive = false;
	n = snprintf(body, sizeof(body), "{ \"error\": \"%s\" }\n", msg);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	c->c_out.off = c->c_out.len = 0;
	if (cbuf_printf(&c->c_out,
			"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
			"%s%s\r\n%s",
			status, conn_reason(status), n, extra ? extra : "",
			c->c_keepalive ? (c->c_req.r_minor == 0 ? "Connection: keep-alive\r\n" : "")
				       : "Connection: close\r\n",
			body) < 0)
		return CONN_CLOSE;
	return CONN_SEND_ERROR;
}

/*
 * 401 with one challenge per accepted scheme, in the configured order. With auth = mtls
 * alone there is no HTTP scheme to name, so no WWW-Authenticate (a deviation from RFC
 * 9110 §15.5.2's MUST: a made-up scheme would mislead clients more than none).
 */
static int conn_error_401(struct conn *c, const char *msg)
{
	const struct conf_proxy *sp = &worker_snap(c->c_w)->s_conf.c_proxy;
	char hdr[800];

	ident_challenge(sp->p_auth, sp->p_auth_order, sp->p_nauth, sp->p_realm, hdr, sizeof(hdr));
	return conn_error(c, 401, msg, hdr);
}

/* ---- the request ------------------------------------------------------------------------- */

static void conn_copy(char *dst, size_t cap, size_t *dlen, const char *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	*dlen = n;
}

/* Writes the backend's request head into c_uout: hop-by-hop and credentials out, ours in. */
static int conn_build_upstream_head(struct conn *c)
{
	const struct http_req *q = &c->c_req;
	struct cbuf *o = &c->c_uout;
	size_t i;
	bool host = false;

	o->off = o->len = 0;
	if (cbuf_put(o, q->r_method_str.p, q->r_method_str.n) < 0 || cbuf_puts(o, " ") < 0 ||
	    cbuf_put(o, q->r_target.p, q->r_target.n) < 0 || cbuf_puts(o, " HTTP/1.1\r\n") < 0)
		return -1;
	for (i = 0; i < q->r_nhdrs; i++) {
		const struct http_header *h = &q->r_hdrs[i];

		switch (h->h_kind) {
		case HTTP_H_AUTHORIZATION: /* the backend must never see credentials */
		case HTTP_H_X_FORWARDED:   /* replaced below, never trusted */
		case HTTP_H_FORWARDED:
		case HTTP_H_CONNECTION:
		case HTTP_H_HOP:
		case HTTP_H_EXPECT: /* 100-continue is answered here, not by the backend */
			continue;
		case HTTP_H_HOST:
			host = true;
			break;
		default:
			if (http_header_is_hop(q->r_hdrs, q->r_nhdrs, h))
				continue;
			/* X-Forwarded-User under any spelling is ours alone. */
			if (http_str_ieq(h->h_name, "X-Forwarded-User"))
				continue;
			break;
		}
		if (cbuf_put(o, h->h_name.p, h->h_name.n) < 0 || cbuf_puts(o, ": ") < 0 ||
		    cbuf_put(o, h->h_value.p, h->h_value.n) < 0 || cbuf_puts(o, "\r\n") < 0)
			return -1;
	}
	if (!host &&
	    cbuf_printf(o, "Host: %s\r\n", c->c_w->w_px->px_conf.c_proxy.p_backend_rest.a_text) < 0)
		return -1;
	/* no printf on the per-request path: it cost 1,900 instructions a request */
	if (cbuf_puts(o, "X-Forwarded-For: ") < 0 || cbuf_puts(o, c->c_peer_ip) < 0 ||
	    cbuf_puts(o, c->c_is_tls ? "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-User: "
				     : "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-User: ") < 0 ||
	    cbuf_put(o, c->c_user, c->c_user_len) < 0 || cbuf_puts(o, "\r\n\r\n") < 0)
		return -1;
	return 0;
}

static int conn_forward(struct conn *c);

/* After route and ACL: the model's rate, then the user's in-flight slot (or queue). */
static int conn_limit_admit(struct conn *c)
{
	struct limit *l = c->c_w->w_px->px_limit;
	const struct conf_limits *cl = conn_limits(c);
	enum limit_kind k;
	unsigned wait = 0;

	k = limit_check_model(l, cl, c->c_rt.rt_model, c->c_rt.rt_model_len, limit_now_ns(), &wait);
	if (k != LIMIT_NONE)
		return conn_limited(c, k, wait);
	switch (limit_inflight_acquire(l, cl, c->c_user, c->c_user_len)) {
	case LIMIT_SLOT_HELD:
		c->c_lim_held = true;
		break;
	case LIMIT_SLOT_QUEUED:
		c->c_lim_queued = true;
		c->c_lim_deadline = ev_now(c->c_w->w_loop) + cl->l_queue_timeout_ms;
		return CONN_LIMIT_QUEUE;
	case LIMIT_SLOT_REFUSED:
		return conn_limited(c, LIMIT_INFLIGHT, 1);
	case LIMIT_SLOT_FREE:
		break;
	}
	return conn_forward(c);
}

/* The user is known to be who they say: user limit, route, ACL, then forward. */
static int conn_authorized(struct conn *c)
{
	struct snap *s = worker_snap(c->c_w);
	const struct http_req *q = &c->c_req;
	enum limit_kind k;
	unsigned wait = 0;

	metrics_add(&c->c_w->w_m.m_auth_ok, 1);
	k = limit_check_user(c->c_w->w_px->px_limit, &s->s_conf.c_limits, c->c_user, c->c_user_len,
			     limit_now_ns(), &wait);
	if (k != LIMIT_NONE)
		return conn_limited(c, k, wait);
	if (route_match(q->r_method, q->r_target.p, q->r_target.n, &c->c_rt) < 0) {
		if (c->c_rt.rt_status == 405)
			return conn_error(c, 405, "Method not allowed for this path",
					  "Allow: GET, POST\r\n");
		if (c->c_rt.rt_status == 404)
			return conn_error(c, 404,
					  "Not found: tfguard-proxy forwards only the "
					  "TensorFlow Serving REST API",
					  NULL);
		return conn_error(c, c->c_rt.rt_status ? c->c_rt.rt_status : 400,
				  c->c_rt.rt_error ? c->c_rt.rt_error : "Malformed request", NULL);
	}
	if (!route_acl_allows(&s->s_conf, c->c_user, &c->c_rt))
		return conn_error(c, 403, "Permission denied: this user may not call this model",
				  NULL);
	c->c_routed = true;
	return conn_limit_admit(c);
}

/* Routed, allowed and within every limit: prepare the backend request. */
static int conn_forward(struct conn *c)
{
	const struct http_req *q = &c->c_req;

	if (cbuf_alloc(&c->c_uout, conn_cfg(c)->p_max_header_bytes + 1024) < 0 ||
	    cbuf_alloc(&c->c_uin, conn_cfg(c)->p_max_header_bytes + CONN_UIN_EXTRA) < 0)
		return conn_error(c, 500, "Out of memory", NULL);
	if (conn_build_upstream_head(c) < 0)
		return conn_error(c, 431, "Request headers too large", NULL);
	/* RFC 9110 §10.1.1: answer 100 ourselves, only once the request may proceed. */
	if (q->r_expect_continue && !c->c_body_done && cbuf_pending(&c->c_in) == 0) {
		c->c_out.off = c->c_out.len = 0;
		if (cbuf_puts(&c->c_out, "HTTP/1.1 100 Continue\r\n\r\n") < 0)
			return CONN_CLOSE;
		return CONN_SEND_CONTINUE;
	}
	return CONN_UPSTREAM_CONNECT;
}

/*
 * Client certificate, bearer token and conflicts (ident.h). Returns the next state, or
 * CONN_IDENT_BASIC when Basic credentials remain to be verified by the Basic path.
 */
/*
 * The certificate verdict is the handshake's, under that time's TLS context. After a
 * reload (CA, CRL, client_cert, client_user_from) it is made again under the current one,
 * and a certificate past its notAfter is refused (a keep-alive or resumed connection never
 * saw it expire). A refused certificate also ends the connection.
 */
static void conn_peer_refresh(struct conn *c, struct snap *s)
{
	struct tls_peer *p = &c->c_peer_id;

	if (c->c_peer_gen != c->c_w->w_gen) {
		c->c_peer_gen = c->c_w->w_gen;
		tls_peer_recheck(c->c_tls, s->s_tls,
				 s->s_conf.c_proxy.p_client_user_from == CONF_USER_FROM_SAN, p);
	}
	if (p->tp_state == TLS_PEER_OK && time(NULL) > p->tp_not_after) {
		p->tp_state = TLS_PEER_REJECTED;
		snprintf(p->tp_why, sizeof(p->tp_why),
			 "client certificate not verified: certificate has expired");
	}
	if (p->tp_state == TLS_PEER_REJECTED)
		c->c_keepalive = false;
}

static int conn_ident(struct conn *c)
{
	struct worker *w = c->c_w;
	struct snap *s = worker_snap(w);
	const struct conf_proxy *sp = &s->s_conf.c_proxy;
	const struct http_header *a = c->c_req.r_authorization;
	struct ident_ctx ctx = { sp->p_auth, sp->p_auth_order, sp->p_nauth, w->w_px->px_auth,
				 w->w_px->px_tokens };
	struct ident id;
	enum ident_result r;

	if (c->c_tls != NULL && (sp->p_auth & CONF_AUTH_MTLS))
		conn_peer_refresh(c, s);
	r = ident_resolve(&ctx, a ? a->h_value.p : NULL, a ? a->h_value.n : 0,
			  c->c_tls ? &c->c_peer_id : NULL, c->c_akey, c->c_akeylen, &id);
	if (r == IDENT_BASIC)
		return CONN_IDENT_BASIC;
	if (a != NULL)
		explicit_bzero((void *)a->h_value.p, a->h_value.n);
	switch (r) {
	case IDENT_OK:
		conn_copy(c->c_user, sizeof(c->c_user), &c->c_user_len, id.id_user, id.id_user_len);
		log_debug("%s: user %s by %s", c->c_peer_text, c->c_user,
			  ident_method_name(id.id_method));
		return conn_authorized(c);
	case IDENT_NONE:
		return conn_error_401(c, "Authentication required");
	case IDENT_FAIL:
		metrics_add(&w->w_m.m_auth_failures, 1);
		conn_log_auth_fail(c, "", 0, id.id_why);
		return conn_error_401(c, "Invalid credentials");
	case IDENT_CONFLICT:
		log_warn("auth: refused request from %s (%s)", c->c_peer_ip, id.id_why);
		return conn_error(c, 400, "Two different identities in one request", NULL);
	default:
		return conn_error(c, 500, "Credential check failed", NULL);
	}
}

/* A complete head is in c_in[0..c_head_len). Decides everything before any byte goes out. */
static int conn_request(struct conn *c)
{
	struct worker *w = c->c_w;
	const struct conf_proxy *p = conn_cfg(c);
	struct http_req *q = &c->c_req;
	const struct http_header *ua;
	enum auth_basic ab;
	bool busy;
	enum limit_kind lk;
	unsigned wait = 0;
	int next;

	c->c_req_active = true;
	c->c_start_ms = ev_now(w->w_loop);
	c->c_start_us = conn_wall_us();
	conn_copy(c->c_method, CONN_LOG_METHOD, &c->c_method_len, q->r_method_str.p,
		  q->r_method_str.n);
	conn_copy(c->c_path, CONN_LOG_PATH, &c->c_path_len, q->r_target.p, q->r_target.n);
	ua = http_header_find(q->r_hdrs, q->r_nhdrs, "User-Agent");
	if (ua != NULL)
		conn_copy(c->c_ua, CONN_LOG_UA, &c->c_ua_len, ua->h_value.p, ua->h_value.n);
	c->c_in.off = c->c_head_len;
	c->c_keepalive = q->r_keepalive && !w->w_draining;
	switch (q->r_framing) {
	case HTTP_BODY_LENGTH:
		c->c_body_left = q->r_content_length;
		c->c_body_done = q->r_content_length == 0;
		break;
	case HTTP_BODY_CHUNKED:
		http_chunked_init(&c->c_ch, p->p_max_body, false);
		c->c_body_done = false;
		break;
	default:
		c->c_body_done = true;
		break;
	}
	/* Cheap refusals first: none of them needs credentials. */
	if (q->r_method == HTTP_M_OTHER) {
		c->c_keepalive = false;
		return conn_error(c, 501, "Method not implemented", NULL);
	}
	if (q->r_method != HTTP_M_GET && q->r_method != HTTP_M_POST)
		return conn_error(c, 405, "Method not allowed: only GET and POST are forwarded",
				  "Allow: GET, POST\r\n");
	if (q->r_framing == HTTP_BODY_LENGTH && q->r_content_length > p->p_max_body)
		return conn_error(c, 413, "Request body larger than max_body", NULL);

	/* The client limit comes before authentication: it also bounds password guessing. */
	lk = limit_check_client(w->w_px->px_limit, conn_limits(c), c->c_akey, c->c_akeylen,
				limit_now_ns(), &wait);
	if (lk != LIMIT_NONE)
		return conn_limited(c, lk, wait);
	wait = auth_throttle_check(w->w_px->px_auth, c->c_akey, c->c_akeylen, auth_now_ms());
	if (wait > 0)
		return conn_throttled(c, wait, false);
	next = conn_ident(c);
	if (next != CONN_IDENT_BASIC)
		return next;
	if (q->r_authorization == NULL)
		return conn_error_401(c, "Authentication required");
	ab = auth_basic_decode(q->r_authorization->h_value.p, q->r_authorization->h_value.n,
			       &w->w_cred);
	if (ab == AUTH_BASIC_MISSING) {
		explicit_bzero((void *)q->r_authorization->h_value.p,
			       q->r_authorization->h_value.n);
		return conn_error_401(c, "Authentication required");
	}
	if (ab == AUTH_BASIC_MALFORMED) {
		explicit_bzero((void *)q->r_authorization->h_value.p,
			       q->r_authorization->h_value.n);
		metrics_add(&w->w_m.m_auth_failures, 1);
		auth_throttle_fail(w->w_px->px_auth, c->c_akey, c->c_akeylen, auth_now_ms());
		conn_log_auth_fail(c, "", 0, "malformed Authorization header");
		return conn_error_401(c, "Malformed Authorization header");
	}
	if (auth_cache_lookup(w->w_px->px_auth, &w->w_cred, auth_now_ms()) == 1) {
		metrics_add(&w->w_m.m_cache_hits, 1);
		conn_copy(c->c_user, sizeof(c->c_user), &c->c_user_len, w->w_cred.ac_user,
			  w->w_cred.ac_user_len);
		auth_cred_wipe(&w->w_cred);
		explicit_bzero((void *)q->r_authorization->h_value.p,
			       q->r_authorization->h_value.n);
		return conn_authorized(c);
	}
	conn_copy(c->c_try_user, sizeof(c->c_try_user), &c->c_try_user_len, w->w_cred.ac_user,
		  w->w_cred.ac_user_len);
	auth_cred_wipe(&w->w_cred);
	c->c_job = auth_job_new();
	if (c->c_job == NULL)
		return conn_error(c, 503, "Out of memory", NULL);
	/* Decoded again straight into the job: the cred's pointers point into its own buffer. */
	(void)auth_basic_decode(q->r_authorization->h_value.p, q->r_authorization->h_value.n,
				&c->c_job->aj_cred);
	explicit_bzero((void *)q->r_authorization->h_value.p, q->r_authorization->h_value.n);
	c->c_job->aj_arg = c;
	memcpy(c->c_job->aj_addr, c->c_akey, sizeof(c->c_job->aj_addr));
	c->c_job->aj_addrlen = (uint8_t)c->c_akeylen;
	snprintf(c->c_job->aj_peer, sizeof(c->c_job->aj_peer), "%s", c->c_peer_ip);
	c->c_auth_done = false;
	switch (auth_submit(w->w_px->px_auth, c->c_job, w->w_aq)) {
	case 0:
		return CONN_AUTH;
	case AUTH_SUBMIT_THROTTLED:
	case AUTH_SUBMIT_BUSY:
		wait = c->c_job->aj_retry;
		busy = c->c_job->aj_busy;
		auth_job_free(c->c_job);
		c->c_job = NULL;
		return conn_throttled(c, wait, busy);
	default:
		auth_job_free(c->c_job);
		c->c_job = NULL;
		return conn_error(c, 503, "Too many logins being verified; retry later",
				  "Retry-After: 1\r\n");
	}
}

/* ---- state handlers ------------------------------------------------------------------------ */

/* Takes c out of its worker's list of connections. */
static void conn_unlink(struct worker *w, struct conn *c)
{
	if (c->c_prev != NULL)
		c->c_prev->c_next = c->c_next;
	else
		w->w_conns = c->c_next;
	if (c->c_next != NULL)
		c->c_next->c_prev = c->c_prev;
}

/* ALPN chose h2: the gRPC path (h2.c) takes the socket, the TLS object and the count. */
static int conn_to_h2(struct conn *c)
{
	struct worker *w = c->c_w;

	ev_timer_del(w->w_loop, &c->c_timer);
	conn_unlink(w, c);
	if (c->c_tls != NULL && (worker_snap(w)->s_conf.c_proxy.p_auth & CONF_AUTH_MTLS))
		conn_peer_refresh(c, worker_snap(w)); /* h2 takes the verdict as of now */
	if (c->c_tls != NULL)
		tls_track_reads(c->c_tls, NULL); /* its flag lives in c, freed below */
	h2_accept(w, c->c_fd, c->c_tls, c->c_tls ? &c->c_peer_id : NULL, c->c_peer_text,
		  c->c_peer_ip, c->c_akey, c->c_akeylen);
	conn_bufs_release(c);
	free(c);
	return CONN_GONE;
}

static int conn_h_tls_handshake(struct conn *c)
{
	int r;

	if (c->c_tls == NULL) {
		unsigned char b;
		ssize_t n = recv(c->c_fd, &b, 1, MSG_PEEK);
		struct snap *s;

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			c->c_want_c = EV_READ;
			return CONN_WAIT;
		}
		if (n <= 0)
			return CONN_CLOSE;
		if (b != 0x16) { /* not a TLS handshake record */
			if (b >= 'A' && b <= 'Z') {
				c->c_keepalive = false;
				c->c_body_done = false;
				c->c_out.off = c->c_out.len = 0;
				log_debug("%s: plain HTTP on the TLS port", c->c_peer_text);
				return conn_error(c, 400,
						  "The plain HTTP request was sent to the HTTPS "
						  "port; use https://",
						  NULL);
			}
			metrics_add(&c->c_w->w_m.m_tls_failures, 1);
			return CONN_CLOSE;
		}
		s = worker_snap(c->c_w);
		c->c_tls = tls_new(s->s_tls, c->c_fd);
		if (c->c_tls == NULL)
			return CONN_CLOSE;
		c->c_peer_gen = c->c_w->w_gen;
		tls_track_reads(c->c_tls, &c->c_c_drained);
	}
	r = tls_handshake(c->c_tls);
	if (r == 1) {
		const struct conf_proxy *sp = &worker_snap(c->c_w)->s_conf.c_proxy;

		if (sp->p_auth & CONF_AUTH_MTLS)
			tls_peer_get(c->c_tls, sp->p_client_user_from == CONF_USER_FROM_SAN,
				     &c->c_peer_id);
		return tls_alpn_h2(c->c_tls) ? conn_to_h2(c) : CONN_READ_HEAD;
	}
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
		return conn_want(c, r);
	metrics_add(&c->c_w->w_m.m_tls_failures, 1);
	return CONN_CLOSE;
}

static int conn_h_read_head(struct conn *c)
{
	for (;;) {
		ssize_t r;

		if (cbuf_pending(&c->c_in) > 0) {
			r = http_parse_request(c->c_in.b, c->c_in.len, &c->c_req);
			if (r > 0) {
				c->c_head_len = (size_t)r;
				return conn_request(c);
			}
			if (r == HTTP_BAD) {
				/* Never forwarded; the connection is not reused (framing unknown). */
				c->c_req_active = true;
				c->c_start_ms = ev_now(c->c_w->w_loop);
				c->c_start_us = conn_wall_us();
				c->c_body_done = false;
				c->c_keepalive = false;
				conn_copy(c->c_path, CONN_LOG_PATH, &c->c_path_len, "-", 1);
				log_debug("%s: rejected request: %s", c->c_peer_text,
					  c->c_req.r_error ? c->c_req.r_error : "bad request");
				/* CONNECT's authority-form target fails parsing: say 405 all the same. */
				if (c->c_in.len >= 8 && memcmp(c->c_in.b, "CONNECT ", 8) == 0)
					return conn_error(c, 405, "CONNECT is not supported",
							  "Allow: GET, POST\r\n");
				return conn_error(
				    c, c->c_req.r_status ? c->c_req.r_status : 400,
				    c->c_req.r_status == 431   ? "Request header fields too large"
				    : c->c_req.r_status == 414 ? "URI too long"
				    : c->c_req.r_status == 501 ? "Not implemented"
				    : c->c_req.r_status == 505 ? "HTTP version not supported"
				    : c->c_req.r_status == 417 ? "Expectation failed"
							       : "Malformed request",
				    NULL);
			}
		}
		if (c->c_in.len == c->c_in.cap) {
			/* The parser said "incomplete" with the cap reached: over the limit. */
			c->c_keepalive = false;
			c->c_req_active = true;
			c->c_start_us = conn_wall_us();
			c->c_start_ms = ev_now(c->c_w->w_loop);
			return conn_error(c, 431, "Request header fields too large", NULL);
		}
		r = conn_cread(c, c->c_in.b + c->c_in.len, c->c_in.cap - c->c_in.len);
		if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
			return conn_want(c, r);
		if (r <= 0)
			return CONN_CLOSE;
		c->c_in.len += (size_t)r;
	}
}

static int conn_h_auth(struct conn *c)
{
	struct auth_job *j = c->c_job;
	enum auth_result res;
	struct worker *w = c->c_w;

	if (!c->c_auth_done || j == NULL)
		return CONN_WAIT; /* the verifier pool has it; conn_auth_ready() resumes us */
	res = j->aj_result;
	if (res == AUTH_OK) {
		conn_copy(c->c_user, sizeof(c->c_user), &c->c_user_len, c->c_try_user,
			  c->c_try_user_len);
	} else if (res == AUTH_FAIL) {
		/* the pool has counted it in the throttle already (aj_fail_counted) */
		metrics_add(&w->w_m.m_auth_failures, 1);
		conn_log_auth_fail(c, c->c_try_user, c->c_try_user_len,
				   "wrong password or unknown user");
	}
	auth_job_free(j);
	c->c_job = NULL;
	if (res == AUTH_OK)
		return conn_authorized(c);
	if (res == AUTH_FAIL)
		return conn_error_401(c, "Invalid credentials");
	return conn_error(c, 500, "Credential check failed", NULL);
}

static int conn_h_send_continue(struct conn *c)
{
	int r = conn_flush(c);

	if (r != 1)
		return r;
	c->c_bytes_out = 0; /* the interim answer is not part of the response size */
	return CONN_UPSTREAM_CONNECT;
}

static int conn_h_upstream_connect(struct conn *c)
{
	struct worker *w = c->c_w;
	int r;

	if (c->c_up == NULL) {
		c->c_up = upstream_lease(&w->w_pool, c->c_retried, conn_up_cb, c);
		if (c->c_up == NULL) {
			metrics_add(&w->w_m.m_up_errors[METRICS_UP_CONNECT], 1);
			conn_log_backend(c, "backend %s: %s", conn_cfg(c)->p_backend_rest.a_text,
					 strerror(errno));
			return conn_error(c, 502, "Backend unavailable", NULL);
		}
		c->c_up_bytes = false;
		/* nothing can be there to read before our request went out */
		c->c_u_drained = true;
	}
	r = upstream_connect_poll(c->c_up);
	if (r == 0) {
		c->c_want_u = EV_WRITE;
		return CONN_WAIT;
	}
	if (r < 0) {
		metrics_add(&w->w_m.m_up_errors[METRICS_UP_CONNECT], 1);
		conn_log_backend(c, "backend %s: %s", conn_cfg(c)->p_backend_rest.a_text,
				 strerror(errno));
		return conn_error(c, 502, "Backend unavailable", NULL);
	}
	c->c_uout.off = 0;
	return CONN_SEND_HEAD;
}

/*
 * The backend failed before it saw the whole request: retry a GET once on a fresh socket,
 * if it has no body (a body already streamed to the dead socket is gone: resending the
 * head alone would leave the new backend waiting for bytes that never come).
 */
static int conn_up_failed_early(struct conn *c, const char *what)
{
	struct worker *w = c->c_w;
	const struct http_req *q = &c->c_req;
	bool bodyless = q->r_framing == HTTP_BODY_NONE ||
			(q->r_framing == HTTP_BODY_LENGTH && q->r_content_length == 0);

	if (c->c_up != NULL && c->c_up->u_reused && !c->c_retried && !c->c_up_bytes &&
	    q->r_method == HTTP_M_GET && bodyless) {
		conn_up_release(c, false);
		c->c_retried = true;
		return CONN_UPSTREAM_CONNECT;
	}
	metrics_add(&w->w_m.m_up_errors[METRICS_UP_CLOSED], 1);
	conn_log_backend(c, "backend %s: %s", conn_cfg(c)->p_backend_rest.a_text, what);
	return conn_error(c, 502, "Backend closed the connection", NULL);
}

/*
 * The head, and with it the part of a Content-Length body already read, in one
 * sendmsg() (the body straight out of c_in, no copy); the rest of the body follows
 * in CONN_BODY_TO_UPSTREAM.
 */
static int conn_h_send_head(struct conn *c)
{
	while (cbuf_pending(&c->c_uout) > 0) {
		size_t head = cbuf_pending(&c->c_uout), body = 0;
		struct iovec iov[2] = { { c->c_uout.b + c->c_uout.off, head } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 1 };
		ssize_t r;

		/* POST only: a GET may be retried on a fresh socket, with its body unsent */
		if (c->c_req.r_method == HTTP_M_POST && c->c_req.r_framing == HTTP_BODY_LENGTH &&
		    c->c_body_left > 0) {
			body = cbuf_pending(&c->c_in);
			if (body > c->c_body_left)
				body = (size_t)c->c_body_left;
			iov[1] = (struct iovec){ c->c_in.b + c->c_in.off, body };
			mh.msg_iovlen = body > 0 ? 2 : 1;
		}
		r = sendmsg(c->c_up->u_fd, &mh, MSG_NOSIGNAL);
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			c->c_want_u = EV_WRITE;
			return CONN_WAIT;
		}
		if (r <= 0)
			return conn_up_failed_early(c, strerror(errno));
		if ((size_t)r <= head) {
			c->c_uout.off += (size_t)r;
			continue;
		}
		c->c_uout.off += head;
		r -= (ssize_t)head;
		c->c_in.off += (size_t)r;
		c->c_bytes_in += (uint64_t)r;
		c->c_body_left -= (uint64_t)r;
		if (c->c_body_left == 0)
			c->c_body_done = true;
	}
	c->c_up->u_requests++;
	return c->c_body_done ? CONN_READ_RESPONSE : CONN_BODY_TO_UPSTREAM;
}

static int conn_h_body_to_upstream(struct conn *c)
{
	const struct conf_proxy *p = conn_cfg(c);

	for (;;) {
		size_t avail = 0, pend = cbuf_pending(&c->c_in), got;
		ssize_t r;

		if (c->c_req.r_framing == HTTP_BODY_LENGTH) {
			avail = pend < c->c_body_left ? pend : (size_t)c->c_body_left;
		} else {
			if (c->c_ch_val == 0 && pend > 0 && !c->c_ch.ch_done) {
				r = http_chunked_feed(&c->c_ch, c->c_in.b + c->c_in.off, pend);
				if (r == HTTP_BAD) {
					c->c_keepalive = false;
					return conn_error(c, c->c_ch.ch_status == 413 ? 413 : 400,
							  c->c_ch.ch_status == 413
							      ? "Request body larger than max_body"
							      : "Malformed chunked body",
							  NULL);
				}
				c->c_ch_val = (size_t)r;
			}
			avail = c->c_ch_val;
		}
		if (avail > 0) {
			r = conn_uwrite(c, c->c_in.b + c->c_in.off, avail);
			if (r == TLS_WANT_WRITE) {
				c->c_want_u = EV_WRITE;
				return CONN_WAIT;
			}
			if (r <= 0) {
				metrics_add(&c->c_w->w_m.m_up_errors[METRICS_UP_CLOSED], 1);
				c->c_keepalive = false;
				return conn_error(c, 502, "Backend closed the connection", NULL);
			}
			c->c_in.off += (size_t)r;
			c->c_bytes_in += (uint64_t)r;
			if (c->c_req.r_framing == HTTP_BODY_LENGTH)
				c->c_body_left -= (uint64_t)r;
			else
				c->c_ch_val -= (size_t)r;
			conn_rearm(c, p->p_body_timeout_ms);
			continue;
		}
		if ((c->c_req.r_framing == HTTP_BODY_LENGTH && c->c_body_left == 0) ||
		    (c->c_req.r_framing == HTTP_BODY_CHUNKED && c->c_ch.ch_done)) {
			c->c_body_done = true;
			return CONN_READ_RESPONSE;
		}
		/* Everything buffered went out: refill from the start of the buffer. */
		if (cbuf_pending(&c->c_in) == 0)
			c->c_in.off = c->c_in.len = 0;
		else
			cbuf_compact(&c->c_in);
		/* Fill c_in (TLS hands out one record per read) before the next send: fewer,
		 * larger writes to the backend. */
		got = 0;
		for (;;) {
			r = conn_cread(c, c->c_in.b + c->c_in.len, c->c_in.cap - c->c_in.len);
			if (r <= 0)
				break;
			c->c_in.len += (size_t)r;
			got += (size_t)r;
			if (c->c_req.r_framing != HTTP_BODY_LENGTH || c->c_in.len == c->c_in.cap ||
			    cbuf_pending(&c->c_in) >= c->c_body_left)
				break;
		}
		if (got > 0)
			continue;
		if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
			return conn_want(c, r);
		c->c_keepalive = false;
		return CONN_CLOSE; /* the client left mid-body: the backend socket is dropped */
	}
}

/* Writes the client's response head into c_out. */
static int conn_build_client_head(struct conn *c)
{
	const struct http_resp *s = &c->c_resp;
	struct cbuf *o = &c->c_out;
	size_t i;

	o->off = o->len = 0;
	if (s->s_status >= 100 && s->s_status <= 999) { /* what the parser lets through */
		char st[] = { 'H',
			      'T',
			      'T',
			      'P',
			      '/',
			      '1',
			      '.',
			      '1',
			      ' ',
			      (char)('0' + s->s_status / 100),
			      (char)('0' + s->s_status / 10 % 10),
			      (char)('0' + s->s_status % 10),
			      ' ' };

		if (cbuf_put(o, st, sizeof(st)) < 0)
			return -1;
	} else if (cbuf_printf(o, "HTTP/1.1 %d ", s->s_status) < 0) {
		return -1;
	}
	if (cbuf_put(o, s->s_reason.p, s->s_reason.n) < 0 || cbuf_puts(o, "\r\n") < 0)
		return -1;
	for (i = 0; i < s->s_nhdrs; i++) {
		const struct http_header *h = &s->s_hdrs[i];

		if (h->h_kind == HTTP_H_CONNECTION || h->h_kind == HTTP_H_HOP ||
		    http_header_is_hop(s->s_hdrs, s->s_nhdrs, h))
			continue;
		if (cbuf_put(o, h->h_name.p, h->h_name.n) < 0 || cbuf_puts(o, ": ") < 0 ||
		    cbuf_put(o, h->h_value.p, h->h_value.n) < 0 || cbuf_puts(o, "\r\n") < 0)
			return -1;
	}
	if (!c->c_keepalive) {
		if (cbuf_puts(o, "Connection: close\r\n") < 0)
			return -1;
	} else if (c->c_req.r_minor == 0 && cbuf_puts(o, "Connection: keep-alive\r\n") < 0) {
		return -1;
	}
	return cbuf_puts(o, "\r\n");
}

static int conn_h_read_response(struct conn *c)
{
	struct worker *w = c->c_w;

	for (;;) {
		ssize_t r;

		if (cbuf_pending(&c->c_uin) > 0) {
			r = http_parse_response(c->c_uin.b + c->c_uin.off, cbuf_pending(&c->c_uin),
						c->c_req.r_method, &c->c_resp);
			if (r > 0 && c->c_resp.s_status < 200) {
				/* An interim answer we did not ask for (Expect was stripped): skip. */
				c->c_uin.off += (size_t)r;
				http_resp_init(&c->c_resp, c->c_rhdrs, HTTP_MAX_HEADERS,
					       conn_cfg(c)->p_max_header_bytes);
				continue;
			}
			if (r > 0) {
				if (c->c_resp.s_framing == HTTP_BODY_CLOSE)
					c->c_keepalive = false;
				if (c->c_resp.s_framing == HTTP_BODY_CHUNKED &&
				    c->c_req.r_minor == 0) {
					metrics_add(&w->w_m.m_up_errors[METRICS_UP_BAD], 1);
					return conn_error(c, 502,
							  "Chunked response for an HTTP/1.0 client",
							  NULL);
				}
				if (conn_build_client_head(c) < 0) {
					metrics_add(&w->w_m.m_up_errors[METRICS_UP_BAD], 1);
					return conn_error(c, 502, "Backend response head too large",
							  NULL);
				}
				c->c_uin.off += (size_t)r;
				c->c_status = c->c_resp.s_status;
				c->c_rbody_left = c->c_resp.s_content_length;
				c->c_rch_val = 0;
				if (c->c_resp.s_framing == HTTP_BODY_CHUNKED)
					http_chunked_init(&c->c_rch, 0, true);
				conn_resp_coalesce(c);
				return CONN_BODY_TO_CLIENT;
			}
			if (r == HTTP_BAD) {
				metrics_add(&w->w_m.m_up_errors[METRICS_UP_BAD], 1);
				conn_log_backend(c, "backend %s: bad response: %s",
						 conn_cfg(c)->p_backend_rest.a_text,
						 c->c_resp.s_error ? c->c_resp.s_error : "?");
				return conn_error(c, 502, "Bad response from the backend", NULL);
			}
			if (c->c_uin.len == c->c_uin.cap) {
				if (c->c_uin.off == 0) {
					metrics_add(&w->w_m.m_up_errors[METRICS_UP_BAD], 1);
					return conn_error(c, 502, "Backend response head too large",
							  NULL);
				}
				cbuf_compact(&c->c_uin);
				http_resp_init(&c->c_resp, c->c_rhdrs, HTTP_MAX_HEADERS,
					       conn_cfg(c)->p_max_header_bytes);
			}
		} else {
			c->c_uin.off = c->c_uin.len = 0;
		}
		r = conn_uread(c, c->c_uin.b + c->c_uin.len, c->c_uin.cap - c->c_uin.len);
		if (r == TLS_WANT_READ) {
			c->c_want_u = EV_READ;
			return CONN_WAIT;
		}
		if (r <= 0) {
			if (!c->c_up_bytes)
				return conn_up_failed_early(c, r == 0 ? "closed before answering"
								      : strerror(errno));
			metrics_add(&w->w_m.m_up_errors[METRICS_UP_CLOSED], 1);
			return conn_error(c, 502, "Backend closed the connection mid-response",
					  NULL);
		}
		c->c_up_bytes = true;
		c->c_uin.len += (size_t)r;
	}
}

/* The response is complete: give the backend socket back and log. */
static int conn_response_done(struct conn *c)
{
	bool reuse = c->c_resp.s_keepalive && c->c_resp.s_framing != HTTP_BODY_CLOSE &&
		     cbuf_pending(&c->c_uin) == 0;

	conn_up_release(c, reuse);
	conn_log_request(c);
	return c->c_keepalive ? CONN_KEEPALIVE : CONN_CLOSING;
}

/* Response body bytes in c_uin that may go to the client now; -1: bad chunked framing. */
static ssize_t conn_resp_avail(struct conn *c)
{
	size_t pend = cbuf_pending(&c->c_uin);

	switch (c->c_resp.s_framing) {
	case HTTP_BODY_LENGTH:
		return (ssize_t)(pend < c->c_rbody_left ? pend : (size_t)c->c_rbody_left);
	case HTTP_BODY_CHUNKED:
		if (c->c_rch_val == 0 && pend > 0 && !c->c_rch.ch_done) {
			ssize_t r = http_chunked_feed(&c->c_rch, c->c_uin.b + c->c_uin.off, pend);

			if (r == HTTP_BAD)
				return -1;
			c->c_rch_val = (size_t)r;
		}
		return (ssize_t)c->c_rch_val;
	case HTTP_BODY_CLOSE:
		return (ssize_t)pend;
	default:
		return 0;
	}
}

/* n body bytes left c_uin (sent, or moved into c_out behind the head). */
static void conn_resp_consumed(struct conn *c, size_t n)
{
	c->c_uin.off += n;
	if (c->c_resp.s_framing == HTTP_BODY_LENGTH)
		c->c_rbody_left -= n;
	else if (c->c_resp.s_framing == HTTP_BODY_CHUNKED)
		c->c_rch_val -= n;
}

/*
 * TLS: the body bytes already read join the head in c_out, up to one record, so that
 * head and body leave in one record and one write (OpenSSL copies them into its
 * record buffer anyway). Plain HTTP sends both with one sendmsg() instead, no copy.
 * Runs once, before the first write of the head (a retried SSL_write must see the
 * same bytes).
 */
static void conn_resp_coalesce(struct conn *c)
{
	ssize_t avail;
	size_t n, room = c->c_out.cap - c->c_out.len;

	if (c->c_tls == NULL || (avail = conn_resp_avail(c)) <= 0)
		return;
	n = (size_t)avail < room ? (size_t)avail : room;
	if (n > CONN_TLS_RECORD)
		n = CONN_TLS_RECORD;
	memcpy(c->c_out.b + c->c_out.len, c->c_uin.b + c->c_uin.off, n);
	c->c_out.len += n;
	conn_resp_consumed(c, n);
}

/* Plain HTTP: the response head in c_out and avail body bytes of c_uin in one sendmsg(). */
static ssize_t conn_send_head_body(struct conn *c, size_t avail)
{
	size_t head = cbuf_pending(&c->c_out);
	struct iovec iov[2] = { { c->c_out.b + c->c_out.off, head },
				{ c->c_uin.b + c->c_uin.off, avail } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = avail > 0 ? 2 : 1 };
	ssize_t r = sendmsg(c->c_fd, &mh, MSG_NOSIGNAL);

	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? TLS_WANT_WRITE : -1;
	c->c_bytes_out += (uint64_t)r;
	if ((size_t)r <= head) {
		c->c_out.off += (size_t)r;
		return r;
	}
	c->c_out.off = c->c_out.len = 0;
	conn_resp_consumed(c, (size_t)r - head);
	return r;
}

static int conn_h_body_to_client(struct conn *c)
{
	const struct conf_proxy *p = conn_cfg(c);
	struct worker *w = c->c_w;

	while (c->c_tls == NULL && cbuf_pending(&c->c_out) > 0) {
		ssize_t avail = conn_resp_avail(c), r;

		if (avail < 0) {
			metrics_add(&w->w_m.m_up_errors[METRICS_UP_BAD], 1);
			return CONN_CLOSE;
		}
		r = conn_send_head_body(c, (size_t)avail);
		if (r == TLS_WANT_WRITE)
			return conn_want(c, r);
		if (r <= 0)
			return CONN_CLOSE;
	}
	if (cbuf_pending(&c->c_out) > 0) {
		int r0 = conn_flush(c);

		if (r0 != 1)
			return r0;
	}
	c->c_resp_started = true;
	for (;;) {
		ssize_t avail = conn_resp_avail(c), r;

		if (avail < 0) {
			metrics_add(&w->w_m.m_up_errors[METRICS_UP_BAD], 1);
			return CONN_CLOSE;
		}
		if (avail > 0) {
			r = conn_cwrite(c, c->c_uin.b + c->c_uin.off, (size_t)avail);
			if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
				return conn_want(c, r);
			if (r <= 0)
				return CONN_CLOSE;
			c->c_bytes_out += (uint64_t)r;
			conn_resp_consumed(c, (size_t)r);
			conn_rearm(c, p->p_response_timeout_ms);
			continue;
		}
		switch (c->c_resp.s_framing) {
		case HTTP_BODY_LENGTH:
			if (c->c_rbody_left == 0)
				return conn_response_done(c);
			break;
		case HTTP_BODY_CHUNKED:
			if (c->c_rch.ch_done)
				return conn_response_done(c);
			break;
		case HTTP_BODY_CLOSE:
			break;
		default:
			return conn_response_done(c);
		}
		if (cbuf_pending(&c->c_uin) == 0)
			c->c_uin.off = c->c_uin.len = 0;
		else
			cbuf_compact(&c->c_uin);
		r = conn_uread(c, c->c_uin.b + c->c_uin.len, c->c_uin.cap - c->c_uin.len);
		if (r == TLS_WANT_READ) {
			c->c_want_u = EV_READ;
			return CONN_WAIT;
		}
		if (r == 0 && c->c_resp.s_framing == HTTP_BODY_CLOSE) {
			c->c_keepalive = false;
			return conn_response_done(c);
		}
		if (r <= 0) {
			/* Closed mid-body: the client cannot be told in-band; close it too. */
			metrics_add(&w->w_m.m_up_errors[METRICS_UP_CLOSED], 1);
			conn_log_backend(c, "backend %s: closed mid-response (%s)",
					 p->p_backend_rest.a_text,
					 r == 0 ? "EOF" : strerror(errno));
			return CONN_CLOSE;
		}
		c->c_uin.len += (size_t)r;
	}
}

static int conn_h_send_error(struct conn *c)
{
	int r = conn_flush(c);

	if (r != 1)
		return r;
	conn_log_request(c);
	return c->c_keepalive && c->c_body_done ? CONN_KEEPALIVE : CONN_CLOSING;
}

static int conn_h_keepalive(struct conn *c)
{
	ssize_t r;

	if (c->c_w->w_draining)
		return CONN_CLOSING;
	if (cbuf_pending(&c->c_in) > 0)
		return CONN_READ_HEAD; /* a pipelined request is already here */
	if (conn_bufs_get(c) < 0)      /* given back after CONN_IDLE_SHRINK_MS idle */
		return CONN_CLOSE;
	c->c_in.off = c->c_in.len = 0;
	r = conn_cread(c, c->c_in.b, c->c_in.cap);
	if (r == TLS_WANT_READ || r == TLS_WANT_WRITE)
		return conn_want(c, r);
	if (r <= 0)
		return CONN_CLOSE;
	c->c_in.len = (size_t)r;
	return CONN_READ_HEAD;
}

/*
 * Lingering close: after our last answer, half-close and swallow what the client
 * still sends, so that unread input does not turn our FIN into an RST that would
 * destroy the answer in flight (RFC 9112 §9.6).
 */
static int conn_h_closing(struct conn *c)
{
	char sink[4096];

	if (!c->c_linger_started) {
		c->c_linger_started = true;
		if (c->c_tls != NULL)
			tls_shutdown(c->c_tls);
		if (shutdown(c->c_fd, SHUT_WR) < 0)
			return CONN_CLOSE;
	}
	for (;;) {
		ssize_t r = recv(c->c_fd, sink, sizeof(sink), 0);

		/* The request was read whole and nothing followed it: no unread byte can turn
		 * our close into an RST, so there is nothing to linger for (nginx closes too). */
		if (r < 0 && errno == EAGAIN && c->c_body_done && c->c_linger_bytes == 0 &&
		    cbuf_pending(&c->c_in) == 0)
			return CONN_CLOSE;
		if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
			c->c_want_c = EV_READ;
			return CONN_WAIT;
		}
		if (r <= 0)
			return CONN_CLOSE;
		c->c_linger_bytes += (size_t)r;
		if (c->c_linger_bytes > CONN_LINGER_BYTES)
			return CONN_CLOSE;
	}
}

/*
 * Waiting for an in-flight slot: the timer polls every LIMIT_QUEUE_POLL_MS (see limit.h
 * for why polling and not a cross-worker wake-up); the queue is bounded in length and
 * in time.
 */
/* The client went away (FIN, even behind a TLS close_notify it sent first, or
 * an error) while its request waited in the queue. */
static bool conn_client_gone(const struct conn *c)
{
	struct pollfd p = { .fd = c->c_fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int conn_h_limit_queue(struct conn *c)
{
	struct limit *l = c->c_w->w_px->px_limit;

	/* a waiter whose client gave up must not take a slot and reach the
	 * backend: retrying clients would multiply the work under overload */
	if (conn_client_gone(c))
		return CONN_CLOSE;
	if (limit_inflight_retry(l, conn_limits(c), c->c_user, c->c_user_len) == LIMIT_SLOT_HELD) {
		c->c_lim_queued = false;
		c->c_lim_held = true;
		return conn_forward(c);
	}
	if (ev_now(c->c_w->w_loop) >= c->c_lim_deadline) {
		c->c_lim_queued = false;
		limit_inflight_dequeue(l, c->c_user, c->c_user_len, true);
		return conn_limited(c, LIMIT_QUEUE_TIMEOUT, 1);
	}
	return CONN_WAIT;
}

typedef int (*conn_handler)(struct conn *c);
static const conn_handler conn_handlers[CONN_NSTATES] = {
	[CONN_TLS_HANDSHAKE] = conn_h_tls_handshake,
	[CONN_READ_HEAD] = conn_h_read_head,
	[CONN_AUTH] = conn_h_auth,
	[CONN_SEND_CONTINUE] = conn_h_send_continue,
	[CONN_UPSTREAM_CONNECT] = conn_h_upstream_connect,
	[CONN_SEND_HEAD] = conn_h_send_head,
	[CONN_BODY_TO_UPSTREAM] = conn_h_body_to_upstream,
	[CONN_READ_RESPONSE] = conn_h_read_response,
	[CONN_BODY_TO_CLIENT] = conn_h_body_to_client,
	[CONN_SEND_ERROR] = conn_h_send_error,
	[CONN_KEEPALIVE] = conn_h_keepalive,
	[CONN_CLOSING] = conn_h_closing,
	[CONN_LIMIT_QUEUE] = conn_h_limit_queue,
};

/* ---- state entry, deadlines ------------------------------------------------------------- */

/* Entry actions of state s: its deadline and per-request resets. */
static void conn_enter(struct conn *c, enum conn_state s)
{
	const struct conf_proxy *p = conn_cfg(c);
	struct ev_loop *loop = c->c_w->w_loop;
	uint64_t ms = 0;

	c->c_state = s;
	switch (s) {
	case CONN_TLS_HANDSHAKE:
		ms = p->p_handshake_timeout_ms;
		break;
	case CONN_READ_HEAD:
		/* A fresh request: the head must be complete within header_timeout (slowloris). */
		cbuf_compact(&c->c_in);
		http_req_init(&c->c_req, c->c_hdrs, HTTP_MAX_HEADERS, p->p_max_header_bytes, 0);
		http_resp_init(&c->c_resp, c->c_rhdrs, HTTP_MAX_HEADERS, p->p_max_header_bytes);
		c->c_routed = false;
		c->c_user[0] = '\0';
		c->c_user_len = 0;
		c->c_try_user_len = 0;
		c->c_ua_len = 0;
		c->c_ua[0] = '\0';
		c->c_method_len = 0;
		c->c_path_len = 0;
		c->c_status = 0;
		c->c_bytes_in = c->c_bytes_out = 0;
		c->c_body_done = true;
		c->c_ch_val = 0;
		c->c_retried = false;
		c->c_resp_started = false;
		c->c_keepalive = false;
		c->c_limit = LIMIT_NONE;
		c->c_auth_limit = NULL;
		ms = p->p_header_timeout_ms;
		break;
	case CONN_AUTH:
		ms = p->p_response_timeout_ms;
		break;
	case CONN_SEND_CONTINUE:
		ms = p->p_body_timeout_ms;
		break;
	case CONN_UPSTREAM_CONNECT:
		ms = p->p_connect_timeout_ms;
		break;
	case CONN_SEND_HEAD:
	case CONN_BODY_TO_UPSTREAM:
		ms = p->p_body_timeout_ms;
		break;
	case CONN_READ_RESPONSE:
	case CONN_BODY_TO_CLIENT:
		ms = p->p_response_timeout_ms;
		break;
	case CONN_SEND_ERROR:
		ms = p->p_body_timeout_ms;
		break;
	case CONN_KEEPALIVE:
		ms = p->p_idle_timeout_ms;
		c->c_idle_shrunk = false;
		if (ms > CONN_IDLE_SHRINK_MS && c->c_in.b != NULL)
			ms = CONN_IDLE_SHRINK_MS; /* conn_timeout_next() shrinks, then waits on */
		break;
	case CONN_CLOSING:
		ms = CONN_LINGER_MS;
		break;
	case CONN_LIMIT_QUEUE:
		ms = LIMIT_QUEUE_POLL_MS;
		break;
	default:
		abort();
	}
	ev_timer_add(loop, &c->c_timer, ms, conn_timeout_cb, c);
}

static void conn_set_interest(struct conn *c)
{
	struct ev_loop *loop = c->c_w->w_loop;

	/*
	 * Lazy disable: while the backend is busy the client needs no events, but switching
	 * EV_READ off and on costs two epoll_ctl per request. The mask stays; if the client
	 * does send something meanwhile, conn_client_cb() switches it off then.
	 */
	if (c->c_want_c != 0 && ev_mod(loop, c->c_fd, c->c_want_c) < 0) {
		conn_close(c);
		return;
	}
	if (c->c_up != NULL && c->c_up->u_watched && ev_mod(loop, c->c_up->u_fd, c->c_want_u) < 0)
		conn_close(c);
}

static void conn_step(struct conn *c)
{
	unsigned i;

	/* Bounded: every transition consumes input or waits; 10000 means a broken invariant. */
	for (i = 0; i < 10000; i++) {
		int r;

		if (c->c_timed_out) {
			c->c_timed_out = false;
			r = conn_timeout_next(c); /* reads the interest of the last wait */
		} else {
			c->c_want_c = c->c_want_u = 0;
			r = conn_handlers[c->c_state](c);
		}
		if (r == CONN_CLOSE) {
			conn_close(c);
			return;
		}
		if (r == CONN_GONE)
			return;
		if (r == CONN_WAIT) {
			conn_set_interest(c);
			return;
		}
		if (r < 0 || r >= CONN_NSTATES)
			abort();
		conn_enter(c, (enum conn_state)r);
	}
	log_error("%s: state machine did not settle in %s", c->c_peer_text,
		  conn_state_names[c->c_state]);
	conn_close(c);
}

/*
 * The current phase's deadline passed: the next state (an error page, sent with
 * "Connection: close") or CONN_CLOSE. Runs inside conn_step(), which alone changes state.
 */
static int conn_timeout_next(struct conn *c)
{
	struct worker *w = c->c_w;

	/* not a deadline but the queue's poll tick: an in-flight slot may be free now
	 * (the queue's own deadline is checked by the handler) */
	if (c->c_state == CONN_LIMIT_QUEUE) {
		conn_rearm(c, LIMIT_QUEUE_POLL_MS);
		return conn_h_limit_queue(c);
	}
	/* an idle keep-alive connection: not the idle deadline yet, only time to shrink */
	if (c->c_state == CONN_KEEPALIVE && !c->c_idle_shrunk && c->c_in.b != NULL &&
	    cbuf_pending(&c->c_in) == 0 && conn_cfg(c)->p_idle_timeout_ms > CONN_IDLE_SHRINK_MS) {
		/* once per idle period: bytes that do not complete a record must not buy another
		 * idle_timeout (the deadline stays where it was) */
		c->c_idle_shrunk = true;
		conn_bufs_release(c);
		conn_rearm(c, conn_cfg(c)->p_idle_timeout_ms - CONN_IDLE_SHRINK_MS);
		return CONN_WAIT; /* the interest of the last wait (EV_READ) stays */
	}
	c->c_keepalive = false;
	switch (c->c_state) {
	case CONN_TLS_HANDSHAKE:
		metrics_add(&w->w_m.m_tls_failures, 1);
		return CONN_CLOSE;
	case CONN_UPSTREAM_CONNECT:
	case CONN_SEND_HEAD:
		metrics_add(&w->w_m.m_up_errors[METRICS_UP_TIMEOUT], 1);
		conn_log_backend(c, "backend %s: timed out (%s)",
				 conn_cfg(c)->p_backend_rest.a_text, conn_state_names[c->c_state]);
		return conn_error(c, 504, "Backend timed out", NULL);
	case CONN_BODY_TO_UPSTREAM:
		/* Whose fault: the one we were waiting for when the deadline passed. */
		if (c->c_want_u) {
			metrics_add(&w->w_m.m_up_errors[METRICS_UP_TIMEOUT], 1);
			return conn_error(c, 504, "Backend timed out", NULL);
		}
		return conn_error(c, 408, "Request body timed out", NULL);
	case CONN_READ_RESPONSE:
		metrics_add(&w->w_m.m_up_errors[METRICS_UP_TIMEOUT], 1);
		conn_log_backend(c, "backend %s: no response within response_timeout",
				 conn_cfg(c)->p_backend_rest.a_text);
		return conn_error(c, 504, "Backend timed out", NULL);
	case CONN_BODY_TO_CLIENT:
		if (c->c_want_u)
			metrics_add(&w->w_m.m_up_errors[METRICS_UP_TIMEOUT], 1);
		return CONN_CLOSE;
	case CONN_AUTH:
		return conn_error(c, 503, "Credential check timed out", NULL);
	default:
		/* READ_HEAD (slowloris), KEEPALIVE, SEND_*, CLOSING: just close. */
		return CONN_CLOSE;
	}
}

static void conn_timeout_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	(void)loop;
	(void)fd;
	(void)events;
	c->c_timed_out = true;
	conn_step(c);
}

/* ---- callbacks and lifetime --------------------------------------------------------------- */

static void conn_client_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	if (events & EPOLLIN)
		c->c_c_drained = false;
	if ((events & (EPOLLERR | EPOLLHUP)) && c->c_state != CONN_SEND_ERROR) {
		/* The socket is dead both ways: nothing more can be said to the client. */
		conn_close(c);
		return;
	}
	if ((events & c->c_want_c) == 0 && !(events & (EPOLLERR | EPOLLHUP))) {
		/* An event the current state did not ask for (see conn_set_interest). */
		if (ev_mod(loop, fd, c->c_want_c) < 0)
			conn_close(c);
		return;
	}
	conn_step(c);
}

static void conn_up_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;

	if (events & EPOLLIN)
		c->c_u_drained = false;
	if ((events & (EPOLLERR | EPOLLHUP)) && c->c_want_u == 0) {
		c->c_u_drained = false; /* so the next read does reach recv() and its error */
		/*
		 * Level-triggered HUP cannot be masked: stop watching; the handler that next
		 * reads or writes this socket sees the error immediately.
		 */
		(void)loop;
		(void)fd;
		upstream_unwatch(c->c_up);
		return;
	}
	conn_step(c);
}

void conn_auth_abandoned(struct worker *w, const struct auth_job *j, const char *via)
{
	char esc[256];

	if (j->aj_result != AUTH_FAIL)
		return;
	/* the pool has recorded it in the throttle; it is still one line for fail2ban */
	metrics_add(&w->w_m.m_auth_failures, 1);
	accesslog_escape(esc, sizeof(esc), j->aj_cred.ac_user, j->aj_cred.ac_user_len, 0);
	log_warn("auth: failed login from %s user \"%s\" (wrong password or unknown user; "
		 "client gone%s)",
		 j->aj_peer, esc, via);
}

void conn_auth_ready(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	struct auth_job *j = auth_queue_drain(w->w_aq);

	(void)loop;
	(void)fd;
	(void)events;
	while (j != NULL) {
		struct auth_job *next = j->aj_next;
		struct conn *c = j->aj_arg;

		if (c == NULL) {
			conn_auth_abandoned(w, j, "");
			auth_job_free(j);
		} else {
			c->c_auth_done = true;
			conn_step(c);
		}
		j = next;
	}
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->c_w;

	ev_timer_del(w->w_loop, &c->c_timer);
	if (c->c_job != NULL) {
		if (c->c_auth_done) {
			auth_job_free(c->c_job);
		} else {
			/* the pool still has it: freed when drained; no hash if none started */
			c->c_job->aj_arg = NULL;
			auth_job_cancel(c->c_job);
		}
		c->c_job = NULL;
	}
	conn_up_release(c, false);
	conn_log_request(c);
	ev_forget(w->w_loop, c->c_fd);
	if (c->c_tls != NULL)
		tls_free(c->c_tls);
	close(c->c_fd);
	conn_bufs_release(c);
	conn_unlink(w, c);
	w->w_nconns--;
	atomic_fetch_sub(&w->w_px->px_nconns, 1);
	metrics_sub(&w->w_m.m_conns_open, 1);
	free(c);
	if (w->w_draining && w->w_nconns == 0)
		ev_stop(w->w_loop);
}

static void conn_peer_format(struct conn *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&c->c_peer;

	addr_format(sa, c->c_peer_text, sizeof(c->c_peer_text));
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], c->c_peer_ip,
				  sizeof(c->c_peer_ip));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, c->c_peer_ip, sizeof(c->c_peer_ip));
	} else if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->c_peer_ip,
			  sizeof(c->c_peer_ip));
	} else {
		strcpy(c->c_peer_ip, "unknown");
	}
}

void conn_accept(struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct proxy *px = w->w_px;
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return;
	}
	c->c_w = w;
	c->c_fd = fd;
	c->c_is_tls = px->px_tls;
	c->c_limit = LIMIT_NONE;
	if (salen > sizeof(c->c_peer))
		salen = sizeof(c->c_peer);
	memcpy(&c->c_peer, sa, salen);
	c->c_peerlen = salen;
	conn_peer_format(c);
	c->c_akeylen = auth_addr_key(sa, salen, c->c_akey);
	if (conn_bufs_get(c) < 0)
		goto out_free;
	c->c_want_c = EV_READ; /* what the first event must be (see conn_client_cb) */
	if (ev_add(w->w_loop, fd, EV_READ, conn_client_cb, c) < 0)
		goto out_free;
	c->c_next = w->w_conns;
	if (w->w_conns != NULL)
		w->w_conns->c_prev = c;
	w->w_conns = c;
	w->w_nconns++;
	metrics_add(&w->w_m.m_conns_open, 1);
	metrics_add(&w->w_m.m_conns_total, 1);
	conn_enter(c, px->px_tls ? CONN_TLS_HANDSHAKE : CONN_READ_HEAD);
	return;
out_free:
	conn_bufs_release(c);
	free(c);
	close(fd);
	atomic_fetch_sub(&px->px_nconns, 1);
}

void conn_drain_idle(struct worker *w)
{
	struct conn *c = w->w_conns;

	while (c != NULL) {
		struct conn *next = c->c_next;

		/* Connections without a request in progress (idle keep-alive, a handshake, a
		 * head not begun) go now; the others finish their request first. */
		if ((c->c_state == CONN_KEEPALIVE || c->c_state == CONN_TLS_HANDSHAKE ||
		     c->c_state == CONN_READ_HEAD) &&
		    cbuf_pending(&c->c_in) == 0)
			conn_close(c);
		else
			c->c_keepalive = false;
		c = next;
	}
	h2_drain_idle(w);
	if (w->w_nconns == 0)
		ev_stop(w->w_loop);
}

void conn_close_all(struct worker *w)
{
	while (w->w_conns != NULL)
		conn_close(w->w_conns);
	h2_close_all(w);
}
