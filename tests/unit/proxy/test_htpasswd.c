/*
 * Unit tests for guard/proxy/htpasswd.c. The vectors were made with Apache's
 * htpasswd 2.4 (htpasswd -nbB, -nbm, -nbs, -nb2, -nb5, -nbd, password
 * "correct horse"), the {SSHA} one with openssl:
 *   { printf 'correct horse'; printf '\1\2\3\4\376\377\0\200'; } | openssl dgst -sha1 -binary
 * followed by the same salt, base64-encoded. yescrypt and bcrypt-$2b$ vectors are made
 * at run time with libxcrypt.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "htpasswd.h"
#include "tap.h"

static const char vectors[] =
    "# made with htpasswd(1)\n"
    "ubcrypt:$2y$05$.f/.mZ6lNBtg3i30eeZXXOsE33n/ewdhvLq43diA8Ggz9lD5abwMG\n"
    "uapr1:$apr1$mQfdWBd2$39GW1q69HLxqHrja3oAdf1\n"
    "usha:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n"
    "\n"
    "usha256:$5$nwpJZnC/zg0Zyqfx$kfDiNSXn/C61Q2B8Jo9PQQ4JVWgXLpuvgt.6c9PCxE4\n"
    "usha512:$6$SYfBQiyKk0zpt6yJ$1kpSsxXB9aRe9GwOzpkWOrztLP7T1bq.fz9abn96aRgQZmGP2wFY9c4Nzwrlnx9u"
    "0AYIt6wfpZukZFA3.GJ3D1\n"
    "udes:pY87yJls7xh.Q\n"
    "ussha:{SSHA}X0F1TPjlv+WIKsJudYY7dPMCq1kBAgME/v8AgA==\n"
    "   # indented comment\n"
    "ucolon:$2y$04$y8WB2PQ0AmN71YxKDFToH.Y37nTynH.gBMCrkIJM7blRZbvzjSchW:a comment\n"
    "uplain:{PLAIN}correct horse\n";

struct warns {
	int n;
	unsigned lines[32];
	char last[256];
};

static void on_warn(void *arg, const char *file, unsigned line, const char *msg)
{
	struct warns *w = arg;

	if (w->n < 32)
		w->lines[w->n] = line;
	w->n++;
	snprintf(w->last, sizeof(w->last), "%s:%u: %s", file, line, msg);
	printf("#   warning %s:%u: %s\n", file, line, msg);
}

static struct htpasswd *load(const char *text, bool plain, struct warns *w)
{
	char err[256];
	struct htpasswd *ht;

	memset(w, 0, sizeof(*w));
	ht = htpasswd_load_buf("t.htpasswd", text, strlen(text), plain, on_warn, w, err,
			       sizeof(err));
	if (!ht)
		printf("# load: %s\n", err);
	return ht;
}

static int verify(const struct htpasswd *ht, const char *u, const char *p)
{
	return htpasswd_verify(ht, u, strlen(u), p, strlen(p), NULL);
}

static void test_schemes(void)
{
	static const struct {
		const char *user;
		enum htpasswd_scheme scheme;
		const char *pass;
	} cases[] = {
		{ "ubcrypt", HTPASSWD_BCRYPT, "correct horse" },
		{ "uapr1", HTPASSWD_APR1, "correct horse" },
		{ "usha", HTPASSWD_SHA1, "correct horse" },
		{ "usha256", HTPASSWD_SHA256, "correct horse" },
		{ "usha512", HTPASSWD_SHA512, "correct horse" },
		{ "udes", HTPASSWD_DES, "correct horse" },
		{ "ussha", HTPASSWD_SSHA, "correct horse" },
		{ "ucolon", HTPASSWD_BCRYPT, "p\xc3\xa4ssw\xc3\xb6rd:with:colons" },
		{ "uplain", HTPASSWD_PLAIN, "correct horse" },
	};
	struct warns w;
	struct htpasswd *ht;
	size_t i;
	char name[128];

	subtest("every scheme, right and wrong password");
	ht = load(vectors, true, &w);
	ok(ht != NULL, "vectors load");
	if (!ht)
		return;
	is_int(htpasswd_count(ht), 9, "nine users");
	is_int(htpasswd_count_weak(ht), 5, "five weak entries (apr1, sha, des, ssha, plain)");
	is_int(w.n, 5, "one warning per weak entry");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct htpasswd_entry *e =
		    htpasswd_find(ht, cases[i].user, strlen(cases[i].user));
		uint64_t id = 0;

		snprintf(name, sizeof(name), "%s: scheme %s", cases[i].user,
			 htpasswd_scheme_name(cases[i].scheme));
		ok(e && e->e_scheme == cases[i].scheme, name);
		snprintf(name, sizeof(name), "%s: right password verifies", cases[i].user);
		ok(htpasswd_verify(ht, cases[i].user, strlen(cases[i].user), cases[i].pass,
				   strlen(cases[i].pass), &id) == 1 &&
		       e && id == e->e_id,
		   name);
		snprintf(name, sizeof(name), "%s: wrong password fails", cases[i].user);
		ok(verify(ht, cases[i].user, "Correct horse") == 0, name);
		snprintf(name, sizeof(name), "%s: empty password fails", cases[i].user);
		ok(verify(ht, cases[i].user, "") == 0, name);
	}
	ok(verify(ht, "udes", "correct hXXXXXX") == 1,
	   "DES only sees 8 characters (why it is weak)");
	ok(verify(ht, "nobody", "correct horse") == 0, "unknown user fails");
	ok(verify(ht, "ubcryp", "correct horse") == 0, "user prefix is another user");
	ok(verify(ht, "ubcrypt ", "correct horse") == 0, "user with trailing space");
	ok(htpasswd_verify(ht, "ubcrypt", 7, "correct horse\0x", 15, NULL) == 0,
	   "password with NUL inside never verifies");
	{
		char big[HTPASSWD_PASS_MAX + 10];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ok(verify(ht, "uplain", big) == 0, "over-long password fails");
	}
	ok(verify(ht, "uplain", "correct horse ") == 0, "plain: longer password fails");
	ok(verify(ht, "uplain", "correct hors") == 0, "plain: shorter password fails");
	is_str(htpasswd_scheme_name(HTPASSWD_YESCRYPT), "yescrypt", "scheme name");
	ok(htpasswd_scheme_weak(HTPASSWD_DES) && !htpasswd_scheme_weak(HTPASSWD_BCRYPT),
	   "weak schemes");
	htpasswd_unref(ht);
}

/*
 * $apr1$ across password lengths that exercise every branch of MD5-crypt (the 16-byte
 * alternate-sum loop, the length-bit loop): htpasswd -nbm with password
 * c[i] = 33 + (i * 7) % 90, ':' replaced by '_'.
 */
