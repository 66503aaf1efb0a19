/*
 * auth: Basic decoding, credential cache, failure throttle, verifier pool (see auth.h).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "auth.h"
#include "b64.h"

#define AUTH_SHARDS 16 /* power of two; one mutex each */
#define AUTH_WAYS   8  /* set associativity of the cache and the throttle table */
/* 65536 addresses × 48 bytes ≈ 3 MiB: enough to remember a real attack, bounded. */
#define AUTH_THROTTLE_ENTRIES 65536
#define AUTH_QUEUE_PER_THREAD 1024
#define AUTH_INFLIGHT_BUCKETS 256

/* ---- Basic ---------------------------------------------------------------------- */

void auth_cred_wipe(struct auth_cred *cred)
{
	explicit_bzero(cred, sizeof(*cred));
}

void auth_cred_copy(struct auth_cred *dst, const struct auth_cred *src)
{
	if (dst == src)
		return;
	memcpy(dst->ac_buf, src->ac_buf, sizeof(dst->ac_buf));
	dst->ac_user = src->ac_user ? dst->ac_buf + (src->ac_user - src->ac_buf) : NULL;
	dst->ac_user_len = src->ac_user_len;
	dst->ac_pass = src->ac_pass ? dst->ac_buf + (src->ac_pass - src->ac_buf) : NULL;
	dst->ac_pass_len = src->ac_pass_len;
}

enum auth_basic auth_basic_decode(const char *value, size_t n, struct auth_cred *cred)
{
	static const char scheme[] = "basic";
	size_t i, b;
	ssize_t len;
	const char *colon;

	auth_cred_wipe(cred);
	/* RFC 9110 §11.1: the auth-scheme is case-insensitive */
	for (i = 0; i < 5; i++) {
		unsigned char c = i < n ? (unsigned char)value[i] : 0;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		if (c != (unsigned char)scheme[i])
			return AUTH_BASIC_MISSING;
	}
	if (n == 5)
		return AUTH_BASIC_MALFORMED;
	if (value[5] != ' ')
		return AUTH_BASIC_MISSING; /* "Basicx ..." is another scheme */
	for (b = 5; b < n && value[b] == ' '; b++)
		;
	/* RFC 7617 §2: token68 of base64("user:pass"), strict and bounded */
	if (n - b == 0 || n - b > B64_ENCODED_LEN(AUTH_CRED_MAX))
		goto out_malformed;
	len = b64_decode(value + b, n - b, (uint8_t *)cred->ac_buf, AUTH_CRED_MAX);
	if (len < 0)
		goto out_malformed;
	for (i = 0; i < (size_t)len; i++) {
		unsigned char c = (unsigned char)cred->ac_buf[i];

		/* RFC 7617 §2: user-id and password contain no CTL */
		if (c < 0x20 || c == 0x7f)
			goto out_malformed;
	}
	colon = memchr(cred->ac_buf, ':', (size_t)len);
	if (!colon || colon == cred->ac_buf)
		goto out_malformed;
	cred->ac_user = cred->ac_buf;
	cred->ac_user_len = (size_t)(colon - cred->ac_buf);
	cred->ac_buf[cred->ac_user_len] = '\0';
	cred->ac_pass = cred->ac_buf + cred->ac_user_len + 1;
	cred->ac_pass_len = (size_t)len - cred->ac_user_len - 1;
	cred->ac_buf[len] = '\0';
	return AUTH_BASIC_OK;

out_malformed:
	auth_cred_wipe(cred);
	return AUTH_BASIC_MALFORMED;
}

/* ---- process-wide keys ---------------------------------------------------------- */

static uint8_t auth_hmac_key[32];
static uint64_t auth_mix_key;
static pthread_once_t auth_key_once = PTHREAD_ONCE_INIT;
static int auth_key_ok;
static pthread_key_t auth_tls_mac; /* each thread's EVP_MAC_CTX, keyed once */

static void auth_mac_ctx_free(void *p)
{
	EVP_MAC_CTX_free(p);
}

static void auth_key_init(void)
{
	auth_key_ok = RAND_bytes(auth_hmac_key, sizeof(auth_hmac_key)) == 1 &&
		      RAND_bytes((uint8_t *)&auth_mix_key, sizeof(auth_mix_key)) == 1 &&
		      pthread_key_create(&auth_tls_mac, auth_mac_ctx_free) == 0;
}

