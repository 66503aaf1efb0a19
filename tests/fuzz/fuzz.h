/*
 * fuzz.h: shared by the libFuzzer targets and replay.c.
 *
 * FUZZ_CHECK() aborts with the failed invariant, so libFuzzer saves the input and the
 * gcc replay exits non-zero. Each target copies its input into an exact-size heap
 * buffer, so ASan (or the replay under SAN=1) catches a read one byte too far.
 */
#ifndef TFG_FUZZ_H
#define TFG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An exact-size heap copy (malloc(0) avoided). The caller frees it. */
static inline char *fuzz_dup(const uint8_t *data, size_t size)
{
	char *p = calloc(1, size ? size : 1);

	if (!p)
		abort();
	if (size)
		memcpy(p, data, size);
	return p;
}

/* Is [p, p+n) inside [base, base+len)? */
static inline int fuzz_inside(const void *p, size_t n, const void *base, size_t len)
{
	const char *a = p, *b = base;

	return n == 0 ? (a >= b && a <= b + len) : (a >= b && a + n <= b + len);
}

#endif
