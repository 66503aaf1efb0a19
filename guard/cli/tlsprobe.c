#include "tlsprobe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static long tlsprobe_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

enum tlsprobe_tcp tlsprobe_tcp(const struct sockaddr *sa, socklen_t len, int timeout_ms,
			       int *fd_out, char *err, size_t errlen)
{
	struct pollfd pfd;
	int fd, rc, soerr = 0;
	socklen_t sl = sizeof(soerr);

	*fd_out = -1;
	err[0] = '\0';
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return TLSPROBE_UNREACHABLE;
	}
	if (connect(fd, sa, len) == 0)
		goto open;
	if (errno != EINPROGRESS) {
		soerr = errno;
		goto failed;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	do
		rc = poll(&pfd, 1, timeout_ms);
	while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		close(fd);
		return TLSPROBE_FILTERED; /* no SYN-ACK, no RST: a drop */
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr)
		goto failed;
open:
	*fd_out = fd;
	return TLSPROBE_OPEN;
failed:
	close(fd);
	if (soerr == ECONNREFUSED)
		return TLSPROBE_REFUSED;
	snprintf(err, errlen, "%s", strerror(soerr));
	return TLSPROBE_UNREACHABLE;
}

const char *tlsprobe_tcp_name(enum tlsprobe_tcp t)
{
	static const char *names[] = { "open", "refused", "filtered", "unreachable" };

	return names[t];
}

/* Waits until fd is ready for what OpenSSL asked, within the deadline. */
static int tlsprobe_wait(int fd, SSL *ssl, int rc, const struct timespec *t0, int timeout_ms)
{
	int e = SSL_get_error(ssl, rc);
	struct pollfd pfd = { .fd = fd };
	long left = timeout_ms - tlsprobe_ms_since(t0);

	if (e == SSL_ERROR_WANT_READ)
		pfd.events = POLLIN;
	else if (e == SSL_ERROR_WANT_WRITE)
		pfd.events = POLLOUT;
	else
		return -1;
	if (left <= 0)
		return -1;
	return poll(&pfd, 1, (int)left) > 0 ? 0 : -1;
}

static void tlsprobe_parse_head(const char *buf, struct tlsprobe_http *out)
{
	const char *line;
	int status;

	if (sscanf(buf, "HTTP/1.%*d %d", &status) == 1)
		out->h_status = status;
	for (line = strstr(buf, "\r\n"); line && line[2] && !(line[2] == '\r');
	     line = strstr(line + 2, "\r\n"))
		if (strncasecmp(line + 2, "www-authenticate:", 17) == 0) {
			if (strcasestr(line + 19, "basic"))
				out->h_challenge = true;
			if (strcasestr(line + 19, "bearer"))
				out->h_bearer = true;
		}
}

/* SSL_set_msg_callback: notes the server's CertificateRequest and its alert. */
static void tlsprobe_msg(int write_p, int version, int type, const void *buf, size_t len, SSL *ssl,
			 void *arg)
{
	struct tlsprobe_http *out = arg;
	const unsigned char *b = buf;

	(void)version, (void)ssl;
	if (write_p || len < 1)
		return;
	if (type == SSL3_RT_HANDSHAKE && b[0] == SSL3_MT_CERTIFICATE_REQUEST)
		out->h_certreq = true;
	else if (type == SSL3_RT_ALERT && len >= 2 && out->h_alert < 0)
		out->h_alert = b[1];
}

bool tlsprobe_cert_refused(const struct tlsprobe_http *h)
{
	/* 116 certificate_required (TLS 1.3), 40 handshake_failure (TLS 1.2),
	 * 42 bad_certificate (an empty Certificate some servers answer so) */
	return h->h_tcp && !h->h_status && h->h_certreq &&
	       (h->h_alert == 116 || h->h_alert == 40 || h->h_alert == 42);
}

/* h_err for a failure after TCP: the server's alert when it sent one. */
static void tlsprobe_fail(struct tlsprobe_http *out, const char *what, unsigned long e)
{
	if (out->h_alert >= 0)
		snprintf(
		    out->h_err, sizeof(out->h_err), "%s: the server sent alert %s (%d)%s", what,
		    out->h_alert == 116 ? "certificate required" /* OpenSSL 3.0 has no name */
					: SSL_alert_desc_string_long(out->h_alert),
		    out->h_alert, out->h_certreq ? " after asking for a client certificate" : "");
	else
		snprintf(out->h_err, sizeof(out->h_err), "%s: %s", what,
			 e ? ERR_reason_error_string(e) : "timeout or connection closed");
}

int tlsprobe_http(const struct sockaddr *sa, socklen_t len, const char *sni, int timeout_ms,
		  struct tlsprobe_http *out)
{
	char req[256], buf[4096];
	struct timespec t0;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	size_t got = 0, sent = 0, reqlen;
	int fd, rc = -1, n;

