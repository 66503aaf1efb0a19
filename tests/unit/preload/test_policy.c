/*
 * Unit tests for preload/policy.h: the one bind decision shared by the shim and
 * the seccomp supervisor. Every family and case: wildcards, v4-mapped, v6-only,
 * loopback, port 0, short and long lengths, mismatched families, --allow-bind,
 * the environment parser and the log formatter.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/un.h>
#include <unistd.h>

#include "policy.h"
#include "tap.h"

static struct policy pol;

static void use(const char *ports, const char *allow)
{
	if (policy_parse(&pol, ports, allow) != 0) {
		printf("Bail out! policy_parse(%s, %s) failed\n", ports, allow ? allow : "NULL");
		_exit(1);
	}
}

static socklen_t mk(struct sockaddr_storage *ss, const char *host, unsigned port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

		s->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host, &s->sin6_addr) != 1)
			_exit(2);
		return sizeof(*s);
	}
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &s->sin_addr) != 1)
		_exit(2);
	return sizeof(*s);
}

/* The decision's address as "host:port" / "[host]:port" text. */
static const char *out_text(const struct policy_decision *d)
{
	static char buf[POLICY_ADDR_TEXT_MAX + 32];
	size_t off = 0;

	policy_put_addr(buf, sizeof(buf), &off, &d->d_addr, d->d_len);
	return buf;
}

/*
 * Decides bind(host:port) on a `domain` socket; checks verdict, errno (refuse)
 * and resulting address (allow/rewrite: "" = unchanged).
 */
static void expect(int domain, int v6only, const char *host, unsigned port,
		   enum policy_verdict verdict, int e, const char *want, const char *name)
{
	struct sockaddr_storage ss;
	struct policy_decision d;
	socklen_t len = mk(&ss, host, port);
	char orig[POLICY_ADDR_TEXT_MAX + 32];
	size_t off = 0;

	policy_put_addr(orig, sizeof(orig), &off, &ss, len);
	policy_decide(&pol, domain, v6only, &ss, len, &d);
	is_int(d.d_verdict, verdict, name);
	if (verdict == POLICY_REFUSE) {
		is_int(d.d_errno, e, name);
	} else if (verdict != POLICY_PASS) {
		is_str(out_text(&d), want && *want ? want : orig, name);
		if (verdict == POLICY_ALLOW)
			ok(d.d_len == len && memcmp(&d.d_addr, &ss, len) == 0, name);
	}
}

static void test_v4(void)
{
	subtest("AF_INET");
	use("8500,8501", NULL);
	expect(AF_INET, 0, "0.0.0.0", 8501, POLICY_REWRITE, 0, "127.0.0.1:8501",
	       "0.0.0.0:8501 -> 127.0.0.1:8501");
	expect(AF_INET, 0, "0.0.0.0", 8500, POLICY_REWRITE, 0, "127.0.0.1:8500",
	       "0.0.0.0:8500 -> 127.0.0.1:8500");
	expect(AF_INET, 0, "10.0.0.1", 8501, POLICY_REFUSE, EACCES, NULL,
	       "specific public address on a protected port: EACCES");
	expect(AF_INET, 0, "255.255.255.255", 8501, POLICY_REFUSE, EACCES, NULL,
	       "broadcast address on a protected port: EACCES");
	expect(AF_INET, 0, "127.0.0.1", 8501, POLICY_ALLOW, 0, "", "127.0.0.1:8501 allowed");
	expect(AF_INET, 0, "127.1.2.3", 8501, POLICY_ALLOW, 0, "",
	       "127.1.2.3:8501 allowed (all of 127/8 is loopback)");
	expect(AF_INET, 0, "0.0.0.0", 9000, POLICY_ALLOW, 0, "", "unprotected wildcard untouched");
	expect(AF_INET, 0, "10.0.0.1", 9000, POLICY_ALLOW, 0, "",
	       "unprotected specific address untouched");
	expect(AF_INET, 0, "0.0.0.0", 0, POLICY_ALLOW, 0, "", "port 0 wildcard untouched");
	expect(AF_INET, 0, "10.0.0.1", 0, POLICY_ALLOW, 0, "", "port 0 specific untouched");
	expect(AF_INET, 0, "0.0.0.0", 8502, POLICY_ALLOW, 0, "", "neighbouring port untouched");
}

