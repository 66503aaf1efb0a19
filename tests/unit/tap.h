/*
 * tap.h: a tiny TAP producer for unit tests, run by prove(1).
 *
 *	ok(cond, "name");  is_int(got, want, "name");  is_str(got, want, "name");
 *	subtest("group");  return done_testing();
 *
 * Header-only, one test binary per module; not thread-safe.
 */
#ifndef TFG_TAP_H
#define TFG_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static inline int tap_ok(int cond, const char *file, int line, const char *fmt, const char *name)
{
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	if (!cond)
		printf("#   Failed test at %s:%d%s\n", file, line, fmt ? fmt : "");
	fflush(stdout);
	return cond;
}

#define ok(cond, name) tap_ok(!!(cond), __FILE__, __LINE__, NULL, (name))

#define is_int(got, want, name)                                                                    \
	do {                                                                                       \
		long long tap_g_ = (long long)(got), tap_w_ = (long long)(want);                   \
		if (!tap_ok(tap_g_ == tap_w_, __FILE__, __LINE__, NULL, (name)))                   \
			printf("#          got: %lld\n#     expected: %lld\n", tap_g_, tap_w_);    \
	} while (0)

#define is_str(got, want, name)                                                                    \
	do {                                                                                       \
		const char *tap_g_ = (got), *tap_w_ = (want);                                      \
		int tap_c_ = (tap_g_ && tap_w_) ? strcmp(tap_g_, tap_w_) == 0 : tap_g_ == tap_w_;  \
		if (!tap_ok(tap_c_, __FILE__, __LINE__, NULL, (name)))                             \
			printf("#          got: '%s'\n#     expected: '%s'\n",                     \
			       tap_g_ ? tap_g_ : "(null)", tap_w_ ? tap_w_ : "(null)");            \
	} while (0)

static inline void subtest(const char *name)
{
	printf("# %s\n", name);
}

static inline int done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
