/*
 * Unit tests for guard/proxy/token.c (line parser, table, bearer decoding, generation)
 * and guard/proxy/ident.c (which method identifies the user, conflicts, challenges).
 * Parser inputs end at a PROT_NONE guard page.
 */
#include <ctype.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ident.h"
#include "tap.h"
#include "token.h"

#define ARENA (64u << 10)

static char *arena;

static void guard_init(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	arena = mmap(NULL, ARENA + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || mprotect(arena + ARENA, pg, PROT_NONE) != 0)
		abort();
}

/* s copied so that its last byte is the last readable byte */
static const char *at_guard(const char *s)
{
	size_t n = strlen(s);
	char *p = arena + ARENA - n;

	memcpy(p, s, n);
	return p;
}

static int parse(const char *s, struct token_entry *e)
{
	char err[160];

	return token_parse_line(at_guard(s), strlen(s), e, err, sizeof(err));
}

static enum token_bearer bearer(const char *s, const char **tok, size_t *n)
{
	return token_bearer_decode(at_guard(s), strlen(s), tok, n);
}

#define H64 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static void warn_count(void *arg, const char *file, unsigned line, const char *msg)
{
	unsigned *n = arg;

	(void)file;
	(void)msg;
	*n = *n * 100 + line; /* records the line numbers in order */
}

static void test_parse(void)
{
	struct token_entry e;

	subtest("token_parse_line");
	is_int(parse("alice:" H64, &e), 1, "user:hash");
	is_str(e.te_user, "alice", "user");
	is_int(e.te_hash[0], 0x9f, "first hash byte");
	is_int(e.te_hash[31], 0x08, "last hash byte");
	is_int(e.te_created, -1, "no comment: age unknown");
	is_int(parse("alice:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08", &e),
	       1, "upper-case hex");
	is_int(e.te_hash[0], 0x9f, "... same bytes");
	is_int(parse("svc.a@x:" H64 ":created=2026-01-02T03:04:05Z ci: bot", &e), 1,
	       "comment with created= and a colon");
	is_int(e.te_created, 1767323045, "created parsed as UTC");
	is_int(parse("bob:" H64 ":laptop created=1970-01-01T00:00:10Z", &e), 1,
	       "created= as a later word");
	is_int(e.te_created, 10, "... parsed");
	is_int(parse("bob:" H64 ":created=yesterday", &e), 1, "bad created= is only a comment");
	is_int(e.te_created, -1, "... age unknown");
	is_int(parse("bob:" H64 "\r", &e), 1, "CRLF line");
	is_int(parse("", &e), 0, "blank line");
	is_int(parse("   # comment", &e), 0, "comment line");
	is_int(parse("alice", &e), -1, "no colon");
	is_int(parse(":" H64, &e), -1, "empty user");
	is_int(parse("al ice:" H64, &e), -1, "space in user");
	is_int(parse("alice:" H64 "0", &e), -1, "65 hex digits");
	is_int(parse("alice:" H64 "x", &e), -1, "64 hex + garbage");
	is_int(parse("alice:9f86", &e), -1, "short hash");
	is_int(parse("alice:zf86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", &e),
	       -1, "non-hex digit");
	is_int(parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:" H64, &e),
	       -1, "user of 65 bytes");
}

