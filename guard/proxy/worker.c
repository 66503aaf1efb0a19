/*
 * worker: listener sockets, worker threads and their accept path.
 * See proxy.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "h2.h"
#include "log.h"
#include "proxy.h"

/* accept() at most this many connections per readiness event: fairness between workers. */
#define WORKER_ACCEPT_BATCH 64

struct snap *worker_snap(struct worker *w)
{
	unsigned gen = atomic_load_explicit(&w->w_px->px_gen, memory_order_acquire);

	if (w->w_snap == NULL || gen != w->w_gen) {
		struct snap *s = snap_get(w->w_px);

		snap_put(w->w_snap);
		w->w_snap = s;
		w->w_gen = gen;
	}
	return w->w_snap;
}

int worker_listen(const struct addr *a, char *err, size_t errlen)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->a_ss;
	int fd, one = 1;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto out_err;
	/* One socket per worker on the same port: the kernel spreads connections. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto out_close;
	if (sa->sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, sa, a->a_len) < 0 || listen(fd, 4096) < 0)
		goto out_close;
	return fd;
out_close : {
	int e = errno;

	close(fd);
	errno = e;
}
out_err:
	snprintf(err, errlen, "listen %s: %s (is the address local and the port free?)", a->a_text,
		 strerror(errno));
	return -1;
}

static void worker_accept_resume(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	size_t i;

	(void)fd;
	(void)events;
	for (i = 0; i < w->w_nlfd; i++)
		(void)ev_mod(loop, w->w_lfd[i], EV_READ);
}

static void worker_accept_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	struct proxy *px = w->w_px;
	unsigned max = px->px_conf.c_proxy.p_max_connections;
	int i;

	(void)loop;
	(void)events;
	for (i = 0; i < WORKER_ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;

		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				size_t j;

				/*
				 * Out of descriptors: a level-triggered listener would fire again
				 * at once, so pause accepting for 100 ms; pending clients wait in
				 * the backlog instead of the loop spinning.
				 */
				for (j = 0; j < w->w_nlfd; j++)
					(void)ev_mod(loop, w->w_lfd[j], 0);
				ev_timer_add(loop, &w->w_accept_timer, 100, worker_accept_resume,
					     w);
				if (ev_now(loop) - w->w_refused_logged > 1000) {
					log_warn("accept: %s (raise the open-files limit or lower "
						 "max_connections)",
						 strerror(errno));
					w->w_refused_logged = ev_now(loop);
				}
			}
			return;
		}
		if (atomic_fetch_add(&px->px_nconns, 1) >= max) {
			/* Refuse cleanly: an immediate close, counted, logged at most once a second. */
			atomic_fetch_sub(&px->px_nconns, 1);
			metrics_add(&w->w_m.m_conns_refused, 1);
			close(cfd);
			if (ev_now(loop) - w->w_refused_logged > 1000) {
				log_warn("max_connections (%u) reached: refusing new connections",
					 max);
				w->w_refused_logged = ev_now(loop);
			}
			continue;
		}
		(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_accept(w, cfd, (struct sockaddr *)&ss, len);
	}
}

static void worker_shutdown_deadline(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)events;
	if (w->w_nconns > 0)
		log_warn("worker %u: shutdown_timeout reached, closing %u connection(s)", w->w_id,
			 w->w_nconns);
	conn_close_all(w);
	ev_stop(loop);
}

/* The main thread woke us: shutdown, or nothing (a reload is noticed per request). */
static void worker_wake_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;
	size_t i;

	(void)fd;
	(void)events;
	if (!atomic_load(&w->w_px->px_stopping) || w->w_draining)
		return;
	w->w_draining = true;
	ev_timer_del(loop, &w->w_accept_timer);
	for (i = 0; i < w->w_nlfd; i++) {
		ev_del(loop, w->w_lfd[i]);
		close(w->w_lfd[i]);
		w->w_lfd[i] = -1;
	}
	w->w_nlfd = 0;
	upool_drain(&w->w_pool);
	ev_timer_add(loop, &w->w_drain_timer, w->w_px->px_conf.c_proxy.p_shutdown_timeout_ms,
		     worker_shutdown_deadline, w);
	conn_drain_idle(w);
}

/* Before each epoll_wait: the access-log lines of this iteration go out in one write. */
static void worker_prepare_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct worker *w = arg;

	(void)loop;
	(void)fd;
	(void)events;
	if (w->w_alog.ab_len > 0)
		accesslog_flush(&w->w_alog);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (ev_run(w->w_loop) < 0)
		log_error("worker %u: event loop failed: %s", w->w_id, strerror(errno));
	conn_close_all(w);
	accesslog_flush(&w->w_alog);
	upool_drain(&w->w_pool);
	ev_timer_del(w->w_loop, &w->w_drain_timer);
	ev_timer_del(w->w_loop, &w->w_accept_timer);
	return NULL;
}

int worker_start(struct worker *w)
{
	struct proxy *px = w->w_px;
	size_t i;
	int e;

	w->w_loop = ev_new();
	if (w->w_loop == NULL)
		return -1;
	upool_init(&w->w_pool, w->w_loop, &px->px_conf.c_proxy.p_backend_rest, PROXY_UPSTREAM_IDLE,
		   px->px_conf.c_proxy.p_idle_timeout_ms);
	w->w_aq = auth_queue_new();
	w->w_h2aq = auth_queue_new();
	if (w->w_aq == NULL || w->w_h2aq == NULL)
		return -1;
	ev_prepare_set(w->w_loop, worker_prepare_cb, w);
	if (ev_add(w->w_loop, auth_queue_fd(w->w_aq), EV_READ, conn_auth_ready, w) < 0 ||
	    ev_add(w->w_loop, auth_queue_fd(w->w_h2aq), EV_READ, h2_auth_ready, w) < 0 ||
	    ev_wake_set(w->w_loop, worker_wake_cb, w) < 0)
		return -1;
	for (i = 0; i < w->w_nlfd; i++)
		if (ev_add(w->w_loop, w->w_lfd[i], EV_READ, worker_accept_cb, w) < 0)
			return -1;
	e = pthread_create(&w->w_thread, NULL, worker_main, w);
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

void worker_stop_all(struct proxy *px)
{
	unsigned i;

	atomic_store(&px->px_stopping, true);
	for (i = 0; i < px->px_nworkers; i++)
		ev_wake(px->px_workers[i].w_loop);
}
