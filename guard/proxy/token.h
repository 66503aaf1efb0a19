/*
 * token: API tokens for `Authorization: Bearer`, stored as SHA-256 hashes only.
 *
 * File format ([proxy] tokens), one entry per line, '#' comments and blank lines:
 *
 *     user:sha256-hex[:comment]
 *     alice:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08:created=2026-11-25T06:30:00Z ci
 *
 * The hash is SHA-256 of the token exactly as the client sends it (64 hex digits, any
 * case). The comment is free text up to the end of the line; a word
 * `created=YYYY-MM-DDTHH:MM:SSZ` in it is the token's creation time (UTC), which
 * `tfguard token new` writes and `tfguard check` uses for the age warning. A user may
 * have several tokens (rotation: add the new one, move clients, revoke the old one).
 * Unusable lines (bad user name, hash not 64 hex digits, a hash already used by an
 * earlier line) are reported with FILE:LINE through the warning callback and skipped;
 * the first line with a given hash wins.
 *
 * Tokens made by tfguard are "tfg_" + 43 characters of base64url (RFC 4648 §5) of 32
 * bytes from getrandom(2): 256 bits, URL- and header-safe, recognisable by secret
 * scanners. Any bearer token whose hash is in the file is accepted, whatever its shape.
 *
 * Verification hashes the presented token once (SHA-256, about a microsecond: no
 * verifier pool needed) and looks the digest up in an open-addressing table; the one
 * candidate is compared with CRYPTO_memcmp. A loaded table is immutable and
 * reference-counted; struct token_store holds the current one for reloads. Every
 * function is thread-safe.
 */
#ifndef TFG_TOKEN_H
#define TFG_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TOKEN_HASH_LEN	32
#define TOKEN_USER_MAX	64   /* bytes including NUL; matches HTPASSWD_USER_MAX */
#define TOKEN_LINE_MAX	1024 /* longer lines are rejected with a warning */
#define TOKEN_MAX	512  /* a longer bearer token is malformed */
#define TOKEN_PREFIX	"tfg_"
#define TOKEN_NEW_LEN	(4 + 43) /* "tfg_" + base64url of 32 bytes, no padding */
#define TOKEN_NEW_BYTES 32

struct token_entry {
	char te_user[TOKEN_USER_MAX];
	size_t te_user_len;
	uint8_t te_hash[TOKEN_HASH_LEN];
	time_t te_created; /* from created= in the comment; -1 when not given */
	unsigned te_line;
};

/* Warning callback: file name, 1-based line, one-line message (no secrets in it). */
typedef void (*token_warn_cb)(void *arg, const char *file, unsigned line, const char *msg);

/*
 * Parses one line (without its '\n'). Returns 1 for an entry, 0 for a blank or comment
 * line, -1 for an unusable line with the reason in err. e->te_line is left 0.
 */
int token_parse_line(const char *line, size_t n, struct token_entry *e, char *err, size_t errlen);

struct token_table;

/*
 * Loads path (at most 16 MiB). Unusable lines go to warn (may be NULL) and are skipped.
 * Returns a table with one reference, or NULL with "FILE: reason" in err.
 */
struct token_table *token_load(const char *path, token_warn_cb warn, void *arg, char *err,
			       size_t errlen);
/* Same, from memory; name is used in messages. buf need not be NUL-terminated. */
struct token_table *token_load_buf(const char *name, const char *buf, size_t len,
				   token_warn_cb warn, void *arg, char *err, size_t errlen);
void token_ref(struct token_table *t);
void token_unref(struct token_table *t); /* NULL is fine */
size_t token_count(const struct token_table *t);
/* The i-th usable entry in file order (i < token_count()). */
const struct token_entry *token_entry_at(const struct token_table *t, size_t i);

/* SHA-256 of tok[0..n). Returns 0, or -1 if OpenSSL fails. */
int token_hash(const char *tok, size_t n, uint8_t out[TOKEN_HASH_LEN]);
/*
 * Checks a presented token. Returns 1 with *e set to its entry, 0 if no entry has its
 * hash (t may be NULL: nothing verifies), -1 if hashing failed.
 */
int token_verify(const struct token_table *t, const char *tok, size_t n,
		 const struct token_entry **e);

enum token_bearer {
	TOKEN_BEARER_OK = 0,
	TOKEN_BEARER_MISSING,	/* another scheme (Basic ...) */
	TOKEN_BEARER_MALFORMED, /* "Bearer" without a valid b64token (RFC 6750 §2.1) */
};
/*
 * Splits an Authorization value (value/n, not NUL-terminated) of the form
 * "Bearer" 1*SP b64token. On TOKEN_BEARER_OK, tok and toklen point into value.
 */
enum token_bearer token_bearer_decode(const char *value, size_t n, const char **tok,
				      size_t *toklen);

/* Writes a fresh token ("tfg_" + base64url, NUL-terminated) into out (cap >=
 * TOKEN_NEW_LEN + 1), from getrandom(2). Returns 0, or -1 (errno set). */
int token_generate(char *out, size_t cap);
/* Lowercase hex of a hash into out (cap >= 2 * TOKEN_HASH_LEN + 1). */
void token_hex(const uint8_t hash[TOKEN_HASH_LEN], char *out, size_t cap);

/* The current table, swapped on reload. */
struct token_store;
struct token_store *token_store_new(struct token_table *t); /* takes over t (may be NULL) */
void token_store_free(struct token_store *s);
void token_store_set(struct token_store *s, struct token_table *t); /* takes over t */
struct token_table *token_store_get(struct token_store *s);	    /* a new reference, or NULL */

#endif