static void test_v6(void)
{
	subtest("AF_INET6");
	use("8500,8501", NULL);
	expect(AF_INET6, 0, "::", 8501, POLICY_REWRITE, 0, "[::ffff:127.0.0.1]:8501",
	       "dual-stack [::] -> [::ffff:127.0.0.1]");
	expect(AF_INET6, 1, "::", 8501, POLICY_REWRITE, 0, "[::1]:8501", "v6-only [::] -> [::1]");
	expect(AF_INET6, 0, "::ffff:0.0.0.0", 8500, POLICY_REWRITE, 0, "[::ffff:127.0.0.1]:8500",
	       "v4-mapped wildcard -> [::ffff:127.0.0.1]");
	expect(AF_INET6, 1, "::ffff:0.0.0.0", 8500, POLICY_REWRITE, 0, "[::ffff:127.0.0.1]:8500",
	       "v4-mapped wildcard on a v6-only socket stays v4-mapped loopback");
	expect(AF_INET6, 0, "::1", 8501, POLICY_ALLOW, 0, "", "[::1]:8501 allowed");
	expect(AF_INET6, 0, "::ffff:127.0.0.1", 8501, POLICY_ALLOW, 0, "",
	       "[::ffff:127.0.0.1]:8501 allowed");
	expect(AF_INET6, 0, "::ffff:127.9.9.9", 8501, POLICY_ALLOW, 0, "",
	       "v4-mapped 127/8 allowed");
	expect(AF_INET6, 0, "::ffff:10.0.0.1", 8501, POLICY_REFUSE, EACCES, NULL,
	       "v4-mapped public address refused");
	expect(AF_INET6, 0, "2001:db8::1", 8501, POLICY_REFUSE, EACCES, NULL,
	       "global v6 address refused");
	expect(AF_INET6, 0, "fe80::1", 8500, POLICY_REFUSE, EACCES, NULL,
	       "link-local v6 address refused");
	expect(AF_INET6, 0, "::2", 8500, POLICY_REFUSE, EACCES, NULL,
	       "::2 is not loopback: refused");
	expect(AF_INET6, 0, "::ffff:0.0.0.1", 8500, POLICY_REFUSE, EACCES, NULL,
	       "::ffff:0.0.0.1 is not a wildcard: refused");
	expect(AF_INET6, 0, "::", 9000, POLICY_ALLOW, 0, "", "unprotected [::] untouched");
	expect(AF_INET6, 0, "::", 0, POLICY_ALLOW, 0, "", "port 0 [::] untouched");
}

/* listen() on a socket the kernel already bound (port-0 bind, autobind) */
static void expect_bound(int domain, int v6only, const char *host, unsigned port,
			 enum policy_verdict verdict, enum policy_reason reason, const char *name)
{
	struct sockaddr_storage ss;
	struct policy_decision d;
	socklen_t len = mk(&ss, host, port);

	policy_check_bound(&pol, domain, v6only, &ss, len, &d);
	is_int(d.d_verdict, verdict, name);
	is_int(d.d_reason, reason, name);
	if (verdict == POLICY_REFUSE)
		is_int(d.d_errno, EACCES, name);
}

