/*
 * tls: the proxy's server-side TLS, OpenSSL hidden behind four calls.
 *
 * tls_ctx_new() builds one SSL_CTX with the Mozilla "intermediate" profile set
 * explicitly (TLS 1.2 + 1.3, AEAD ECDHE/DHE suites only: no CBC, no RSA key
 * exchange), loads the certificate chain and the key, checks that they match,
 * and enables session resumption (session cache and tickets; the ticket keys are
 * the process's own, shared by every context, and rotate every TLS_TICKET_ROTATE_S
 * seconds, the previous key still accepted for one more period). A context is
 * reference-counted by OpenSSL: each connection's SSL holds it, so a reload can
 * swap contexts while old connections finish on the old one.
 *
 * tls_read()/tls_write() return bytes, TLS_WANT_READ, TLS_WANT_WRITE, 0 on a
 * clean close (read only) or -1 on error. Reentrant per SSL object.
 */
#ifndef TFG_TLS_H
#define TFG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define TLS_TICKET_ROTATE_S 3600

#define TLS_WANT_READ  (-2)
#define TLS_WANT_WRITE (-3)

struct tls_ctx; /* an SSL_CTX */
struct tls;	/* an SSL */

/* Returns a context, or NULL with "object: reason (what to do)" in err. */
struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
/*
 * A new context with the certificate chain and key of old (shared, not re-read): for a
 * reload that must apply a new client CA/CRL while the key file is root-only.
 */
struct tls_ctx *tls_ctx_new_from(struct tls_ctx *old, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);
/* Takes one more reference on ctx (each reference is dropped with tls_ctx_free). */
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);
/* A new server-side TLS object on fd, or NULL. */
struct tls *tls_new(struct tls_ctx *ctx, int fd);
void tls_free(struct tls *t);
/* 1 when the handshake is done, TLS_WANT_READ/TLS_WANT_WRITE, or -1. */
int tls_handshake(struct tls *t);
ssize_t tls_read(struct tls *t, void *buf, size_t len);
ssize_t tls_write(struct tls *t, const void *buf, size_t len);
/* True when OpenSSL holds bytes (decrypted or not) that epoll cannot see: read first. */
int tls_pending(struct tls *t);
/*
 * Keeps *drained current with each socket read OpenSSL makes: true after one that came
 * back short or with EAGAIN (the kernel buffer is empty), false after a full one.
 */
void tls_track_reads(struct tls *t, bool *drained);
/* Sends close_notify without waiting for the peer's. */
void tls_shutdown(struct tls *t);
/* "TLSv1.3" etc., for logs. */
const char *tls_version(struct tls *t);
/* True when ALPN chose "h2" (the gRPC path; see tls_alpn_select in tls.c). */
int tls_alpn_h2(struct tls *t);
/* True when the session was resumed. */
int tls_resumed(struct tls *t);
/* Tests: moves the ticket-key clock forward by one rotation period. */
void tls_tickets_rotate(void);

/*
 * Client certificates (mTLS). tls_ctx_set_clients() makes ctx ask every client for a
 * certificate issued by the CA(s) in ca_file (PEM), chain depth at most
 * TLS_CLIENT_DEPTH, validity, key usage/EKU (clientAuth) checked by OpenSSL, and, with a
 * crl_file (PEM, may be ""), every certificate of the chain checked against it
 * (X509_V_FLAG_CRL_CHECK_ALL: the leaf and each intermediate need their issuer's CRL, or
 * they are refused; a CA of ca_file without a CRL in crl_file is an error here). require: a client without a
 * valid certificate fails the handshake. Otherwise (optional) the handshake completes
 * and tls_peer_get() reports what the client presented. Returns 0 or -1 with err.
 */
#define TLS_CLIENT_DEPTH 4
int tls_ctx_set_clients(struct tls_ctx *ctx, const char *ca_file, const char *crl_file,
			bool require, char *err, size_t errlen);

enum tls_peer_state {
	TLS_PEER_NONE,	   /* no client certificate */
	TLS_PEER_OK,	   /* verified; tp_user is its identity */
	TLS_PEER_REJECTED, /* presented but not verified, or no usable name: tp_why */
};
#define TLS_PEER_USER_MAX 64 /* bytes including NUL; matches HTPASSWD_USER_MAX */
struct tls_peer {
	enum tls_peer_state tp_state;
	char tp_user[TLS_PEER_USER_MAX];
	size_t tp_user_len;
	time_t tp_not_after; /* OK: the certificate's notAfter (UTC); it is refused after it */
	char tp_why[128];
};
/*
 * The identity of t's client after the handshake: the subject's commonName (exactly
 * one), or with san the DNS name of subjectAltName (exactly one), else, without any DNS
 * name, its email address (exactly one). The name must be a valid user name (conf_name_valid), else REJECTED.
 */
void tls_peer_get(struct tls *t, bool san, struct tls_peer *out);
/*
 * The verdict on t's client again, under ctx (the context now in force, after a reload):
 * when ctx judges clients as t's own context did (same client_cert mode, CA file and CRL
 * file, i.e. the same session id context) only the name is derived again; otherwise the
 * client's chain is verified again against ctx's CA, CRL and limits. A client without a
 * certificate is REJECTED when ctx requires one. ctx without client certificates: NONE.
 */
void tls_peer_recheck(struct tls *t, struct tls_ctx *ctx, bool san, struct tls_peer *out);

#endif