	memset(out, 0, sizeof(*out));
	out->h_alert = -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (tlsprobe_tcp(sa, len, timeout_ms, &fd, out->h_err, sizeof(out->h_err)) !=
	    TLSPROBE_OPEN) {
		if (!out->h_err[0])
			snprintf(out->h_err, sizeof(out->h_err), "TCP connection failed");
		return -1;
	}
	out->h_tcp = true;
	ctx = SSL_CTX_new(TLS_client_method());
	/* on the context before SSL_new: an SSL copies the context's settings when made */
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) || !(ssl = SSL_new(ctx)) ||
	    SSL_set_fd(ssl, fd) != 1) {
		snprintf(out->h_err, sizeof(out->h_err), "OpenSSL: out of memory");
		goto out;
	}
	SSL_set_msg_callback(ssl, tlsprobe_msg);
	SSL_set_msg_callback_arg(ssl, out);
	if (sni && *sni)
		SSL_set_tlsext_host_name(ssl, sni);
	while ((n = SSL_connect(ssl)) != 1)
		if (tlsprobe_wait(fd, ssl, n, &t0, timeout_ms) < 0) {
			tlsprobe_fail(out, "TLS handshake failed", ERR_get_error());
			goto out;
		}
	out->h_tls = true;
	snprintf(out->h_version, sizeof(out->h_version), "%s", SSL_get_version(ssl));
	snprintf(out->h_cipher, sizeof(out->h_cipher), "%s", SSL_get_cipher_name(ssl));
	buf[0] = '\0';
	reqlen = (size_t)snprintf(req, sizeof(req),
				  "GET /v1/models/tfguard-probe HTTP/1.1\r\nHost: %s\r\n"
				  "User-Agent: tfguard-probe\r\nConnection: close\r\n\r\n",
				  sni && *sni ? sni : "localhost");
	while (sent < reqlen) {
		n = SSL_write(ssl, req + sent, (int)(reqlen - sent));
		if (n > 0)
			sent += (size_t)n;
		else if (tlsprobe_wait(fd, ssl, n, &t0, timeout_ms) < 0)
			goto io_failed;
	}
	while (got < sizeof(buf) - 1 && !strstr(buf, "\r\n\r\n")) {
		n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got));
		if (n > 0) {
			got += (size_t)n;
			buf[got] = '\0';
		} else if (SSL_get_error(ssl, n) == SSL_ERROR_ZERO_RETURN ||
			   tlsprobe_wait(fd, ssl, n, &t0, timeout_ms) < 0) {
			break;
		}
	}
	buf[got] = '\0';
	tlsprobe_parse_head(buf, out);
	if (out->h_status) {
		rc = 0;
		goto out;
	}
io_failed:
	if (out->h_alert >= 0)
		tlsprobe_fail(out, "no HTTP answer after the handshake", 0);
	else
		snprintf(out->h_err, sizeof(out->h_err), "no HTTP answer after the handshake");
out:
	ERR_clear_error();
	if (ssl)
		SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}

static int tlsprobe_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf, (void)size, (void)rwflag, (void)arg;
	return 0;
}

int tlsprobe_files(const char *cert, const char *key, struct tlsprobe_files *out)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	FILE *f;
	int days = 0, secs = 0;

	memset(out, 0, sizeof(*out));
	if (!(f = fopen(cert, "re"))) {
		snprintf(out->f_err, sizeof(out->f_err), "%s: %s", cert, strerror(errno));
		return -1;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x) {
		snprintf(out->f_err, sizeof(out->f_err), "%s: no PEM certificate", cert);
		return -1;
	}
	out->f_cert_read = true;
	X509_NAME_oneline(X509_get_subject_name(x), out->f_subject, sizeof(out->f_subject));
	{
		BIO *b = BIO_new(BIO_s_mem());

		if (b && ASN1_TIME_print(b, X509_get0_notAfter(x)) == 1) {
			int n = BIO_read(b, out->f_not_after, sizeof(out->f_not_after) - 1);

			out->f_not_after[n > 0 ? n : 0] = '\0';
		}
		BIO_free(b);
	}
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1)
		out->f_days_left = days - (secs < 0 && days <= 0 ? 1 : 0);
	if (key) {
		if ((f = fopen(key, "re"))) {
			/* an encrypted key must not make the audit ask for a passphrase */
			pkey = PEM_read_PrivateKey(f, NULL, tlsprobe_no_passphrase, NULL);
			fclose(f);
		}
		if (!pkey) {
			snprintf(out->f_err, sizeof(out->f_err), "%s: %s", key,
				 errno ? strerror(errno) : "no PEM private key");
		} else {
			out->f_key_read = true;
			out->f_match = X509_check_private_key(x, pkey) == 1;
		}
		EVP_PKEY_free(pkey);
	}
	X509_free(x);
	ERR_clear_error();
	return out->f_err[0] ? -1 : 0;
}
