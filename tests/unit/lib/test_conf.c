/* Unit tests for guard/lib/conf.c: every value type and every error path. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

static char err[CONF_ERR_MAX];

static int load(struct conf *c, const char *text)
{
	conf_defaults(c);
	err[0] = '\0';
	return conf_load_buf(c, "t.conf", text, strlen(text), err, sizeof(err));
}

/* Loads text, expects failure with exactly this message. */
static void bad(const char *text, const char *want, const char *name)
{
	struct conf c;
	int rc = load(&c, text);

	ok(rc == -1, name);
	is_str(err, want, name);
	if (rc == 0)
		conf_free(&c);
}

static void test_defaults(void)
{
	struct conf c;

	subtest("defaults");
	ok(load(&c, "") == 0, "empty file loads");
	is_int(c.c_guard.g_ports.p_count, 2, "two protected ports by default");
	is_int(c.c_guard.g_ports.p_port[0], 8500, "8500 protected");
	is_int(c.c_guard.g_ports.p_port[1], 8501, "8501 protected");
	ok(!c.c_guard.g_log_drops, "drop logging off by default");
	ok(!c.c_guard.g_strict, "strict off by default");
	is_str(c.c_proxy.p_listen[0].a_text, "0.0.0.0:8443", "default listen");
	is_str(c.c_proxy.p_backend_rest.a_text, "127.0.0.1:8501", "default REST backend");
	is_str(c.c_proxy.p_backend_grpc.a_text, "127.0.0.1:8500", "default gRPC backend");
	ok(c.c_proxy.p_max_body >= (64u << 20), "max_body at least 64 MiB");
	is_int(c.c_proxy.p_auth, CONF_AUTH_BASIC, "basic auth by default");
	is_int(c.c_proxy.p_token_max_age_ms, 90ull * 86400 * 1000, "token_max_age 90 days");
	conf_free(&c);
}

