/* tfguard check: the compliance audit (controls in check.h, evidence from the kernel). */
#include <arpa/inet.h>
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "check.h"
#include "cmd.h"
#include "fw.h"
#include "sockdiag.h"
#include "str.h"
#include "tlsprobe.h"
#include "token.h"

#define CK_DNAT_MAX 32

struct ck_ctx {
	struct conf *x_conf;
	struct fw_policy x_pol;
	struct fw_state x_fw;
	bool x_fw_ok;
	int x_fw_errno;
	char x_fw_err[256];
	struct sockdiag_result x_sd;
	bool x_sd_ok;
	char x_sd_err[256];
	const char *x_netns; /* comma list of namespace names to inspect, or NULL for all */
};

enum {
	CK_FW_PRESENT,
	CK_FW_CURRENT,
	CK_FW_RULES,
	CK_FW_DNAT,
	CK_NET_LISTEN,
	CK_NET_LOCALNET,
	CK_RUN_WRAPPED,
	CK_AUTH_FILE,
	CK_AUTH_SCHEMES,
	CK_AUTH_CA,
	CK_AUTH_TOKFILE,
	CK_AUTH_TOKAGE,
	CK_LIMITS,
	CK_TLS_KEY,
	CK_TLS_MATCH,
	CK_TLS_EXPIRY,
	CK_PROXY,
	CK_COUNT
};

static const struct {
	const char *id, *title, *remedy;
} ck_defs[CK_COUNT] = {
	[CK_FW_PRESENT] = { "FW-1", "tfguard firewall table is installed",
			    "run: tfguard apply (and enable tfguard-apply.service)" },
	[CK_FW_CURRENT] = { "FW-2", "installed firewall matches the config (policy digest)",
			    "run: tfguard apply" },
	[CK_FW_RULES] = { "FW-3", "installed rules are exactly the policy's rules",
			  "someone changed table inet tfguard: run tfguard apply, then find out "
			  "who" },
	[CK_FW_DNAT] = { "FW-4", "traffic DNATed onto a protected port is dropped",
			 "run: tfguard apply (the forward chain drops DNAT onto protected ports)" },
	[CK_NET_LISTEN] = { "NET-1",
			    "no listener on a protected port on a non-loopback address, in any "
			    "network namespace",
			    "start the server under tfguard-run, or bind it to 127.0.0.1/::1" },
	[CK_NET_LOCALNET] = { "NET-2", "route_localnet is off (127.0.0.0/8 not routable)",
			      "sysctl -w net.ipv4.conf.all.route_localnet=0 (and per interface); "
			      "the firewall drops it meanwhile" },
	[CK_RUN_WRAPPED] = { "RUN-1", "servers on protected ports run under tfguard-run",
			     "launch them as: tfguard-run -- SERVER ARGS..." },
	[CK_AUTH_FILE] = { "AUTH-1",
			   "htpasswd file exists, owned by root or the proxy user, not "
			   "world-readable",
			   "chown root:tfguard FILE && chmod 0640 FILE" },
	[CK_AUTH_SCHEMES] = { "AUTH-2",
			      "htpasswd entries use strong hashes (bcrypt cost >= 10, "
			      "SHA-crypt, yescrypt)",
			      "reset those users with: tfguard passwd USER (bcrypt, cost 12)" },
	[CK_AUTH_CA] = { "AUTH-3",
			 "client CA (mTLS) readable and valid for more than 30 days; a CRL for "
			 "each CA, none past its nextUpdate",
			 "renew the client CA (or the CRL: openssl ca -gencrl), then: systemctl "
			 "reload tfguard-proxy" },
	[CK_AUTH_TOKFILE] = { "AUTH-4",
			      "token file exists, owned by root or the proxy user, not readable "
			      "or writable by others",
			      "chown root:tfguard FILE && chmod 0640 FILE" },
	[CK_AUTH_TOKAGE] = { "AUTH-5", "API tokens are younger than token_max_age",
			     "rotate them: tfguard token new USER, move the client, tfguard "
			     "token revoke --hash HASHPREFIX" },
	[CK_LIMITS] = { "LIM-1", "request limits are configured for the proxy",
			"set [limits] default = RATE and client = RATE in the config" },
	[CK_TLS_KEY] = { "TLS-1",
			 "TLS private key is owned by root or the proxy user and not "
			 "readable by others",
			 "chown root:tfguard KEY && chmod 0640 KEY" },
	[CK_TLS_MATCH] = { "TLS-2", "TLS private key matches the certificate",
			   "install the key that belongs to the certificate (or reissue both)" },
	[CK_TLS_EXPIRY] = { "TLS-3", "TLS certificate valid for more than 30 days",
			    "renew the certificate, then: systemctl reload tfguard-proxy" },
	[CK_PROXY] = { "PROXY-1",
		       "tfguard-proxy listens where configured, completes a TLS "
		       "handshake and answers 401 without credentials",
		       "start tfguard-proxy (systemctl start tfguard-proxy) and check its log" },
};

/* Whether name is one of the comma list's names. */
static bool ck_netns_listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (*list) {
		const char *e = strchr(list, ',');
		size_t len = e ? (size_t)(e - list) : strlen(list);

		if (len == n && strncmp(list, name, n) == 0)
			return true;
		if (!e)
			break;
		list = e + 1;
	}
	return false;
}

/* Whether namespace name is audited: all without --netns; with it, the names it
 * lists and always the audit's own namespace (whose firewall FW-* judge). */
