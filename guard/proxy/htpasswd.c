/*
 * htpasswd: user file loading and password verification (see htpasswd.h).
 *
 * $apr1$, {SHA} and {SSHA} are written here from their published definitions:
 * $apr1$ is Poul-Henning Kamp's MD5-crypt with the magic string "$apr1$" instead of
 * "$1$" (Apache apr_md5.c documents the equivalence); {SHA} is base64(SHA-1(pw));
 * {SSHA} is base64(SHA-1(pw || salt) || salt) (RFC 2307 userPassword practice).
 * Every other crypt scheme goes to libxcrypt.
 */
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "b64.h"
#include "htpasswd.h"

/* 16 MiB: far above any real user file, low enough to refuse a mistaken path. */
#define HTPASSWD_FILE_MAX (16u << 20)

struct htpasswd {
	atomic_uint ht_refs;
	struct htpasswd_entry *ht_entries;
	size_t ht_n;
	size_t ht_weak;
	uint32_t *ht_index; /* open addressing: entry index + 1, 0 = empty */
	size_t ht_mask;
	struct htpasswd_entry ht_dummy; /* what unknown users are checked against */
};

/* Per-process random key for e_id and the index hash. */
static uint8_t htpasswd_key[32];
static pthread_once_t htpasswd_key_once = PTHREAD_ONCE_INIT;
static int htpasswd_key_ok;

static void htpasswd_key_init(void)
{
	htpasswd_key_ok = RAND_bytes(htpasswd_key, sizeof(htpasswd_key)) == 1;
}

const char *htpasswd_scheme_name(enum htpasswd_scheme s)
{
	switch (s) {
	case HTPASSWD_BCRYPT:
		return "bcrypt";
	case HTPASSWD_SHA512:
		return "sha512-crypt";
	case HTPASSWD_SHA256:
		return "sha256-crypt";
	case HTPASSWD_YESCRYPT:
		return "yescrypt";
	case HTPASSWD_MD5:
		return "md5-crypt";
	case HTPASSWD_APR1:
		return "apr1";
	case HTPASSWD_SSHA:
		return "ssha";
	case HTPASSWD_SHA1:
		return "sha1";
	case HTPASSWD_DES:
		return "des-crypt";
	case HTPASSWD_PLAIN:
		return "plain";
	case HTPASSWD_INVALID:
		break;
	}
	return "invalid";
}

bool htpasswd_scheme_weak(enum htpasswd_scheme s)
{
	return s == HTPASSWD_MD5 || s == HTPASSWD_APR1 || s == HTPASSWD_SSHA ||
	       s == HTPASSWD_SHA1 || s == HTPASSWD_DES || s == HTPASSWD_PLAIN;
}

/* ---- format checks ------------------------------------------------------------- */

/* crypt(3)'s alphabet: [./0-9A-Za-z] */
static bool htpasswd_crypt64(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '/'))
			return false;
	}
	return true;
}

/* Splits h[0..n) at '$': fills up to max field lengths; returns the field count. */
static size_t htpasswd_fields(const char *h, size_t n, size_t *len, size_t max)
{
	size_t k = 0, start = 0, i;

	for (i = 0; i <= n; i++) {
		if (i == n || h[i] == '$') {
			if (k == max)
				return max + 1;
			len[k++] = i - start;
			start = i + 1;
		}
	}
	return k;
}

/* "$5$" / "$6$" [rounds=N$] salt $ hash */
static bool htpasswd_shacrypt_ok(const char *h, size_t n, size_t hashlen)
{
	size_t len[6], k, off = 3;

	k = htpasswd_fields(h + off, n - off, len, 5);
	if (k == 3) {
		size_t r = len[0], i;

		if (r < 8 || memcmp(h + off, "rounds=", 7) != 0)
			return false;
		for (i = 7; i < r; i++)
			if (h[off + i] < '0' || h[off + i] > '9')
				return false;
		off += r + 1;
		len[0] = len[1];
		len[1] = len[2];
	} else if (k != 2) {
		return false;
	}
	return len[0] >= 1 && len[0] <= 16 && len[1] == hashlen &&
	       htpasswd_crypt64(h + off, len[0]) && htpasswd_crypt64(h + off + len[0] + 1, len[1]);
}

