/*
 * Unit tests for guard/proxy/limit.c: the token bucket (refill arithmetic, burst, a
 * clock going backwards, huge gaps), the sharded table (reload keeps tokens, per-user
 * override, model buckets, threads share one bucket), in-flight slots and the queue,
 * and a flood of 100,000 distinct client keys in a bounded table.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "limit.h"
#include "tap.h"

#define diag(...) (printf("# " __VA_ARGS__), printf("\n"))

#define MS_NS  1000000ull
#define SEC_NS 1000000000ull

static struct conf_rate rate(uint32_t r, uint32_t period, uint32_t burst)
{
	return (struct conf_rate){ true, r, period, burst };
}

static void test_bucket_basic(void)
{
	struct conf_rate r = rate(10, 1, 20);
	struct limit_bucket b;
	uint64_t t0 = 5 * SEC_NS;
	unsigned retry = 0, i, n = 0;

	subtest("bucket: burst, refill, Retry-After");
	limit_bucket_init(&b, &r, t0);
	is_int(limit_rate_cap(&r), 20000, "cap is burst in milli-tokens");
	for (i = 0; i < 100; i++)
		n += (unsigned)limit_bucket_take(&b, &r, t0, NULL);
	is_int(n, 20, "a full bucket gives exactly burst at once");
	ok(!limit_bucket_take(&b, &r, t0 + 99 * MS_NS, &retry), "99 ms later: not yet a token");
	is_int(retry, 1, "Retry-After rounds 1 ms up to 1 s");
	ok(limit_bucket_take(&b, &r, t0 + 100 * MS_NS, NULL), "100 ms later: one token (10r/s)");
	ok(!limit_bucket_take(&b, &r, t0 + 100 * MS_NS, NULL), "and only one");
	n = 0;
	for (i = 0; i < 100; i++)
		n += (unsigned)limit_bucket_take(&b, &r, t0 + 1100 * MS_NS, NULL);
	is_int(n, 10, "1 s later: rate tokens");

	r = rate(10, 1, 0);
	limit_bucket_init(&b, &r, t0);
	n = 0;
	for (i = 0; i < 100; i++)
		n += (unsigned)limit_bucket_take(&b, &r, t0, NULL);
	is_int(n, 10, "burst 0 means burst = rate");

	r = rate(6, 60, 1); /* 6r/m: one every 10 s */
	limit_bucket_init(&b, &r, t0);
	ok(limit_bucket_take(&b, &r, t0, NULL), "r/m: first");
	ok(!limit_bucket_take(&b, &r, t0 + 1, &retry), "r/m: second refused");
	is_int(retry, 10, "r/m: Retry-After 10 s");
	ok(!limit_bucket_take(&b, &r, t0 + 4 * SEC_NS, &retry), "r/m: 4 s later still refused");
	is_int(retry, 6, "r/m: Retry-After counts from the bucket: 6 s left");
	ok(limit_bucket_take(&b, &r, t0 + 10 * SEC_NS, NULL), "r/m: 10 s later a token");

	r = rate(1, 60, 1);
	limit_bucket_init(&b, &r, t0);
	ok(limit_bucket_take(&b, &r, t0, NULL), "1r/m first");
	ok(!limit_bucket_take(&b, &r, t0, &retry), "1r/m second");
	is_int(retry, 60, "1r/m: Retry-After 60");
}

static void test_bucket_fractions(void)
{
	struct conf_rate r = rate(1, 60, 1);
	struct limit_bucket b;
	uint64_t t, t0 = SEC_NS;
	unsigned got = 0, first_ms = 0;

	subtest("bucket: fractions of a milli-token are not lost");
	limit_bucket_init(&b, &r, t0);
	limit_bucket_take(&b, &r, t0, NULL);
	/* asked every millisecond: each call accrues 1/60 milli-token */
	for (t = 1; t <= 61000; t++)
		if (limit_bucket_take(&b, &r, t0 + t * MS_NS, NULL)) {
			if (!got)
				first_ms = (unsigned)t;
			got++;
		}
	is_int(got, 1, "1r/m polled every ms for 61 s: exactly one token");
	is_int(first_ms, 60000, "at exactly 60 s");

	r = rate(7, 1, 7); /* 142857142.86 ns per token */
	limit_bucket_init(&b, &r, t0);
	got = 0;
	for (t = 0; t < 10000; t++)
		got += (unsigned)limit_bucket_take(&b, &r, t0 + t * MS_NS, NULL);
	/* 7 at once, then 7 per second for 9.999 s */
	ok(got >= 7 + 69 && got <= 7 + 70, "7r/s over 10 s: 76 or 77");
	diag("7r/s over 10 s polled every ms: %u", got);
}

