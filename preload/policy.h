/*
 * policy: the bind decision of tfguard-run, shared by libtfguard-preload.so and
 * the seccomp supervisor in tfguard-run, so that the two layers cannot disagree.
 *
 * Header-only on purpose: the preload is one C file that must not link
 * guard/lib, and the supervisor compiles the very same text. Everything here
 * is pure, reentrant, allocation-free and stdio-free (inet_pton/inet_ntop only
 * touch the buffers they are given), so it is safe in an interposed bind() in
 * any thread, after fork, and in a signal handler.
 *
 * The policy travels from tfguard-run to the shim in two environment variables:
 *	TFGUARD_PROTECTED_PORTS=8500,8501
 *	TFGUARD_ALLOW_BIND=0.0.0.0:8443,[::]:443	(only with --allow-bind)
 * tfguard-run writes them and then parses its own strings with policy_parse(),
 * so the supervisor and the shim read the policy from the same text.
 */
#ifndef TFG_POLICY_H
#define TFG_POLICY_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define POLICY_ENV_PORTS "TFGUARD_PROTECTED_PORTS"
#define POLICY_ENV_ALLOW "TFGUARD_ALLOW_BIND"
/* Set by tfguard-run when its supervisor sees every bind: the shim then logs
 * only what it changes or refuses, and the supervisor logs the rest, so each
 * decision is logged once. */
#define POLICY_ENV_SUPERVISED "TFGUARD_SUPERVISED"
#define POLICY_PORTS_MAX      64 /* same bound as guard/lib/ports.h */
#define POLICY_ALLOW_MAX      16
#define POLICY_DEFAULT_PORTS  "8500,8501"
/* "[" + INET6_ADDRSTRLEN(46) + "]:65535" */
#define POLICY_ADDR_TEXT_MAX 64

/*
 * One endpoint, normalised: a v4-mapped IPv6 address (::ffff:a.b.c.d) is kept
 * as AF_INET, because that is what it binds to.
 */
struct policy_ep {
	int ep_family; /* AF_INET or AF_INET6 */
	uint8_t ep_addr[16];
	uint16_t ep_port; /* host order */
};

struct policy {
	uint16_t pol_ports[POLICY_PORTS_MAX];
	size_t pol_nports;
	struct policy_ep pol_allow[POLICY_ALLOW_MAX];
	size_t pol_nallow;
	bool pol_restrict; /* --allow-bind given: other non-loopback binds are refused */
};

enum policy_verdict {
	POLICY_PASS,	/* not an inet socket: untouched, not logged */
	POLICY_ALLOW,	/* bind d_addr, which is the caller's address unchanged */
	POLICY_REWRITE, /* bind d_addr, a loopback address, instead */
	POLICY_REFUSE,	/* fail with d_errno, bind nothing */
};

enum policy_reason {
	POLICY_R_NOT_INET,
	POLICY_R_UNPROTECTED,
	POLICY_R_LOOPBACK,
	POLICY_R_ALLOW_LISTED,
	POLICY_R_WILDCARD,
	POLICY_R_PROTECTED_PUBLIC,
	POLICY_R_NOT_ALLOW_LISTED,
	POLICY_R_BAD_LENGTH,
	POLICY_R_BAD_FAMILY,
	POLICY_R_KERNEL_PORT,
	POLICY_R_PORT_UNSEEN,
};

struct policy_decision {
	enum policy_verdict d_verdict;
	enum policy_reason d_reason;
	int d_errno; /* POLICY_REFUSE only */
	struct sockaddr_storage d_addr;
	socklen_t d_len;
	struct policy_ep d_orig; /* the caller's endpoint, for the log (valid unless bad) */
};

