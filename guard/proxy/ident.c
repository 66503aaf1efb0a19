/*
 * ident: identity resolution over Basic, bearer tokens and client certificates (ident.h).
 */
#include "ident.h"

#include <stdio.h>
#include <string.h>

const char *ident_method_name(enum conf_auth m)
{
	switch (m) {
	case CONF_AUTH_BASIC:
		return "basic";
	case CONF_AUTH_TOKEN:
		return "token";
	case CONF_AUTH_MTLS:
		return "mtls";
	}
	return "?";
}

/* One method's verdict: its user (if it identified one) or why it failed. */
struct ident_one {
	bool io_present; /* the client offered a credential of this method */
	char io_user[TLS_PEER_USER_MAX];
	size_t io_user_len;
};

static enum ident_result ident_token(const struct ident_ctx *ctx, const char *authz, size_t n,
				     const uint8_t *akey, size_t akeylen, struct ident_one *one,
				     struct ident *out)
{
	const struct token_entry *e = NULL;
	struct token_table *t;
	const char *tok;
	size_t toklen;
	int rc;

	switch (token_bearer_decode(authz, n, &tok, &toklen)) {
	case TOKEN_BEARER_MISSING:
		return IDENT_NONE;
	case TOKEN_BEARER_MALFORMED:
		one->io_present = true;
		snprintf(out->id_why, sizeof(out->id_why), "malformed bearer token");
		goto out_fail;
	case TOKEN_BEARER_OK:
		break;
	}
	one->io_present = true;
	t = ctx->ic_tokens ? token_store_get(ctx->ic_tokens) : NULL;
	rc = token_verify(t, tok, toklen, &e);
	if (rc == 1) {
		memcpy(one->io_user, e->te_user, e->te_user_len + 1);
		one->io_user_len = e->te_user_len;
	}
	token_unref(t);
	if (rc < 0)
		return IDENT_ERROR;
	if (rc == 1)
		return IDENT_OK;
	snprintf(out->id_why, sizeof(out->id_why), "unknown or revoked bearer token");
out_fail:
	/* a token is a password by another name: guesses count like wrong passwords */
	auth_throttle_fail(ctx->ic_auth, akey, akeylen, auth_now_ms());
	return IDENT_FAIL;
}

static enum ident_result ident_basic(const char *authz, size_t n, struct ident_one *one)
{
	struct auth_cred cred;

	switch (auth_basic_decode(authz, n, &cred)) {
	case AUTH_BASIC_MISSING:
		return IDENT_NONE;
	case AUTH_BASIC_MALFORMED:
		one->io_present = true; /* the Basic path reports it (and counts it) */
		return IDENT_BASIC;
	case AUTH_BASIC_OK:
		break;
	}
	one->io_present = true;
	/* not verified yet: used only to refuse a second identity before hashing */
	memcpy(one->io_user, cred.ac_user,
	       cred.ac_user_len < sizeof(one->io_user) - 1 ? cred.ac_user_len
							   : sizeof(one->io_user) - 1);
	one->io_user_len = cred.ac_user_len < sizeof(one->io_user) - 1 ? cred.ac_user_len
								       : sizeof(one->io_user) - 1;
	one->io_user[one->io_user_len] = '\0';
	auth_cred_wipe(&cred);
	return IDENT_BASIC;
}

enum ident_result ident_resolve(const struct ident_ctx *ctx, const char *authz, size_t authz_len,
				const struct tls_peer *peer, const uint8_t *akey, size_t akeylen,
				struct ident *out)
{
	struct ident_one one[3];
	enum ident_result basic = IDENT_NONE;
	const struct ident_one *first = NULL;
	size_t i;

	memset(out, 0, sizeof(*out));
	memset(one, 0, sizeof(one));
	for (i = 0; i < ctx->ic_norder; i++) {
		enum conf_auth m = (enum conf_auth)ctx->ic_order[i];
		struct ident_one *o = &one[i];
		enum ident_result r = IDENT_NONE;

		if (!(ctx->ic_methods & m))
			continue;
		switch (m) {
		case CONF_AUTH_MTLS:
			if (peer == NULL || peer->tp_state == TLS_PEER_NONE)
				break;
			o->io_present = true;
			if (peer->tp_state != TLS_PEER_OK) {
				snprintf(out->id_why, sizeof(out->id_why), "%s", peer->tp_why);
				return IDENT_FAIL;
			}
			memcpy(o->io_user, peer->tp_user, peer->tp_user_len + 1);
			o->io_user_len = peer->tp_user_len;
			break;
		case CONF_AUTH_TOKEN:
			if (authz == NULL)
				break;
			r = ident_token(ctx, authz, authz_len, akey, akeylen, o, out);
			if (r == IDENT_FAIL || r == IDENT_ERROR)
				return r;
			break;
		case CONF_AUTH_BASIC:
			if (authz == NULL)
				break;
			basic = ident_basic(authz, authz_len, o);
			break;
		}
		if (!o->io_present || o->io_user_len == 0)
			continue;
		if (first == NULL) {
			first = o;
			out->id_method = m;
		} else if (o->io_user_len != first->io_user_len ||
			   memcmp(o->io_user, first->io_user, o->io_user_len) != 0) {
			/* names go to the log: both are valid user names or escaped by it */
			snprintf(out->id_why, sizeof(out->id_why),
				 "two identities: %s says \"%.40s\", %s says \"%.40s\"",
				 ident_method_name(out->id_method), first->io_user,
				 ident_method_name(m), o->io_user);
			explicit_bzero(one, sizeof(one));
			return IDENT_CONFLICT;
		}
	}
	if (basic == IDENT_BASIC) {
		explicit_bzero(one, sizeof(one));
		return IDENT_BASIC;
	}
	if (first == NULL)
		return IDENT_NONE;
	memcpy(out->id_user, first->io_user, first->io_user_len + 1);
	out->id_user_len = first->io_user_len;
	explicit_bzero(one, sizeof(one));
	return IDENT_OK;
}

size_t ident_challenge(unsigned methods, const uint8_t *order, size_t norder, const char *realm,
		       char *out, size_t cap)
{
	char q[300];
	size_t i, o = 0;
	int n;

	/* quoted-string (RFC 9110 §5.6.4): escape '"' and '\' */
	for (i = 0; realm[i] != '\0' && o + 2 < sizeof(q); i++) {
		if (realm[i] == '"' || realm[i] == '\\')
			q[o++] = '\\';
		q[o++] = realm[i];
	}
	q[o] = '\0';
	o = 0;
	if (cap > 0)
		out[0] = '\0';
	for (i = 0; i < norder; i++) {
		if (!(methods & order[i]))
			continue;
		if (order[i] == CONF_AUTH_BASIC)
			n = snprintf(out + o, cap - o,
				     "WWW-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n",
				     q);
		else if (order[i] == CONF_AUTH_TOKEN)
			/* RFC 6750 §3 */
			n = snprintf(out + o, cap - o, "WWW-Authenticate: Bearer realm=\"%s\"\r\n",
				     q);
		else
			continue;
		if (n < 0 || (size_t)n >= cap - o) {
			out[o] = '\0';
			break;
		}
		o += (size_t)n;
	}
	return o;
}
