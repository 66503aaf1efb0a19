/*
 * Unit tests for guard/proxy/auth.c: Basic decoding (inputs end at a PROT_NONE guard
 * page), the credential cache, the failure throttle and the verifier pool.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "b64.h"
#include "tap.h"

#define ARENA (64u << 10)

static char *arena;

static void guard_init(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	arena = mmap(NULL, ARENA + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || mprotect(arena + ARENA, pg, PROT_NONE) != 0)
		abort();
}

static enum auth_basic decode_n(const char *v, size_t n, struct auth_cred *c)
{
	char *p = arena + ARENA - n;

	memcpy(p, v, n);
	return auth_basic_decode(p, n, c);
}

static enum auth_basic decode(const char *v, struct auth_cred *c)
{
	return decode_n(v, strlen(v), c);
}

/* "Basic " + base64(raw[0..n)) */
static enum auth_basic decode_raw(const char *raw, size_t n, struct auth_cred *c)
{
	char v[4096];

	memcpy(v, "Basic ", 6);
	if (b64_encode((const uint8_t *)raw, n, v + 6, sizeof(v) - 6) < 0)
		abort();
	return decode(v, c);
}

static bool cred_is(const struct auth_cred *c, const char *u, const char *p)
{
	return c->ac_user_len == strlen(u) && memcmp(c->ac_user, u, c->ac_user_len) == 0 &&
	       c->ac_pass_len == strlen(p) && memcmp(c->ac_pass, p, c->ac_pass_len) == 0 &&
	       c->ac_user[c->ac_user_len] == '\0' && c->ac_pass[c->ac_pass_len] == '\0';
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void test_basic(void)
{
	struct auth_cred c;
	char big[2 * AUTH_CRED_MAX];

	subtest("Basic credentials");
	ok(decode("Basic dXNlcjpwYXNz", &c) == AUTH_BASIC_OK && cred_is(&c, "user", "pass"),
	   "user:pass");
	ok(decode("basic dXNlcjpwYXNz", &c) == AUTH_BASIC_OK, "scheme is case-insensitive");
	ok(decode("BASIC   dXNlcjpwYXNz", &c) == AUTH_BASIC_OK, "several spaces after the scheme");
	ok(decode_raw("u:p:a:ss", 8, &c) == AUTH_BASIC_OK && cred_is(&c, "u", "p:a:ss"),
	   "split at the first colon");
	ok(decode_raw("u:", 2, &c) == AUTH_BASIC_OK && cred_is(&c, "u", ""), "empty password");
	ok(decode_raw("\xc3\xa4:\xc3\xb6", 5, &c) == AUTH_BASIC_OK, "UTF-8 user and password");
	ok(decode_raw("ab:c", 4, &c) == AUTH_BASIC_OK && cred_is(&c, "ab", "c"), "ab:c");

	ok(decode("", &c) == AUTH_BASIC_MISSING, "empty value → missing");
	ok(decode("Bearer abc", &c) == AUTH_BASIC_MISSING, "Bearer → missing (other scheme)");
	ok(decode("Basicx dXNlcjpwYXNz", &c) == AUTH_BASIC_MISSING, "Basicx → other scheme");
	ok(decode("Bas", &c) == AUTH_BASIC_MISSING, "truncated scheme → missing");
	ok(decode("Basic", &c) == AUTH_BASIC_MALFORMED, "Basic without credentials → malformed");
	ok(decode("Basic ", &c) == AUTH_BASIC_MALFORMED, "Basic and a space → malformed");
	ok(decode_raw(":pass", 5, &c) == AUTH_BASIC_MALFORMED, "empty user → malformed");
	ok(decode_raw("userpass", 8, &c) == AUTH_BASIC_MALFORMED, "no colon → malformed");
	ok(decode_raw("us\0r:pass", 9, &c) == AUTH_BASIC_MALFORMED, "NUL in user → malformed");
	ok(decode_raw("user:pa\nss", 10, &c) == AUTH_BASIC_MALFORMED, "LF in password → malformed");
	ok(decode_raw("user:pa\x7fss", 10, &c) == AUTH_BASIC_MALFORMED,
	   "DEL in password → malformed");
	ok(decode("Basic dXNlcjpwYXN", &c) == AUTH_BASIC_MALFORMED, "unpadded base64 → malformed");
	ok(decode("Basic dXNlcjpwYX=", &c) == AUTH_BASIC_MALFORMED,
	   "non-zero bits under padding → malformed");
	ok(decode("Basic dXNlcjpw YXNz", &c) == AUTH_BASIC_MALFORMED, "space inside → malformed");
	ok(decode("Basic dXNlcjpwYXNz ", &c) == AUTH_BASIC_MALFORMED, "trailing space → malformed");
	ok(decode("Basic dXNlcjpwYXNz=", &c) == AUTH_BASIC_MALFORMED, "extra '=' → malformed");
	ok(decode("Basic dXNlcjpwYXNz====", &c) == AUTH_BASIC_MALFORMED,
	   "padding block → malformed");
	ok(decode("Basic dXNl=jpwYXNz", &c) == AUTH_BASIC_MALFORMED,
	   "'=' in the middle → malformed");
	ok(decode("Basic dXNlcjpwYX-z", &c) == AUTH_BASIC_MALFORMED,
	   "base64url alphabet → malformed");
	ok(decode("Basic dXNlcjpwYXNz,Basic eDp5", &c) == AUTH_BASIC_MALFORMED,
	   "two credentials → malformed");
	memset(big, 'a', AUTH_CRED_MAX + 1);
	big[0] = 'u';
	big[1] = ':';
	ok(decode_raw(big, AUTH_CRED_MAX, &c) == AUTH_BASIC_OK, "credentials of exactly the max");
	ok(decode_raw(big, AUTH_CRED_MAX + 1, &c) == AUTH_BASIC_MALFORMED,
	   "credentials over the max → malformed");
	ok(decode("Basic dXNlcjpwYXNz", &c) == AUTH_BASIC_OK, "fill");
	ok(decode_raw("userpass", 8, &c) == AUTH_BASIC_MALFORMED && all_zero(&c, sizeof(c)),
	   "a failed decode leaves the struct wiped");
	ok(decode("Basic dXNlcjpwYXNz", &c) == AUTH_BASIC_OK, "fill again");
	{
		struct auth_cred d;

		auth_cred_copy(&d, &c);
		auth_cred_wipe(&c);
		ok(cred_is(&d, "user", "pass") && d.ac_user == d.ac_buf,
		   "auth_cred_copy: pointers into the copy's own buffer");
		auth_cred_wipe(&d);
	}
	auth_cred_wipe(&c);
	ok(all_zero(&c, sizeof(c)), "auth_cred_wipe wipes");
}

static void on_warn(void *arg, const char *file, unsigned line, const char *msg)
{
	(void)arg, (void)file, (void)line, (void)msg;
}

static struct htpasswd *table(const char *text)
{
	char err[256];
	struct htpasswd *ht =
	    htpasswd_load_buf("t", text, strlen(text), false, on_warn, NULL, err, sizeof(err));

	if (!ht) {
		printf("# %s\n", err);
		abort();
	}
	return ht;
}

/* password "correct horse" */
#define SHA_LINE     "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="
#define BCRYPT5_LINE "$2y$05$.f/.mZ6lNBtg3i30eeZXXOsE33n/ewdhvLq43diA8Ggz9lD5abwMG"
#define BCRYPT8_LINE "$2y$08$8hc9.zepplkiwVOGGK9RoufnPG/RWtICDv4L2Hiv8m98AaBt5xXhK"

static void cred(struct auth_cred *c, const char *u, const char *p)
{
	char raw[512];
	size_t n = (size_t)snprintf(raw, sizeof(raw), "%s:%s", u, p);

	if (decode_raw(raw, n, c) != AUTH_BASIC_OK)
		abort();
}

static void test_cache(void)
{
	struct conf_proxy p = { .p_cred_cache_size = 128,
				.p_cred_cache_ttl_ms = 1000,
				.p_auth_fail_limit = 3,
				.p_auth_fail_window_ms = 1000 };
	struct htpasswd *ht = table("alice:" SHA_LINE "\nab:" SHA_LINE "\na:" SHA_LINE "\n");
	const struct htpasswd_entry *e;
	struct auth_cred c1, c2;
	char err[256];
	struct auth *a;
	uint64_t now = 1000000;
	int i, hits = 0;

	subtest("credential cache");
	htpasswd_ref(ht);
	a = auth_new(&p, ht, 1, err, sizeof(err));
	if (!ok(a != NULL, "auth_new"))
		return;
	e = htpasswd_find(ht, "alice", 5);
	cred(&c1, "alice", "correct horse");
	ok(auth_cache_lookup(a, &c1, now) == 0, "empty cache: miss");
	auth_cache_insert(a, &c1, e->e_id, now);
	ok(auth_cache_lookup(a, &c1, now + 1) == 1, "inserted: hit");
	cred(&c2, "alice", "correct horsE");
	ok(auth_cache_lookup(a, &c2, now + 1) == 0, "other password: miss");
	ok(auth_cache_lookup(a, &c1, now + 999) == 1, "just before the TTL: hit");
	ok(auth_cache_lookup(a, &c1, now + 1000) == 0, "at the TTL: miss");
	ok(auth_cache_lookup(a, &c1, now + 1) == 0, "expired entry was dropped");

	/* length-delimited key: ("ab","c") and ("a","bc") must not collide */
	cred(&c1, "ab", "c");
	cred(&c2, "a", "bc");
	auth_cache_insert(a, &c1, htpasswd_find(ht, "ab", 2)->e_id, now);
	ok(auth_cache_lookup(a, &c1, now) == 1, "ab:c cached");
	ok(auth_cache_lookup(a, &c2, now) == 0, "a:bc is another key");

	/* a cached login is only as good as the user's current line */
	cred(&c1, "alice", "correct horse");
	auth_cache_insert(a, &c1, e->e_id, now);
	auth_set_htpasswd(a, table("# reordered\nab:" SHA_LINE "\nalice:" SHA_LINE "\n"));
	ok(auth_cache_lookup(a, &c1, now) == 1, "reload with the same line: still a hit");
	auth_set_htpasswd(a, table("alice:" BCRYPT5_LINE "\n"));
	ok(auth_cache_lookup(a, &c1, now) == 0, "reload with a new hash for alice: miss");
	auth_set_htpasswd(a, table("ab:" SHA_LINE "\n"));
	ok(auth_cache_lookup(a, &c1, now) == 0, "alice removed: miss");
	auth_set_htpasswd(a, NULL);
	ok(auth_cache_lookup(a, &c1, now) == 0, "no table: miss");
	auth_set_htpasswd(a, ht); /* our extra reference */

	/* bounded: 5000 inserts into 128 entries, the newest still hit */
	for (i = 0; i < 5000; i++) {
		char pw[32];

		snprintf(pw, sizeof(pw), "pw%d", i);
		cred(&c2, "alice", pw);
		auth_cache_insert(a, &c2, e->e_id, now + (uint64_t)i);
	}
	for (i = 4990; i < 5000; i++) {
		char pw[32];

		snprintf(pw, sizeof(pw), "pw%d", i);
		cred(&c2, "alice", pw);
		hits += auth_cache_lookup(a, &c2, now + 5000);
	}
	is_int(hits, 10, "the ten newest of 5000 inserts are cached");
	hits = 0;
	for (i = 0; i < 5000; i++) {
		char pw[32];

		snprintf(pw, sizeof(pw), "pw%d", i);
		cred(&c2, "alice", pw);
		hits += auth_cache_lookup(a, &c2, now + 5000);
	}
	ok(hits <= 128 + 0, "never more than the configured size");
	printf("#   %d of 5000 still cached (size 128)\n", hits);
	auth_free(a);

	p.p_cred_cache_size = 0;
	a = auth_new(&p, NULL, 1, err, sizeof(err));
	cred(&c1, "alice", "correct horse");
	auth_cache_insert(a, &c1, 1, now);
	ok(a && auth_cache_lookup(a, &c1, now) == 0, "cache size 0: cache off");
	auth_free(a);
	auth_cred_wipe(&c1);
	auth_cred_wipe(&c2);
}

static size_t key_of(const char *ip, uint8_t out[16])
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
		return auth_addr_key((struct sockaddr *)s6, sizeof(*s6), out);
	}
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &s4->sin_addr);
		return auth_addr_key((struct sockaddr *)s4, sizeof(*s4), out);
	}
}