static bool ck_netns_selected(const struct ck_ctx *x, const char *name)
{
	return !x->x_netns || strcmp(name, x->x_sd.r_self) == 0 ||
	       ck_netns_listed(x->x_netns, name);
}

/* The first name of --netns that names no namespace found, into bad; false if none. */
static bool ck_netns_unknown(const struct ck_ctx *x, char *bad, size_t badlen)
{
	const char *p = x->x_netns;

	while (p && *p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p), i;
		bool found = false;

		for (i = 0; i < x->x_sd.r_nns && !found; i++)
			found = strlen(x->x_sd.r_ns[i].ns_name) == len &&
				strncmp(x->x_sd.r_ns[i].ns_name, p, len) == 0;
		if (!found) {
			snprintf(bad, badlen, "%.*s", (int)len, p);
			return true;
		}
		p = e ? e + 1 : NULL;
	}
	return false;
}

/* sockdiag's fw_here: whether table inet tfguard exists in the current namespace. */
static int ck_fw_here(void)
{
	struct fw_state st;
	char err[256];

	if (fw_read(NULL, &st, err, sizeof(err)) < 0)
		return -1;
	return st.fs_present;
}

static void ck_needs_fw(struct ck_ctx *x, struct check_control *c)
{
	c->cc_status = CHECK_SKIP;
	check_evidence(c, "%s%s", x->x_fw_err,
		       x->x_fw_errno == EPERM ? " (skipped: needs root)" : "");
}

static void ck_fw(struct ck_ctx *x, struct check_control *cc)
{
	struct fw_state *st = &x->x_fw;
	struct check_control *c;
	struct fw_dnat dn[CK_DNAT_MAX];
	char err[256], ports[PORTS_MAX * 7];
	bool coverage = false, cov_fwd = false, cov_in = false;
	int n, i;
	size_t r;

	if (!x->x_fw_ok) {
		for (i = CK_FW_PRESENT; i <= CK_FW_DNAT; i++)
			ck_needs_fw(x, &cc[i]);
		return;
	}
	c = &cc[CK_FW_PRESENT];
	if (!st->fs_present) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "no table inet tfguard in this network namespace");
		for (i = CK_FW_CURRENT; i <= CK_FW_RULES; i++) {
			cc[i].cc_status = CHECK_FAIL;
			check_evidence(&cc[i], "no table inet tfguard");
		}
	} else {
		check_evidence(c, "table inet tfguard: \"%s\" (ruleset generation %u)",
			       st->fs_comment, st->fs_genid);
		check_evidence(c, "protected ports in the kernel: %s",
			       ports_format(&st->fs_ports, ports, sizeof(ports)));

		c = &cc[CK_FW_CURRENT];
		check_evidence(c, "installed policy %s, config %s (%s)",
			       st->fs_digest[0] ? st->fs_digest : "(none)", x->x_pol.fp_digest,
			       x->x_conf->c_path);
		c->cc_status =
		    strcmp(st->fs_digest, x->x_pol.fp_digest) == 0 ? CHECK_PASS : CHECK_FAIL;

		c = &cc[CK_FW_RULES];
		if (st->fs_match) {
			check_evidence(
			    c,
			    "chains, set and %zu rules compared expression by expression: "
			    "equal",
			    st->fs_nrules);
		} else {
			c->cc_status = CHECK_FAIL;
			check_evidence(c, "%s", st->fs_mismatch);
		}
		for (r = 0; r < st->fs_nrules; r++) {
			const struct fw_rule_state *rs = &st->fs_rules[r];

			/* judged on the two NAT rules alone: FW-3 reports the others */
			if (!rs->rs_match || strcmp(rs->rs_verdict, "drop") != 0)
				continue;
			if (strcmp(rs->rs_chain, FW_CHAIN_FWD) == 0 &&
			    strstr(rs->rs_comment, "DNAT"))
				cov_fwd = true;
			if (strcmp(rs->rs_chain, FW_CHAIN_IN) == 0 && strstr(rs->rs_comment, "NAT"))
				cov_in = true;
		}
		coverage = cov_fwd && cov_in;
	}

	c = &cc[CK_FW_DNAT];
	n = fw_scan_dnat(&x->x_pol.fp_ports, dn, CK_DNAT_MAX, err, sizeof(err));
	if (n < 0) {
		c->cc_status = CHECK_SKIP;
		check_evidence(c, "%s", err);
		return;
	}
	for (i = 0; i < n; i++)
		check_evidence(c, "%s %s chain %s (handle %llu): %s %s port %u: %s", dn[i].d_family,
			       dn[i].d_table, dn[i].d_chain, (unsigned long long)dn[i].d_handle,
			       dn[i].d_kind, dn[i].d_to_port ? "onto" : "keeping", dn[i].d_port,
			       coverage ? "covered (input/forward chains drop it)" : "NOT covered");
	if (n == 0)
		check_evidence(c, "no nft-native DNAT onto a protected port in other tables");
	if (coverage)
		check_evidence(c,
			       "the forward chain drops DNAT onto protected ports, the input chain "
			       "drops NAT onto the host's own");
	else
		c->cc_status = CHECK_FAIL;
	if (!coverage && n == 0)
		check_evidence(c, "the DNAT drop rule of table inet tfguard is missing or altered");
}

/* The tfguard-run executables a listener's ancestry may show: next to this
 * tfguard (a build or an install) and the configured install path. */
