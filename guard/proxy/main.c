/*
 * tfguard-proxy: authenticating TLS reverse proxy for TensorFlow Serving's REST API.
 *
 * The main thread does all privileged work first, in one fixed order (STYLE §6):
 * load config → read cert/key → load htpasswd → open the access log → bind the
 * listeners → drop root → start the verifier pool and the workers. Afterwards it
 * only handles signals (SIGHUP reload, SIGUSR1 log reopen, SIGTERM/SIGINT graceful
 * stop), watches the htpasswd file for changes and serves the metrics endpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "htpasswd.h"
#include "log.h"
#include "privdrop.h"
#include "proxy.h"
#include "str.h"

#define PROG "tfguard-proxy"
/* How often the htpasswd file is checked for changes. */
#define MAIN_HTPASSWD_POLL_MS 1000 /* and the token file */
#define MAIN_ADMIN_MAX	      16
#define MAIN_ADMIN_TIMEOUT_MS 5000

struct admin_conn {
	int ac_fd;
	char ac_buf[4096];
	size_t ac_len;
	struct ev_timer ac_timer;
	struct main_state *ac_ms;
};

struct main_state {
	struct proxy *ms_px;
	const char *ms_conf_path;
	struct ev_loop *ms_loop;
	int ms_sigfd;
	int ms_admin_fd;
	struct ev_timer ms_poll;
	char ms_ht_path[CONF_PATH_MAX];
	struct stat ms_ht_st;
	bool ms_ht_st_ok;
	struct admin_conn *ms_admin[MAIN_ADMIN_MAX];
	unsigned ms_ht_warnings;
	char ms_tok_path[CONF_PATH_MAX]; /* "" when auth has no token */
	struct stat ms_tok_st;
	bool ms_tok_st_ok;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [-c CONF] [--check-config] [-v]\n"
		"\n"
		"Authenticating TLS reverse proxy for the TensorFlow Serving REST API.\n"
		"Reads the [proxy], [limits] and [acl] sections of the tfguard config file.\n"
		"\n"
		"  -c, --config PATH   config file (default " CONF_DEFAULT_PATH ")\n"
		"  -t, --check-config  validate the config, certificate/key pair, client CA/CRL,\n"
		"                      htpasswd and token files, then exit (0 valid, 1 not)\n"
		"  -v, --verbose       debug logging\n"
		"  -V, --version       print the version\n"
		"  -h, --help          this text\n"
		"\n"
		"Signals: HUP reloads htpasswd, tokens, [acl], [limits], the certificate and the\n"
		"client CA/CRL (a bad new file is rejected and the old one stays); htpasswd and\n"
		"tokens are also reloaded when they change; USR1 reopens the access log; TERM/INT "
		"stop\n"
		"accepting and finish in-flight requests within shutdown_timeout.\n"
		"Exit codes: 0 ok, 1 error, 2 usage.\n");
}

static void main_ht_warn(void *arg, const char *file, unsigned line, const char *msg)
{
	struct main_state *ms = arg;

	if (ms != NULL)
		ms->ms_ht_warnings++;
	log_warn("%s:%u: %s", file, line, msg);
}

/*
 * Secret files are checked on an open descriptor: not writable by others, and the key
 * not readable by others. Returns 0 or -1 with a message in err.
 */
static int main_check_file(const char *path, bool secret, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s (check the path in the config)", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(err, errlen, "%s: writable by every user (chmod o-w %s)", path, path);
		return -1;
	}
	if (secret && (st.st_mode & S_IROTH)) {
		snprintf(err, errlen, "%s: readable by every user (chmod 600 %s)", path, path);
		return -1;
	}
	return 0;
}

