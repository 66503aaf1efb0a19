/*
 * h2: gRPC over HTTP/2 through the proxy. See h2.h.
 *
 * Reentrancy rule: nghttp2 callbacks never free the connection nor delete a session;
 * they set hc_dead / u_dead and h2_run() / h2_flush_all() act after the library call
 * returned.
 * A stream is freed in one place, the server session's on_stream_close (or h2_close).
 */
#include "h2.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "accesslog.h"
#include "grpc.h"
#include "ident.h"
#include "log.h"
#include "proxy.h"

#define H2_WINDOW      (256u << 10) /* per stream, both sides */
#define H2_CONN_WINDOW (1u << 20)   /* per client connection */
/*
 * Per backend connection: it is shared, so one client that stops reading must not close
 * it for the others. Its streams can hold at most H2_WINDOW each; the connection window
 * is large enough that it takes 256 stalled calls, not 4, to fill it.
 */
#define H2_UP_CONN_WINDOW (64u << 20)
#define H2_OUT_BUF	  (32u << 10) /* coalesced frames before one TLS write */
#define H2_READ_BUF	  (16u << 10)
#define H2_MAX_HEADERS	  64
/* Rapid reset: at most H2_RST_BURST RST_STREAM frames at once, refilled at H2_RST_RATE/s. */
#define H2_RST_BURST 200
#define H2_RST_RATE  100
/* Backend connections per worker, and streams on one before another is opened. */
#define H2_UP_MAX     4
#define H2_UP_STREAMS 100

/* ---- small growable FIFO ------------------------------------------------------------------ */

struct h2buf {
	uint8_t *b;
	size_t off, len, cap;
};

static size_t h2buf_pending(const struct h2buf *q)
{
	return q->len - q->off;
}

static int h2buf_put(struct h2buf *q, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (q->off > 0 && q->cap - q->len < n) {
		memmove(q->b, q->b + q->off, q->len - q->off);
		q->len -= q->off;
		q->off = 0;
	}
	if (q->cap - q->len < n) {
		size_t cap = q->cap ? q->cap : 4096;
		uint8_t *nb;

		while (cap - q->len < n)
			cap *= 2;
		nb = realloc(q->b, cap);
		if (nb == NULL)
			return -1;
		q->b = nb;
		q->cap = cap;
	}
	memcpy(q->b + q->len, p, n);
	q->len += n;
	return 0;
}

static void h2buf_free(struct h2buf *q, bool wipe)
{
	if (q->b != NULL && wipe)
		explicit_bzero(q->b, q->cap);
	free(q->b);
	*q = (struct h2buf){ 0 };
}

/* A header list kept for forwarding: names and values in one arena. */
struct h2hdrs {
	struct h2buf hh_arena;
	uint32_t hh_off[H2_MAX_HEADERS][4]; /* name off, len, value off, len */
	size_t hh_n;
	size_t hh_bytes; /* as HTTP/2 counts them: name + value + 32 */
};

static int h2hdrs_add(struct h2hdrs *h, const uint8_t *n, size_t nl, const uint8_t *v, size_t vl)
{
	uint32_t *o;

	if (h->hh_n == H2_MAX_HEADERS)
		return -1;
	o = h->hh_off[h->hh_n];
	o[0] = (uint32_t)h->hh_arena.len;
	o[1] = (uint32_t)nl;
	if (h2buf_put(&h->hh_arena, n, nl) < 0)
		return -1;
	o[2] = (uint32_t)h->hh_arena.len;
	o[3] = (uint32_t)vl;
	if (h2buf_put(&h->hh_arena, v, vl) < 0)
		return -1;
	h->hh_n++;
	return 0;
}

/* Appends h's headers to nva (pointers into h's arena, valid until h changes). */
static size_t h2hdrs_nv(const struct h2hdrs *h, nghttp2_nv *nva, size_t at, size_t max)
{
	size_t i;

	for (i = 0; i < h->hh_n && at < max; i++, at++) {
		const uint32_t *o = h->hh_off[i];

		nva[at] = (nghttp2_nv){ h->hh_arena.b + o[0], h->hh_arena.b + o[2], o[1], o[3],
					NGHTTP2_NV_FLAG_NONE };
	}
	return at;
}

/* ---- connection and stream state -------------------------------------------------------- */

enum h2s_state {
	H2S_HEADERS,	  /* request headers arriving */
	H2S_AUTH,	  /* the verifier pool has the credentials */
	H2S_MESSAGE,	  /* reading the first message for the model name */
	H2S_BACKEND_WAIT, /* allowed; the backend connection is being opened */
	H2S_FORWARD,	  /* a backend stream carries the call */
	H2S_ANSWERED,	  /* we answered (refusal): the rest of the request is dropped */
};

struct h2conn;

struct h2stream {
	struct h2conn *s_hc;
	struct h2stream *s_prev, *s_next;
	int32_t s_id;	   /* on the client connection */
	struct h2up *s_up; /* the backend connection it is attached to, or NULL */
	int32_t s_uid;	   /* its stream there, 0 = none (yet, or any more) */
	enum h2s_state s_state;
	bool s_begun; /* headers complete: logged when it ends */

	/* request */
	char s_path[256];
	size_t s_path_len;
	bool s_path_long;
	bool s_post;
	bool s_grpc_ct;
	bool s_authz_twice;
	char s_authority[256];
	size_t s_authority_len;
	struct h2buf s_authz; /* the authorization value; wiped */
	bool s_has_timeout;
	bool s_bad_timeout;
	uint64_t s_timeout_ms;
	char s_ua[128];
	size_t s_ua_len;
	struct h2hdrs s_hdrs; /* forwarded as they came, minus ours */
	struct auth_job *s_job;
	bool s_auth_done; /* s_job came back from the pool (the drain loop frees it) */
	char s_user[HTPASSWD_USER_MAX];
	size_t s_user_len;
	char s_try_user[HTPASSWD_USER_MAX];
	size_t s_try_user_len;
	unsigned s_depth;
	char s_model[CONF_MODEL_MAX];
	size_t s_model_len;
	bool s_model_known;
	bool s_lim_held;
	enum limit_kind s_limit;
	/* refused by the login throttle: "auth_fail" or "auth_inflight" (access log) */
	const char *s_auth_limit;
	struct h2buf s_req;  /* client DATA not yet given to the backend session */
	size_t s_req_owed;   /* of it, bytes not yet acknowledged to the client */
	size_t s_req_cacked; /* of those, bytes acknowledged on the connection window only */
	size_t s_req_early;  /* of it, bytes acknowledged before forwarding (first message) */
	size_t s_req_resv;   /* of the first message, bytes reserved but not yet acknowledged */
	bool s_req_eof;
	bool s_req_deferred;
	uint64_t s_bytes_in, s_bytes_out;

	/* response */
	struct h2hdrs s_rhdrs;
	struct h2hdrs s_trl;
	bool s_trailers;
	struct h2buf s_resp;
	bool s_resp_eof;
	bool s_resp_started; /* response HEADERS submitted to the client */
	bool s_resp_deferred;
	int s_grpc_status; /* -1 until known */

	uint64_t s_start_us, s_start_ms;
	struct ev_timer s_timer; /* grpc-timeout, or body_timeout until forwarded */
	bool s_timer_is_deadline;
	bool s_timer_is_response; /* response_timeout: forwarded without grpc-timeout */
};

struct h2conn {
	struct worker *hc_w;
	struct h2conn *hc_prev, *hc_next;
	int hc_fd;
	struct tls *hc_tls;
	char hc_peer_text[ADDR_TEXT_MAX];
	char hc_peer_ip[ADDR_TEXT_MAX];
	uint8_t hc_akey[16];
	size_t hc_akeylen;
	struct tls_peer hc_peer; /* the client certificate's verdict (TLS_PEER_NONE without) */
	bool hc_has_peer;	 /* over TLS: hc_peer is meaningful */
	unsigned hc_peer_gen;	 /* the snapshot generation hc_peer was decided under */
	nghttp2_session *hc_s;
	struct h2stream *hc_streams;
	unsigned hc_nstreams;
	bool hc_dead;	  /* close at the end of h2_run */
	bool hc_draining; /* GOAWAY sent */
	bool hc_in_run;
	size_t hc_early;	  /* sum of s_req_early and s_req_resv */
	bool hc_recheck;	  /* hc_early went down: streams waiting for budget may go on */
	uint64_t hc_rst_tokens_m; /* milli-tokens */
	uint64_t hc_rst_last_ms;
	struct ev_timer hc_timer; /* idle */
	bool hc_idle_armed;	  /* hc_timer runs: armed when the last busy stream ended */

	uint8_t hc_out[H2_OUT_BUF];
	size_t hc_out_off, hc_out_len;
	const uint8_t *hc_chunk; /* a frame too big for hc_out, straight from nghttp2 */
	size_t hc_chunk_off, hc_chunk_len;
	uint32_t hc_want; /* client socket interest */
	bool hc_dirty;	  /* on the pool's list of connections to run */
	struct h2conn *hc_dirty_next;
};

/* One backend connection of the worker's pool, shared by the streams of every client. */
struct h2up {
	struct h2pool *u_pool;
	struct h2up *u_next;
	int u_fd;
	nghttp2_session *u_s;
	bool u_connecting;
	bool u_dead;   /* fail its streams and close it at the next flush */
	bool u_goaway; /* the backend sent GOAWAY: no new streams; closed once drained */
	bool u_dirty;  /* its session may have frames to send */
	const char *u_why;
	unsigned u_nstreams;	 /* streams attached (s_up == this) */
	struct ev_timer u_timer; /* connect timeout, then idle timeout */
	uint8_t u_out[H2_OUT_BUF];
	size_t u_out_off, u_out_len;
	const uint8_t *u_chunk;
	size_t u_chunk_off, u_chunk_len;
};

/* Per worker: the backend connections and the client connections with work pending. */
struct h2pool {
	struct worker *p_w;
	struct h2up *p_ups;
	unsigned p_nups;
	struct h2conn *p_dirty;
	bool p_in_flush;
};

static void h2_run(struct h2conn *hc);
static void h2_flush_all(struct worker *w);
static struct h2pool *h2_pool(struct worker *w);