static void ck_run_paths(char paths[2][512])
{
	char self[512];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	paths[0][0] = paths[1][0] = '\0';
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			*slash = '\0';
			snprintf(paths[0], sizeof(paths[0]), "%.490s/tfguard-run", self);
			/* installed: tfguard in sbin, tfguard-run in bin */
			if ((slash = strrchr(self, '/')))
				snprintf(paths[1], sizeof(paths[1]), "%.*s/bin/tfguard-run",
					 (int)(slash - self), self);
		}
	}
}

/*
 * Namespaces (of those audited) whose listeners could not be read: NET-1 cannot pass
 * then, it is skipped (the verdict INCOMPLETE), unless a public listener found
 * elsewhere already failed it.
 */
static void ck_listeners_unseen(const struct ck_ctx *x, struct check_control *c)
{
	size_t i, unseen = 0;

	for (i = 0; i < x->x_sd.r_nns; i++) {
		const struct sockdiag_netns *n = &x->x_sd.r_ns[i];

		if (n->ns_ok || !ck_netns_selected(x, n->ns_name))
			continue;
		if (++unseen <= 8)
			check_evidence(c, "netns %s: NOT inspected: %s", n->ns_name, n->ns_why);
	}
	if (unseen > 8)
		check_evidence(c, "... and %zu more namespaces not inspected", unseen - 8);
	if (x->x_sd.r_truncated)
		check_evidence(c,
			       "more namespaces than the audit can hold: the rest were not seen");
	if ((unseen || x->x_sd.r_truncated) && c->cc_status != CHECK_FAIL) {
		c->cc_status = CHECK_SKIP;
		check_evidence(c, "a listener there would not be seen: the host is not shown "
				  "to be clean (skipped)");
	}
}

static void ck_listeners(struct ck_ctx *x, struct check_control *cc)
{
	struct check_control *c = &cc[CK_NET_LISTEN], *w = &cc[CK_RUN_WRAPPED];
	size_t i, seen = 0, protected_ = 0, unwrapped = 0;
	char a[ADDR_TEXT_MAX], paths[2][512];
	const char *exes[2];

	if (!x->x_sd_ok) {
		c->cc_status = w->cc_status = CHECK_SKIP;
		check_evidence(c, "%s", x->x_sd_err);
		check_evidence(w, "%s", x->x_sd_err);
		return;
	}
	ck_run_paths(paths);
	exes[0] = paths[0];
	exes[1] = paths[1];
	for (i = 0; i < x->x_sd.r_count; i++) {
		const struct sockdiag_listener *l = &x->x_sd.r_list[i];

		if (!ck_netns_selected(x, l->l_netns_name))
			continue;
		seen++;
		if (!ports_contains(&x->x_pol.fp_ports, sockdiag_port(l)))
			continue;
		protected_++;
		addr_format((const struct sockaddr *)&l->l_addr, a, sizeof(a));
		if (sockdiag_is_public(l)) {
			c->cc_status = CHECK_FAIL;
			check_evidence(
			    c, "netns %s: %s%s listens, pid %d (%s), uid %u", l->l_netns_name, a,
			    l->l_addr.ss_family == AF_INET6 && !l->l_v6only ? " (dual-stack)" : "",
			    (int)l->l_pid, l->l_pid ? l->l_comm : "no process found", l->l_uid);
		}
		if (!l->l_pid) {
			unwrapped++;
			w->cc_status = CHECK_WARN;
			check_evidence(w,
				       "netns %s: %s: no process holds it (passed away or hidden)",
				       l->l_netns_name, a);
		} else if (!sockdiag_under_run(l->l_pid, exes, 2)) {
			unwrapped++;
			w->cc_status = CHECK_WARN;
			check_evidence(w, "netns %s: %s pid %d (%s) is not under tfguard-run",
				       l->l_netns_name, a, (int)l->l_pid, l->l_comm);
		}
	}
	if (x->x_netns && ck_netns_listed(x->x_netns, x->x_sd.r_self))
		check_evidence(c,
			       "%zu TCP listeners in the namespaces named by --netns (%s), %zu on "
			       "protected ports",
			       seen, x->x_netns, protected_);
	else if (x->x_netns)
		check_evidence(c,
			       "%zu TCP listeners in the namespaces named by --netns (%s) and this "
			       "one (%s), %zu on protected ports",
			       seen, x->x_netns, x->x_sd.r_self, protected_);
	else
		check_evidence(c,
			       "%zu TCP listeners in %zu network namespaces inspected, %zu on "
			       "protected ports",
			       seen, x->x_sd.r_netns, protected_);
	ck_listeners_unseen(x, c);
	if (x->x_sd.r_partial)
		check_evidence(c, "some processes were not visible (run as root for a full view)");
	if (x->x_sd.r_netns == 0) {
		w->cc_status = CHECK_SKIP;
		check_evidence(w, "no namespace could be inspected");
	} else if (protected_ && !unwrapped) {
		check_evidence(w,
			       "%zu listeners on protected ports, all under tfguard-run (seccomp "
			       "filter and a tfguard-run ancestor)",
			       protected_);
	} else if (!protected_) {
		check_evidence(w, "no listener on a protected port");
	}
}