static inline const char *policy_reason_text(enum policy_reason r)
{
	switch (r) {
	case POLICY_R_NOT_INET:
		return "not an inet socket";
	case POLICY_R_UNPROTECTED:
		return "port not protected";
	case POLICY_R_LOOPBACK:
		return "loopback address";
	case POLICY_R_ALLOW_LISTED:
		return "listed in --allow-bind";
	case POLICY_R_WILDCARD:
		return "protected port on a wildcard address, moved to loopback";
	case POLICY_R_PROTECTED_PUBLIC:
		return "protected port on a non-loopback address";
	case POLICY_R_NOT_ALLOW_LISTED:
		return "non-loopback address not listed in --allow-bind";
	case POLICY_R_BAD_LENGTH:
		return "bad address length";
	case POLICY_R_BAD_FAMILY:
		return "address family does not match the socket";
	case POLICY_R_KERNEL_PORT:
		return "the kernel chose a protected port for a port-0 bind on a non-loopback "
		       "address (a protected port inside ip_local_port_range?)";
	case POLICY_R_PORT_UNSEEN:
		return "no port yet on a non-loopback address: listen() would pick one unchecked "
		       "(IP_BIND_ADDRESS_NO_PORT)";
	}
	return "?";
}

static inline bool policy_port_protected(const struct policy *p, unsigned port)
{
	size_t i;

	for (i = 0; i < p->pol_nports; i++)
		if (p->pol_ports[i] == port)
			return true;
	return false;
}

static inline bool policy_ep_wildcard(const struct policy_ep *ep)
{
	static const uint8_t zero[16];

	return memcmp(ep->ep_addr, zero, ep->ep_family == AF_INET ? 4 : 16) == 0;
}

static inline bool policy_ep_loopback(const struct policy_ep *ep)
{
	static const uint8_t one[16] = { [15] = 1 };

	if (ep->ep_family == AF_INET)
		return ep->ep_addr[0] == 127;
	return memcmp(ep->ep_addr, one, 16) == 0;
}

/* Fills ep from a v6 address, folding v4-mapped addresses into AF_INET. */
static inline void policy_ep_from6(struct policy_ep *ep, const struct in6_addr *a, uint16_t port)
{
	memset(ep, 0, sizeof(*ep));
	ep->ep_port = port;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		ep->ep_family = AF_INET;
		memcpy(ep->ep_addr, &a->s6_addr[12], 4);
	} else {
		ep->ep_family = AF_INET6;
		memcpy(ep->ep_addr, a->s6_addr, 16);
	}
}

/*
 * An --allow-bind entry matches its exact address and port. A wildcard entry
 * matches every address of its family on that port ("0.0.0.0:443" allows
 * 10.0.0.1:443 too); "[::]:443" means the whole port, IPv4 included, as a
 * dual-stack [::] socket would.
 */
static inline bool policy_allow_listed(const struct policy *p, const struct policy_ep *ep)
{
	size_t i;

	for (i = 0; i < p->pol_nallow; i++) {
		const struct policy_ep *a = &p->pol_allow[i];

		if (a->ep_port != ep->ep_port)
			continue;
		if (policy_ep_wildcard(a) &&
		    (a->ep_family == ep->ep_family || a->ep_family == AF_INET6))
			return true;
		if (a->ep_family == ep->ep_family &&
		    memcmp(a->ep_addr, ep->ep_addr, a->ep_family == AF_INET ? 4 : 16) == 0)
			return true;
	}
	return false;
}

static inline void policy_refuse(struct policy_decision *d, enum policy_reason r, int e)
{
	d->d_verdict = POLICY_REFUSE;
	d->d_reason = r;
	d->d_errno = e;
}

/*
 * The decision for bind(fd, addr, len) on a socket of family `domain`
 * (getsockopt SO_DOMAIN), with `v6only` its IPV6_V6ONLY option (AF_INET6 only).
 * `addr` must already be the caller's private copy: the result's d_addr is what
 * to pass to the real bind (a copy of at most sizeof(struct sockaddr_storage)
 * bytes, or the rewritten loopback address), never the caller's buffer.
 *
 * The length and family checks follow the kernel (inet_bind_sk, inet6_bind_sk):
 * AF_INET needs 16 bytes and accepts AF_UNSPEC only with INADDR_ANY (which then
 * binds 0.0.0.0, so it is treated as the wildcard it is); AF_INET6 needs 24
 * bytes (SIN6_LEN_RFC2133) and AF_INET6. Refusing those here with the kernel's
 * own errno keeps the shim and the supervisor identical to a plain bind.
 */