/* hc has work (frames to send, input to read): run it at the next h2_flush_all. */
static void h2_touch(struct h2conn *hc)
{
	struct h2pool *p = h2_pool(hc->hc_w);

	if (hc->hc_dirty || p == NULL)
		return;
	hc->hc_dirty = true;
	hc->hc_dirty_next = p->p_dirty;
	p->p_dirty = hc;
}
static void h2_answer(struct h2stream *s, int code, const char *msg);
static void h2_client_resume(struct h2stream *s);
static void h2_stream_forward(struct h2stream *s);
static void h2_stream_progress(struct h2stream *s);

static const struct conf_proxy *h2_cfg(const struct h2conn *hc)
{
	return &hc->hc_w->w_px->px_conf.c_proxy;
}

static uint64_t h2_wall_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

static void h2_copy(char *dst, size_t cap, size_t *dlen, const void *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
	*dlen = n;
}

static bool h2_eq(const uint8_t *p, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

/* ---- logging -------------------------------------------------------------------------------- */

static void h2_log_stream(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;
	struct alog_rec r;
	uint64_t dur, wall = h2_wall_us();
	int code = s->s_grpc_status >= 0 ? s->s_grpc_status : GRPC_CANCELLED;
	int status = grpc_http_status(code);
	const char *model = s->s_model_known ? s->s_model : "";
	size_t mlen = s->s_model_known ? s->s_model_len : 0;

	dur = wall > s->s_start_us ? wall - s->s_start_us : 0;
	r = (struct alog_rec){
		.ar_start_us = s->s_start_us,
		.ar_dur_us = dur,
		.ar_client = hc->hc_peer_text,
		.ar_user = s->s_user,
		.ar_userlen = s->s_user_len,
		.ar_model = model,
		.ar_modellen = mlen,
		.ar_method = "GRPC",
		.ar_methodlen = 4,
		.ar_path = s->s_path,
		.ar_pathlen = s->s_path_len,
		.ar_ua = s->s_ua,
		.ar_ualen = s->s_ua_len,
		.ar_status = status,
		.ar_bytes_in = s->s_bytes_in,
		.ar_bytes_out = s->s_bytes_out,
		.ar_limit = s->s_auth_limit ? s->s_auth_limit : limit_name(s->s_limit),
	};
	accesslog_write_buf(&w->w_alog, &r);
	metrics_request(&w->w_m, model, mlen, status, dur);
	metrics_add(&w->w_m.m_bytes_in, s->s_bytes_in);
	metrics_add(&w->w_m.m_bytes_out, s->s_bytes_out);
}

static void h2_log_auth_fail(struct h2conn *hc, const char *user, size_t ulen, const char *why)
{
	char esc[256];

	accesslog_escape(esc, sizeof(esc), user, ulen, 0);
	log_warn("auth: failed login from %s user \"%s\" (%s, gRPC)", hc->hc_peer_ip, esc, why);
}

/* ---- streams -------------------------------------------------------------------------------- */

static struct h2stream *h2_stream_new(struct h2conn *hc, int32_t id)
{
	struct h2stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->s_hc = hc;
	s->s_id = id;
	s->s_grpc_status = -1;
	s->s_limit = LIMIT_NONE;
	s->s_next = hc->hc_streams;
	if (hc->hc_streams != NULL)
		hc->hc_streams->s_prev = s;
	hc->hc_streams = s;
	hc->hc_nstreams++;
	return s;
}

/* n bytes of the connection's early budget are free again: recheck the waiting streams. */
static void h2_early_give(struct h2conn *hc, size_t n)
{
	if (n == 0)
		return;
	hc->hc_early -= n;
	hc->hc_recheck = true;
	h2_touch(hc);
}

/*
 * Acknowledges n of the bytes s owes the client: on the stream window, and on the
 * connection window for those not acknowledged there already (h2_req_ack_conn).
 */
static void h2_req_ack(struct h2stream *s, size_t n)
{
	struct h2conn *hc = s->s_hc;
	size_t c = n < s->s_req_cacked ? n : s->s_req_cacked;

	if (hc->hc_s != NULL) {
		if (c > 0)
			(void)nghttp2_session_consume_stream(hc->hc_s, s->s_id, c);
		if (n > c)
			(void)nghttp2_session_consume(hc->hc_s, s->s_id, n - c);
	}
	s->s_req_cacked -= c;
	s->s_req_owed -= n;
}

/*
 * A stream that waits (for early budget) keeps its own window closed, but must not hold
 * the connection's: its owed bytes are acknowledged on the connection window only. What
 * it can buffer stays bounded by its stream window (H2_WINDOW), so all waiting streams of
 * a connection by grpc_max_streams x H2_WINDOW. (A smaller cap for all of them would bring
 * the stall back: past it, waiting streams would close the connection window again and
 * the streams holding the budget could never finish.)
 */
static void h2_req_ack_conn(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	size_t n = s->s_req_owed - s->s_req_cacked;

	if (n > 0 && hc->hc_s != NULL)
		(void)nghttp2_session_consume_connection(hc->hc_s, n);
	s->s_req_cacked = s->s_req_owed;
}

/* Gives back what s held on the client connection's window for bytes it will never send. */
static void h2_req_drop(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;

	h2_req_ack(s, s->s_req_owed);
	h2_early_give(hc, s->s_req_early + s->s_req_resv);
	s->s_req_owed = s->s_req_early = s->s_req_resv = 0;
	h2buf_free(&s->s_req, false);
}

/* Detaches s from its backend stream (cancelled if still open) and connection. */
static void h2_stream_unlink_up(struct h2stream *s)
{
	struct h2up *up = s->s_up;

	if (up != NULL) {
		if (s->s_uid > 0) {
			nghttp2_session_set_stream_user_data(up->u_s, s->s_uid, NULL);
			(void)nghttp2_submit_rst_stream(up->u_s, NGHTTP2_FLAG_NONE, s->s_uid,
							NGHTTP2_CANCEL);
		}
		/* what it had buffered of the response is dropped: give the window back */
		if (h2buf_pending(&s->s_resp) > 0)
			(void)nghttp2_session_consume_connection(up->u_s,
								 h2buf_pending(&s->s_resp));
		up->u_dirty = true;
		up->u_nstreams--;
		s->s_up = NULL;
	}
	s->s_uid = 0;
	h2buf_free(&s->s_resp, false);
}

static void h2_stream_free(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;

	ev_timer_del(w->w_loop, &s->s_timer);
	if (s->s_job != NULL) {
		s->s_job->aj_arg = NULL; /* the pool or the drain loop frees it */
		if (!s->s_auth_done)
			auth_job_cancel(s->s_job); /* no hash if none started */
		s->s_job = NULL;
	}
	if (s->s_lim_held)
		limit_inflight_release(w->w_px->px_limit, s->s_user, s->s_user_len);
	h2_stream_unlink_up(s);
	h2_early_give(hc, s->s_req_early + s->s_req_resv);
	h2_req_ack_conn(
	    s); /* bytes it never acknowledged must not shrink the connection's window */
	if (s->s_begun)
		h2_log_stream(s);
	h2buf_free(&s->s_authz, true);
	h2buf_free(&s->s_req, false);
	h2buf_free(&s->s_resp, false);
	h2buf_free(&s->s_hdrs.hh_arena, false);
	h2buf_free(&s->s_rhdrs.hh_arena, false);
	h2buf_free(&s->s_trl.hh_arena, false);
	if (s->s_prev != NULL)
		s->s_prev->s_next = s->s_next;
	else
		hc->hc_streams = s->s_next;
	if (s->s_next != NULL)
		s->s_next->s_prev = s->s_prev;
	hc->hc_nstreams--;
	free(s);
}

static void h2_stream_timer_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct h2stream *s = arg;
	struct h2conn *hc = s->s_hc;

	(void)loop;
	(void)fd;
	(void)events;
	if (s->s_state == H2S_HEADERS) {
		/* a header block left unfinished: nothing else may come on this connection */
		log_info("h2: %s: request headers not complete within header_timeout: "
			 "disconnected",
			 hc->hc_peer_text);
		(void)nghttp2_session_terminate_session(hc->hc_s, NGHTTP2_NO_ERROR);
		hc->hc_dead = true;
	} else if (s->s_state == H2S_ANSWERED) {
		(void)nghttp2_submit_rst_stream(hc->hc_s, NGHTTP2_FLAG_NONE, s->s_id,
						NGHTTP2_NO_ERROR);
	} else if (s->s_timer_is_response)
		h2_answer(s, GRPC_DEADLINE_EXCEEDED,
			  "No response from the backend within response_timeout");
	else if (s->s_timer_is_deadline)
		h2_answer(s, GRPC_DEADLINE_EXCEEDED, "Deadline exceeded (grpc-timeout) at tfguard");
	else
		h2_answer(s, GRPC_DEADLINE_EXCEEDED,
			  "Request message not received within body_timeout");
	h2_touch(hc);
	h2_flush_all(hc->hc_w);
}

/* ---- answers made here ------------------------------------------------------------------- */

/*
 * After a complete answer to a request the client has not finished: its stored headers
 * go now, and if the rest does not come within body_timeout, RST_STREAM(NO_ERROR)
 * (RFC 9113 8.1) closes the stream. Not at once: gRPC clients (C core) take a
 * RST_STREAM right after a trailers-only answer for an INTERNAL error.
 */
static void h2_answer_end(struct h2stream *s)
{
	struct worker *w = s->s_hc->hc_w;

	h2buf_free(&s->s_hdrs.hh_arena, false);
	s->s_hdrs.hh_n = 0;
	h2buf_free(&s->s_authz, true);
	if (!s->s_req_eof)
		ev_timer_add(w->w_loop, &s->s_timer, h2_cfg(s->s_hc)->p_body_timeout_ms,
			     h2_stream_timer_cb, s);
}

