#include "str.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

char *str_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	*end = '\0';
	return s;
}

int str_to_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; *s; s++) {
		unsigned d;

		if (!isdigit((unsigned char)*s))
			return -1;
		d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Splits "64M" into the number and a suffix; the suffix is returned in *suffix. */
static int str_number_suffix(const char *s, uint64_t *num, const char **suffix)
{
	char digits[32];
	size_t n = 0;

	while (isdigit((unsigned char)s[n]))
		n++;
	if (n == 0 || n >= sizeof(digits))
		return -1;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (str_to_u64(digits, UINT64_MAX, num) < 0)
		return -1;
	*suffix = s + n;
	return 0;
}

static int str_mul(uint64_t a, uint64_t b, uint64_t *out)
{
	if (a != 0 && b > UINT64_MAX / a)
		return -1;
	*out = a * b;
	return 0;
}

int str_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{ "", 1 },	     { "b", 1 },
		{ "k", 1ULL << 10 }, { "kb", 1ULL << 10 },
		{ "m", 1ULL << 20 }, { "mb", 1ULL << 20 },
		{ "g", 1ULL << 30 }, { "gb", 1ULL << 30 },
	};
	const char *suffix;
	uint64_t num;
	size_t i;

	if (str_number_suffix(s, &num, &suffix) < 0)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcasecmp(suffix, units[i].suffix) == 0)
			return str_mul(num, units[i].mult, out);
	return -1;
}

int str_parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {
		{ "", 1000 },	{ "ms", 1 },	  { "s", 1000 },
		{ "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	const char *suffix;
	uint64_t num;
	size_t i;

	if (str_number_suffix(s, &num, &suffix) < 0)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(suffix, units[i].suffix) == 0)
			return str_mul(num, units[i].mult, out);
	return -1;
}

int str_parse_bool(const char *s, bool *out)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int str_split(char *s, char sep, char **items, size_t max)
{
	size_t n = 0;

	for (;;) {
		char *end = strchr(s, sep);

		if (end)
			*end = '\0';
		if (n == max)
			return -1;
		items[n] = str_trim(s);
		if (items[n][0] == '\0')
			return -1;
		n++;
		if (!end)
			break;
		s = end + 1;
	}
	return (int)n;
}

int str_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstlen)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}