static void ck_localnet(struct ck_ctx *x, struct check_control *c)
{
	bool covered = x->x_fw_ok && x->x_fw.fs_present && x->x_fw.fs_match;
	size_t i, n = 0;

	if (!x->x_sd_ok) {
		c->cc_status = CHECK_SKIP;
		check_evidence(c, "%s", x->x_sd_err);
		return;
	}
	for (i = 0; i < x->x_sd.r_nlocalnet; i++) {
		const struct sockdiag_localnet *ln = &x->x_sd.r_localnet[i];
		bool self = strcmp(ln->ln_netns, x->x_sd.r_self) == 0;

		if (!ck_netns_selected(x, ln->ln_netns))
			continue;
		n++;
		/* here FW-* read the firewall; elsewhere sockdiag asked inside the namespace */
		if (self)
			check_evidence(c, "netns %s: net.ipv4.conf.%s.route_localnet = 1%s",
				       ln->ln_netns, ln->ln_ifname,
				       covered ? " (covered: the tfguard firewall here drops it)"
					       : " (and no tfguard firewall here)");
		else
			check_evidence(c, "netns %s: net.ipv4.conf.%s.route_localnet = 1%s",
				       ln->ln_netns, ln->ln_ifname,
				       ln->ln_fw == 1	? " (a tfguard table is there)"
				       : ln->ln_fw == 0 ? " (and no tfguard table there)"
							: " (its firewall could not be read)");
		if (self ? !covered : ln->ln_fw != 1)
			c->cc_status = CHECK_FAIL;
		else if (c->cc_status == CHECK_PASS)
			c->cc_status = CHECK_WARN;
	}
	if (!n)
		check_evidence(c,
			       "route_localnet = 0 on every interface of the %zu namespaces "
			       "inspected",
			       x->x_sd.r_netns);
}

/* The scheme of an htpasswd hash, and whether it is weak. */
static const char *ck_scheme(const char *hash, bool *weak, int *cost)
{
	*weak = false;
	*cost = -1;
	if (strncmp(hash, "$2y$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
	    strncmp(hash, "$2a$", 4) == 0) {
		*cost = atoi(hash + 4);
		*weak = *cost < 10;
		return "bcrypt";
	}
	if (strncmp(hash, "$y$", 3) == 0)
		return "yescrypt";
	if (strncmp(hash, "$5$", 3) == 0)
		return "SHA-256-crypt";
	if (strncmp(hash, "$6$", 3) == 0)
		return "SHA-512-crypt";
	*weak = true;
	if (strncmp(hash, "$1$", 3) == 0)
		return "MD5-crypt";
	if (strncmp(hash, "$apr1$", 6) == 0)
		return "Apache MD5 ($apr1$)";
	if (strncmp(hash, "{SHA}", 5) == 0)
		return "unsalted SHA-1 ({SHA})";
	if (strncmp(hash, "{SSHA}", 6) == 0)
		return "salted SHA-1 ({SSHA})";
	if (strncmp(hash, "{PLAIN}", 7) == 0)
		return "plain text ({PLAIN})";
	if (strlen(hash) == 13)
		return "DES crypt";
	return "unknown scheme";
}

/*
 * A credential file's mode and owner (st from stat): fail when others may read it (why:
 * what they would learn) or write it (what they could add), or when neither root nor the
 * proxy user owns it.
 */
static void ck_cred_file(struct check_control *c, const struct conf_proxy *p, const char *path,
			 const struct stat *st, const char *if_read, const char *if_written)
{
	const struct passwd *pw = getpwnam(p->p_user);

	check_evidence(c, "%s: mode %04o, owner uid %u", path, (unsigned)(st->st_mode & 07777),
		       (unsigned)st->st_uid);
	if (st->st_mode & S_IROTH) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "world-readable: anyone on the host can %s", if_read);
	}
	if (st->st_mode & S_IWOTH) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "world-writable: anyone on the host can %s", if_written);
	}
	if (st->st_uid != 0 && !(pw && pw->pw_uid == st->st_uid)) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "owned by uid %u, neither root nor the proxy user '%s'",
			       (unsigned)st->st_uid, p->p_user);
	}
}