static struct htpasswd *main_load_htpasswd(struct main_state *ms, const struct conf_proxy *p,
					   char *err, size_t errlen)
{
	struct htpasswd *ht;

	if (main_check_file(p->p_htpasswd, false, err, errlen) < 0)
		return NULL;
	if (ms != NULL)
		ms->ms_ht_warnings = 0;
	ht =
	    htpasswd_load(p->p_htpasswd, p->p_allow_plain_passwords, main_ht_warn, ms, err, errlen);
	if (ht == NULL)
		return NULL;
	if (htpasswd_count_weak(ht) > 0)
		log_warn("%s: %zu user(s) with a weak hash scheme (re-hash with htpasswd -B)",
			 p->p_htpasswd, htpasswd_count_weak(ht));
	return ht;
}

static struct tls_ctx *main_load_tls(const struct conf_proxy *p, char *err, size_t errlen)
{
	struct tls_ctx *t;

	if (main_check_file(p->p_tls_cert, false, err, errlen) < 0 ||
	    main_check_file(p->p_tls_key, true, err, errlen) < 0)
		return NULL;
	t = tls_ctx_new(p->p_tls_cert, p->p_tls_key, err, errlen);
	if (t == NULL || !(p->p_auth & CONF_AUTH_MTLS))
		return t;
	/* mTLS: the client CA (and CRL) belong to the context, so SIGHUP reloads them too */
	if (main_check_file(p->p_client_ca, false, err, errlen) < 0 ||
	    (p->p_client_crl[0] != '\0' &&
	     main_check_file(p->p_client_crl, false, err, errlen) < 0) ||
	    tls_ctx_set_clients(t, p->p_client_ca, p->p_client_crl,
				p->p_client_cert == CONF_CLIENT_CERT_REQUIRE, err, errlen) < 0) {
		tls_ctx_free(t);
		return NULL;
	}
	return t;
}

static void main_tok_warn(void *arg, const char *file, unsigned line, const char *msg)
{
	(void)arg;
	log_warn("%s:%u: %s", file, line, msg);
}

/* The token file of p, or NULL with err; p must list token in auth. */
static struct token_table *main_load_tokens(const struct conf_proxy *p, char *err, size_t errlen)
{
	if (main_check_file(p->p_tokens, false, err, errlen) < 0)
		return NULL;
	return token_load(p->p_tokens, main_tok_warn, NULL, err, errlen);
}

static void main_tok_stat(struct main_state *ms)
{
	ms->ms_tok_st_ok = ms->ms_tok_path[0] != '\0' && stat(ms->ms_tok_path, &ms->ms_tok_st) == 0;
}

/* Reloads the token file (SIGHUP with p, or a change seen by the poll with p == NULL). */
static int main_reload_tokens(struct main_state *ms, const struct conf_proxy *p)
{
	struct proxy *px = ms->ms_px;
	char err[CONF_ERR_MAX];
	struct token_table *t;
	struct conf_proxy cur;

	if (p == NULL) {
		/* the poll: reload the path the current configuration names */
		struct snap *s = snap_get(px);

		cur = s->s_conf.c_proxy;
		snap_put(s);
		p = &cur;
	}
	if (!(p->p_auth & CONF_AUTH_TOKEN)) {
		ms->ms_tok_path[0] = '\0';
		main_tok_stat(ms);
		return 0;
	}
	str_copy(ms->ms_tok_path, sizeof(ms->ms_tok_path), p->p_tokens);
	t = main_load_tokens(p, err, sizeof(err));
	main_tok_stat(ms); /* a bad file is not retried every second */
	if (t == NULL) {
		log_error("reload rejected: %s (the old tokens stay in force)", err);
		return -1;
	}
	log_info("reloaded %s: %zu token(s)", p->p_tokens, token_count(t));
	token_store_set(px->px_tokens, t);
	return 0;
}