/*
 * HMAC-SHA256(key, be32(ulen) user be32(plen) pass). The length prefixes make the
 * encoding injective: ("ab", "c") and ("a", "bc") cannot share a key (traefik's
 * singleflight collision). No allocation after a thread's first call: the context
 * is kept per thread and re-initialised with the key it already holds.
 */
static int auth_cred_key(const struct auth_cred *cred, uint8_t out[32])
{
	EVP_MAC_CTX *ctx = pthread_getspecific(auth_tls_mac);
	uint8_t be[4];
	size_t outl = 0;
	uint32_t l;

	if (!ctx) {
		EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
		OSSL_PARAM params[2];

		if (!m)
			return -1;
		ctx = EVP_MAC_CTX_new(m);
		EVP_MAC_free(m);
		if (!ctx)
			return -1;
		params[0] =
		    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
		params[1] = OSSL_PARAM_construct_end();
		if (EVP_MAC_init(ctx, auth_hmac_key, sizeof(auth_hmac_key), params) != 1 ||
		    pthread_setspecific(auth_tls_mac, ctx) != 0) {
			EVP_MAC_CTX_free(ctx);
			return -1;
		}
	} else if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1) {
		return -1;
	}
	l = (uint32_t)cred->ac_user_len;
	be[0] = (uint8_t)(l >> 24), be[1] = (uint8_t)(l >> 16), be[2] = (uint8_t)(l >> 8);
	be[3] = (uint8_t)l;
	if (EVP_MAC_update(ctx, be, 4) != 1 ||
	    EVP_MAC_update(ctx, (const uint8_t *)cred->ac_user, cred->ac_user_len) != 1)
		return -1;
	l = (uint32_t)cred->ac_pass_len;
	be[0] = (uint8_t)(l >> 24), be[1] = (uint8_t)(l >> 16), be[2] = (uint8_t)(l >> 8);
	be[3] = (uint8_t)l;
	if (EVP_MAC_update(ctx, be, 4) != 1 ||
	    EVP_MAC_update(ctx, (const uint8_t *)cred->ac_pass, cred->ac_pass_len) != 1 ||
	    EVP_MAC_final(ctx, out, &outl, 32) != 1 || outl != 32)
		return -1;
	return 0;
}

uint64_t auth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- tables: sharded, set-associative ------------------------------------------- */

struct auth_cache_slot {
	uint8_t cs_key[32];
	uint64_t cs_id;
	uint64_t cs_expires; /* 0 = empty */
};

struct auth_thr_slot {
	uint8_t ts_key[16];
	uint8_t ts_keylen; /* 0 = empty */
	uint32_t ts_count;
	uint64_t ts_window_start;
	uint64_t ts_blocked_until;
	uint64_t ts_last;
	uint32_t ts_pending; /* admitted verifications not finished yet */
	uint32_t ts_gen;     /* which life of this way: a slot given back must be this one */
};

struct auth_shard {
	pthread_mutex_t sh_lock;
	void *sh_slots; /* nsets * AUTH_WAYS slots */
} __attribute__((aligned(64)));

struct auth {
	/* configuration */
	size_t a_cache_sets; /* per shard; 0 = cache off */
	uint64_t a_cache_ttl_ms;
	unsigned a_fail_limit;
	uint64_t a_fail_window_ms;
	size_t a_thr_sets;
	uint32_t a_thr_gen; /* generations of throttle slots (atomic) */

	struct auth_shard a_cache[AUTH_SHARDS];
	struct auth_shard a_thr[AUTH_SHARDS];

	pthread_mutex_t a_ht_lock;
	struct htpasswd *a_ht;

	/* the verifier pool */
	pthread_mutex_t a_q_lock;
	pthread_cond_t a_q_cond;
	struct auth_job *a_q_head, *a_q_tail;
	struct auth_job *a_inflight[AUTH_INFLIGHT_BUCKETS]; /* leaders by aj_key, a_q_lock */
	size_t a_q_len, a_q_max;
	bool a_stopping;
	pthread_t *a_threads;
	unsigned a_nthreads;
};

/* ---- the cache ------------------------------------------------------------------ */

static struct auth_cache_slot *auth_cache_set(struct auth *a, const uint8_t key[32],
					      struct auth_shard **sh)
{
	uint64_t h;

	/* the key is an HMAC output: its bytes are uniformly distributed already */
	memcpy(&h, key + 8, sizeof(h));
	*sh = &a->a_cache[key[0] & (AUTH_SHARDS - 1)];
	return (struct auth_cache_slot *)(*sh)->sh_slots + (h % a->a_cache_sets) * AUTH_WAYS;
}