static void test_check_bound(void)
{
	subtest("listen on a kernel-picked port");
	use("8500,8501", NULL);
	expect_bound(AF_INET, 0, "0.0.0.0", 8501, POLICY_REFUSE, POLICY_R_KERNEL_PORT,
		     "0.0.0.0:8501 picked by the kernel: refused");
	expect_bound(AF_INET6, 0, "::", 8500, POLICY_REFUSE, POLICY_R_KERNEL_PORT,
		     "[::]:8500 dual-stack picked by the kernel: refused");
	expect_bound(AF_INET6, 1, "::", 8500, POLICY_REFUSE, POLICY_R_KERNEL_PORT,
		     "[::]:8500 v6-only picked by the kernel: refused");
	expect_bound(AF_INET, 0, "10.0.0.1", 8501, POLICY_REFUSE, POLICY_R_PROTECTED_PUBLIC,
		     "10.0.0.1:8501 picked by the kernel: refused");
	expect_bound(AF_INET, 0, "127.0.0.1", 8501, POLICY_ALLOW, POLICY_R_LOOPBACK,
		     "127.0.0.1:8501 listens");
	expect_bound(AF_INET6, 0, "::ffff:127.0.0.1", 8501, POLICY_ALLOW, POLICY_R_LOOPBACK,
		     "[::ffff:127.0.0.1]:8501 listens");
	expect_bound(AF_INET, 0, "0.0.0.0", 40000, POLICY_ALLOW, POLICY_R_UNPROTECTED,
		     "0.0.0.0:40000 listens");
	expect_bound(AF_INET, 0, "0.0.0.0", 0, POLICY_REFUSE, POLICY_R_PORT_UNSEEN,
		     "0.0.0.0 without a port (IP_BIND_ADDRESS_NO_PORT): refused");
	expect_bound(AF_INET6, 0, "::", 0, POLICY_REFUSE, POLICY_R_PORT_UNSEEN,
		     "[::] without a port: refused");
	expect_bound(AF_INET, 0, "10.0.0.1", 0, POLICY_REFUSE, POLICY_R_PORT_UNSEEN,
		     "10.0.0.1 without a port: refused");
	expect_bound(AF_INET, 0, "127.0.0.1", 0, POLICY_ALLOW, POLICY_R_LOOPBACK,
		     "127.0.0.1 without a port: listens (loopback, any port)");
	expect_bound(AF_INET6, 0, "::1", 0, POLICY_ALLOW, POLICY_R_LOOPBACK,
		     "[::1] without a port: listens");
	ok(strstr(policy_reason_text(POLICY_R_KERNEL_PORT), "ip_local_port_range") != NULL,
	   "the reason names ip_local_port_range");
}

static void test_rewrite_shape(void)
{
	struct sockaddr_storage ss;
	struct policy_decision d;
	struct sockaddr_in6 *o6 = (struct sockaddr_in6 *)&d.d_addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	subtest("rewritten addresses are complete and clean");
	use("8501", NULL);
	mk(&ss, "::", 8501);
	in6->sin6_flowinfo = htonl(0x12345);
	in6->sin6_scope_id = 7;
	policy_decide(&pol, AF_INET6, 1, &ss, sizeof(*in6), &d);
	is_int(d.d_len, sizeof(struct sockaddr_in6), "v6 rewrite length is sizeof(sockaddr_in6)");
	is_int(o6->sin6_scope_id, 0, "scope id cleared");
	is_int(o6->sin6_flowinfo, 0, "flow info cleared");
	is_int(ntohs(o6->sin6_port), 8501, "port kept");
	mk(&ss, "0.0.0.0", 8501);
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(struct sockaddr_in), &d);
	is_int(d.d_len, sizeof(struct sockaddr_in), "v4 rewrite length is sizeof(sockaddr_in)");
	is_int(d.d_orig.ep_port, 8501, "original port recorded");
	ok(d.d_orig.ep_family == AF_INET && policy_ep_wildcard(&d.d_orig),
	   "original endpoint recorded as the v4 wildcard");
}