static void test_throttle(void)
{
	struct conf_proxy p = { .p_cred_cache_size = 16,
				.p_cred_cache_ttl_ms = 1000,
				.p_auth_fail_limit = 3,
				.p_auth_fail_window_ms = 10000 };
	uint8_t k1[16], k2[16], k3[16], kf[16];
	size_t n1, n2, n3, nf;
	char err[256];
	struct auth *a;
	uint64_t now = 5000000;
	uint32_t i;

	subtest("failure throttle");
	a = auth_new(&p, NULL, 1, err, sizeof(err));
	if (!ok(a != NULL, "auth_new"))
		return;
	n1 = key_of("192.0.2.1", k1);
	n2 = key_of("::ffff:192.0.2.1", k2);
	is_int(n1, 4, "IPv4 key is 4 bytes");
	ok(n1 == n2 && memcmp(k1, k2, n1) == 0, "v4-mapped IPv6 is the same key as IPv4");
	n2 = key_of("2001:db8:1:2:aaaa::1", k2);
	n3 = key_of("2001:db8:1:2:bbbb::2", k3);
	ok(n2 == 8 && n3 == 8 && memcmp(k2, k3, 8) == 0, "IPv6 keyed on the /64");
	n3 = key_of("2001:db8:1:3::1", k3);
	ok(memcmp(k2, k3, 8) != 0, "another /64 is another key");

	is_int(auth_throttle_check(a, k1, n1, now), 0, "fresh address may try");
	is_int(auth_throttle_fail(a, k1, n1, now), 0, "1st failure: not blocked");
	is_int(auth_throttle_fail(a, k1, n1, now + 10), 0, "2nd failure: not blocked");
	is_int(auth_throttle_fail(a, k1, n1, now + 20), 10, "3rd failure: blocked for 10 s");
	is_int(auth_throttle_check(a, k1, n1, now + 20), 10, "check says 10 s");
	is_int(auth_throttle_check(a, k1, n1, now + 9021), 1, "one second left, rounded up");
	is_int(auth_throttle_check(a, k1, n1, now + 10020), 0, "free again after the window");
	is_int(auth_throttle_check(a, k2, n2, now + 20), 0, "another address is not affected");

	/* failures spread over more than a window never block */
	is_int(auth_throttle_fail(a, k2, n2, now), 0, "k2 1st");
	is_int(auth_throttle_fail(a, k2, n2, now + 6000), 0, "k2 2nd");
	is_int(auth_throttle_fail(a, k2, n2, now + 12000), 0,
	       "k2 3rd in a new window: not blocked");

	/* a flood of distinct addresses does not evict a blocked one */
	n3 = key_of("198.51.100.7", k3);
	for (i = 0; i < 3; i++)
		auth_throttle_fail(a, k3, n3, now);
	for (i = 0; i < 300000; i++) {
		uint32_t v = htonl(0x0a000000u + i);

		memcpy(kf, &v, 4);
		nf = 4;
		auth_throttle_fail(a, kf, nf, now + 1);
	}
	ok(auth_throttle_check(a, k3, n3, now + 2) > 0,
	   "blocked address survives 300000 other addresses");
	is_int(auth_throttle_check(a, k3, 0, now), 0, "empty key: never blocked");
	auth_free(a);
}