/* "$1$" / "$apr1$" salt(1..8) $ hash(22) */
static bool htpasswd_md5crypt_ok(const char *h, size_t n, size_t magic)
{
	size_t len[3];

	if (htpasswd_fields(h + magic, n - magic, len, 2) != 2)
		return false;
	return len[0] >= 1 && len[0] <= 8 && len[1] == 22 && htpasswd_crypt64(h + magic, len[0]) &&
	       htpasswd_crypt64(h + magic + len[0] + 1, 22);
}

/* Classifies and checks the shape of a stored hash. */
static enum htpasswd_scheme htpasswd_classify(const char *h, size_t n, bool allow_plain,
					      const char **why)
{
	enum htpasswd_scheme s = HTPASSWD_INVALID;
	uint8_t bin[20 + 64];
	ssize_t k;

	*why = "malformed hash";
	if (n >= 7 && memcmp(h, "{PLAIN}", 7) == 0) {
		if (!allow_plain) {
			*why = "{PLAIN} password (set allow_plain_passwords = yes to accept it)";
			return HTPASSWD_INVALID;
		}
		return HTPASSWD_PLAIN;
	}
	if (n >= 6 && memcmp(h, "{SSHA}", 6) == 0) {
		k = b64_decode(h + 6, n - 6, bin, sizeof(bin));
		return k > 20 ? HTPASSWD_SSHA : HTPASSWD_INVALID;
	}
	if (n >= 5 && memcmp(h, "{SHA}", 5) == 0) {
		k = b64_decode(h + 5, n - 5, bin, sizeof(bin));
		return k == 20 ? HTPASSWD_SHA1 : HTPASSWD_INVALID;
	}
	if (n >= 6 && memcmp(h, "$apr1$", 6) == 0)
		return htpasswd_md5crypt_ok(h, n, 6) ? HTPASSWD_APR1 : HTPASSWD_INVALID;
	if (n == 60 && h[0] == '$' && h[1] == '2' && (h[2] == 'y' || h[2] == 'b' || h[2] == 'a') &&
	    h[3] == '$' && h[4] >= '0' && h[4] <= '3' && h[5] >= '0' && h[5] <= '9' &&
	    h[6] == '$' && (h[4] - '0') * 10 + (h[5] - '0') >= 4 &&
	    (h[4] - '0') * 10 + (h[5] - '0') <= 31 && htpasswd_crypt64(h + 7, 53))
		s = HTPASSWD_BCRYPT;
	else if (n >= 3 && memcmp(h, "$6$", 3) == 0)
		s = htpasswd_shacrypt_ok(h, n, 86) ? HTPASSWD_SHA512 : HTPASSWD_INVALID;
	else if (n >= 3 && memcmp(h, "$5$", 3) == 0)
		s = htpasswd_shacrypt_ok(h, n, 43) ? HTPASSWD_SHA256 : HTPASSWD_INVALID;
	else if (n >= 3 && memcmp(h, "$1$", 3) == 0)
		s = htpasswd_md5crypt_ok(h, n, 3) ? HTPASSWD_MD5 : HTPASSWD_INVALID;
	else if (n >= 3 && memcmp(h, "$y$", 3) == 0) {
		size_t len[4];

		/* "$y$" params "$" salt "$" hash(43) */
		if (htpasswd_fields(h + 3, n - 3, len, 3) == 3 && len[0] > 0 && len[1] > 0 &&
		    len[2] == 43 && htpasswd_crypt64(h + 3, len[0]) &&
		    htpasswd_crypt64(h + 4 + len[0], len[1]) &&
		    htpasswd_crypt64(h + 5 + len[0] + len[1], len[2]))
			s = HTPASSWD_YESCRYPT;
	} else if (n == 13 && htpasswd_crypt64(h, 13))
		s = HTPASSWD_DES;
	else if (n >= 3 && h[0] == '$' && h[1] == '2')
		*why = "malformed bcrypt hash (60 characters, cost 04..31)";
	else if (n > 0 && h[0] == '$')
		*why = "unsupported hash scheme (use bcrypt: htpasswd -B)";
	else
		*why = "unsupported hash scheme or {PLAIN} without its prefix";
	if (s != HTPASSWD_INVALID) {
		/* libxcrypt must have the method enabled; the hash itself is a setting */
		char setting[CRYPT_OUTPUT_SIZE];
		int cs;

		if (n >= sizeof(setting))
			return HTPASSWD_INVALID;
		memcpy(setting, h, n);
		setting[n] = '\0';
		cs = crypt_checksalt(setting);
		if (cs == CRYPT_SALT_INVALID || cs == CRYPT_SALT_METHOD_DISABLED) {
			*why = "hash scheme not supported by this libcrypt";
			return HTPASSWD_INVALID;
		}
	}
	return s;
}