static unsigned main_workers(const struct conf_proxy *p)
{
	long n;

	if (p->p_workers > 0)
		return p->p_workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static void main_ht_stat(struct main_state *ms)
{
	ms->ms_ht_st_ok = stat(ms->ms_ht_path, &ms->ms_ht_st) == 0;
}

/* Sanitizer builds stay dumpable: LeakSanitizer ptraces the process from a helper. */
#if defined(__SANITIZE_ADDRESS__)
#define MAIN_KEEP_DUMPABLE true
#else
#define MAIN_KEEP_DUMPABLE false
#endif

/* An empty [acl] lets every user call every model: allowed, but said at every (re)load. */
static void main_warn_acl(const struct conf *c)
{
	if (c->c_nacl == 0)
		log_warn("no [acl] lines: every user in the htpasswd file may call every model "
			 "(add \"user = model, ...\" lines under [acl] to restrict)");
}

/* ---- reload ------------------------------------------------------------------------------ */

static void main_reload(struct main_state *ms, bool htpasswd_only)
{
	struct proxy *px = ms->ms_px;
	char err[CONF_ERR_MAX];
	struct snap *s = NULL;
	struct htpasswd *ht;
	const struct conf_proxy *p;

	if (!htpasswd_only) {
		s = calloc(1, sizeof(*s));
		if (s == NULL) {
			log_error("reload: out of memory (the old configuration stays)");
			goto out_fail;
		}
		atomic_init(&s->s_refs, 1);
		conf_defaults(&s->s_conf);
		if (conf_load(&s->s_conf, ms->ms_conf_path, err, sizeof(err)) < 0) {
			free(s);
			s = NULL;
			log_error("reload rejected: %s (the old configuration stays)", err);
			goto out_fail;
		}
		p = &s->s_conf.c_proxy;
		if (px->px_tls) {
			s->s_tls = main_load_tls(p, err, sizeof(err));
			if (s->s_tls == NULL) {
				/*
				 * Keep serving the old certificate, but do not hold back the rest
				 * (a root-only key cannot be re-read after the privilege drop).
				 */
				struct snap *cur = snap_get(px);

				log_error(
				    "reload: certificate not reloaded: %s (the old certificate "
				    "stays)",
				    err);
				s->s_tls = tls_ctx_ref(cur->s_tls);
				snap_put(cur);
			}
		}
		{
			/* what a reload does take over: see usage() and the README */
			static const char *const reloaded[] = { "htpasswd",
								"allow_plain_passwords",
								"tls_cert",
								"tls_key",
								"auth",
								"tokens",
								"token_max_age",
								"client_ca",
								"client_crl",
								"client_cert",
								"client_user_from",
								"realm",
								NULL };
			char keys[512];

			if (conf_keys_changed(&px->px_conf, &s->s_conf, "proxy", reloaded, keys,
					      sizeof(keys)) > 0)
				log_warn(
				    "reload: [proxy] %s changed: kept as started until a "
				    "restart (a reload takes htpasswd, tokens, auth, client_*, "
				    "the certificate, [acl] and [limits])",
				    keys);
		}
		main_warn_acl(&s->s_conf);
		if (main_reload_tokens(ms, p) < 0)
			goto out_fail;
		if (!(p->p_auth & CONF_AUTH_BASIC)) {
			/* no Basic on this listener: no htpasswd to read, nobody logs in by password */
			ms->ms_ht_path[0] = '\0';
			log_info("reloaded %s: %zu [acl] entr%s (auth without basic)",
				 ms->ms_conf_path, s->s_conf.c_nacl,
				 s->s_conf.c_nacl == 1 ? "y" : "ies");
			snap_publish(px, s);
			auth_set_htpasswd(px->px_auth, NULL);
			main_ht_stat(ms);
			atomic_fetch_add(&px->px_mg.g_reload_ok, 1);
			return;
		}
	} else {
		p = &px->px_conf.c_proxy;
		{
			struct snap *cur = snap_get(px);

			str_copy(ms->ms_ht_path, sizeof(ms->ms_ht_path),
				 cur->s_conf.c_proxy.p_htpasswd);
			ht = NULL;
			/* Load with the current snapshot's path and opt-ins. */
			ht = main_load_htpasswd(ms, &cur->s_conf.c_proxy, err, sizeof(err));
			snap_put(cur);
		}
		goto out_check_ht;
	}
	ht = main_load_htpasswd(ms, p, err, sizeof(err));
out_check_ht:
	if (ht == NULL) {
		log_error("reload rejected: %s (the old htpasswd stays in force)", err);
		goto out_fail;
	}
	if (htpasswd_count(ht) == 0) {
		log_error("reload rejected: %s: no usable entry (the old htpasswd stays in force)",
			  s ? s->s_conf.c_proxy.p_htpasswd : ms->ms_ht_path);
		htpasswd_unref(ht);
		goto out_fail;
	}
	if (s != NULL) {
		str_copy(ms->ms_ht_path, sizeof(ms->ms_ht_path), s->s_conf.c_proxy.p_htpasswd);
		log_info("reloaded %s: %zu user(s), %zu [acl] entr%s%s", ms->ms_conf_path,
			 htpasswd_count(ht), s->s_conf.c_nacl, s->s_conf.c_nacl == 1 ? "y" : "ies",
			 px->px_tls ? ", certificate" : "");
		snap_publish(px, s);
		s = NULL;
	} else {
		log_info("reloaded %s: %zu user(s)", ms->ms_ht_path, htpasswd_count(ht));
	}
	auth_set_htpasswd(px->px_auth, ht);
	main_ht_stat(ms);
	atomic_fetch_add(&px->px_mg.g_reload_ok, 1);
	return;
out_fail:
	if (s != NULL)
		snap_put(s);
	main_ht_stat(ms); /* do not retry the same bad file every second */
	atomic_fetch_add(&px->px_mg.g_reload_failed, 1);
}

/* True when path's file differs from what *old recorded. */
static bool main_file_changed(const char *path, const struct stat *old, bool old_ok)
{
	struct stat st;

	if (path[0] == '\0' || stat(path, &st) != 0)
		return false;
	return !old_ok || st.st_ino != old->st_ino || st.st_dev != old->st_dev ||
	       st.st_size != old->st_size || st.st_mtim.tv_sec != old->st_mtim.tv_sec ||
	       st.st_mtim.tv_nsec != old->st_mtim.tv_nsec ||
	       st.st_ctim.tv_sec != old->st_ctim.tv_sec ||
	       st.st_ctim.tv_nsec != old->st_ctim.tv_nsec;
}

static void main_poll_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct main_state *ms = arg;
	struct stat st;
	bool ok;

	(void)fd;
	(void)events;
	if (main_file_changed(ms->ms_tok_path, &ms->ms_tok_st, ms->ms_tok_st_ok)) {
		log_info("%s changed: reloading it", ms->ms_tok_path);
		if (main_reload_tokens(ms, NULL) == 0)
			atomic_fetch_add(&ms->ms_px->px_mg.g_reload_ok, 1);
		else
			atomic_fetch_add(&ms->ms_px->px_mg.g_reload_failed, 1);
	}
	ok = stat(ms->ms_ht_path, &st) == 0;
	if (ok && (!ms->ms_ht_st_ok || st.st_ino != ms->ms_ht_st.st_ino ||
		   st.st_dev != ms->ms_ht_st.st_dev || st.st_size != ms->ms_ht_st.st_size ||
		   st.st_mtim.tv_sec != ms->ms_ht_st.st_mtim.tv_sec ||
		   st.st_mtim.tv_nsec != ms->ms_ht_st.st_mtim.tv_nsec ||
		   st.st_ctim.tv_sec != ms->ms_ht_st.st_ctim.tv_sec ||
		   st.st_ctim.tv_nsec != ms->ms_ht_st.st_ctim.tv_nsec)) {
		log_info("%s changed: reloading it", ms->ms_ht_path);
		main_reload(ms, true);
	}
	ev_timer_add(loop, &ms->ms_poll, MAIN_HTPASSWD_POLL_MS, main_poll_cb, ms);
}