static void test_bucket_clock(void)
{
	struct conf_rate r = rate(1000000, 1, 10000000);
	struct limit_bucket b;
	unsigned retry = 0, i, n = 0;

	subtest("bucket: clock backwards, huge gaps");
	r = rate(10, 1, 10);
	limit_bucket_init(&b, &r, 100 * SEC_NS);
	for (i = 0; i < 10; i++)
		limit_bucket_take(&b, &r, 100 * SEC_NS, NULL);
	ok(!limit_bucket_take(&b, &r, 50 * SEC_NS, &retry), "clock back 50 s: no tokens");
	ok(retry >= 1 && retry <= 1, "Retry-After still sane");
	is_int(b.lb_mtok, 0, "no underflow");
	ok(!limit_bucket_take(&b, &r, 50 * SEC_NS + 100 * MS_NS, NULL),
	   "a stale time never credits (the last time is not moved back)");
	ok(!limit_bucket_take(&b, &r, 100 * SEC_NS + 99 * MS_NS, NULL),
	   "refill counts from the latest time seen");
	ok(limit_bucket_take(&b, &r, 100 * SEC_NS + 100 * MS_NS, NULL),
	   "100 ms after the latest time: a token");
	ok(!limit_bucket_take(&b, &r, 0, NULL), "back to 0: nothing");

	/* two workers read the clock, the later one takes the lock first: the
	 * stale reading must not make the next caller be credited twice */
	r = rate(10, 1, 1);
	limit_bucket_init(&b, &r, 0);
	ok(limit_bucket_take(&b, &r, 0, NULL), "burst 1: one token at t=0");
	ok(limit_bucket_take(&b, &r, 100 * MS_NS, NULL), "one more at 100 ms");
	ok(!limit_bucket_take(&b, &r, 50 * MS_NS, NULL), "a stale 50 ms reading: nothing");
	ok(!limit_bucket_take(&b, &r, 150 * MS_NS, NULL),
	   "150 ms: still nothing (no double credit)");
	ok(limit_bucket_take(&b, &r, 200 * MS_NS, NULL), "200 ms: the next token");

	/* the same race at 1r/m: the stale reading's Retry-After counts from the bucket's
	 * time, it must not wrap around to "1 s" */
	r = rate(1, 60, 1);
	limit_bucket_init(&b, &r, 100 * SEC_NS);
	ok(limit_bucket_take(&b, &r, 100 * SEC_NS, NULL), "1r/m: the one token");
	ok(!limit_bucket_take(&b, &r, 100 * SEC_NS, &retry), "1r/m: fresh reading refused");
	is_int(retry, 60, "fresh reading: Retry-After 60");
	retry = 0;
	ok(!limit_bucket_take(&b, &r, 100 * SEC_NS - 1000, &retry),
	   "1r/m: a reading 1 µs older refused");
	is_int(retry, 60, "stale reading: Retry-After 60 too (not 1)");
	retry = 0;
	ok(!limit_bucket_take(&b, &r, 130 * SEC_NS, &retry), "1r/m: 30 s later refused");
	is_int(retry, 30, "Retry-After 30");
	retry = 0;
	ok(!limit_bucket_take(&b, &r, 129 * SEC_NS, &retry), "1r/m: then a reading 1 s older");
	is_int(retry, 30, "stale reading after a partial refill: 30 (from the bucket's time)");

	r = rate(1000000, 60, 10000000);
	limit_bucket_init(&b, &r, 0);
	b.lb_mtok = 0;
	is_int(limit_bucket_refill(&b, &r, UINT64_MAX), 10000000000ull,
	       "gap of 2^64 ns at the largest rate and burst: exactly full");
	r = rate(1, 1, 1);
	b.lb_mtok = 0;
	b.lb_last_ns = 0;
	is_int(limit_bucket_refill(&b, &r, UINT64_MAX), 1000, "gap of 2^64 ns at 1r/s: full");
	r = rate(1000000, 1, 10000000);
	b.lb_mtok = 0;
	b.lb_last_ns = 1;
	is_int(limit_bucket_refill(&b, &r, 1 + 5 * SEC_NS), 5000000000ull,
	       "1e6 r/s for 5 s: 5e6 tokens, no overflow");
	n = 0;
	b.lb_mtok = 0;
	b.lb_last_ns = UINT64_MAX - SEC_NS;
	for (i = 0; i < 3; i++)
		n += (unsigned)limit_bucket_take(&b, &r, UINT64_MAX - SEC_NS + 1000 * i, NULL);
	is_int(n, 2, "near the end of the clock: 1 µs gives one token at 1e6 r/s");

	r = rate(10, 1, 20);
	b.lb_mtok = 20000;
	b.lb_last_ns = 0;
	r.r_burst = 5;
	is_int(limit_bucket_refill(&b, &r, 0), 5000, "a lowered burst clamps the tokens");
}