int htpasswd_parse_line(const char *line, size_t n, bool allow_plain, struct htpasswd_entry *e,
			char *err, size_t errlen)
{
	const char *colon, *hash, *end;
	const char *why = NULL;
	size_t ulen, i;

	memset(e, 0, sizeof(*e));
	/* files edited on Windows */
	if (n > 0 && line[n - 1] == '\r')
		n--;
	for (i = 0; i < n && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == n || line[i] == '#')
		return 0;
	if (n > HTPASSWD_LINE_MAX) {
		snprintf(err, errlen, "line too long");
		return -1;
	}
	colon = memchr(line, ':', n);
	if (!colon) {
		snprintf(err, errlen, "no ':' between user and hash");
		return -1;
	}
	ulen = (size_t)(colon - line);
	if (ulen == 0 || ulen >= HTPASSWD_USER_MAX) {
		snprintf(err, errlen, ulen ? "user name too long" : "empty user name");
		return -1;
	}
	for (i = 0; i < ulen; i++) {
		unsigned char c = (unsigned char)line[i];

		/* printable ASCII: the name ends up in logs and in X-Forwarded-User */
		if (c <= 0x20 || c >= 0x7f) {
			snprintf(err, errlen, "user name with a space, control or non-ASCII byte");
			return -1;
		}
	}
	hash = colon + 1;
	end = memchr(hash, ':', (size_t)(line + n - hash)); /* ":comment" */
	if (!end)
		end = line + n;
	for (i = 0; hash + i < end; i++) {
		unsigned char c = (unsigned char)hash[i];

		if (c < 0x20 || c == 0x7f) {
			snprintf(err, errlen, "control byte in hash");
			return -1;
		}
	}
	memcpy(e->e_user, line, ulen);
	e->e_user[ulen] = '\0';
	e->e_user_len = ulen;
	e->e_hash = hash;
	e->e_hash_len = (size_t)(end - hash);
	e->e_scheme = htpasswd_classify(hash, e->e_hash_len, allow_plain, &why);
	if (e->e_scheme == HTPASSWD_INVALID) {
		snprintf(err, errlen, "user \"%s\": %s", e->e_user, why);
		return -1;
	}
	return 1;
}

/* ---- the table ------------------------------------------------------------------ */

static uint64_t htpasswd_mix(const char *s, size_t n)
{
	/* FNV-1a over a per-process key, then a 64-bit finaliser (index only) */
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < 8; i++)
		h = (h ^ htpasswd_key[i]) * 0x100000001b3ull;
	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

