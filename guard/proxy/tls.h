/*
 * tls: the proxy's server-side TLS, OpenSSL hidden behind four calls.
 *
 * tls_ctx_new() builds one SSL_CTX with the Mozilla "intermediate" profile set
 * explicitly (TLS 1.2 + 1.3, AEAD ECDHE/DHE suites only: no CBC, no RSA key
 * exchange), loads the certificate chain and the key, checks that they match,
 * and enables session resumption (session cache and tickets). A context is
 * reference-counted by OpenSSL: each connection's SSL holds it, so a reload can
 * swap contexts while old connections finish on the old one.
 *
 * tls_read()/tls_write() return bytes, TLS_WANT_READ, TLS_WANT_WRITE, 0 on a
 * clean close (read only) or -1 on error. Reentrant per SSL object.
 */
#ifndef TFG_TLS_H
#define TFG_TLS_H

#include <stddef.h>
#include <sys/types.h>

#define TLS_WANT_READ  (-2)
#define TLS_WANT_WRITE (-3)

struct tls_ctx; /* an SSL_CTX */
struct tls;	/* an SSL */

/* Returns a context, or NULL with "object: reason (what to do)" in err. */
struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
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
/* Bytes already decrypted and buffered inside OpenSSL (read them before waiting). */
int tls_pending(struct tls *t);
/* Sends close_notify without waiting for the peer's. */
void tls_shutdown(struct tls *t);
/* "TLSv1.3" etc., for logs. */
const char *tls_version(struct tls *t);
/* True when ALPN chose "h2" (the gRPC path; see tls_alpn_select in tls.c). */
int tls_alpn_h2(struct tls *t);
/* True when the session was resumed. */
int tls_resumed(struct tls *t);

#endif
