#include "conf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "str.h"

/* A config is a few KiB; 1 MiB means someone pointed -c at the wrong file. */
#define CONF_FILE_MAX (1u << 20)
#define CONF_SEEN_MAX 128

enum conf_type {
	T_PORTS,
	T_BOOL,
	T_PATH, /* a file name; empty means "none" */
	T_TEXT, /* free text, non-empty */
	T_NAME, /* a user name */
	T_ADDR,
	T_LISTEN, /* one or more addresses */
	T_SIZE,
	T_DURATION,
	T_UINT,
	T_ENUM,
	T_AUTH,
	T_RATE,
	T_WORKERS,
};

enum conf_section { S_NONE, S_GUARD, S_PROXY, S_LIMITS, S_ACL };

static const char *const conf_sections[] = { "", "guard", "proxy", "limits", "acl" };

static const char *const conf_log_formats[] = { "json", "combined", NULL };
static const char *const conf_client_certs[] = { "optional", "require", NULL };
static const char *const conf_user_froms[] = { "cn", "san", NULL };

struct conf_key {
	enum conf_section k_section;
	const char *k_name;
	enum conf_type k_type;
	size_t k_off;
	size_t k_size;		      /* T_PATH/T_TEXT/T_NAME: buffer size */
	uint64_t k_min;		      /* T_UINT, T_SIZE, T_DURATION */
	uint64_t k_max;		      /* T_UINT, T_SIZE, T_DURATION; 0 = no upper bound */
	const char *const *k_choices; /* T_ENUM */
};

#define G(f)  offsetof(struct conf, c_guard.f)
#define P(f)  offsetof(struct conf, c_proxy.f)
#define L(f)  offsetof(struct conf, c_limits.f)
#define SZ(f) sizeof(((struct conf *)0)->c_proxy.f)
#define MS(x) ((uint64_t)(x)*1000)

