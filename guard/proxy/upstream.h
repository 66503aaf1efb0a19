/*
 * upstream: the per-worker keep-alive pool of HTTP/1.1 connections to the backend.
 *
 * One pool per worker thread (no locks). Idle sockets sit on a LIFO list with the
 * time they were last used; they are closed after the idle timeout, when the
 * backend closes them (they are watched for readability while idle) or when the
 * list is full. A socket belongs to the pool while idle and to exactly one
 * connection while leased: upstream_release() either returns it to the pool or
 * closes it, never both.
 */
#ifndef TFG_UPSTREAM_H
#define TFG_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "ev.h"

struct upstream {
	int u_fd;
	bool u_reused;	       /* came from the idle list (may have been closed by the backend) */
	bool u_connecting;     /* non-blocking connect() in progress */
	bool u_watched;	       /* registered with the loop */
	unsigned u_requests;   /* requests sent on this socket */
	uint64_t u_idle_since; /* ev_now() when it was released */
	struct upstream *u_next;
	struct upool *u_pool;
};

struct upool {
	struct ev_loop *up_loop;
	struct addr up_backend;
	struct upstream *up_idle; /* LIFO: the most recently used first */
	size_t up_nidle;
	size_t up_max_idle;
	uint64_t up_idle_ms;
	struct ev_timer up_reap;
	uint64_t up_connects; /* new connections made, for metrics */
	uint64_t up_reuses;
};

void upool_init(struct upool *pool, struct ev_loop *loop, const struct addr *backend,
		size_t max_idle, uint64_t idle_ms);
/* Closes every idle socket. */
void upool_drain(struct upool *pool);
/*
 * Leases a socket: the most recent idle one unless fresh, else a new non-blocking
 * connect (u_connecting set). The socket comes back registered with the loop for
 * EV_READ with cb/arg: a pooled socket keeps its registration and only changes hands
 * (no epoll_ctl on the request path). Returns NULL with errno set (ECONNREFUSED etc.
 * are possible immediately on loopback).
 */
struct upstream *upstream_lease(struct upool *pool, bool fresh, ev_cb cb, void *arg);
/*
 * Gives a leased socket back. reusable: the exchange ended cleanly and the backend
 * allows keep-alive: the pool takes it (and its registration). Otherwise it is closed.
 */
void upstream_release(struct upstream *u, bool reusable);
/* Stops watching u (its fd reported HUP while nobody wanted it); reads still work. */
void upstream_unwatch(struct upstream *u);
/*
 * After u_connecting: 1 when connected, 0 while still in progress, -1 with errno
 * set to the connect error (ECONNREFUSED...).
 */
int upstream_connect_poll(struct upstream *u);

#endif
