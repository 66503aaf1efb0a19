/*
 * fuzz_h2: the gRPC request path (h2.c) fed with arbitrary HTTP/2 frames.
 *
 * The input is what a client sends after the connection preface. A real proxy
 * context is built once (conf with an [acl], auth with a {PLAIN} user whose login is
 * pre-cached so it is checked synchronously, limits, one worker loop) and a backend
 * that accepts connections but never answers. Each input goes over a socketpair into
 * h2_accept() (no TLS: the same code path after the handshake), the loop runs a few
 * rounds (backend connect, flushes), then the connection is closed. Invariants: no
 * crash or over-read (ASan under `make SAN=1`), the connection count comes back to
 * where it was, and the backend (its bytes decoded by a second nghttp2 session) never
 * sees an authorization header, and x-forwarded-user is always a verified user.
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "h2.h"
#include "log.h"
#include "proxy.h"

#define FUZZ_H2_MAX (48u << 10) /* fits a socketpair buffer: no blocking write */

static struct proxy px;
static struct worker w;
static struct snap snap;
static int backend_lfd = -1;

static void stop_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	ev_stop(loop);
}

static void noop_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)arg;
}

static void setup(void)
{
	static const char cfg[] = "[proxy]\nallow_plain_passwords = yes\ngrpc_max_message = 64k\n"
				  "grpc_max_streams = 8\nmax_header_bytes = 4096\n"
				  "auth_fail_limit = 1000000\n"
				  "[acl]\nalice = m1, @grpc:tfguard.test.Stream/*\n";
	static const char ht_text[] = "alice:{PLAIN}pw\nbob:{PLAIN}pw\n";
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t sl = sizeof(sin);
	struct auth_cred cred;
	const struct htpasswd_entry *e;
	struct htpasswd *ht;
	char err[256];

	conf_defaults(&px.px_conf);
	if (conf_load_buf(&px.px_conf, "fuzz.conf", cfg, sizeof(cfg) - 1, err, sizeof(err)) < 0)
		abort();
	backend_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (backend_lfd < 0 || bind(backend_lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(backend_lfd, 64) < 0 ||
	    getsockname(backend_lfd, (struct sockaddr *)&sin, &sl) < 0)
		abort();
	snprintf(err, sizeof(err), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	if (addr_parse(err, &px.px_conf.c_proxy.p_backend_grpc) < 0)
		abort();
	ht = htpasswd_load_buf("fuzz.htpasswd", ht_text, sizeof(ht_text) - 1, true, NULL, NULL, err,
			       sizeof(err));
	if (ht == NULL)
		abort();
	e = htpasswd_find(ht, "alice", 5);
	px.px_auth = auth_new(&px.px_conf.c_proxy, ht, 1, err, sizeof(err));
	px.px_limit = limit_new(1024, err, sizeof(err));
	if (e == NULL || px.px_auth == NULL || px.px_limit == NULL)
		abort();
	/* "Basic YWxpY2U6cHc=" (alice:pw) is a cache hit: no verifier thread involved */
	if (auth_basic_decode("Basic YWxpY2U6cHc=", 18, &cred) != AUTH_BASIC_OK)
		abort();
	auth_cache_insert(px.px_auth, &cred, e->e_id, auth_now_ms());
	auth_cred_wipe(&cred);
	pthread_mutex_init(&px.px_snap_lock, NULL);
	atomic_store(&snap.s_refs, 1);
	snap.s_conf = px.px_conf;
	px.px_snap = &snap;
	px.px_workers = &w;
	px.px_nworkers = 1;
	w.w_px = &px;
	w.w_loop = ev_new();
	w.w_h2aq = auth_queue_new();
	if (w.w_loop == NULL || w.w_h2aq == NULL ||
	    ev_add(w.w_loop, auth_queue_fd(w.w_h2aq), EV_READ, h2_auth_ready, &w) < 0)
		abort();
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LEVEL_ERROR); /* failed logins and floods are what it feeds in */
}

/* What reaches the backend: never credentials, always our own x-forwarded-user. */
static int backend_on_header(nghttp2_session *session, const nghttp2_frame *frame,
			     const uint8_t *name, size_t namelen, const uint8_t *value,
			     size_t valuelen, uint8_t flags, void *arg)
{
	(void)session;
	(void)frame;
	(void)flags;
	(void)arg;
	FUZZ_CHECK(!(namelen == 13 && memcmp(name, "authorization", 13) == 0));
	if (namelen == 16 && memcmp(name, "x-forwarded-user", 16) == 0)
		FUZZ_CHECK((valuelen == 5 && memcmp(value, "alice", 5) == 0) ||
			   (valuelen == 3 && memcmp(value, "bob", 3) == 0));
	return 0;
}

static nghttp2_session_callbacks *backend_callbacks(void)
{
	static nghttp2_session_callbacks *cbs;

	if (cbs == NULL) {
		if (nghttp2_session_callbacks_new(&cbs) != 0)
			abort();
		nghttp2_session_callbacks_set_on_header_callback(cbs, backend_on_header);
	}
	return cbs;
}

/* Runs the loop for about 1 ms: ready events, then the stop timer. */
static void round_once(int peer)
{
	struct ev_timer t = { 0 };
	char sink[65536];
	int fd;

	ev_timer_add(w.w_loop, &t, 1, stop_cb, NULL);
	ev_run(w.w_loop);
	ev_timer_del(w.w_loop, &t);
	while (recv(peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	/* the backend: take the connection, never answer (closed at the end) */
	while ((fd = accept4(backend_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		nghttp2_session *be;
		ssize_t n;

		/* the backend's view, decoded by nghttp2: checks every header it receives */
		if (nghttp2_session_server_new(&be, backend_callbacks(), NULL) != 0)
			abort();
		while ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
			(void)nghttp2_session_mem_recv(be, (const uint8_t *)sink, (size_t)n);
		nghttp2_session_del(be);
		close(fd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static const uint8_t akey[4] = { 127, 0, 0, 1 };
	unsigned nconns;
	int sv[2], i;

	if (backend_lfd < 0)
		setup();
	if (size > FUZZ_H2_MAX)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	FUZZ_CHECK(send(sv[1], preface, sizeof(preface) - 1, 0) == (ssize_t)sizeof(preface) - 1);
	if (size > 0)
		FUZZ_CHECK(send(sv[1], data, size, 0) == (ssize_t)size);
	nconns = w.w_nconns;
	if (ev_add(w.w_loop, sv[0], EV_READ, noop_cb, NULL) < 0)
		abort();
	w.w_nconns++;
	atomic_fetch_add(&px.px_nconns, 1);
	metrics_add(&w.w_m.m_conns_open, 1);
	h2_accept(&w, sv[0], NULL, NULL, "127.0.0.1:1", "127.0.0.1", akey, sizeof(akey));
	for (i = 0; i < 3; i++)
		round_once(sv[1]);
	h2_close_all(&w);
	round_once(sv[1]);
	FUZZ_CHECK(w.w_nconns == nconns);
	close(sv[1]);
	w.w_alog.ab_len = 0; /* no access log in the harness */
	return 0;
}