static void test_table(void)
{
	const char file[] =
	    "alice:" H64 ":one\n"
	    "# comment\n"
	    "bob:" H64 ":same hash for another user\n"
	    "garbage\n"
	    "bob:0000000000000000000000000000000000000000000000000000000000000001\n";
	const struct token_entry *e;
	struct token_table *t;
	unsigned warned = 0;
	char err[128];
	uint8_t h[TOKEN_HASH_LEN];

	subtest("token_load_buf and token_verify");
	t = token_load_buf("tokens", file, sizeof(file) - 1, warn_count, &warned, err, sizeof(err));
	ok(t != NULL, "loads");
	is_int(token_count(t), 2, "two usable entries");
	is_int(warned, 304, "warnings for line 3 (duplicate hash) and 4 (garbage)");
	is_int(token_verify(t, "test", 4, &e), 1, "sha256(\"test\") verifies");
	is_str(e->te_user, "alice",
	       "... as the first line's user: an appended line cannot steal it");
	is_int(e->te_line, 1, "... line 1");
	is_int(token_verify(t, "tesT", 4, &e), 0, "altered token fails");
	ok(e == NULL, "... no entry");
	is_int(token_verify(t, H64, 64, &e), 0, "the hash itself is not a token");
	is_int(token_verify(NULL, "test", 4, &e), 0, "no table: nothing verifies");
	ok(token_entry_at(t, 1) && token_entry_at(t, 1)->te_line == 5, "second entry is line 5");
	ok(token_entry_at(t, 2) == NULL, "past the end");
	ok(token_hash("test", 4, h) == 0 && h[0] == 0x9f, "token_hash is SHA-256");
	{
		struct token_store *s = token_store_new(t);
		struct token_table *g = token_store_get(s);

		ok(g == t, "store returns the table");
		token_unref(g);
		token_store_set(s, NULL);
		ok(token_store_get(s) == NULL, "store emptied");
		token_store_free(s);
	}
	/* many entries: the open-addressing table finds every one */
	{
		char *big = malloc(2000 * 80), hex[65], tok[16];
		size_t o = 0, i, found = 0;

		for (i = 0; i < 2000; i++) {
			snprintf(tok, sizeof(tok), "t%zu", i);
			token_hash(tok, strlen(tok), h);
			token_hex(h, hex, sizeof(hex));
			o += (size_t)sprintf(big + o, "u%zu:%s\n", i, hex);
		}
		t = token_load_buf("big", big, o, NULL, NULL, err, sizeof(err));
		for (i = 0; i < 2000; i++) {
			snprintf(tok, sizeof(tok), "t%zu", i);
			found += token_verify(t, tok, strlen(tok), &e) == 1 &&
				 e->te_line == (unsigned)i + 1;
		}
		is_int(found, 2000, "2000 tokens, each found with its line");
		is_int(token_verify(t, "t2000", 5, &e), 0, "a miss ends");
		token_unref(t);
		free(big);
	}
}

static void test_bearer(void)
{
	const char *tok;
	size_t n;
	char longv[TOKEN_MAX + 16];

	subtest("token_bearer_decode");
	is_int(bearer("Bearer abc", &tok, &n), TOKEN_BEARER_OK, "Bearer abc");
	ok(n == 3 && memcmp(tok, "abc", 3) == 0, "... token slice");
	is_int(bearer("bEARER   tfg_x-y.z~+/==", &tok, &n), TOKEN_BEARER_OK,
	       "any case, spaces, b64token alphabet and padding");
	is_int(n, 14, "... token length");
	is_int(bearer("Basic YTpi", &tok, &n), TOKEN_BEARER_MISSING, "Basic is another scheme");
	is_int(bearer("Bearerx abc", &tok, &n), TOKEN_BEARER_MISSING, "Bearerx is another scheme");
	is_int(bearer("Bear", &tok, &n), TOKEN_BEARER_MISSING, "short");
	is_int(bearer("Bearer", &tok, &n), TOKEN_BEARER_MALFORMED, "no token");
	is_int(bearer("Bearer   ", &tok, &n), TOKEN_BEARER_MALFORMED, "only spaces");
	is_int(bearer("Bearer a b", &tok, &n), TOKEN_BEARER_MALFORMED, "space inside");
	is_int(bearer("Bearer ab=c", &tok, &n), TOKEN_BEARER_MALFORMED, "= inside");
	is_int(bearer("Bearer =", &tok, &n), TOKEN_BEARER_MALFORMED, "only padding");
	is_int(bearer("Bearer a\"b", &tok, &n), TOKEN_BEARER_MALFORMED, "quote");
	memcpy(longv, "Bearer ", 7);
	memset(longv + 7, 'a', TOKEN_MAX + 1);
	longv[7 + TOKEN_MAX + 1] = '\0';
	is_int(bearer(longv, &tok, &n), TOKEN_BEARER_MALFORMED, "longer than TOKEN_MAX");
	longv[7 + TOKEN_MAX] = '\0';
	is_int(bearer(longv, &tok, &n), TOKEN_BEARER_OK, "exactly TOKEN_MAX");
}

