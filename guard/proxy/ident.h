/*
 * ident: who sent this request. One decision for every front end: conn.c calls it with
 * the Authorization header, the gRPC path with its `authorization` metadata, both with
 * the connection's verified client certificate (tls_peer_get) and the client's throttle
 * key (auth_addr_key). Call auth_throttle_check() before it: a blocked address must not
 * get to try tokens either.
 *
 * The rules ([proxy] auth = basic, token, mtls in any order and subset):
 *   - Only the listed methods count. A credential of another method is ignored, as if
 *     absent (it is still stripped before forwarding, like every Authorization header).
 *   - Every credential presented for a listed method must verify: a client certificate
 *     that failed verification (optional mode) or has no usable name → IDENT_FAIL, even
 *     when a password or token is also given (fail closed: a revoked certificate is a
 *     reason to stop, not to look elsewhere). A bearer token not in the token file →
 *     IDENT_FAIL, counted in the per-address failure throttle like a wrong password.
 *   - All verified credentials must name the same user; two different users →
 *     IDENT_CONFLICT (400).
 *   - The methods are evaluated in the configured order; the first one that
 *     identifies the user is the reported method, and the order of the 401 challenges.
 *   - Basic credentials are not verified here (bcrypt belongs on the verifier pool):
 *     IDENT_BASIC tells the caller to run its Basic path (auth_basic_decode, cache,
 *     auth_submit); a certificate or token already checked names the same user.
 *
 * Pure apart from the throttle and the token table, which are thread-safe: reentrant.
 */
#ifndef TFG_IDENT_H
#define TFG_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "conf.h"
#include "tls.h"
#include "token.h"

enum ident_result {
	IDENT_OK,	/* authenticated by token or certificate: id_user, id_method */
	IDENT_BASIC,	/* verify the Basic credentials (the Authorization value) */
	IDENT_NONE,	/* no credential of a listed method: 401 with ident_challenge() */
	IDENT_FAIL,	/* a credential that does not verify: 401; id_why for the log */
	IDENT_CONFLICT, /* credentials naming two different users: 400; id_why */
	IDENT_ERROR,	/* internal error (hashing failed): 500 */
};

struct ident_ctx {
	unsigned ic_methods;	       /* bitmask of enum conf_auth (p_auth) */
	const uint8_t *ic_order;       /* p_auth_order */
	size_t ic_norder;	       /* p_nauth */
	struct auth *ic_auth;	       /* its failure throttle */
	struct token_store *ic_tokens; /* NULL: no token verifies */
};

struct ident {
	enum conf_auth id_method; /* IDENT_OK: the method that identified the user */
	char id_user[TLS_PEER_USER_MAX];
	size_t id_user_len;
	char id_why[160]; /* IDENT_FAIL / IDENT_CONFLICT: one line, no secret */
};

/*
 * authz/authz_len: the Authorization value (not NUL-terminated; NULL when absent);
 * peer: the client certificate's verdict (NULL without TLS); akey/akeylen: the throttle
 * key. The caller still wipes authz afterwards (on IDENT_BASIC after its Basic path).
 */
enum ident_result ident_resolve(const struct ident_ctx *ctx, const char *authz, size_t authz_len,
				const struct tls_peer *peer, const uint8_t *akey, size_t akeylen,
				struct ident *out);

/*
 * The WWW-Authenticate lines (each ending in CRLF) for the listed methods in order:
 * Basic realm="…", charset="UTF-8" and Bearer realm="…". mtls has no HTTP scheme, so
 * an mtls-only listener gets none. Returns the length written (NUL-terminated).
 */
size_t ident_challenge(unsigned methods, const uint8_t *order, size_t norder, const char *realm,
		       char *out, size_t cap);

/* "basic", "token", "mtls" (static). */
const char *ident_method_name(enum conf_auth m);

#endif
