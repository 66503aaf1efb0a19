/*
 * auth: HTTP Basic credentials, the verified-credential cache, the failure throttle
 * and the verifier thread pool that keeps slow hashes (bcrypt ≈ 75 ms) off the event
 * loops.
 *
 * Flow for one request (all on the worker's event loop except step 4):
 *   1. auth_throttle_check(addr) > 0   → 429 with Retry-After, do not look further.
 *   2. auth_basic_decode(Authorization) → AUTH_BASIC_MISSING: 401 + WWW-Authenticate;
 *      AUTH_BASIC_MALFORMED: 401 as well (recommended; RFC 9110 §11.6.2 "lacks valid
 *      credentials"), logged as malformed and counted by auth_throttle_fail().
 *   3. auth_cache_lookup() == 1         → authenticated, no pool, no hash.
 *   4. else auth_submit(job, queue)     → the pool verifies, caches a success, and
 *      appends the job to the worker's queue, whose eventfd becomes readable;
 *      auth_submit() == -1 (queue full) → 503. Identical credentials submitted while
 *      one check is in flight wait for its result instead of hashing again (a client
 *      opening 50 connections at once costs one bcrypt, not 50).
 *   5. the loop calls auth_queue_drain() on that eventfd and resumes each job's
 *      connection: AUTH_OK → go on; AUTH_FAIL → auth_throttle_fail() + 401;
 *      AUTH_ERROR → 500.
 *
 * Cache: key = HMAC-SHA256(per-process random key, be32(len user) user be32(len pass)
 * pass), exactly the bytes the client sent, so two different credential pairs cannot
 * share a key and the key does not depend on the stored hash (no user enumeration).
 * Value = the user's htpasswd line identity (e_id) + expiry. A hit counts only if the
 * current table still has that user with the same e_id, so a changed or removed line
 * takes effect at the next request after a reload. Only successes are cached. Bounded:
 * p_cred_cache_size entries (0 = cache off) in sharded, set-associative tables (16
 * shards, 8 ways, one mutex per shard), expired or oldest entry evicted.
 *
 * Throttle: per client address (the socket peer; never X-Forwarded-For): the
 * p_auth_fail_limit-th failure within one p_auth_fail_window_ms window (counted from
 * the address's first failure or first admitted guess after the previous window ran
 * out) blocks the address for a window from that failure. A success
 * does not reset the count (an attacker with one valid account could otherwise).
 * Guesses in flight count too (see auth_submit): an address never has more than
 * limit - failures distinct credential pairs being hashed, so parallel connections
 * cannot outrun the limit, and one address cannot hold more than limit slots of the
 * verifier pool.
 * Bounded (sharded, set-associative, 65536 addresses): under a flood of distinct
 * addresses entries that are not blocked are evicted first.
 *
 * Secrets: struct auth_cred holds the decoded "user:pass"; auth_cred_wipe() clears it
 * (explicit_bzero), and every function here that copies credentials wipes its copy.
 * The password is never logged; the user name only after it verified.
 *
 * Thread-safety: struct auth may be used by any number of threads at once. A struct
 * auth_queue belongs to one worker (any thread may append, only its owner drains).
 */
#ifndef TFG_AUTH_H
#define TFG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf.h"
#include "htpasswd.h"

/* Decoded "user:pass" at most this long; longer → AUTH_BASIC_MALFORMED. */
#define AUTH_CRED_MAX 1024

enum auth_basic {
	AUTH_BASIC_OK = 0,
	AUTH_BASIC_MISSING,   /* no header, or another scheme (Bearer ...): send the challenge */
	AUTH_BASIC_MALFORMED, /* "Basic" with bad base64, no ':', empty user, too long, NUL/CTL */
};

struct auth_cred {
	/* "user\0pass\0": ac_user and ac_pass point into ac_buf and are NUL-terminated */
	char ac_buf[AUTH_CRED_MAX + 2];
	const char *ac_user;
	size_t ac_user_len;
	const char *ac_pass;
	size_t ac_pass_len;
};

/*
 * Decodes an Authorization header value (value/n, not NUL-terminated) per RFC 7617:
 * "Basic" (any case), one or more SP, strict base64 (padding required, no whitespace
 * inside, no trailing bytes), split at the first ':'. The user must be non-empty and
 * neither part may contain NUL or control bytes. On AUTH_BASIC_OK cred holds the
 * credentials; on any other result cred is wiped. The caller wipes cred after use.
 */
enum auth_basic auth_basic_decode(const char *value, size_t n, struct auth_cred *cred);
void auth_cred_wipe(struct auth_cred *cred);
/* Copies a decoded cred (its pointers point into its own buffer: never memcpy one). */
void auth_cred_copy(struct auth_cred *dst, const struct auth_cred *src);

enum auth_result {
	AUTH_ERROR = -1, /* internal error (memory, crypt): 500 */
	AUTH_FAIL = 0,	 /* wrong password or unknown user: 401 */
	AUTH_OK = 1,
};

/*
 * A verification job. The caller allocates it with auth_job_new(), fills aj_cred
 * (e.g. auth_basic_decode() straight into it) and aj_arg, and submits it. Until it
 * comes back from auth_queue_drain() the pool owns it: do not touch it. If the
 * connection goes away meanwhile, set aj_arg = NULL from the owning worker (the pool
 * never reads aj_arg) and free the job when it is drained.
 */
