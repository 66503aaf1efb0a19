/*
 * ev: epoll + timer heap. See ev.h.
 */
#include "ev.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* 256 events per epoll_wait: enough to amortise the syscall, small enough for the stack. */
#define EV_BATCH 256

struct ev_file {
	ev_cb f_cb;
	void *f_arg;
	uint32_t f_mask;
	bool f_used;
};

struct ev_loop {
	int l_epfd;
	int l_wakefd;
	ev_cb l_wake_cb;
	void *l_wake_arg;
	ev_cb l_prepare_cb;
	void *l_prepare_arg;
	bool l_stop;
	uint64_t l_now;
	struct ev_file *l_files; /* indexed by fd */
	size_t l_nfiles;
	struct ev_timer **l_heap;
	size_t l_nheap, l_capheap;
};

uint64_t ev_clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t ev_now(struct ev_loop *loop)
{
	return loop->l_now;
}

struct ev_loop *ev_new(void)
{
	struct ev_loop *loop = calloc(1, sizeof(*loop));

	if (loop == NULL)
		return NULL;
	loop->l_wakefd = -1;
	loop->l_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->l_epfd < 0)
		goto out_free;
	loop->l_now = ev_clock_ms();
	return loop;
out_free:
	free(loop);
	return NULL;
}

void ev_free(struct ev_loop *loop)
{
	if (loop == NULL)
		return;
	if (loop->l_wakefd >= 0)
		close(loop->l_wakefd);
	close(loop->l_epfd);
	free(loop->l_files);
	free(loop->l_heap);
	free(loop);
}

static int ev_files_grow(struct ev_loop *loop, int fd)
{
	size_t n = loop->l_nfiles ? loop->l_nfiles : 64;
	struct ev_file *f;

	while (n <= (size_t)fd)
		n *= 2;
	f = realloc(loop->l_files, n * sizeof(*f));
	if (f == NULL)
		return -1;
	memset(f + loop->l_nfiles, 0, (n - loop->l_nfiles) * sizeof(*f));
	loop->l_files = f;
	loop->l_nfiles = n;
	return 0;
}

int ev_add(struct ev_loop *loop, int fd, uint32_t events, ev_cb cb, void *arg)
{
	struct epoll_event ee = { .events = events, .data.fd = fd };

	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if ((size_t)fd >= loop->l_nfiles && ev_files_grow(loop, fd) < 0)
		return -1;
	if (epoll_ctl(loop->l_epfd, EPOLL_CTL_ADD, fd, &ee) < 0)
		return -1;
	loop->l_files[fd] = (struct ev_file){ cb, arg, events, true };
	return 0;
}

int ev_mod(struct ev_loop *loop, int fd, uint32_t events)
{
	struct epoll_event ee = { .events = events, .data.fd = fd };
	struct ev_file *f;

	if (fd < 0 || (size_t)fd >= loop->l_nfiles || !loop->l_files[fd].f_used) {
		errno = EBADF;
		return -1;
	}
	f = &loop->l_files[fd];
	if (f->f_mask == events)
		return 0;
	if (epoll_ctl(loop->l_epfd, EPOLL_CTL_MOD, fd, &ee) < 0)
		return -1;
	f->f_mask = events;
	return 0;
}

int ev_set(struct ev_loop *loop, int fd, uint32_t events, ev_cb cb, void *arg)
{
	if (ev_mod(loop, fd, events) < 0)
		return -1;
	loop->l_files[fd].f_cb = cb;
	loop->l_files[fd].f_arg = arg;
	return 0;
}

void ev_del(struct ev_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->l_nfiles || !loop->l_files[fd].f_used)
		return;
	/* The fd is closed right after: a failure here changes nothing. */
	(void)epoll_ctl(loop->l_epfd, EPOLL_CTL_DEL, fd, NULL);
	memset(&loop->l_files[fd], 0, sizeof(loop->l_files[fd]));
}

void ev_forget(struct ev_loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->l_nfiles)
		return;
	memset(&loop->l_files[fd], 0, sizeof(loop->l_files[fd]));
}

/* ---- timer heap ---------------------------------------------------------------------- */

static void ev_heap_set(struct ev_loop *loop, size_t i, struct ev_timer *t)
{
	loop->l_heap[i] = t;
	t->t_idx = i + 1;
}

static void ev_heap_up(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->l_heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (loop->l_heap[p]->t_at <= t->t_at)
			break;
		ev_heap_set(loop, i, loop->l_heap[p]);
		i = p;
	}
	ev_heap_set(loop, i, t);
}

static void ev_heap_down(struct ev_loop *loop, size_t i)
{
	struct ev_timer *t = loop->l_heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= loop->l_nheap)
			break;
		if (c + 1 < loop->l_nheap && loop->l_heap[c + 1]->t_at < loop->l_heap[c]->t_at)
			c++;
		if (t->t_at <= loop->l_heap[c]->t_at)
			break;
		ev_heap_set(loop, i, loop->l_heap[c]);
		i = c;
	}
	ev_heap_set(loop, i, t);
}

