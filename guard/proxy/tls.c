/*
 * tls: OpenSSL server contexts and non-blocking I/O. See tls.h.
 */
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf.h"

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

/* ---- session ticket keys ---------------------------------------------------------- */

/*
 * Ticket keys are the proxy's own, process-wide, so every context (and a context made by a
 * reload) accepts the others' tickets. A new key every TLS_TICKET_ROTATE_S seconds; the one
 * before it still decrypts (its tickets are renewed), anything older is a full handshake.
 * A stolen key thus opens at most two periods of recorded TLS 1.2 sessions.
 */
struct tls_ticket_key {
	unsigned char tk_name[16];
	unsigned char tk_aes[32];
	unsigned char tk_hmac[32];
	time_t tk_born; /* 0 = unused */
};

static struct {
	pthread_mutex_t tt_lock;
	struct tls_ticket_key tt_cur, tt_prev;
	time_t tt_forced; /* tests: tls_tickets_rotate() adds this to the clock */
} tls_tt = { .tt_lock = PTHREAD_MUTEX_INITIALIZER };

static time_t tls_tt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + 1 + tls_tt.tt_forced; /* + 1: never 0 */
}

/* A fresh current key, the old one kept for decryption (tt_lock held). 0 or -1. */
static int tls_tt_new_key(time_t now)
{
	struct tls_ticket_key k;

	if (RAND_bytes(k.tk_name, sizeof(k.tk_name)) != 1 ||
	    RAND_priv_bytes(k.tk_aes, sizeof(k.tk_aes)) != 1 ||
	    RAND_priv_bytes(k.tk_hmac, sizeof(k.tk_hmac)) != 1)
		return -1;
	k.tk_born = now;
	tls_tt.tt_prev = tls_tt.tt_cur;
	tls_tt.tt_cur = k;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

void tls_tickets_rotate(void)
{
	pthread_mutex_lock(&tls_tt.tt_lock);
	tls_tt.tt_forced += TLS_TICKET_ROTATE_S;
	pthread_mutex_unlock(&tls_tt.tt_lock);
}

static int tls_tt_set(const struct tls_ticket_key *k, const unsigned char *iv, EVP_CIPHER_CTX *cctx,
		      EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[2];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
	    EVP_MAC_init(hctx, k->tk_hmac, sizeof(k->tk_hmac), NULL) != 1)
		return -1;
	if (enc)
		return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->tk_aes, iv) == 1 ? 0
											     : -1;
	return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->tk_aes, iv) == 1 ? 0 : -1;
}

/*
 * OpenSSL's ticket callback (RFC 5077 §4 layout: 16-byte key name, AES-256-CBC, HMAC-SHA256).
 * enc = 1: encrypt with the current key (rotated first if due). enc = 0: 1 = the current
 * key, 2 = the previous one (OpenSSL then issues a fresh ticket), 0 = unknown (full
 * handshake), -1 = error.
 */
static int tls_tt_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
		     EVP_MAC_CTX *hctx, int enc)
{
	time_t now = tls_tt_now();
	int r = -1;

	(void)s;
	pthread_mutex_lock(&tls_tt.tt_lock);
	if (tls_tt.tt_cur.tk_born == 0 || now - tls_tt.tt_cur.tk_born >= TLS_TICKET_ROTATE_S) {
		/* two periods without a handshake: the previous key is too old to keep */
		if (tls_tt_new_key(now) < 0)
			goto out;
		if (now - tls_tt.tt_prev.tk_born >= 2 * TLS_TICKET_ROTATE_S)
			OPENSSL_cleanse(&tls_tt.tt_prev, sizeof(tls_tt.tt_prev));
	}
	if (enc) {
		int ivlen = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());

		if (RAND_bytes(iv, ivlen) != 1)
			goto out;
		memcpy(name, tls_tt.tt_cur.tk_name, 16);
		r = tls_tt_set(&tls_tt.tt_cur, iv, cctx, hctx, 1) < 0 ? -1 : 1;
	} else if (CRYPTO_memcmp(name, tls_tt.tt_cur.tk_name, 16) == 0) {
		r = tls_tt_set(&tls_tt.tt_cur, iv, cctx, hctx, 0) < 0 ? -1 : 1;
	} else if (tls_tt.tt_prev.tk_born != 0 &&
		   CRYPTO_memcmp(name, tls_tt.tt_prev.tk_name, 16) == 0) {
		r = tls_tt_set(&tls_tt.tt_prev, iv, cctx, hctx, 0) < 0 ? -1 : 2;
	} else {
		r = 0;
	}