static int drain_until(struct auth_queue *q, struct auth_job **out, int want)
{
	int got = 0;

	while (got < want) {
		struct pollfd pfd = { .fd = auth_queue_fd(q), .events = POLLIN };
		struct auth_job *j;

		if (poll(&pfd, 1, 10000) <= 0)
			break;
		for (j = auth_queue_drain(q); j; j = j->aj_next)
			out[got++] = j;
	}
	return got;
}

static void test_pool(void)
{
	struct conf_proxy p = { .p_cred_cache_size = 1024,
				.p_cred_cache_ttl_ms = 60000,
				.p_auth_fail_limit = 3,
				.p_auth_fail_window_ms = 10000 };
	struct auth_job *jobs[64], *done[64];
	struct auth_queue *q = auth_queue_new();
	struct auth_cred c;
	char err[256];
	struct auth *a;
	int i, n, okc = 0, failc = 0, errc = 0, wiped = 1, argsum = 0, names = 1;
	double carol_ms = 0;

	subtest("verifier pool");
	a = auth_new(&p,
		     table("alice:" BCRYPT5_LINE "\nbob:" SHA_LINE "\ncarol:" BCRYPT8_LINE "\n"), 2,
		     err, sizeof(err));
	if (!ok(a && q, "auth_new and a queue"))
		return;
	for (i = 0; i < 6; i++) {
		jobs[i] = auth_job_new();
		cred(&jobs[i]->aj_cred, i % 3 == 2 ? "nobody" : (i & 1 ? "bob" : "alice"),
		     i < 3 ? "correct horse" : "wrong");
		jobs[i]->aj_arg = (void *)(uintptr_t)(i + 1);
		ok(auth_submit(a, jobs[i], q) == 0, "submit");
	}
	n = drain_until(q, done, 6);
	is_int(n, 6, "all six jobs come back through the eventfd");
	for (i = 0; i < n; i++) {
		okc += done[i]->aj_result == AUTH_OK;
		failc += done[i]->aj_result == AUTH_FAIL;
		errc += done[i]->aj_result == AUTH_ERROR;
		if (done[i]->aj_cred.ac_pass_len != 0 ||
		    !all_zero(done[i]->aj_cred.ac_buf + done[i]->aj_cred.ac_user_len,
			      sizeof(done[i]->aj_cred.ac_buf) - done[i]->aj_cred.ac_user_len))
			wiped = 0;
		argsum += (int)(uintptr_t)done[i]->aj_arg;
		if (strcmp(done[i]->aj_cred.ac_user, "alice") != 0 &&
		    strcmp(done[i]->aj_cred.ac_user, "bob") != 0 &&
		    strcmp(done[i]->aj_cred.ac_user, "nobody") != 0)
			names = 0;
	}
	is_int(okc, 2, "alice and bob with the right password: OK");
	is_int(failc, 4, "wrong passwords and the unknown user: FAIL");
	is_int(errc, 0, "no errors");
	ok(wiped, "passwords wiped from finished jobs");
	is_int(argsum, 21, "aj_arg comes back untouched");
	ok(names, "user name kept for the log");
	for (i = 0; i < n; i++)
		auth_job_free(done[i]);
	cred(&c, "alice", "correct horse");
	ok(auth_cache_lookup(a, &c, auth_now_ms()) == 1, "a verified login is cached by the pool");
	cred(&c, "alice", "wrong");
	ok(auth_cache_lookup(a, &c, auth_now_ms()) == 0, "a failed login is not cached");
	auth_cred_wipe(&c);

	/* one bcrypt-8 check, for scale */
	{
		struct timespec t0, t1;
		struct auth_job *one = auth_job_new();

		cred(&one->aj_cred, "carol", "nope");
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (auth_submit(a, one, q) != 0 || drain_until(q, done, 1) != 1)
			abort();
		clock_gettime(CLOCK_MONOTONIC, &t1);
		carol_ms =
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		auth_job_free(done[0]);
	}
	/* identical credentials in flight share one verification */
	{
		struct timespec t0, t1;
		double ms;
		int same = 1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (i = 0; i < 32; i++) {
			jobs[i] = auth_job_new();
			cred(&jobs[i]->aj_cred, "carol", i == 31 ? "wrong" : "correct horse");
			if (auth_submit(a, jobs[i], q) != 0)
				abort();
		}
		n = drain_until(q, done, 32);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms =
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
		is_int(n, 32, "32 jobs for one user come back");
		for (i = 0; i < n; i++) {
			bool wrong =
			    done[i]->aj_cred.ac_user_len == 5 && done[i]->aj_result == AUTH_FAIL;
			bool right = done[i]->aj_result == AUTH_OK;

			if (!wrong && !right)
				same = 0;
			okc += right;
		}
		ok(same, "followers get the leader's result");
		printf("#   32 submissions (31 identical) of a bcrypt-8 login: %.1f ms\n", ms);
		ok(ms < 6 * carol_ms + 20, "31 identical logins cost about one bcrypt, not 31");
		for (i = 0; i < n; i++)
			auth_job_free(done[i]);
	}
	is_int(okc, 2 + 31, "31 right, 1 wrong");

	/* shutting down with jobs still queued: every job still comes back */
	for (i = 0; i < 40; i++) {
		jobs[i] = auth_job_new();
		cred(&jobs[i]->aj_cred, "alice", "wrong");
		if (auth_submit(a, jobs[i], q) != 0)
			abort();
	}
	auth_free(a);
	n = drain_until(q, done, 40);
	is_int(n, 40, "auth_free returns queued jobs (as AUTH_ERROR)");
	for (i = 0; i < n; i++)
		auth_job_free(done[i]);
	auth_queue_free(q);
}

