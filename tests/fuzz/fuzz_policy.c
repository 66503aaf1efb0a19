/*
 * fuzz_policy: policy_parse() and policy_decide() (preload/policy.h, shared by
 * the shim and the supervisor) on arbitrary policies and addresses.
 *
 * Input: one flags byte (bits 0-1: socket family 0 AF_INET, 1 AF_INET6,
 * 2 AF_UNIX, 3 AF_NETLINK; bit 2: IPV6_V6ONLY), then the protected-ports text up
 * to the first '\n', the --allow-bind text up to the next '\n' (empty: no
 * restrict mode), and the rest is the address passed to bind(). Without the two
 * newlines the default ports and no allow list are used and everything after
 * the flags byte is the address.
 *
 * Invariants, on what would really be bound (d_addr, read as the kernel does):
 * a protected port is only ever bound on loopback; in restrict mode a
 * non-loopback bind is allow-listed; a rewrite keeps the port and lands on
 * loopback; non-inet sockets pass untouched; refusals carry a known errno; the
 * log line never overruns its buffer.
 */
#include <errno.h>

#include "fuzz.h"
#include "policy.h"

/* The endpoint bind() would use for d (domain's family rules). */
static void bound_ep(int domain, const struct policy_decision *d, struct policy_ep *ep)
{
	if (domain == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, &d->d_addr, sizeof(sin));
		ep->ep_family = AF_INET;
		memcpy(ep->ep_addr, &sin.sin_addr, 4);
		ep->ep_port = ntohs(sin.sin_port);
	} else {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, &d->d_addr, sizeof(sin6));
		policy_ep_from6(ep, &sin6.sin6_addr, ntohs(sin6.sin6_port));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int domains[] = { AF_INET, AF_INET6, AF_UNIX, AF_NETLINK };
	char ports[256], allow[1024], line[512];
	const char *nl1 = NULL, *nl2 = NULL, *rest;
	struct policy_decision d;
	struct policy_ep ep;
	struct policy pol;
	size_t off = 0, rlen, n;
	int domain, v6only;
	char *in, *addr;

	if (size == 0)
		return 0;
	domain = domains[data[0] & 3];
	v6only = (data[0] >> 2) & 1;
	in = fuzz_dup(data + 1, size - 1);
	nl1 = memchr(in, '\n', size - 1);
	if (nl1)
		nl2 = memchr(nl1 + 1, '\n', size - 1 - (size_t)(nl1 + 1 - in));
	strcpy(ports, POLICY_DEFAULT_PORTS);
	allow[0] = '\0';
	rest = in;
	if (nl1 && nl2 && (size_t)(nl1 - in) < sizeof(ports) &&
	    (size_t)(nl2 - nl1 - 1) < sizeof(allow)) {
		n = (size_t)(nl1 - in);
		memcpy(ports, in, n);
		ports[n] = '\0';
		n = (size_t)(nl2 - nl1 - 1);
		memcpy(allow, nl1 + 1, n);
		allow[n] = '\0';
		rest = nl2 + 1;
	}
	rlen = size - 1 - (size_t)(rest - in);
	if (policy_parse(&pol, ports, allow[0] ? allow : NULL) < 0) {
		free(in);
		return 0;
	}
	/* exact-size copy of the address, so an over-read is caught */
	addr = fuzz_dup((const uint8_t *)rest, rlen);
	policy_decide(&pol, domain, v6only, addr, rlen, &d);

	if (domain != AF_INET && domain != AF_INET6) {
		FUZZ_CHECK(d.d_verdict == POLICY_PASS);
	} else if (d.d_verdict == POLICY_REFUSE) {
		FUZZ_CHECK(d.d_errno == EINVAL || d.d_errno == EFAULT ||
			   d.d_errno == EAFNOSUPPORT || d.d_errno == EACCES);
	} else {
		FUZZ_CHECK(d.d_verdict == POLICY_ALLOW || d.d_verdict == POLICY_REWRITE);
		FUZZ_CHECK(d.d_len > 0 && d.d_len <= sizeof(d.d_addr));
		bound_ep(domain, &d, &ep);
		FUZZ_CHECK(ep.ep_port == d.d_orig.ep_port);
		if (policy_port_protected(&pol, ep.ep_port))
			FUZZ_CHECK(policy_ep_loopback(&ep));
		if (pol.pol_restrict && !policy_ep_loopback(&ep))
			FUZZ_CHECK(policy_allow_listed(&pol, &ep));
		if (d.d_verdict == POLICY_REWRITE) {
			FUZZ_CHECK(policy_ep_loopback(&ep));
			FUZZ_CHECK(policy_ep_wildcard(&d.d_orig));
			FUZZ_CHECK(((const struct sockaddr *)&d.d_addr)->sa_family == domain);
		} else {
			FUZZ_CHECK(d.d_len == rlen && memcmp(&d.d_addr, addr, rlen) == 0);
		}
	}
	policy_put_decision(line, sizeof(line), &off, "bind", addr, rlen, &d);
	FUZZ_CHECK(off < sizeof(line) && memchr(line, '\0', sizeof(line)) != NULL);
	free(addr);
	free(in);
	return 0;
}