static void test_bad_input(void)
{
	struct sockaddr_storage ss;
	struct policy_decision d;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	subtest("lengths and families as the kernel checks them");
	use("8500,8501", NULL);
	mk(&ss, "0.0.0.0", 8501);
	policy_decide(&pol, AF_INET, 0, &ss, 15, &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EINVAL, "AF_INET addrlen 15: EINVAL");
	policy_decide(&pol, AF_INET, 0, &ss, 0, &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EINVAL, "AF_INET addrlen 0: EINVAL");
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(ss) + 1, &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EINVAL,
	   "addrlen beyond sockaddr_storage: EINVAL");
	policy_decide(&pol, AF_INET, 0, NULL, 16, &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EFAULT, "NULL address: EFAULT");
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(ss), &d);
	is_int(d.d_verdict, POLICY_REWRITE, "AF_INET with a sockaddr_storage-sized length works");

	mk(&ss, "0.0.0.0", 8501);
	s4->sin_family = AF_UNSPEC;
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(*s4), &d);
	is_int(d.d_verdict, POLICY_REWRITE, "AF_UNSPEC + INADDR_ANY binds 0.0.0.0: rewritten");
	is_int(d.d_addr.ss_family, AF_INET, "AF_UNSPEC rewrite yields AF_INET");
	is_str(out_text(&d), "127.0.0.1:8501", "AF_UNSPEC wildcard -> 127.0.0.1:8501");
	s4->sin_port = htons(9000);
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(*s4), &d);
	is_int(d.d_verdict, POLICY_ALLOW, "AF_UNSPEC wildcard on an unprotected port: allowed");
	mk(&ss, "10.0.0.1", 8501);
	s4->sin_family = AF_UNSPEC;
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(*s4), &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EAFNOSUPPORT,
	   "AF_UNSPEC with an address: EAFNOSUPPORT");
	mk(&ss, "::", 8501);
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(struct sockaddr_in6), &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EAFNOSUPPORT,
	   "AF_INET6 address on an AF_INET socket: EAFNOSUPPORT");
	mk(&ss, "0.0.0.0", 8501);
	ss.ss_family = AF_UNIX;
	policy_decide(&pol, AF_INET, 0, &ss, sizeof(struct sockaddr_in), &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EAFNOSUPPORT,
	   "bad family on an AF_INET socket: EAFNOSUPPORT");

	mk(&ss, "::", 8501);
	policy_decide(&pol, AF_INET6, 0, &ss, 24, &d);
	is_int(d.d_verdict, POLICY_REWRITE, "AF_INET6 addrlen 24 (RFC 2133, no scope id) accepted");
	policy_decide(&pol, AF_INET6, 0, &ss, 23, &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EINVAL, "AF_INET6 addrlen 23: EINVAL");
	policy_decide(&pol, AF_INET6, 0, &ss, 16, &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EINVAL, "AF_INET6 addrlen 16: EINVAL");
	mk(&ss, "0.0.0.0", 8501);
	policy_decide(&pol, AF_INET6, 0, &ss, sizeof(struct sockaddr_in6), &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EAFNOSUPPORT,
	   "AF_INET address on an AF_INET6 socket: EAFNOSUPPORT");
	mk(&ss, "::", 8501);
	ss.ss_family = AF_UNSPEC;
	policy_decide(&pol, AF_INET6, 0, &ss, sizeof(struct sockaddr_in6), &d);
	ok(d.d_verdict == POLICY_REFUSE && d.d_errno == EAFNOSUPPORT,
	   "AF_UNSPEC on an AF_INET6 socket: EAFNOSUPPORT (no compat rule there)");
}

