/*
 * tls: OpenSSL server contexts and non-blocking I/O. See tls.h.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/*
 * Mozilla server-side TLS guidelines, "intermediate" configuration (v5.7):
 * TLS 1.2 suites are ECDHE/DHE + AEAD only; TLS 1.3 suites are OpenSSL's defaults
 * written out so that a distribution default cannot widen them.
 */
#define TLS_CIPHERS_12                                                                             \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_CIPHERS_13 "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS     "X25519:prime256v1:secp384r1"

static void tls_err(char *err, size_t errlen, const char *obj, const char *what, const char *todo)
{
	char ossl[256] = "";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	ERR_clear_error();
	snprintf(err, errlen, "%s: %s%s%s (%s)", obj, what, ossl[0] ? ": " : "", ossl, todo);
}

/*
 * ALPN: HTTP/1.1 whenever the client offers it (curl and browsers offer "h2,http/1.1":
 * they keep the REST path, which is the same with or without ALPN), "h2" when it is the
 * only protocol of ours the client offers (gRPC clients offer "h2" alone): the gRPC path.
 * No overlap, or no ALPN at all: no ALPN answer, HTTP/1.1 as before.
 */
static int tls_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			   const unsigned char *in, unsigned inlen, void *arg)
{
	const unsigned char *h2 = NULL;
	unsigned i = 0;

	(void)ssl;
	(void)arg;
	while (i < inlen) {
		unsigned n = in[i];

		if (n == 0 || n > inlen - i - 1)
			return SSL_TLSEXT_ERR_NOACK;
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
			*out = in + i + 1;
			*outlen = 8;
			return SSL_TLSEXT_ERR_OK;
		}
		if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0)
			h2 = in + i + 1;
		i += n + 1;
	}
	if (h2 == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	*out = h2;
	*outlen = 2;
	return SSL_TLSEXT_ERR_OK;
}

struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	static const unsigned char sid_ctx[] = "tfguard-proxy";

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_err(err, errlen, "tls", "cannot create a context", "out of memory?");
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) ||
	    !SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERS_13) ||
	    !SSL_CTX_set1_groups_list(ctx, TLS_GROUPS)) {
		tls_err(err, errlen, "tls", "cannot set the intermediate profile",
			"is OpenSSL >= 1.1.1?");
		goto out_free;
	}
	/* DHE suites use the RFC 7919 group matching the key size; no DH parameter file. */
	SSL_CTX_set_dh_auto(ctx, 1);
	/* Intermediate profile: the client's cipher order wins (it knows whether it has AES-NI). */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	/* Resumption: an in-memory session cache (TLS 1.2) and tickets (both versions). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, 20000);
	SSL_CTX_set_timeout(ctx, 3600);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);

	/* Key first: a certificate that does not match it then fails the check below. */
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errlen, key, "cannot load the private key",
			"tls_key must be an unencrypted PEM key readable at start-up");
		goto out_free;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_err(err, errlen, cert, "cannot load the certificate chain",
			"tls_cert must be a PEM file: leaf first, then intermediates");
		goto out_free;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, key, "the key does not match the certificate",
			"point tls_key at the key of tls_cert");
		goto out_free;
	}
	return (struct tls_ctx *)ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	SSL_CTX_free((SSL_CTX *)ctx);
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
	if (ctx != NULL && SSL_CTX_up_ref((SSL_CTX *)ctx) != 1)
		abort(); /* a reference count that cannot grow is a broken invariant */
	return ctx;
}

struct tls *tls_new(struct tls_ctx *ctx, int fd)
{
	SSL *ssl = SSL_new((SSL_CTX *)ctx);

	if (ssl == NULL)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return (struct tls *)ssl;
}

void tls_free(struct tls *t)
{
	SSL_free((SSL *)t);
}

static int tls_map(SSL *ssl, int r)
{
	switch (SSL_get_error(ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		/* The error queue is per thread: leave nothing behind for the next connection. */
		ERR_clear_error();
		return -1;
	}
}

int tls_handshake(struct tls *t)
{
	SSL *ssl = (SSL *)t;
	int r = SSL_do_handshake(ssl);

	if (r == 1)
		return 1;
	r = tls_map(ssl, r);
	return r == 0 ? -1 : r;
}

ssize_t tls_read(struct tls *t, void *buf, size_t len)
{
	SSL *ssl = (SSL *)t;
	size_t got = 0;
	int r = SSL_read_ex(ssl, buf, len, &got);

	if (r == 1)
		return (ssize_t)got;
	return tls_map(ssl, 0);
}

ssize_t tls_write(struct tls *t, const void *buf, size_t len)
{
	SSL *ssl = (SSL *)t;
	size_t put = 0;
	int r;

	if (len == 0)
		return 0;
	r = SSL_write_ex(ssl, buf, len, &put);
	if (r == 1)
		return (ssize_t)put;
	r = tls_map(ssl, 0);
	return r == 0 ? -1 : r;
}

int tls_pending(struct tls *t)
{
	return SSL_pending((SSL *)t);
}

void tls_shutdown(struct tls *t)
{
	SSL *ssl = (SSL *)t;

	if (SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

const char *tls_version(struct tls *t)
{
	return SSL_get_version((SSL *)t);
}

int tls_alpn_h2(struct tls *t)
{
	const unsigned char *p = NULL;
	unsigned n = 0;

	SSL_get0_alpn_selected((SSL *)t, &p, &n);
	return n == 2 && memcmp(p, "h2", 2) == 0;
}

int tls_resumed(struct tls *t)
{
	return SSL_session_reused((SSL *)t);
}