static const struct conf_key conf_keys[] = {
	{ S_GUARD, "protected_ports", T_PORTS, G(g_ports), 0, 0, 0, NULL },
	{ S_GUARD, "log_drops", T_BOOL, G(g_log_drops), 0, 0, 0, NULL },
	{ S_GUARD, "log_rate", T_RATE, G(g_log_rate), 0, 0, 0, NULL },
	{ S_GUARD, "strict", T_BOOL, G(g_strict), 0, 0, 0, NULL },

	{ S_PROXY, "listen", T_LISTEN, P(p_listen), 0, 0, 0, NULL },
	{ S_PROXY, "plain_http", T_BOOL, P(p_plain_http), 0, 0, 0, NULL },
	{ S_PROXY, "tls_cert", T_PATH, P(p_tls_cert), SZ(p_tls_cert), 0, 0, NULL },
	{ S_PROXY, "tls_key", T_PATH, P(p_tls_key), SZ(p_tls_key), 0, 0, NULL },
	{ S_PROXY, "backend_rest", T_ADDR, P(p_backend_rest), 0, 0, 0, NULL },
	{ S_PROXY, "backend_grpc", T_ADDR, P(p_backend_grpc), 0, 0, 0, NULL },
	{ S_PROXY, "htpasswd", T_PATH, P(p_htpasswd), SZ(p_htpasswd), 0, 0, NULL },
	{ S_PROXY, "realm", T_TEXT, P(p_realm), SZ(p_realm), 0, 0, NULL },
	{ S_PROXY, "max_body", T_SIZE, P(p_max_body), 0, 1, 0, NULL },
	{ S_PROXY, "user", T_NAME, P(p_user), SZ(p_user), 0, 0, NULL },
	{ S_PROXY, "access_log", T_PATH, P(p_access_log), SZ(p_access_log), 0, 0, NULL },
	{ S_PROXY, "access_log_format", T_ENUM, P(p_access_log_format), 0, 0, 0, conf_log_formats },
	{ S_PROXY, "auth", T_AUTH, P(p_auth), 0, 0, 0, NULL },
	{ S_PROXY, "tokens", T_PATH, P(p_tokens), SZ(p_tokens), 0, 0, NULL },
	{ S_PROXY, "client_ca", T_PATH, P(p_client_ca), SZ(p_client_ca), 0, 0, NULL },
	{ S_PROXY, "client_crl", T_PATH, P(p_client_crl), SZ(p_client_crl), 0, 0, NULL },
	{ S_PROXY, "client_cert", T_ENUM, P(p_client_cert), 0, 0, 0, conf_client_certs },
	{ S_PROXY, "client_user_from", T_ENUM, P(p_client_user_from), 0, 0, 0, conf_user_froms },
	{ S_PROXY, "token_max_age", T_DURATION, P(p_token_max_age_ms), 0, 0, MS(86400) * 3650,
	  NULL },
	{ S_PROXY, "workers", T_WORKERS, P(p_workers), 0, 1, 256, NULL },
	{ S_PROXY, "admin_listen", T_ADDR, P(p_admin_listen), 0, 0, 0, NULL },
	{ S_PROXY, "handshake_timeout", T_DURATION, P(p_handshake_timeout_ms), 0, 1, MS(3600),
	  NULL },
	{ S_PROXY, "header_timeout", T_DURATION, P(p_header_timeout_ms), 0, 1, MS(3600), NULL },
	{ S_PROXY, "body_timeout", T_DURATION, P(p_body_timeout_ms), 0, 1, MS(3600), NULL },
	{ S_PROXY, "connect_timeout", T_DURATION, P(p_connect_timeout_ms), 0, 1, MS(3600), NULL },
	{ S_PROXY, "response_timeout", T_DURATION, P(p_response_timeout_ms), 0, 1, MS(86400),
	  NULL },
	{ S_PROXY, "idle_timeout", T_DURATION, P(p_idle_timeout_ms), 0, 1, MS(86400), NULL },
	{ S_PROXY, "shutdown_timeout", T_DURATION, P(p_shutdown_timeout_ms), 0, 0, MS(3600), NULL },
	{ S_PROXY, "max_connections", T_UINT, P(p_max_connections), 0, 1, 1000000, NULL },
	{ S_PROXY, "max_header_bytes", T_SIZE, P(p_max_header_bytes), 0, 1024, 1u << 20, NULL },
	{ S_PROXY, "allow_plain_passwords", T_BOOL, P(p_allow_plain_passwords), 0, 0, 0, NULL },
	{ S_PROXY, "auth_fail_limit", T_UINT, P(p_auth_fail_limit), 0, 1, 1000000, NULL },
	{ S_PROXY, "auth_fail_window", T_DURATION, P(p_auth_fail_window_ms), 0, 1000, MS(86400),
	  NULL },
	{ S_PROXY, "cred_cache_size", T_UINT, P(p_cred_cache_size), 0, 0, 10000000, NULL },
	{ S_PROXY, "cred_cache_ttl", T_DURATION, P(p_cred_cache_ttl_ms), 0, 0, MS(86400), NULL },
	{ S_PROXY, "grpc_max_message", T_SIZE, P(p_grpc_max_message), 0, 1024, 1u << 30, NULL },
	{ S_PROXY, "grpc_max_streams", T_UINT, P(p_grpc_max_streams), 0, 1, 1000, NULL },

	{ S_LIMITS, "default", T_RATE, L(l_default), 0, 0, 0, NULL },
	{ S_LIMITS, "client", T_RATE, L(l_client), 0, 0, 0, NULL },
	{ S_LIMITS, "inflight", T_UINT, L(l_inflight), 0, 0, 1000000, NULL },
	{ S_LIMITS, "queue", T_UINT, L(l_queue), 0, 0, 1000000, NULL },
	{ S_LIMITS, "queue_timeout", T_DURATION, L(l_queue_timeout_ms), 0, 0, MS(3600), NULL },
};

struct conf_parser {
	struct conf *cp_conf;
	const char *cp_name;
	unsigned cp_line;
	enum conf_section cp_section;
	char *cp_err;
	size_t cp_errlen;
	/* keys already set: index into conf_keys and the line, for "duplicate" errors */
	struct {
		size_t s_key;
		unsigned s_line;
	} cp_seen[CONF_SEEN_MAX];
	size_t cp_nseen;
};

