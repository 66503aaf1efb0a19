/*
 * Unit tests for guard/proxy/route.c: TF Serving path classification (inputs end at a
 * PROT_NONE guard page) and the ACL decision.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "route.h"
#include "tap.h"

#define ARENA (64u << 10)

static char *arena;

static void guard_init(void)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	arena = mmap(NULL, ARENA + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED || mprotect(arena + ARENA, pg, PROT_NONE) != 0)
		abort();
}

static int match(enum http_method m, const char *t, struct route *rt)
{
	size_t n = strlen(t);
	char *p = arena + ARENA - n;

	memcpy(p, t, n);
	return route_match(m, p, n, rt);
}

static void want(enum http_method m, const char *t, enum route_kind kind, const char *model,
		 const char *name)
{
	struct route rt;
	int rc = match(m, t, &rt);

	if (!ok(rc == 0 && rt.rt_kind == kind && strcmp(rt.rt_model, model) == 0 &&
		    rt.rt_model_len == strlen(model),
		name))
		printf("#   rc=%d kind=%d model='%s' status=%d error=%s\n", rc, rt.rt_kind,
		       rt.rt_model, rt.rt_status, rt.rt_error ? rt.rt_error : "");
}

static void refuse(enum http_method m, const char *t, int status, const char *name)
{
	struct route rt;
	int rc = match(m, t, &rt);

	if (!ok(rc == -1 && rt.rt_kind == ROUTE_NONE && rt.rt_status == status, name))
		printf("#   rc=%d kind=%d status=%d model='%s'\n", rc, rt.rt_kind, rt.rt_status,
		       rt.rt_model);
}

static void test_match(void)
{
	struct route rt;

	subtest("TF Serving paths");
	want(HTTP_M_GET, "/v1/models/fraud", ROUTE_MODEL_STATUS, "fraud", "model status");
	want(HTTP_M_GET, "/v1/models/fraud/versions/3", ROUTE_MODEL_STATUS, "fraud",
	     "model status with version");
	ok(match(HTTP_M_GET, "/v1/models/fraud/versions/3", &rt) == 0 && rt.rt_has_version &&
	       rt.rt_version == 3,
	   "version parsed");
	want(HTTP_M_GET, "/v1/models/fraud/labels/stable", ROUTE_MODEL_STATUS, "fraud",
	     "model status with label");
	ok(match(HTTP_M_GET, "/v1/models/fraud/labels/stable", &rt) == 0 && rt.rt_label.n == 6 &&
	       memcmp(rt.rt_label.p, "stable", 6) == 0,
	   "label slice");
	want(HTTP_M_GET, "/v1/models/fraud/metadata", ROUTE_MODEL_METADATA, "fraud", "metadata");
	want(HTTP_M_GET, "/v1/models/fraud/versions/7/metadata", ROUTE_MODEL_METADATA, "fraud",
	     "metadata with version");
	want(HTTP_M_GET, "/v1/models/fraud/labels/canary/metadata", ROUTE_MODEL_METADATA, "fraud",
	     "metadata with label");
	want(HTTP_M_GET, "/v1/models/metadata", ROUTE_MODEL_STATUS, "metadata",
	     "a model named metadata");
	want(HTTP_M_POST, "/v1/models/fraud:predict", ROUTE_PREDICT, "fraud", "predict");
	want(HTTP_M_POST, "/v1/models/fraud:classify", ROUTE_CLASSIFY, "fraud", "classify");
	want(HTTP_M_POST, "/v1/models/fraud:regress", ROUTE_REGRESS, "fraud", "regress");
	want(HTTP_M_POST, "/v1/models/fraud/versions/2:predict", ROUTE_PREDICT, "fraud",
	     "predict with version");
	want(HTTP_M_POST, "/v1/models/fraud/labels/stable:predict", ROUTE_PREDICT, "fraud",
	     "predict with label");
	want(HTTP_M_POST, "/V1/MODELS/fraud:PREDICT", ROUTE_PREDICT, "fraud",
	     "the whole pattern is case-insensitive (?i)");
	want(HTTP_M_POST, "/v1/Models/fraud/VERSIONS/2:Classify", ROUTE_CLASSIFY, "fraud",
	     "mixed case literals");
	want(HTTP_M_GET, "/V1/models/Fraud/METADATA", ROUTE_MODEL_METADATA, "Fraud",
	     "model name keeps its case");
	want(HTTP_M_POST, "/v1/models/fr%61ud:predict", ROUTE_PREDICT, "fraud",
	     "percent-decoded model name");
	want(HTTP_M_POST, "/v1/models/%66%72%61%75%64:predict", ROUTE_PREDICT, "fraud",
	     "fully encoded model name");
	want(HTTP_M_POST, "/v1/models/a%3Ab:predict", ROUTE_PREDICT, "a:b",
	     "encoded colon decodes like TF Serving");
	want(HTTP_M_POST, "/v1/models/a%25b:predict", ROUTE_PREDICT, "a%b",
	     "one decoding pass only (%25 → %)");
	want(HTTP_M_GET, "/v1/models/fraud?x=1", ROUTE_MODEL_STATUS, "fraud?x=1",
	     "query becomes part of the model name, as in TF Serving");
	want(HTTP_M_POST, "/v1/models/fraud?x:predict", ROUTE_PREDICT, "fraud?x",
	     "query before the verb, as in TF Serving");
	want(HTTP_M_GET, "/monitoring/prometheus/metrics", ROUTE_METRICS, "", "metrics path");
	is_str(route_kind_name(ROUTE_PREDICT), "predict", "kind name");

	subtest("paths that are refused");
	refuse(HTTP_M_POST, "/v1/models/a%2Fb:predict", 400, "encoded slash → 400");
	refuse(HTTP_M_POST, "/v1/models/a%2fb:predict", 400, "encoded slash lower-case → 400");
	refuse(HTTP_M_POST, "/v1/models/a%00b:predict", 400, "encoded NUL → 400");
	refuse(HTTP_M_POST, "/v1/models/a%0Ab:predict", 400, "encoded LF → 400");
	refuse(HTTP_M_POST, "/v1/models/a%zzb:predict", 400, "bad escape → 400");
	refuse(HTTP_M_POST, "/v1/models/ab%4:predict", 400, "truncated escape → 400");
	refuse(HTTP_M_POST, "/v1/models/ab%:predict", 400, "lone percent → 400");
	refuse(HTTP_M_POST, "/v1/models/..:predict", 400, "dot-dot model → 400");
	refuse(HTTP_M_POST, "/v1/models/%2e%2e:predict", 400, "encoded dot-dot model → 400");
	refuse(HTTP_M_GET, "/v1/models/.", 400, "dot model → 400");
	refuse(HTTP_M_POST, "/v1/models/../x:predict", 404, "dot-segment path → 404");
	refuse(HTTP_M_POST, "/v1/./models/x:predict", 404, "dot-segment before models → 404");
	refuse(HTTP_M_POST, "/v1/models/x/versions/99999999999999999999:predict", 400,
	       "version out of int64 → 400");
	refuse(HTTP_M_POST, "/v1/models/x/versions/:predict", 404, "empty version → 404");
	refuse(HTTP_M_POST, "/v1/models/x/versions/1a:predict", 404, "non-numeric version → 404");
	refuse(HTTP_M_POST, "/v1/models/x/labels/:predict", 404, "empty label → 404");
	refuse(HTTP_M_POST, "/v1/models/x:Predictx", 404, "unknown verb → 404");
	refuse(HTTP_M_POST, "/v1/models/x:explain", 404, "other verb → 404");
	refuse(HTTP_M_POST, "/v1/models/x:predict/", 404, "trailing slash after verb → 404");
	refuse(HTTP_M_POST, "/v1/models/:predict", 404, "empty model → 404");
	refuse(HTTP_M_GET, "/v1/models", 404, "no model (TF: 400 missing name) → 404");
	refuse(HTTP_M_GET, "/v1/models/", 404, "empty model name → 404");
	refuse(HTTP_M_GET, "/v1/models/versions/1", 404, "skipped model group → 404");
	refuse(HTTP_M_GET, "/v1/models/x/", 404, "trailing slash → 404");
	refuse(HTTP_M_GET, "/v1/models/x//metadata", 404, "double slash → 404");
	refuse(HTTP_M_GET, "/v1/models/x/versions/1/labels/a", 404, "version and label → 404");
	refuse(HTTP_M_GET, "/v2/models/x", 404, "other API version → 404");
	refuse(HTTP_M_GET, "//v1/models/x", 404, "leading double slash → 404");
	refuse(HTTP_M_GET, "/", 404, "root → 404");
	refuse(HTTP_M_GET, "/monitoring/prometheus/metrics?x=1", 404, "metrics with query → 404");
	refuse(HTTP_M_GET, "/Monitoring/prometheus/metrics", 404, "metrics path is exact → 404");
	refuse(HTTP_M_GET, "/v1/models/x:predict", 405, "GET on predict → 405");
	refuse(HTTP_M_POST, "/v1/models/x", 405, "POST on status → 405");
	refuse(HTTP_M_POST, "/v1/models/x/metadata", 405, "POST on metadata → 405");
	refuse(HTTP_M_PUT, "/v1/models/x:predict", 405, "PUT → 405");
	refuse(HTTP_M_DELETE, "/v1/models/x", 405, "DELETE → 405");
	refuse(HTTP_M_HEAD, "/v1/models/x", 405, "HEAD → 405");
	refuse(HTTP_M_OPTIONS, "/v1/models/x:predict", 405, "OPTIONS → 405");
	refuse(HTTP_M_POST, "/monitoring/prometheus/metrics", 405, "POST on metrics → 405");
	refuse(HTTP_M_OTHER, "/v1/models/x", 501, "unknown method → 501");
	{
		char longname[400], model[256];

		memcpy(longname, "/v1/models/", 11);
		memset(longname + 11, 'm', 300);
		memcpy(longname + 311, ":predict", 9);
		refuse(HTTP_M_POST, longname, 400, "model name over 255 bytes → 400");
		memcpy(longname + 266, ":predict", 9);
		memset(model, 'm', 255);
		model[255] = '\0';
		want(HTTP_M_POST, longname, ROUTE_PREDICT, model, "model name of 255 bytes → ok");
	}
}

static void conf_with(struct conf *c, const char *text)
{
	char err[CONF_ERR_MAX];

	conf_defaults(c);
	if (conf_load_buf(c, "t.conf", text, strlen(text), err, sizeof(err)) != 0) {
		printf("# conf: %s\n", err);
		abort();
	}
}

static bool allows(const struct conf *c, const char *user, enum http_method m, const char *t)
{
	struct route rt;

	if (match(m, t, &rt) != 0)
		return false;
	return route_acl_allows(c, user, &rt);
}

static void test_acl(void)
{
	struct conf c;

	subtest("ACL");
	conf_with(&c, "[acl]\n"
		      "alice = fraud, churn\n"
		      "bob = *\n"
		      "carol = fraud, @metrics\n"
		      "mallory = @metrics\n");
	ok(allows(&c, "alice", HTTP_M_POST, "/v1/models/fraud:predict"), "alice may predict fraud");
	ok(allows(&c, "alice", HTTP_M_GET, "/v1/models/churn/metadata"), "alice may read churn");
	ok(allows(&c, "alice", HTTP_M_POST, "/V1/MODELS/fr%61ud/VERSIONS/1:PREDICT"),
	   "alice: case and escapes normalised");
	ok(!allows(&c, "alice", HTTP_M_POST, "/v1/models/secret:predict"), "alice not secret");
	ok(!allows(&c, "alice", HTTP_M_POST, "/v1/models/Fraud:predict"),
	   "model names are case-sensitive");
	ok(!allows(&c, "alice", HTTP_M_POST, "/v1/models/fraud?x:predict"),
	   "query suffix changes the model name");
	ok(!allows(&c, "alice", HTTP_M_GET, "/monitoring/prometheus/metrics"),
	   "alice may not read metrics");
	ok(allows(&c, "bob", HTTP_M_POST, "/v1/models/anything:regress"), "* grants every model");
	ok(!allows(&c, "bob", HTTP_M_GET, "/monitoring/prometheus/metrics"),
	   "* does not grant metrics");
	ok(allows(&c, "carol", HTTP_M_GET, "/monitoring/prometheus/metrics"), "@metrics grants");
	ok(allows(&c, "carol", HTTP_M_POST, "/v1/models/fraud:predict"), "carol fraud");
	ok(!allows(&c, "mallory", HTTP_M_GET, "/v1/models/%40metrics"),
	   "@metrics is not a model grant");
	ok(!allows(&c, "dave", HTTP_M_POST, "/v1/models/fraud:predict"),
	   "user without an ACL line is denied");
	ok(!allows(&c, "", HTTP_M_POST, "/v1/models/fraud:predict"), "empty user denied");
	conf_free(&c);

	conf_with(&c, "[proxy]\nrealm = x\n");
	ok(allows(&c, "anyone", HTTP_M_POST, "/v1/models/fraud:predict"),
	   "no [acl]: every authenticated user, every model");
	ok(!allows(&c, "anyone", HTTP_M_GET, "/monitoring/prometheus/metrics"),
	   "no [acl]: nobody reads metrics");
	{
		struct route rt = { .rt_kind = ROUTE_NONE };

		ok(!route_acl_allows(&c, "anyone", &rt), "ROUTE_NONE is never allowed");
	}
	conf_free(&c);
}

int main(void)
{
	guard_init();
	test_match();
	test_acl();
	return done_testing();
}
