/*
 * limit: token buckets and in-flight counts in one sharded table (see limit.h).
 */
#include "limit.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIMIT_SHARDS 64 /* power of two; one mutex each */
#define LIMIT_WAYS   8

#define LIMIT_MTOK 1000u /* milli-tokens per request */

const char *limit_name(enum limit_kind k)
{
	static const char *const names[LIMIT_NKINDS] = { "client", "user", "model", "inflight",
							 "queue_timeout" };

	return (unsigned)k < LIMIT_NKINDS ? names[k] : NULL;
}

/* ---- the token bucket --------------------------------------------------------------------- */

/*
 * The units keep every product below 2^64: r = r_rate ≤ 10^6 tokens per period, and
 * pd = r_period_s · 10^6 ≤ 6·10^7 ns is the time in which r milli-tokens accrue.
 * So mtok(elapsed) = elapsed · r / pd, computed as whole periods plus a remainder
 * (remainder · r < 6·10^13).
 */
uint64_t limit_rate_cap(const struct conf_rate *r)
{
	return (uint64_t)(r->r_burst ? r->r_burst : r->r_rate) * LIMIT_MTOK;
}

void limit_bucket_init(struct limit_bucket *b, const struct conf_rate *r, uint64_t now_ns)
{
	b->lb_mtok = limit_rate_cap(r);
	b->lb_last_ns = now_ns;
}

uint64_t limit_bucket_refill(struct limit_bucket *b, const struct conf_rate *r, uint64_t now_ns)
{
	uint64_t rate = r->r_rate ? r->r_rate : 1;
	uint64_t pd = (uint64_t)(r->r_period_s ? r->r_period_s : 1) * 1000000u;
	uint64_t cap = limit_rate_cap(r), el, whole, add, need;

	if (b->lb_mtok >= cap) {
		/* full (or a reload lowered the burst): nothing to credit */
		b->lb_mtok = cap;
		if (now_ns > b->lb_last_ns)
			b->lb_last_ns = now_ns;
		return cap;
	}
	if (now_ns <= b->lb_last_ns) {
		/* an older time (a clock read before another worker took the lock, or
		 * a clock going backwards): no credit, and the last time is never
		 * moved back, or the same interval would be credited twice */
		return b->lb_mtok;
	}
	el = now_ns - b->lb_last_ns;
	need = cap - b->lb_mtok;
	whole = el / pd;
	if (whole > need / rate) {
		/* whole · rate > need: full, whatever the gap (no multiplication overflows) */
		b->lb_mtok = cap;
		b->lb_last_ns = now_ns;
		return cap;
	}
	add = whole * rate + (el % pd) * rate / pd;
	if (add >= need) {
		b->lb_mtok = cap;
		b->lb_last_ns = now_ns;
		return cap;
	}
	if (add == 0)
		return b->lb_mtok; /* keep lb_last_ns: the fraction accrues until it is worth 1 */
	b->lb_mtok += add;
	/* advance by exactly the time add milli-tokens took, so no fraction is lost */
	b->lb_last_ns += (add / rate) * pd + (add % rate) * pd / rate;
	return b->lb_mtok;
}

int limit_bucket_take(struct limit_bucket *b, const struct conf_rate *r, uint64_t now_ns,
		      unsigned *retry_s)
{
	uint64_t rate = r->r_rate ? r->r_rate : 1;
	uint64_t pd = (uint64_t)(r->r_period_s ? r->r_period_s : 1) * 1000000u;
	uint64_t have = limit_bucket_refill(b, r, now_ns), need, wait_ns, since, s;

	if (have >= LIMIT_MTOK) {
		b->lb_mtok -= LIMIT_MTOK;
		return 1;
	}
	if (retry_s != NULL) {
		need = LIMIT_MTOK - have; /* ≤ 1000: need · pd < 6·10^10 */
		wait_ns = (need * pd + rate - 1) / rate;
		/* credited already in part (less than 1 mtok); none for a reading older
		 * than lb_last_ns (another worker's later one took the lock first) */
		since = now_ns > b->lb_last_ns ? now_ns - b->lb_last_ns : 0;
		wait_ns = wait_ns > since ? wait_ns - since : 0;
		s = (wait_ns + 999999999u) / 1000000000u;
		*retry_s = s == 0 ? 1 : s > 0xffffffffu ? 0xffffffffu : (unsigned)s;
	}
	return 0;
}

