/*
 * b64: strict base64 (RFC 4648 §4, standard alphabet, '=' padding required).
 *
 * The decoder refuses what lenient decoders let through, so one credential has one
 * encoding: characters outside the alphabet (whitespace included), missing or
 * misplaced padding, and non-zero bits in the last symbol before the padding
 * (RFC 4648 §3.5). Pure functions, reentrant.
 */
#ifndef TFG_B64_H
#define TFG_B64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decoded size of n base64 characters, at most (n / 4 * 3). */
#define B64_DECODED_MAX(n) ((n) / 4 * 3)
/* Encoded size of n bytes, without a NUL. */
#define B64_ENCODED_LEN(n) (((n) + 2) / 3 * 4)

/*
 * Decodes in[0..n) into out (capacity cap). Returns the decoded length, or -1 if the
 * input is not canonical base64 or does not fit. out may be partly written on -1;
 * the caller wipes it if it holds secrets.
 */
ssize_t b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

/* Encodes in[0..n) into out (capacity cap, NUL added). Returns the length or -1. */
ssize_t b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);

#endif