out:
	pthread_mutex_unlock(&tls_tt.tt_lock);
	return r;
}

/* ---- contexts ---------------------------------------------------------------------- */

/* A context with the profile, resumption and ticket keys set, no certificate yet. */
static SSL_CTX *tls_ctx_base(char *err, size_t errlen)
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
	/*
	 * Read-ahead: one read() takes a record's header and body and whatever follows (two
	 * per record without it). Bytes buffered this way never wake epoll: callers ask
	 * tls_pending() before they wait (see tls_track_reads()).
	 */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* and up to 64 KiB per read() for uploads (released between requests: RELEASE_BUFFERS) */
	SSL_CTX_set_default_read_buffer_len(ctx, 64u << 10);
	SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_select, NULL);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_tt_cb) != 1) {
		tls_err(err, errlen, "tls", "cannot set the session ticket key callback",
			"is OpenSSL >= 3.0?");
		goto out_free;
	}
	return ctx;
out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_base(err, errlen);

	if (ctx == NULL)
		return NULL;
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

struct tls_ctx *tls_ctx_new_from(struct tls_ctx *old, char *err, size_t errlen)
{
	SSL_CTX *o = (SSL_CTX *)old, *ctx;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = SSL_CTX_get0_certificate(o);
	EVP_PKEY *key = SSL_CTX_get0_privatekey(o);

	if (leaf == NULL || key == NULL) {
		snprintf(err, errlen, "tls: the running context has no certificate to reuse");
		return NULL;
	}
	ctx = tls_ctx_base(err, errlen);
	if (ctx == NULL)
		return NULL;
	/* the same objects, reference-counted: nothing is read from disk */
	if (SSL_CTX_get0_chain_certs(o, &chain) != 1 || SSL_CTX_use_certificate(ctx, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    (chain != NULL && SSL_CTX_set1_chain(ctx, chain) != 1) ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "tls", "cannot reuse the running certificate and key",
			"restart the proxy");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return (struct tls_ctx *)ctx;
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
	return SSL_has_pending((SSL *)t);
}

/* Socket reads of OpenSSL: a short one or EAGAIN means the kernel buffer is empty. */
static long tls_read_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
			int ret, size_t *processed)
{
	bool *drained = (bool *)BIO_get_callback_arg(b);

	(void)argp;
	(void)argi;
	(void)argl;
	if (oper == (BIO_CB_READ | BIO_CB_RETURN) && drained != NULL)
		*drained = ret > 0 ? (processed != NULL && *processed < len) : BIO_should_retry(b);
	return ret;
}

void tls_track_reads(struct tls *t, bool *drained)
{
	BIO *b = SSL_get_rbio((SSL *)t);

	if (b == NULL)
		return;
	BIO_set_callback_arg(b, (char *)drained);
	BIO_set_callback_ex(b, tls_read_cb);
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

/* ---- client certificates ------------------------------------------------------------------ */

/* optional: finish the handshake whatever the verdict; tls_peer_get() reads it afterwards */
static int tls_verify_optional(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

/* Feeds a file's bytes into md. 0, or -1. */
static int tls_digest_file(EVP_MD_CTX *md, const char *path)
{
	unsigned char buf[4096];
	FILE *f = fopen(path, "re");
	size_t n;
	int rc = 0;

	if (f == NULL)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (EVP_DigestUpdate(md, buf, n) != 1)
			rc = -1;
	if (ferror(f))
		rc = -1;
	fclose(f);
	return rc;
}

/*
 * The verdict id of an mTLS context (its session id context, below), kept in the context's
 * ex_data: tls_peer_recheck() compares a connection's context with the current one by it.
 * A context without client certificates has none.
 */
struct tls_vid {
	unsigned int v_n;
	unsigned char v_sid[EVP_MAX_MD_SIZE];
};
static int tls_vid_idx = -1;
static pthread_once_t tls_vid_once = PTHREAD_ONCE_INIT;

static void tls_vid_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	free(ptr);
}

static void tls_vid_init(void)
{
	tls_vid_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_vid_free);
}