/* Keyed identity of "user:hash": HMAC-SHA256, first 8 bytes. */
static int htpasswd_entry_id(struct htpasswd_entry *e)
{
	uint8_t mac[EVP_MAX_MD_SIZE];
	EVP_MAC *m = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	int rc = -1;

	m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!m)
		return -1;
	ctx = EVP_MAC_CTX_new(m);
	if (!ctx)
		goto out_free_mac;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, htpasswd_key, sizeof(htpasswd_key), params) != 1 ||
	    EVP_MAC_update(ctx, (const uint8_t *)e->e_user, e->e_user_len) != 1 ||
	    EVP_MAC_update(ctx, (const uint8_t *)":", 1) != 1 ||
	    EVP_MAC_update(ctx, (const uint8_t *)e->e_hash, e->e_hash_len) != 1 ||
	    EVP_MAC_final(ctx, mac, &outl, sizeof(mac)) != 1 || outl < 8)
		goto out_free_ctx;
	memcpy(&e->e_id, mac, sizeof(e->e_id));
	rc = 0;
out_free_ctx:
	EVP_MAC_CTX_free(ctx);
out_free_mac:
	EVP_MAC_free(m);
	return rc;
}

const struct htpasswd_entry *htpasswd_find(const struct htpasswd *ht, const char *user, size_t ulen)
{
	size_t i;

	if (!ht || ht->ht_n == 0)
		return NULL;
	for (i = htpasswd_mix(user, ulen) & ht->ht_mask;; i = (i + 1) & ht->ht_mask) {
		uint32_t k = ht->ht_index[i];
		const struct htpasswd_entry *e;

		if (k == 0)
			return NULL;
		e = &ht->ht_entries[k - 1];
		if (e->e_user_len == ulen && memcmp(e->e_user, user, ulen) == 0)
			return e;
	}
}

size_t htpasswd_count(const struct htpasswd *ht)
{
	return ht ? ht->ht_n : 0;
}

size_t htpasswd_count_weak(const struct htpasswd *ht)
{
	return ht ? ht->ht_weak : 0;
}

static void htpasswd_wipe_str(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void htpasswd_free(struct htpasswd *ht)
{
	size_t i;

	for (i = 0; i < ht->ht_n; i++)
		htpasswd_wipe_str((char *)ht->ht_entries[i].e_hash);
	htpasswd_wipe_str((char *)ht->ht_dummy.e_hash);
	free(ht->ht_entries);
	free(ht->ht_index);
	explicit_bzero(ht, sizeof(*ht));
	free(ht);
}

void htpasswd_ref(struct htpasswd *ht)
{
	atomic_fetch_add_explicit(&ht->ht_refs, 1, memory_order_relaxed);
}

void htpasswd_unref(struct htpasswd *ht)
{
	if (ht && atomic_fetch_sub_explicit(&ht->ht_refs, 1, memory_order_acq_rel) == 1)
		htpasswd_free(ht);
}

/* The cost part of a hash, for grouping entries that cost the same to verify. */
static size_t htpasswd_cost_len(const struct htpasswd_entry *e)
{
	const char *h = e->e_hash;
	const char *d;

	switch (e->e_scheme) {
	case HTPASSWD_BCRYPT:
		return 7; /* "$2y$10$" */
	case HTPASSWD_SHA256:
	case HTPASSWD_SHA512:
		if (e->e_hash_len > 10 && memcmp(h + 3, "rounds=", 7) == 0) {
			d = strchr(h + 3, '$');
			return d ? (size_t)(d - h) : 3;
		}
		return 3;
	case HTPASSWD_YESCRYPT:
		d = strchr(h + 3, '$');
		return d ? (size_t)(d - h) : 3;
	default:
		return 0;
	}
}

/*
 * Picks the dummy: a copy of an entry of the most common (scheme, cost) pair, so an
 * unknown user costs what most real users cost. With no entries, a fresh bcrypt.
 */
static int htpasswd_pick_dummy(struct htpasswd *ht)
{
	size_t best = 0, best_count = 0, i, j;
	struct htpasswd_entry *d = &ht->ht_dummy;

	for (i = 0; i < ht->ht_n; i++) {
		const struct htpasswd_entry *a = &ht->ht_entries[i];
		size_t count = 0, la = htpasswd_cost_len(a);

		/* quadratic, but capped: the first 256 entries are a fair sample */
		if (i >= 256)
			break;
		for (j = 0; j < ht->ht_n && j < 256; j++) {
			const struct htpasswd_entry *b = &ht->ht_entries[j];

			if (b->e_scheme == a->e_scheme && htpasswd_cost_len(b) == la &&
			    memcmp(a->e_hash, b->e_hash, la) == 0)
				count++;
		}
		if (count > best_count) {
			best_count = count;
			best = i;
		}
	}
	memset(d, 0, sizeof(*d));
	if (ht->ht_n > 0) {
		d->e_scheme = ht->ht_entries[best].e_scheme;
		d->e_hash = strdup(ht->ht_entries[best].e_hash);
		if (!d->e_hash)
			return -1;
		d->e_hash_len = ht->ht_entries[best].e_hash_len;
	} else {
		char setting[CRYPT_GENSALT_OUTPUT_SIZE];
		uint8_t rnd[16];

		if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
		    !crypt_gensalt_rn("$2b$", 10, (const char *)rnd, sizeof(rnd), setting,
				      sizeof(setting)))
			return -1;
		/* a setting is enough: verifying against it costs a full bcrypt */
		d->e_scheme = HTPASSWD_BCRYPT;
		d->e_hash = strdup(setting);
		if (!d->e_hash)
			return -1;
		d->e_hash_len = strlen(setting);
	}
	return 0;
}

