/*
 * test_tls: session resumption through the proxy's own ticket keys, over real TLS 1.3
 * handshakes between tls.c's server side and an OpenSSL client on a socketpair:
 * a ticket resumes; after one rotation it still resumes (previous key) and is renewed;
 * after two it does not; a context made later (a reload) accepts the same tickets.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tap.h"
#include "tls.h"

static char cert_path[64], key_path[64];

/* A self-signed P-256 certificate and its key, written to temporary files. */
static int make_cert(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	FILE *f;
	int fd, ok = 0;

	snprintf(cert_path, sizeof(cert_path), "/tmp/tfg-test-tls-cert-XXXXXX");
	snprintf(key_path, sizeof(key_path), "/tmp/tfg-test-tls-key-XXXXXX");
	if (!pk || !x)
		goto out;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pk);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	if (X509_sign(x, pk, EVP_sha256()) == 0)
		goto out;
	if ((fd = mkstemp(cert_path)) < 0 || !(f = fdopen(fd, "w")))
		goto out;
	ok = PEM_write_X509(f, x);
	fclose(f);
	if (!ok || (fd = mkstemp(key_path)) < 0 || !(f = fdopen(fd, "w"))) {
		ok = 0;
		goto out;
	}
	ok = PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

/*
 * One TLS 1.3 connection: handshake, one byte from the server (which carries the ticket to
 * the client), then close. Offers sess if not NULL. Returns the client's new session (with
 * the ticket it received, or NULL) and sets *resumed from the server's view.
 */
static SSL_SESSION *connect_once(struct tls_ctx *sctx, SSL_CTX *cctx, SSL_SESSION *sess,
				 int *resumed)
{
	int sv[2], sdone = 0, cdone = 0, i;
	struct tls *srv;
	SSL *cli;
	SSL_SESSION *got = NULL;
	char b;

	*resumed = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return NULL;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	srv = tls_new(sctx, sv[0]);
	cli = SSL_new(cctx);
	SSL_set_fd(cli, sv[1]);
	SSL_set_connect_state(cli);
	if (sess)
		SSL_set_session(cli, sess);
	/* both ends on one thread: step each until both handshakes are done (bounded) */
	for (i = 0; i < 100 && !(sdone && cdone); i++) {
		if (!sdone) {
			int r = tls_handshake(srv);

			if (r == 1)
				sdone = 1;
			else if (r == -1)
				break;
		}
		if (!cdone) {
			int r = SSL_do_handshake(cli);

			if (r == 1)
				cdone = 1;
			else if (SSL_get_error(cli, r) != SSL_ERROR_WANT_READ)
				break;
		}
	}
	if (sdone && cdone && tls_write(srv, "x", 1) == 1) {
		for (i = 0; i < 100; i++)
			if (SSL_read(cli, &b, 1) == 1)
				break;
		*resumed = tls_resumed(srv);
		/* a clean close: a session whose SSL is freed without one is not resumable */
		SSL_shutdown(cli);
		tls_shutdown(srv);
		got = SSL_get1_session(cli);
		if (got && !SSL_SESSION_has_ticket(got)) {
			SSL_SESSION_free(got);
			got = NULL;
		}
	}
	SSL_free(cli);
	tls_free(srv);
	close(sv[0]);
	close(sv[1]);
	return got;
}

int main(void)
{
	char err[256];
	struct tls_ctx *sctx, *reload;
	SSL_CTX *cctx;
	SSL_SESSION *t[4], *renewed, *fresh;
	int res, i, fulls = 0;

	if (!ok(make_cert() == 0, "a test certificate"))
		return done_testing();
	sctx = tls_ctx_new(cert_path, key_path, err, sizeof(err));
	if (!ok(sctx != NULL, "server context")) {
		printf("# %s\n", err);
		return done_testing();
	}
	cctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT);

	/* four tickets under the first key (an OpenSSL client uses a TLS 1.3 ticket once) */
	for (i = 0; i < 4; i++) {
		t[i] = connect_once(sctx, cctx, NULL, &res);
		fulls += t[i] != NULL && res == 0;
	}
	is_int(fulls, 4, "full handshakes hand out tickets");
	SSL_SESSION_free(connect_once(sctx, cctx, t[0], &res));
	is_int(res, 1, "a ticket resumes the session");

	reload = tls_ctx_new(cert_path, key_path, err, sizeof(err));
	SSL_SESSION_free(connect_once(reload, cctx, t[1], &res));
	is_int(res, 1, "a context made later (reload) accepts a ticket of the first");

	tls_tickets_rotate();
	renewed = connect_once(sctx, cctx, t[2], &res);
	is_int(res, 1, "after one rotation: a ticket still resumes (previous key)");
	ok(renewed != NULL, "... and the client got a renewed ticket");

	tls_tickets_rotate();
	fresh = connect_once(sctx, cctx, t[3], &res);
	is_int(res, 0, "after two rotations: a ticket of the first key no longer resumes");
	ok(fresh != NULL, "... a full handshake with a new ticket instead");
	SSL_SESSION_free(connect_once(sctx, cctx, renewed, &res));
	is_int(res, 1, "the renewed ticket (now the previous key) still resumes");
	SSL_SESSION_free(connect_once(sctx, cctx, fresh, &res));
	is_int(res, 1, "the new one (current key) resumes");

	for (i = 0; i < 4; i++)
		SSL_SESSION_free(t[i]);
	SSL_SESSION_free(renewed);
	SSL_SESSION_free(fresh);
	SSL_CTX_free(cctx);
	tls_ctx_free(sctx);
	tls_ctx_free(reload);
	unlink(cert_path);
	unlink(key_path);
	return done_testing();
}