static void test_apr1_lengths(void)
{
	static const struct {
		size_t n;
		const char *hash;
	} v[] = {
		{ 0, "$apr1$2aa/3/Ay$r2ypWw2gw4D2J0scntjI2/" },
		{ 1, "$apr1$kjZbTqmz$sdb3xjDxDNsRU9k5Pt6j90" },
		{ 2, "$apr1$mdQjlysi$svb3EF41wWG44s/3QspBc0" },
		{ 7, "$apr1$TXYyccGr$koTLf8n3XhlSQNAQj5RtN0" },
		{ 8, "$apr1$8jP.Z.EJ$2eHyGfs0l2Y0tRe1bAz2/1" },
		{ 15, "$apr1$VdKsL.z9$ENkToDmd7W/8VjTyn8.9d." },
		{ 16, "$apr1$/UEPdKjm$GY5/9Dy/Dbl7AbXRIJ5Xh/" },
		{ 17, "$apr1$5dEsZXso$hzUJZJmrwpa9QfSYnQRi81" },
		{ 31, "$apr1$3CEgOro/$7pnn6UJ3Zi6sMEID917sF/" },
		{ 32, "$apr1$31sw5j56$n.3d/vTf/Q/Z2S6ErLNuC1" },
		{ 33, "$apr1$STHoTAPJ$7VxukKQGzHgccTWX3WriO/" },
		{ 48, "$apr1$ov.NmhnL$.zGDocCH3xbgrB.OqpzlT1" },
		{ 64, "$apr1$A8pCx3Hg$R.XiyOal3SnEYZM5qKnTV1" },
		{ 100, "$apr1$ktqlQPDB$OhucWVPT0oCSLVu8ZVwce/" },
		{ 200, "$apr1$DijTXFHl$zjIVpEEqfatuawzGP0TKy0" },
	};
	size_t i, k, good = 0, wrong_ok = 0;

	subtest("$apr1$ against htpasswd -m, password lengths 0..200");
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char text[128], pw[256];
		struct htpasswd *ht;
		struct warns w;

		for (k = 0; k < v[i].n; k++) {
			pw[k] = (char)(33 + (k * 7) % 90);
			if (pw[k] == ':')
				pw[k] = '_';
		}
		pw[v[i].n] = '\0';
		snprintf(text, sizeof(text), "u:%s\n", v[i].hash);
		ht = load(text, false, &w);
		if (ht && htpasswd_verify(ht, "u", 1, pw, v[i].n, NULL) == 1)
			good++;
		else
			printf("#   length %zu failed\n", v[i].n);
		pw[v[i].n] = 'x';
		if (ht && htpasswd_verify(ht, "u", 1, pw, v[i].n + 1, NULL) == 0)
			wrong_ok++;
		htpasswd_unref(ht);
	}
	is_int(good, sizeof(v) / sizeof(v[0]), "every length verifies");
	is_int(wrong_ok, sizeof(v) / sizeof(v[0]), "one extra character fails at every length");
}