static inline void policy_decide(const struct policy *p, int domain, int v6only, const void *addr,
				 size_t len, struct policy_decision *d)
{
	const struct sockaddr *sa = addr;
	struct policy_ep *ep = &d->d_orig;
	bool wildcard;

	memset(d, 0, sizeof(*d));
	if (domain != AF_INET && domain != AF_INET6) {
		d->d_verdict = POLICY_PASS;
		d->d_reason = POLICY_R_NOT_INET;
		return;
	}
	if (!addr || len > sizeof(struct sockaddr_storage)) {
		policy_refuse(d, POLICY_R_BAD_LENGTH, addr ? EINVAL : EFAULT);
		return;
	}
	if (domain == AF_INET) {
		struct sockaddr_in sin;

		if (len < sizeof(sin)) {
			policy_refuse(d, POLICY_R_BAD_LENGTH, EINVAL);
			return;
		}
		memcpy(&sin, addr, sizeof(sin));
		if (sa->sa_family != AF_INET &&
		    (sa->sa_family != AF_UNSPEC || sin.sin_addr.s_addr != htonl(INADDR_ANY))) {
			policy_refuse(d, POLICY_R_BAD_FAMILY, EAFNOSUPPORT);
			return;
		}
		ep->ep_family = AF_INET;
		memcpy(ep->ep_addr, &sin.sin_addr, 4);
		ep->ep_port = ntohs(sin.sin_port);
	} else {
		struct sockaddr_in6 sin6;

		/* 24 = SIN6_LEN_RFC2133: the kernel accepts a sockaddr_in6 without scope id. */
		if (len < 24) {
			policy_refuse(d, POLICY_R_BAD_LENGTH, EINVAL);
			return;
		}
		memset(&sin6, 0, sizeof(sin6));
		memcpy(&sin6, addr, len < sizeof(sin6) ? len : sizeof(sin6));
		if (sin6.sin6_family != AF_INET6) {
			policy_refuse(d, POLICY_R_BAD_FAMILY, EAFNOSUPPORT);
			return;
		}
		policy_ep_from6(ep, &sin6.sin6_addr, ntohs(sin6.sin6_port));
	}

	wildcard = policy_ep_wildcard(ep);
	if (policy_port_protected(p, ep->ep_port) && wildcard) {
		d->d_verdict = POLICY_REWRITE;
		d->d_reason = POLICY_R_WILDCARD;
		if (domain == AF_INET) {
			struct sockaddr_in *o = (struct sockaddr_in *)&d->d_addr;

			o->sin_family = AF_INET;
			o->sin_port = htons(ep->ep_port);
			o->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			d->d_len = sizeof(*o);
		} else {
			struct sockaddr_in6 *o = (struct sockaddr_in6 *)&d->d_addr;

			o->sin6_family = AF_INET6;
			o->sin6_port = htons(ep->ep_port);
			if (ep->ep_family == AF_INET6 && v6only) {
				o->sin6_addr = in6addr_loopback;
			} else {
				/*
				 * Dual-stack "::" or "::ffff:0.0.0.0": ::ffff:127.0.0.1
				 * keeps the usual 127.0.0.1:PORT clients working
				 * (::1 would drop them).
				 */
				o->sin6_addr.s6_addr[10] = 0xff;
				o->sin6_addr.s6_addr[11] = 0xff;
				o->sin6_addr.s6_addr[12] = 127;
				o->sin6_addr.s6_addr[15] = 1;
			}
			d->d_len = sizeof(*o);
		}
		return;
	}
	memcpy(&d->d_addr, addr, len);
	d->d_len = (socklen_t)len;
	if (policy_ep_loopback(ep)) {
		d->d_verdict = POLICY_ALLOW;
		d->d_reason = POLICY_R_LOOPBACK;
		return;
	}
	if (policy_port_protected(p, ep->ep_port)) {
		policy_refuse(d, POLICY_R_PROTECTED_PUBLIC, EACCES);
		return;
	}
	if (p->pol_restrict) {
		if (policy_allow_listed(p, ep)) {
			d->d_verdict = POLICY_ALLOW;
			d->d_reason = POLICY_R_ALLOW_LISTED;
		} else {
			policy_refuse(d, POLICY_R_NOT_ALLOW_LISTED, EACCES);
		}
		return;
	}
	d->d_verdict = POLICY_ALLOW;
	d->d_reason = POLICY_R_UNPROTECTED;
}