int auth_cache_lookup(struct auth *a, const struct auth_cred *cred, uint64_t now_ms)
{
	struct auth_cache_slot *set;
	struct auth_shard *sh;
	uint8_t key[32];
	uint64_t id = 0;
	bool found = false;
	struct htpasswd *ht;
	const struct htpasswd_entry *e;
	int w, hit = 0;

	if (a->a_cache_sets == 0 || auth_cred_key(cred, key) < 0)
		return 0;
	set = auth_cache_set(a, key, &sh);
	pthread_mutex_lock(&sh->sh_lock);
	for (w = 0; w < AUTH_WAYS; w++) {
		if (set[w].cs_expires == 0 || CRYPTO_memcmp(set[w].cs_key, key, 32) != 0)
			continue;
		if (set[w].cs_expires <= now_ms) {
			explicit_bzero(&set[w], sizeof(set[w]));
		} else {
			id = set[w].cs_id;
			found = true;
		}
		break;
	}
	pthread_mutex_unlock(&sh->sh_lock);
	explicit_bzero(key, sizeof(key));
	if (!found)
		return 0;
	/* valid only while the user's line is the one that was verified */
	ht = auth_get_htpasswd(a);
	e = htpasswd_find(ht, cred->ac_user, cred->ac_user_len);
	hit = e && e->e_id == id;
	htpasswd_unref(ht);
	return hit;
}

void auth_cache_insert(struct auth *a, const struct auth_cred *cred, uint64_t id, uint64_t now_ms)
{
	struct auth_cache_slot *set, *victim = NULL;
	struct auth_shard *sh;
	uint8_t key[32];
	int w;

	if (a->a_cache_sets == 0 || auth_cred_key(cred, key) < 0)
		return;
	set = auth_cache_set(a, key, &sh);
	pthread_mutex_lock(&sh->sh_lock);
	for (w = 0; w < AUTH_WAYS && !victim; w++)
		if (set[w].cs_expires != 0 && CRYPTO_memcmp(set[w].cs_key, key, 32) == 0)
			victim = &set[w];
	/* else an empty or expired way, else the way closest to expiry (the oldest) */
	for (w = 0; w < AUTH_WAYS && !victim; w++)
		if (set[w].cs_expires <= now_ms)
			victim = &set[w];
	if (!victim) {
		victim = &set[0];
		for (w = 1; w < AUTH_WAYS; w++)
			if (set[w].cs_expires < victim->cs_expires)
				victim = &set[w];
	}
	memcpy(victim->cs_key, key, 32);
	victim->cs_id = id;
	victim->cs_expires = now_ms + a->a_cache_ttl_ms;
	pthread_mutex_unlock(&sh->sh_lock);
	explicit_bzero(key, sizeof(key));
}

/* ---- the throttle --------------------------------------------------------------- */

size_t auth_addr_key(const struct sockaddr *sa, socklen_t salen, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET && salen >= (socklen_t)sizeof(struct sockaddr_in)) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6 && salen >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const uint8_t *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (memcmp(b, mapped, 12) == 0) {
			memcpy(out, b + 12, 4);
			return 4;
		}
		/* a /64 is what one customer of any ISP gets: key on it, not on one address */
		memcpy(out, b, 8);
		return 8;
	}
	if (sa->sa_family == AF_UNIX && salen > offsetof(struct sockaddr_un, sun_path)) {
		size_t n = (size_t)salen - offsetof(struct sockaddr_un, sun_path);

		n = n > 16 ? 16 : n;
		memcpy(out, ((const struct sockaddr_un *)sa)->sun_path, n);
		return n ? n : 1;
	}
	out[0] = (uint8_t)sa->sa_family;
	return 1;
}

static struct auth_thr_slot *auth_thr_set(struct auth *a, const void *key, size_t keylen,
					  struct auth_shard **sh)
{
	const uint8_t *k = key;
	uint64_t h = auth_mix_key ^ 0xcbf29ce484222325ull;
	size_t i;

	/* keyed FNV-1a + finaliser: addresses are chosen by attackers, the seed is not */
	for (i = 0; i < keylen; i++)
		h = (h ^ k[i]) * 0x100000001b3ull;
	h ^= (uint64_t)keylen;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	*sh = &a->a_thr[h & (AUTH_SHARDS - 1)];
	return (struct auth_thr_slot *)(*sh)->sh_slots + ((h >> 8) % a->a_thr_sets) * AUTH_WAYS;
}