static void htpasswd_index_put(uint32_t *index, size_t mask, const struct htpasswd_entry *e,
			       uint32_t k)
{
	size_t j = htpasswd_mix(e->e_user, e->e_user_len) & mask;

	while (index[j])
		j = (j + 1) & mask;
	index[j] = k;
}

/*
 * Indexes the entry just appended, growing the index (load factor <= 1/2) first, so
 * duplicate detection at load is O(1) per line: a 100000-user file loads in
 * milliseconds, not minutes.
 */
static int htpasswd_index_add(struct htpasswd *ht)
{
	size_t cap = ht->ht_index ? ht->ht_mask + 1 : 0, i;

	if (ht->ht_n * 2 > cap) {
		size_t ncap = cap ? cap * 2 : 16;
		uint32_t *ni = calloc(ncap, sizeof(*ni));

		if (!ni)
			return -1;
		for (i = 0; i + 1 < ht->ht_n; i++)
			htpasswd_index_put(ni, ncap - 1, &ht->ht_entries[i], (uint32_t)(i + 1));
		free(ht->ht_index);
		ht->ht_index = ni;
		ht->ht_mask = ncap - 1;
	}
	htpasswd_index_put(ht->ht_index, ht->ht_mask, &ht->ht_entries[ht->ht_n - 1],
			   (uint32_t)ht->ht_n);
	return 0;
}

static void htpasswd_warnf(htpasswd_warn_cb warn, void *arg, const char *name, unsigned line,
			   const char *msg)
{
	if (warn)
		warn(arg, name, line, msg);
}