static void test_full(void)
{
	static const char text[] = "# tfguard config\n"
				   "[guard]\n"
				   "protected_ports = 9001, 8500 ,8501   # comment\n"
				   "log_drops = yes\n"
				   "log_rate = 5r/s burst=10\n"
				   "strict = on\n"
				   "\n"
				   "[proxy]\n"
				   "listen = 0.0.0.0:8443, [::]:8443\n"
				   "tls_cert = /etc/tfguard/cert.pem\n"
				   "tls_key = \"/etc/tfguard/key #1.pem\"\n"
				   "backend_rest = [::1]:8501\n"
				   "realm = Models # here\n"
				   "max_body = 128M\n"
				   "user = tfguard\n"
				   "access_log =\n"
				   "auth = token, basic\n"
				   "tokens = /etc/tfguard/tokens\n"
				   "workers = auto\n"
				   "header_timeout = 500ms\n"
				   "idle_timeout = 2m\n"
				   "token_max_age = 30d\n"
				   "admin_listen = 127.0.0.1:9901\n"
				   "[limits]\n"
				   "default = 100r/s burst=200\n"
				   "client = 600r/m\n"
				   "inflight = 16\n"
				   "queue = 8\n"
				   "queue_timeout = 2s\n"
				   "user.alice = 10r/s burst=20\n"
				   "model.fraud = 200r/s\n"
				   "[acl]\n"
				   "alice = fraud, churn\n"
				   "bob = *\n";
	const struct conf_acl *a;
	struct conf c;

	subtest("a full config");
	if (!ok(load(&c, text) == 0, "full config loads")) {
		printf("# %s\n", err);
		return;
	}
	is_int(c.c_guard.g_ports.p_count, 3, "three ports");
	is_int(c.c_guard.g_ports.p_port[0], 8500, "ports sorted");
	is_int(c.c_guard.g_ports.p_port[2], 9001, "ports sorted (last)");
	ok(c.c_guard.g_log_drops && c.c_guard.g_strict, "booleans");
	is_int(c.c_guard.g_log_rate.r_rate, 5, "log rate");
	is_int(c.c_guard.g_log_rate.r_burst, 10, "log burst");
	is_int(c.c_proxy.p_nlisten, 2, "two listeners");
	is_str(c.c_proxy.p_listen[1].a_text, "[::]:8443", "IPv6 listener");
	is_str(c.c_proxy.p_tls_key, "/etc/tfguard/key #1.pem", "quoted value keeps '#'");
	is_str(c.c_proxy.p_backend_rest.a_text, "[::1]:8501", "IPv6 backend");
	is_str(c.c_proxy.p_realm, "Models", "inline comment cut");
	is_int(c.c_proxy.p_max_body, 128u << 20, "size suffix");
	is_str(c.c_proxy.p_access_log, "", "empty path means none");
	is_int(c.c_proxy.p_nauth, 2, "two auth methods");
	is_int(c.c_proxy.p_auth_order[0], CONF_AUTH_TOKEN, "auth order kept");
	is_int(c.c_proxy.p_workers, 0, "workers auto");
	is_int(c.c_proxy.p_header_timeout_ms, 500, "ms duration");
	is_int(c.c_proxy.p_token_max_age_ms, 30ull * 86400 * 1000, "day duration");
	is_int(c.c_proxy.p_idle_timeout_ms, 120000, "minute duration");
	ok(c.c_proxy.p_admin_set, "admin listen set");
	is_int(c.c_limits.l_default.r_rate, 100, "default rate");
	is_int(c.c_limits.l_default.r_period_s, 1, "per second");
	is_int(c.c_limits.l_client.r_period_s, 60, "per minute");
	is_int(c.c_limits.l_inflight, 16, "inflight");
	is_int(c.c_limits.l_queue, 8, "queue (with inflight)");
	is_int(c.c_limits.l_queue_timeout_ms, 2000, "queue_timeout (with queue)");
	is_int(c.c_limits.l_nusers, 1, "one user limit");
	is_str(c.c_limits.l_users[0].nr_name, "alice", "user limit name");
	is_int(c.c_limits.l_nmodels, 1, "one model limit");
	a = conf_acl_find(&c, "alice");
	ok(a && a->acl_nmodels == 2 && strcmp(a->acl_models[1], "churn") == 0, "alice's models");
	a = conf_acl_find(&c, "bob");
	ok(a && a->acl_all, "bob may call all models");
	ok(conf_acl_find(&c, "carol") == NULL, "no entry for carol");
	conf_free(&c);
}

