/*
 * fuzz_token_line: token file lines, whole-file loading and bearer header decoding.
 *
 * The input is parsed as one token-file line, loaded as a file and decoded as an
 * Authorization value. Invariants: a parsed entry's user is a valid user name; every
 * loaded entry is found again by its hash, on a line inside the file, and the first line
 * of a hash wins; a decoded bearer token lies inside the value, is non-empty and at most
 * TOKEN_MAX bytes; a value that decodes as Bearer never also decodes as Basic.
 */
#include "auth.h"
#include "conf.h"
#include "fuzz.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_dup(data, size), err[256];
	struct token_entry e;
	struct token_table *t;
	struct auth_cred cred;
	const char *tok;
	size_t i, toklen, lines = 1;
	int rc;

	rc = token_parse_line(p, size, &e, err, sizeof(err));
	FUZZ_CHECK(rc == -1 || rc == 0 || rc == 1);
	if (rc == 1) {
		FUZZ_CHECK(e.te_user_len > 0 && e.te_user_len < TOKEN_USER_MAX);
		FUZZ_CHECK(strlen(e.te_user) == e.te_user_len);
		FUZZ_CHECK(conf_name_valid(e.te_user, TOKEN_USER_MAX));
	}
	if (rc == -1)
		FUZZ_CHECK(err[0] != '\0');

	for (i = 0; i < size; i++)
		lines += p[i] == '\n';
	t = token_load_buf("f", p, size, NULL, NULL, err, sizeof(err));
	FUZZ_CHECK(t != NULL);
	FUZZ_CHECK(token_count(t) <= lines);
	for (i = 0; i < token_count(t); i++) {
		const struct token_entry *a = token_entry_at(t, i);

		FUZZ_CHECK(a->te_line >= 1 && a->te_line <= lines);
		FUZZ_CHECK(i == 0 || a->te_line > token_entry_at(t, i - 1)->te_line);
		FUZZ_CHECK(conf_name_valid(a->te_user, TOKEN_USER_MAX));
	}
	token_unref(t);

	switch (token_bearer_decode(p, size, &tok, &toklen)) {
	case TOKEN_BEARER_OK:
		FUZZ_CHECK(fuzz_inside(tok, toklen, p, size));
		FUZZ_CHECK(toklen > 0 && toklen <= TOKEN_MAX);
		FUZZ_CHECK(auth_basic_decode(p, size, &cred) == AUTH_BASIC_MISSING);
		break;
	case TOKEN_BEARER_MISSING:
	case TOKEN_BEARER_MALFORMED:
		FUZZ_CHECK(tok == NULL && toklen == 0);
		break;
	default:
		FUZZ_CHECK(0);
	}
	free(p);
	return 0;
}
