/*
 * addr: numeric "IPv4:port" and "[IPv6]:port" endpoints.
 *
 * Host names are refused on purpose: a security tool must not depend on DNS
 * at start-up, and "localhost" may resolve to a public address on a bad host.
 */
#ifndef TFG_ADDR_H
#define TFG_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define ADDR_TEXT_MAX 64 /* "[" + INET6_ADDRSTRLEN(46) + "]:65535" fits */

struct addr {
	struct sockaddr_storage a_ss;
	socklen_t a_len;
	char a_text[ADDR_TEXT_MAX];
};

/* Returns 0, or -1 when s is not a numeric address with a port in 1..65535. */
int addr_parse(const char *s, struct addr *out);
/* Formats sa as "1.2.3.4:80" or "[::1]:80" into buf; returns buf. */
const char *addr_format(const struct sockaddr *sa, char *buf, size_t len);
bool addr_is_loopback(const struct sockaddr *sa);
unsigned addr_port(const struct sockaddr *sa);

#endif
