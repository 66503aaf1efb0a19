/*
 * fuzz_basic_header: Authorization header decoding (and the strict base64 under it).
 *
 * Invariants: on success the user is non-empty, has no ':', neither part has a control
 * byte, both are NUL-terminated inside the struct, and base64("user:pass") re-encodes
 * to exactly the token that was sent (one credential, one encoding: no lenient
 * aliases); on failure the struct is wiped. b64_decode/b64_encode round-trip.
 */
#include "auth.h"
#include "b64.h"
#include "fuzz.h"

static void check_b64(const char *p, size_t n)
{
	uint8_t *out = malloc(n + 1);
	char *enc = malloc(n + 8);
	ssize_t k, e;

	if (!out || !enc)
		abort();
	k = b64_decode(p, n, out, n + 1);
	if (k >= 0) {
		FUZZ_CHECK((size_t)k <= B64_DECODED_MAX(n));
		e = b64_encode(out, (size_t)k, enc, n + 8);
		FUZZ_CHECK(e == (ssize_t)n && memcmp(enc, p, n) == 0);
	}
	free(out);
	free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_dup(data, size);
	struct auth_cred c;
	enum auth_basic r;
	size_t i;

	check_b64(p, size);
	r = auth_basic_decode(p, size, &c);
	FUZZ_CHECK(r == AUTH_BASIC_OK || r == AUTH_BASIC_MISSING || r == AUTH_BASIC_MALFORMED);
	if (r == AUTH_BASIC_OK) {
		char raw[AUTH_CRED_MAX + 2], enc[B64_ENCODED_LEN(AUTH_CRED_MAX + 2) + 1];
		size_t b = 5, n;
		ssize_t e;

		FUZZ_CHECK(c.ac_user == c.ac_buf);
		FUZZ_CHECK(c.ac_user_len > 0 && c.ac_user_len + 1 + c.ac_pass_len <= AUTH_CRED_MAX);
		FUZZ_CHECK(c.ac_pass == c.ac_buf + c.ac_user_len + 1);
		FUZZ_CHECK(c.ac_user[c.ac_user_len] == '\0' && c.ac_pass[c.ac_pass_len] == '\0');
		FUZZ_CHECK(!memchr(c.ac_user, ':', c.ac_user_len));
		for (i = 0; i < c.ac_user_len + 1 + c.ac_pass_len; i++) {
			unsigned char ch = (unsigned char)c.ac_buf[i];

			FUZZ_CHECK(i == c.ac_user_len || (ch >= 0x20 && ch != 0x7f));
		}
		FUZZ_CHECK(size > 6 && (p[0] | 0x20) == 'b' && p[5] == ' ');
		while (b < size && p[b] == ' ')
			b++;
		n = c.ac_user_len + 1 + c.ac_pass_len;
		memcpy(raw, c.ac_user, c.ac_user_len);
		raw[c.ac_user_len] = ':';
		memcpy(raw + c.ac_user_len + 1, c.ac_pass, c.ac_pass_len);
		e = b64_encode((const uint8_t *)raw, n, enc, sizeof(enc));
		FUZZ_CHECK(e == (ssize_t)(size - b) && memcmp(enc, p + b, size - b) == 0);
	} else {
		const unsigned char *z = (const unsigned char *)&c;

		for (i = 0; i < sizeof(c); i++)
			FUZZ_CHECK(z[i] == 0);
	}
	auth_cred_wipe(&c);
	free(p);
	return 0;
}