struct auth_job {
	struct auth_cred aj_cred; /* wiped by the pool as soon as it is verified */
	void *aj_arg;		  /* the caller's (its connection); ignored by the pool */
	uint8_t aj_addr[16];	  /* the client's throttle key (auth_addr_key()) */
	uint8_t aj_addrlen;	  /* 0: not throttled (tests) */
	char aj_peer[64];	  /* the client's address as text, for the caller's log */
	enum auth_result aj_result;
	uint64_t aj_id;	      /* on AUTH_OK: the entry's e_id */
	unsigned aj_retry;    /* auth_submit() == AUTH_SUBMIT_THROTTLED: Retry-After */
	bool aj_fail_counted; /* AUTH_FAIL already recorded in the throttle by the pool */
	bool aj_busy;	      /* AUTH_SUBMIT_BUSY: refused for guesses in flight, not failures */
	bool aj_cancel;	      /* set (auth_job_cancel) when nobody waits for the answer */

	/* --- private --- */
	struct auth_job *aj_next;
	struct auth_queue *aj_queue;
	uint8_t aj_key[32];	       /* the cache key: identical jobs share one hash */
	struct auth_job *aj_hnext;     /* in-flight table chain (leaders only) */
	struct auth_job *aj_followers; /* identical jobs waiting for this one's result */
	bool aj_admitted;	       /* holds one of its address's in-flight slots */
	uint32_t aj_gen;	       /* ... of this generation of the address's slot */
};

struct auth_job *auth_job_new(void);	/* NULL on ENOMEM */
void auth_job_free(struct auth_job *j); /* wipes; NULL is fine */

/* A worker's completion queue with its eventfd (non-blocking, close-on-exec). */
struct auth_queue *auth_queue_new(void); /* NULL on error, errno set */
void auth_queue_free(struct auth_queue *q);
int auth_queue_fd(const struct auth_queue *q);
/*
 * Clears the eventfd and returns every completed job (a list linked by aj_next, in
 * completion order), or NULL. Owner thread only. The caller owns the returned jobs.
 */
struct auth_job *auth_queue_drain(struct auth_queue *q);

struct auth;

/*
 * Creates the auth context from p (cache size/TTL, fail limit/window) with nthreads
 * verifier threads (0 = 2) and takes over the caller's reference to ht, also on
 * failure (ht may be NULL: nobody can log in). Returns NULL with a reason in err.
 * Free it (auth_free) before the struct auth_queue objects its jobs complete into.
 */
struct auth *auth_new(const struct conf_proxy *p, struct htpasswd *ht, unsigned nthreads, char *err,
		      size_t errlen);
/* Stops and joins the verifier threads; queued jobs are completed with AUTH_ERROR. */
void auth_free(struct auth *a);

/* Replaces the user table (reload); takes over the reference to ht. */
void auth_set_htpasswd(struct auth *a, struct htpasswd *ht);
/* The current table with a new reference (htpasswd_unref() it), or NULL. */
struct htpasswd *auth_get_htpasswd(struct auth *a);

/* CLOCK_MONOTONIC in milliseconds: the clock every now_ms below is on. */
uint64_t auth_now_ms(void);

/* 1 if cred is cached as verified, unexpired, for the user's current line; else 0. */
int auth_cache_lookup(struct auth *a, const struct auth_cred *cred, uint64_t now_ms);
/* Records a verified cred for entry id (the pool does this itself; exposed for tests). */
void auth_cache_insert(struct auth *a, const struct auth_cred *cred, uint64_t id, uint64_t now_ms);

/*
 * Queues job for verification; on completion the job is appended to q and q's eventfd
 * is signalled. Returns 0, or, with the job not taken (the caller still owns it):
 *   AUTH_SUBMIT_FULL       the pool's queue is full (1024 hashes per thread) or shutting
 *                          down: answer 503;
 *   AUTH_SUBMIT_THROTTLED  the address (aj_addr) is blocked: 429, Retry-After: aj_retry;
 *   AUTH_SUBMIT_BUSY       its failures in this window plus its verifications in flight
 *                          already reach auth_fail_limit: 429, Retry-After: 1 (a hash
 *                          time; behind a shared address, many users logging in at once
 *                          can see this without any failure: raise auth_fail_limit).
 * Admission is what makes the limit hold for parallel guesses: a new credential pair
 * takes one of the address's (limit - failures) in-flight slots, and the pool gives it
 * back when the hash is done, recording a failure in the same step (aj_fail_counted),
 * whether or not anybody still waits for the answer. A job whose credentials are
 * already being checked (the same user and password) joins that check and takes no
 * slot: it is not another guess, and it costs no hash, so it is not counted in the queue
 * either (one address cannot fill the queue by repeating one pair).
 */
#define AUTH_SUBMIT_FULL      (-1)
#define AUTH_SUBMIT_THROTTLED (-2)
#define AUTH_SUBMIT_BUSY      (-3)
int auth_submit(struct auth *a, struct auth_job *job, struct auth_queue *q);

/*
 * Marks a submitted job as abandoned (its connection closed). Owner thread only; the
 * job must still be freed when it is drained. If no hash has started for it and no
 * other job shares its check, the pool skips the hash (result AUTH_ERROR).
 */
void auth_job_cancel(struct auth_job *j);

/*
 * Throttle key of a peer address: 4 bytes for IPv4 (and v4-mapped IPv6), the /64
 * prefix (8 bytes) for other IPv6 (one host usually owns a whole /64), the raw path for
 * anything else (truncated). Returns the key length written to out (at most 16).
 */
size_t auth_addr_key(const struct sockaddr *sa, socklen_t salen, uint8_t out[16]);
/* 0 if key may try to authenticate now, else the seconds until it may (Retry-After). */
unsigned auth_throttle_check(struct auth *a, const void *key, size_t keylen, uint64_t now_ms);
/* Records one failed attempt from key. Returns what auth_throttle_check() would now. */
unsigned auth_throttle_fail(struct auth *a, const void *key, size_t keylen, uint64_t now_ms);

#endif