static int conf_fail(struct conf_parser *cp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int conf_fail(struct conf_parser *cp, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(cp->cp_err, cp->cp_errlen, "%s:%u: ", cp->cp_name, cp->cp_line);
	if (n < 0 || (size_t)n >= cp->cp_errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(cp->cp_err + n, cp->cp_errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

void conf_defaults(struct conf *c)
{
	struct conf_proxy *p = &c->c_proxy;
	char ports[] = "8500, 8501";
	char err[64];

	memset(c, 0, sizeof(*c));
	str_copy(c->c_path, sizeof(c->c_path), CONF_DEFAULT_PATH);
	ports_parse(ports, &c->c_guard.g_ports, err, sizeof(err));
	c->c_guard.g_log_rate = (struct conf_rate){ true, 10, 60, 5 };

	addr_parse("0.0.0.0:8443", &p->p_listen[0]);
	p->p_nlisten = 1;
	str_copy(p->p_tls_cert, sizeof(p->p_tls_cert), "/etc/tfguard/cert.pem");
	str_copy(p->p_tls_key, sizeof(p->p_tls_key), "/etc/tfguard/key.pem");
	addr_parse("127.0.0.1:8501", &p->p_backend_rest);
	addr_parse("127.0.0.1:8500", &p->p_backend_grpc);
	str_copy(p->p_htpasswd, sizeof(p->p_htpasswd), "/etc/tfguard/htpasswd");
	str_copy(p->p_realm, sizeof(p->p_realm), "TensorFlow Serving");
	/* 64 MiB: predict bodies with images or batches are often several MB,
	 * and nginx's 1 MiB default is a well-known source of 413s. */
	p->p_max_body = 64u << 20;
	p->p_grpc_max_message = 64u << 20;
	p->p_grpc_max_streams = 100;
	str_copy(p->p_user, sizeof(p->p_user), "tfguard");
	p->p_access_log_format = CONF_LOG_JSON;
	p->p_auth = CONF_AUTH_BASIC;
	p->p_auth_order[0] = CONF_AUTH_BASIC;
	p->p_nauth = 1;
	p->p_client_cert = CONF_CLIENT_CERT_OPTIONAL;
	p->p_client_user_from = CONF_USER_FROM_CN;
	/* tfguard check warns about API tokens older than this (NIST SP 800-57's "cryptoperiod"
	 * idea; 90 days is what the big API gateways suggest for rotation) */
	p->p_token_max_age_ms = MS(86400) * 90;
	p->p_handshake_timeout_ms = MS(10);
	p->p_header_timeout_ms = MS(10);
	p->p_body_timeout_ms = MS(30);
	p->p_connect_timeout_ms = MS(5);
	p->p_response_timeout_ms = MS(60);
	p->p_idle_timeout_ms = MS(60);
	p->p_shutdown_timeout_ms = MS(10);
	p->p_max_connections = 10000;
	/* 8 KiB lines like nginx's large_client_header_buffers, 32 KiB for the block. */
	p->p_max_header_bytes = 32u << 10;
	p->p_auth_fail_limit = 10;
	p->p_auth_fail_window_ms = MS(60);
	p->p_cred_cache_size = 10000;
	p->p_cred_cache_ttl_ms = MS(300);

	c->c_limits.l_queue_timeout_ms = MS(1);
}

int conf_rate_parse(const char *s, struct conf_rate *out, char *err, size_t errlen)
{
	char buf[128], *items[3], *slash;
	uint64_t rate, burst = 0;
	uint32_t period;
	int n, i;

	if (str_copy(buf, sizeof(buf), s) < 0) {
		snprintf(err, errlen, "rate too long");
		return -1;
	}
	/* "100r/s burst=200": split on spaces; empty runs are folded. */
	n = 0;
	for (char *tok = strtok(buf, " \t"); tok; tok = strtok(NULL, " \t")) {
		if (n == 2) {
			snprintf(err, errlen,
				 "unexpected '%s' (expected RATEr/s or RATEr/m [burst=N])", tok);
			return -1;
		}
		items[n++] = tok;
	}
	if (n == 0) {
		snprintf(err, errlen, "empty rate (expected e.g. 100r/s burst=200)");
		return -1;
	}
	slash = strstr(items[0], "r/");
	if (!slash || (strcmp(slash, "r/s") != 0 && strcmp(slash, "r/m") != 0)) {
		snprintf(err, errlen, "'%s' is not a rate (expected e.g. 100r/s or 600r/m)",
			 items[0]);
		return -1;
	}
	period = slash[2] == 's' ? 1 : 60;
	*slash = '\0';
	if (str_to_u64(items[0], 1000000, &rate) < 0 || rate == 0) {
		snprintf(err, errlen, "rate must be a whole number from 1 to 1000000");
		return -1;
	}
	for (i = 1; i < n; i++) {
		if (strncmp(items[i], "burst=", 6) != 0 ||
		    str_to_u64(items[i] + 6, 10000000, &burst) < 0 || burst == 0) {
			snprintf(err, errlen, "'%s' is not burst=N (N from 1 to 10000000)",
				 items[i]);
			return -1;
		}
	}
	out->r_set = true;
	out->r_rate = (uint32_t)rate;
	out->r_period_s = period;
	out->r_burst = (uint32_t)burst;
	return 0;
}

/* User names as htpasswd and the ACL see them: no ':' (htpasswd separator), no spaces. */
bool conf_name_valid(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
		    !(ch >= '0' && ch <= '9') && !strchr("._@-+", ch))
			return false;
	}
	return true;
}

/* Model names as TF Serving sees them after percent-decoding: no '/', spaces or controls. */
static bool conf_model_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CONF_MODEL_MAX)
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= 0x20 || ch == 0x7f || ch == '/' || ch == ',' || ch == '%')
			return false;
	}
	return true;
}

/*
 * A gRPC method grant in [acl]: "@grpc:SERVICE/METHOD" or "@grpc:SERVICE/…", SERVICE and
 * METHOD made of letters, digits, '_' and '.' (see guard/proxy/grpc.h).
 */
