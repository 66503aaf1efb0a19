/*
 * tfguard probe HOST[:PORT,...]: the audit's question asked from outside, for
 * a bastion or CI runner. Protected ports must not accept connections; the
 * proxy port must speak TLS and answer 401 without credentials.
 */
#include <err.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "addr.h"
#include "str.h"
#include "tlsprobe.h"

/* All addresses of host (a name may have several: each must be protected). */
static struct addrinfo *probe_resolve(const char *host)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int rc;

	rc = getaddrinfo(host, NULL, &hints, &ai);
	if (rc != 0) {
		warnx("probe: %s: %s", host, gai_strerror(rc));
		return NULL;
	}
	return ai;
}

static void probe_set_port(struct sockaddr *sa, unsigned port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

/* "HOST", "HOST:P1,P2", "[V6]:P1" into host and ports (ports default to the config's). */
static int probe_target(char *arg, char **host, struct ports *ports)
{
	char err[128], *colon;

	if (arg[0] == '[') {
		char *close = strchr(arg, ']');

		if (!close)
			return -1;
		*close = '\0';
		*host = arg + 1;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (!colon && close[1])
			return -1;
	} else {
		*host = arg;
		colon = strchr(arg, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* a bare IPv6 address: no ports */
	}
	if (!colon)
		return 0;
	*colon = '\0';
	if (ports_parse(colon + 1, ports, err, sizeof(err)) < 0) {
		warnx("probe: %s", err);
		return -1;
	}
	return 0;
}

int cmd_probe(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "proxy-port", required_argument, NULL, 'p' },
		{ "no-proxy", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] =
	    "usage: tfguard [-c CONF] probe [--proxy-port PORT | --no-proxy] [--timeout MS] "
	    "HOST[:PORT,...]\n";
	struct ports ports = conf->c_guard.g_ports;
	struct addrinfo *res, *ai;
	bool answered = false, unreachable = false;
	unsigned proxy_port = addr_port((struct sockaddr *)&conf->c_proxy.p_listen[0].a_ss);
	uint64_t timeout = 2000, v;
	char *host, err[160];
	bool bad = false;
	size_t i;
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			if (str_to_u64(optarg, 65535, &v) < 0 || v == 0)
				errx(EXIT_USAGE, "probe: --proxy-port: '%s' is not a port", optarg);
			proxy_port = (unsigned)v;
			break;
		case 'n':
			proxy_port = 0;
			break;
		case 't':
			if (str_to_u64(optarg, 60000, &v) < 0 || v == 0)
				errx(EXIT_USAGE, "probe: --timeout: '%s' is not 1-60000 ms",
				     optarg);
			timeout = v;
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || probe_target(argv[optind], &host, &ports) < 0) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!(res = probe_resolve(host)))
		return EXIT_ERR;
	for (ai = res; ai; ai = ai->ai_next) {
		struct sockaddr_storage ss;
		char a[ADDR_TEXT_MAX];

		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		for (i = 0; i < ports.p_count; i++) {
			enum tlsprobe_tcp t;
			int fd;

			memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
			probe_set_port((struct sockaddr *)&ss, ports.p_port[i]);
			addr_format((struct sockaddr *)&ss, a, sizeof(a));
			t = tlsprobe_tcp((struct sockaddr *)&ss, ai->ai_addrlen, (int)timeout, &fd,
					 err, sizeof(err));
			if (fd >= 0)
				close(fd);
			/* refused (RST) proves the host answered; filtered may be a drop or
			 * a dead host, which the proxy check (or another port) tells apart */
			answered |= t == TLSPROBE_OPEN || t == TLSPROBE_REFUSED;
			printf("%s  %s: %s%s%s%s\n",
			       t == TLSPROBE_OPEN	   ? "FAIL"
			       : t == TLSPROBE_UNREACHABLE ? "ERR "
							   : "PASS",
			       a, tlsprobe_tcp_name(t),
			       t == TLSPROBE_OPEN ? " (the raw model server is reachable: bypass)"
			       : t == TLSPROBE_FILTERED
				   ? " (no answer: dropped, as tfguard apply does)"
				   : "",
			       err[0] ? ": " : "", err);
			bad |= t == TLSPROBE_OPEN;
			unreachable |= t == TLSPROBE_UNREACHABLE;
		}
		if (proxy_port) {
			struct tlsprobe_http h;

			memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
			probe_set_port((struct sockaddr *)&ss, proxy_port);
			addr_format((struct sockaddr *)&ss, a, sizeof(a));
			if (tlsprobe_http((struct sockaddr *)&ss, ai->ai_addrlen, host,
					  (int)timeout, &h) < 0) {
				/* client_cert = require: a TLS server that asked for a
				 * certificate refused the client without one */
				bool req = (conf->c_proxy.p_auth & CONF_AUTH_MTLS) &&
					   conf->c_proxy.p_client_cert == CONF_CLIENT_CERT_REQUIRE;

				if (req && tlsprobe_cert_refused(&h)) {
					answered = true;
					printf("PASS  %s (proxy): no client certificate -> refused "
					       "in TLS "
					       "(client_cert = require): %s\n",
					       a, h.h_err);
				} else {
					printf("FAIL  %s (proxy): %s\n", a, h.h_err);
					bad = true;
				}
			} else {
				/* any scheme of auth will do: Basic, Bearer, or both */
				bool good = h.h_status == 401 && (h.h_challenge || h.h_bearer);

				answered = true;
				printf("%s  %s (proxy): %s %s, no credentials -> %d%s%s\n",
				       good ? "PASS" : "FAIL", a, h.h_version, h.h_cipher,
				       h.h_status, h.h_challenge ? " with a Basic challenge" : "",
				       h.h_bearer ? " with a Bearer challenge" : "");
				bad |= !good;
			}
		}
	}
	freeaddrinfo(res);
	if (!bad && (unreachable || !answered)) {
		printf("UNKNOWN: %s\n",
		       unreachable
			   ? "some addresses were unreachable"
			   : "nothing answered: is the host up? (probe the proxy port too)");
		return EXIT_ERR;
	}
	printf("%s\n", bad ? "NOT COMPLIANT" : "compliant");
	return bad ? EXIT_NONCOMPLIANT : EXIT_OK;
}