static void test_table(void)
{
	struct conf_limits cl;
	struct conf_named_rate users[1], models[1];
	struct limit *l;
	char err[128];
	uint64_t t0 = 1000 * SEC_NS;
	unsigned i, n, retry = 0;
	uint8_t k1[4] = { 192, 0, 2, 1 }, k2[4] = { 192, 0, 2, 2 };

	subtest("table: kinds, overrides, reload");
	memset(&cl, 0, sizeof(cl));
	cl.l_default = rate(5, 1, 0);
	cl.l_client = rate(3, 1, 0);
	memset(users, 0, sizeof(users));
	strcpy(users[0].nr_name, "alice");
	users[0].nr_rate = rate(2, 1, 0);
	cl.l_users = users;
	cl.l_nusers = 1;
	memset(models, 0, sizeof(models));
	strcpy(models[0].nr_name, "fraud");
	models[0].nr_rate = rate(4, 60, 0);
	cl.l_models = models;
	cl.l_nmodels = 1;
	l = limit_new(4096, err, sizeof(err));
	ok(l != NULL, "limit_new");
	if (l == NULL)
		return;

	for (n = i = 0; i < 10; i++)
		n += limit_check_client(l, &cl, k1, 4, t0, NULL) == LIMIT_NONE;
	is_int(n, 3, "client 1: 3 of 10");
	ok(limit_check_client(l, &cl, k2, 4, t0, &retry) == LIMIT_NONE, "client 2 unaffected");
	ok(limit_check_client(l, &cl, k1, 4, t0, &retry) == LIMIT_CLIENT, "client 1 limited");
	is_int(retry, 1, "with Retry-After 1");
	for (n = i = 0; i < 10; i++)
		n += limit_check_user(l, &cl, "alice", 5, t0, NULL) == LIMIT_NONE;
	is_int(n, 2, "user.alice overrides default: 2");
	for (n = i = 0; i < 10; i++)
		n += limit_check_user(l, &cl, "bob", 3, t0, NULL) == LIMIT_NONE;
	is_int(n, 5, "bob gets the default: 5");
	for (n = i = 0; i < 10; i++)
		n += limit_check_user(l, &cl, "alicex", 6, t0, NULL) == LIMIT_NONE;
	is_int(n, 5, "a name that merely starts with alice gets the default");
	for (n = i = 0; i < 10; i++)
		n += limit_check_model(l, &cl, "fraud", 5, t0, NULL) == LIMIT_NONE;
	is_int(n, 4, "model.fraud: 4, shared by everyone");
	ok(limit_check_model(l, &cl, "fraud", 5, t0, &retry) == LIMIT_MODEL, "model limited");
	is_int(retry, 15, "4r/m: Retry-After 15");
	for (n = i = 0; i < 10; i++)
		n += limit_check_model(l, &cl, "churn", 5, t0, NULL) == LIMIT_NONE;
	is_int(n, 10, "a model without a line is not limited");
	ok(limit_check_user(l, &cl, "carol", 5, t0, NULL) == LIMIT_NONE, "carol: 1 of 5 used");
	is_int(limit_count(l, LIMIT_USER, true), 8 + 5 + 5, "limited count for user");
	is_int(limit_count(l, LIMIT_CLIENT, false), 4, "allowed count for client");

	/* reload: a higher rate for the default; carol keeps her 4 tokens */
	cl.l_default = rate(100, 1, 0);
	for (n = i = 0; i < 10; i++)
		n += limit_check_user(l, &cl, "carol", 5, t0, NULL) == LIMIT_NONE;
	is_int(n, 4, "after reload carol keeps her 4 tokens (not refilled to 100)");
	ok(limit_check_user(l, &cl, "carol", 5, t0 + 10 * MS_NS, NULL) == LIMIT_NONE,
	   "and refills at the new rate (1 in 10 ms)");
	cl.l_default.r_set = false;
	ok(limit_check_user(l, &cl, "carol", 5, t0, NULL) == LIMIT_NONE,
	   "default removed: not limited");
	limit_free(l);
}

