/*
 * str: strict parsers for the small value types of the config file.
 *
 * Every parser takes a NUL-terminated, already trimmed string, returns 0 on
 * success and -1 when the whole string is not a valid value (no partial
 * parses, no silent clamping). Pure functions, reentrant.
 */
#ifndef TFG_STR_H
#define TFG_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

char *str_trim(char *s);
int str_to_u64(const char *s, uint64_t max, uint64_t *out);
/* "512", "64K", "64M", "1G" (binary units; case-insensitive, optional trailing B). */
int str_parse_size(const char *s, uint64_t *out);
/* "500ms", "10s", "2m", "1h", "90d"; a bare number is seconds. Result in milliseconds. */
int str_parse_duration_ms(const char *s, uint64_t *out);
/* yes/no, true/false, on/off, 1/0. */
int str_parse_bool(const char *s, bool *out);
/*
 * Splits s in place on sep, trimming each item. Returns the number of items,
 * or -1 if there are more than max or an item is empty ("a,,b", "a,").
 */
int str_split(char *s, char sep, char **items, size_t max);
/* snprintf into a fixed buffer; -1 if the result did not fit. */
int str_copy(char *dst, size_t dstlen, const char *src);

#endif