static void test_errors(void)
{
	subtest("errors name the file and the line");
	bad("[guard]\nbogus = 1\n", "t.conf:2: unknown key 'bogus' in [guard]", "unknown key");
	bad("[nope]\n", "t.conf:1: unknown section [nope] (guard, proxy, limits, acl)",
	    "unknown section");
	bad("[guard\n", "t.conf:1: section header without ']'", "unterminated section");
	bad("protected_ports = 1\n",
	    "t.conf:1: 'protected_ports' is outside of a section (add [guard], [proxy], ...)",
	    "key before any section");
	bad("[guard]\njust words\n", "t.conf:2: expected 'key = value' or '[section]'",
	    "line without =");
	bad("[guard]\n = 3\n", "t.conf:2: missing key before '='", "empty key");
	bad("[guard]\nlog drops = yes\n",
	    "t.conf:2: key 'log drops' contains white space or quotes", "key with space");
	bad("[guard]\nstrict = yes\nstrict = no\n",
	    "t.conf:3: duplicate key 'strict' (first set at line 2)", "duplicate key");
	bad("[guard]\nstrict = yes\n[proxy]\n[guard]\nstrict = no\n",
	    "t.conf:5: duplicate key 'strict' (first set at line 2)",
	    "duplicate key across reopened section");
	bad("[guard]\nstrict = maybe\n", "t.conf:2: strict: 'maybe' is not yes or no", "bad bool");
	bad("[guard]\nstrict =\n", "t.conf:2: strict: needs a value", "empty bool");
	bad("[guard]\nprotected_ports = 8500, 70000\n",
	    "t.conf:2: protected_ports: '70000' is not a port number (1-65535)", "port too big");
	bad("[guard]\nprotected_ports = 0\n",
	    "t.conf:2: protected_ports: '0' is not a port number (1-65535)", "port zero");
	bad("[guard]\nprotected_ports = 8500,,8501\n",
	    "t.conf:2: protected_ports: empty item in port list", "empty port item");
	bad("[guard]\nprotected_ports = 8500, 8500\n",
	    "t.conf:2: protected_ports: port 8500 listed twice", "duplicate port");
	bad("[guard]\nprotected_ports = 85O1\n",
	    "t.conf:2: protected_ports: '85O1' is not a port number (1-65535)", "letter in port");
	bad("[guard]\nlog_rate = fast\n",
	    "t.conf:2: log_rate: 'fast' is not a rate (expected e.g. 100r/s or 600r/m)",
	    "bad rate");
	bad("[guard]\nlog_rate = 0r/s\n",
	    "t.conf:2: log_rate: rate must be a whole number from 1 to 1000000", "zero rate");
	bad("[guard]\nlog_rate = 10r/h\n",
	    "t.conf:2: log_rate: '10r/h' is not a rate (expected e.g. 100r/s or 600r/m)",
	    "unknown rate unit");
	bad("[guard]\nlog_rate = 10r/s burst=0\n",
	    "t.conf:2: log_rate: 'burst=0' is not burst=N (N from 1 to 10000000)", "zero burst");
	bad("[guard]\nlog_rate = 10r/s burst=5 extra\n",
	    "t.conf:2: log_rate: unexpected 'extra' (expected RATEr/s or RATEr/m [burst=N])",
	    "trailing word after rate");
	bad("[proxy]\nlisten = localhost:8443\n",
	    "t.conf:2: listen: 'localhost:8443' is not an address like 0.0.0.0:8443 or [::]:8443",
	    "host names refused");
	bad("[proxy]\nlisten = 0.0.0.0\n",
	    "t.conf:2: listen: '0.0.0.0' is not an address like 0.0.0.0:8443 or [::]:8443",
	    "address without port");
	bad("[proxy]\nbackend_rest = [::1:8501\n",
	    "t.conf:2: backend_rest: '[::1:8501' is not an address like 127.0.0.1:8501 or "
	    "[::1]:8501",
	    "unterminated IPv6 bracket");
	bad("[proxy]\ntls_cert = cert.pem\n",
	    "t.conf:2: tls_cert: 'cert.pem' is not an absolute path", "relative path");
	bad("[proxy]\nmax_body = 64X\n", "t.conf:2: max_body: '64X' is not a size like 64M",
	    "bad size");
	bad("[proxy]\nmax_body = 0\n", "t.conf:2: max_body: '0' is out of range", "zero size");
	bad("[proxy]\nidle_timeout = soon\n",
	    "t.conf:2: idle_timeout: 'soon' is not a duration like 10s or 500ms", "bad duration");
	bad("[proxy]\nworkers = 0\n", "t.conf:2: workers: '0' is out of range", "zero workers");
	bad("[proxy]\nworkers = -1\n", "t.conf:2: workers: '-1' is not a whole number",
	    "negative workers");
	bad("[proxy]\naccess_log_format = xml\n",
	    "t.conf:2: access_log_format: 'xml' is not one of json, combined", "bad enum");
	bad("[proxy]\nauth = basic, kerberos\n",
	    "t.conf:2: auth: unknown method 'kerberos' (basic, token, mtls)", "unknown auth");
	bad("[proxy]\nauth = basic, basic\n", "t.conf:2: auth: 'basic' listed twice",
	    "auth listed twice");
	bad("[proxy]\nauth = mtls\n",
	    "t.conf:2: auth includes mtls but [proxy] client_ca is not set", "mtls without a CA");
	bad("[proxy]\nrealm = x\nauth = token\n",
	    "t.conf:3: auth includes token but [proxy] tokens is not set", "tokens without a file");
	bad("[proxy]\nrealm = x\nclient_cert = require\n",
	    "t.conf:3: client_cert = require but auth does not include mtls",
	    "require without mtls");
	bad("[proxy]\nclient_crl = /c.crl\n",
	    "t.conf:2: client_crl is set but client_ca is not (the CRL belongs to the client CA)",
	    "CRL without a CA");
	bad("[proxy]\ntoken_max_age = 11y\n",
	    "t.conf:2: token_max_age: '11y' is not a duration like 10s or 500ms", "bad token age");
	bad("[proxy]\nplain_http = yes\nclient_ca = /ca.pem\nauth = mtls\n",
	    "t.conf:4: auth = mtls needs TLS, but [proxy] plain_http = yes (line 2)",
	    "plain HTTP with mTLS");
	bad("[guard]\nlog_rate = 10000000000000000000000000000000000000000000000000000000000000000"
	    "00000000000000000000000000000000000000000000000000000000000000000000r/s\n",
	    "t.conf:2: log_rate: rate too long", "over-long rate");
	bad("[proxy]\nauth = basic,,token\n",
	    "t.conf:2: auth: expected a list of basic, token, mtls", "empty auth item");
	bad("[proxy]\nlisten = 127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3, 127.0.0.1:4, 127.0.0.1:5, "
	    "127.0.0.1:6, 127.0.0.1:7, 127.0.0.1:8, 127.0.0.1:9\n",
	    "t.conf:2: listen: expected up to 8 addresses like 0.0.0.0:8443 or [::]:8443",
	    "too many listeners");
	bad("[proxy]\nrealm = a\"b\n", "t.conf:2: realm: needs a value without '\"'",
	    "quote in a text value");
	bad("[proxy]\nuser = abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd\n",
	    "t.conf:2: user: 'abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd' is "
	    "not a valid user name",
	    "user name too long");
	bad("[proxy]\nmax_connections = 1000001\n",
	    "t.conf:2: max_connections: '1000001' is out of range", "above the maximum");
	bad("[acl]\nal:ice = a\n", "t.conf:2: 'al:ice' is not a valid user name", "bad ACL user");
	bad("[]\n", "t.conf:1: unknown section [] (guard, proxy, limits, acl)", "empty section");
	bad("[guard]\nstrict = yes\rno\n", "t.conf:2: control character 0x0d in line",
	    "CR inside a line");
	bad("[proxy]\nuser = ro ot\n", "t.conf:2: user: 'ro ot' is not a valid user name",
	    "bad user name");
	bad("[proxy]\nrealm = \"a\n", "t.conf:2: realm: unterminated quote", "unterminated quote");
	bad("[proxy]\nrealm = \"a\"b\"\n", "t.conf:2: realm: '\"' inside a quoted value",
	    "quote inside a quoted value");
	bad("[limits]\nuser.al:ice = 1r/s\n",
	    "t.conf:2: 'user.al:ice': 'al:ice' is not a valid user name", "bad limit user");
	bad("[limits]\nmodel.a/b = 1r/s\n",
	    "t.conf:2: 'model.a/b': 'a/b' is not a valid model name", "bad limit model");
	bad("[limits]\nuser.a = 1r/s\nuser.a = 2r/s\n",
	    "t.conf:3: duplicate key 'user.a' (first set at line 2)", "duplicate user limit");
	bad("[limits]\nuser.a = lots\n",
	    "t.conf:2: user.a: 'lots' is not a rate (expected e.g. 100r/s or 600r/m)",
	    "bad user rate");
	bad("[limits]\nbogus = 1r/s\n", "t.conf:2: unknown key 'bogus' in [limits]",
	    "unknown limits key");
	bad("[limits]\n\ndefault = 100r/h\n",
	    "t.conf:3: default: '100r/h' is not a rate (expected e.g. 100r/s or 600r/m)",
	    "limit per hour refused");
	bad("[limits]\nclient = 0r/s\n",
	    "t.conf:2: client: rate must be a whole number from 1 to 1000000", "zero client rate");
	bad("[limits]\nclient = 5r/s burst=-1\n",
	    "t.conf:2: client: 'burst=-1' is not burst=N (N from 1 to 10000000)", "negative burst");
	bad("[limits]\nmodel.fraud = 1000001r/s\n",
	    "t.conf:2: model.fraud: rate must be a whole number from 1 to 1000000",
	    "model rate too large");
	bad("[limits]\ninflight = many\n", "t.conf:2: inflight: 'many' is not a whole number",
	    "inflight not a number");
	bad("[limits]\nqueue_timeout = soon\n",
	    "t.conf:2: queue_timeout: 'soon' is not a duration like 10s or 500ms",
	    "queue_timeout not a duration");
	bad("[limits]\ndefault = 5r/s\nqueue = 5\nqueue_timeout = 2s\n",
	    "t.conf:3: queue needs inflight (it holds requests over the in-flight limit; "
	    "without inflight there is none)",
	    "queue without inflight");
	bad("[limits]\ninflight = 0\nqueue = 1\n",
	    "t.conf:3: queue needs inflight (it holds requests over the in-flight limit; "
	    "without inflight there is none)",
	    "queue with inflight = 0");
	bad("[limits]\ninflight = 4\n\nqueue_timeout = 2s\n",
	    "t.conf:4: queue_timeout needs queue (it bounds the wait in the queue; without "
	    "queue nothing waits)",
	    "queue_timeout without queue");
	bad("[limits]\ninflight = 4\nqueue = 0\nqueue_timeout = 2s\n",
	    "t.conf:4: queue_timeout needs queue (it bounds the wait in the queue; without "
	    "queue nothing waits)",
	    "queue_timeout with queue = 0");
	bad("[acl]\nalice = a\nalice = b\n",
	    "t.conf:3: duplicate user 'alice' (first set at line 2)", "duplicate ACL user");
	bad("[acl]\nalice = a, *\n", "t.conf:2: alice: '*' must stand alone", "* mixed with names");
	bad("[acl]\nalice = a, a\n", "t.conf:2: alice: model 'a' listed twice", "model twice");
	bad("[acl]\nalice = a%2fb\n", "t.conf:2: alice: 'a%2fb' is not a valid model name",
	    "encoded model name refused");
	bad("[acl]\nal ice = a\n", "t.conf:2: key 'al ice' contains white space or quotes",
	    "ACL user with space");
	bad("[acl]\nalice = a,\n",
	    "t.conf:2: alice: expected '*' or a list of up to 256 model names", "trailing comma");
	bad("[guard]\nstrict = yes\x01\n", "t.conf:2: control character 0x01 in line",
	    "control character");
}