static void ck_htpasswd(struct ck_ctx *x, struct check_control *cc)
{
	struct check_control *c = &cc[CK_AUTH_FILE], *s = &cc[CK_AUTH_SCHEMES];
	const char *path = x->x_conf->c_proxy.p_htpasswd;
	char line[1024];
	size_t users = 0, weak = 0;
	struct stat st;
	unsigned lineno = 0;
	FILE *f;

	if (!x->x_conf->c_has_proxy) {
		c->cc_status = s->cc_status = CHECK_SKIP;
		check_evidence(c, "no [proxy] section in %s: tfguard-proxy not in use",
			       x->x_conf->c_path);
		check_evidence(s, "no [proxy] section: tfguard-proxy not in use");
		return;
	}
	if (!(x->x_conf->c_proxy.p_auth & CONF_AUTH_BASIC)) {
		check_evidence(c, "auth does not include basic: no htpasswd file is read");
		check_evidence(s, "auth does not include basic: no passwords");
		return;
	}
	/* mode and owner come from stat(), which needs no read permission */
	if (stat(path, &st) < 0) {
		int e = errno;

		c->cc_status = e == EACCES && geteuid() ? CHECK_SKIP : CHECK_FAIL;
		check_evidence(c, "%s: %s%s", path, strerror(e),
			       c->cc_status == CHECK_SKIP ? " (skipped: needs root)" : "");
		s->cc_status = CHECK_SKIP;
		check_evidence(s, "%s could not be read", path);
		return;
	}
	f = fopen(path, "re");
	if (!f) {
		s->cc_status = CHECK_SKIP;
		check_evidence(s, "%s: %s%s", path, strerror(errno),
			       errno == EACCES && geteuid() ? " (skipped: needs root)" : "");
	}
	ck_cred_file(c, &x->x_conf->c_proxy, path, &st, "copy the hashes", "add a user");
	while (f && fgets(line, sizeof(line), f)) {
		char *p = str_trim(line), *colon, *end;
		const char *scheme;
		bool is_weak;
		int cost;

		lineno++;
		if (*p == '\0' || *p == '#')
			continue;
		colon = strchr(p, ':');
		if (!colon) {
			s->cc_status = s->cc_status == CHECK_FAIL ? CHECK_FAIL : CHECK_WARN;
			check_evidence(s, "%s:%u: malformed line (no ':')", path, lineno);
			continue;
		}
		*colon = '\0';
		for (char *u = p; *u; u++) /* user names reach the evidence: no forged lines */
			if ((unsigned char)*u < 0x20 || (unsigned char)*u >= 0x7f)
				*u = '?';
		end = strchr(colon + 1, ':');
		if (end)
			*end = '\0';
		users++;
		scheme = ck_scheme(colon + 1, &is_weak, &cost);
		if (is_weak) {
			weak++;
			s->cc_status = CHECK_WARN;
			if (cost >= 0)
				check_evidence(s, "user %.64s: %s cost %d (below 10)", p, scheme,
					       cost);
			else
				check_evidence(s, "user %.64s: %s", p, scheme);
		}
		explicit_bzero(line, sizeof(line));
	}
	if (!f)
		return;
	fclose(f);
	check_evidence(s, "%zu users, %zu with a weak hash", users, weak);
}

static bool ck_no_proxy(const struct ck_ctx *x, struct check_control *c);

/* Days from now until t (negative: past), through OpenSSL's ASN1 time arithmetic. */
static long ck_days_until(const ASN1_TIME *t)
{
	int days = 0, secs = 0;

	if (!t || !ASN1_TIME_diff(&days, &secs, NULL, t))
		return 0;
	return days;
}

/* A subject for the evidence: one line, printable ASCII only (no forged lines). */
static void ck_name(const X509_NAME *n, char *out, size_t cap)
{
	X509_NAME_oneline(n, out, (int)cap);
	for (char *u = out; *u; u++)
		if ((unsigned char)*u < 0x20 || (unsigned char)*u >= 0x7f)
			*u = '?';
}

/*
 * The CRLs of client_crl, every one of them (the proxy checks each certificate of a chain
 * against its issuer's CRL: a CA of client_ca without one refuses all its clients).
 */
static void ck_client_crls(const struct conf_proxy *p, STACK_OF(X509_NAME) * cas,
			   struct check_control *c)
{
	X509_CRL *crl;
	size_t ncrl = 0;
	int i;
	FILE *f = fopen(p->p_client_crl, "re");
	STACK_OF(X509_NAME) *issuers = sk_X509_NAME_new_null();

	if (!f || !issuers) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "%s: %s", p->p_client_crl, f ? "out of memory" : strerror(errno));
		goto out;
	}
	while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
		long d = ck_days_until(next);
		int revoked = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
		X509_NAME *iss = X509_NAME_dup(X509_CRL_get_issuer(crl));
		char subj[160];

		ck_name(X509_CRL_get_issuer(crl), subj, sizeof(subj));
		check_evidence(c, "%s: CRL of %s: %d revoked, nextUpdate in %ld days",
			       p->p_client_crl, subj, revoked < 0 ? 0 : revoked, d);
		if (iss == NULL || !sk_X509_NAME_push(issuers, iss))
			X509_NAME_free(iss);
		/* OpenSSL refuses every certificate once the CRL is past nextUpdate */
		if (next && X509_cmp_current_time(next) < 0) {
			c->cc_status = CHECK_FAIL;
			check_evidence(c, "CRL EXPIRED: every client certificate of %s is refused",
				       subj);
		} else if (d < 7 && c->cc_status == CHECK_PASS) {
			c->cc_status = CHECK_WARN;
		}
		X509_CRL_free(crl);
		ncrl++;
	}
	if (ncrl == 0) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "%s: no PEM CRL in it", p->p_client_crl);
		goto out;
	}
	for (i = 0; i < sk_X509_NAME_num(cas); i++) {
		const X509_NAME *ca = sk_X509_NAME_value(cas, i);
		bool found = false;
		char subj[160];

		for (int j = 0; j < sk_X509_NAME_num(issuers) && !found; j++)
			found = X509_NAME_cmp(ca, sk_X509_NAME_value(issuers, j)) == 0;
		if (found)
			continue;
		c->cc_status = CHECK_FAIL;
		ck_name(ca, subj, sizeof(subj));
		check_evidence(c,
			       "NO CRL of %s in %s: every client certificate it issued is refused",
			       subj, p->p_client_crl);
	}
out:
	if (f)
		fclose(f);
	sk_X509_NAME_pop_free(issuers, X509_NAME_free);
}