struct htpasswd *htpasswd_load_buf(const char *name, const char *buf, size_t len, bool allow_plain,
				   htpasswd_warn_cb warn, void *arg, char *err, size_t errlen)
{
	const struct htpasswd_entry *dup;
	struct htpasswd *ht;
	size_t off = 0, cap = 0;
	unsigned lineno = 0;
	char why[256];

	if (pthread_once(&htpasswd_key_once, htpasswd_key_init) != 0 || !htpasswd_key_ok) {
		snprintf(err, errlen, "%s: no random key (RAND_bytes failed)", name);
		return NULL;
	}
	ht = calloc(1, sizeof(*ht));
	if (!ht)
		goto out_enomem;
	atomic_init(&ht->ht_refs, 1);

	while (off < len) {
		const char *line = buf + off, *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off;
		struct htpasswd_entry e;
		int rc;

		off += n + (nl ? 1 : 0);
		lineno++;
		rc = htpasswd_parse_line(line, n, allow_plain, &e, why, sizeof(why));
		if (rc == 0)
			continue;
		if (rc < 0) {
			htpasswd_warnf(warn, arg, name, lineno, why);
			continue;
		}
		e.e_line = lineno;
		dup = htpasswd_find(ht, e.e_user, e.e_user_len);
		if (dup) {
			snprintf(why, sizeof(why),
				 "user \"%s\" already defined on line %u; ignored", e.e_user,
				 dup->e_line);
			htpasswd_warnf(warn, arg, name, lineno, why);
			continue;
		}
		if (htpasswd_scheme_weak(e.e_scheme)) {
			snprintf(why, sizeof(why),
				 "user \"%s\": weak hash scheme %s (rehash with htpasswd -B)",
				 e.e_user, htpasswd_scheme_name(e.e_scheme));
			htpasswd_warnf(warn, arg, name, lineno, why);
			ht->ht_weak++;
		}
		if (ht->ht_n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct htpasswd_entry *ne;

			if (ncap > UINT32_MAX / 2)
				goto out_enomem;
			ne = realloc(ht->ht_entries, ncap * sizeof(*ne));
			if (!ne)
				goto out_enomem;
			ht->ht_entries = ne;
			cap = ncap;
		}
		{
			char *h = malloc(e.e_hash_len + 1);

			if (!h)
				goto out_enomem;
			memcpy(h, e.e_hash, e.e_hash_len);
			h[e.e_hash_len] = '\0';
			e.e_hash = h;
		}
		ht->ht_entries[ht->ht_n++] = e;
		if (htpasswd_entry_id(&ht->ht_entries[ht->ht_n - 1]) < 0 ||
		    htpasswd_index_add(ht) < 0)
			goto out_enomem;
	}
	if (htpasswd_pick_dummy(ht) < 0)
		goto out_enomem;
	return ht;

out_enomem:
	snprintf(err, errlen, "%s: out of memory", name);
	if (ht)
		htpasswd_free(ht);
	return NULL;
}

struct htpasswd *htpasswd_load(const char *path, bool allow_plain, htpasswd_warn_cb warn, void *arg,
			       char *err, size_t errlen)
{
	struct htpasswd *ht = NULL;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (off_t)HTPASSWD_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most 16 MiB", path);
		goto out_close;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out_wipe;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	ht = htpasswd_load_buf(path, buf, got, allow_plain, warn, arg, err, errlen);
out_wipe:
	explicit_bzero(buf, (size_t)st.st_size + 1);
	free(buf);
out_close:
	close(fd);
	return ht;
}

/* ---- verification --------------------------------------------------------------- */

static const char htpasswd_itoa64[] =
    "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void htpasswd_to64(char *out, uint32_t v, int n)
{
	while (n-- > 0) {
		*out++ = htpasswd_itoa64[v & 0x3f];
		v >>= 6;
	}
}

static int htpasswd_md5_update(EVP_MD_CTX *c, const void *p, size_t n)
{
	return EVP_DigestUpdate(c, p, n) == 1 ? 0 : -1;
}

/*
 * MD5-crypt as defined by Poul-Henning Kamp (FreeBSD, 1994), with magic "$apr1$"
 * for Apache. Writes magic salt '$' hash(22) NUL into out (>= 6 + 8 + 1 + 22 + 1).
 */