static void test_other_families(void)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX, .sun_path = "/tmp/x" };
	struct policy_decision d;

	subtest("non-inet sockets pass untouched");
	use("8500,8501", NULL);
	policy_decide(&pol, AF_UNIX, 0, &un, sizeof(un), &d);
	ok(d.d_verdict == POLICY_PASS && d.d_reason == POLICY_R_NOT_INET, "AF_UNIX passes");
	policy_decide(&pol, AF_NETLINK, 0, &un, 12, &d);
	is_int(d.d_verdict, POLICY_PASS, "AF_NETLINK passes");
	policy_decide(&pol, AF_UNIX, 0, NULL, 0, &d);
	is_int(d.d_verdict, POLICY_PASS, "AF_UNIX with no address passes (kernel decides)");
	policy_decide(&pol, AF_PACKET, 0, &un, 20, &d);
	is_int(d.d_verdict, POLICY_PASS, "AF_PACKET passes the policy (seccomp denies the socket)");
}

static void test_restrict(void)
{
	subtest("--allow-bind");
	use("8500,8501", "0.0.0.0:8443");
	expect(AF_INET, 0, "0.0.0.0", 8443, POLICY_ALLOW, 0, "", "listed 0.0.0.0:8443 allowed");
	expect(AF_INET, 0, "10.0.0.1", 8443, POLICY_ALLOW, 0, "",
	       "wildcard entry covers a specific v4 address on its port");
	expect(AF_INET6, 0, "::ffff:0.0.0.0", 8443, POLICY_ALLOW, 0, "",
	       "v4-mapped wildcard is the v4 wildcard: allowed");
	expect(AF_INET, 0, "0.0.0.0", 9000, POLICY_REFUSE, EACCES, NULL, "0.0.0.0:9000 refused");
	expect(AF_INET, 0, "0.0.0.0", 0, POLICY_REFUSE, EACCES, NULL,
	       "port 0 on a public address refused (listen would expose it)");
	expect(AF_INET6, 0, "::", 8443, POLICY_REFUSE, EACCES, NULL,
	       "v4 entry does not allow a dual-stack [::]");
	expect(AF_INET, 0, "127.0.0.1", 9000, POLICY_ALLOW, 0, "", "loopback still allowed");
	expect(AF_INET6, 1, "::1", 9000, POLICY_ALLOW, 0, "", "[::1] still allowed");
	expect(AF_INET, 0, "0.0.0.0", 8501, POLICY_REWRITE, 0, "127.0.0.1:8501",
	       "protected wildcard still rewritten");
	expect(AF_INET, 0, "10.0.0.1", 8501, POLICY_REFUSE, EACCES, NULL,
	       "protected public still refused");

	use("8500,8501", "[::]:443,10.0.0.1:8443,[2001:db8::5]:9443");
	expect(AF_INET6, 0, "::", 443, POLICY_ALLOW, 0, "", "[::]:443 allowed");
	expect(AF_INET, 0, "0.0.0.0", 443, POLICY_ALLOW, 0, "",
	       "[::] entry includes IPv4 (dual-stack)");
	expect(AF_INET6, 0, "2001:db8::7", 443, POLICY_ALLOW, 0, "",
	       "[::] entry covers specific v6 addresses");
	expect(AF_INET, 0, "10.0.0.1", 8443, POLICY_ALLOW, 0, "", "exact v4 entry allowed");
	expect(AF_INET, 0, "10.0.0.2", 8443, POLICY_REFUSE, EACCES, NULL,
	       "other address on an exact entry's port refused");
	expect(AF_INET, 0, "0.0.0.0", 8443, POLICY_REFUSE, EACCES, NULL,
	       "an exact entry does not allow the wildcard");
	expect(AF_INET6, 0, "::ffff:10.0.0.1", 8443, POLICY_ALLOW, 0, "",
	       "v4-mapped form of an exact v4 entry allowed");
	expect(AF_INET6, 0, "2001:db8::5", 9443, POLICY_ALLOW, 0, "", "exact v6 entry allowed");
	expect(AF_INET6, 0, "2001:db8::6", 9443, POLICY_REFUSE, EACCES, NULL,
	       "neighbouring v6 address refused");

	use("8500,8501", "");
	expect(AF_INET, 0, "0.0.0.0", 9000, POLICY_REFUSE, EACCES, NULL,
	       "empty allow list: restrict mode, everything public refused");
	expect(AF_INET, 0, "127.0.0.1", 9000, POLICY_ALLOW, 0, "",
	       "empty allow list: loopback allowed");
}