static bool conf_grpc_grant_valid(const char *s)
{
	const char *slash;
	size_t i, n;

	if (strncmp(s, "@grpc:", 6) != 0)
		return false;
	s += 6;
	n = strlen(s);
	slash = strchr(s, '/');
	if (n + 6 >= CONF_MODEL_MAX || slash == NULL || slash == s || slash[1] == '\0')
		return false;
	if (strcmp(slash + 1, "*") == 0)
		n = (size_t)(slash - s) + 1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (s + i == slash)
			continue;
		if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
		    !(ch >= '0' && ch <= '9') && ch != '_' && ch != '.')
			return false;
	}
	return true;
}

static int conf_set_auth(struct conf_parser *cp, char *val)
{
	static const struct {
		const char *name;
		enum conf_auth bit;
	} methods[] = { { "basic", CONF_AUTH_BASIC },
			{ "token", CONF_AUTH_TOKEN },
			{ "mtls", CONF_AUTH_MTLS } };
	struct conf_proxy *p = &cp->cp_conf->c_proxy;
	char *items[4];
	int n, i;
	size_t j;

	n = str_split(val, ',', items, 3);
	if (n < 0)
		return conf_fail(cp, "auth: expected a list of basic, token, mtls");
	p->p_auth = 0;
	p->p_nauth = 0;
	for (i = 0; i < n; i++) {
		for (j = 0; j < 3; j++)
			if (strcmp(items[i], methods[j].name) == 0)
				break;
		if (j == 3)
			return conf_fail(cp, "auth: unknown method '%s' (basic, token, mtls)",
					 items[i]);
		if (p->p_auth & methods[j].bit)
			return conf_fail(cp, "auth: '%s' listed twice", items[i]);
		p->p_auth |= methods[j].bit;
		p->p_auth_order[p->p_nauth++] = (uint8_t)methods[j].bit;
	}
	return 0;
}

static int conf_set_listen(struct conf_parser *cp, char *val)
{
	struct conf_proxy *p = &cp->cp_conf->c_proxy;
	char *items[CONF_LISTEN_MAX];
	int n, i;

	n = str_split(val, ',', items, CONF_LISTEN_MAX);
	if (n < 0)
		return conf_fail(cp,
				 "listen: expected up to %d addresses like 0.0.0.0:8443 or "
				 "[::]:8443",
				 CONF_LISTEN_MAX);
	for (i = 0; i < n; i++)
		if (addr_parse(items[i], &p->p_listen[i]) < 0)
			return conf_fail(cp,
					 "listen: '%s' is not an address like 0.0.0.0:8443 "
					 "or [::]:8443",
					 items[i]);
	p->p_nlisten = (size_t)n;
	return 0;
}

static int conf_set_key(struct conf_parser *cp, const struct conf_key *k, char *val)
{
	char *base = (char *)cp->cp_conf + k->k_off;
	char why[128];
	uint64_t v;

	switch (k->k_type) {
	case T_PORTS:
		/* an empty list is refused earlier ("needs a value") */
		if (ports_parse(val, (struct ports *)base, why, sizeof(why)) < 0)
			return conf_fail(cp, "%s: %s", k->k_name, why);
		return 0;
	case T_BOOL:
		if (str_parse_bool(val, (bool *)base) < 0)
			return conf_fail(cp, "%s: '%s' is not yes or no", k->k_name, val);
		return 0;
	case T_PATH:
		if (val[0] != '\0' && val[0] != '/' && strcmp(val, "-") != 0)
			return conf_fail(cp, "%s: '%s' is not an absolute path", k->k_name, val);
		/* fallthrough */
	case T_TEXT:
		if (k->k_type == T_TEXT && (val[0] == '\0' || strchr(val, '"')))
			return conf_fail(cp, "%s: needs a value without '\"'", k->k_name);
		if (str_copy(base, k->k_size, val) < 0)
			return conf_fail(cp, "%s: value longer than %zu bytes", k->k_name,
					 k->k_size - 1);
		return 0;
	case T_NAME:
		if (!conf_name_valid(val, k->k_size))
			return conf_fail(cp, "%s: '%s' is not a valid user name", k->k_name, val);
		str_copy(base, k->k_size, val);
		return 0;
	case T_ADDR:
		if (addr_parse(val, (struct addr *)base) < 0)
			return conf_fail(cp,
					 "%s: '%s' is not an address like 127.0.0.1:8501 "
					 "or [::1]:8501",
					 k->k_name, val);
		if (k->k_off == P(p_admin_listen))
			cp->cp_conf->c_proxy.p_admin_set = true;
		return 0;
	case T_LISTEN:
		return conf_set_listen(cp, val);
	case T_SIZE:
		if (str_parse_size(val, &v) < 0)
			return conf_fail(cp, "%s: '%s' is not a size like 64M", k->k_name, val);
		break;
	case T_DURATION:
		if (str_parse_duration_ms(val, &v) < 0)
			return conf_fail(cp, "%s: '%s' is not a duration like 10s or 500ms",
					 k->k_name, val);
		break;
	case T_WORKERS:
		if (strcmp(val, "auto") == 0) {
			*(unsigned *)base = 0;
			return 0;
		}
		/* fallthrough */
	case T_UINT:
		if (str_to_u64(val, UINT64_MAX, &v) < 0)
			return conf_fail(cp, "%s: '%s' is not a whole number", k->k_name, val);
		break;
	case T_ENUM:
		for (v = 0; k->k_choices[v]; v++)
			if (strcmp(val, k->k_choices[v]) == 0) {
				*(int *)base = (int)v;
				return 0;
			}
		return conf_fail(cp, "%s: '%s' is not one of %s%s%s", k->k_name, val,
				 k->k_choices[0], k->k_choices[1] ? ", " : "",
				 k->k_choices[1] ? k->k_choices[1] : "");
	case T_AUTH:
		return conf_set_auth(cp, val);
	case T_RATE:
		if (conf_rate_parse(val, (struct conf_rate *)base, why, sizeof(why)) < 0)
			return conf_fail(cp, "%s: %s", k->k_name, why);
		return 0;
	}
	/* numeric types end here: range check, then store */
	if (v < k->k_min || (k->k_max && v > k->k_max))
		return conf_fail(cp, "%s: '%s' is out of range", k->k_name, val);
	if (k->k_type == T_UINT || k->k_type == T_WORKERS)
		*(unsigned *)base = (unsigned)v;
	else
		*(uint64_t *)base = v;
	return 0;
}