/* ---- admin endpoint (metrics) --------------------------------------------------------------- */

static void admin_close(struct admin_conn *ac)
{
	struct main_state *ms = ac->ac_ms;
	unsigned i;

	ev_timer_del(ms->ms_loop, &ac->ac_timer);
	ev_del(ms->ms_loop, ac->ac_fd);
	close(ac->ac_fd);
	for (i = 0; i < MAIN_ADMIN_MAX; i++)
		if (ms->ms_admin[i] == ac)
			ms->ms_admin[i] = NULL;
	free(ac);
}

static void admin_timeout_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	(void)loop;
	(void)fd;
	(void)events;
	admin_close(arg);
}

static void admin_reply(struct admin_conn *ac, int status, const char *ctype, const char *body,
			size_t n)
{
	char head[256];
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			  "Connection: close\r\n\r\n",
			  status, status == 200 ? "OK" : "Not Found", ctype, n);
	struct timeval tv = { 2, 0 };
	int fl = fcntl(ac->ac_fd, F_GETFL);

	/* The scrape is small and off the request path: a blocking write with a deadline. */
	if (fl >= 0)
		(void)fcntl(ac->ac_fd, F_SETFL, fl & ~O_NONBLOCK);
	(void)setsockopt(ac->ac_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (send(ac->ac_fd, head, (size_t)hl, MSG_NOSIGNAL) == hl)
		(void)send(ac->ac_fd, body, n, MSG_NOSIGNAL);
}

