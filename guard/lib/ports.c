#include "ports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

static int ports_cmp(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

int ports_parse(char *s, struct ports *out, char *err, size_t errlen)
{
	char *items[PORTS_MAX + 1];
	int n, i;

	memset(out, 0, sizeof(*out));
	n = str_split(s, ',', items, PORTS_MAX + 1);
	if (n < 0) {
		snprintf(err, errlen, "empty item in port list");
		return -1;
	}
	if (n > PORTS_MAX) {
		snprintf(err, errlen, "more than %d ports", PORTS_MAX);
		return -1;
	}
	for (i = 0; i < n; i++) {
		uint64_t v;

		if (str_to_u64(items[i], 65535, &v) < 0 || v == 0) {
			snprintf(err, errlen, "'%s' is not a port number (1-65535)", items[i]);
			return -1;
		}
		if (ports_contains(out, (unsigned)v)) {
			snprintf(err, errlen, "port %u listed twice", (unsigned)v);
			return -1;
		}
		out->p_port[out->p_count++] = (uint16_t)v;
	}
	ports_sort(out);
	return 0;
}

void ports_sort(struct ports *p)
{
	qsort(p->p_port, p->p_count, sizeof(p->p_port[0]), ports_cmp);
}

bool ports_contains(const struct ports *p, unsigned port)
{
	size_t i;

	for (i = 0; i < p->p_count; i++)
		if (p->p_port[i] == port)
			return true;
	return false;
}

const char *ports_format(const struct ports *p, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < p->p_count && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%u", i ? ", " : "", p->p_port[i]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	return buf;
}