/* ---- keys ------------------------------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = ROTL(v1, 13);                                                                 \
		v1 ^= v0;                                                                          \
		v0 = ROTL(v0, 32);                                                                 \
		v2 += v3;                                                                          \
		v3 = ROTL(v3, 16);                                                                 \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = ROTL(v3, 21);                                                                 \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = ROTL(v1, 17);                                                                 \
		v1 ^= v2;                                                                          \
		v2 = ROTL(v2, 32);                                                                 \
	} while (0)

/* SipHash-2-4 (Aumasson, Bernstein 2012) of m under k. */
static uint64_t limit_siphash(const uint64_t k[2], const uint8_t *m, size_t n)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	uint64_t b = (uint64_t)n << 56, mi;
	size_t i, j, end = n & ~(size_t)7;

	for (i = 0; i < end; i += 8) {
		mi = 0;
		for (j = 0; j < 8; j++)
			mi |= (uint64_t)m[i + j] << (8 * j);
		v3 ^= mi;
		SIPROUND;
		SIPROUND;
		v0 ^= mi;
	}
	for (j = 0; j < (n & 7); j++)
		b |= (uint64_t)m[end + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table -------------------------------------------------------------------------- */

struct limit_ent {
	uint64_t ls_h1, ls_h2; /* keyed hashes of (kind, key) */
	struct limit_bucket ls_b;
	struct conf_rate ls_rate; /* the rate last used: to tell whether it refilled */
	uint64_t ls_seen_ns;
	uint32_t ls_inflight, ls_queued;
	uint8_t ls_kind;
	bool ls_used;
};

struct limit_shard {
	pthread_mutex_t sh_lock;
	struct limit_ent *sh_slots; /* l_sets * LIMIT_WAYS */
	uint64_t sh_used;
	uint64_t sh_evictions;
	uint64_t sh_allowed[LIMIT_NKINDS];
	uint64_t sh_limited[LIMIT_NKINDS];
} __attribute__((aligned(64)));

struct limit {
	size_t l_sets; /* per shard */
	uint64_t l_k1[2], l_k2[2];
	struct limit_shard l_sh[LIMIT_SHARDS];
};

uint64_t limit_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct limit *limit_new(size_t max_entries, char *err, size_t errlen)
{
	struct limit *l = calloc(1, sizeof(*l));
	size_t i;

	if (l == NULL) {
		snprintf(err, errlen, "limits: out of memory");
		return NULL;
	}
	l->l_sets = max_entries / (LIMIT_SHARDS * LIMIT_WAYS);
	if (l->l_sets == 0)
		l->l_sets = 1;
	if (RAND_bytes((unsigned char *)l->l_k1, sizeof(l->l_k1)) != 1 ||
	    RAND_bytes((unsigned char *)l->l_k2, sizeof(l->l_k2)) != 1) {
		snprintf(err, errlen, "limits: no random key (RAND_bytes failed)");
		free(l);
		return NULL;
	}
	for (i = 0; i < LIMIT_SHARDS; i++) {
		struct limit_shard *sh = &l->l_sh[i];

		sh->sh_slots = calloc(l->l_sets * LIMIT_WAYS, sizeof(*sh->sh_slots));
		if (sh->sh_slots == NULL || pthread_mutex_init(&sh->sh_lock, NULL) != 0) {
			free(sh->sh_slots);
			while (i-- > 0) {
				free(l->l_sh[i].sh_slots);
				pthread_mutex_destroy(&l->l_sh[i].sh_lock);
			}
			free(l);
			snprintf(err, errlen, "limits: out of memory");
			return NULL;
		}
	}
	return l;
}

void limit_free(struct limit *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < LIMIT_SHARDS; i++) {
		free(l->l_sh[i].sh_slots);
		pthread_mutex_destroy(&l->l_sh[i].sh_lock);
	}
	free(l);
}

size_t limit_memory(const struct limit *l)
{
	return sizeof(*l) + LIMIT_SHARDS * l->l_sets * LIMIT_WAYS * sizeof(struct limit_ent);
}

/* Sums a per-shard counter (the admin thread; takes each shard lock in turn). */
static uint64_t limit_sum(const struct limit *l, size_t off)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < LIMIT_SHARDS; i++) {
		struct limit_shard *sh = (struct limit_shard *)&l->l_sh[i];
		uint64_t v;

		pthread_mutex_lock(&sh->sh_lock);
		memcpy(&v, (const char *)sh + off, sizeof(v));
		pthread_mutex_unlock(&sh->sh_lock);
		sum += v;
	}
	return sum;
}

