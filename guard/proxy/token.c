/*
 * token: API token file, verification and generation (see token.h).
 */
#include "token.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "b64.h"
#include "conf.h"

#define TOKEN_FILE_MAX (16u << 20)

struct token_table {
	atomic_uint t_refs;
	struct token_entry *t_entries; /* file order */
	size_t t_n;
	uint32_t *t_slots; /* open addressing: index + 1 into t_entries, 0 = empty */
	size_t t_mask;
};

/* ---- one line ------------------------------------------------------------------- */

/* A word "created=YYYY-MM-DDTHH:MM:SSZ" in the comment, or -1. */
static time_t token_created(const char *c, size_t n)
{
	static const char key[] = "created=";
	size_t i = 0;

	while (i < n) {
		size_t w = i;
		char buf[32];
		struct tm tm;
		const char *end;

		while (w < n && c[w] != ' ' && c[w] != '\t')
			w++;
		if (w - i > sizeof(key) - 1 && w - i - (sizeof(key) - 1) < sizeof(buf) &&
		    memcmp(c + i, key, sizeof(key) - 1) == 0) {
			memcpy(buf, c + i + sizeof(key) - 1, w - i - (sizeof(key) - 1));
			buf[w - i - (sizeof(key) - 1)] = '\0';
			memset(&tm, 0, sizeof(tm));
			end = strptime(buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
			if (end != NULL && *end == '\0')
				return timegm(&tm);
		}
		i = w + 1;
	}
	return -1;
}

int token_parse_line(const char *line, size_t n, struct token_entry *e, char *err, size_t errlen)
{
	const char *colon, *hash, *end = line + n;
	size_t ulen, i;

	memset(e, 0, sizeof(*e));
	e->te_created = -1;
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--, end--;
	for (i = 0; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == n || line[i] == '#')
		return 0;
	if (n > TOKEN_LINE_MAX) {
		snprintf(err, errlen, "line longer than %d bytes", TOKEN_LINE_MAX);
		return -1;
	}
	if (memchr(line, '\0', n)) {
		snprintf(err, errlen, "NUL byte in line");
		return -1;
	}
	colon = memchr(line, ':', n);
	if (!colon) {
		snprintf(err, errlen, "expected user:sha256-hex[:comment]");
		return -1;
	}
	ulen = (size_t)(colon - line);
	if (ulen == 0 || ulen >= TOKEN_USER_MAX) {
		snprintf(err, errlen, "user name empty or longer than %d bytes",
			 TOKEN_USER_MAX - 1);
		return -1;
	}
	memcpy(e->te_user, line, ulen);
	e->te_user[ulen] = '\0';
	e->te_user_len = ulen;
	if (!conf_name_valid(e->te_user, TOKEN_USER_MAX)) {
		snprintf(err, errlen, "user name must be letters, digits and ._@+- only");
		return -1;
	}
	hash = colon + 1;
	if (end - hash < 2 * TOKEN_HASH_LEN ||
	    (end - hash > 2 * TOKEN_HASH_LEN && hash[2 * TOKEN_HASH_LEN] != ':')) {
		snprintf(err, errlen, "the hash must be 64 hex digits (SHA-256 of the token)");
		return -1;
	}
	for (i = 0; i < TOKEN_HASH_LEN; i++) {
		int hi = OPENSSL_hexchar2int((unsigned char)hash[2 * i]),
		    lo = OPENSSL_hexchar2int((unsigned char)hash[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen,
				 "the hash must be 64 hex digits (SHA-256 of the token)");
			return -1;
		}
		e->te_hash[i] = (uint8_t)(hi << 4 | lo);
	}
	if (end - hash > 2 * TOKEN_HASH_LEN) {
		const char *c = hash + 2 * TOKEN_HASH_LEN + 1;

		e->te_created = token_created(c, (size_t)(end - c));
	}
	return 1;
}

/* ---- tables --------------------------------------------------------------------- */

static size_t token_slot0(const struct token_table *t, const uint8_t h[TOKEN_HASH_LEN])
{
	uint64_t v;

	/* the digest of a secret is uniformly distributed: its bytes are the hash */
	memcpy(&v, h, sizeof(v));
	return (size_t)v & t->t_mask;
}

static const struct token_entry *token_find(const struct token_table *t,
					    const uint8_t h[TOKEN_HASH_LEN])
{
	size_t i;

	if (t == NULL || t->t_n == 0)
		return NULL;
	for (i = token_slot0(t, h);; i = (i + 1) & t->t_mask) {
		uint32_t s = t->t_slots[i];

		if (s == 0)
			return NULL;
		if (CRYPTO_memcmp(t->t_entries[s - 1].te_hash, h, TOKEN_HASH_LEN) == 0)
			return &t->t_entries[s - 1];
	}
}

static void token_warnf(token_warn_cb warn, void *arg, const char *name, unsigned line,
			const char *msg)
{
	if (warn)
		warn(arg, name, line, msg);
}

struct token_table *token_load_buf(const char *name, const char *buf, size_t len,
				   token_warn_cb warn, void *arg, char *err, size_t errlen)
{
	struct token_table *t = calloc(1, sizeof(*t));
	size_t off = 0, cap = 0, lines = 0, slots = 2, i;
	unsigned lineno = 0;

	if (!t)
		goto out_nomem;
	atomic_init(&t->t_refs, 1);
	for (i = 0; i < len; i++)
		lines += buf[i] == '\n';
	cap = lines + 1;
	t->t_entries = calloc(cap, sizeof(*t->t_entries));
	/* load factor <= 1/2: a miss ends at an empty slot after a few probes */
	while (slots < 2 * cap)
		slots *= 2;
	t->t_slots = calloc(slots, sizeof(*t->t_slots));
	if (!t->t_entries || !t->t_slots)
		goto out_nomem;
	t->t_mask = slots - 1;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;
		struct token_entry *e = &t->t_entries[t->t_n];
		char why[160];
		int rc;

		lineno++;
		rc = token_parse_line(buf + off, n, e, why, sizeof(why));
		off += n + (nl ? 1 : 0);
		if (rc == 0)
			continue;
		if (rc < 0) {
			token_warnf(warn, arg, name, lineno, why);
			continue;
		}
		if (token_find(t, e->te_hash)) {
			/* one hash, two lines: the first wins, so an appended line cannot take a
			 * token over for another user */
			snprintf(why, sizeof(why), "hash already used on line %u: line ignored",
				 token_find(t, e->te_hash)->te_line);
			token_warnf(warn, arg, name, lineno, why);
			continue;
		}
		e->te_line = lineno;
		for (i = token_slot0(t, e->te_hash); t->t_slots[i] != 0; i = (i + 1) & t->t_mask)
			;
		t->t_slots[i] = (uint32_t)(t->t_n + 1);
		t->t_n++;
	}
	return t;
out_nomem:
	token_unref(t);
	snprintf(err, errlen, "%s: out of memory", name);
	return NULL;
}