/* A trailers-only response with code and msg; or RST_STREAM if the response had begun. */
static void h2_answer(struct h2stream *s, int code, const char *msg)
{
	struct h2conn *hc = s->s_hc;
	char cs[12];
	nghttp2_nv nva[4];

	if (s->s_state == H2S_ANSWERED)
		return;
	s->s_state = H2S_ANSWERED;
	ev_timer_del(hc->hc_w->w_loop, &s->s_timer);
	h2_stream_unlink_up(s);
	h2_req_drop(s);
	if (s->s_resp_started && !s->s_resp_eof) {
		/* the response is still being relayed: end it with our status as trailers */
		s->s_grpc_status = code;
		h2buf_free(&s->s_trl.hh_arena, false);
		s->s_trl.hh_n = 0;
		snprintf(cs, sizeof(cs), "%d", code);
		if (h2hdrs_add(&s->s_trl, (const uint8_t *)"grpc-status", 11, (const uint8_t *)cs,
			       strlen(cs)) < 0 ||
		    h2hdrs_add(&s->s_trl, (const uint8_t *)"grpc-message", 12, (const uint8_t *)msg,
			       strlen(msg)) < 0)
			(void)nghttp2_submit_rst_stream(hc->hc_s, NGHTTP2_FLAG_NONE, s->s_id,
							NGHTTP2_INTERNAL_ERROR);
		s->s_resp_eof = true;
		h2_client_resume(s);
		h2_answer_end(s);
		return;
	}
	if (s->s_resp_started) {
		if (s->s_grpc_status < 0)
			s->s_grpc_status = code;
		(void)nghttp2_submit_rst_stream(hc->hc_s, NGHTTP2_FLAG_NONE, s->s_id,
						NGHTTP2_INTERNAL_ERROR);
		return;
	}
	s->s_resp_started = true;
	s->s_grpc_status = code;
	snprintf(cs, sizeof(cs), "%d", code);
#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }
	nva[0] = (nghttp2_nv)NV(":status", "200");
	nva[1] = (nghttp2_nv)NV("content-type", "application/grpc");
	nva[2] = (nghttp2_nv)NV("grpc-status", cs);
	nva[3] = (nghttp2_nv)NV("grpc-message", msg); /* ASCII without '%': no escaping */
#undef NV
	if (nghttp2_submit_response(hc->hc_s, s->s_id, nva, 4, NULL) != 0)
		(void)nghttp2_submit_rst_stream(hc->hc_s, NGHTTP2_FLAG_NONE, s->s_id,
						NGHTTP2_INTERNAL_ERROR);
	else
		h2_answer_end(s);
}

/* Not a gRPC request at all: a bare HTTP status. */
static void h2_answer_http(struct h2stream *s, const char *status)
{
	nghttp2_nv nv = { (uint8_t *)":status", (uint8_t *)status, 7, strlen(status),
			  NGHTTP2_NV_FLAG_NONE };

	s->s_state = H2S_ANSWERED;
	s->s_resp_started = true;
	s->s_grpc_status = GRPC_UNIMPLEMENTED;
	h2_req_drop(s);
	if (nghttp2_submit_response(s->s_hc->hc_s, s->s_id, &nv, 1, NULL) != 0)
		(void)nghttp2_submit_rst_stream(s->s_hc->hc_s, NGHTTP2_FLAG_NONE, s->s_id,
						NGHTTP2_INTERNAL_ERROR);
	else
		h2_answer_end(s);
}

static void h2_limited(struct h2stream *s, enum limit_kind k)
{
	s->s_limit = k;
	h2_answer(s, GRPC_RESOURCE_EXHAUSTED, "Too many requests; retry later (tfguard [limits])");
}

/* ---- the decisions ------------------------------------------------------------------------ */

/* The user is authenticated: user limit, method, then the model or the backend. */
static void h2_stream_authorized(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;
	struct snap *snap = worker_snap(w);
	enum limit_kind k;
	unsigned wait = 0;

	metrics_add(&w->w_m.m_auth_ok, 1);
	k = limit_check_user(w->w_px->px_limit, &snap->s_conf.c_limits, s->s_user, s->s_user_len,
			     limit_now_ns(), &wait);
	if (k != LIMIT_NONE) {
		h2_limited(s, k);
		return;
	}
	switch (
	    grpc_method_check(&snap->s_conf, s->s_user, s->s_path, s->s_path_len, &s->s_depth)) {
	case GRPC_METHOD_BAD:
		h2_answer(s, GRPC_UNIMPLEMENTED, "Not a gRPC method path");
		return;
	case GRPC_METHOD_DENIED:
		h2_answer(s, GRPC_PERMISSION_DENIED,
			  "Permission denied: this method is not allowed through tfguard "
			  "(grant it with @grpc:SERVICE/METHOD in [acl])");
		return;
	case GRPC_METHOD_GRANTED:
		h2_stream_forward(s);
		return;
	case GRPC_METHOD_MODEL:
		s->s_state = H2S_MESSAGE;
		h2_stream_progress(s);
		return;
	}
}

/*
 * Authentication of one call: the same entry points, in the same order, as the REST
 * path: the failure throttle on the peer address (auth.h), ident_resolve() for client
 * certificates and bearer tokens ([proxy] auth, ident.h), then the Basic path (decoding,
 * credential cache, verifier pool). authz/n is the `authorization` metadata value (NULL
 * if none), peer the connection's client certificate (NULL without TLS), akey the peer's
 * throttle key. This is the one place the gRPC path authenticates.
 */
/*
 * The client certificate's verdict, made again when a reload happened since it was made
 * (a new CRL or CA applies to open connections too) and refused once its notAfter passed:
 * the same rule as REST (conn.c conn_peer_refresh).
 */
static void h2_peer_refresh(struct h2conn *hc)
{
	struct worker *w = hc->hc_w;
	struct snap *sn = worker_snap(w);
	struct tls_peer *p = &hc->hc_peer;

	if (!hc->hc_has_peer || hc->hc_tls == NULL || !(sn->s_conf.c_proxy.p_auth & CONF_AUTH_MTLS))
		return;
	if (hc->hc_peer_gen != w->w_gen) {
		hc->hc_peer_gen = w->w_gen;
		tls_peer_recheck(hc->hc_tls, sn->s_tls,
				 sn->s_conf.c_proxy.p_client_user_from == CONF_USER_FROM_SAN, p);
	}
	if (p->tp_state == TLS_PEER_OK && time(NULL) > p->tp_not_after) {
		p->tp_state = TLS_PEER_REJECTED;
		snprintf(p->tp_why, sizeof(p->tp_why),
			 "client certificate not verified: certificate has expired");
	}
}

static void h2_authenticate(struct h2stream *s, const char *authz, size_t n,
			    const struct tls_peer *peer, const uint8_t *akey, size_t akeylen)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;
	struct auth *a = w->w_px->px_auth;
	const struct conf_proxy *sp = &worker_snap(w)->s_conf.c_proxy;
	struct ident_ctx ctx = { sp->p_auth, sp->p_auth_order, sp->p_nauth, a, w->w_px->px_tokens };
	struct ident id;
	enum auth_basic ab;
	unsigned wait;

	wait = auth_throttle_check(a, akey, akeylen, auth_now_ms());
	if (wait > 0) {
		metrics_add(&w->w_m.m_auth_throttled, 1);
		s->s_auth_limit = "auth_fail";
		log_warn("auth: throttled %s for %u s (too many failed logins)", hc->hc_peer_ip,
			 wait);
		h2_answer(s, GRPC_RESOURCE_EXHAUSTED, "Too many failed logins from this address");
		return;
	}
	switch (ident_resolve(&ctx, authz, n, peer, akey, akeylen, &id)) {
	case IDENT_BASIC:
		break;
	case IDENT_OK:
		h2_copy(s->s_user, sizeof(s->s_user), &s->s_user_len, id.id_user, id.id_user_len);
		h2_stream_authorized(s);
		return;
	case IDENT_NONE:
		h2_answer(s, GRPC_UNAUTHENTICATED, "Authentication required");
		return;
	case IDENT_FAIL:
		metrics_add(&w->w_m.m_auth_failures, 1);
		h2_log_auth_fail(hc, "", 0, id.id_why);
		h2_answer(s, GRPC_UNAUTHENTICATED, "Invalid credentials");
		return;
	case IDENT_CONFLICT:
		log_warn("auth: refused gRPC call from %s (%s)", hc->hc_peer_ip, id.id_why);
		h2_answer(s, GRPC_UNAUTHENTICATED, "Two different identities in one call");
		return;
	default:
		h2_answer(s, GRPC_INTERNAL, "Credential check failed");
		return;
	}
	if (authz == NULL) {
		h2_answer(s, GRPC_UNAUTHENTICATED, "Authentication required");
		return;
	}
	ab = auth_basic_decode(authz, n, &w->w_cred);
	if (ab == AUTH_BASIC_MISSING) {
		h2_answer(s, GRPC_UNAUTHENTICATED, "Authentication required");
		return;
	}
	if (ab == AUTH_BASIC_MALFORMED) {
		metrics_add(&w->w_m.m_auth_failures, 1);
		auth_throttle_fail(a, akey, akeylen, auth_now_ms());
		h2_log_auth_fail(hc, "", 0, "malformed authorization metadata");
		h2_answer(s, GRPC_UNAUTHENTICATED, "Malformed authorization metadata");
		return;
	}
	if (auth_cache_lookup(a, &w->w_cred, auth_now_ms()) == 1) {
		metrics_add(&w->w_m.m_cache_hits, 1);
		h2_copy(s->s_user, sizeof(s->s_user), &s->s_user_len, w->w_cred.ac_user,
			w->w_cred.ac_user_len);
		auth_cred_wipe(&w->w_cred);
		h2_stream_authorized(s);
		return;
	}
	h2_copy(s->s_try_user, sizeof(s->s_try_user), &s->s_try_user_len, w->w_cred.ac_user,
		w->w_cred.ac_user_len);
	auth_cred_wipe(&w->w_cred);
	s->s_job = auth_job_new();
	if (s->s_job == NULL) {
		h2_answer(s, GRPC_UNAVAILABLE, "Out of memory");
		return;
	}
	(void)auth_basic_decode(authz, n, &s->s_job->aj_cred);
	s->s_job->aj_arg = s;
	memcpy(s->s_job->aj_addr, akey, akeylen < 16 ? akeylen : 16);
	s->s_job->aj_addrlen = (uint8_t)(akeylen < 16 ? akeylen : 16);
	snprintf(s->s_job->aj_peer, sizeof(s->s_job->aj_peer), "%s", hc->hc_peer_ip);
	s->s_auth_done = false;
	switch (auth_submit(a, s->s_job, w->w_h2aq)) {
	case 0:
		s->s_state = H2S_AUTH;
		return;
	case AUTH_SUBMIT_THROTTLED:
	case AUTH_SUBMIT_BUSY:
		/* the same admission as REST: guesses in flight count against the limit */
		metrics_add(s->s_job->aj_busy ? &w->w_m.m_auth_busy : &w->w_m.m_auth_throttled, 1);
		s->s_auth_limit = s->s_job->aj_busy ? "auth_inflight" : "auth_fail";
		h2_answer(s, GRPC_RESOURCE_EXHAUSTED,
			  s->s_job->aj_busy ? "Too many logins from this address being verified"
					    : "Too many failed logins from this address");
		break;
	default:
		h2_answer(s, GRPC_UNAVAILABLE, "Too many logins being verified; retry later");
		break;
	}
	auth_job_free(s->s_job);
	s->s_job = NULL;
}