static void test_generated(void)
{
	static const char *const prefixes[] = { "$y$", "$2b$", "$6$", "$5$", "$1$" };
	static const enum htpasswd_scheme schemes[] = { HTPASSWD_YESCRYPT, HTPASSWD_BCRYPT,
							HTPASSWD_SHA512, HTPASSWD_SHA256,
							HTPASSWD_MD5 };
	char text[4096], setting[CRYPT_GENSALT_OUTPUT_SIZE], name[128];
	struct crypt_data cd;
	struct htpasswd *ht;
	struct warns w;
	size_t i, n = 0;

	subtest("libxcrypt-generated hashes");
	for (i = 0; i < 5; i++) {
		const char *h;

		memset(&cd, 0, sizeof(cd));
		if (!crypt_gensalt_rn(prefixes[i], i == 1 ? 4 : 0, NULL, 0, setting,
				      sizeof(setting)) ||
		    !(h = crypt_rn("s3cret", setting, &cd, sizeof(cd)))) {
			ok(0, "crypt_gensalt/crypt_rn");
			return;
		}
		n += (size_t)snprintf(text + n, sizeof(text) - n, "g%zu:%s\n", i, h);
	}
	ht = load(text, false, &w);
	ok(ht != NULL, "generated file loads");
	for (i = 0; ht && i < 5; i++) {
		char u[8];
		const struct htpasswd_entry *e;

		snprintf(u, sizeof(u), "g%zu", i);
		e = htpasswd_find(ht, u, strlen(u));
		snprintf(name, sizeof(name), "%s: %s recognised, right/wrong password", prefixes[i],
			 htpasswd_scheme_name(schemes[i]));
		ok(e && e->e_scheme == schemes[i] && verify(ht, u, "s3cret") == 1 &&
		       verify(ht, u, "s3creT") == 0,
		   name);
	}
	htpasswd_unref(ht);
}