static unsigned auth_retry_after(const struct auth_thr_slot *s, uint64_t now_ms)
{
	uint64_t left;

	if (s->ts_blocked_until <= now_ms)
		return 0;
	left = (s->ts_blocked_until - now_ms + 999) / 1000;
	return left > 0xffffffffu ? 0xffffffffu : (unsigned)left;
}

unsigned auth_throttle_check(struct auth *a, const void *key, size_t keylen, uint64_t now_ms)
{
	struct auth_thr_slot *set;
	struct auth_shard *sh;
	unsigned retry = 0;
	int w;

	if (keylen == 0 || keylen > 16)
		return 0;
	set = auth_thr_set(a, key, keylen, &sh);
	pthread_mutex_lock(&sh->sh_lock);
	for (w = 0; w < AUTH_WAYS; w++)
		if (set[w].ts_keylen == keylen && memcmp(set[w].ts_key, key, keylen) == 0) {
			retry = auth_retry_after(&set[w], now_ms);
			break;
		}
	pthread_mutex_unlock(&sh->sh_lock);
	return retry;
}

/* Eviction rank: lower goes first. Empty < idle (window over, not blocked) < counting
 * < blocked; ties broken by least recently seen. */
static int auth_thr_rank(const struct auth_thr_slot *s, const struct auth *a, uint64_t now_ms)
{
	if (s->ts_keylen == 0)
		return 0;
	if (s->ts_blocked_until > now_ms || s->ts_pending > 0)
		return 3;
	if (now_ms - s->ts_window_start >= a->a_fail_window_ms)
		return 1;
	return 2;
}

/* The slot of key in its set, or NULL (shard lock held). */
static struct auth_thr_slot *auth_thr_find(struct auth_thr_slot *set, const void *key,
					   size_t keylen)
{
	int w;

	for (w = 0; w < AUTH_WAYS; w++)
		if (set[w].ts_keylen == keylen && memcmp(set[w].ts_key, key, keylen) == 0)
			return &set[w];
	return NULL;
}

/* The slot of key, taking over the lowest-ranked way if it has none (shard lock held);
 * its failure window restarted if it has run out. */
static struct auth_thr_slot *auth_thr_get(struct auth *a, struct auth_thr_slot *set,
					  const void *key, size_t keylen, uint64_t now_ms)
{
	struct auth_thr_slot *s = auth_thr_find(set, key, keylen);
	int w;

	if (!s) {
		for (w = 0; w < AUTH_WAYS; w++) {
			int r = auth_thr_rank(&set[w], a, now_ms);
			int rs = s ? auth_thr_rank(s, a, now_ms) : 99;

			if (r < rs || (r == rs && set[w].ts_last < s->ts_last))
				s = &set[w];
		}
		memset(s, 0, sizeof(*s));
		memcpy(s->ts_key, key, keylen);
		s->ts_keylen = (uint8_t)keylen;
		s->ts_window_start = now_ms;
		s->ts_gen = __atomic_add_fetch(&a->a_thr_gen, 1, __ATOMIC_RELAXED);
	}
	if (now_ms - s->ts_window_start >= a->a_fail_window_ms) {
		s->ts_window_start = now_ms;
		s->ts_count = 0;
	}
	return s;
}

/* One failure on slot s (shard lock held): the limit-th within a window blocks the
 * address for a window. */
static void auth_thr_count(struct auth *a, struct auth_thr_slot *s, uint64_t now_ms)
{
	if (s->ts_count < UINT32_MAX)
		s->ts_count++;
	s->ts_last = now_ms;
	if (s->ts_count >= a->a_fail_limit)
		s->ts_blocked_until = now_ms + a->a_fail_window_ms;
}

unsigned auth_throttle_fail(struct auth *a, const void *key, size_t keylen, uint64_t now_ms)
{
	struct auth_thr_slot *s;
	struct auth_shard *sh;
	unsigned retry;

	if (keylen == 0 || keylen > 16)
		return 0;
	s = auth_thr_set(a, key, keylen, &sh);
	pthread_mutex_lock(&sh->sh_lock);
	s = auth_thr_get(a, s, key, keylen, now_ms);
	auth_thr_count(a, s, now_ms);
	retry = auth_retry_after(s, now_ms);
	pthread_mutex_unlock(&sh->sh_lock);
	return retry;
}