/* The verifier pool answered for s (j is freed by the caller). */
static void h2_stream_auth_result(struct h2stream *s, const struct auth_job *j)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;

	s->s_job = NULL;
	if (s->s_state != H2S_AUTH)
		return;
	if (j->aj_result == AUTH_OK) {
		h2_copy(s->s_user, sizeof(s->s_user), &s->s_user_len, s->s_try_user,
			s->s_try_user_len);
		h2_stream_authorized(s);
		return;
	}
	if (j->aj_result == AUTH_FAIL) {
		/* the pool has counted it in the throttle already (aj_fail_counted) */
		metrics_add(&w->w_m.m_auth_failures, 1);
		h2_log_auth_fail(hc, s->s_try_user, s->s_try_user_len,
				 "wrong password or unknown user");
		h2_answer(s, GRPC_UNAUTHENTICATED, "Invalid credentials");
		return;
	}
	h2_answer(s, GRPC_INTERNAL, "Credential check failed");
}

/* Request headers are complete: the cheap checks, then authentication. */
static void h2_stream_begin(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;
	enum limit_kind k;
	unsigned wait = 0;
	uint64_t ms;

	s->s_begun = true;
	ev_timer_del(w->w_loop, &s->s_timer); /* header_timeout */
	s->s_start_us = h2_wall_us();
	s->s_start_ms = ev_now(w->w_loop);
	if (!s->s_post || s->s_path_len == 0) {
		h2_answer_http(s, "405");
		return;
	}
	if (!s->s_grpc_ct) {
		h2_answer_http(s, "415");
		return;
	}
	if (s->s_path_long) {
		h2_answer(s, GRPC_UNIMPLEMENTED, "Method path too long");
		return;
	}
	if (s->s_bad_timeout) {
		h2_answer(s, GRPC_INVALID_ARGUMENT, "Malformed grpc-timeout");
		return;
	}
	if (s->s_authz_twice) {
		h2_answer(s, GRPC_UNAUTHENTICATED, "More than one authorization entry");
		return;
	}
	/* until forwarded: body_timeout for the first message, or the deadline if sooner */
	ms = h2_cfg(hc)->p_body_timeout_ms;
	s->s_timer_is_deadline = false;
	if (s->s_has_timeout && s->s_timeout_ms <= ms) {
		ms = s->s_timeout_ms;
		s->s_timer_is_deadline = true;
	}
	ev_timer_add(w->w_loop, &s->s_timer, ms, h2_stream_timer_cb, s);
	k = limit_check_client(w->w_px->px_limit, &worker_snap(w)->s_conf.c_limits, hc->hc_akey,
			       hc->hc_akeylen, limit_now_ns(), &wait);
	if (k != LIMIT_NONE) {
		h2_limited(s, k);
		return;
	}
	h2_peer_refresh(hc);
	h2_authenticate(s, s->s_authz.b != NULL ? (const char *)s->s_authz.b : NULL,
			h2buf_pending(&s->s_authz), hc->hc_has_peer ? &hc->hc_peer : NULL,
			hc->hc_akey, hc->hc_akeylen);
	h2buf_free(&s->s_authz, true);
}