static int htpasswd_apr1(const char *pw, size_t pwlen, const char *salt, size_t saltlen, char *out)
{
	static const char magic[] = "$apr1$";
	uint8_t fin[16], alt[16];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const EVP_MD *md5 = EVP_md5();
	unsigned len;
	size_t i, pl;
	int rc = -1;
	char *o;

	if (!c)
		return -1;
	if (saltlen > 8)
		saltlen = 8;
	/* alternate sum: MD5(pw salt pw) */
	if (EVP_DigestInit_ex(c, md5, NULL) != 1 || htpasswd_md5_update(c, pw, pwlen) ||
	    htpasswd_md5_update(c, salt, saltlen) || htpasswd_md5_update(c, pw, pwlen) ||
	    EVP_DigestFinal_ex(c, alt, &len) != 1)
		goto out;
	/* main sum: pw magic salt, then the alternate sum for each 16 bytes of pw */
	if (EVP_DigestInit_ex(c, md5, NULL) != 1 || htpasswd_md5_update(c, pw, pwlen) ||
	    htpasswd_md5_update(c, magic, 6) || htpasswd_md5_update(c, salt, saltlen))
		goto out;
	for (pl = pwlen; pl > 0; pl -= pl > 16 ? 16 : pl)
		if (htpasswd_md5_update(c, alt, pl > 16 ? 16 : pl))
			goto out;
	/* then, for each bit of the length: a NUL byte if set, the first pw byte if not */
	for (i = pwlen; i; i >>= 1)
		if (htpasswd_md5_update(c, (i & 1) ? "" : pw, 1))
			goto out;
	if (EVP_DigestFinal_ex(c, fin, &len) != 1)
		goto out;
	/* 1000 rounds to slow it down (by 1994 standards) */
	for (i = 0; i < 1000; i++) {
		if (EVP_DigestInit_ex(c, md5, NULL) != 1 ||
		    ((i & 1) ? htpasswd_md5_update(c, pw, pwlen)
			     : htpasswd_md5_update(c, fin, 16)) ||
		    ((i % 3) && htpasswd_md5_update(c, salt, saltlen)) ||
		    ((i % 7) && htpasswd_md5_update(c, pw, pwlen)) ||
		    ((i & 1) ? htpasswd_md5_update(c, fin, 16)
			     : htpasswd_md5_update(c, pw, pwlen)) ||
		    EVP_DigestFinal_ex(c, fin, &len) != 1)
			goto out;
	}
	memcpy(out, magic, 6);
	memcpy(out + 6, salt, saltlen);
	o = out + 6 + saltlen;
	*o++ = '$';
	htpasswd_to64(o, (uint32_t)fin[0] << 16 | (uint32_t)fin[6] << 8 | fin[12], 4);
	htpasswd_to64(o + 4, (uint32_t)fin[1] << 16 | (uint32_t)fin[7] << 8 | fin[13], 4);
	htpasswd_to64(o + 8, (uint32_t)fin[2] << 16 | (uint32_t)fin[8] << 8 | fin[14], 4);
	htpasswd_to64(o + 12, (uint32_t)fin[3] << 16 | (uint32_t)fin[9] << 8 | fin[15], 4);
	htpasswd_to64(o + 16, (uint32_t)fin[4] << 16 | (uint32_t)fin[10] << 8 | fin[5], 4);
	htpasswd_to64(o + 20, fin[11], 2);
	o[22] = '\0';
	rc = 0;
out:
	explicit_bzero(fin, sizeof(fin));
	explicit_bzero(alt, sizeof(alt));
	EVP_MD_CTX_free(c);
	return rc;
}

static int htpasswd_sha1(const char *pw, size_t pwlen, const uint8_t *salt, size_t saltlen,
			 uint8_t out[20])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned len = 0;
	int rc = -1;

	if (!c)
		return -1;
	if (EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(c, pw, pwlen) == 1 &&
	    (saltlen == 0 || EVP_DigestUpdate(c, salt, saltlen) == 1) &&
	    EVP_DigestFinal_ex(c, out, &len) == 1 && len == 20)
		rc = 0;
	EVP_MD_CTX_free(c);
	return rc;
}