size_t limit_entries(const struct limit *l)
{
	return (size_t)limit_sum(l, offsetof(struct limit_shard, sh_used));
}

uint64_t limit_evictions(const struct limit *l)
{
	return limit_sum(l, offsetof(struct limit_shard, sh_evictions));
}

uint64_t limit_count(const struct limit *l, enum limit_kind k, bool limited)
{
	if ((unsigned)k >= LIMIT_NKINDS)
		return 0;
	return limit_sum(l, limited
				? offsetof(struct limit_shard, sh_limited) + k * sizeof(uint64_t)
				: offsetof(struct limit_shard, sh_allowed) + k * sizeof(uint64_t));
}

/*
 * Eviction rank, lower goes first: empty; a bucket that would be full by now (as good
 * as absent); a client entry; a user or model entry; never one with requests in
 * flight or waiting (rank 9).
 */
static int limit_rank(struct limit_ent *s, uint64_t now_ns)
{
	struct limit_bucket b;

	if (!s->ls_used)
		return 0;
	if (s->ls_inflight > 0 || s->ls_queued > 0)
		return 9;
	if (s->ls_kind == LIMIT_INFLIGHT)
		return 1;
	b = s->ls_b;
	if (limit_bucket_refill(&b, &s->ls_rate, now_ns) >= limit_rate_cap(&s->ls_rate))
		return 1;
	return s->ls_kind == LIMIT_CLIENT ? 2 : 3;
}

/*
 * Finds or makes the slot of (kind, key) and returns it with its shard locked (*shp),
 * or NULL (nothing locked) when every way of its set is busy. A new slot has a full
 * bucket at rate r (r may be NULL for in-flight entries).
 */
static struct limit_ent *limit_slot_get(struct limit *l, enum limit_kind kind, const void *key,
					size_t keylen, const struct conf_rate *r, uint64_t now_ns,
					bool create, struct limit_shard **shp)
{
	uint8_t buf[1 + CONF_MODEL_MAX + 16];
	uint64_t h1, h2;
	struct limit_shard *sh;
	struct limit_ent *set, *victim = NULL;
	int w, vr = 99;

	if (keylen > sizeof(buf) - 1)
		keylen = sizeof(buf) - 1; /* longer than any name the config accepts */
	buf[0] = (uint8_t)kind;
	memcpy(buf + 1, key, keylen);
	h1 = limit_siphash(l->l_k1, buf, keylen + 1);
	h2 = limit_siphash(l->l_k2, buf, keylen + 1);
	sh = &l->l_sh[h1 & (LIMIT_SHARDS - 1)];
	set = sh->sh_slots + ((h1 >> 6) % l->l_sets) * LIMIT_WAYS;
	pthread_mutex_lock(&sh->sh_lock);
	for (w = 0; w < LIMIT_WAYS; w++)
		if (set[w].ls_used && set[w].ls_h1 == h1 && set[w].ls_h2 == h2 &&
		    set[w].ls_kind == (uint8_t)kind) {
			set[w].ls_seen_ns = now_ns;
			*shp = sh;
			return &set[w];
		}
	if (!create) {
		pthread_mutex_unlock(&sh->sh_lock);
		return NULL;
	}
	for (w = 0; w < LIMIT_WAYS; w++) {
		int rk = limit_rank(&set[w], now_ns);

		if (rk < vr || (rk == vr && set[w].ls_seen_ns < victim->ls_seen_ns)) {
			victim = &set[w];
			vr = rk;
		}
	}
	if (vr == 9) {
		pthread_mutex_unlock(&sh->sh_lock);
		return NULL;
	}
	if (victim->ls_used)
		sh->sh_evictions++;
	else
		sh->sh_used++;
	memset(victim, 0, sizeof(*victim));
	victim->ls_used = true;
	victim->ls_h1 = h1;
	victim->ls_h2 = h2;
	victim->ls_kind = (uint8_t)kind;
	victim->ls_seen_ns = now_ns;
	if (r != NULL) {
		victim->ls_rate = *r;
		limit_bucket_init(&victim->ls_b, r, now_ns);
	}
	*shp = sh;
	return victim;
}