static void admin_read_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct admin_conn *ac = arg;
	struct main_state *ms = ac->ac_ms;
	ssize_t r;

	(void)loop;
	(void)events;
	r = recv(fd, ac->ac_buf + ac->ac_len, sizeof(ac->ac_buf) - 1 - ac->ac_len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		admin_close(ac);
		return;
	}
	ac->ac_len += (size_t)r;
	ac->ac_buf[ac->ac_len] = '\0';
	if (strstr(ac->ac_buf, "\r\n\r\n") == NULL && strstr(ac->ac_buf, "\n\n") == NULL) {
		if (ac->ac_len >= sizeof(ac->ac_buf) - 1)
			admin_close(ac);
		return;
	}
	if (strncmp(ac->ac_buf, "GET /metrics ", 13) == 0 ||
	    strncmp(ac->ac_buf, "GET /metrics?", 13) == 0) {
		struct proxy *px = ms->ms_px;
		struct metrics *ws[256];
		char *text = NULL;
		size_t n = 0, i;
		FILE *f = open_memstream(&text, &n);

		for (i = 0; i < px->px_nworkers && i < 256; i++)
			ws[i] = &px->px_workers[i].w_m;
		if (f != NULL) {
			metrics_render(f, ws, i, &px->px_mg);
			limit_metrics_render(f, px->px_limit);
			fclose(f);
			admin_reply(ac, 200, "text/plain; version=0.0.4", text, n);
		}
		free(text);
	} else if (strncmp(ac->ac_buf, "GET /healthz ", 13) == 0) {
		admin_reply(ac, 200, "text/plain", "ok\n", 3);
	} else {
		admin_reply(ac, 404, "text/plain", "not found: GET /metrics or /healthz\n", 36);
	}
	admin_close(ac);
}

static void admin_accept_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct main_state *ms = arg;
	struct admin_conn *ac;
	unsigned i;
	int cfd;

	(void)events;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	for (i = 0; i < MAIN_ADMIN_MAX && ms->ms_admin[i] != NULL; i++)
		;
	if (i == MAIN_ADMIN_MAX || (ac = calloc(1, sizeof(*ac))) == NULL) {
		close(cfd);
		return;
	}
	ac->ac_fd = cfd;
	ac->ac_ms = ms;
	if (ev_add(loop, cfd, EV_READ, admin_read_cb, ac) < 0) {
		close(cfd);
		free(ac);
		return;
	}
	ms->ms_admin[i] = ac;
	ev_timer_add(loop, &ac->ac_timer, MAIN_ADMIN_TIMEOUT_MS, admin_timeout_cb, ac);
}