static void test_parse(void)
{
	struct policy p;
	char many[POLICY_PORTS_MAX * 6 + 16];
	char allow[POLICY_ALLOW_MAX * 20 + 32];
	size_t off = 0;
	int i;

	subtest("policy_parse");
	ok(policy_parse(&p, NULL, NULL) == 0 && p.pol_nports == 2 && p.pol_ports[0] == 8500 &&
	       p.pol_ports[1] == 8501 && !p.pol_restrict,
	   "no environment: default ports 8500,8501, no restriction");
	ok(policy_parse(&p, "1,65535", NULL) == 0 && p.pol_nports == 2, "1 and 65535 valid");
	ok(policy_parse(&p, "", NULL) < 0, "empty port list rejected");
	ok(policy_parse(&p, "0", NULL) < 0, "port 0 rejected");
	ok(policy_parse(&p, "65536", NULL) < 0, "port 65536 rejected");
	ok(policy_parse(&p, "123456", NULL) < 0, "six digits rejected");
	ok(policy_parse(&p, "85a0", NULL) < 0, "non-digit rejected");
	ok(policy_parse(&p, "8500,", NULL) < 0, "trailing comma rejected");
	ok(policy_parse(&p, ",8500", NULL) < 0, "leading comma rejected");
	ok(policy_parse(&p, " 8500", NULL) < 0, "spaces rejected");
	ok(policy_parse(&p, "-1", NULL) < 0, "negative rejected");
	for (i = 0; i < POLICY_PORTS_MAX; i++)
		policy_put_uint(many, sizeof(many), &off, 1000u + (unsigned)i),
		    policy_put_str(many, sizeof(many), &off, ",");
	many[off - 1] = '\0';
	ok(policy_parse(&p, many, NULL) == 0 && p.pol_nports == POLICY_PORTS_MAX,
	   "64 ports accepted");
	off--;
	policy_put_str(many, sizeof(many), &off, ",2000");
	ok(policy_parse(&p, many, NULL) < 0, "65 ports rejected");

	ok(policy_parse(&p, NULL, "") == 0 && p.pol_restrict && p.pol_nallow == 0,
	   "empty allow list: restrict mode");
	ok(policy_parse(&p, NULL, "0.0.0.0:8443,[::1]:443") == 0 && p.pol_nallow == 2 &&
	       p.pol_allow[0].ep_family == AF_INET && p.pol_allow[0].ep_port == 8443 &&
	       p.pol_allow[1].ep_family == AF_INET6 && p.pol_allow[1].ep_port == 443,
	   "two entries parsed");
	ok(policy_parse(&p, NULL, "[::ffff:0.0.0.0]:443") == 0 &&
	       p.pol_allow[0].ep_family == AF_INET,
	   "v4-mapped entry folded to AF_INET");
	ok(policy_parse(&p, NULL, "1.2.3.4") < 0, "entry without port rejected");
	ok(policy_parse(&p, NULL, "1.2.3.4:0") < 0, "entry with port 0 rejected");
	ok(policy_parse(&p, NULL, "1.2.3.4:") < 0, "entry with empty port rejected");
	ok(policy_parse(&p, NULL, "[::1:80") < 0, "unclosed bracket rejected");
	ok(policy_parse(&p, NULL, "[::1]80") < 0, "bracket without colon rejected");
	ok(policy_parse(&p, NULL, "[]:80") < 0, "empty v6 host rejected");
	ok(policy_parse(&p, NULL, "::1:80") < 0, "unbracketed v6 rejected");
	ok(policy_parse(&p, NULL, "localhost:80") < 0, "host names rejected");
	ok(policy_parse(&p, NULL, ":80") < 0, "empty v4 host rejected");
	ok(policy_parse(&p, NULL, "1.2.3.4:80,") < 0, "trailing comma rejected");
	off = 0;
	allow[0] = '\0';
	for (i = 0; i < POLICY_ALLOW_MAX; i++) {
		policy_put_str(allow, sizeof(allow), &off, i ? ",10.0.0.1:" : "10.0.0.1:");
		policy_put_uint(allow, sizeof(allow), &off, 1000u + (unsigned)i);
	}
	ok(policy_parse(&p, NULL, allow) == 0 && p.pol_nallow == POLICY_ALLOW_MAX,
	   "16 entries accepted");
	policy_put_str(allow, sizeof(allow), &off, ",10.0.0.1:99");
	ok(policy_parse(&p, NULL, allow) < 0, "17 entries rejected");
}