struct token_table *token_load(const char *path, token_warn_cb warn, void *arg, char *err,
			       size_t errlen)
{
	struct token_table *t = NULL;
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TOKEN_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most 16 MiB", path);
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (len != (size_t)st.st_size)
		snprintf(err, errlen, "%s: short read (file changed while reading?)", path);
	else
		t = token_load_buf(path, buf, len, warn, arg, err, errlen);
	explicit_bzero(buf, len);
	free(buf);
	return t;
}

void token_ref(struct token_table *t)
{
	atomic_fetch_add(&t->t_refs, 1);
}

void token_unref(struct token_table *t)
{
	if (t == NULL || atomic_fetch_sub(&t->t_refs, 1) != 1)
		return;
	free(t->t_slots);
	free(t->t_entries);
	free(t);
}

size_t token_count(const struct token_table *t)
{
	return t ? t->t_n : 0;
}

const struct token_entry *token_entry_at(const struct token_table *t, size_t i)
{
	return i < token_count(t) ? &t->t_entries[i] : NULL;
}

/* ---- verification ----------------------------------------------------------------- */

int token_hash(const char *tok, size_t n, uint8_t out[TOKEN_HASH_LEN])
{
	unsigned int len = 0;

	if (EVP_Digest(tok, n, out, &len, EVP_sha256(), NULL) != 1 || len != TOKEN_HASH_LEN)
		return -1;
	return 0;
}

int token_verify(const struct token_table *t, const char *tok, size_t n,
		 const struct token_entry **e)
{
	uint8_t h[TOKEN_HASH_LEN];

	*e = NULL;
	if (token_hash(tok, n, h) < 0)
		return -1;
	*e = token_find(t, h);
	explicit_bzero(h, sizeof(h));
	return *e != NULL;
}