static void test_generate(void)
{
	char a[TOKEN_NEW_LEN + 1], b[TOKEN_NEW_LEN + 1], line[200], hex[65], err[64];
	uint8_t h[TOKEN_HASH_LEN];
	const struct token_entry *e;
	struct token_table *t;
	size_t i, bad = 0;

	subtest("token_generate");
	ok(token_generate(a, sizeof(a)) == 0 && token_generate(b, sizeof(b)) == 0, "two tokens");
	is_int(strlen(a), TOKEN_NEW_LEN, "47 characters");
	ok(strncmp(a, "tfg_", 4) == 0, "tfg_ prefix");
	for (i = 4; i < strlen(a); i++)
		bad += !(isalnum((unsigned char)a[i]) || a[i] == '-' || a[i] == '_');
	is_int(bad, 0, "base64url alphabet, no padding");
	ok(strcmp(a, b) != 0, "differ");
	ok(token_generate(a, TOKEN_NEW_LEN) < 0, "refuses a short buffer");
	token_generate(a, sizeof(a));
	token_hash(a, strlen(a), h);
	token_hex(h, hex, sizeof(hex));
	is_int(strlen(hex), 64, "hex is 64 digits");
	snprintf(line, sizeof(line), "carol:%s:created=2026-11-25T00:00:00Z\n", hex);
	t = token_load_buf("f", line, strlen(line), NULL, NULL, err, sizeof(err));
	ok(token_verify(t, a, strlen(a), &e) == 1 && strcmp(e->te_user, "carol") == 0,
	   "a generated token verifies against its line");
	token_unref(t);
}

/* ---- ident -------------------------------------------------------------------------------- */

static struct auth *ia;
static struct token_store *its;

static enum ident_result resolve(const char *methods, const char *authz, const char *cert,
				 enum tls_peer_state ps, struct ident *out)
{
	uint8_t order[3];
	unsigned m = 0;
	size_t n = 0;
	struct tls_peer peer;
	struct ident_ctx ctx;
	const uint8_t key[4] = { 192, 0, 2, 1 };

	for (; *methods; methods++) {
		uint8_t bit = *methods == 'b'	? CONF_AUTH_BASIC
			      : *methods == 't' ? CONF_AUTH_TOKEN
						: CONF_AUTH_MTLS;

		order[n++] = bit;
		m |= bit;
	}
	memset(&peer, 0, sizeof(peer));
	peer.tp_state = ps;
	if (cert) {
		snprintf(peer.tp_user, sizeof(peer.tp_user), "%s", cert);
		peer.tp_user_len = strlen(cert);
	}
	snprintf(peer.tp_why, sizeof(peer.tp_why), "certificate revoked");
	ctx = (struct ident_ctx){ m, order, n, ia, its };
	return ident_resolve(&ctx, authz ? at_guard(authz) : NULL, authz ? strlen(authz) : 0, &peer,
			     key, sizeof(key), out);
}

