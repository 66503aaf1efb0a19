/*
 * ports: the list of protected TCP ports ("8500, 8501").
 *
 * The list is kept sorted and free of duplicates, so that two configs that
 * name the same ports in another order give the same firewall policy (and
 * the same policy digest). Pure, reentrant.
 */
#ifndef TFG_PORTS_H
#define TFG_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PORTS_MAX 64 /* one nft set; more is a sign of a wrong config, not a need */

struct ports {
	uint16_t p_port[PORTS_MAX];
	size_t p_count;
};

/* Parses a comma-separated list in place. On error returns -1 and a reason in err. */
int ports_parse(char *s, struct ports *out, char *err, size_t errlen);
/* Sorts p in place (a list read from elsewhere, e.g. the kernel's set). */
void ports_sort(struct ports *p);
bool ports_contains(const struct ports *p, unsigned port);
/* "8500, 8501" into buf; returns buf. */
const char *ports_format(const struct ports *p, char *buf, size_t len);

#endif
