/*
 * proxy: the runtime shared by main.c, worker.c and conn.c.
 *
 * struct proxy is process-wide and built by main.c before any worker exists;
 * afterwards workers only read it, except through atomics. What a reload may
 * change (the [acl] section and the TLS context) lives in a reference-counted
 * struct snap: main.c publishes a new one and bumps px_gen; each worker swaps
 * its own reference when it sees a new generation (one atomic load per request,
 * a mutex only on the swap). The htpasswd table is swapped inside struct auth.
 *
 * struct worker: one thread, one event loop, one SO_REUSEPORT listener per
 * listen address, one backend pool, one metrics block. Everything a worker owns
 * is touched by that thread alone (metrics are also read by the admin endpoint).
 */
#ifndef TFG_PROXY_H
#define TFG_PROXY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accesslog.h"
#include "auth.h"
#include "conf.h"
#include "ev.h"
#include "limit.h"
#include "metrics.h"
#include "tls.h"
#include "token.h"
#include "upstream.h"

/* Idle backend connections kept per worker: enough for a burst on one core. */
#define PROXY_UPSTREAM_IDLE 64

struct snap {
	atomic_uint s_refs;
	struct conf s_conf;    /* the [acl] section and everything else, as loaded */
	struct tls_ctx *s_tls; /* NULL with plain_http */
};

struct conn;

struct worker {
	unsigned w_id;
	pthread_t w_thread;
	struct proxy *w_px;
	struct ev_loop *w_loop;
	int w_lfd[CONF_LISTEN_MAX];
	size_t w_nlfd;
	struct upool w_pool;
	struct auth_queue *w_aq;
	struct metrics w_m;
	struct snap *w_snap; /* this worker's reference */
	unsigned w_gen;
	struct conn *w_conns; /* every open connection, for shutdown */
	unsigned w_nconns;
	bool w_draining;
	struct ev_timer w_drain_timer;
	struct ev_timer w_accept_timer; /* accepting paused after EMFILE */
	struct auth_cred w_cred; /* scratch for decode + cache lookup; wiped after each use */
	uint64_t w_refused_logged;
	uint64_t w_backend_logged;	/* rate limit of backend warnings */
	uint64_t w_throttle_logged;	/* rate limit of "auth: throttled" warnings */
	unsigned long w_throttle_quiet; /* refusals not logged since the last line */
	struct alog_buf w_alog;		/* access-log lines, flushed once per loop iteration */
	struct h2conn *w_h2conns;	/* gRPC (ALPN h2) connections, h2.c */
	struct auth_queue *w_h2aq;	/* their verifier completions */
	struct h2pool *w_h2pool;	/* backend connections of the gRPC path */
};

struct proxy {
	struct conf
	    px_conf; /* as started: listeners, timeouts, (limits and [acl] reload through the snapshot) */
	struct auth *px_auth;
	struct token_store *px_tokens; /* [proxy] tokens, swapped on reload */
	struct limit *px_limit;	       /* [limits]: shared by every worker, sharded locks inside */
	pthread_mutex_t px_snap_lock;  /* only taken to swap/take a snap reference */
	struct snap *px_snap;
	atomic_uint px_gen;
	struct worker *px_workers;
	unsigned px_nworkers;
	atomic_uint px_nconns; /* open client connections, all workers */
	atomic_bool px_stopping;
	struct metrics_global px_mg;
	bool px_tls;
};

/* snap: references. snap_get() takes one on the current snapshot (mutex). */
struct snap *snap_get(struct proxy *px);
void snap_put(struct snap *s);
/* Publishes s (the proxy takes over the caller's reference) and bumps px_gen. */
void snap_publish(struct proxy *px, struct snap *s);

/* worker.c */
/* Opens one listening socket for a (SO_REUSEPORT, non-blocking). -1 with err. */
int worker_listen(const struct addr *a, char *err, size_t errlen);
/* Starts w's thread. Returns 0 or -1 (errno). */
int worker_start(struct worker *w);
/* Thread-safe: asks every worker to stop accepting and finish. */
void worker_stop_all(struct proxy *px);
/* The worker's current snap, refreshed if a reload happened (worker thread). */
struct snap *worker_snap(struct worker *w);

/* conn.c */
/* Takes over fd, an accepted client socket. Closes it on failure. */
void conn_accept(struct worker *w, int fd, const struct sockaddr *sa, socklen_t salen);
/* Resumes connections whose verification finished (the auth queue's callback). */
void conn_auth_ready(struct ev_loop *loop, int fd, uint32_t events, void *arg);
/* A verification whose client is gone: a failure is still counted and logged (via: "" or
 * ", gRPC" in the line). */
struct auth_job;
void conn_auth_abandoned(struct worker *w, const struct auth_job *j, const char *via);
/* Shutdown: closes idle keep-alive connections; the others finish their request first. */
void conn_drain_idle(struct worker *w);
/* Shutdown deadline: closes every connection of w. */
void conn_close_all(struct worker *w);

#endif
