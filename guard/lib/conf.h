/*
 * conf: the one config file of every tfguard program (/etc/tfguard/tfguard.conf).
 *
 * INI-style: "[section]" lines, "key = value" lines, '#' comments (at the start
 * of a line or after white space). Every section is validated by every program,
 * whether it uses it or not, so a typo is found by the first program that reads
 * the file. Errors are "FILE:LINE: message".
 *
 * A struct conf owns everything it points to; conf_free() releases it. Not
 * shared between threads while being loaded; read-only afterwards.
 */
#ifndef TFG_CONF_H
#define TFG_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "ports.h"

#define CONF_DEFAULT_PATH "/etc/tfguard/tfguard.conf"
#define CONF_PATH_MAX	  512
#define CONF_NAME_MAX	  64  /* user names (htpasswd, ACL, limits) */
#define CONF_MODEL_MAX	  256 /* model names */
#define CONF_LISTEN_MAX	  8
#define CONF_LINE_MAX	  4096
#define CONF_ERR_MAX	  (CONF_PATH_MAX + 256)

/* A token bucket: `rate` requests per `period_s` seconds, up to `burst` at once. */
struct conf_rate {
	bool r_set;
	uint32_t r_rate;
	uint32_t r_period_s; /* 1 (r/s) or 60 (r/m) */
	uint32_t r_burst;    /* 0 = same as rate */
};

struct conf_named_rate {
	char nr_name[CONF_MODEL_MAX];
	struct conf_rate nr_rate;
	unsigned nr_line;
};

struct conf_acl {
	char acl_user[CONF_NAME_MAX];
	bool acl_all; /* "*" */
	char **acl_models;
	size_t acl_nmodels;
	unsigned acl_line;
};

enum conf_auth { CONF_AUTH_BASIC = 1, CONF_AUTH_TOKEN = 2, CONF_AUTH_MTLS = 4 };
enum conf_client_cert { CONF_CLIENT_CERT_OPTIONAL, CONF_CLIENT_CERT_REQUIRE };
enum conf_user_from { CONF_USER_FROM_CN, CONF_USER_FROM_SAN };
enum conf_log_format { CONF_LOG_JSON, CONF_LOG_COMBINED };

struct conf_guard {
	struct ports g_ports;
	bool g_log_drops;
	struct conf_rate g_log_rate; /* how many drop log lines, at most */
	bool g_strict;		     /* drop all forwarded TCP to protected ports */
};

struct conf_proxy {
	struct addr p_listen[CONF_LISTEN_MAX];
	size_t p_nlisten;
	bool p_plain_http; /* listen without TLS (behind another terminator) */
	char p_tls_cert[CONF_PATH_MAX];
	char p_tls_key[CONF_PATH_MAX];
	struct addr p_backend_rest;
	struct addr p_backend_grpc;
	char p_htpasswd[CONF_PATH_MAX];
	char p_realm[128];
	uint64_t p_max_body;
	char p_user[CONF_NAME_MAX];
	char p_access_log[CONF_PATH_MAX]; /* "" = none, "-" = stderr */
	enum conf_log_format p_access_log_format;
	unsigned p_auth;	 /* bitmask of enum conf_auth */
	uint8_t p_auth_order[3]; /* the methods in the order given */
	size_t p_nauth;
	char p_tokens[CONF_PATH_MAX];
	char p_client_ca[CONF_PATH_MAX];
	char p_client_crl[CONF_PATH_MAX];
	enum conf_client_cert p_client_cert;
	enum conf_user_from p_client_user_from;
	uint64_t p_token_max_age_ms; /* tfguard check warns past it; 0 = never */
	unsigned p_workers;	     /* 0 = one per core */
	bool p_admin_set;
	struct addr p_admin_listen; /* metrics */
	uint64_t p_handshake_timeout_ms;
	uint64_t p_header_timeout_ms;
	uint64_t p_body_timeout_ms;
	uint64_t p_connect_timeout_ms;
	uint64_t p_response_timeout_ms;
	uint64_t p_idle_timeout_ms;
	uint64_t p_shutdown_timeout_ms;
	unsigned p_max_connections;
	uint64_t p_max_header_bytes;
	bool p_allow_plain_passwords; /* {PLAIN} htpasswd entries */
	unsigned p_auth_fail_limit;
	uint64_t p_auth_fail_window_ms;
	unsigned p_cred_cache_size;
	uint64_t p_cred_cache_ttl_ms;
	uint64_t p_grpc_max_message; /* bytes of one gRPC message, either way */
	unsigned p_grpc_max_streams; /* concurrent HTTP/2 streams per client connection */
};

struct conf_limits {
	struct conf_rate l_default; /* each authenticated user */
	struct conf_rate l_client;  /* each client address */
	unsigned l_inflight;	    /* 0 = unlimited */
	unsigned l_queue;
	uint64_t l_queue_timeout_ms;
	struct conf_named_rate *l_users;
	size_t l_nusers;
	struct conf_named_rate *l_models;
	size_t l_nmodels;
};

struct conf {
	char c_path[CONF_PATH_MAX];
	bool c_found;	  /* false: the default path did not exist and defaults are in force */
	bool c_has_proxy; /* a [proxy] section was given: the proxy is in use */
	struct conf_guard c_guard;
	struct conf_proxy c_proxy;
	struct conf_limits c_limits;
	struct conf_acl *c_acl;
	size_t c_nacl;
};

/* Fills c with the built-in defaults (protected ports 8500, 8501, ...). */
void conf_defaults(struct conf *c);
/*
 * Loads path over the defaults. If path is NULL, CONF_DEFAULT_PATH is used and
 * a missing file is not an error (c_found = false). Returns 0, or -1 with
 * "FILE:LINE: message" (or "FILE: message") in err; c is then freed.
 */
int conf_load(struct conf *c, const char *path, char *err, size_t errlen);
/* conf_load, with filter (if not NULL) rewriting the file's text in place before
 * it is parsed (tfguard apply --fallback blanks every section but [guard]). */
int conf_load_filter(struct conf *c, const char *path, void (*filter)(char *buf, size_t len),
		     char *err, size_t errlen);
/*
 * Parses buf over whatever c holds (call conf_defaults() first); name is used
 * in messages. For tests, fuzzing and conf_load().
 */
int conf_load_buf(struct conf *c, const char *name, const char *buf, size_t len, char *err,
		  size_t errlen);
void conf_free(struct conf *c);
/* Parses "100r/s", "10r/m burst=20". Returns 0 or -1 with a reason in err. */
int conf_rate_parse(const char *s, struct conf_rate *out, char *err, size_t errlen);
/* A user name as htpasswd, tokens, certificates and the ACL must spell it:
 * 1..max-1 bytes of [A-Za-z0-9._@+-]. */
bool conf_name_valid(const char *s, size_t max);
/* The ACL entry of user, or NULL. */
const struct conf_acl *conf_acl_find(const struct conf *c, const char *user);

/*
 * The keys of [section] whose values differ between a and b, as "k1, k2, ..." in out
 * (truncated with "..."), skipping the names in skip (NULL-terminated; may be NULL).
 * Returns how many differ. For reloads: which settings a running program keeps.
 */
size_t conf_keys_changed(const struct conf *a, const struct conf *b, const char *section,
			 const char *const *skip, char *out, size_t outlen);

#endif