/* Parses a decimal port 1..65535 from s[0..n). Returns the port or -1. */
/*
 * The decision for listen() on a socket already bound to addr (getsockname):
 * a port-0 bind, or listen()'s own autobind, lets the kernel pick the port
 * from ip_local_port_range after the bind was decided, so a protected port can
 * only show up now. Anything the bind policy would not have allowed as it is
 * (a protected port on a non-loopback address above all) is refused, and so is
 * a non-loopback address still without a port (IP_BIND_ADDRESS_NO_PORT: the
 * port would be picked by listen() itself): the socket never listens there.
 */
static inline void policy_check_bound(const struct policy *p, int domain, int v6only,
				      const void *addr, size_t len, struct policy_decision *d)
{
	policy_decide(p, domain, v6only, addr, len, d);
	if (d->d_verdict == POLICY_REWRITE)
		policy_refuse(d, POLICY_R_KERNEL_PORT, EACCES);
	/* still no port after the autobind bind: IP_BIND_ADDRESS_NO_PORT defers it to
	 * listen(), where nobody sees it; only loopback cannot go wrong then */
	else if (d->d_verdict == POLICY_ALLOW && d->d_orig.ep_port == 0 &&
		 d->d_reason != POLICY_R_LOOPBACK)
		policy_refuse(d, POLICY_R_PORT_UNSEEN, EACCES);
}

typedef int (*policy_bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*policy_listen_fn)(int, int);

/*
 * listen(fd, backlog) on an inet socket of family `domain`, guarded; do_bind and
 * do_listen are the real calls. The kernel picks a port for a socket without one
 * only inside listen(), after any decision; so:
 *   - a socket showing port 0 where a bind of its address is refused (--allow-bind) is
 *     refused at once; otherwise the autobind is made first, with a bind of the
 *     socket's address and port 0: on a socket without a port (never bound, or one whose
 *     port a refused connect() gave back while getsockname() still shows it) it takes
 *     the port now; on a bound one it fails and changes nothing;
 *   - the address then held is checked (policy_check_bound) before listening;
 *   - after listen() it is checked again (a thread racing us could have changed the
 *     socket meanwhile): a socket found listening where it may not is shut down.
 * Datagram sockets cannot listen: passed through for the kernel's own error.
 * Returns 0 (listening), 1 (refused: d says why, ss/len the address), or -1 (errno).
 */
