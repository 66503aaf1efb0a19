/*
 * limit: request rate and concurrency limits ([limits] in tfguard.conf).
 *
 * Token buckets, integer arithmetic only: a bucket holds milli-tokens (one request
 * costs 1000) and refills at r_rate tokens per r_period_s seconds, up to r_burst (0 =
 * r_rate) tokens, on CLOCK_MONOTONIC nanoseconds. A time older than the last one
 * seen (a clock going backwards, or a worker's reading that lost the race for the
 * lock) gives no tokens and does not move the bucket's time back; any gap, up to
 * 2^64 ns, fills the bucket at most (no overflow). A new bucket starts full.
 *
 * One table for the whole process, keyed by (kind, key): the client address key
 * (auth_addr_key()), the user name, the model name, or the user name for the in-flight
 * count. Sharded (64 shards, one mutex each, held for a few dozen instructions), and
 * set-associative (8 ways) with a fixed number of slots fixed at limit_new(): memory
 * does not grow with the number of distinct keys. Keys are stored as two SipHash-2-4
 * values under a per-process random key, so attackers cannot aim at a set. When a set
 * is full the victim is, in order: an entry whose bucket would be full by now (it is
 * equivalent to no entry: nothing is lost), a client entry, a user or model entry,
 * least recently used first. An entry with requests in flight or queued is never
 * evicted. Evictions of occupied slots are counted (tfguard_proxy_limit_evictions_total).
 *
 * Rates are not stored with the key for good: each call passes the rate in force (from
 * the worker's config snapshot), so a reload applies new rates at the next request
 * while every unchanged key keeps its token count (clamped to a lowered burst).
 *
 * Concurrency: in-flight requests per user, at most l_inflight; over it the request
 * waits in a per-user queue of at most l_queue entries for at most l_queue_timeout_ms,
 * or is refused at once when l_queue is 0 or the queue is full. A waiter polls
 * limit_inflight_retry() from a timer of its own worker (LIMIT_QUEUE_POLL_MS): no
 * cross-thread wake-up, no pointer to a connection of another worker. New arrivals do
 * not overtake waiters (they queue while the queue is not empty).
 *
 * Thread-safety: every function may be called from any thread at once. Used by the
 * REST and the gRPC path: it knows nothing of HTTP.
 */
#ifndef TFG_LIMIT_H
#define TFG_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

/* Default table size: 64 Ki entries, about 5 MiB. */
#define LIMIT_ENTRIES_DEFAULT 65536
/* How often a queued request looks for a free slot. */
#define LIMIT_QUEUE_POLL_MS 5

enum limit_kind {
	LIMIT_CLIENT,
	LIMIT_USER,
	LIMIT_MODEL,
	LIMIT_INFLIGHT,
	LIMIT_QUEUE_TIMEOUT,
	LIMIT_NKINDS,
	LIMIT_NONE = LIMIT_NKINDS /* allowed */
};

/* "client", "user", "model", "inflight", "queue_timeout"; NULL for LIMIT_NONE. */
const char *limit_name(enum limit_kind k);

/* ---- one token bucket (no locking; the table below locks around it) ---- */

struct limit_bucket {
	uint64_t lb_mtok;    /* milli-tokens */
	uint64_t lb_last_ns; /* time up to which refill was credited */
};

/* Capacity of a rate in milli-tokens (burst, or rate when burst is 0). */
uint64_t limit_rate_cap(const struct conf_rate *r);
/* A full bucket at now_ns. */
void limit_bucket_init(struct limit_bucket *b, const struct conf_rate *r, uint64_t now_ns);
/* Credits the refill up to now_ns; returns the milli-tokens now in b. */
uint64_t limit_bucket_refill(struct limit_bucket *b, const struct conf_rate *r, uint64_t now_ns);
/*
 * Takes one token: 1 if there was one, else 0 with *retry_s = whole seconds (rounded
 * up, at least 1) until there is one. retry_s may be NULL.
 */
int limit_bucket_take(struct limit_bucket *b, const struct conf_rate *r, uint64_t now_ns,
		      unsigned *retry_s);

/* ---- the process-wide table ---- */