static void test_inflight(void)
{
	struct conf_limits cl;
	struct limit *l;
	char err[128];
	unsigned in, q;
	uint64_t n;

	subtest("in flight and the queue");
	memset(&cl, 0, sizeof(cl));
	l = limit_new(4096, err, sizeof(err));
	if (l == NULL)
		return;
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_FREE, "no limit: nothing held");
	is_int(limit_inflight_try(l, &cl, "a", 1), LIMIT_SLOT_FREE, "no limit: try holds nothing");
	cl.l_inflight = 2;
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_HELD, "1st held");
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_HELD, "2nd held");
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_REFUSED,
	       "3rd refused (no queue)");
	is_int(limit_inflight_acquire(l, &cl, "b", 1), LIMIT_SLOT_HELD, "another user unaffected");
	cl.l_queue = 1;
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_QUEUED, "queue = 1: queued");
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_REFUSED, "queue full: refused");
	is_int(limit_inflight_retry(l, &cl, "a", 1), LIMIT_SLOT_QUEUED, "retry: still full");
	limit_inflight_release(l, "a", 1);
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_REFUSED,
	       "a newcomer does not overtake the waiter");
	is_int(limit_inflight_retry(l, &cl, "a", 1), LIMIT_SLOT_HELD, "the waiter gets the slot");
	limit_inflight_get(l, "a", 1, &in, &q);
	ok(in == 2 && q == 0, "2 in flight, none queued");
	is_int(limit_inflight_acquire(l, &cl, "a", 1), LIMIT_SLOT_QUEUED, "queued again");
	n = limit_count(l, LIMIT_INFLIGHT, true);
	is_int(limit_inflight_try(l, &cl, "a", 1), LIMIT_SLOT_REFUSED,
	       "a caller that cannot wait (gRPC) is refused, the queue set or not");
	is_int(limit_count(l, LIMIT_INFLIGHT, true), n + 1, "... and counted as limited");
	limit_inflight_get(l, "a", 1, &in, &q);
	ok(in == 2 && q == 1, "... without taking a place in the queue");
	limit_inflight_dequeue(l, "a", 1, true);
	limit_inflight_get(l, "a", 1, &in, &q);
	ok(in == 2 && q == 0, "dequeued");
	is_int(limit_count(l, LIMIT_QUEUE_TIMEOUT, true), 1, "queue timeout counted");
	limit_inflight_release(l, "a", 1);
	limit_inflight_release(l, "a", 1);
	limit_inflight_release(l, "a", 1); /* one too many must not wrap */
	limit_inflight_get(l, "a", 1, &in, &q);
	ok(in == 0 && q == 0, "all released, no wrap-around");
	limit_free(l);
}

/* Resident set size in KiB (/proc/self/statm), 0 if unknown. */
static unsigned long rss_kib(void)
{
	unsigned long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * (unsigned long)(sysconf(_SC_PAGESIZE) / 1024);
}