static void ck_client_ca(struct ck_ctx *x, struct check_control *c)
{
	const struct conf_proxy *p = &x->x_conf->c_proxy;
	STACK_OF(X509_NAME) *cas = NULL;
	long least = 0;
	size_t n = 0;
	X509 *cert;
	FILE *f;

	if (ck_no_proxy(x, c))
		return;
	if (!(p->p_auth & CONF_AUTH_MTLS)) {
		check_evidence(c, "auth does not include mtls: no client certificates");
		return;
	}
	if (!(f = fopen(p->p_client_ca, "re"))) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "%s: %s", p->p_client_ca, strerror(errno));
		return;
	}
	cas = sk_X509_NAME_new_null();
	while (cas && (cert = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		char subj[160];
		long d = ck_days_until(X509_get0_notAfter(cert));
		X509_NAME *nm = X509_NAME_dup(X509_get_subject_name(cert));

		if (nm == NULL || !sk_X509_NAME_push(cas, nm))
			X509_NAME_free(nm);
		ck_name(X509_get_subject_name(cert), subj, sizeof(subj));
		check_evidence(c, "%s: %s, %ld days left", p->p_client_ca, subj, d);
		if (n == 0 || d < least)
			least = d;
		n++;
		X509_free(cert);
	}
	fclose(f);
	if (n == 0) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "%s: no PEM certificate in it", p->p_client_ca);
		goto out;
	}
	if (least < 0) {
		c->cc_status = CHECK_FAIL;
		check_evidence(c, "EXPIRED: no client certificate can verify");
	} else if (least < 30) {
		c->cc_status = CHECK_WARN;
	}
	check_evidence(c, "client_cert = %s, user from %s",
		       p->p_client_cert == CONF_CLIENT_CERT_REQUIRE ? "require" : "optional",
		       p->p_client_user_from == CONF_USER_FROM_SAN ? "subjectAltName" : "CN");
	if (p->p_client_crl[0] == '\0') {
		check_evidence(c, "no client_crl: a lost certificate stays valid until it expires");
		if (c->cc_status == CHECK_PASS)
			c->cc_status = CHECK_WARN;
		goto out;
	}
	ck_client_crls(p, cas, c);
out:
	sk_X509_NAME_pop_free(cas, X509_NAME_free);
}

static void ck_tokens(struct ck_ctx *x, struct check_control *cc)
{
	const struct conf_proxy *p = &x->x_conf->c_proxy;
	struct check_control *c = &cc[CK_AUTH_TOKFILE], *a = &cc[CK_AUTH_TOKAGE];
	struct token_table *t;
	char err[CONF_ERR_MAX];
	uint64_t max_s = p->p_token_max_age_ms / 1000;
	time_t now = time(NULL);
	size_t i, old = 0, unknown = 0;
	struct stat st;

	if (ck_no_proxy(x, c)) {
		ck_no_proxy(x, a);
		return;
	}
	if (!(p->p_auth & CONF_AUTH_TOKEN)) {
		check_evidence(c, "auth does not include token: no token file");
		check_evidence(a, "auth does not include token: no tokens");
		return;
	}
	if (stat(p->p_tokens, &st) < 0) {
		int e = errno;

		c->cc_status = e == EACCES && geteuid() ? CHECK_SKIP : CHECK_FAIL;
		check_evidence(c, "%s: %s%s", p->p_tokens, strerror(e),
			       c->cc_status == CHECK_SKIP ? " (skipped: needs root)" : "");
		a->cc_status = CHECK_SKIP;
		check_evidence(a, "%s could not be read", p->p_tokens);
		return;
	}
	/* hashes of 256-bit tokens cannot be reversed, but a readable file names every
	 * account that has one and a writable one lets anybody add a token */
	ck_cred_file(c, p, p->p_tokens, &st, "list the token users", "add a token");
	t = token_load(p->p_tokens, NULL, NULL, err, sizeof(err));
	if (!t) {
		a->cc_status = CHECK_SKIP;
		check_evidence(a, "%s%s", err, errno == EACCES && geteuid() ? " (needs root)" : "");
		return;
	}
	for (i = 0; i < token_count(t); i++) {
		const struct token_entry *e = token_entry_at(t, i);
		char hex[2 * TOKEN_HASH_LEN + 1];

		token_hex(e->te_hash, hex, sizeof(hex));
		if (e->te_created < 0) {
			unknown++;
			a->cc_status = CHECK_WARN;
			check_evidence(a,
				       "%s:%u: user %s token %.12s: no created= date, age unknown",
				       p->p_tokens, e->te_line, e->te_user, hex);
		} else if (max_s && now > e->te_created &&
			   (uint64_t)(now - e->te_created) > max_s) {
			old++;
			a->cc_status = CHECK_WARN;
			check_evidence(a, "%s:%u: user %s token %.12s: %lld days old", p->p_tokens,
				       e->te_line, e->te_user, hex,
				       (long long)(now - e->te_created) / 86400);
		}
	}
	check_evidence(a, "%zu tokens, %zu older than %llu days, %zu of unknown age",
		       token_count(t), old, (unsigned long long)max_s / 86400, unknown);
	token_unref(t);
}

static void ck_limits(struct ck_ctx *x, struct check_control *c)
{
	const struct conf_limits *l = &x->x_conf->c_limits;

	if (!x->x_conf->c_has_proxy) {
		c->cc_status = CHECK_SKIP;
		check_evidence(c, "no [proxy] section: tfguard-proxy not in use");
		return;
	}
	if (l->l_default.r_set)
		check_evidence(c, "per user: %u requests per %s", l->l_default.r_rate,
			       l->l_default.r_period_s == 1 ? "second" : "minute");
	if (l->l_client.r_set)
		check_evidence(c, "per client address: %u requests per %s", l->l_client.r_rate,
			       l->l_client.r_period_s == 1 ? "second" : "minute");
	if (l->l_inflight)
		check_evidence(c, "at most %u requests in flight per user", l->l_inflight);
	if (l->l_nusers || l->l_nmodels)
		check_evidence(c, "%zu per-user and %zu per-model limits", l->l_nusers,
			       l->l_nmodels);
	if (!c->cc_len) {
		c->cc_status = CHECK_WARN;
		check_evidence(c, "no [limits]: one client can take the whole model server");
	}
}