struct limit;

/* max_entries is rounded to a multiple of the shard and way counts. NULL with err. */
struct limit *limit_new(size_t max_entries, char *err, size_t errlen);
void limit_free(struct limit *l);
/* Bytes the table uses (constant after limit_new). */
size_t limit_memory(const struct limit *l);
/* Occupied slots now. */
size_t limit_entries(const struct limit *l);
uint64_t limit_evictions(const struct limit *l);
uint64_t limit_count(const struct limit *l, enum limit_kind k, bool limited);

/* CLOCK_MONOTONIC in nanoseconds: the clock every now_ns is on. */
uint64_t limit_now_ns(void);

/*
 * Takes one token from the (kind, key) bucket at rate r. Returns 1 (allowed; also when
 * r is not set) or 0 with *retry_s. Counted in the allowed/limited metrics of kind.
 */
int limit_take(struct limit *l, enum limit_kind kind, const void *key, size_t keylen,
	       const struct conf_rate *r, uint64_t now_ns, unsigned *retry_s);

/* The rate for user under cl: its user.NAME line, else default (may be unset). */
const struct conf_rate *limit_user_rate(const struct conf_limits *cl, const char *user,
					size_t ulen);
/* The model.NAME rate for model, or NULL. */
const struct conf_rate *limit_model_rate(const struct conf_limits *cl, const char *model,
					 size_t mlen);

/* Before authentication: the client limit. LIMIT_NONE or LIMIT_CLIENT with *retry_s. */
enum limit_kind limit_check_client(struct limit *l, const struct conf_limits *cl,
				   const void *addrkey, size_t keylen, uint64_t now_ns,
				   unsigned *retry_s);
/* After authentication: the user's rate. LIMIT_NONE or LIMIT_USER. */
enum limit_kind limit_check_user(struct limit *l, const struct conf_limits *cl, const char *user,
				 size_t ulen, uint64_t now_ns, unsigned *retry_s);
/* Once the model is known and allowed: its rate. LIMIT_NONE or LIMIT_MODEL. */
enum limit_kind limit_check_model(struct limit *l, const struct conf_limits *cl, const char *model,
				  size_t mlen, uint64_t now_ns, unsigned *retry_s);

enum limit_slot {
	LIMIT_SLOT_FREE,    /* no in-flight limit: nothing held, nothing to release */
	LIMIT_SLOT_HELD,    /* admitted: call limit_inflight_release() exactly once */
	LIMIT_SLOT_QUEUED,  /* wait: poll limit_inflight_retry(), or limit_inflight_dequeue() */
	LIMIT_SLOT_REFUSED, /* over the limit and no room to wait: 429 */
};

enum limit_slot limit_inflight_acquire(struct limit *l, const struct conf_limits *cl,
				       const char *user, size_t ulen);
/*
 * For a caller that cannot wait (a gRPC call): like limit_inflight_acquire() with no
 * queue: LIMIT_SLOT_FREE, LIMIT_SLOT_HELD or LIMIT_SLOT_REFUSED (counted as limited,
 * limit="inflight"), never LIMIT_SLOT_QUEUED; it does not overtake waiters either.
 */
enum limit_slot limit_inflight_try(struct limit *l, const struct conf_limits *cl, const char *user,
				   size_t ulen);
/* A queued request: LIMIT_SLOT_HELD (it left the queue) or LIMIT_SLOT_QUEUED. */
enum limit_slot limit_inflight_retry(struct limit *l, const struct conf_limits *cl,
				     const char *user, size_t ulen);
/* A queued request gives up (timed_out: counted as limit="queue_timeout"). */
void limit_inflight_dequeue(struct limit *l, const char *user, size_t ulen, bool timed_out);
void limit_inflight_release(struct limit *l, const char *user, size_t ulen);
/* In flight and queued for user now (tests, debugging). */
void limit_inflight_get(struct limit *l, const char *user, size_t ulen, unsigned *inflight,
			unsigned *queued);

/* Prometheus text: allowed/limited per limit, evictions, entries. */
void limit_metrics_render(FILE *f, const struct limit *l);

#endif