/* Submits a job for user/pass from the throttle key k (n bytes). */
static struct auth_job *submit_from(struct auth *a, struct auth_queue *q, const uint8_t *k,
				    size_t n, const char *user, const char *pass, int *rc)
{
	struct auth_job *j = auth_job_new();

	if (!j)
		abort();
	cred(&j->aj_cred, user, pass);
	memcpy(j->aj_addr, k, n);
	j->aj_addrlen = (uint8_t)n;
	*rc = auth_submit(a, j, q);
	return j;
}

/* Parallel guesses: the limit holds for what is in flight, not only for what finished. */
static void test_admission(void)
{
	struct conf_proxy p = { .p_cred_cache_size = 1024,
				.p_cred_cache_ttl_ms = 60000,
				.p_auth_fail_limit = 3,
				.p_auth_fail_window_ms = 10000 };
	struct auth_queue *q = auth_queue_new();
	struct auth_job *jobs[16], *done[16];
	uint8_t k1[16], k2[16], k3[16], k4[16];
	size_t n1 = key_of("192.0.2.1", k1), n2 = key_of("192.0.2.2", k2);
	size_t n3 = key_of("192.0.2.3", k3), n4 = key_of("192.0.2.4", k4);
	int i, n, rc, taken = 0, refused = 0, retry1 = 1, counted = 1, fails = 0;
	char err[256], pw[32];
	struct auth *a;

	subtest("admission: guesses in flight count against auth_fail_limit");
	a = auth_new(&p, table("carol:" BCRYPT8_LINE "\n"), 1, err, sizeof(err));
	if (!ok(a && q, "auth_new (one verifier thread) and a queue"))
		return;
	/* ten different wrong passwords at once from one address */
	for (i = 0; i < 10; i++) {
		snprintf(pw, sizeof(pw), "guess-%d", i);
		jobs[i] = submit_from(a, q, k1, n1, "carol", pw, &rc);
		if (rc == 0) {
			taken++;
		} else {
			refused++;
			if (rc != AUTH_SUBMIT_BUSY || !jobs[i]->aj_busy || jobs[i]->aj_retry != 1)
				retry1 = 0;
			auth_job_free(jobs[i]);
		}
	}
	is_int(taken, 3, "only auth_fail_limit (3) guesses are taken into the pool");
	is_int(refused, 7, "the other 7 are refused at once");
	ok(retry1, "refused as BUSY with Retry-After 1 (slots free within a hash)");
	n = drain_until(q, done, 3);
	is_int(n, 3, "the 3 come back");
	for (i = 0; i < n; i++) {
		fails += done[i]->aj_result == AUTH_FAIL;
		counted &= done[i]->aj_fail_counted;
		auth_job_free(done[i]);
	}
	is_int(fails, 3, "all 3 failed");
	ok(counted, "each failure was recorded by the pool (aj_fail_counted)");
	ok(auth_throttle_check(a, k1, n1, auth_now_ms()) > 1, "the address is now blocked");
	jobs[0] = submit_from(a, q, k1, n1, "carol", "correct horse", &rc);
	ok(rc == AUTH_SUBMIT_THROTTLED && !jobs[0]->aj_busy && jobs[0]->aj_retry > 1,
	   "even the right password is refused while blocked (Retry-After > 1)");
	auth_job_free(jobs[0]);

	/* the same credentials from many connections are one guess, not many */
	for (i = 0, taken = 0; i < 8; i++) {
		jobs[i] = submit_from(a, q, k2, n2, "carol", "correct horse", &rc);
		taken += rc == 0;
	}
	is_int(taken, 8, "8 identical logins in flight: all taken (they share one hash)");
	n = drain_until(q, done, 8);
	for (i = 0, rc = 0; i < n; i++) {
		rc += done[i]->aj_result == AUTH_OK;
		auth_job_free(done[i]);
	}
	is_int(rc, 8, "and all 8 succeed");
	is_int(auth_throttle_check(a, k2, n2, auth_now_ms()), 0, "no failure recorded for them");

	/* the same pair repeated does not fill the queue (1024 hashes for one thread) */
	{
		static struct auth_job *many[3000], *back[3000];
		uint8_t k5[16];
		size_t n5 = key_of("192.0.2.5", k5);

		for (i = 0, taken = 0; i < 3000; i++) {
			many[i] = submit_from(a, q, k5, n5, "carol", "correct horse", &rc);
			taken += rc == 0;
			if (rc != 0)
				auth_job_free(many[i]);
		}
		is_int(taken, 3000,
		       "3000 identical logins at once: none refused (they share hashes)");
		n = drain_until(q, back, taken);
		is_int(n, 3000, "and all come back");
		for (i = 0; i < n; i++)
			auth_job_free(back[i]);
	}

	/* an abandoned job is not hashed and gives its slot back */
	jobs[0] = submit_from(a, q, k3, n3, "carol", "slow-1", &rc); /* keeps the thread busy */
	jobs[1] = submit_from(a, q, k4, n4, "carol", "abandoned", &rc);
	auth_job_cancel(jobs[1]);
	n = drain_until(q, done, 2);
	is_int(n, 2, "both come back");
	for (i = 0; i < n; i++) {
		if (done[i] == jobs[1]) {
			is_int(done[i]->aj_result, AUTH_ERROR,
			       "the cancelled job was not verified");
			ok(!done[i]->aj_fail_counted, "and counts no failure");
		}
		auth_job_free(done[i]);
	}
	for (i = 0, taken = 0; i < 3; i++) {
		snprintf(pw, sizeof(pw), "again-%d", i);
		jobs[i] = submit_from(a, q, k4, n4, "carol", pw, &rc);
		taken += rc == 0;
		if (rc != 0)
			auth_job_free(jobs[i]);
	}
	is_int(taken, 3, "its address has all 3 slots again");
	n = drain_until(q, done, taken);
	for (i = 0; i < n; i++)
		auth_job_free(done[i]);
	auth_free(a);
	auth_queue_free(q);
}

int main(void)
{
	guard_init();
	test_basic();
	test_cache();
	test_throttle();
	test_pool();
	test_admission();
	return done_testing();
}