static void test_format(void)
{
	struct sockaddr_storage ss;
	struct policy_decision d;
	socklen_t len;
	char buf[256], tiny[12];
	size_t off = 0;

	subtest("log lines");
	use("8501", NULL);
	len = mk(&ss, "0.0.0.0", 8501);
	policy_decide(&pol, AF_INET, 0, &ss, len, &d);
	policy_put_decision(buf, sizeof(buf), &off, "bind", &ss, len, &d);
	is_str(buf,
	       "bind 0.0.0.0:8501 -> 127.0.0.1:8501 (protected port on a wildcard address, moved "
	       "to loopback)",
	       "rewrite line");
	off = 0;
	len = mk(&ss, "2001:db8::1", 8501);
	policy_decide(&pol, AF_INET6, 0, &ss, len, &d);
	policy_put_decision(buf, sizeof(buf), &off, "bind", &ss, len, &d);
	is_str(buf,
	       "bind [2001:db8::1]:8501 refused (protected port on a non-loopback address, EACCES)",
	       "refusal line");
	off = 0;
	policy_put_decision(tiny, sizeof(tiny), &off, "bind", &ss, len, &d);
	ok(off < sizeof(tiny) && strlen(tiny) == sizeof(tiny) - 1,
	   "small buffer: truncated, terminated, no overflow");
	off = 0;
	policy_put_addr(buf, sizeof(buf), &off, &ss, 3);
	is_str(buf, "(family 10, length 3)", "short address formatted safely");
}

/*
 * The decision reads no byte beyond addrlen: each input ends exactly at a
 * PROT_NONE page, so an over-read crashes even without ASan.
 */
static void test_guard_page(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned char *m;
	struct sockaddr_storage ss;
	struct policy_decision d;

	subtest("no over-read past addrlen");
	m = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m + pg, (size_t)pg, PROT_NONE) < 0) {
		ok(0, "guard page");
		return;
	}
	mk(&ss, "0.0.0.0", 8501);
	memcpy(m + pg - 16, &ss, 16);
	policy_decide(&pol, AF_INET, 0, m + pg - 16, 16, &d);
	is_int(d.d_verdict, POLICY_REWRITE, "16-byte sockaddr_in at a page end");
	mk(&ss, "::", 8501);
	memcpy(m + pg - 24, &ss, 24);
	policy_decide(&pol, AF_INET6, 0, m + pg - 24, 24, &d);
	is_int(d.d_verdict, POLICY_REWRITE, "24-byte sockaddr_in6 at a page end");
	mk(&ss, "::1", 9000);
	memcpy(m + pg - 24, &ss, 24);
	policy_decide(&pol, AF_INET6, 0, m + pg - 24, 24, &d);
	ok(d.d_verdict == POLICY_ALLOW && d.d_len == 24, "allowed 24-byte copy keeps its length");
	munmap(m, (size_t)pg * 2);
}

int main(void)
{
	test_v4();
	test_v6();
	test_check_bound();
	test_rewrite_shape();
	test_bad_input();
	test_other_families();
	test_restrict();
	test_parse();
	test_format();
	test_guard_page();
	return done_testing();
}