static int tls_vid_set(SSL_CTX *ctx, const unsigned char *sid, unsigned int n)
{
	struct tls_vid *v;

	pthread_once(&tls_vid_once, tls_vid_init);
	if (tls_vid_idx < 0 || SSL_CTX_get_ex_data(ctx, tls_vid_idx) != NULL)
		return -1; /* set once per context */
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return -1;
	memcpy(v->v_sid, sid, n);
	v->v_n = n;
	if (SSL_CTX_set_ex_data(ctx, tls_vid_idx, v) != 1) {
		free(v);
		return -1;
	}
	return 0;
}

static const struct tls_vid *tls_vid_get(SSL_CTX *ctx)
{
	pthread_once(&tls_vid_once, tls_vid_init);
	return tls_vid_idx < 0 ? NULL : SSL_CTX_get_ex_data(ctx, tls_vid_idx);
}

/*
 * Session resumption skips certificate verification: a session (or ticket: the ticket keys
 * outlive a reload) made before a CRL update would let a revoked certificate back in, and
 * one made under optional (or without mTLS) would pass a require listener without any. So
 * the session id context of an mTLS context is SHA-256 of what decides a client's fate:
 * the mode, the CA file and the CRL file. OpenSSL resumes only sessions of the same
 * context (ssl_get_prev_session, the TLS 1.3 PSK check); any change means full handshakes.
 */
static int tls_set_clients_sid(SSL_CTX *ctx, const char *ca_file, const char *crl_file,
			       bool require)
{
	static const char tag[] = "tfguard-proxy mtls";
	unsigned char sid[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = -1;

	if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, tag, sizeof(tag)) == 1 &&
	    EVP_DigestUpdate(md, require ? "R" : "O", 1) == 1 &&
	    tls_digest_file(md, ca_file) == 0 && EVP_DigestUpdate(md, "\0", 1) == 1 &&
	    (crl_file == NULL || crl_file[0] == '\0' || tls_digest_file(md, crl_file) == 0) &&
	    EVP_DigestFinal_ex(md, sid, &n) == 1 && n <= SSL_MAX_SID_CTX_LENGTH &&
	    SSL_CTX_set_session_id_context(ctx, sid, n) == 1 && tls_vid_set(ctx, sid, n) == 0)
		rc = 0;
	EVP_MD_CTX_free(md);
	return rc;
}

/*
 * With CRL_CHECK_ALL a CA without a CRL refuses every certificate it issued: say so at
 * load time, naming the CA, rather than refusing every client later. 0 or -1 with err.
 */
static int tls_crl_each_ca(X509_STORE *store, char *err, size_t errlen)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	int i, j;

	for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
		bool found = false;
		char subj[160];

		if (ca == NULL)
			continue;
		for (j = 0; j < sk_X509_OBJECT_num(objs) && !found; j++) {
			X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, j));

			found = crl != NULL && X509_NAME_cmp(X509_CRL_get_issuer(crl),
							     X509_get_subject_name(ca)) == 0;
		}
		if (found)
			continue;
		X509_NAME_oneline(X509_get_subject_name(ca), subj, sizeof(subj));
		for (char *u = subj; *u; u++) /* goes to the log: no forged lines */
			if ((unsigned char)*u < 0x20 || (unsigned char)*u >= 0x7f)
				*u = '?';
		snprintf(err, errlen,
			 "client_crl: no CRL of the client CA %s (with client_crl, every CA of "
			 "client_ca needs its CRL in the file: openssl ca -gencrl, then cat the "
			 "CRLs into one PEM file)",
			 subj);
		return -1;
	}
	return 0;
}