void ev_timer_del(struct ev_loop *loop, struct ev_timer *t)
{
	size_t i;
	struct ev_timer *last;

	if (t->t_idx == 0)
		return;
	i = t->t_idx - 1;
	t->t_idx = 0;
	last = loop->l_heap[--loop->l_nheap];
	if (i == loop->l_nheap)
		return;
	ev_heap_set(loop, i, last);
	ev_heap_up(loop, i);
	ev_heap_down(loop, last->t_idx - 1);
}

void ev_timer_add(struct ev_loop *loop, struct ev_timer *t, uint64_t ms, ev_cb cb, void *arg)
{
	t->t_cb = cb;
	t->t_arg = arg;
	t->t_at = loop->l_now + ms;
	if (t->t_idx != 0) {
		size_t i = t->t_idx - 1;

		ev_heap_up(loop, i);
		ev_heap_down(loop, t->t_idx - 1);
		return;
	}
	if (loop->l_nheap == loop->l_capheap) {
		size_t n = loop->l_capheap ? loop->l_capheap * 2 : 256;
		struct ev_timer **h = realloc(loop->l_heap, n * sizeof(*h));

		if (h == NULL)
			abort(); /* a timer we cannot arm is a deadline we cannot keep */
		loop->l_heap = h;
		loop->l_capheap = n;
	}
	ev_heap_set(loop, loop->l_nheap++, t);
	ev_heap_up(loop, loop->l_nheap - 1);
}

static void ev_timers_run(struct ev_loop *loop)
{
	/* Bounded: each timer fires once; a callback re-arming its timer lands in the future. */
	while (loop->l_nheap > 0 && loop->l_heap[0]->t_at <= loop->l_now && !loop->l_stop) {
		struct ev_timer *t = loop->l_heap[0];

		ev_timer_del(loop, t);
		t->t_cb(loop, -1, 0, t->t_arg);
	}
}

/* ---- wake-up ------------------------------------------------------------------------- */

static void ev_wake_read(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	uint64_t v;

	(void)events;
	(void)arg;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	if (loop->l_wake_cb)
		loop->l_wake_cb(loop, -1, 0, loop->l_wake_arg);
}

int ev_wake_set(struct ev_loop *loop, ev_cb cb, void *arg)
{
	loop->l_wake_cb = cb;
	loop->l_wake_arg = arg;
	if (loop->l_wakefd >= 0)
		return 0;
	loop->l_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (loop->l_wakefd < 0)
		return -1;
	if (ev_add(loop, loop->l_wakefd, EV_READ, ev_wake_read, NULL) < 0) {
		close(loop->l_wakefd);
		loop->l_wakefd = -1;
		return -1;
	}
	return 0;
}

void ev_wake(struct ev_loop *loop)
{
	uint64_t one = 1;

	if (loop->l_wakefd >= 0 && write(loop->l_wakefd, &one, sizeof(one)) < 0)
		return; /* EAGAIN: the counter is already non-zero, a wake-up is pending */
}

void ev_prepare_set(struct ev_loop *loop, ev_cb cb, void *arg)
{
	loop->l_prepare_cb = cb;
	loop->l_prepare_arg = arg;
}

void ev_stop(struct ev_loop *loop)
{
	loop->l_stop = true;
}

int ev_run(struct ev_loop *loop)
{
	struct epoll_event evs[EV_BATCH];

	loop->l_stop = false;
	while (!loop->l_stop) {
		int timeout = -1, n, i;

		loop->l_now = ev_clock_ms();
		ev_timers_run(loop);
		if (loop->l_stop)
			break;
		if (loop->l_prepare_cb != NULL)
			loop->l_prepare_cb(loop, -1, 0, loop->l_prepare_arg);
		if (loop->l_nheap > 0) {
			uint64_t at = loop->l_heap[0]->t_at;

			timeout = at <= loop->l_now ? 0 : (int)(at - loop->l_now);
		}
		n = epoll_wait(loop->l_epfd, evs, EV_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		loop->l_now = ev_clock_ms();
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint32_t e = evs[i].events;
			struct ev_file *f;

			/* An earlier callback of this batch may have removed fd: skip it. */
			if ((size_t)fd >= loop->l_nfiles || !loop->l_files[fd].f_used)
				continue;
			f = &loop->l_files[fd];
			if (e & (EPOLLERR | EPOLLHUP))
				e |= EPOLLIN | EPOLLOUT;
			e &= f->f_mask | EPOLLERR | EPOLLHUP | EPOLLRDHUP;
			if (e == 0)
				continue;
			f->f_cb(loop, fd, e, f->f_arg);
		}
	}
	return 0;
}