/*
 * Admission of a new guess from j's address: 0 and one in-flight slot taken, or the
 * seconds to wait: blocked → until the block ends; every slot in flight → 1 (they finish
 * within a hash time) with aj_busy set.
 */
static unsigned auth_thr_admit(struct auth *a, struct auth_job *j, uint64_t now_ms)
{
	struct auth_thr_slot *s;
	struct auth_shard *sh;
	unsigned retry;

	if (j->aj_addrlen == 0 || j->aj_addrlen > 16)
		return 0;
	s = auth_thr_set(a, j->aj_addr, j->aj_addrlen, &sh);
	pthread_mutex_lock(&sh->sh_lock);
	s = auth_thr_get(a, s, j->aj_addr, j->aj_addrlen, now_ms);
	s->ts_last = now_ms;
	retry = auth_retry_after(s, now_ms);
	if (retry == 0 && (uint64_t)s->ts_count + s->ts_pending >= a->a_fail_limit) {
		retry = 1;
		j->aj_busy = true;
	}
	if (retry == 0) {
		s->ts_pending++;
		j->aj_admitted = true;
		j->aj_gen = s->ts_gen;
	}
	pthread_mutex_unlock(&sh->sh_lock);
	return retry;
}

/* A job is done: give back its in-flight slot and record its failure, in one step. */
static void auth_thr_done(struct auth *a, struct auth_job *j, uint64_t now_ms)
{
	struct auth_thr_slot *s;
	struct auth_shard *sh;
	bool fail = j->aj_result == AUTH_FAIL;

	if ((!j->aj_admitted && !fail) || j->aj_addrlen == 0 || j->aj_addrlen > 16)
		return;
	s = auth_thr_set(a, j->aj_addr, j->aj_addrlen, &sh);
	pthread_mutex_lock(&sh->sh_lock);
	if (j->aj_admitted) {
		struct auth_thr_slot *p = auth_thr_find(s, j->aj_addr, j->aj_addrlen);

		/* evicted meanwhile (every way busy): nothing left to give back; and never
		 * give back a slot of the address's next life (it did not take this one) */
		if (p && p->ts_gen == j->aj_gen && p->ts_pending > 0)
			p->ts_pending--;
		j->aj_admitted = false;
	}
	if (fail) {
		s = auth_thr_get(a, s, j->aj_addr, j->aj_addrlen, now_ms);
		auth_thr_count(a, s, now_ms);
		j->aj_fail_counted = true;
	}
	pthread_mutex_unlock(&sh->sh_lock);
}

/* ---- jobs and completion queues ------------------------------------------------- */

struct auth_queue {
	pthread_mutex_t q_lock;
	struct auth_job *q_head, *q_tail;
	int q_fd;
};

struct auth_job *auth_job_new(void)
{
	return calloc(1, sizeof(struct auth_job));
}

void auth_job_free(struct auth_job *j)
{
	if (j) {
		explicit_bzero(j, sizeof(*j));
		free(j);
	}
}

struct auth_queue *auth_queue_new(void)
{
	struct auth_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->q_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (q->q_fd < 0 || pthread_mutex_init(&q->q_lock, NULL) != 0) {
		int e = errno;

		if (q->q_fd >= 0)
			close(q->q_fd);
		free(q);
		errno = e;
		return NULL;
	}
	return q;
}

void auth_queue_free(struct auth_queue *q)
{
	struct auth_job *j, *next;

	if (!q)
		return;
	for (j = q->q_head; j; j = next) {
		next = j->aj_next;
		auth_job_free(j);
	}
	close(q->q_fd);
	pthread_mutex_destroy(&q->q_lock);
	free(q);
}

int auth_queue_fd(const struct auth_queue *q)
{
	return q->q_fd;
}

static void auth_queue_push(struct auth_queue *q, struct auth_job *j)
{
	uint64_t one = 1;
	ssize_t r;

	j->aj_next = NULL;
	pthread_mutex_lock(&q->q_lock);
	if (q->q_tail)
		q->q_tail->aj_next = j;
	else
		q->q_head = j;
	q->q_tail = j;
	pthread_mutex_unlock(&q->q_lock);
	/* EAGAIN means the counter is saturated: the owner will wake up anyway */
	do
		r = write(q->q_fd, &one, sizeof(one));
	while (r < 0 && errno == EINTR);
}