/* ---- signals ---------------------------------------------------------------------------------- */

static void main_signal_cb(struct ev_loop *loop, int fd, uint32_t events, void *arg)
{
	struct main_state *ms = arg;
	struct signalfd_siginfo si;
	char err[CONF_ERR_MAX];

	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			log_info("SIGHUP: reloading");
			main_reload(ms, false);
			break;
		case SIGUSR1:
			if (accesslog_reopen(err, sizeof(err)) < 0)
				log_error("%s", err);
			else
				log_info("SIGUSR1: access log reopened");
			break;
		case SIGTERM:
		case SIGINT:
			log_info("%s: stopping (finishing in-flight requests)",
				 si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
			ev_stop(loop);
			return;
		default:
			break;
		}
	}
}

/* ---- start-up ------------------------------------------------------------------------------- */

static void main_raise_nofile(unsigned max_conns)
{
	struct rlimit rl, want;
	rlim_t need = (rlim_t)max_conns * 2 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return;
	/* Raising the hard limit needs CAP_SYS_RESOURCE; fall back to the hard limit. */
	want.rlim_cur = need;
	want.rlim_max = rl.rlim_max > need ? rl.rlim_max : need;
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		return;
	want.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
	want.rlim_max = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &want) < 0 || want.rlim_cur < need)
		log_warn("open-files limit %llu is below what max_connections %u needs (%llu); "
			 "connections past it are refused",
			 (unsigned long long)want.rlim_cur, max_conns, (unsigned long long)need);
}