/* H2S_MESSAGE: is the first message here? Then the model decides. */
static void h2_stream_message(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;
	struct snap *snap = worker_snap(w);
	static const uint8_t none[1];
	const uint8_t *p = s->s_req.b != NULL ? s->s_req.b + s->s_req.off : none;
	size_t have = h2buf_pending(&s->s_req);
	uint64_t len;
	enum limit_kind k;
	unsigned wait = 0;

	if (have < 5) {
		if (s->s_req_eof && have > 0) {
			h2_answer(s, GRPC_INVALID_ARGUMENT, "Truncated gRPC message");
			return;
		}
		if (!s->s_req_eof)
			return;
		len = 0; /* no message at all: no model name */
	} else {
		len = (uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 8 | p[4];
		if (len > h2_cfg(hc)->p_grpc_max_message) {
			h2_answer(s, GRPC_RESOURCE_EXHAUSTED,
				  "Request message larger than grpc_max_message");
			return;
		}
		if (p[0] != 0) {
			h2_answer(s, GRPC_UNIMPLEMENTED,
				  "Compressed first message: tfguard must read model_spec");
			return;
		}
		if (have < 5 + len) {
			if (s->s_req_eof)
				h2_answer(s, GRPC_INVALID_ARGUMENT, "Truncated gRPC message");
			return;
		}
	}
	switch (grpc_model_check(&snap->s_conf, s->s_user, have >= 5 ? p + 5 : p, (size_t)len,
				 s->s_depth, s->s_model, &s->s_model_len)) {
	case GRPC_MODEL_OK:
		break;
	case GRPC_MODEL_DENIED:
		h2_answer(s, GRPC_PERMISSION_DENIED,
			  "Permission denied: this user may not call this model");
		return;
	case GRPC_MODEL_NONE:
		h2_answer(s, GRPC_PERMISSION_DENIED,
			  "Permission denied: no model_spec.name in the request");
		return;
	case GRPC_MODEL_BAD:
		h2_answer(s, GRPC_INVALID_ARGUMENT, "Malformed request message");
		return;
	}
	s->s_model_known = true;
	k = limit_check_model(w->w_px->px_limit, &snap->s_conf.c_limits, s->s_model, s->s_model_len,
			      limit_now_ns(), &wait);
	if (k != LIMIT_NONE) {
		h2_limited(s, k);
		return;
	}
	h2_stream_forward(s);
}

/*
 * Acknowledges the first message's bytes as they come, before it is forwarded. The whole
 * message (its length is in its prefix) is reserved out of the connection's budget first,
 * so concurrent calls cannot each hold part of it and all wait for more: a call that does
 * not fit waits (its window closed) until budget is given back (h2_early_give).
 */
static void h2_stream_early(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	size_t have = h2buf_pending(&s->s_req), n;
	const uint8_t *p;
	uint64_t need;

	if (s->s_req_early == 0 && s->s_req_resv == 0) {
		if (have < 5)
			return;
		p = s->s_req.b + s->s_req.off;
		need =
		    5 + ((uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 8 | p[4]);
		if (need > 5 + h2_cfg(hc)->p_grpc_max_message)
			return; /* refused by h2_stream_message */
		if (hc->hc_early + need > h2_cfg(hc)->p_grpc_max_message + H2_CONN_WINDOW) {
			h2_req_ack_conn(s); /* wait for budget, without the connection's window */
			return;
		}
		s->s_req_resv = (size_t)need;
		hc->hc_early += (size_t)need;
	}
	n = s->s_req_owed < s->s_req_resv ? s->s_req_owed : s->s_req_resv;
	if (n > 0) {
		h2_req_ack(s, n);
		s->s_req_resv -= n;
		s->s_req_early += n;
	}
}

/*
 * New request bytes or end of request. In H2S_MESSAGE the first message is read whole,
 * acknowledged as it comes (h2_stream_early).
 */
static void h2_stream_progress(struct h2stream *s)
{
	switch (s->s_state) {
	case H2S_MESSAGE:
		h2_stream_early(s);
		h2_stream_message(s);
		break;
	case H2S_FORWARD:
		if (s->s_req_deferred && s->s_up != NULL && s->s_uid > 0) {
			s->s_req_deferred = false;
			(void)nghttp2_session_resume_data(s->s_up->u_s, s->s_uid);
			s->s_up->u_dirty = true;
		}
		break;
	default:
		break;
	}
}

/* ---- backend side ------------------------------------------------------------------------- */

/* Request body for the backend: out of s_req, acknowledging it to the client. */
static ssize_t h2_up_read(nghttp2_session *us, int32_t id, uint8_t *buf, size_t len,
			  uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct h2stream *s = src->ptr;
	struct h2conn *hc;
	size_t n, early;

	(void)us;
	(void)id;
	(void)arg;
	if (s == NULL || s->s_state != H2S_FORWARD)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	hc = s->s_hc;
	h2_touch(hc); /* window updates for the client */
	n = h2buf_pending(&s->s_req);
	if (n > len)
		n = len;
	if (n > 0) {
		memcpy(buf, s->s_req.b + s->s_req.off, n);
		s->s_req.off += n;
		s->s_bytes_in += n;
		early = n < s->s_req_early ? n : s->s_req_early;
		s->s_req_early -= early;
		h2_early_give(hc, early);
		if (n - early > 0)
			h2_req_ack(s, n - early);
	}
	if (h2buf_pending(&s->s_req) == 0) {
		s->s_req.off = s->s_req.len = 0;
		if (s->s_req_eof)
			*flags |= NGHTTP2_DATA_FLAG_EOF;
		else if (n == 0) {
			s->s_req_deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t)n;
}

static void h2_up_submit(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	struct h2up *up = s->s_up;
	nghttp2_nv nva[H2_MAX_HEADERS + 8];
	nghttp2_data_provider prd = { .source.ptr = s, .read_callback = h2_up_read };
	size_t n = 0;
	int32_t id;
	const struct addr *be = &h2_cfg(hc)->p_backend_grpc;

#define NVL(nm, v, vl)                                                                             \
	nva[n++] = (nghttp2_nv){ (uint8_t *)(nm), (uint8_t *)(v), strlen(nm), (vl),                \
				 NGHTTP2_NV_FLAG_NONE }
	NVL(":method", "POST", 4);
	NVL(":scheme", "http", 4);
	NVL(":path", s->s_path, s->s_path_len);
	if (s->s_authority_len > 0)
		NVL(":authority", s->s_authority, s->s_authority_len);
	else
		NVL(":authority", be->a_text, strlen(be->a_text));
	n = h2hdrs_nv(&s->s_hdrs, nva, n, H2_MAX_HEADERS + 4);
	NVL("x-forwarded-for", hc->hc_peer_ip, strlen(hc->hc_peer_ip));
	NVL("x-forwarded-proto", "https", 5);
	NVL("x-forwarded-user", s->s_user, s->s_user_len);
#undef NVL
	s->s_state = H2S_FORWARD;
	id = nghttp2_submit_request(up->u_s, NULL, nva, n, &prd, s);
	up->u_dirty = true;
	if (id < 0) {
		s->s_state = H2S_BACKEND_WAIT;
		h2_answer(s, GRPC_UNAVAILABLE, "Backend unavailable (no stream)");
		return;
	}
	s->s_uid = id;
	/* after forwarding: the client's own deadline, or response_timeout for the response
	 * headers (REST's limit) */
	ev_timer_del(hc->hc_w->w_loop, &s->s_timer);
	if (!s->s_has_timeout) {
		s->s_timer_is_response = true;
		ev_timer_add(hc->hc_w->w_loop, &s->s_timer, h2_cfg(hc)->p_response_timeout_ms,
			     h2_stream_timer_cb, s);
	} else {
		uint64_t spent = ev_now(hc->hc_w->w_loop) - s->s_start_ms;

		s->s_timer_is_deadline = true;
		ev_timer_add(hc->hc_w->w_loop, &s->s_timer,
			     s->s_timeout_ms > spent ? s->s_timeout_ms - spent : 0,
			     h2_stream_timer_cb, s);
	}
}

static struct h2up *h2_up_open(struct h2pool *p);

/*
 * The backend connection for a new stream: the least busy open one while it has fewer
 * than H2_UP_STREAMS streams, else a new one (up to H2_UP_MAX per worker), else the least
 * busy all the same (nghttp2 queues past the backend's MAX_CONCURRENT_STREAMS).
 */
static struct h2up *h2_up_pick(struct h2pool *p)
{
	struct h2up *up, *best = NULL;

	for (up = p->p_ups; up != NULL; up = up->u_next)
		if (!up->u_dead && !up->u_goaway &&
		    (best == NULL || up->u_nstreams < best->u_nstreams))
			best = up;
	if (best != NULL && (best->u_nstreams < H2_UP_STREAMS || p->p_nups >= H2_UP_MAX))
		return best;
	if (p->p_nups < H2_UP_MAX + 2) { /* + room for connections draining after GOAWAY */
		up = h2_up_open(p);
		if (up != NULL)
			return up;
	}
	return best;
}

static void h2_up_log(struct h2pool *p, const char *why)
{
	struct worker *w = p->p_w;
	uint64_t now = ev_now(w->w_loop);

	if (w->w_backend_logged == 0 || now - w->w_backend_logged >= 1000) {
		w->w_backend_logged = now;
		log_warn("backend %s (gRPC): %s", w->w_px->px_conf.c_proxy.p_backend_grpc.a_text,
			 why);
	}
}

static void h2_stream_forward(struct h2stream *s)
{
	struct h2conn *hc = s->s_hc;
	struct worker *w = hc->hc_w;
	struct limit *l = w->w_px->px_limit;
	const struct conf_limits *cl = &worker_snap(w)->s_conf.c_limits;
	struct h2pool *p = h2_pool(w);

	/* gRPC calls do not wait in the queue: refused at once (and counted) */
	switch (limit_inflight_try(l, cl, s->s_user, s->s_user_len)) {
	case LIMIT_SLOT_HELD:
		s->s_lim_held = true;
		break;
	case LIMIT_SLOT_QUEUED: /* never from limit_inflight_try() */
	case LIMIT_SLOT_REFUSED:
		h2_limited(s, LIMIT_INFLIGHT);
		return;
	case LIMIT_SLOT_FREE:
		break;
	}
	s->s_state = H2S_BACKEND_WAIT;
	s->s_up = p != NULL ? h2_up_pick(p) : NULL;
	if (s->s_up == NULL) {
		metrics_add(&w->w_m.m_up_errors[METRICS_UP_CONNECT], 1);
		if (p != NULL)
			h2_up_log(p, strerror(errno));
		h2_answer(s, GRPC_UNAVAILABLE, "Backend unavailable");
		return;
	}
	s->s_up->u_nstreams++;
	if (!s->s_up->u_connecting) {
		ev_timer_del(w->w_loop, &s->s_up->u_timer); /* not idle any more */
		h2_up_submit(s);
	}
}

/* Closes up (its streams were failed or detached before). */
static void h2_up_close(struct h2up *up)
{
	struct h2pool *p = up->u_pool;
	struct worker *w = p->p_w;
	struct h2up **pp;

	ev_timer_del(w->w_loop, &up->u_timer);
	ev_del(w->w_loop, up->u_fd);
	close(up->u_fd);
	nghttp2_session_del(up->u_s);
	for (pp = &p->p_ups; *pp != NULL; pp = &(*pp)->u_next)
		if (*pp == up) {
			*pp = up->u_next;
			break;
		}
	p->p_nups--;
	free(up);
}

/* up is dead: every stream on it (or waiting for it) gets UNAVAILABLE, then it closes. */
static void h2_up_fail(struct h2up *up)
{
	struct h2pool *p = up->u_pool;
	struct worker *w = p->p_w;
	struct h2conn *hc;

	metrics_add(&w->w_m.m_up_errors[up->u_connecting ? METRICS_UP_CONNECT : METRICS_UP_CLOSED],
		    1);
	h2_up_log(p, up->u_why != NULL ? up->u_why : "failed");
	for (hc = w->w_h2conns; hc != NULL; hc = hc->hc_next) {
		struct h2stream *s;

		for (s = hc->hc_streams; s != NULL; s = s->s_next) {
			if (s->s_up != up)
				continue;
			s->s_uid = 0; /* the session goes: no RST on it */
			if (s->s_state == H2S_FORWARD && s->s_resp_eof) {
				/* complete: only the client has to read it; no window to give */
				s->s_up = NULL;
				up->u_nstreams--;
				continue;
			}
			h2_answer(s, GRPC_UNAVAILABLE, "Backend unavailable");
			h2_touch(hc);
		}
	}
	h2_up_close(up);
}

static int h2_up_on_header(nghttp2_session *us, const nghttp2_frame *f, const uint8_t *name,
			   size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
			   void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(us, f->hd.stream_id);
	struct h2hdrs *h;

	(void)flags;
	(void)arg;
	if (s == NULL || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	h = f->headers.cat == NGHTTP2_HCAT_RESPONSE ? &s->s_rhdrs : &s->s_trl;
	if (f->headers.cat != NGHTTP2_HCAT_RESPONSE)
		s->s_trailers = true;
	if (h2_eq(name, namelen, "grpc-status")) {
		int code = 0;
		size_t i;

		for (i = 0; i < valuelen && i < 3 && value[i] >= '0' && value[i] <= '9'; i++)
			code = code * 10 + (value[i] - '0');
		s->s_grpc_status = code;
	}
	h->hh_bytes += namelen + valuelen + 32;
	if (h->hh_bytes > h2_cfg(s->s_hc)->p_max_header_bytes ||
	    h2hdrs_add(h, name, namelen, value, valuelen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

/* Response body for the client: out of s_resp, acknowledging it to the backend. */
static ssize_t h2_client_read(nghttp2_session *cs, int32_t id, uint8_t *buf, size_t len,
			      uint32_t *flags, nghttp2_data_source *src, void *arg)
{
	struct h2stream *s = src->ptr;
	size_t n = h2buf_pending(&s->s_resp);

	(void)arg;
	if (n > len)
		n = len;
	if (n > 0) {
		memcpy(buf, s->s_resp.b + s->s_resp.off, n);
		s->s_resp.off += n;
		s->s_bytes_out += n;
		if (s->s_up != NULL) {
			if (s->s_uid > 0)
				(void)nghttp2_session_consume(s->s_up->u_s, s->s_uid, n);
			else
				(void)nghttp2_session_consume_connection(s->s_up->u_s, n);
			s->s_up->u_dirty = true;
		}
	}
	if (h2buf_pending(&s->s_resp) == 0) {
		s->s_resp.off = s->s_resp.len = 0;
		if (s->s_resp_eof) {
			nghttp2_nv nva[H2_MAX_HEADERS];
			size_t nt = h2hdrs_nv(&s->s_trl, nva, 0, H2_MAX_HEADERS);

			*flags |= NGHTTP2_DATA_FLAG_EOF;
			if (nt > 0) {
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
				if (nghttp2_submit_trailer(cs, id, nva, nt) != 0)
					return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			}
		} else if (n == 0) {
			s->s_resp_deferred = true;
			return NGHTTP2_ERR_DEFERRED;
		}
	}
	return (ssize_t)n;
}

static void h2_client_resume(struct h2stream *s)
{
	h2_touch(s->s_hc);
	if (s->s_resp_deferred) {
		s->s_resp_deferred = false;
		(void)nghttp2_session_resume_data(s->s_hc->hc_s, s->s_id);
	}
}

static int h2_up_on_frame(nghttp2_session *us, const nghttp2_frame *f, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(us, f->hd.stream_id);
	struct h2up *up = arg;
	struct h2conn *hc;

	if (f->hd.type == NGHTTP2_GOAWAY) {
		/* streams up to its last id finish; nghttp2 closes the others (REFUSED_STREAM) */
		up->u_goaway = true;
		return 0;
	}
	if (s == NULL || s->s_state != H2S_FORWARD)
		return 0;
	hc = s->s_hc;
	h2_touch(hc);
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
		nghttp2_nv nva[H2_MAX_HEADERS];
		size_t n = h2hdrs_nv(&s->s_rhdrs, nva, 0, H2_MAX_HEADERS);
		nghttp2_data_provider prd = { .source.ptr = s, .read_callback = h2_client_read };
		bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

		s->s_resp_started = true;
		if (s->s_timer_is_response) {
			s->s_timer_is_response = false;
			ev_timer_del(hc->hc_w->w_loop, &s->s_timer);
		}
		if (end)
			s->s_resp_eof = true;
		if (nghttp2_submit_response(hc->hc_s, s->s_id, nva, n, end ? NULL : &prd) != 0)
			(void)nghttp2_submit_rst_stream(hc->hc_s, NGHTTP2_FLAG_NONE, s->s_id,
							NGHTTP2_INTERNAL_ERROR);
		return 0;
	}
	if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		s->s_resp_eof = true;
		h2_client_resume(s);
	}
	return 0;
}

static int h2_up_on_data(nghttp2_session *us, uint8_t flags, int32_t id, const uint8_t *data,
			 size_t len, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(us, id);

	(void)flags;
	(void)arg;
	if (s == NULL || s->s_state != H2S_FORWARD) {
		(void)nghttp2_session_consume(us, id, len);
		return 0;
	}
	if (h2buf_put(&s->s_resp, data, len) < 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	h2_client_resume(s);
	return 0;
}

static int h2_up_on_close(nghttp2_session *us, int32_t id, uint32_t err, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(us, id);

	(void)arg;
	if (s == NULL)
		return 0;
	s->s_uid = 0;
	h2_touch(s->s_hc);
	if (s->s_state != H2S_FORWARD || s->s_resp_eof)
		return 0;
	/* the backend reset the stream before its end */
	if (!s->s_resp_started)
		h2_answer(s, err == NGHTTP2_REFUSED_STREAM ? GRPC_UNAVAILABLE : GRPC_INTERNAL,
			  "Backend reset the stream");
	else
		h2_answer(s, GRPC_INTERNAL, "Backend reset the stream");
	return 0;
}

static nghttp2_session_callbacks *h2_up_callbacks(void)
{
	static nghttp2_session_callbacks *cbs;

	if (cbs == NULL) {
		nghttp2_session_callbacks *c;

		if (nghttp2_session_callbacks_new(&c) != 0)
			return NULL;
		nghttp2_session_callbacks_set_on_header_callback(c, h2_up_on_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(c, h2_up_on_frame);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, h2_up_on_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(c, h2_up_on_close);
		cbs = c;
	}
	return cbs;
}

static nghttp2_option *h2_options(void)
{
	static nghttp2_option *opt;

	if (opt == NULL) {
		nghttp2_option *o;

		if (nghttp2_option_new(&o) != 0)
			return NULL;
		nghttp2_option_set_no_auto_window_update(o, 1);
		nghttp2_option_set_max_outbound_ack(o, 1000);
		nghttp2_option_set_max_settings(o, 32);
		opt = o;
	}
	return opt;
}

static void h2_up_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg);

/* Connect timeout while connecting; afterwards the idle timeout of an unused connection. */
static void h2_up_timeout(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct h2up *up = arg;
	struct worker *w = up->u_pool->p_w;

	(void)loop;
	(void)fd;
	(void)events;
	if (up->u_connecting) {
		metrics_add(&w->w_m.m_up_errors[METRICS_UP_TIMEOUT], 1);
		up->u_dead = true;
		up->u_why = "connect timed out";
	} else if (up->u_nstreams == 0) {
		h2_up_close(up);
		return;
	}
	h2_flush_all(w);
}

/* Opens a backend connection (non-blocking) with its client session. NULL with errno. */
static struct h2up *h2_up_open(struct h2pool *p)
{
	struct worker *w = p->p_w;
	const struct conf_proxy *cp = &w->w_px->px_conf.c_proxy;
	const struct addr *be = &cp->p_backend_grpc;
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cp->p_max_header_bytes },
	};
	struct h2up *up;
	int one = 1, e;

	up = calloc(1, sizeof(*up));
	if (up == NULL)
		return NULL;
	up->u_pool = p;
	up->u_fd = socket(be->a_ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (up->u_fd < 0)
		goto fail;
	(void)setsockopt(up->u_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(up->u_fd, (const struct sockaddr *)&be->a_ss, be->a_len) < 0 &&
	    errno != EINPROGRESS)
		goto fail;
	if (nghttp2_session_client_new2(&up->u_s, h2_up_callbacks(), up, h2_options()) != 0) {
		errno = ENOMEM;
		goto fail;
	}
	if (nghttp2_submit_settings(up->u_s, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
	    nghttp2_session_set_local_window_size(up->u_s, NGHTTP2_FLAG_NONE, 0,
						  H2_UP_CONN_WINDOW) != 0 ||
	    ev_add(w->w_loop, up->u_fd, EV_WRITE, h2_up_cb, up) < 0) {
		errno = ENOMEM;
		goto fail;
	}
	up->u_connecting = true;
	up->u_dirty = true;
	up->u_next = p->p_ups;
	p->p_ups = up;
	p->p_nups++;
	ev_timer_add(w->w_loop, &up->u_timer, cp->p_connect_timeout_ms, h2_up_timeout, up);
	return up;
fail:
	e = errno;
	if (up->u_s != NULL)
		nghttp2_session_del(up->u_s);
	if (up->u_fd >= 0)
		close(up->u_fd);
	free(up);
	errno = e;
	return NULL;
}

/* The connect finished: the streams waiting for it go out. */
static void h2_up_connected(struct h2up *up)
{
	struct worker *w = up->u_pool->p_w;
	struct h2conn *hc;
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(up->u_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err != 0) {
		up->u_dead = true;
		up->u_why = strerror(err);
		return;
	}
	up->u_connecting = false;
	ev_timer_del(w->w_loop, &up->u_timer);
	for (hc = w->w_h2conns; hc != NULL; hc = hc->hc_next) {
		struct h2stream *s;

		for (s = hc->hc_streams; s != NULL; s = s->s_next)
			if (s->s_up == up && s->s_state == H2S_BACKEND_WAIT) {
				h2_up_submit(s);
				h2_touch(hc);
			}
	}
}

/* Reads what the backend sent. */
static void h2_up_recv(struct h2up *up)
{
	uint8_t buf[H2_READ_BUF];

	while (!up->u_dead) {
		ssize_t r = recv(up->u_fd, buf, sizeof(buf), 0);

		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r <= 0) {
			up->u_dead = true;
			up->u_why = r == 0 ? "closed the connection" : strerror(errno);
			return;
		}
		up->u_dirty = true; /* acknowledgements, window updates */
		if (nghttp2_session_mem_recv(up->u_s, buf, (size_t)r) < 0) {
			up->u_dead = true;
			up->u_why = "HTTP/2 protocol error";
			return;
		}
	}
}

/*
 * Sends what a session has for its peer: frames are coalesced in out (one write per
 * H2_OUT_BUF); a frame larger than the room left is written from nghttp2's own buffer.
 * wr writes to the peer. Returns 1 if bytes went out, 0 if nothing, -1 on a dead peer;
 * *blocked when the peer's socket is full.
 */
typedef ssize_t (*h2_write_fn)(void *ctx, const void *p, size_t n);

static int h2_flush(void *ctx, nghttp2_session *s, uint8_t *out, size_t *off, size_t *len,
		    const uint8_t **chunk, size_t *coff, size_t *clen, h2_write_fn wr,
		    bool *blocked)
{
	int progress = 0;

	*blocked = false;
	for (;;) {
		ssize_t r;

		while (*chunk == NULL && *len < H2_OUT_BUF) {
			const uint8_t *d;
			ssize_t n = nghttp2_session_mem_send(s, &d);

			if (n < 0)
				return -1;
			if (n == 0)
				break;
			if ((size_t)n <= H2_OUT_BUF - *len) {
				memcpy(out + *len, d, (size_t)n);
				*len += (size_t)n;
			} else {
				*chunk = d;
				*coff = 0;
				*clen = (size_t)n;
			}
		}
		if (*off < *len) {
			r = wr(ctx, out + *off, *len - *off);
			if (r == TLS_WANT_WRITE || r == TLS_WANT_READ) {
				*blocked = true;
				return progress;
			}
			if (r <= 0)
				return -1;
			*off += (size_t)r;
			progress = 1;
			if (*off < *len)
				continue;
			*off = *len = 0;
		}
		if (*chunk != NULL) {
			r = wr(ctx, *chunk + *coff, *clen - *coff);
			if (r == TLS_WANT_WRITE || r == TLS_WANT_READ) {
				*blocked = true;
				return progress;
			}
			if (r <= 0)
				return -1;
			*coff += (size_t)r;
			progress = 1;
			if (*coff < *clen)
				continue;
			*chunk = NULL;
			continue;
		}
		if (*len == 0)
			return progress;
	}
}

static ssize_t h2_up_write(void *ctx, const void *p, size_t n)
{
	struct h2up *up = ctx;
	ssize_t r = send(up->u_fd, p, n, MSG_NOSIGNAL);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return TLS_WANT_WRITE;
	return r;
}

static ssize_t h2_client_write(void *ctx, const void *p, size_t n)
{
	struct h2conn *hc = ctx;
	ssize_t r;

	if (hc->hc_tls != NULL)
		return tls_write(hc->hc_tls, p, n);
	r = send(hc->hc_fd, p, n, MSG_NOSIGNAL);
	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? TLS_WANT_WRITE : -1;
	return r;
}

static ssize_t h2_client_read_bytes(struct h2conn *hc, void *p, size_t n)
{
	ssize_t r;

	if (hc->hc_tls != NULL)
		return tls_read(hc->hc_tls, p, n);
	r = recv(hc->hc_fd, p, n, 0);
	if (r < 0)
		return (errno == EAGAIN || errno == EINTR) ? TLS_WANT_READ : -1;
	return r;
}

/* ---- client side callbacks ------------------------------------------------------------------ */

static int h2_on_begin_headers(nghttp2_session *cs, const nghttp2_frame *f, void *arg)
{
	struct h2conn *hc = arg;
	struct h2stream *s;

	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = h2_stream_new(hc, f->hd.stream_id);
	if (s == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	nghttp2_session_set_stream_user_data(cs, f->hd.stream_id, s);
	/* until the header block is complete (h2_stream_begin replaces it) */
	ev_timer_add(hc->hc_w->w_loop, &s->s_timer, h2_cfg(hc)->p_header_timeout_ms,
		     h2_stream_timer_cb, s);
	return 0;
}

/* One request header: pseudo-headers and ours are kept apart, the rest is forwarded. */
static int h2_on_header(nghttp2_session *cs, const nghttp2_frame *f, const uint8_t *name, size_t nl,
			const uint8_t *value, size_t vl, uint8_t flags, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(cs, f->hd.stream_id);
	struct h2conn *hc = arg;

	(void)flags;
	if (s == NULL || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* request trailers are not forwarded (gRPC clients send none) */
	s->s_hdrs.hh_bytes += nl + vl + 32;
	if (s->s_hdrs.hh_bytes > h2_cfg(hc)->p_max_header_bytes)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM: header list too large */
	if (nl > 0 && name[0] == ':') {
		if (h2_eq(name, nl, ":method"))
			s->s_post = h2_eq(value, vl, "POST");
		else if (h2_eq(name, nl, ":path")) {
			s->s_path_long = vl >= sizeof(s->s_path);
			h2_copy(s->s_path, sizeof(s->s_path), &s->s_path_len, value, vl);
		} else if (h2_eq(name, nl, ":authority")) {
			h2_copy(s->s_authority, sizeof(s->s_authority), &s->s_authority_len, value,
				vl);
		}
		return 0;
	}
	if (h2_eq(name, nl, "authorization")) {
		if (s->s_authz.b != NULL)
			s->s_authz_twice = true;
		else if (h2buf_put(&s->s_authz, value, vl) < 0 || h2buf_put(&s->s_authz, "", 1) < 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		else
			s->s_authz.len--; /* NUL-terminated, not counted */
		return 0;
	}
	/* ours alone, whatever the client says */
	if (h2_eq(name, nl, "x-forwarded-for") || h2_eq(name, nl, "x-forwarded-user") ||
	    h2_eq(name, nl, "x-forwarded-proto") || h2_eq(name, nl, "forwarded") ||
	    h2_eq(name, nl, "host"))
		return 0;
	if (h2_eq(name, nl, "content-type"))
		s->s_grpc_ct = vl >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
			       (vl == 16 || value[16] == '+' || value[16] == ';');
	else if (h2_eq(name, nl, "user-agent"))
		h2_copy(s->s_ua, sizeof(s->s_ua), &s->s_ua_len, value, vl);
	else if (h2_eq(name, nl, "grpc-timeout")) {
		s->s_has_timeout = true;
		if (grpc_timeout_parse((const char *)value, vl, &s->s_timeout_ms) < 0)
			s->s_bad_timeout = true;
	}
	if (h2hdrs_add(&s->s_hdrs, name, nl, value, vl) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	return 0;
}

/* Rapid reset: one token per RST_STREAM from the client. */
static void h2_rst_count(struct h2conn *hc)
{
	uint64_t now = ev_now(hc->hc_w->w_loop);
	uint64_t cap = (uint64_t)H2_RST_BURST * 1000u;

	hc->hc_rst_tokens_m += (now - hc->hc_rst_last_ms) * H2_RST_RATE;
	if (hc->hc_rst_tokens_m > cap)
		hc->hc_rst_tokens_m = cap;
	hc->hc_rst_last_ms = now;
	if (hc->hc_rst_tokens_m >= 1000) {
		hc->hc_rst_tokens_m -= 1000;
		return;
	}
	if (!hc->hc_dead)
		log_warn("h2: %s: stream reset flood (more than %u RST_STREAM, %u/s): "
			 "disconnected",
			 hc->hc_peer_text, H2_RST_BURST, H2_RST_RATE);
	(void)nghttp2_session_terminate_session(hc->hc_s, NGHTTP2_ENHANCE_YOUR_CALM);
	hc->hc_dead = true;
}

static int h2_on_frame(nghttp2_session *cs, const nghttp2_frame *f, void *arg)
{
	struct h2conn *hc = arg;
	struct h2stream *s = nghttp2_session_get_stream_user_data(cs, f->hd.stream_id);

	if (f->hd.type == NGHTTP2_RST_STREAM) {
		h2_rst_count(hc);
		return 0;
	}
	if (s == NULL)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
			s->s_req_eof = true;
		h2_stream_begin(s);
		return 0;
	}
	if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
	    (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		s->s_req_eof = true;
		h2_stream_progress(s);
	}
	return 0;
}

static int h2_on_data(nghttp2_session *cs, uint8_t flags, int32_t id, const uint8_t *data,
		      size_t len, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(cs, id);

	(void)flags;
	(void)arg;
	if (s == NULL || s->s_state == H2S_ANSWERED) {
		(void)nghttp2_session_consume(cs, id, len);
		return 0;
	}
	if (h2buf_put(&s->s_req, data, len) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->s_req_owed += len;
	h2_stream_progress(s);
	return 0;
}

static int h2_on_close(nghttp2_session *cs, int32_t id, uint32_t err, void *arg)
{
	struct h2stream *s = nghttp2_session_get_stream_user_data(cs, id);

	(void)err;
	(void)arg;
	if (s != NULL)
		h2_stream_free(s);
	return 0;
}

static nghttp2_session_callbacks *h2_callbacks(void)
{
	static nghttp2_session_callbacks *cbs;

	if (cbs == NULL) {
		nghttp2_session_callbacks *c;

		if (nghttp2_session_callbacks_new(&c) != 0)
			return NULL;
		nghttp2_session_callbacks_set_on_begin_headers_callback(c, h2_on_begin_headers);
		nghttp2_session_callbacks_set_on_header_callback(c, h2_on_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(c, h2_on_frame);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, h2_on_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(c, h2_on_close);
		cbs = c;
	}
	return cbs;
}

/* ---- the connection ------------------------------------------------------------------------ */

static void h2_close(struct h2conn *hc)
{
	struct worker *w = hc->hc_w;

	while (hc->hc_streams != NULL)
		h2_stream_free(hc->hc_streams);
	if (hc->hc_dirty) {
		struct h2pool *p = h2_pool(w);
		struct h2conn **pp;

		for (pp = &p->p_dirty; *pp != NULL; pp = &(*pp)->hc_dirty_next)
			if (*pp == hc) {
				*pp = hc->hc_dirty_next;
				break;
			}
	}
	ev_timer_del(w->w_loop, &hc->hc_timer);
	if (hc->hc_s != NULL)
		nghttp2_session_del(hc->hc_s);
	ev_del(w->w_loop, hc->hc_fd);
	if (hc->hc_tls != NULL)
		tls_free(hc->hc_tls);
	close(hc->hc_fd);
	if (hc->hc_prev != NULL)
		hc->hc_prev->hc_next = hc->hc_next;
	else
		w->w_h2conns = hc->hc_next;
	if (hc->hc_next != NULL)
		hc->hc_next->hc_prev = hc->hc_prev;
	w->w_nconns--;
	atomic_fetch_sub(&w->w_px->px_nconns, 1);
	metrics_sub(&w->w_m.m_conns_open, 1);
	free(hc);
	if (w->w_draining && w->w_nconns == 0)
		ev_stop(w->w_loop);
}

/*
 * Whether some stream is doing something that has its own time limit (authentication,
 * first message, backend). Streams only answered, or still in their headers (header_timeout),
 * do not keep the connection from idling out.
 */
static bool h2_busy(const struct h2conn *hc)
{
	const struct h2stream *s;

	for (s = hc->hc_streams; s != NULL; s = s->s_next)
		if (s->s_state != H2S_HEADERS && s->s_state != H2S_ANSWERED)
			return true;
	return false;
}

static void h2_idle_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct h2conn *hc = arg;

	(void)loop;
	(void)fd;
	(void)events;
	if (!h2_busy(hc)) {
		struct worker *w = hc->hc_w;

		h2_close(hc);
		h2_flush_all(w);
	}
}

/* Reads the client until it would block (or our output to it is stuck). */
static void h2_client_recv(struct h2conn *hc)
{
	uint8_t buf[H2_READ_BUF];

	for (;;) {
		ssize_t r = h2_client_read_bytes(hc, buf, sizeof(buf));

		if (r == TLS_WANT_READ || r == TLS_WANT_WRITE) {
			hc->hc_want |= r == TLS_WANT_READ ? EV_READ : EV_WRITE;
			return;
		}
		if (r <= 0) {
			hc->hc_dead = true;
			return;
		}
		if (nghttp2_session_mem_recv(hc->hc_s, buf, (size_t)r) < 0) {
			hc->hc_dead = true;
			return;
		}
		if (hc->hc_dead)
			return;
		/* bytes in hand already: stop when our output to this client is stuck */
		if (hc->hc_out_len > hc->hc_out_off || hc->hc_chunk != NULL)
			return;
	}
}

/*
 * Does everything that can be done now on the client side: read it, send it what its
 * session has, then set its interest mask and idle timer, or close it. The backend
 * connections it touched are flushed by h2_flush_all.
 */
static void h2_run(struct h2conn *hc)
{
	struct worker *w = hc->hc_w;
	bool cblocked = false;
	unsigned k;

	if (hc->hc_in_run)
		return;
	hc->hc_in_run = true;
	if (hc->hc_recheck) {
		struct h2stream *s, *next;

		hc->hc_recheck = false;
		for (s = hc->hc_streams; s != NULL; s = next) {
			next = s->s_next;
			if (s->s_state == H2S_MESSAGE && s->s_req_resv == 0 && s->s_req_early == 0)
				h2_stream_progress(s);
		}
	}
	for (k = 0; k < 8 && !hc->hc_dead; k++) {
		hc->hc_want = 0;
		if (hc->hc_out_len == hc->hc_out_off && hc->hc_chunk == NULL)
			h2_client_recv(hc);
		if (h2_flush(hc, hc->hc_s, hc->hc_out, &hc->hc_out_off, &hc->hc_out_len,
			     &hc->hc_chunk, &hc->hc_chunk_off, &hc->hc_chunk_len, h2_client_write,
			     &cblocked) < 0) {
			hc->hc_dead = true;
			break;
		}
		/* the client's reads ended in "would block" (nothing hidden in OpenSSL), or
		 * its socket is full: epoll takes over */
		if (hc->hc_want != 0 || cblocked)
			break;
	}
	hc->hc_in_run = false;
	if (hc->hc_dead && hc->hc_out_len == hc->hc_out_off && hc->hc_chunk == NULL)
		/* best effort: the GOAWAY of terminate_session, if the socket takes it now */
		(void)h2_flush(hc, hc->hc_s, hc->hc_out, &hc->hc_out_off, &hc->hc_out_len,
			       &hc->hc_chunk, &hc->hc_chunk_off, &hc->hc_chunk_len, h2_client_write,
			       &cblocked);
	if (hc->hc_dead ||
	    (!nghttp2_session_want_read(hc->hc_s) && !nghttp2_session_want_write(hc->hc_s)) ||
	    (hc->hc_draining && hc->hc_nstreams == 0 && !cblocked)) {
		h2_close(hc);
		return;
	}
	if (cblocked)
		hc->hc_want = EV_WRITE;
	else if (hc->hc_want == 0)
		hc->hc_want = EV_READ;
	if (ev_mod(w->w_loop, hc->hc_fd, hc->hc_want) < 0) {
		h2_close(hc);
		return;
	}
	/*
	 * The idle period starts when the last call ends, not at the last frame: a PING,
	 * SETTINGS or a refused stream is no work, and must not keep a connection that
	 * does nothing open for ever.
	 */
	if (h2_busy(hc)) {
		ev_timer_del(w->w_loop, &hc->hc_timer);
		hc->hc_idle_armed = false;
	} else if (!hc->hc_idle_armed) {
		ev_timer_add(w->w_loop, &hc->hc_timer, h2_cfg(hc)->p_idle_timeout_ms, h2_idle_cb,
			     hc);
		hc->hc_idle_armed = true;
	}
}

static struct h2pool *h2_pool(struct worker *w)
{
	if (w->w_h2pool == NULL) {
		w->w_h2pool = calloc(1, sizeof(*w->w_h2pool));
		if (w->w_h2pool != NULL)
			w->w_h2pool->p_w = w;
	}
	return w->w_h2pool;
}

/* Sends what one backend session has; dead connections fail their streams. */
static void h2_up_flush(struct h2up *up)
{
	struct worker *w = up->u_pool->p_w;
	bool blocked = false;

	up->u_dirty = false;
	if (!up->u_dead && !up->u_connecting &&
	    h2_flush(up, up->u_s, up->u_out, &up->u_out_off, &up->u_out_len, &up->u_chunk,
		     &up->u_chunk_off, &up->u_chunk_len, h2_up_write, &blocked) < 0) {
		up->u_dead = true;
		up->u_why = "write failed";
	}
	if (up->u_dead) {
		h2_up_fail(up);
		return;
	}
	if (up->u_goaway && up->u_nstreams == 0 && !blocked) {
		h2_up_close(up); /* drained after its GOAWAY */
		return;
	}
	if (ev_mod(w->w_loop, up->u_fd,
		   up->u_connecting ? EV_WRITE : EV_READ | (blocked ? EV_WRITE : 0)) < 0) {
		up->u_dead = true;
		up->u_why = "epoll";
		h2_up_fail(up);
		return;
	}
	if (!up->u_connecting && up->u_nstreams == 0 && !ev_timer_armed(&up->u_timer))
		ev_timer_add(w->w_loop, &up->u_timer, w->w_px->px_conf.c_proxy.p_idle_timeout_ms,
			     h2_up_timeout, up);
}

/*
 * After any event: runs the client connections with work and flushes the backend
 * connections, until neither side has anything more (sending on one side acknowledges
 * data of the other, which then has frames to send). Bounded; whatever is left waits
 * for epoll.
 */
static void h2_flush_all(struct worker *w)
{
	struct h2pool *p = h2_pool(w);
	unsigned i;

	if (p == NULL || p->p_in_flush)
		return;
	p->p_in_flush = true;
	for (i = 0; i < 64; i++) {
		struct h2up *up, *next;
		bool any = false;

		for (up = p->p_ups; up != NULL; up = next) {
			next = up->u_next;
			if (up->u_dirty || up->u_dead) {
				any = true;
				h2_up_flush(up);
			}
		}
		while (p->p_dirty != NULL) {
			struct h2conn *hc = p->p_dirty;

			p->p_dirty = hc->hc_dirty_next;
			hc->hc_dirty = false;
			any = true;
			h2_run(hc);
		}
		if (!any)
			break;
	}
	p->p_in_flush = false;
}

static void h2_client_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct h2conn *hc = arg;
	struct worker *hc_w_of_closed = hc->hc_w;

	(void)loop;
	(void)fd;
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		h2_close(hc);
		h2_flush_all(hc_w_of_closed);
		return;
	}
	h2_touch(hc);
	h2_flush_all(hc->hc_w);
}

static void h2_up_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct h2up *up = arg;
	struct worker *w = up->u_pool->p_w;

	(void)loop;
	(void)fd;
	(void)events;
	if (up->u_connecting)
		h2_up_connected(up);
	if (!up->u_connecting && !up->u_dead)
		h2_up_recv(up);
	up->u_dirty = true;
	h2_flush_all(w);
}

void h2_accept(struct worker *w, int fd, struct tls *t, const struct tls_peer *peer,
	       const char *peer_text, const char *peer_ip, const uint8_t *akey, size_t akeylen)
{
	const struct conf_proxy *p = &w->w_px->px_conf.c_proxy;
	struct h2conn *hc = calloc(1, sizeof(*hc));
	nghttp2_settings_entry iv[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, p->p_grpc_max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)p->p_max_header_bytes },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};

	if (hc == NULL)
		goto fail;
	hc->hc_w = w;
	hc->hc_fd = fd;
	hc->hc_tls = t;
	if (peer != NULL) {
		hc->hc_peer = *peer; /* brought up to date by conn.c just before */
		hc->hc_has_peer = true;
		hc->hc_peer_gen = w->w_gen;
	}
	h2_copy(hc->hc_peer_text, sizeof(hc->hc_peer_text), &(size_t){ 0 }, peer_text,
		strlen(peer_text));
	h2_copy(hc->hc_peer_ip, sizeof(hc->hc_peer_ip), &(size_t){ 0 }, peer_ip, strlen(peer_ip));
	if (akeylen > sizeof(hc->hc_akey))
		akeylen = sizeof(hc->hc_akey);
	memcpy(hc->hc_akey, akey, akeylen);
	hc->hc_akeylen = akeylen;
	hc->hc_rst_tokens_m = (uint64_t)H2_RST_BURST * 1000u;
	hc->hc_rst_last_ms = ev_now(w->w_loop);
	if (h2_callbacks() == NULL || h2_options() == NULL ||
	    nghttp2_session_server_new2(&hc->hc_s, h2_callbacks(), hc, h2_options()) != 0)
		goto fail;
	if (nghttp2_submit_settings(hc->hc_s, NGHTTP2_FLAG_NONE, iv, 4) != 0 ||
	    nghttp2_session_set_local_window_size(hc->hc_s, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) !=
		0 ||
	    ev_set(w->w_loop, fd, EV_READ, h2_client_cb, hc) < 0) {
		nghttp2_session_del(hc->hc_s);
		goto fail;
	}
	hc->hc_next = w->w_h2conns;
	if (w->w_h2conns != NULL)
		w->w_h2conns->hc_prev = hc;
	w->w_h2conns = hc;
	h2_touch(hc); /* OpenSSL may hold decrypted bytes already: try before waiting */
	h2_flush_all(w);
	return;
fail:
	free(hc);
	ev_del(w->w_loop, fd);
	if (t != NULL)
		tls_free(t);
	close(fd);
	w->w_nconns--;
	atomic_fetch_sub(&w->w_px->px_nconns, 1);
	metrics_sub(&w->w_m.m_conns_open, 1);
}

void h2_auth_ready(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	struct auth_job *list = auth_queue_drain(w->w_h2aq), *j, *next;

	(void)loop;
	(void)fd;
	(void)events;
	/* first mark them all: a stream freed while another is handled must not free its job */
	for (j = list; j != NULL; j = j->aj_next)
		if (j->aj_arg != NULL)
			((struct h2stream *)j->aj_arg)->s_auth_done = true;
	for (j = list; j != NULL; j = next) {
		struct h2stream *s = j->aj_arg;

		next = j->aj_next;
		if (s != NULL) {
			h2_stream_auth_result(s, j);
			h2_touch(s->s_hc);
		} else {
			conn_auth_abandoned(w, j, ", gRPC"); /* its stream is gone */
		}
		auth_job_free(j);
	}
	h2_flush_all(w);
}

void h2_drain_idle(struct worker *w)
{
	struct h2conn *hc = w->w_h2conns;

	while (hc != NULL) {
		struct h2conn *next = hc->hc_next;

		if (!hc->hc_draining) {
			hc->hc_draining = true;
			(void)nghttp2_submit_goaway(
			    hc->hc_s, NGHTTP2_FLAG_NONE,
			    nghttp2_session_get_last_proc_stream_id(hc->hc_s), NGHTTP2_NO_ERROR,
			    NULL, 0);
		}
		h2_touch(hc);
		hc = next;
	}
	h2_flush_all(w);
}

void h2_close_all(struct worker *w)
{
	struct h2pool *p = w->w_h2pool;

	while (w->w_h2conns != NULL)
		h2_close(w->w_h2conns);
	if (p == NULL)
		return;
	while (p->p_ups != NULL)
		h2_up_close(p->p_ups);
	free(p);
	w->w_h2pool = NULL;
}