struct auth_job *auth_queue_drain(struct auth_queue *q)
{
	struct auth_job *list;
	uint64_t v;
	ssize_t r;

	do
		r = read(q->q_fd, &v, sizeof(v));
	while (r < 0 && errno == EINTR);
	pthread_mutex_lock(&q->q_lock);
	list = q->q_head;
	q->q_head = q->q_tail = NULL;
	pthread_mutex_unlock(&q->q_lock);
	return list;
}

/* ---- the context and the pool --------------------------------------------------- */

void auth_set_htpasswd(struct auth *a, struct htpasswd *ht)
{
	struct htpasswd *old;

	pthread_mutex_lock(&a->a_ht_lock);
	old = a->a_ht;
	a->a_ht = ht;
	pthread_mutex_unlock(&a->a_ht_lock);
	htpasswd_unref(old);
}

struct htpasswd *auth_get_htpasswd(struct auth *a)
{
	struct htpasswd *ht;

	pthread_mutex_lock(&a->a_ht_lock);
	ht = a->a_ht;
	if (ht)
		htpasswd_ref(ht);
	pthread_mutex_unlock(&a->a_ht_lock);
	return ht;
}

static struct auth_job **auth_inflight_slot(struct auth *a, const uint8_t key[32])
{
	return &a->a_inflight[key[1] % AUTH_INFLIGHT_BUCKETS];
}

int auth_submit(struct auth *a, struct auth_job *job, struct auth_queue *q)
{
	struct auth_job **slot, *lead;

	job->aj_queue = q;
	job->aj_next = NULL;
	job->aj_hnext = NULL;
	job->aj_followers = NULL;
	job->aj_result = AUTH_ERROR;
	job->aj_id = 0;
	job->aj_retry = 0;
	job->aj_fail_counted = false;
	job->aj_cancel = false;
	job->aj_admitted = false;
	job->aj_busy = false;
	job->aj_gen = 0;
	if (auth_cred_key(&job->aj_cred, job->aj_key) < 0)
		return AUTH_SUBMIT_FULL;
	slot = auth_inflight_slot(a, job->aj_key);
	pthread_mutex_lock(&a->a_q_lock);
	if (a->a_stopping || a->a_q_len >= a->a_q_max) {
		pthread_mutex_unlock(&a->a_q_lock);
		return AUTH_SUBMIT_FULL;
	}
	for (lead = *slot; lead; lead = lead->aj_hnext)
		if (CRYPTO_memcmp(lead->aj_key, job->aj_key, 32) == 0)
			break;
	if (lead) {
		/* the same user and password are being checked: share that result (no hash,
		 * so not counted in the queue: waiting for it costs a pointer) */
		job->aj_next = lead->aj_followers;
		lead->aj_followers = job;
		pthread_mutex_unlock(&a->a_q_lock);
		return 0;
	}
	/* a new guess: it needs one of its address's in-flight slots */
	job->aj_retry = auth_thr_admit(a, job, auth_now_ms());
	if (job->aj_retry > 0) {
		pthread_mutex_unlock(&a->a_q_lock);
		return job->aj_busy ? AUTH_SUBMIT_BUSY : AUTH_SUBMIT_THROTTLED;
	}
	a->a_q_len++;
	job->aj_hnext = *slot;
	*slot = job;
	if (a->a_q_tail)
		a->a_q_tail->aj_next = job;
	else
		a->a_q_head = job;
	a->a_q_tail = job;
	pthread_cond_signal(&a->a_q_cond);
	pthread_mutex_unlock(&a->a_q_lock);
	return 0;
}

/* Takes a finished (or abandoned) leader out of the in-flight table: a_q_lock held. */
static struct auth_job *auth_inflight_remove(struct auth *a, struct auth_job *j)
{
	struct auth_job **pp = auth_inflight_slot(a, j->aj_key), *f;

	for (; *pp; pp = &(*pp)->aj_hnext)
		if (*pp == j) {
			*pp = j->aj_hnext;
			break;
		}
	j->aj_hnext = NULL;
	f = j->aj_followers;
	j->aj_followers = NULL;
	a->a_q_len--; /* followers were never counted */
	return f;
}

/* Keeps the user name (for the log), wipes the password. */
static void auth_job_wipe_pass(struct auth_job *j)
{
	explicit_bzero(j->aj_cred.ac_buf + j->aj_cred.ac_user_len,
		       sizeof(j->aj_cred.ac_buf) - j->aj_cred.ac_user_len);
	j->aj_cred.ac_pass = j->aj_cred.ac_buf + j->aj_cred.ac_user_len;
	j->aj_cred.ac_pass_len = 0;
}