static void test_flood(void)
{
	struct conf_limits cl;
	struct limit *l;
	char err[128];
	uint64_t t0 = 50 * SEC_NS;
	size_t cap = 65536;
	unsigned i, n, in, q;
	uint32_t a;

	subtest("flood: 100,000 distinct client keys, bounded memory");
	memset(&cl, 0, sizeof(cl));
	cl.l_client = rate(1, 60, 1);
	cl.l_default = rate(1, 60, 1);
	cl.l_inflight = 1;
	l = limit_new(cap, err, sizeof(err));
	if (l == NULL)
		return;
	ok(limit_check_user(l, &cl, "alice", 5, t0, NULL) == LIMIT_NONE, "alice's one token");
	is_int(limit_inflight_acquire(l, &cl, "alice", 5), LIMIT_SLOT_HELD, "alice in flight");
	for (n = i = 0; i < 100000; i++) {
		uint8_t k[4];

		a = htonl(0x0a000000u + i);
		memcpy(k, &a, 4);
		n += limit_check_client(l, &cl, k, 4, t0 + i, NULL) == LIMIT_NONE;
	}
	is_int(n, 100000, "every new address gets its first token");
	ok(limit_entries(l) <= cap, "entries stay within the cap");
	ok(limit_evictions(l) >= 100000 - cap, "evictions counted");
	diag("table: %zu entries of %zu, %llu evictions, %zu bytes", limit_entries(l), cap,
	     (unsigned long long)limit_evictions(l), limit_memory(l));
	ok(limit_check_user(l, &cl, "alice", 5, t0 + 200000, NULL) == LIMIT_USER,
	   "alice's drained bucket survived the flood (client entries went first)");
	limit_inflight_get(l, "alice", 5, &in, &q);
	is_int(in, 1, "an in-flight entry is never evicted");
	{
		unsigned long r1 = rss_kib(), r2;

		for (i = 0; i < 100000; i++) {
			uint8_t k[4];

			a = htonl(0x0b000000u + i);
			memcpy(k, &a, 4);
			limit_check_client(l, &cl, k, 4, t0 + 300000 + i, NULL);
		}
		r2 = rss_kib();
		ok(r2 <= r1 + 256, "100,000 more keys: RSS grew by less than 256 KiB");
		diag("RSS after the first 100k keys %lu KiB, after 100k more %lu KiB", r1, r2);
	}
	limit_inflight_release(l, "alice", 5);
	limit_free(l);
}

struct thr_arg {
	struct limit *l;
	const struct conf_limits *cl;
	unsigned allowed;
};

static void *thr_take(void *p)
{
	struct thr_arg *a = p;
	unsigned i;

	for (i = 0; i < 20000; i++)
		a->allowed +=
		    limit_check_user(a->l, a->cl, "shared", 6, limit_now_ns(), NULL) == LIMIT_NONE;
	return NULL;
}

static void test_threads(void)
{
	struct conf_limits cl;
	struct thr_arg ta[4];
	pthread_t th[4];
	char err[128];
	unsigned i, total = 0;
	struct limit *l;

	subtest("threads share one bucket");
	memset(&cl, 0, sizeof(cl));
	cl.l_default = rate(1, 60, 1000);
	l = limit_new(4096, err, sizeof(err));
	if (l == NULL)
		return;
	for (i = 0; i < 4; i++) {
		ta[i] = (struct thr_arg){ l, &cl, 0 };
		if (pthread_create(&th[i], NULL, thr_take, &ta[i]) != 0)
			abort();
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		total += ta[i].allowed;
	}
	/* 1000 at once plus at most one refill (1r/m) while the threads ran */
	ok(total == 1000 || total == 1001, "4 threads × 20000 tries: burst 1000 admitted once");
	diag("admitted %u", total);
	is_int(limit_count(l, LIMIT_USER, false) + limit_count(l, LIMIT_USER, true), 80000,
	       "every try counted");
	limit_free(l);
}

int main(void)
{
	test_bucket_basic();
	test_bucket_fractions();
	test_bucket_clock();
	test_table();
	test_inflight();
	test_flood();
	test_threads();
	return done_testing();
}
