/*
 * upstream: backend keep-alive pool. See upstream.h.
 */
#include "upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void upstream_close(struct upstream *u)
{
	if (u->u_watched)
		ev_forget(u->u_pool->up_loop, u->u_fd);
	close(u->u_fd);
	free(u);
}

void upstream_unwatch(struct upstream *u)
{
	if (u->u_watched)
		ev_del(u->u_pool->up_loop, u->u_fd);
	u->u_watched = false;
}

static void upool_unlink(struct upool *pool, struct upstream *u)
{
	struct upstream **pp;

	for (pp = &pool->up_idle; *pp != NULL; pp = &(*pp)->u_next) {
		if (*pp == u) {
			*pp = u->u_next;
			pool->up_nidle--;
			return;
		}
	}
}

/* An idle socket became readable: the backend closed it (or sent junk). Drop it. */
static void upool_idle_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct upstream *u = arg;

	(void)loop;
	(void)fd;
	(void)events;
	upool_unlink(u->u_pool, u);
	upstream_close(u);
}

static void upool_reap_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct upool *pool = arg;
	struct upstream **pp = &pool->up_idle;
	uint64_t now = ev_now(loop);

	(void)fd;
	(void)events;
	while (*pp != NULL) {
		struct upstream *u = *pp;

		if (now - u->u_idle_since >= pool->up_idle_ms) {
			*pp = u->u_next;
			pool->up_nidle--;
			upstream_close(u);
		} else {
			pp = &u->u_next;
		}
	}
	if (pool->up_nidle > 0)
		ev_timer_add(loop, &pool->up_reap, pool->up_idle_ms / 2 + 1, upool_reap_cb, pool);
}

void upool_init(struct upool *pool, struct ev_loop *loop, const struct addr *backend,
		size_t max_idle, uint64_t idle_ms)
{
	*pool = (struct upool){ 0 };
	pool->up_loop = loop;
	pool->up_backend = *backend;
	pool->up_max_idle = max_idle;
	pool->up_idle_ms = idle_ms ? idle_ms : 1;
}

void upool_drain(struct upool *pool)
{
	while (pool->up_idle != NULL) {
		struct upstream *u = pool->up_idle;

		pool->up_idle = u->u_next;
		upstream_close(u);
	}
	pool->up_nidle = 0;
	ev_timer_del(pool->up_loop, &pool->up_reap);
}

struct upstream *upstream_lease(struct upool *pool, bool fresh, ev_cb cb, void *arg)
{
	struct upstream *u;
	const struct sockaddr *sa = (const struct sockaddr *)&pool->up_backend.a_ss;
	int one = 1, e;

	while (!fresh && pool->up_idle != NULL) {
		u = pool->up_idle;
		pool->up_idle = u->u_next;
		pool->up_nidle--;
		if (ev_now(pool->up_loop) - u->u_idle_since >= pool->up_idle_ms ||
		    ev_set(pool->up_loop, u->u_fd, EV_READ, cb, arg) < 0) {
			upstream_close(u);
			continue;
		}
		u->u_next = NULL;
		u->u_reused = true;
		u->u_connecting = false;
		pool->up_reuses++;
		return u;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	u->u_pool = pool;
	u->u_fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->u_fd < 0)
		goto out_free;
	/* Small JSON answers: do not let Nagle hold the last segment of a head back. */
	(void)setsockopt(u->u_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	pool->up_connects++;
	if (connect(u->u_fd, sa, pool->up_backend.a_len) < 0) {
		if (errno != EINPROGRESS)
			goto out_close;
		u->u_connecting = true;
	}
	if (ev_add(pool->up_loop, u->u_fd, EV_READ, cb, arg) < 0)
		goto out_close;
	u->u_watched = true;
	return u;
out_close:
	e = errno;
	close(u->u_fd);
	errno = e;
out_free:
	e = errno;
	free(u);
	errno = e;
	return NULL;
}

int upstream_connect_poll(struct upstream *u)
{
	const struct sockaddr *sa = (const struct sockaddr *)&u->u_pool->up_backend.a_ss;

	if (!u->u_connecting)
		return 1;
	/* connect() again tells all three outcomes without waiting for EPOLLOUT first. */
	if (connect(u->u_fd, sa, u->u_pool->up_backend.a_len) == 0 || errno == EISCONN) {
		u->u_connecting = false;
		return 1;
	}
	if (errno == EALREADY || errno == EINPROGRESS || errno == EINTR)
		return 0;
	return -1;
}

void upstream_release(struct upstream *u, bool reusable)
{
	struct upool *pool = u->u_pool;

	if (!reusable || pool->up_nidle >= pool->up_max_idle) {
		upstream_close(u);
		return;
	}
	u->u_idle_since = ev_now(pool->up_loop);
	/* Idle sockets are watched for readability: EOF or junk from the backend drops them. */
	if ((u->u_watched ? ev_set(pool->up_loop, u->u_fd, EV_READ, upool_idle_cb, u)
			  : ev_add(pool->up_loop, u->u_fd, EV_READ, upool_idle_cb, u)) < 0) {
		upstream_close(u);
		return;
	}
	u->u_watched = true;
	u->u_next = pool->up_idle;
	pool->up_idle = u;
	pool->up_nidle++;
	if (!ev_timer_armed(&pool->up_reap))
		ev_timer_add(pool->up_loop, &pool->up_reap, pool->up_idle_ms / 2 + 1, upool_reap_cb,
			     pool);
}