static void test_crlf_and_many_ports(void)
{
	char text[2048] = "[guard]\nprotected_ports = 1";
	struct conf c;
	int i;

	subtest("CRLF line endings, port list limits");
	ok(load(&c, "[guard]\r\nstrict = yes\r\n") == 0, "CRLF file loads");
	ok(c.c_guard.g_strict, "CRLF value read");
	conf_free(&c);
	for (i = 2; i <= PORTS_MAX + 1; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ", %d", i);
	strcat(text, "\n");
	bad(text, "t.conf:2: protected_ports: more than 64 ports", "65 ports refused");
}

static void test_nul_and_long(void)
{
	static const char withnul[] = "[guard]\nstrict = y\0es\n";
	char *longline;
	struct conf c;

	subtest("binary and oversized input");
	conf_defaults(&c);
	ok(conf_load_buf(&c, "t.conf", withnul, sizeof(withnul) - 1, err, sizeof(err)) == -1,
	   "NUL byte refused");
	is_str(err, "t.conf:2: NUL byte in line", "NUL byte message");
	longline = malloc(CONF_LINE_MAX + 64);
	memset(longline, 'a', CONF_LINE_MAX + 63);
	memcpy(longline, "[guard]\n", 8);
	longline[CONF_LINE_MAX + 63] = '\0';
	conf_defaults(&c);
	ok(conf_load_buf(&c, "t.conf", longline, strlen(longline), err, sizeof(err)) == -1,
	   "over-long line refused");
	is_str(err, "t.conf:2: line longer than 4096 bytes", "long line message");
	free(longline);
}