int limit_take(struct limit *l, enum limit_kind kind, const void *key, size_t keylen,
	       const struct conf_rate *r, uint64_t now_ns, unsigned *retry_s)
{
	struct limit_shard *sh;
	struct limit_ent *s;
	int ok;

	if (r == NULL || !r->r_set || (unsigned)kind >= LIMIT_NKINDS)
		return 1;
	s = limit_slot_get(l, kind, key, keylen, r, now_ns, true, &sh);
	if (s == NULL)
		return 1; /* all 8 ways busy with requests in flight: fail open for rates */
	s->ls_rate = *r;  /* a reload may have changed it: the tokens stay */
	ok = limit_bucket_take(&s->ls_b, r, now_ns, retry_s);
	if (ok)
		sh->sh_allowed[kind]++;
	else
		sh->sh_limited[kind]++;
	pthread_mutex_unlock(&sh->sh_lock);
	return ok;
}

const struct conf_rate *limit_user_rate(const struct conf_limits *cl, const char *user, size_t ulen)
{
	size_t i;

	for (i = 0; i < cl->l_nusers; i++)
		if (strncmp(cl->l_users[i].nr_name, user, ulen) == 0 &&
		    cl->l_users[i].nr_name[ulen] == '\0')
			return &cl->l_users[i].nr_rate;
	return &cl->l_default;
}

const struct conf_rate *limit_model_rate(const struct conf_limits *cl, const char *model,
					 size_t mlen)
{
	size_t i;

	if (mlen >= CONF_MODEL_MAX)
		return NULL;
	for (i = 0; i < cl->l_nmodels; i++)
		if (strncmp(cl->l_models[i].nr_name, model, mlen) == 0 &&
		    cl->l_models[i].nr_name[mlen] == '\0')
			return &cl->l_models[i].nr_rate;
	return NULL;
}

enum limit_kind limit_check_client(struct limit *l, const struct conf_limits *cl,
				   const void *addrkey, size_t keylen, uint64_t now_ns,
				   unsigned *retry_s)
{
	return limit_take(l, LIMIT_CLIENT, addrkey, keylen, &cl->l_client, now_ns, retry_s)
		   ? LIMIT_NONE
		   : LIMIT_CLIENT;
}

enum limit_kind limit_check_user(struct limit *l, const struct conf_limits *cl, const char *user,
				 size_t ulen, uint64_t now_ns, unsigned *retry_s)
{
	return limit_take(l, LIMIT_USER, user, ulen, limit_user_rate(cl, user, ulen), now_ns,
			  retry_s)
		   ? LIMIT_NONE
		   : LIMIT_USER;
}

enum limit_kind limit_check_model(struct limit *l, const struct conf_limits *cl, const char *model,
				  size_t mlen, uint64_t now_ns, unsigned *retry_s)
{
	return limit_take(l, LIMIT_MODEL, model, mlen, limit_model_rate(cl, model, mlen), now_ns,
			  retry_s)
		   ? LIMIT_NONE
		   : LIMIT_MODEL;
}

/* ---- in flight ---------------------------------------------------------------------------- */

/* A slot for user, or a place in its queue when fewer than queue wait; else refused. */
static enum limit_slot limit_inflight_admit(struct limit *l, const struct conf_limits *cl,
					    const char *user, size_t ulen, unsigned queue)
{
	struct limit_shard *sh;
	struct limit_ent *s;
	enum limit_slot res;

	if (cl->l_inflight == 0)
		return LIMIT_SLOT_FREE;
	s = limit_slot_get(l, LIMIT_INFLIGHT, user, ulen, NULL, limit_now_ns(), true, &sh);
	if (s == NULL)
		return LIMIT_SLOT_REFUSED; /* cannot count it: fail closed */
	if (s->ls_inflight < cl->l_inflight && s->ls_queued == 0) {
		s->ls_inflight++;
		sh->sh_allowed[LIMIT_INFLIGHT]++;
		res = LIMIT_SLOT_HELD;
	} else if (s->ls_queued < queue) {
		s->ls_queued++;
		res = LIMIT_SLOT_QUEUED;
	} else {
		sh->sh_limited[LIMIT_INFLIGHT]++;
		res = LIMIT_SLOT_REFUSED;
	}
	pthread_mutex_unlock(&sh->sh_lock);
	return res;
}

enum limit_slot limit_inflight_acquire(struct limit *l, const struct conf_limits *cl,
				       const char *user, size_t ulen)
{
	return limit_inflight_admit(l, cl, user, ulen, cl->l_queue);
}

enum limit_slot limit_inflight_try(struct limit *l, const struct conf_limits *cl, const char *user,
				   size_t ulen)
{
	return limit_inflight_admit(l, cl, user, ulen, 0);
}