static int conf_named_rate_add(struct conf_parser *cp, struct conf_named_rate **arr, size_t *n,
			       const char *kind, const char *name, const char *val)
{
	struct conf_named_rate *nr;
	char why[128];
	size_t i;

	if (strcmp(kind, "user") == 0 ? !conf_name_valid(name, CONF_NAME_MAX)
				      : !conf_model_valid(name))
		return conf_fail(cp, "'%s.%s': '%s' is not a valid %s name", kind, name, name,
				 kind);
	for (i = 0; i < *n; i++)
		if (strcmp((*arr)[i].nr_name, name) == 0)
			return conf_fail(cp, "duplicate key '%s.%s' (first set at line %u)", kind,
					 name, (*arr)[i].nr_line);
	nr = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!nr)
		return conf_fail(cp, "out of memory");
	*arr = nr;
	nr = &nr[*n];
	memset(nr, 0, sizeof(*nr));
	str_copy(nr->nr_name, sizeof(nr->nr_name), name);
	nr->nr_line = cp->cp_line;
	if (conf_rate_parse(val, &nr->nr_rate, why, sizeof(why)) < 0)
		return conf_fail(cp, "%s.%s: %s", kind, name, why);
	(*n)++;
	return 0;
}

static int conf_acl_add(struct conf_parser *cp, const char *user, char *val)
{
	struct conf *c = cp->cp_conf;
	struct conf_acl *acl;
	char *items[256];
	int n, i;
	size_t j;

	if (!conf_name_valid(user, CONF_NAME_MAX))
		return conf_fail(cp, "'%s' is not a valid user name", user);
	for (j = 0; j < c->c_nacl; j++)
		if (strcmp(c->c_acl[j].acl_user, user) == 0)
			return conf_fail(cp, "duplicate user '%s' (first set at line %u)", user,
					 c->c_acl[j].acl_line);
	n = str_split(val, ',', items, 256);
	if (n < 0)
		return conf_fail(cp, "%s: expected '*' or a list of up to 256 model names", user);
	acl = realloc(c->c_acl, (c->c_nacl + 1) * sizeof(*acl));
	if (!acl)
		return conf_fail(cp, "out of memory");
	c->c_acl = acl;
	acl = &acl[c->c_nacl];
	memset(acl, 0, sizeof(*acl));
	str_copy(acl->acl_user, sizeof(acl->acl_user), user);
	acl->acl_line = cp->cp_line;
	c->c_nacl++;
	if (n == 1 && strcmp(items[0], "*") == 0) {
		acl->acl_all = true;
		return 0;
	}
	acl->acl_models = calloc((size_t)n, sizeof(char *));
	if (!acl->acl_models)
		return conf_fail(cp, "out of memory");
	for (i = 0; i < n; i++) {
		/* '*' goes with pseudo-grants ("@metrics", "@grpc:...") but not with names */
		if (strcmp(items[i], "*") == 0) {
			for (j = 0; j < acl->acl_nmodels; j++)
				if (acl->acl_models[j][0] != '@')
					return conf_fail(cp, "%s: '*' must stand alone", user);
			acl->acl_all = true;
			continue;
		}
		if (acl->acl_all && items[i][0] != '@')
			return conf_fail(cp, "%s: '*' must stand alone", user);
		if (strncmp(items[i], "@grpc:", 6) == 0 && !conf_grpc_grant_valid(items[i]))
			return conf_fail(cp,
					 "%s: '%s' is not a valid gRPC grant (@grpc:SERVICE/METHOD "
					 "or @grpc:SERVICE/…)",
					 user, items[i]);
		if (strncmp(items[i], "@grpc:", 6) != 0 && !conf_model_valid(items[i]))
			return conf_fail(cp, "%s: '%s' is not a valid model name", user, items[i]);
		for (j = 0; j < acl->acl_nmodels; j++)
			if (strcmp(acl->acl_models[j], items[i]) == 0)
				return conf_fail(cp, "%s: model '%s' listed twice", user, items[i]);
		acl->acl_models[acl->acl_nmodels] = strdup(items[i]);
		if (!acl->acl_models[acl->acl_nmodels])
			return conf_fail(cp, "out of memory");
		acl->acl_nmodels++;
	}
	return 0;
}

