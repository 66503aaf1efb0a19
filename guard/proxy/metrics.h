/*
 * metrics: Prometheus counters, one block per worker, summed when scraped.
 *
 * Each worker owns one struct metrics and is its only writer (relaxed atomic
 * stores, no lock and no shared cache line on the request path); the admin
 * endpoint reads every block and sums. Requests are counted by (model, status)
 * in a small fixed table per worker: model names are only recorded after the
 * ACL allowed them, and past METRICS_MODELS pairs they count as model="_other",
 * so a client cannot grow the table.
 */
#ifndef TFG_METRICS_H
#define TFG_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRICS_MODELS	 128
#define METRICS_NAME_MAX 64
#define METRICS_BUCKETS	 13

enum metrics_up_err {
	METRICS_UP_CONNECT,
	METRICS_UP_TIMEOUT,
	METRICS_UP_CLOSED,
	METRICS_UP_BAD,
	METRICS_UP_NKINDS
};

struct metrics_pair {
	atomic_uint mp_status; /* 0 = free; written once, after mp_model */
	char mp_model[METRICS_NAME_MAX];
	atomic_uint_fast64_t mp_count;
};

struct metrics {
	atomic_uint_fast64_t m_conns_open;
	atomic_uint_fast64_t m_conns_total;
	atomic_uint_fast64_t m_conns_refused;
	atomic_uint_fast64_t m_tls_failures;
	atomic_uint_fast64_t m_auth_ok;
	atomic_uint_fast64_t m_auth_failures;
	atomic_uint_fast64_t m_auth_throttled;
	atomic_uint_fast64_t m_auth_busy;
	atomic_uint_fast64_t m_cache_hits;
	atomic_uint_fast64_t m_up_errors[METRICS_UP_NKINDS];
	atomic_uint_fast64_t m_lat_bucket[METRICS_BUCKETS];
	atomic_uint_fast64_t m_lat_count;
	atomic_uint_fast64_t m_lat_sum_us;
	atomic_uint_fast64_t m_bytes_in;
	atomic_uint_fast64_t m_bytes_out;
	struct metrics_pair m_pairs[METRICS_MODELS];
};

/* Single-writer increment: no lock prefix, readers see whole values. */
static inline void metrics_add(atomic_uint_fast64_t *v, uint64_t n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
			      memory_order_relaxed);
}
static inline void metrics_sub(atomic_uint_fast64_t *v, uint64_t n)
{
	atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) - n,
			      memory_order_relaxed);
}

/* Counts one finished request (worker thread). model may be empty. */
void metrics_request(struct metrics *m, const char *model, size_t mlen, int status,
		     uint64_t dur_us);

/* Process-wide counters written by the main thread. */
struct metrics_global {
	atomic_uint_fast64_t g_reload_ok;
	atomic_uint_fast64_t g_reload_failed;
	atomic_uint_fast64_t g_workers;
	atomic_uint_fast64_t g_start_time;
};

/* Writes the Prometheus text exposition of n worker blocks plus g to f. */
void metrics_render(FILE *f, struct metrics *const *ws, size_t n, const struct metrics_global *g);

#endif