static void test_files(void)
{
	char path[] = "/tmp/tfguard-test-conf-XXXXXX";
	struct conf c;
	int fd;

	subtest("files");
	ok(conf_load(&c, "/nonexistent/tfguard.conf", err, sizeof(err)) == -1,
	   "explicit missing file is an error");
	is_str(err, "/nonexistent/tfguard.conf: No such file or directory", "missing file message");
	ok(conf_load(&c, "/dev/null", err, sizeof(err)) == 0, "-c /dev/null: built-in defaults");
	ok(c.c_guard.g_ports.p_count == 2, "/dev/null gives the default ports");
	conf_free(&c);
	ok(conf_load(&c, "/tmp", err, sizeof(err)) == -1, "directory refused");
	is_str(err, "/tmp: not a regular file", "directory message");
	{
		char longpath[CONF_PATH_MAX + 16];

		memset(longpath, 'a', sizeof(longpath) - 1);
		longpath[0] = '/';
		longpath[sizeof(longpath) - 1] = '\0';
		ok(conf_load(&c, longpath, err, sizeof(err)) == -1, "over-long path refused");
		ok(strstr(err, "config path too long") != NULL, "long path message");
	}
	fd = mkstemp(path);
	ok(fd >= 0 && write(fd, "[guard]\nstrict = yes\n", 21) == 21, "temp config written");
	close(fd);
	ok(conf_load(&c, path, err, sizeof(err)) == 0, "file loads");
	ok(c.c_found && c.c_guard.g_strict, "file values applied");
	conf_free(&c);
	ok(truncate(path, (1 << 20) + 1) == 0, "file grown past 1 MiB");
	ok(conf_load(&c, path, err, sizeof(err)) == -1, "over-large file refused");
	ok(strstr(err, "larger than 1048576 bytes") != NULL, "large file message");
	chmod(path, 0);
	if (geteuid() != 0) {
		ok(conf_load(&c, path, err, sizeof(err)) == -1, "unreadable file refused");
	}
	unlink(path);
}

