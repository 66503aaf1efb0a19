/*
 * fuzz_htpasswd_line: htpasswd line parsing and whole-file loading.
 *
 * The input is parsed as one line and loaded as a file (allow_plain from the last
 * byte). Invariants: a parsed entry's user is non-empty, printable, without ':', and
 * its hash slice lies inside the line; every loaded user can be found again, with its
 * line number inside the file; the cheap schemes ({SHA}, {SSHA}, $apr1$, {PLAIN}) are
 * verified with a wrong password, which must fail. crypt(3) schemes are not verified:
 * a fuzzed bcrypt cost of 31 would run for hours.
 */
#include "fuzz.h"
#include "htpasswd.h"

static void warn_cb(void *arg, const char *file, unsigned line, const char *msg)
{
	unsigned *maxline = arg;

	FUZZ_CHECK(file && msg && line >= 1);
	if (line > *maxline)
		*maxline = line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_dup(data, size), err[256];
	bool plain = size > 0 && (data[size - 1] & 1);
	struct htpasswd_entry e;
	struct htpasswd *ht;
	unsigned maxline = 0, lines = 1;
	size_t i;
	int rc;

	rc = htpasswd_parse_line(p, size, plain, &e, err, sizeof(err));
	FUZZ_CHECK(rc == -1 || rc == 0 || rc == 1);
	if (rc == 1) {
		FUZZ_CHECK(e.e_user_len > 0 && e.e_user_len < HTPASSWD_USER_MAX);
		FUZZ_CHECK(strlen(e.e_user) == e.e_user_len);
		for (i = 0; i < e.e_user_len; i++)
			FUZZ_CHECK(e.e_user[i] > 0x20 && e.e_user[i] < 0x7f && e.e_user[i] != ':');
		FUZZ_CHECK(fuzz_inside(e.e_hash, e.e_hash_len, p, size));
		FUZZ_CHECK(e.e_scheme != HTPASSWD_INVALID);
		FUZZ_CHECK(plain || e.e_scheme != HTPASSWD_PLAIN);
	}
	if (rc == -1)
		FUZZ_CHECK(err[0] != '\0');

	for (i = 0; i < size; i++)
		lines += p[i] == '\n';
	ht = htpasswd_load_buf("f", p, size, plain, warn_cb, &maxline, err, sizeof(err));
	FUZZ_CHECK(ht != NULL);
	FUZZ_CHECK(maxline <= lines);
	FUZZ_CHECK(htpasswd_count(ht) <= lines);
	FUZZ_CHECK(htpasswd_count_weak(ht) <= htpasswd_count(ht));
	if (rc == 1) {
		const struct htpasswd_entry *f = htpasswd_find(ht, e.e_user, e.e_user_len);

		FUZZ_CHECK(f != NULL && f->e_line >= 1 && f->e_line <= lines);
		FUZZ_CHECK(f->e_scheme == e.e_scheme);
		if (f->e_scheme == HTPASSWD_SHA1 || f->e_scheme == HTPASSWD_SSHA ||
		    f->e_scheme == HTPASSWD_APR1 || f->e_scheme == HTPASSWD_PLAIN) {
			/* 0x01 cannot be a password: the Basic decoder refuses control bytes */
			FUZZ_CHECK(htpasswd_verify(ht, e.e_user, e.e_user_len, "\x01", 1, NULL) ==
				   0);
		}
	}
	htpasswd_unref(ht);
	free(p);
	return 0;
}
