/*
 * tlsprobe: the TLS side of the audit. Connects to a proxy, completes a
 * handshake and sends one unauthenticated request (expecting 401), and reads
 * certificate/key files to check that they match and when they expire.
 * OpenSSL is linked into tfguard for this file only; apply/remove/status
 * never call it. Blocking I/O with deadlines; reentrant.
 */
#ifndef TFG_TLSPROBE_H
#define TFG_TLSPROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum tlsprobe_tcp { TLSPROBE_OPEN, TLSPROBE_REFUSED, TLSPROBE_FILTERED, TLSPROBE_UNREACHABLE };

/* Connects with a deadline; returns the outcome and fills err for UNREACHABLE. */
enum tlsprobe_tcp tlsprobe_tcp(const struct sockaddr *sa, socklen_t len, int timeout_ms,
			       int *fd_out, char *err, size_t errlen);
const char *tlsprobe_tcp_name(enum tlsprobe_tcp t);

struct tlsprobe_http {
	bool h_tcp;	    /* the TCP connection opened (a failure after it is TLS's) */
	bool h_tls;	    /* handshake completed */
	char h_version[16]; /* "TLSv1.3" */
	char h_cipher[64];
	int h_status;	  /* HTTP status of the unauthenticated request, or 0 */
	bool h_challenge; /* WWW-Authenticate: Basic present */
	bool h_bearer;	  /* WWW-Authenticate: Bearer present */
	bool h_certreq;	  /* the server sent a CertificateRequest */
	int h_alert;	  /* the description of the alert the server sent, or -1 */
	char h_err[160];
};

/* TLS handshake (no certificate verification: this is a reachability audit)
 * and `GET /v1/models/tfguard-probe` without credentials. Returns 0 when a
 * status line was read, -1 otherwise (h_err says why). */
int tlsprobe_http(const struct sockaddr *sa, socklen_t len, const char *sni, int timeout_ms,
		  struct tlsprobe_http *out);
/*
 * After tlsprobe_http failed: whether the server refused this client for having no
 * certificate, which client_cert = require must do. Only with evidence that it spoke
 * TLS and wanted one: it sent a CertificateRequest, then the alert OpenSSL sends a
 * client without a certificate (certificate_required, handshake_failure or
 * bad_certificate). Any other failure, a server that does not speak TLS included,
 * is not a refusal.
 */
bool tlsprobe_cert_refused(const struct tlsprobe_http *h);

struct tlsprobe_files {
	bool f_cert_read;
	bool f_key_read;
	bool f_match;	      /* the key belongs to the certificate */
	long f_days_left;     /* until notAfter; negative when expired */
	char f_not_after[40]; /* as OpenSSL prints it */
	char f_subject[160];
	char f_err[200];
};

/* Reads a PEM certificate (first of the chain) and key. Returns 0 or -1 with f_err. */
int tlsprobe_files(const char *cert, const char *key, struct tlsprobe_files *out);

#endif