static int conf_keyval(struct conf_parser *cp, char *key, char *val)
{
	struct conf_limits *l = &cp->cp_conf->c_limits;
	size_t i;

	if (cp->cp_section == S_ACL)
		return conf_acl_add(cp, key, val);
	if (cp->cp_section == S_LIMITS && strncmp(key, "user.", 5) == 0)
		return conf_named_rate_add(cp, &l->l_users, &l->l_nusers, "user", key + 5, val);
	if (cp->cp_section == S_LIMITS && strncmp(key, "model.", 6) == 0)
		return conf_named_rate_add(cp, &l->l_models, &l->l_nmodels, "model", key + 6, val);

	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		const struct conf_key *k = &conf_keys[i];
		size_t j;

		if (k->k_section != cp->cp_section || strcmp(k->k_name, key) != 0)
			continue;
		for (j = 0; j < cp->cp_nseen; j++)
			if (cp->cp_seen[j].s_key == i)
				return conf_fail(cp, "duplicate key '%s' (first set at line %u)",
						 key, cp->cp_seen[j].s_line);
		/* conf_keys has fewer than CONF_SEEN_MAX entries, so this cannot overflow */
		cp->cp_seen[cp->cp_nseen].s_key = i;
		cp->cp_seen[cp->cp_nseen++].s_line = cp->cp_line;
		if (val[0] == '\0' && k->k_type != T_PATH)
			return conf_fail(cp, "%s: needs a value", key);
		return conf_set_key(cp, k, val);
	}
	return conf_fail(cp, "unknown key '%s' in [%s]", key, conf_sections[cp->cp_section]);
}