static void test_keys_changed(void)
{
	static const char *const skip[] = { "htpasswd", NULL };
	struct conf a, b;
	char out[64];

	subtest("conf_keys_changed: what a reload would keep");
	ok(load(&a, "[proxy]\nlisten = 127.0.0.1:8443\nmax_body = 1M\nhtpasswd = /a\n") == 0 &&
	       load(&b, "[proxy]\nlisten = 127.0.0.1:8443\nmax_body = 1M\nhtpasswd = /a\n") == 0,
	   "two equal configs load");
	is_int(conf_keys_changed(&a, &b, "proxy", NULL, out, sizeof(out)), 0, "equal: none");
	is_str(out, "", "equal: empty list");
	conf_free(&b);
	ok(load(&b, "[proxy]\nlisten = 127.0.0.1:9443, [::1]:9443\nmax_body = 2M\n"
		    "htpasswd = /b\nauth_fail_limit = 3\n[limits]\nclient = 5r/s\n") == 0,
	   "a changed config loads");
	is_int(conf_keys_changed(&a, &b, "proxy", skip, out, sizeof(out)), 3,
	       "listen, max_body, auth_fail_limit differ (htpasswd skipped)");
	is_str(out, "listen, max_body, auth_fail_limit", "named in schema order");
	is_int(conf_keys_changed(&a, &b, "limits", NULL, out, sizeof(out)), 1, "[limits] client");
	is_int(conf_keys_changed(&a, &b, "proxy", NULL, out, 12), 4, "short buffer: still counted");
	is_str(out, "listen, ...", "short buffer: cut with ...");
	conf_free(&a);
	conf_free(&b);
}

int main(void)
{
	test_defaults();
	test_full();
	test_errors();
	test_crlf_and_many_ports();
	test_nul_and_long();
	test_files();
	test_keys_changed();
	return done_testing();
}