int tls_ctx_set_clients(struct tls_ctx *tctx, const char *ca_file, const char *crl_file,
			bool require, char *err, size_t errlen)
{
	SSL_CTX *ctx = (SSL_CTX *)tctx;
	STACK_OF(X509_NAME) * names;
	X509_STORE *store;
	X509_LOOKUP *lu;

	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		tls_err(err, errlen, ca_file, "cannot load the client CA",
			"client_ca must be a PEM file with the CA certificate(s)");
		return -1;
	}
	/* the CertificateRequest names the acceptable CAs: clients with several certs pick */
	names = SSL_load_client_CA_file(ca_file);
	if (names == NULL) {
		tls_err(err, errlen, ca_file, "no CA certificate in the file",
			"client_ca must be a PEM file with the CA certificate(s)");
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	if (crl_file != NULL && crl_file[0] != '\0') {
		store = SSL_CTX_get_cert_store(ctx);
		lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
		/* CRLs only: a certificate in this file must never become a trust anchor */
		if (lu == NULL || X509_load_crl_file(lu, crl_file, X509_FILETYPE_PEM) < 1) {
			tls_err(err, errlen, crl_file, "cannot load the CRL",
				"client_crl must be a PEM file (openssl ca -gencrl)");
			return -1;
		}
		/* every certificate of the chain, intermediates too: a revoked sub-CA is refused */
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
		if (tls_crl_each_ca(store, err, errlen) < 0)
			return -1;
	}
	if (tls_set_clients_sid(ctx, ca_file, crl_file, require) < 0) {
		tls_err(err, errlen, ca_file, "cannot digest the client CA and CRL",
			"are both files readable?");
		return -1;
	}
	SSL_CTX_set_verify_depth(ctx, TLS_CLIENT_DEPTH);
	if (require)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_optional);
	return 0;
}

/* Copies an ASN1 string that is a valid user name into out; -1 otherwise. */
static int tls_name_copy(const ASN1_STRING *s, struct tls_peer *out)
{
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);

	if (d == NULL || n <= 0 || n >= (int)sizeof(out->tp_user) ||
	    memchr(d, '\0', (size_t)n) != NULL)
		return -1;
	memcpy(out->tp_user, d, (size_t)n);
	out->tp_user[n] = '\0';
	if (!conf_name_valid(out->tp_user, sizeof(out->tp_user)))
		return -1;
	out->tp_user_len = (size_t)n;
	return 0;
}

static int tls_name_cn(X509 *cert, struct tls_peer *out)
{
	X509_NAME *subj = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);

	if (i < 0) {
		snprintf(out->tp_why, sizeof(out->tp_why), "certificate subject has no CN");
		return -1;
	}
	/* two CNs: which one is meant is a guess; refuse rather than guess */
	if (X509_NAME_get_index_by_NID(subj, NID_commonName, i) >= 0) {
		snprintf(out->tp_why, sizeof(out->tp_why), "certificate subject has two CNs");
		return -1;
	}
	if (tls_name_copy(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)), out) < 0) {
		snprintf(out->tp_why, sizeof(out->tp_why),
			 "certificate CN is not a valid user name ([A-Za-z0-9._@+-])");
		return -1;
	}
	return 0;
}