static inline int policy_listen(const struct policy *p, int fd, int domain, int v6only, int backlog,
				policy_bind_fn do_bind, policy_listen_fn do_listen,
				struct sockaddr_storage *ss, socklen_t *len,
				struct policy_decision *d)
{
	struct sockaddr_storage zero;
	socklen_t zlen, tl = sizeof(int);
	int type = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
		return -1;
	if (type == SOCK_DGRAM)
		return do_listen(fd, backlog) < 0 ? -1 : 0;
	memset(ss, 0, sizeof(*ss));
	*len = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, len) < 0)
		return -1;
	zero = *ss;
	zlen = *len;
	if (zero.ss_family == AF_INET)
		((struct sockaddr_in *)&zero)->sin_port = 0;
	else if (zero.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&zero)->sin6_port = 0;
	policy_decide(p, domain, v6only, &zero, zlen, d);
	if (d->d_verdict == POLICY_REFUSE && memcmp(ss, &zero, zlen) == 0) {
		*ss = zero; /* listen() would autobind where a bind is refused */
		*len = zlen;
		return 1;
	}
	/* Any failure (EINVAL: bound already; EADDRNOTAVAIL: its address is gone) leaves
	 * the socket as it was: what it holds is checked below, and after listen(). */
	(void)do_bind(fd, (const struct sockaddr *)&zero, zlen);
	*len = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, len) < 0)
		return -1;
	policy_check_bound(p, domain, v6only, ss, *len, d);
	if (d->d_verdict == POLICY_REFUSE)
		return 1;
	if (do_listen(fd, backlog) < 0)
		return -1;
	*len = sizeof(*ss);
	if (getsockname(fd, (struct sockaddr *)ss, len) < 0) {
		(void)shutdown(fd, SHUT_RDWR);
		return -1;
	}
	policy_check_bound(p, domain, v6only, ss, *len, d);
	if (d->d_verdict == POLICY_REFUSE) {
		(void)shutdown(fd, SHUT_RDWR); /* stops a TCP listener */
		return 1;
	}
	return 0;
}

static inline long policy_parse_port(const char *s, size_t n)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= 65535 ? v : -1;
}

/* Parses "1.2.3.4:80" or "[v6]:80" from s[0..n) into ep. Returns 0 or -1. */
static inline int policy_parse_ep(const char *s, size_t n, struct policy_ep *ep)
{
	char host[POLICY_ADDR_TEXT_MAX];
	size_t hlen, i;
	const char *port;
	long v;

	memset(ep, 0, sizeof(*ep));
	if (n == 0)
		return -1;
	if (s[0] == '[') {
		struct in6_addr a6;

		for (i = 1; i < n && s[i] != ']'; i++)
			;
		if (i >= n - 1 || s[i + 1] != ':')
			return -1;
		hlen = i - 1;
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return -1;
		port = s + i + 2;
		v = policy_parse_port(port, n - (size_t)(port - s));
		if (v < 0)
			return -1;
		policy_ep_from6(ep, &a6, (uint16_t)v);
		/* "[::ffff:0.0.0.0]" folds to AF_INET; "[::]" stays the dual-stack wildcard */
		return 0;
	}
	for (i = n; i > 0 && s[i - 1] != ':'; i--)
		;
	if (i == 0)
		return -1;
	hlen = i - 1;
	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, ep->ep_addr) != 1)
		return -1;
	v = policy_parse_port(s + i, n - i);
	if (v < 0)
		return -1;
	ep->ep_family = AF_INET;
	ep->ep_port = (uint16_t)v;
	return 0;
}

/*
 * Builds p from the two environment strings. ports: "8500,8501" (NULL: the
 * built-in default 8500,8501). allow: NULL for no --allow-bind, else a
 * comma-separated list of endpoints (may be empty: then only loopback binds are
 * allowed). Returns 0, or -1 on any malformed item (callers fail closed).
 */
static inline int policy_parse(struct policy *p, const char *ports, const char *allow)
{
	const char *s, *e;

	memset(p, 0, sizeof(*p));
	if (!ports)
		ports = POLICY_DEFAULT_PORTS;
	for (s = ports;; s = e + 1) {
		long v;

		for (e = s; *e && *e != ','; e++)
			;
		v = policy_parse_port(s, (size_t)(e - s));
		if (v < 0 || p->pol_nports == POLICY_PORTS_MAX)
			return -1;
		p->pol_ports[p->pol_nports++] = (uint16_t)v;
		if (!*e)
			break;
	}
	if (!allow)
		return 0;
	p->pol_restrict = true;
	if (!*allow)
		return 0;
	for (s = allow;; s = e + 1) {
		for (e = s; *e && *e != ','; e++)
			;
		if (p->pol_nallow == POLICY_ALLOW_MAX ||
		    policy_parse_ep(s, (size_t)(e - s), &p->pol_allow[p->pol_nallow]) < 0)
			return -1;
		p->pol_nallow++;
		if (!*e)
			break;
	}
	return 0;
}