/* True (and evidence added) when the proxy is not configured. */
static bool ck_no_proxy(const struct ck_ctx *x, struct check_control *c)
{
	if (x->x_conf->c_has_proxy)
		return false;
	c->cc_status = CHECK_SKIP;
	check_evidence(c, "no [proxy] section: tfguard-proxy not in use");
	return true;
}

static void ck_tls(struct ck_ctx *x, struct check_control *cc)
{
	const struct conf_proxy *p = &x->x_conf->c_proxy;
	struct check_control *k = &cc[CK_TLS_KEY], *m = &cc[CK_TLS_MATCH], *e = &cc[CK_TLS_EXPIRY];
	const struct passwd *pw;
	struct tlsprobe_files tf;
	struct stat st;

	if (ck_no_proxy(x, k)) {
		ck_no_proxy(x, m);
		ck_no_proxy(x, e);
		return;
	}
	if (p->p_plain_http) {
		k->cc_status = m->cc_status = e->cc_status = CHECK_WARN;
		check_evidence(k, "plain_http = yes: the proxy does not terminate TLS itself");
		check_evidence(m, "plain_http = yes: no certificate");
		check_evidence(e, "plain_http = yes: no certificate");
		return;
	}
	if (stat(p->p_tls_key, &st) < 0) {
		k->cc_status = CHECK_FAIL;
		check_evidence(k, "%s: %s", p->p_tls_key, strerror(errno));
	} else {
		pw = getpwnam(p->p_user);
		check_evidence(k, "%s: mode %04o, owner uid %u", p->p_tls_key,
			       (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
		if (st.st_mode & (S_IROTH | S_IWOTH)) {
			k->cc_status = CHECK_FAIL;
			check_evidence(k, "readable or writable by every user on the host");
		}
		if (st.st_uid != 0 && !(pw && pw->pw_uid == st.st_uid)) {
			k->cc_status = CHECK_FAIL;
			check_evidence(k, "owned by uid %u, neither root nor '%s'",
				       (unsigned)st.st_uid, p->p_user);
		}
	}
	if (tlsprobe_files(p->p_tls_cert, p->p_tls_key, &tf) < 0 && !tf.f_cert_read) {
		m->cc_status = e->cc_status = CHECK_FAIL;
		check_evidence(m, "%s", tf.f_err);
		check_evidence(e, "%s", tf.f_err);
		return;
	}
	check_evidence(m, "certificate %s: %s", p->p_tls_cert, tf.f_subject);
	if (!tf.f_key_read && geteuid() && access(p->p_tls_key, R_OK) < 0 && errno == EACCES) {
		m->cc_status = CHECK_SKIP;
		check_evidence(m, "%s: not readable (skipped: needs root)", p->p_tls_key);
	} else if (!tf.f_key_read) {
		m->cc_status = CHECK_FAIL;
		check_evidence(m, "%s", tf.f_err);
	} else if (!tf.f_match) {
		m->cc_status = CHECK_FAIL;
		check_evidence(m, "%s does not belong to this certificate", p->p_tls_key);
	} else {
		check_evidence(m, "%s belongs to it", p->p_tls_key);
	}
	check_evidence(e, "%s: notAfter %s (%ld days left)", p->p_tls_cert, tf.f_not_after,
		       tf.f_days_left);
	if (tf.f_days_left < 0) {
		e->cc_status = CHECK_FAIL;
		check_evidence(e, "EXPIRED: clients refuse the handshake");
	} else if (tf.f_days_left < 30) {
		e->cc_status = CHECK_WARN;
	}
}

/* The address to probe a listener on: wildcards are probed over loopback. */
static void ck_probe_addr(const struct addr *listen, struct sockaddr_storage *ss)
{
	memcpy(ss, &listen->a_ss, sizeof(*ss));
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			sin6->sin6_addr = in6addr_loopback;
	}
}

/* A listener bound exactly to the configured address, in the caller's namespace. */
static bool ck_listening_at(const struct ck_ctx *x, const struct addr *want)
{
	size_t i;

	if (!x->x_sd_ok)
		return true; /* nothing to compare with: the probe stands alone */
	for (i = 0; i < x->x_sd.r_count; i++) {
		const struct sockdiag_listener *l = &x->x_sd.r_list[i];
		char a[ADDR_TEXT_MAX];

		if (strcmp(l->l_netns_name, x->x_sd.r_self) != 0)
			continue;
		addr_format((const struct sockaddr *)&l->l_addr, a, sizeof(a));
		if (strcmp(a, want->a_text) == 0)
			return true;
	}
	return false;
}

static bool ck_cert_required(const struct conf_proxy *p)
{
	return (p->p_auth & CONF_AUTH_MTLS) && p->p_client_cert == CONF_CLIENT_CERT_REQUIRE;
}

static void ck_proxy(struct ck_ctx *x, struct check_control *c)
{
	const struct conf_proxy *p = &x->x_conf->c_proxy;
	size_t i;

	if (ck_no_proxy(x, c))
		return;
	for (i = 0; i < p->p_nlisten; i++) {
		struct sockaddr_storage ss;
		struct tlsprobe_http h;
		char a[ADDR_TEXT_MAX];

		ck_probe_addr(&p->p_listen[i], &ss);
		addr_format((struct sockaddr *)&ss, a, sizeof(a));
		if (p->p_plain_http) {
			c->cc_status = CHECK_WARN;
			check_evidence(c, "%s: plain_http = yes, TLS not probed", a);
			continue;
		}
		if (tlsprobe_http((struct sockaddr *)&ss, p->p_listen[i].a_len, NULL, 3000, &h) <
		    0) {
			/* client_cert = require: a client without a certificate must be
			 * refused, by a TLS server that asked for one (not by any error) */
			if (ck_cert_required(p) && tlsprobe_cert_refused(&h)) {
				check_evidence(c,
					       "%s: a client without a certificate is refused "
					       "(client_cert = require): %s",
					       a, h.h_err);
			} else {
				c->cc_status = CHECK_FAIL;
				check_evidence(c, "%s (listen %s): %s", a, p->p_listen[i].a_text,
					       h.h_err);
				continue;
			}
		} else {
			bool good = h.h_status == 401 &&
				    (!(p->p_auth & CONF_AUTH_BASIC) || h.h_challenge) &&
				    (!(p->p_auth & CONF_AUTH_TOKEN) || h.h_bearer);

			check_evidence(c, "%s: %s %s, unauthenticated request answered %d%s%s", a,
				       h.h_version, h.h_cipher, h.h_status,
				       h.h_challenge ? " with a Basic challenge" : "",
				       h.h_bearer ? " with a Bearer challenge" : "");
			if (!good) {
				c->cc_status = CHECK_FAIL;
				check_evidence(c,
					       "expected 401 with a challenge for each of auth's "
					       "schemes: requests without credentials are not "
					       "refused as they should be");
			}
		}
		if (!ck_listening_at(x, &p->p_listen[i])) {
			c->cc_status = CHECK_FAIL;
			check_evidence(c,
				       "no listener on %s itself in this namespace (the probe "
				       "reached something else)",
				       p->p_listen[i].a_text);
		}
	}
}

int cmd_check(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "junit", required_argument, NULL, 'J' },
		{ "netns", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] = "usage: tfguard [-c CONF] check [--json] [--junit FILE] "
				    "[--netns NAME,...]\n";
	struct check_control cc[CK_COUNT];
	const char *junit = NULL;
	char bad[64];
	struct ck_ctx x;
	bool json = false;
	size_t i;
	int ch;

	memset(&x, 0, sizeof(x));
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = true;
			break;
		case 'J':
			junit = optarg;
			break;
		case 'n':
			x.x_netns = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		warnx("check: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	memset(cc, 0, sizeof(cc));
	for (i = 0; i < CK_COUNT; i++) {
		cc[i].cc_id = ck_defs[i].id;
		cc[i].cc_title = ck_defs[i].title;
		cc[i].cc_remedy = ck_defs[i].remedy;
		cc[i].cc_status = CHECK_PASS;
		cc[i].cc_mandatory = i <= CK_NET_LISTEN;
	}
	x.x_conf = conf;
	fw_policy_from_conf(&x.x_pol, conf);
	x.x_fw_ok = fw_read(&x.x_pol, &x.x_fw, x.x_fw_err, sizeof(x.x_fw_err)) == 0;
	x.x_fw_errno = errno;
	x.x_sd_ok = sockdiag_dump_all(&x.x_sd, ck_fw_here, x.x_sd_err, sizeof(x.x_sd_err)) == 0;
	if (x.x_sd_ok && ck_netns_unknown(&x, bad, sizeof(bad))) {
		warnx("check: --netns: no network namespace named '%s' (names: ip netns list, "
		      "\"host\", or net:[INODE] as the evidence prints them)",
		      bad);
		sockdiag_free(&x.x_sd);
		return EXIT_ERR;
	}

	ck_fw(&x, cc);
	ck_listeners(&x, cc);
	ck_localnet(&x, &cc[CK_NET_LOCALNET]);
	ck_htpasswd(&x, cc);
	ck_client_ca(&x, &cc[CK_AUTH_CA]);
	ck_tokens(&x, cc);
	ck_limits(&x, &cc[CK_LIMITS]);
	ck_tls(&x, cc);
	ck_proxy(&x, &cc[CK_PROXY]);
	sockdiag_free(&x.x_sd);

	if (json)
		check_print_json(stdout, cc, CK_COUNT);
	else
		check_print_text(stdout, cc, CK_COUNT);
	if (junit && check_write_junit(junit, cc, CK_COUNT) < 0) {
		warn("check: writing %s", junit);
		return EXIT_ERR;
	}
	for (i = 0; i < CK_COUNT; i++)
		if (cc[i].cc_status == CHECK_FAIL)
			return EXIT_NONCOMPLIANT;
	if (check_incomplete(cc, CK_COUNT)) {
		/* as root a skipped firewall/listener control is an error; without
		 * root it is expected, but the host was not shown to be compliant */
		if (geteuid() == 0) {
			warnx("check: the firewall or listener controls could not run (see above)");
			return EXIT_ERR;
		}
		return EXIT_NONCOMPLIANT;
	}
	return EXIT_OK;
}