static int tls_name_san(X509 *cert, struct tls_peer *out)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	static const int types[2] = { GEN_DNS, GEN_EMAIL };
	static const char *const tname[2] = { "DNS", "email" };
	const GENERAL_NAME *one = NULL;
	int k, i, n = 0, rc = -1;

	snprintf(out->tp_why, sizeof(out->tp_why),
		 "certificate has no DNS or email subjectAltName");
	/* the DNS name; only a certificate without any DNS name falls back to email */
	for (k = 0; k < 2 && gens != NULL && n == 0; k++)
		for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

			if (g->type == types[k] && n++ == 0)
				one = g;
		}
	k--;
	if (n > 1) {
		/* two names: which one is meant is a guess; refuse rather than guess (as for CNs) */
		snprintf(out->tp_why, sizeof(out->tp_why),
			 "certificate has %d %s subjectAltNames (one is needed)", n, tname[k]);
	} else if (n == 1) {
		rc = tls_name_copy(one->d.ia5, out);
		if (rc < 0)
			snprintf(out->tp_why, sizeof(out->tp_why),
				 "certificate subjectAltName %s is not a valid user name "
				 "([A-Za-z0-9._@+-])",
				 tname[k]);
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* The notAfter of cert as a time_t; 0 when unreadable (treated as expired). */
static time_t tls_not_after(const X509 *cert)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* The verdict on cert given the chain verification result v (see tls_peer_get). */
static void tls_peer_judge(X509 *cert, long v, bool san, struct tls_peer *out)
{
	memset(out, 0, sizeof(*out));
	out->tp_state = TLS_PEER_NONE;
	if (cert == NULL)
		return;
	out->tp_state = TLS_PEER_REJECTED;
	if (v != X509_V_OK) {
		snprintf(out->tp_why, sizeof(out->tp_why), "client certificate not verified: %s",
			 X509_verify_cert_error_string(v));
		return;
	}
	if ((san ? tls_name_san(cert, out) : tls_name_cn(cert, out)) < 0) {
		out->tp_user[0] = '\0';
		out->tp_user_len = 0;
		return;
	}
	out->tp_not_after = tls_not_after(cert);
	out->tp_state = TLS_PEER_OK;
}

void tls_peer_get(struct tls *t, bool san, struct tls_peer *out)
{
	SSL *ssl = (SSL *)t;

	tls_peer_judge(SSL_get0_peer_certificate(ssl), SSL_get_verify_result(ssl), san, out);
}

/*
 * The client's chain verified again, as OpenSSL's handshake does (ssl_verify_cert_chain):
 * ctx's store (CA, CRL and its flags), ctx's parameters (depth), purpose sslclient.
 */
static long tls_verify_again(SSL *ssl, SSL_CTX *ctx, X509 *cert)
{
	X509_STORE_CTX *x = X509_STORE_CTX_new();
	long v = X509_V_ERR_OUT_OF_MEM;

	if (x != NULL &&
	    X509_STORE_CTX_init(x, SSL_CTX_get_cert_store(ctx), cert,
				SSL_get_peer_cert_chain(ssl)) == 1 &&
	    X509_STORE_CTX_set_default(x, "ssl_client") == 1 &&
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(x), SSL_CTX_get0_param(ctx)) == 1) {
		v = X509_verify_cert(x) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(x);
		if (v == X509_V_OK && X509_STORE_CTX_get_error(x) != X509_V_OK)
			v = X509_STORE_CTX_get_error(x);
	}
	X509_STORE_CTX_free(x);
	ERR_clear_error();
	return v;
}

void tls_peer_recheck(struct tls *t, struct tls_ctx *tctx, bool san, struct tls_peer *out)
{
	SSL *ssl = (SSL *)t;
	SSL_CTX *ctx = (SSL_CTX *)tctx;
	const struct tls_vid *was = tls_vid_get(SSL_get_SSL_CTX(ssl)), *now = tls_vid_get(ctx);
	X509 *cert = SSL_get0_peer_certificate(ssl);

	if (now == NULL) { /* client certificates are no longer asked for */
		tls_peer_judge(NULL, X509_V_OK, san, out);
		return;
	}
	if (was != NULL && was->v_n == now->v_n && memcmp(was->v_sid, now->v_sid, now->v_n) == 0) {
		/* judged as before: only client_user_from may have changed */
		tls_peer_judge(cert, SSL_get_verify_result(ssl), san, out);
		return;
	}
	if (cert == NULL) {
		tls_peer_judge(NULL, X509_V_OK, san, out);
		if (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT) {
			out->tp_state = TLS_PEER_REJECTED;
			snprintf(out->tp_why, sizeof(out->tp_why),
				 "no client certificate, now required (client_cert = require)");
		}
		return;
	}
	tls_peer_judge(cert, tls_verify_again(ssl, ctx, cert), san, out);
}