/* Cuts a '#' comment that starts the line or follows white space, outside quotes. */
static void conf_strip_comment(char *s)
{
	bool quoted = false;
	char *p;

	for (p = s; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (*p == '#' && !quoted && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

static int conf_line(struct conf_parser *cp, char *line)
{
	char *s, *eq, *key, *val;
	size_t i, n;

	/* CRLF files (edited on Windows) are fine; a CR anywhere else is not */
	s = line + strlen(line);
	if (s > line && s[-1] == '\r')
		s[-1] = '\0';
	for (s = line; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return conf_fail(cp, "control character 0x%02x in line", (unsigned char)*s);
	conf_strip_comment(line);
	s = str_trim(line);
	if (*s == '\0')
		return 0;
	if (*s == '[') {
		n = strlen(s);
		if (s[n - 1] != ']')
			return conf_fail(cp, "section header without ']'");
		s[n - 1] = '\0';
		s = str_trim(s + 1);
		for (i = 1; i < sizeof(conf_sections) / sizeof(conf_sections[0]); i++)
			if (strcmp(s, conf_sections[i]) == 0) {
				cp->cp_section = (enum conf_section)i;
				if (cp->cp_section == S_PROXY)
					cp->cp_conf->c_has_proxy = true;
				return 0;
			}
		return conf_fail(cp, "unknown section [%s] (guard, proxy, limits, acl)", s);
	}
	eq = strchr(s, '=');
	if (!eq)
		return conf_fail(cp, "expected 'key = value' or '[section]'");
	*eq = '\0';
	key = str_trim(s);
	val = str_trim(eq + 1);
	if (*key == '\0')
		return conf_fail(cp, "missing key before '='");
	if (strpbrk(key, " \t\""))
		return conf_fail(cp, "key '%s' contains white space or quotes", key);
	if (cp->cp_section == S_NONE)
		return conf_fail(cp, "'%s' is outside of a section (add [guard], [proxy], ...)",
				 key);
	n = strlen(val);
	if (n > 0 && val[0] == '"') {
		if (n < 2 || val[n - 1] != '"')
			return conf_fail(cp, "%s: unterminated quote", key);
		val[n - 1] = '\0';
		val++;
		if (strchr(val, '"'))
			return conf_fail(cp, "%s: '\"' inside a quoted value", key);
	}
	return conf_keyval(cp, key, val);
}

/* The line where key name of section sec was set, or 0. */
static unsigned conf_key_line_in(const struct conf_parser *cp, enum conf_section sec,
				 const char *name)
{
	size_t i;

	for (i = 0; i < cp->cp_nseen; i++)
		if (conf_keys[cp->cp_seen[i].s_key].k_section == sec &&
		    strcmp(conf_keys[cp->cp_seen[i].s_key].k_name, name) == 0)
			return cp->cp_seen[i].s_line;
	return 0;
}

/* The line where a [proxy] key was set, or 0 (then the message says so). */
static unsigned conf_key_line(const struct conf_parser *cp, const char *name)
{
	return conf_key_line_in(cp, S_PROXY, name);
}

/* [limits] queue settings without what they refine would silently do nothing. */
static int conf_finish_limits(struct conf_parser *cp)
{
	const struct conf_limits *l = &cp->cp_conf->c_limits;
	unsigned line;

	if (l->l_queue > 0 && l->l_inflight == 0) {
		cp->cp_line = conf_key_line_in(cp, S_LIMITS, "queue");
		return conf_fail(cp, "queue needs inflight (it holds requests over the "
				     "in-flight limit; without inflight there is none)");
	}
	line = conf_key_line_in(cp, S_LIMITS, "queue_timeout");
	if (line != 0 && l->l_queue == 0) {
		cp->cp_line = line;
		return conf_fail(cp, "queue_timeout needs queue (it bounds the wait in the "
				     "queue; without queue nothing waits)");
	}
	return 0;
}

/* Checks that need the whole file: settings that only make sense together.
 * The error points at the `auth` line, the setting that asks for the other. */
static int conf_finish(struct conf_parser *cp)
{
	struct conf_proxy *p = &cp->cp_conf->c_proxy;

	cp->cp_line = conf_key_line(cp, "auth");
	if ((p->p_auth & CONF_AUTH_MTLS) && p->p_client_ca[0] == '\0')
		return conf_fail(cp, "auth includes mtls but [proxy] client_ca is not set");
	if ((p->p_auth & CONF_AUTH_TOKEN) && p->p_tokens[0] == '\0')
		return conf_fail(cp, "auth includes token but [proxy] tokens is not set");
	if (p->p_plain_http && (p->p_auth & CONF_AUTH_MTLS))
		return conf_fail(cp,
				 "auth = mtls needs TLS, but [proxy] plain_http = yes (line %u)",
				 conf_key_line(cp, "plain_http"));
	/* client_* settings without mtls in auth would silently do nothing */
	if (!(p->p_auth & CONF_AUTH_MTLS) && p->p_client_cert == CONF_CLIENT_CERT_REQUIRE) {
		cp->cp_line = conf_key_line(cp, "client_cert");
		return conf_fail(cp, "client_cert = require but auth does not include mtls");
	}
	if (p->p_client_crl[0] != '\0' && p->p_client_ca[0] == '\0') {
		cp->cp_line = conf_key_line(cp, "client_crl");
		return conf_fail(cp, "client_crl is set but client_ca is not (the CRL belongs to "
				     "the client CA)");
	}
	return 0;
}

int conf_load_buf(struct conf *c, const char *name, const char *buf, size_t len, char *err,
		  size_t errlen)
{
	struct conf_parser cp;
	char line[CONF_LINE_MAX + 1];
	size_t off = 0;

	memset(&cp, 0, sizeof(cp));
	cp.cp_conf = c;
	cp.cp_name = name;
	cp.cp_err = err;
	cp.cp_errlen = errlen;
	while (off < len) {
		const char *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (buf + off)) : len - off;

		cp.cp_line++;
		if (n > CONF_LINE_MAX) {
			conf_fail(&cp, "line longer than %d bytes", CONF_LINE_MAX);
			goto fail;
		}
		if (memchr(buf + off, '\0', n)) {
			conf_fail(&cp, "NUL byte in line");
			goto fail;
		}
		memcpy(line, buf + off, n);
		line[n] = '\0';
		if (conf_line(&cp, line) < 0)
			goto fail;
		off += n + (nl ? 1 : 0);
	}
	if (conf_finish(&cp) < 0 || conf_finish_limits(&cp) < 0)
		goto fail;
	return 0;
fail:
	conf_free(c);
	return -1;
}

int conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	return conf_load_filter(c, path, NULL, err, errlen);
}

int conf_load_filter(struct conf *c, const char *path, void (*filter)(char *buf, size_t len),
		     char *err, size_t errlen)
{
	bool optional = path == NULL;
	struct stat st;
	size_t len = 0;
	ssize_t r = 0;
	char *buf;
	int fd, rc;

	conf_defaults(c);
	if (!path)
		path = CONF_DEFAULT_PATH;
	if (str_copy(c->c_path, sizeof(c->c_path), path) < 0) {
		snprintf(err, errlen, "%.64s...: config path too long", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (optional && errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* a character device is accepted for -c /dev/null: "built-in defaults" */
	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	buf = malloc(CONF_FILE_MAX + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	while (len <= CONF_FILE_MAX && ((r = read(fd, buf + len, CONF_FILE_MAX + 1 - len)) > 0 ||
					(r < 0 && errno == EINTR)))
		if (r > 0)
			len += (size_t)r;
	close(fd);
	if (r < 0 || len > CONF_FILE_MAX) {
		if (r < 0)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s: larger than %u bytes, is this the config file?",
				 path, CONF_FILE_MAX);
		free(buf);
		return -1;
	}
	c->c_found = true;
	if (filter)
		filter(buf, len);
	rc = conf_load_buf(c, path, buf, len, err, errlen);
	free(buf);
	return rc;
}

void conf_free(struct conf *c)
{
	size_t i, j;

	for (i = 0; i < c->c_nacl; i++) {
		for (j = 0; j < c->c_acl[i].acl_nmodels; j++)
			free(c->c_acl[i].acl_models[j]);
		free(c->c_acl[i].acl_models);
	}
	free(c->c_acl);
	c->c_acl = NULL;
	c->c_nacl = 0;
	free(c->c_limits.l_users);
	c->c_limits.l_users = NULL;
	c->c_limits.l_nusers = 0;
	free(c->c_limits.l_models);
	c->c_limits.l_models = NULL;
	c->c_limits.l_nmodels = 0;
}

const struct conf_acl *conf_acl_find(const struct conf *c, const char *user)
{
	size_t i;

	for (i = 0; i < c->c_nacl; i++)
		if (strcmp(c->c_acl[i].acl_user, user) == 0)
			return &c->c_acl[i];
	return NULL;
}

static bool conf_key_equal(const struct conf_key *k, const struct conf *a, const struct conf *b)
{
	const char *x = (const char *)a + k->k_off, *y = (const char *)b + k->k_off;

	switch (k->k_type) {
	case T_PORTS:
		return memcmp(x, y, sizeof(struct ports)) == 0;
	case T_BOOL:
		return *(const bool *)x == *(const bool *)y;
	case T_PATH:
	case T_TEXT:
	case T_NAME:
		return strcmp(x, y) == 0;
	case T_ADDR:
		return strcmp(((const struct addr *)x)->a_text, ((const struct addr *)y)->a_text) ==
		       0;
	case T_LISTEN:
		if (a->c_proxy.p_nlisten != b->c_proxy.p_nlisten)
			return false;
		for (size_t i = 0; i < a->c_proxy.p_nlisten; i++)
			if (strcmp(a->c_proxy.p_listen[i].a_text, b->c_proxy.p_listen[i].a_text) !=
			    0)
				return false;
		return true;
	case T_SIZE:
	case T_DURATION:
		return *(const uint64_t *)x == *(const uint64_t *)y;
	case T_UINT:
	case T_WORKERS:
		return *(const unsigned *)x == *(const unsigned *)y;
	case T_ENUM:
		return *(const int *)x == *(const int *)y;
	case T_AUTH:
		return a->c_proxy.p_nauth == b->c_proxy.p_nauth &&
		       memcmp(a->c_proxy.p_auth_order, b->c_proxy.p_auth_order,
			      sizeof(a->c_proxy.p_auth_order)) == 0;
	case T_RATE:
		return memcmp(x, y, sizeof(struct conf_rate)) == 0;
	}
	return false;
}

size_t conf_keys_changed(const struct conf *a, const struct conf *b, const char *section,
			 const char *const *skip, char *out, size_t outlen)
{
	size_t i, n = 0, used = 0;

	if (outlen)
		out[0] = '\0';
	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		const struct conf_key *k = &conf_keys[i];
		const char *const *sk;
		int w;

		if (strcmp(conf_sections[k->k_section], section) != 0 || conf_key_equal(k, a, b))
			continue;
		for (sk = skip; sk && *sk && strcmp(*sk, k->k_name) != 0; sk++)
			;
		if (sk && *sk)
			continue;
		n++;
		if (used >= outlen)
			continue;
		w = snprintf(out + used, outlen - used, "%s%s", used ? ", " : "", k->k_name);
		if (w < 0 || (size_t)w >= outlen - used) {
			/* no room: end with "..." where it fits */
			if (outlen >= 4)
				memcpy(out + outlen - 4, "...", 4);
			used = outlen;
			continue;
		}
		used += (size_t)w;
	}
	return n;
}
