/* test_ev: the event loop: timer order, re-arming, deletion, fd events, ev_del in a batch. */
#include <stdlib.h>
#include <unistd.h>

#include "ev.h"
#include "tap.h"

static int order[16], norder;

static void t_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	order[norder++] = (int)(long)arg;
}

static void stop_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	ev_stop(loop);
}

struct pair {
	int fds[2][2];
	int calls[2];
	struct ev_loop *loop;
};

/* Both pipes are readable in one batch; the first callback removes the other fd. */
static void rd_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct pair *p = arg;
	int i = fd == p->fds[0][0] ? 0 : 1;
	char b;

	(void)events;
	p->calls[i]++;
	if (read(fd, &b, 1) != 1)
		abort();
	ev_del(loop, p->fds[1 - i][0]);
	ev_stop(loop);
}

int main(void)
{
	struct ev_loop *loop = ev_new();
	struct ev_timer t[5] = { 0 }, stop = { 0 };
	struct pair p = { 0 };
	uint64_t t0;

	ok(loop != NULL, "ev_new");
	subtest("timers fire in deadline order, deleted ones never");
	ev_timer_add(loop, &t[0], 30, t_cb, (void *)3L);
	ev_timer_add(loop, &t[1], 10, t_cb, (void *)1L);
	ev_timer_add(loop, &t[2], 20, t_cb, (void *)2L);
	ev_timer_add(loop, &t[3], 15, t_cb, (void *)9L);
	ev_timer_add(loop, &t[4], 5, t_cb, (void *)9L);
	ev_timer_del(loop, &t[3]);
	ev_timer_del(loop, &t[4]);
	ok(!ev_timer_armed(&t[3]), "deleted timer is not armed");
	/* re-arming moves a timer: t[0] from 30 ms to 25 ms keeps it last */
	ev_timer_add(loop, &t[0], 25, t_cb, (void *)3L);
	ev_timer_add(loop, &stop, 40, stop_cb, NULL);
	/* deadlines count from the loop's cached clock (ev_now), not from this line */
	t0 = ev_now(loop);
	is_int(ev_run(loop), 0, "ev_run returns 0 after ev_stop");
	is_int(norder, 3, "three timers fired");
	is_int(order[0], 1, "10 ms first");
	is_int(order[1], 2, "20 ms second");
	is_int(order[2], 3, "25 ms third");
	ok(ev_clock_ms() - t0 >= 40, "the loop waited for the last deadline");

	subtest("fd events and ev_del of a pending fd in the same batch");
	if (pipe(p.fds[0]) < 0 || pipe(p.fds[1]) < 0)
		return 1;
	p.loop = loop;
	ok(ev_add(loop, p.fds[0][0], EV_READ, rd_cb, &p) == 0, "ev_add pipe 0");
	ok(ev_add(loop, p.fds[1][0], EV_READ, rd_cb, &p) == 0, "ev_add pipe 1");
	ok(ev_mod(loop, p.fds[0][0], EV_READ) == 0, "ev_mod unchanged is fine");
	if (write(p.fds[0][1], "x", 1) != 1 || write(p.fds[1][1], "y", 1) != 1)
		return 1;
	ev_timer_add(loop, &stop, 1000, stop_cb, NULL);
	ev_run(loop);
	is_int(p.calls[0] + p.calls[1], 1, "only one callback ran: the other fd was removed");
	ok(ev_mod(loop, p.fds[0][0], EV_READ) < 0 || ev_mod(loop, p.fds[1][0], EV_READ) < 0,
	   "the removed fd is unknown to the loop");
	ev_free(loop);
	return done_testing();
}