/* Constant-time equality of two byte strings of possibly different lengths. */
static int htpasswd_eq(const void *a, size_t an, const void *b, size_t bn)
{
	uint8_t da[32], db[32];
	unsigned l = 0;
	int eq;

	/* compare digests so neither the content nor the length leaks through timing */
	if (EVP_Digest(a, an, da, &l, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(b, bn, db, &l, EVP_sha256(), NULL) != 1)
		return -1;
	eq = CRYPTO_memcmp(da, db, sizeof(da)) == 0 && an == bn;
	explicit_bzero(da, sizeof(da));
	explicit_bzero(db, sizeof(db));
	return eq;
}

/* Returns 1 match, 0 mismatch, -1 error. pw is NUL-terminated (pwlen bytes). */
static int htpasswd_check(const struct htpasswd_entry *e, const char *pw, size_t pwlen)
{
	uint8_t bin[20 + 64], dig[20];
	int rc = -1;

	switch (e->e_scheme) {
	case HTPASSWD_BCRYPT:
	case HTPASSWD_SHA512:
	case HTPASSWD_SHA256:
	case HTPASSWD_YESCRYPT:
	case HTPASSWD_MD5:
	case HTPASSWD_DES: {
		/* crypt_rn with a private crypt_data: thread-safe, no static buffer */
		struct crypt_data *cd = calloc(1, sizeof(*cd));
		const char *out;

		if (!cd)
			return -1;
		out = crypt_rn(pw, e->e_hash, cd, (int)sizeof(*cd));
		if (out && out[0] != '*')
			rc = htpasswd_eq(out, strlen(out), e->e_hash, e->e_hash_len);
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
		return rc;
	}
	case HTPASSWD_APR1: {
		char out[6 + 8 + 1 + 22 + 1];
		const char *salt = e->e_hash + 6, *d = strchr(salt, '$');

		if (!d || htpasswd_apr1(pw, pwlen, salt, (size_t)(d - salt), out) < 0)
			return -1;
		rc = htpasswd_eq(out, strlen(out), e->e_hash, e->e_hash_len);
		explicit_bzero(out, sizeof(out));
		return rc;
	}
	case HTPASSWD_SHA1:
	case HTPASSWD_SSHA: {
		size_t skip = e->e_scheme == HTPASSWD_SHA1 ? 5 : 6;
		ssize_t k = b64_decode(e->e_hash + skip, e->e_hash_len - skip, bin, sizeof(bin));

		if (k < 20 || htpasswd_sha1(pw, pwlen, bin + 20, (size_t)k - 20, dig) < 0)
			return -1;
		rc = CRYPTO_memcmp(dig, bin, 20) == 0;
		explicit_bzero(dig, sizeof(dig));
		explicit_bzero(bin, sizeof(bin));
		return rc;
	}
	case HTPASSWD_PLAIN:
		return htpasswd_eq(pw, pwlen, e->e_hash + 7, e->e_hash_len - 7);
	case HTPASSWD_INVALID:
		break;
	}
	return -1;
}

int htpasswd_verify(const struct htpasswd *ht, const char *user, size_t ulen, const char *pass,
		    size_t plen, uint64_t *id)
{
	const struct htpasswd_entry *e = htpasswd_find(ht, user, ulen);
	const struct htpasswd_entry *target = e;
	char pw[HTPASSWD_PASS_MAX + 1];
	size_t n = plen > HTPASSWD_PASS_MAX ? HTPASSWD_PASS_MAX : plen;
	int rc;

	if (!ht)
		return 0;
	if (!target)
		target = &ht->ht_dummy;
	/* crypt() wants a C string; the copy is wiped below on every path */
	memcpy(pw, pass, n);
	pw[n] = '\0';
	/* a NUL inside would make crypt() see a shorter password than was sent */
	if (memchr(pw, '\0', n) || plen > HTPASSWD_PASS_MAX)
		e = NULL; /* still computed against target: same cost */
	rc = htpasswd_check(target, pw, n);
	explicit_bzero(pw, sizeof(pw));
	if (rc < 0)
		return -1;
	if (rc == 1 && e) {
		if (id)
			*id = e->e_id;
		return 1;
	}
	return 0;
}