/*
 * Completes a leader and its followers with the leader's result: each one's failure is
 * recorded against its own address here, before its owner sees it, so a failure counts
 * even when the connection that asked is gone.
 */
static void auth_complete(struct auth *a, struct auth_job *lead, struct auth_job *followers)
{
	struct auth_job *f, *next;
	uint64_t now = auth_now_ms();

	for (f = followers; f; f = next) {
		next = f->aj_next;
		f->aj_result = lead->aj_result;
		f->aj_id = lead->aj_id;
		auth_job_wipe_pass(f);
		explicit_bzero(f->aj_key, sizeof(f->aj_key));
		auth_thr_done(a, f, now);
		auth_queue_push(f->aj_queue, f);
	}
	explicit_bzero(lead->aj_key, sizeof(lead->aj_key));
	auth_thr_done(a, lead, now);
	auth_queue_push(lead->aj_queue, lead);
}

void auth_job_cancel(struct auth_job *j)
{
	__atomic_store_n(&j->aj_cancel, true, __ATOMIC_RELAXED);
}

static void auth_verify_job(struct auth *a, struct auth_job *j)
{
	struct htpasswd *ht = auth_get_htpasswd(a);
	uint64_t id = 0;
	int rc;

	rc = htpasswd_verify(ht, j->aj_cred.ac_user, j->aj_cred.ac_user_len, j->aj_cred.ac_pass,
			     j->aj_cred.ac_pass_len, &id);
	htpasswd_unref(ht);
	if (rc == 1) {
		auth_cache_insert(a, &j->aj_cred, id, auth_now_ms());
		j->aj_result = AUTH_OK;
		j->aj_id = id;
	} else {
		j->aj_result = rc == 0 ? AUTH_FAIL : AUTH_ERROR;
	}
	/* the password is not needed any more; the user name is (for the log) */
	auth_job_wipe_pass(j);
}

static void *auth_worker(void *arg)
{
	struct auth *a = arg;

	for (;;) {
		struct auth_job *j, *followers;

		pthread_mutex_lock(&a->a_q_lock);
		while (!a->a_q_head && !a->a_stopping)
			pthread_cond_wait(&a->a_q_cond, &a->a_q_lock);
		if (a->a_stopping) {
			pthread_mutex_unlock(&a->a_q_lock);
			return NULL;
		}
		j = a->a_q_head;
		a->a_q_head = j->aj_next;
		if (!a->a_q_head)
			a->a_q_tail = NULL;
		if (__atomic_load_n(&j->aj_cancel, __ATOMIC_RELAXED) && !j->aj_followers) {
			/* nobody waits for this answer: no hash (its slot is given back) */
			followers = auth_inflight_remove(a, j);
			pthread_mutex_unlock(&a->a_q_lock);
			j->aj_result = AUTH_ERROR;
			auth_job_wipe_pass(j);
			auth_complete(a, j, followers);
			continue;
		}
		pthread_mutex_unlock(&a->a_q_lock);

		auth_verify_job(a, j);
		/* followers may still join until the leader leaves the in-flight table */
		pthread_mutex_lock(&a->a_q_lock);
		followers = auth_inflight_remove(a, j);
		pthread_mutex_unlock(&a->a_q_lock);
		auth_complete(a, j, followers);
	}
}

static int auth_shards_init(struct auth_shard *sh, size_t sets, size_t slot_size)
{
	int i;

	for (i = 0; i < AUTH_SHARDS; i++) {
		sh[i].sh_slots = NULL;
		if (pthread_mutex_init(&sh[i].sh_lock, NULL) != 0)
			return -1;
		if (sets) {
			sh[i].sh_slots = calloc(sets * AUTH_WAYS, slot_size);
			if (!sh[i].sh_slots)
				return -1;
		}
	}
	return 0;
}

static void auth_shards_free(struct auth_shard *sh, size_t sets, size_t slot_size)
{
	int i;

	for (i = 0; i < AUTH_SHARDS; i++) {
		if (sh[i].sh_slots) {
			explicit_bzero(sh[i].sh_slots, sets * AUTH_WAYS * slot_size);
			free(sh[i].sh_slots);
		}
		pthread_mutex_destroy(&sh[i].sh_lock);
	}
}

