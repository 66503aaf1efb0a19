/*
 * htpasswd: the user file, loaded once into an immutable in-memory table, and the
 * password check against it.
 *
 * File format: "user:hash[:comment]" per line, '#' comments, blank lines. A line that
 * cannot be used (no ':', empty or over-long user, unknown or malformed hash, {PLAIN}
 * without the opt-in) is reported through the warning callback with FILE:LINE and
 * skipped: that user cannot log in, everyone else can. A user defined twice: the
 * first line wins and the later one is reported (an appended line cannot silently take
 * over an account).
 *
 * Schemes: bcrypt $2y$/$2b$/$2a$, sha256-crypt $5$, sha512-crypt $6$, md5-crypt $1$,
 * yescrypt $y$ and traditional DES crypt (13 chars; flagged weak) go to libxcrypt's
 * crypt_rn() with a private struct crypt_data per call; Apache $apr1$, {SHA} and {SSHA}
 * are computed here on OpenSSL digests; {PLAIN} only with allow_plain. Every
 * comparison is constant-time (CRYPTO_memcmp). Unknown users are checked against a
 * dummy hash of the most common scheme and cost in the file, so they cost the same.
 * Password copies made here are wiped with explicit_bzero before being freed.
 *
 * A loaded table is read-only and reference-counted: any number of threads may call
 * htpasswd_verify()/htpasswd_find() on it at once. htpasswd_ref()/htpasswd_unref()
 * are atomic; the last unref frees the table (wiping its hashes).
 */
#ifndef TFG_HTPASSWD_H
#define TFG_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTPASSWD_USER_MAX 64   /* bytes including NUL; matches CONF_NAME_MAX */
#define HTPASSWD_LINE_MAX 1024 /* longer lines are rejected with a warning */
#define HTPASSWD_PASS_MAX 512  /* longer passwords never verify */

enum htpasswd_scheme {
	HTPASSWD_INVALID = 0,
	HTPASSWD_BCRYPT,   /* $2y$ $2b$ $2a$ */
	HTPASSWD_SHA512,   /* $6$ */
	HTPASSWD_SHA256,   /* $5$ */
	HTPASSWD_YESCRYPT, /* $y$ */
	HTPASSWD_MD5,	   /* $1$  (weak) */
	HTPASSWD_APR1,	   /* $apr1$ (weak: 1000 MD5 rounds) */
	HTPASSWD_SSHA,	   /* {SSHA} (weak: one salted SHA-1) */
	HTPASSWD_SHA1,	   /* {SHA}  (weak: unsalted SHA-1) */
	HTPASSWD_DES,	   /* 13-char crypt (weak: 8 chars, 56 bits) */
	HTPASSWD_PLAIN,	   /* {PLAIN} (only with allow_plain) */
};

struct htpasswd_entry {
	char e_user[HTPASSWD_USER_MAX];
	size_t e_user_len;
	enum htpasswd_scheme e_scheme;
	const char *e_hash; /* NUL-terminated, owned by the table */
	size_t e_hash_len;
	unsigned e_line;
	/*
	 * Stable identity of this user's line: a keyed hash (per-process random key) of
	 * "user:hash". Equal across reloads while the line is unchanged, different as soon
	 * as the hash changes, so a cached login can be checked against the current table.
	 */
	uint64_t e_id;
};

struct htpasswd;

/* Warning callback: file name, 1-based line, one-line message (no secrets in it). */
typedef void (*htpasswd_warn_cb)(void *arg, const char *file, unsigned line, const char *msg);

/*
 * Loads path. Unusable lines are reported through warn (may be NULL) and skipped.
 * Returns a table with one reference, or NULL with "FILE: reason" in err if the file
 * cannot be read, is over 16 MiB, or memory runs out. A file without any usable entry
 * is not an error (nobody can log in; the caller may warn).
 */
struct htpasswd *htpasswd_load(const char *path, bool allow_plain, htpasswd_warn_cb warn, void *arg,
			       char *err, size_t errlen);
/* Same, from memory; name is used in messages. buf need not be NUL-terminated. */
struct htpasswd *htpasswd_load_buf(const char *name, const char *buf, size_t len, bool allow_plain,
				   htpasswd_warn_cb warn, void *arg, char *err, size_t errlen);

void htpasswd_ref(struct htpasswd *ht);
void htpasswd_unref(struct htpasswd *ht); /* NULL is fine */

size_t htpasswd_count(const struct htpasswd *ht);
/* Number of usable entries whose scheme is weak (DES, $1$, $apr1$, {SHA}, {SSHA}, {PLAIN}). */
size_t htpasswd_count_weak(const struct htpasswd *ht);

/* The entry of user (ulen bytes, not necessarily NUL-terminated), or NULL. O(1). */
const struct htpasswd_entry *htpasswd_find(const struct htpasswd *ht, const char *user,
					   size_t ulen);

/*
 * Checks user/pass (lengths given, bytes need not be NUL-terminated; the caller keeps
 * ownership and wipes them). Returns 1 if the password is right, 0 if it is wrong or
 * the user is unknown (in which case the dummy hash was computed so both cost the
 * same), -1 on an internal error (out of memory, crypt failure). On 1, *id (if not
 * NULL) is the entry's e_id. Slow by design (bcrypt): never call it on an event loop.
 */
int htpasswd_verify(const struct htpasswd *ht, const char *user, size_t ulen, const char *pass,
		    size_t plen, uint64_t *id);

/*
 * Parses one line (without its '\n') into e, without loading anything: for the
 * fuzzer and `tfguard check`. Returns 1 for an entry, 0 for a blank or comment line,
 * -1 for an unusable line with the reason in err. e->e_hash points into line (not
 * NUL-terminated: use e_hash_len).
 */
int htpasswd_parse_line(const char *line, size_t n, bool allow_plain, struct htpasswd_entry *e,
			char *err, size_t errlen);

/* "bcrypt", "sha512-crypt", ... Static string. */
const char *htpasswd_scheme_name(enum htpasswd_scheme s);
bool htpasswd_scheme_weak(enum htpasswd_scheme s);

#endif