enum limit_slot limit_inflight_retry(struct limit *l, const struct conf_limits *cl,
				     const char *user, size_t ulen)
{
	struct limit_shard *sh;
	struct limit_ent *s;
	enum limit_slot res = LIMIT_SLOT_QUEUED;

	s = limit_slot_get(l, LIMIT_INFLIGHT, user, ulen, NULL, limit_now_ns(), false, &sh);
	if (s == NULL)
		return LIMIT_SLOT_QUEUED; /* cannot happen: a queued entry is never evicted */
	/* a reload to inflight = 0 lets every waiter in (still counted, released later) */
	if (cl->l_inflight == 0 || s->ls_inflight < cl->l_inflight) {
		if (s->ls_queued > 0)
			s->ls_queued--;
		s->ls_inflight++;
		sh->sh_allowed[LIMIT_INFLIGHT]++;
		res = LIMIT_SLOT_HELD;
	}
	pthread_mutex_unlock(&sh->sh_lock);
	return res;
}

void limit_inflight_dequeue(struct limit *l, const char *user, size_t ulen, bool timed_out)
{
	struct limit_shard *sh;
	struct limit_ent *s;

	s = limit_slot_get(l, LIMIT_INFLIGHT, user, ulen, NULL, limit_now_ns(), false, &sh);
	if (s == NULL)
		return;
	if (s->ls_queued > 0)
		s->ls_queued--;
	if (timed_out)
		sh->sh_limited[LIMIT_QUEUE_TIMEOUT]++;
	pthread_mutex_unlock(&sh->sh_lock);
}

void limit_inflight_release(struct limit *l, const char *user, size_t ulen)
{
	struct limit_shard *sh;
	struct limit_ent *s;

	s = limit_slot_get(l, LIMIT_INFLIGHT, user, ulen, NULL, limit_now_ns(), false, &sh);
	if (s == NULL)
		return;
	if (s->ls_inflight > 0)
		s->ls_inflight--;
	pthread_mutex_unlock(&sh->sh_lock);
}

void limit_inflight_get(struct limit *l, const char *user, size_t ulen, unsigned *inflight,
			unsigned *queued)
{
	struct limit_shard *sh;
	struct limit_ent *s;

	*inflight = *queued = 0;
	s = limit_slot_get(l, LIMIT_INFLIGHT, user, ulen, NULL, limit_now_ns(), false, &sh);
	if (s == NULL)
		return;
	*inflight = s->ls_inflight;
	*queued = s->ls_queued;
	pthread_mutex_unlock(&sh->sh_lock);
}

/* ---- metrics ------------------------------------------------------------------------------ */

void limit_metrics_render(FILE *f, const struct limit *l)
{
	int k;

	if (l == NULL)
		return;
	fputs("# HELP tfguard_proxy_limited_total Requests refused with 429 by [limits], by "
	      "limit.\n# TYPE tfguard_proxy_limited_total counter\n",
	      f);
	for (k = 0; k < LIMIT_NKINDS; k++)
		fprintf(f, "tfguard_proxy_limited_total{limit=\"%s\"} %llu\n", limit_name(k),
			(unsigned long long)limit_count(l, k, true));
	fputs("# HELP tfguard_proxy_limit_allowed_total Requests that passed a configured "
	      "limit, by limit.\n# TYPE tfguard_proxy_limit_allowed_total counter\n",
	      f);
	for (k = 0; k < LIMIT_QUEUE_TIMEOUT; k++)
		fprintf(f, "tfguard_proxy_limit_allowed_total{limit=\"%s\"} %llu\n", limit_name(k),
			(unsigned long long)limit_count(l, k, false));
	fprintf(f,
		"# HELP tfguard_proxy_limit_evictions_total Limit entries evicted to make room "
		"(the table is bounded).\n# TYPE tfguard_proxy_limit_evictions_total counter\n"
		"tfguard_proxy_limit_evictions_total %llu\n",
		(unsigned long long)limit_evictions(l));
	fprintf(
	    f,
	    "# HELP tfguard_proxy_limit_entries Limit entries in use.\n"
	    "# TYPE tfguard_proxy_limit_entries gauge\ntfguard_proxy_limit_entries %zu\n"
	    "# HELP tfguard_proxy_limit_entries_max Capacity of the limit table.\n"
	    "# TYPE tfguard_proxy_limit_entries_max gauge\ntfguard_proxy_limit_entries_max %zu\n",
	    limit_entries(l), (size_t)LIMIT_SHARDS * l->l_sets * LIMIT_WAYS);
}