struct auth *auth_new(const struct conf_proxy *p, struct htpasswd *ht, unsigned nthreads, char *err,
		      size_t errlen)
{
	struct auth *a;
	unsigned i;

	if (pthread_once(&auth_key_once, auth_key_init) != 0 || !auth_key_ok) {
		htpasswd_unref(ht);
		snprintf(err, errlen, "auth: no random key (RAND_bytes failed)");
		return NULL;
	}
	a = aligned_alloc(64, (sizeof(*a) + 63) / 64 * 64);
	if (!a) {
		htpasswd_unref(ht);
		snprintf(err, errlen, "auth: out of memory");
		return NULL;
	}
	memset(a, 0, sizeof(*a));
	if (p->p_cred_cache_size > 0 && p->p_cred_cache_ttl_ms > 0)
		a->a_cache_sets = ((size_t)p->p_cred_cache_size + AUTH_SHARDS * AUTH_WAYS - 1) /
				  (AUTH_SHARDS * AUTH_WAYS);
	a->a_cache_ttl_ms = p->p_cred_cache_ttl_ms;
	a->a_fail_limit = p->p_auth_fail_limit ? p->p_auth_fail_limit : 1;
	a->a_fail_window_ms = p->p_auth_fail_window_ms ? p->p_auth_fail_window_ms : 1;
	a->a_thr_sets = AUTH_THROTTLE_ENTRIES / (AUTH_SHARDS * AUTH_WAYS);
	a->a_nthreads = nthreads ? nthreads : 2;
	a->a_q_max = (size_t)a->a_nthreads * AUTH_QUEUE_PER_THREAD;
	if (auth_shards_init(a->a_cache, a->a_cache_sets, sizeof(struct auth_cache_slot)) < 0 ||
	    auth_shards_init(a->a_thr, a->a_thr_sets, sizeof(struct auth_thr_slot)) < 0 ||
	    pthread_mutex_init(&a->a_ht_lock, NULL) != 0 ||
	    pthread_mutex_init(&a->a_q_lock, NULL) != 0 ||
	    pthread_cond_init(&a->a_q_cond, NULL) != 0)
		goto out_free;
	a->a_threads = calloc(a->a_nthreads, sizeof(*a->a_threads));
	if (!a->a_threads)
		goto out_free;
	a->a_ht = ht;
	for (i = 0; i < a->a_nthreads; i++) {
		if (pthread_create(&a->a_threads[i], NULL, auth_worker, a) != 0) {
			a->a_nthreads = i;
			goto out_stop;
		}
	}
	return a;

out_stop:
	auth_free(a);
	snprintf(err, errlen, "auth: cannot start verifier threads");
	return NULL;
out_free:
	/* mutexes that were never initialised are zeroed: destroying them is harmless */
	auth_shards_free(a->a_cache, a->a_cache_sets, sizeof(struct auth_cache_slot));
	auth_shards_free(a->a_thr, a->a_thr_sets, sizeof(struct auth_thr_slot));
	free(a->a_threads);
	free(a);
	htpasswd_unref(ht);
	snprintf(err, errlen, "auth: out of memory");
	return NULL;
}

void auth_free(struct auth *a)
{
	struct auth_job *j, *next;
	unsigned i;

	if (!a)
		return;
	pthread_mutex_lock(&a->a_q_lock);
	a->a_stopping = true;
	pthread_cond_broadcast(&a->a_q_cond);
	pthread_mutex_unlock(&a->a_q_lock);
	for (i = 0; i < a->a_nthreads; i++)
		pthread_join(a->a_threads[i], NULL);
	for (j = a->a_q_head; j; j = next) {
		struct auth_job *followers;

		next = j->aj_next;
		followers = auth_inflight_remove(a, j);
		j->aj_result = AUTH_ERROR;
		j->aj_id = 0;
		auth_complete(a, j, followers);
	}
	a->a_q_head = a->a_q_tail = NULL;
	htpasswd_unref(a->a_ht);
	auth_shards_free(a->a_cache, a->a_cache_sets, sizeof(struct auth_cache_slot));
	auth_shards_free(a->a_thr, a->a_thr_sets, sizeof(struct auth_thr_slot));
	pthread_mutex_destroy(&a->a_ht_lock);
	pthread_mutex_destroy(&a->a_q_lock);
	pthread_cond_destroy(&a->a_q_cond);
	free(a->a_threads);
	explicit_bzero(a, sizeof(*a));
	free(a);
}
