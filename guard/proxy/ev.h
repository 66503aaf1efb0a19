/*
 * ev: one event loop per worker thread: epoll (level-triggered) plus a min-heap
 * of timers keyed by monotonic milliseconds.
 *
 * A loop is owned by exactly one thread; nothing here is thread-safe except
 * ev_wake(), which any thread may call to make ev_run() return from epoll_wait.
 * Every callback has the same signature; timers are called with fd = -1 and
 * events = 0. EPOLLERR/EPOLLHUP are reported together with EPOLLIN|EPOLLOUT so
 * that the next read or write reports the error.
 *
 * Timers are embedded in their owner (struct ev_timer), so arming one never
 * allocates: a connection re-arms its one deadline at every phase change. This
 * deviates from a malloc'ing ev_timer_add(loop, ms, cb, arg) on purpose.
 */
#ifndef TFG_EV_H
#define TFG_EV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct ev_loop;
typedef void (*ev_cb)(struct ev_loop *loop, int fd, uint32_t events, void *arg);

#define EV_READ	 EPOLLIN
#define EV_WRITE EPOLLOUT

struct ev_timer {
	uint64_t t_at; /* monotonic ms */
	size_t t_idx;  /* position in the heap + 1; 0 = not armed */
	ev_cb t_cb;
	void *t_arg;
};

/* Returns a new loop, or NULL with errno set. */
struct ev_loop *ev_new(void);
void ev_free(struct ev_loop *loop);
/* Registers fd for events (EV_READ|EV_WRITE, may be 0). Returns 0 or -1 (errno). */
int ev_add(struct ev_loop *loop, int fd, uint32_t events, ev_cb cb, void *arg);
/* Changes the interest mask; a no-op when unchanged. Returns 0 or -1. */
int ev_mod(struct ev_loop *loop, int fd, uint32_t events);
/* Replaces fd's callback, argument and mask in one step. Returns 0 or -1. */
int ev_set(struct ev_loop *loop, int fd, uint32_t events, ev_cb cb, void *arg);
/* Unregisters fd (before close(fd)); pending events of this batch are dropped. */
void ev_del(struct ev_loop *loop, int fd);
/*
 * Like ev_del() for an fd that is closed right after and never dup()ed: closing it
 * drops it from the epoll set, so no epoll_ctl() is made.
 */
void ev_forget(struct ev_loop *loop, int fd);
/* Arms (or re-arms) t to fire once after ms milliseconds. */
void ev_timer_add(struct ev_loop *loop, struct ev_timer *t, uint64_t ms, ev_cb cb, void *arg);
void ev_timer_del(struct ev_loop *loop, struct ev_timer *t);
static inline int ev_timer_armed(const struct ev_timer *t)
{
	return t->t_idx != 0;
}
/* Monotonic milliseconds, cached once per loop iteration. */
uint64_t ev_now(struct ev_loop *loop);
/* Runs until ev_stop(). Returns 0, or -1 if epoll_wait failed (not EINTR). */
int ev_run(struct ev_loop *loop);
void ev_stop(struct ev_loop *loop);
/* cb(loop, -1, 0, arg) runs before every epoll_wait (e.g. to flush buffered log lines). */
void ev_prepare_set(struct ev_loop *loop, ev_cb cb, void *arg);
/* Thread-safe: interrupts epoll_wait; the loop then calls the wake callback. */
int ev_wake_set(struct ev_loop *loop, ev_cb cb, void *arg);
void ev_wake(struct ev_loop *loop);
/* Monotonic milliseconds, uncached. */
uint64_t ev_clock_ms(void);

#endif