static int main_check_config(const char *conf_path, struct conf *c)
{
	const struct conf_proxy *p = &c->c_proxy;
	char err[CONF_ERR_MAX];
	struct htpasswd *ht;
	int rc = 0;

	if (!p->p_plain_http) {
		struct tls_ctx *t = main_load_tls(p, err, sizeof(err));

		if (t == NULL) {
			log_error("%s", err);
			rc = 1;
		}
		tls_ctx_free(t);
	}
	if (p->p_auth & CONF_AUTH_BASIC) {
		ht = main_load_htpasswd(NULL, p, err, sizeof(err));
		if (ht == NULL) {
			log_error("%s", err);
			rc = 1;
		} else if (htpasswd_count(ht) == 0) {
			log_error("%s: no usable entry (nobody could log in)", p->p_htpasswd);
			rc = 1;
		}
		htpasswd_unref(ht);
	}
	if (p->p_auth & CONF_AUTH_TOKEN) {
		struct token_table *t = main_load_tokens(p, err, sizeof(err));

		if (t == NULL) {
			log_error("%s", err);
			rc = 1;
		}
		token_unref(t);
	}
	if (geteuid() == 0) {
		uid_t uid;
		gid_t gid;

		if (privdrop_lookup(p->p_user, &uid, &gid, err, sizeof(err)) < 0) {
			log_error("%s", err);
			rc = 1;
		}
	}
	if (rc == 0)
		printf("%s: configuration ok\n", c->c_found ? conf_path : "(built-in defaults)");
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct proxy px;
	static struct main_state ms;
	const char *conf_path = NULL;
	bool check = false;
	char err[CONF_ERR_MAX];
	struct htpasswd *ht;
	struct snap *s;
	sigset_t sigs;
	unsigned nw, i;
	size_t j;
	int o, dropped, rc = 1;
	struct conf_proxy *p;

	log_init(PROG, LOG_LEVEL_INFO);
	while ((o = getopt_long(argc, argv, "c:tvVh", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			conf_path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'V':
			printf(PROG " " TFG_VERSION "\n");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	/* 1. config */
	conf_defaults(&px.px_conf);
	if (conf_load(&px.px_conf, conf_path, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	p = &px.px_conf.c_proxy;
	/* Before any secret is read (--check-config reads the key too): no core file, no
	 * ptrace by the same user. */
	if (privdrop_nodump(MAIN_KEEP_DUMPABLE, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (check)
		return main_check_config(conf_path ? conf_path : CONF_DEFAULT_PATH, &px.px_conf);
	if (!addr_is_loopback((const struct sockaddr *)&p->p_backend_rest.a_ss))
		log_warn("backend_rest %s is not a loopback address: traffic to it is plain HTTP",
			 p->p_backend_rest.a_text);
	px.px_tls = !p->p_plain_http;
	if (!px.px_tls)
		log_warn("plain_http = yes: listening WITHOUT TLS; passwords cross the network in "
			 "the clear unless another TLS terminator is in front");

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	/* Blocked before any thread exists, so every thread inherits the mask. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* 2. certificate and key (the key stays inside the SSL_CTX) */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return 1;
	atomic_init(&s->s_refs, 1);
	/* s_conf shares nothing with px_conf: load the file again for the snapshot's copy. */
	conf_defaults(&s->s_conf);
	if (conf_load(&s->s_conf, conf_path, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (px.px_tls) {
		s->s_tls = main_load_tls(p, err, sizeof(err));
		if (s->s_tls == NULL) {
			log_error("%s", err);
			return 1;
		}
	}
	/* 3. htpasswd (with Basic) and tokens (with token) */
	ht = NULL;
	if (p->p_auth & CONF_AUTH_BASIC) {
		ht = main_load_htpasswd(&ms, p, err, sizeof(err));
		if (ht == NULL) {
			log_error("%s", err);
			return 1;
		}
		if (htpasswd_count(ht) == 0)
			log_warn("%s: no usable entry: nobody can log in", p->p_htpasswd);
	}
	px.px_tokens = token_store_new(NULL);
	if (px.px_tokens == NULL)
		return 1;
	if (p->p_auth & CONF_AUTH_TOKEN) {
		struct token_table *tt = main_load_tokens(p, err, sizeof(err));

		if (tt == NULL) {
			log_error("%s", err);
			return 1;
		}
		if (token_count(tt) == 0)
			log_warn("%s: no usable token: nobody can log in with one", p->p_tokens);
		token_store_set(px.px_tokens, tt);
	}
	main_warn_acl(&px.px_conf);
	/* 4. access log (opened as root, then handed to the service user) */
	if (accesslog_open(p->p_access_log, p->p_access_log_format, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	/* 5. listeners: one per worker per address, SO_REUSEPORT */
	nw = main_workers(p);
	main_raise_nofile(p->p_max_connections);
	px.px_workers = calloc(nw, sizeof(*px.px_workers));
	if (px.px_workers == NULL)
		return 1;
	px.px_nworkers = nw;
	for (i = 0; i < nw; i++) {
		struct worker *w = &px.px_workers[i];

		w->w_id = i;
		w->w_px = &px;
		for (j = 0; j < p->p_nlisten; j++) {
			w->w_lfd[j] = worker_listen(&p->p_listen[j], err, sizeof(err));
			if (w->w_lfd[j] < 0) {
				log_error("%s", err);
				return 1;
			}
			w->w_nlfd = j + 1;
		}
	}
	ms.ms_admin_fd = -1;
	if (p->p_admin_set) {
		ms.ms_admin_fd = worker_listen(&p->p_admin_listen, err, sizeof(err));
		if (ms.ms_admin_fd < 0) {
			log_error("admin_listen: %s", err);
			return 1;
		}
		if (!addr_is_loopback((const struct sockaddr *)&p->p_admin_listen.a_ss))
			log_warn("admin_listen %s is not loopback: metrics are unauthenticated",
				 p->p_admin_listen.a_text);
	}
	/* 6. drop root for good */
	if (geteuid() == 0) {
		uid_t uid;
		gid_t gid;
		int afd = -1;

		if (privdrop_lookup(p->p_user, &uid, &gid, err, sizeof(err)) < 0) {
			log_error("%s", err);
			return 1;
		}
		/* The log stays writable for reopen-by-path only if its owner is the service user. */
		if (p->p_access_log[0] != '\0' && strcmp(p->p_access_log, "-") != 0) {
			afd = open(p->p_access_log, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
			if (afd >= 0) {
				if (fchown(afd, uid, gid) < 0)
					log_warn("%s: cannot chown to %s: %s", p->p_access_log,
						 p->p_user, strerror(errno));
				close(afd);
			}
		}
	}
	dropped = privdrop_to(p->p_user, err, sizeof(err));
	if (dropped < 0) {
		log_error("%s", err);
		return 1;
	}
	if (dropped)
		log_info("running as %s", p->p_user);
#if defined(__SANITIZE_ADDRESS__)
	/* LeakSanitizer stops the world with ptrace from a forked helper: no filter there. */
	log_info("sanitizer build: seccomp filter not installed");
#else
	if (privdrop_lockdown(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
#endif

	/* 7. verifier pool, snapshot, workers */
	px.px_auth = auth_new(p, ht, nw < 2 ? 2 : nw, err, sizeof(err));
	if (px.px_auth == NULL) {
		log_error("%s", err);
		return 1;
	}
	px.px_limit = limit_new(LIMIT_ENTRIES_DEFAULT, err, sizeof(err));
	if (px.px_limit == NULL) {
		log_error("%s", err);
		return 1;
	}
	pthread_mutex_init(&px.px_snap_lock, NULL);
	px.px_snap = s;
	atomic_store(&px.px_mg.g_workers, nw);
	atomic_store(&px.px_mg.g_start_time, (uint64_t)time(NULL));

	ms.ms_px = &px;
	ms.ms_conf_path = conf_path;
	if (p->p_auth & CONF_AUTH_BASIC)
		str_copy(ms.ms_ht_path, sizeof(ms.ms_ht_path), p->p_htpasswd);
	main_ht_stat(&ms);
	if (p->p_auth & CONF_AUTH_TOKEN)
		str_copy(ms.ms_tok_path, sizeof(ms.ms_tok_path), p->p_tokens);
	main_tok_stat(&ms);
	ms.ms_loop = ev_new();
	if (ms.ms_loop == NULL)
		return 1;
	ms.ms_sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ms.ms_sigfd < 0 || ev_add(ms.ms_loop, ms.ms_sigfd, EV_READ, main_signal_cb, &ms) < 0) {
		log_error("signalfd: %s", strerror(errno));
		return 1;
	}
	if (ms.ms_admin_fd >= 0 &&
	    ev_add(ms.ms_loop, ms.ms_admin_fd, EV_READ, admin_accept_cb, &ms) < 0)
		return 1;
	ev_timer_add(ms.ms_loop, &ms.ms_poll, MAIN_HTPASSWD_POLL_MS, main_poll_cb, &ms);

	for (i = 0; i < nw; i++) {
		if (worker_start(&px.px_workers[i]) < 0) {
			log_error("worker %u: %s", i, strerror(errno));
			return 1;
		}
	}
	for (j = 0; j < p->p_nlisten; j++)
		log_info("listening on %s (%s), backend %s, %u worker(s)", p->p_listen[j].a_text,
			 px.px_tls ? "TLS" : "plain HTTP", p->p_backend_rest.a_text, nw);
	if (ms.ms_admin_fd >= 0)
		log_info("metrics on http://%s/metrics", p->p_admin_listen.a_text);

	if (ev_run(ms.ms_loop) < 0)
		log_error("main loop: %s", strerror(errno));
	else
		rc = 0;

	/* Graceful stop: workers stop accepting, finish, and give up at shutdown_timeout. */
	worker_stop_all(&px);
	for (i = 0; i < nw; i++)
		pthread_join(px.px_workers[i].w_thread, NULL);
	log_info("stopped");
	auth_free(px.px_auth);
	token_store_free(px.px_tokens);
	limit_free(px.px_limit);
	accesslog_close();
	return rc;
}