/* Appends the decimal v to buf at *off (bounded, always NUL-terminated). */
static inline void policy_put_uint(char *buf, size_t len, size_t *off, unsigned long v)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < sizeof(tmp));
	while (n > 0 && *off + 1 < len)
		buf[(*off)++] = tmp[--n];
	buf[*off] = '\0';
}

static inline void policy_put_str(char *buf, size_t len, size_t *off, const char *s)
{
	while (*s && *off + 1 < len)
		buf[(*off)++] = *s++;
	buf[*off] = '\0';
}

/*
 * Formats a socket address as "1.2.3.4:80", "[::1]:80" or "(family N)" at
 * buf+*off, advancing *off. No stdio: usable inside the shim.
 */
static inline void policy_put_addr(char *buf, size_t len, size_t *off, const void *addr,
				   size_t alen)
{
	char host[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (alen > sizeof(ss))
		alen = sizeof(ss);
	if (addr && alen >= sizeof(sa_family_t))
		memcpy(&ss, addr, alen);
	if (ss.ss_family == AF_INET && alen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;

		if (!inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)))
			host[0] = '\0';
		policy_put_str(buf, len, off, host);
		policy_put_str(buf, len, off, ":");
		policy_put_uint(buf, len, off, ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6 && alen >= 24) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;

		if (!inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)))
			host[0] = '\0';
		policy_put_str(buf, len, off, "[");
		policy_put_str(buf, len, off, host);
		policy_put_str(buf, len, off, "]:");
		policy_put_uint(buf, len, off, ntohs(sin6->sin6_port));
	} else if (ss.ss_family == AF_UNSPEC && alen >= sizeof(struct sockaddr_in)) {
		policy_put_str(buf, len, off, "(AF_UNSPEC ");
		policy_put_uint(buf, len, off, ntohs(((const struct sockaddr_in *)&ss)->sin_port));
		policy_put_str(buf, len, off, ")");
	} else {
		policy_put_str(buf, len, off, "(family ");
		policy_put_uint(buf, len, off, ss.ss_family);
		policy_put_str(buf, len, off, ", length ");
		policy_put_uint(buf, len, off, alen);
		policy_put_str(buf, len, off, ")");
	}
}

/*
 * One log line for a decision, without the trailing newline:
 *   "bind 0.0.0.0:8501 -> 127.0.0.1:8501 (protected port ...)"
 *   "bind 10.0.0.1:8501 refused: Permission denied-style reason"
 * `what` is "bind" or "listen"; `orig`/`olen` the caller's (copied) address.
 */
static inline void policy_put_decision(char *buf, size_t len, size_t *off, const char *what,
				       const void *orig, size_t olen,
				       const struct policy_decision *d)
{
	policy_put_str(buf, len, off, what);
	policy_put_str(buf, len, off, " ");
	policy_put_addr(buf, len, off, orig, olen);
	if (d->d_verdict == POLICY_REFUSE) {
		policy_put_str(buf, len, off, " refused (");
		policy_put_str(buf, len, off, policy_reason_text(d->d_reason));
		policy_put_str(buf, len, off, d->d_errno == EACCES ? ", EACCES)" : ")");
		return;
	}
	policy_put_str(buf, len, off, " -> ");
	policy_put_addr(buf, len, off, &d->d_addr, d->d_len);
	policy_put_str(buf, len, off, " (");
	policy_put_str(buf, len, off, policy_reason_text(d->d_reason));
	policy_put_str(buf, len, off, ")");
}

#endif
