/* test_upstream: the backend keep-alive pool: LIFO reuse, idle close, refusal, idle timeout. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tap.h"
#include "upstream.h"

static void stop_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	ev_stop(loop);
}

static void nop_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)arg;
}

/* Runs the loop for ms milliseconds. */
static void spin(struct ev_loop *loop, uint64_t ms)
{
	struct ev_timer t = { 0 };

	ev_timer_add(loop, &t, ms, stop_cb, NULL);
	ev_run(loop);
	ev_timer_del(loop, &t);
}

static int connected(struct upstream *u)
{
	int i, r = 0;

	for (i = 0; i < 100 && (r = upstream_connect_poll(u)) == 0; i++)
		usleep(1000);
	return r;
}

int main(void)
{
	struct ev_loop *loop = ev_new();
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0), s1, s2, fd1;
	char text[64];
	struct addr a;
	struct upool pool;
	struct upstream *u1, *u2, *u;

	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 8) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		return 1;
	snprintf(text, sizeof(text), "127.0.0.1:%u", ntohs(sin.sin_port));
	if (addr_parse(text, &a) < 0)
		return 1;
	upool_init(&pool, loop, &a, 2, 60000);

	subtest("lease, release, reuse (LIFO)");
	u1 = upstream_lease(&pool, false, nop_cb, NULL);
	u2 = upstream_lease(&pool, false, nop_cb, NULL);
	ok(u1 && u2, "two new connections");
	is_int(connected(u1), 1, "u1 connected");
	is_int(connected(u2), 1, "u2 connected");
	s1 = accept(l, NULL, NULL);
	s2 = accept(l, NULL, NULL);
	ok(s1 >= 0 && s2 >= 0, "backend accepted both");
	ok(!u1->u_reused, "a new connection is not marked reused");
	ok(u1->u_watched, "a leased connection is registered with the loop");
	fd1 = u1->u_fd;
	upstream_release(u2, true);
	upstream_release(u1, true);
	is_int(pool.up_nidle, 2, "both idle");
	u = upstream_lease(&pool, false, nop_cb, NULL);
	ok(u && u->u_fd == fd1 && u->u_reused, "the most recently released comes back first");
	upstream_release(u, true);
	u = upstream_lease(&pool, true, nop_cb, NULL);
	ok(u && u->u_fd != fd1 && !u->u_reused, "fresh = a new connection even with idle ones");
	upstream_release(u, false);
	is_int(pool.up_nidle, 2, "a non-reusable release closes instead of pooling");

	subtest("an idle connection the backend closes leaves the pool");
	close(s1);
	close(s2);
	spin(loop, 50);
	is_int(pool.up_nidle, 0, "both closed by the backend, both dropped");

	subtest("refused");
	close(accept(l, NULL, NULL));
	close(l);
	u = upstream_lease(&pool, false, nop_cb, NULL);
	if (u != NULL) {
		int r = connected(u);

		is_int(r, -1, "connect fails");
		is_int(errno, ECONNREFUSED, "with ECONNREFUSED");
		upstream_release(u, false);
	} else {
		is_int(errno, ECONNREFUSED, "lease fails with ECONNREFUSED");
	}
	upool_drain(&pool);
	ev_free(loop);
	return done_testing();
}
