/*
 * json: writing JSON strings safely (RFC 8259 §7 escapes). Allocation-free,
 * reentrant. Control bytes and invalid UTF-8 are escaped as \u00XX, so any
 * byte string becomes a valid JSON string.
 */
#ifndef TFG_JSON_H
#define TFG_JSON_H

#include <stdio.h>

/* Writes s as a quoted JSON string. */
void json_put_str(FILE *f, const char *s);

#endif