enum token_bearer token_bearer_decode(const char *value, size_t n, const char **tok, size_t *toklen)
{
	static const char scheme[] = "bearer";
	size_t i, b, eq;

	*tok = NULL;
	*toklen = 0;
	/* RFC 9110 §11.1: the auth-scheme is case-insensitive */
	for (i = 0; i < 6; i++) {
		unsigned char c = i < n ? (unsigned char)value[i] : 0;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		if (c != (unsigned char)scheme[i])
			return TOKEN_BEARER_MISSING;
	}
	if (n == 6)
		return TOKEN_BEARER_MALFORMED;
	if (value[6] != ' ')
		return TOKEN_BEARER_MISSING; /* "Bearerx ..." is another scheme */
	for (b = 6; b < n && value[b] == ' '; b++)
		;
	if (b == n || n - b > TOKEN_MAX)
		return TOKEN_BEARER_MALFORMED;
	/* RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
	for (i = b; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("-._~+/", c) != NULL))
			break;
	}
	if (i == b)
		return TOKEN_BEARER_MALFORMED;
	for (eq = i; eq < n && value[eq] == '='; eq++)
		;
	if (eq != n)
		return TOKEN_BEARER_MALFORMED;
	*tok = value + b;
	*toklen = n - b;
	return TOKEN_BEARER_OK;
}

/* ---- generation ------------------------------------------------------------------- */

int token_generate(char *out, size_t cap)
{
	uint8_t rnd[TOKEN_NEW_BYTES];
	char enc[B64_ENCODED_LEN(TOKEN_NEW_BYTES) + 1];
	size_t got = 0, i;
	ssize_t n;

	if (cap < TOKEN_NEW_LEN + 1) {
		errno = ENOSPC;
		return -1;
	}
	/* getrandom(2) without flags blocks only until the pool is initialised, once per boot */
	while (got < sizeof(rnd)) {
		ssize_t r = getrandom(rnd + got, sizeof(rnd) - got, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			explicit_bzero(rnd, sizeof(rnd));
			return -1;
		}
		got += (size_t)r;
	}
	n = b64_encode(rnd, sizeof(rnd), enc, sizeof(enc));
	explicit_bzero(rnd, sizeof(rnd));
	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	/* RFC 4648 §5: the URL- and filename-safe alphabet, padding dropped */
	while (n > 0 && enc[n - 1] == '=')
		n--;
	for (i = 0; i < (size_t)n; i++)
		enc[i] = enc[i] == '+' ? '-' : enc[i] == '/' ? '_' : enc[i];
	memcpy(out, TOKEN_PREFIX, 4);
	memcpy(out + 4, enc, (size_t)n);
	out[4 + n] = '\0';
	explicit_bzero(enc, sizeof(enc));
	return 0;
}

void token_hex(const uint8_t hash[TOKEN_HASH_LEN], char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < TOKEN_HASH_LEN && 2 * i + 2 < cap; i++) {
		out[2 * i] = hex[hash[i] >> 4];
		out[2 * i + 1] = hex[hash[i] & 15];
	}
	if (cap > 0)
		out[2 * i < cap ? 2 * i : cap - 1] = '\0';
}

/* ---- the store -------------------------------------------------------------------- */

struct token_store {
	pthread_mutex_t ts_lock;
	struct token_table *ts_t;
};

struct token_store *token_store_new(struct token_table *t)
{
	struct token_store *s = calloc(1, sizeof(*s));

	if (!s || pthread_mutex_init(&s->ts_lock, NULL) != 0) {
		free(s);
		token_unref(t);
		return NULL;
	}
	s->ts_t = t;
	return s;
}

void token_store_free(struct token_store *s)
{
	if (!s)
		return;
	token_unref(s->ts_t);
	pthread_mutex_destroy(&s->ts_lock);
	free(s);
}

void token_store_set(struct token_store *s, struct token_table *t)
{
	struct token_table *old;

	pthread_mutex_lock(&s->ts_lock);
	old = s->ts_t;
	s->ts_t = t;
	pthread_mutex_unlock(&s->ts_lock);
	token_unref(old);
}

struct token_table *token_store_get(struct token_store *s)
{
	struct token_table *t;

	pthread_mutex_lock(&s->ts_lock);
	t = s->ts_t;
	if (t)
		token_ref(t);
	pthread_mutex_unlock(&s->ts_lock);
	return t;
}