static void test_ident(void)
{
	struct conf c;
	struct ident id;
	char err[128], hdr[400];
	const char file[] = "alice:" H64 "\n"; /* token "test" */
	const uint8_t bt[2] = { CONF_AUTH_BASIC, CONF_AUTH_TOKEN };
	const uint8_t tb[2] = { CONF_AUTH_TOKEN, CONF_AUTH_BASIC };
	const uint8_t mo[1] = { CONF_AUTH_MTLS };
	const uint8_t key[4] = { 192, 0, 2, 1 };

	subtest("ident_resolve");
	conf_defaults(&c);
	c.c_proxy.p_auth_fail_limit = 3;
	ia = auth_new(&c.c_proxy, NULL, 1, err, sizeof(err));
	its = token_store_new(token_load_buf("t", file, sizeof(file) - 1, NULL, NULL, err, 128));
	ok(ia && its, "auth and token store");
	/* "Basic YWxpY2U6cHc=" is alice:pw, "Basic Ym9iOnB3" is bob:pw */
	is_int(resolve("tmb", "Bearer test", NULL, TLS_PEER_NONE, &id), IDENT_OK, "token alone");
	ok(strcmp(id.id_user, "alice") == 0 && id.id_method == CONF_AUTH_TOKEN,
	   "... alice by token");
	is_int(resolve("tmb", NULL, "bob", TLS_PEER_OK, &id), IDENT_OK, "certificate alone");
	ok(strcmp(id.id_user, "bob") == 0 && id.id_method == CONF_AUTH_MTLS, "... bob by mtls");
	is_int(resolve("tmb", "Bearer test", "alice", TLS_PEER_OK, &id), IDENT_OK,
	       "certificate and token of the same user");
	is_int(id.id_method, CONF_AUTH_TOKEN, "... the first method in order is reported");
	is_int(resolve("mtb", "Bearer test", "alice", TLS_PEER_OK, &id), IDENT_OK,
	       "order mtls first");
	is_int(id.id_method, CONF_AUTH_MTLS, "... reports mtls");
	is_int(resolve("tmb", "Bearer test", "bob", TLS_PEER_OK, &id), IDENT_CONFLICT,
	       "certificate bob + token alice → conflict");
	ok(strstr(id.id_why, "\"alice\"") && strstr(id.id_why, "\"bob\""), "... names both");
	is_int(resolve("tmb", "Basic Ym9iOnB3", "alice", TLS_PEER_OK, &id), IDENT_CONFLICT,
	       "certificate alice + Basic bob → conflict before hashing");
	is_int(resolve("tmb", "Basic YWxpY2U6cHc=", "alice", TLS_PEER_OK, &id), IDENT_BASIC,
	       "certificate alice + Basic alice → verify the password");
	is_int(resolve("tmb", "Basic !!", NULL, TLS_PEER_NONE, &id), IDENT_BASIC,
	       "malformed Basic → the Basic path reports it");
	is_int(resolve("tm", "Basic Ym9iOnB3", "alice", TLS_PEER_OK, &id), IDENT_OK,
	       "Basic not listed: ignored, the certificate decides");
	is_int(resolve("t", "Basic Ym9iOnB3", NULL, TLS_PEER_NONE, &id), IDENT_NONE,
	       "Basic not listed and nothing else → none (challenge)");
	is_int(resolve("b", "Bearer test", NULL, TLS_PEER_NONE, &id), IDENT_NONE,
	       "token not listed → none");
	is_int(resolve("tb", NULL, "alice", TLS_PEER_OK, &id), IDENT_NONE,
	       "mtls not listed: the certificate is ignored");
	is_int(resolve("mb", "Basic Ym9iOnB3", NULL, TLS_PEER_REJECTED, &id), IDENT_FAIL,
	       "a rejected certificate fails even beside a password");
	is_str(id.id_why, "certificate revoked", "... with its reason");
	is_int(resolve("tmb", NULL, NULL, TLS_PEER_NONE, &id), IDENT_NONE, "nothing → none");
	is_int(auth_throttle_check(ia, key, 4, auth_now_ms()), 0, "not throttled yet");
	is_int(resolve("tmb", "Bearer nope", NULL, TLS_PEER_NONE, &id), IDENT_FAIL, "bad token");
	is_int(resolve("tmb", "Bearer", NULL, TLS_PEER_NONE, &id), IDENT_FAIL, "malformed bearer");
	is_int(resolve("tmb", "Bearer test", "bob", TLS_PEER_OK, &id), IDENT_CONFLICT,
	       "a conflict is not a failed guess");
	is_int(resolve("tmb", "Bearer nope2", "alice", TLS_PEER_OK, &id), IDENT_FAIL,
	       "bad token beside a good certificate fails");
	ok(auth_throttle_check(ia, key, 4, auth_now_ms()) > 0,
	   "three token failures reach auth_fail_limit = 3: throttled");

	subtest("ident_challenge");
	ident_challenge(CONF_AUTH_BASIC | CONF_AUTH_TOKEN, bt, 2, "R \"q\"", hdr, sizeof(hdr));
	is_str(hdr,
	       "WWW-Authenticate: Basic realm=\"R \\\"q\\\"\", charset=\"UTF-8\"\r\n"
	       "WWW-Authenticate: Bearer realm=\"R \\\"q\\\"\"\r\n",
	       "basic, token: Basic then Bearer, realm escaped");
	ident_challenge(CONF_AUTH_BASIC | CONF_AUTH_TOKEN, tb, 2, "R", hdr, sizeof(hdr));
	ok(strncmp(hdr, "WWW-Authenticate: Bearer", 24) == 0, "token, basic: Bearer first");
	is_int(ident_challenge(CONF_AUTH_MTLS, mo, 1, "R", hdr, sizeof(hdr)), 0,
	       "mtls alone: no challenge");
	is_int(ident_challenge(CONF_AUTH_BASIC | CONF_AUTH_TOKEN, bt, 2, "R", hdr, 40), 0,
	       "a buffer too small for the first line: nothing half-written");
	token_store_free(its);
	auth_free(ia);
	conf_free(&c);
}

int main(void)
{
	guard_init();
	test_parse();
	test_table();
	test_bearer();
	test_generate();
	test_ident();
	return done_testing();
}