static void test_malformed(void)
{
	static const char text[] =
	    "good:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n"				    /* 1 */
	    "nocolon\n"								    /* 2 */
	    ":{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n"				    /* 3 */
	    "plain:{PLAIN}pw\n"							    /* 4 */
	    "unknown:$7$abc\n"							    /* 5 */
	    "short:$2y$05$abc\n"						    /* 6 */
	    "badsha:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A\n"				    /* 7 */
	    "good:{SHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"				    /* 8 dup */
	    "sp ace:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n"			    /* 9 */
	    "crlf:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\r\n"			    /* 10 */
	    "nohash:\n"								    /* 11 */
	    "cost99:$2y$99$.f/.mZ6lNBtg3i30eeZXXOsE33n/ewdhvLq43diA8Ggz9lD5abwMG\n" /* 12 */
	    "apr:$apr1$toolongsalt$39GW1q69HLxqHrja3oAdf1\n"			    /* 13 */
	    "last:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A="; /* 14, no newline */
	static const unsigned want_lines[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
	struct htpasswd *ht;
	struct warns w;
	const struct htpasswd_entry *e;

	(void)want_lines;
	subtest("malformed lines");
	ht = load(text, false, &w);
	ok(ht != NULL, "a file with bad lines still loads");
	if (!ht)
		return;
	is_int(htpasswd_count(ht), 3, "three usable users (good, crlf, last)");
	ok(verify(ht, "good", "correct horse") == 1, "good user works");
	ok(verify(ht, "crlf", "correct horse") == 1, "CRLF line end works");
	ok(verify(ht, "last", "correct horse") == 1, "last line without newline works");
	e = htpasswd_find(ht, "good", 4);
	ok(e && e->e_line == 1, "duplicate user: the first line wins");
	ok(verify(ht, "plain", "pw") == 0, "{PLAIN} refused without the opt-in");
	/* weak warnings for good/crlf/last + 11 bad lines */
	is_int(w.n, 3 + 11, "one warning per bad line plus weak-scheme warnings");
	ok(strstr(w.last, "t.htpasswd:14:") != NULL, "warnings carry file:line");
	{
		int i, seen2 = 0, seen8 = 0;

		for (i = 0; i < w.n && i < 32; i++) {
			seen2 |= w.lines[i] == 2;
			seen8 |= w.lines[i] == 8;
		}
		ok(seen2 && seen8, "no-colon line and duplicate reported with their line numbers");
	}
	htpasswd_unref(ht);

	ht = load("", false, &w);
	ok(ht && htpasswd_count(ht) == 0, "empty file: a table without users");
	ok(ht && verify(ht, "x", "y") == 0, "empty table: verify fails (dummy bcrypt)");
	htpasswd_unref(ht);
	ht = load("# only a comment\n\n   \n", false, &w);
	ok(ht && htpasswd_count(ht) == 0 && w.n == 0, "comments and blank lines: no warnings");
	htpasswd_unref(ht);
}

static void test_identity(void)
{
	struct htpasswd *a, *b, *c;
	struct warns w;
	const struct htpasswd_entry *ea, *eb, *ec;

	subtest("entry identity across reloads");
	a = load("x:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\ny:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n",
		 false, &w);
	b = load("# moved "
		 "down\ny:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\nx:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n",
		 false, &w);
	c = load("x:{SSHA}X0F1TPjlv+WIKsJudYY7dPMCq1kBAgME/v8AgA==\n", false, &w);
	ea = a ? htpasswd_find(a, "x", 1) : NULL;
	eb = b ? htpasswd_find(b, "x", 1) : NULL;
	ec = c ? htpasswd_find(c, "x", 1) : NULL;
	ok(ea && eb && ea->e_id == eb->e_id, "same line, other position: same identity");
	ok(ea && ec && ea->e_id != ec->e_id, "changed hash: new identity");
	ok(ea && a && htpasswd_find(a, "y", 1)->e_id != ea->e_id,
	   "same hash, other user: other identity");
	htpasswd_ref(a);
	htpasswd_unref(a);
	ok(verify(a, "x", "correct horse") == 1, "ref/unref pair keeps the table");
	htpasswd_unref(a);
	htpasswd_unref(b);
	htpasswd_unref(c);
	htpasswd_unref(NULL);
}

static double ms_of(const struct htpasswd *ht, const char *u, const char *p)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	(void)verify(ht, u, p);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

static void test_dummy(void)
{
	static const char text[] =
	    "a:$2y$08$.f/.mZ6lNBtg3i30eeZXXOsE33n/ewdhvLq43diA8Ggz9lD5abwMG\n"
	    "b:$2y$08$y8WB2PQ0AmN71YxKDFToH.Y37nTynH.gBMCrkIJM7blRZbvzjSchW\n"
	    "c:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n";
	struct htpasswd *ht;
	struct warns w;
	double known = 1e9, unknown = 1e9, t;
	int i;

	subtest("unknown users cost a real verification");
	ht = load(text, false, &w);
	if (!ok(ht != NULL, "loads"))
		return;
	/* best of 5 each, to keep scheduling noise out */
	for (i = 0; i < 5; i++) {
		t = ms_of(ht, "a", "wrong");
		known = t < known ? t : known;
		t = ms_of(ht, "nobody", "wrong");
		unknown = t < unknown ? t : unknown;
	}
	printf("#   known user %.2f ms, unknown user %.2f ms\n", known, unknown);
	ok(unknown > known * 0.5 && unknown < known * 2.0,
	   "unknown user takes as long as a known one (bcrypt cost 8)");
	ok(verify(ht, "nobody", "correct horse") == 0,
	   "the dummy never verifies, even with a real user's password");
	htpasswd_unref(ht);
}

static void test_file(void)
{
	char path[] = "/tmp/tfg-htpasswd-XXXXXX", err[256];
	struct htpasswd *ht;
	struct warns w;
	int fd = mkstemp(path);

	subtest("loading from a file");
	if (!ok(fd >= 0, "temp file"))
		return;
	if (write(fd, vectors, strlen(vectors)) != (ssize_t)strlen(vectors))
		ok(0, "write");
	close(fd);
	memset(&w, 0, sizeof(w));
	ht = htpasswd_load(path, false, on_warn, &w, err, sizeof(err));
	ok(ht && htpasswd_count(ht) == 8, "file loads (uplain refused)");
	ok(ht && verify(ht, "usha512", "correct horse") == 1, "file entry verifies");
	htpasswd_unref(ht);
	unlink(path);
	ht = htpasswd_load(path, false, on_warn, &w, err, sizeof(err));
	ok(!ht && strstr(err, path) && strstr(err, "No such file"), "missing file: error names it");
	ht = htpasswd_load("/tmp", false, on_warn, &w, err, sizeof(err));
	ok(!ht, "directory refused");
}

static void test_large(void)
{
	size_t cap = 100000 * 48, n = 0, i, found = 0;
	char *text = malloc(cap + 64);
	struct timespec t0, t1;
	struct htpasswd *ht;
	struct warns w;
	double ms;

	subtest("large files");
	if (!text)
		abort();
	for (i = 0; i < 100000; i++)
		n += (size_t)snprintf(text + n, cap - n,
				      "user%zu:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=\n", i);
	n += (size_t)snprintf(text + n, cap + 64 - n,
			      "user77777:{SHA}AAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&w, 0, sizeof(w));
	{
		char err[256];

		ht = htpasswd_load_buf("big", text, n, false, NULL, NULL, err, sizeof(err));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("#   100001 lines loaded in %.0f ms\n", ms);
	ok(ht && htpasswd_count(ht) == 100000, "100000 users, the late duplicate ignored");
	for (i = 0; ht && i < 100000; i += 997) {
		char u[32];

		snprintf(u, sizeof(u), "user%zu", i);
		found += htpasswd_find(ht, u, strlen(u)) != NULL;
	}
	is_int(found, 101, "every sampled user found");
	ok(ht && verify(ht, "user77777", "correct horse") == 1, "first definition wins");
	ok(ms < 5000, "loads in well under 5 s");
	htpasswd_unref(ht);
	free(text);
}

static void test_parse_line(void)
{
	struct htpasswd_entry e;
	char err[128];

	subtest("htpasswd_parse_line");
	is_int(htpasswd_parse_line("# x", 3, false, &e, err, sizeof(err)), 0, "comment");
	is_int(htpasswd_parse_line("", 0, false, &e, err, sizeof(err)), 0, "empty");
	is_int(htpasswd_parse_line("u:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", 35, false, &e, err,
				   sizeof(err)),
	       1, "entry");
	ok(e.e_hash_len == 33 && e.e_scheme == HTPASSWD_SHA1, "hash slice");
	is_int(htpasswd_parse_line("u\x01:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=", 35, false, &e, err,
				   sizeof(err)),
	       -1, "control byte in user");
}

int main(void)
{
	test_schemes();
	test_apr1_lengths();
	test_generated();
	test_malformed();
	test_identity();
	test_dummy();
	test_file();
	test_large();
	test_parse_line();
	return done_testing();
}
