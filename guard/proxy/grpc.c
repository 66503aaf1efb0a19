/*
 * grpc: method allow-list, per-model ACL from the request message, grpc-timeout.
 * See grpc.h.
 */
#include "grpc.h"

#include <string.h>

#include "pb.h"
#include "route.h"

#define GRPC_MULTI  "tensorflow.serving.PredictionService/MultiInference"
#define GRPC_STATUS "tensorflow.serving.ModelService/GetModelStatus"

/* The PredictionService methods that name their models in model_spec (exactly these). */
static const char *const grpc_prediction[] = {
	"tensorflow.serving.PredictionService/Classify",
	"tensorflow.serving.PredictionService/Regress",
	"tensorflow.serving.PredictionService/Predict",
	"tensorflow.serving.PredictionService/GetModelMetadata",
};

static bool grpc_ident(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.'))
			return false;
	}
	return true;
}

/* "SERVICE/METHOD": two identifiers (letters, digits, '_', '.') around one slash. */
static bool grpc_method_syntax(const char *s, size_t n)
{
	const char *slash = memchr(s, '/', n);

	if (slash == NULL)
		return false;
	return grpc_ident(s, (size_t)(slash - s)) &&
	       grpc_ident(slash + 1, n - (size_t)(slash - s) - 1);
}

/* An "@grpc:" item of the user's [acl] line grants "SERVICE/METHOD" (m/n). */
static bool grpc_granted(const struct conf *c, const char *user, const char *m, size_t n)
{
	const struct conf_acl *acl = conf_acl_find(c, user);
	size_t plen = strlen(GRPC_ACL_PREFIX), i;

	if (acl == NULL)
		return false;
	for (i = 0; i < acl->acl_nmodels; i++) {
		const char *g = acl->acl_models[i];
		size_t gn;

		if (strncmp(g, GRPC_ACL_PREFIX, plen) != 0)
			continue;
		g += plen;
		gn = strlen(g);
		if (gn == n && memcmp(g, m, n) == 0)
			return true;
		/* "SERVICE/…": the service part and its slash match exactly */
		if (gn >= 2 && g[gn - 1] == '*' && g[gn - 2] == '/' && n > gn - 1 &&
		    memcmp(g, m, gn - 1) == 0 && memchr(m + gn - 1, '/', n - (gn - 1)) == NULL)
			return true;
	}
	return false;
}

static bool grpc_eq(const char *m, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(m, lit, n) == 0;
}

enum grpc_method grpc_method_check(const struct conf *c, const char *user, const char *path,
				   size_t n, unsigned *depth)
{
	const char *m = path + 1;
	size_t mn = n - 1, i;

	if (n < 4 || path[0] != '/' || !grpc_method_syntax(m, mn))
		return GRPC_METHOD_BAD;
	*depth = 2;
	if (grpc_eq(m, mn, GRPC_MULTI)) {
		*depth = 3;
		return GRPC_METHOD_MODEL;
	}
	if (grpc_eq(m, mn, GRPC_STATUS))
		return GRPC_METHOD_MODEL;
	for (i = 0; i < sizeof(grpc_prediction) / sizeof(grpc_prediction[0]); i++)
		if (grpc_eq(m, mn, grpc_prediction[i]))
			return GRPC_METHOD_MODEL;
	return grpc_granted(c, user, m, mn) ? GRPC_METHOD_GRANTED : GRPC_METHOD_DENIED;
}

struct grpc_names {
	const struct conf *gn_conf;
	const char *gn_user;
	struct route gn_rt; /* the name being checked, as route_acl_allows() wants it */
	bool gn_found;
	bool gn_denied;
};

/* Walks field 1 of msg `depth` levels down; every name at the bottom is checked. */
static int grpc_names_walk(struct grpc_names *g, const uint8_t *msg, size_t n, unsigned depth)
{
	struct pb r;
	struct pb_field f;
	int k;

	pb_init(&r, msg, n);
	while ((k = pb_next(&r, &f)) == 1) {
		if (f.pf_num != 1)
			continue;
		if (f.pf_wire != PB_LEN)
			return -1;
		if (depth > 1) {
			if (grpc_names_walk(g, f.pf_data, f.pf_len, depth - 1) < 0)
				return -1;
			continue;
		}
		if (f.pf_len >= CONF_MODEL_MAX)
			return -1;
		memcpy(g->gn_rt.rt_model, f.pf_data, f.pf_len);
		g->gn_rt.rt_model[f.pf_len] = '\0';
		g->gn_rt.rt_model_len = f.pf_len;
		if (f.pf_len == 0)
			continue; /* proto3: an empty string is the same as none */
		g->gn_found = true;
		if (!route_acl_allows(g->gn_conf, g->gn_user, &g->gn_rt))
			g->gn_denied = true;
	}
	return k;
}

enum grpc_model grpc_model_check(const struct conf *c, const char *user, const uint8_t *msg,
				 size_t n, unsigned depth, char model[CONF_MODEL_MAX], size_t *mlen)
{
	struct grpc_names g = { .gn_conf = c, .gn_user = user };
	int k;

	g.gn_rt.rt_kind = ROUTE_PREDICT;
	model[0] = '\0';
	*mlen = 0;
	if (depth < 2 || depth > 3)
		return GRPC_MODEL_BAD;
	k = grpc_names_walk(&g, msg, n, depth);
	if (g.gn_found) {
		memcpy(model, g.gn_rt.rt_model, g.gn_rt.rt_model_len + 1);
		*mlen = g.gn_rt.rt_model_len;
	}
	if (k < 0)
		return GRPC_MODEL_BAD;
	if (g.gn_denied)
		return GRPC_MODEL_DENIED;
	if (!g.gn_found) {
		/* only a user who may call every model may send a call without a name */
		strcpy(g.gn_rt.rt_model, "\x01"); /* no configured name can be this */
		g.gn_rt.rt_model_len = 1;
		return route_acl_allows(c, user, &g.gn_rt) ? GRPC_MODEL_OK : GRPC_MODEL_NONE;
	}
	return GRPC_MODEL_OK;
}

int grpc_timeout_parse(const char *v, size_t n, uint64_t *ms)
{
	uint64_t x = 0, per;
	size_t i;

	if (n < 2 || n > 9)
		return -1;
	for (i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H':
		*ms = x * 3600000u;
		return 0;
	case 'M':
		*ms = x * 60000u;
		return 0;
	case 'S':
		*ms = x * 1000u;
		return 0;
	case 'm':
		*ms = x;
		return 0;
	case 'u':
		per = 1000u;
		break;
	case 'n':
		per = 1000000u;
		break;
	default:
		return -1;
	}
	*ms = (x + per - 1) / per;
	return 0;
}

int grpc_http_status(int code)
{
	switch (code) {
	case GRPC_OK:
		return 200;
	case GRPC_CANCELLED:
		return 499;
	case GRPC_INVALID_ARGUMENT:
		return 400;
	case GRPC_DEADLINE_EXCEEDED:
		return 504;
	case GRPC_NOT_FOUND:
		return 404;
	case GRPC_PERMISSION_DENIED:
		return 403;
	case GRPC_RESOURCE_EXHAUSTED:
		return 429;
	case GRPC_UNIMPLEMENTED:
		return 501;
	case GRPC_UNAVAILABLE:
		return 503;
	case GRPC_UNAUTHENTICATED:
		return 401;
	default:
		return 500;
	}
}
