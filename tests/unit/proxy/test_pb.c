/*
 * test_pb: the protobuf field reader, the model-name walk, method grants and
 * grpc-timeout (pb.c, grpc.c).
 */
#include <string.h>

#include "../tap.h"
#include "conf.h"
#include "grpc.h"
#include "pb.h"

/* Builders for wire-format bytes. */
static size_t put_varint(uint8_t *o, uint64_t v)
{
	size_t n = 0;

	do {
		o[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			o[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

static size_t put_ld(uint8_t *o, unsigned field, const void *d, size_t len)
{
	size_t n = put_varint(o, (uint64_t)field << 3 | 2);

	n += put_varint(o + n, len);
	memcpy(o + n, d, len);
	return n + len;
}

/* model_spec { name: NAME } as field 1 of a request. */
static size_t put_spec(uint8_t *o, const char *name)
{
	uint8_t spec[300];
	size_t n = put_ld(spec, 1, name, strlen(name));

	return put_ld(o, 1, spec, n);
}

static void test_reader(void)
{
	static const uint8_t msg[] = { 0x08, 0x96, 0x01,	   /* 1: varint 150 */
				       0x12, 0x03, 'a',	 'b', 'c', /* 2: "abc" */
				       0x1d, 1,	   2,	 3,   4,   /* 3: fixed32 */
				       0x21, 1,	   0,	 0,   0,   0, 0, 0, 0 /* 4: fixed64 */ };
	struct pb r;
	struct pb_field f;

	pb_init(&r, msg, sizeof(msg));
	ok(pb_next(&r, &f) == 1 && f.pf_num == 1 && f.pf_wire == PB_VARINT && f.pf_val == 150,
	   "varint field");
	ok(pb_next(&r, &f) == 1 && f.pf_num == 2 && f.pf_wire == PB_LEN && f.pf_len == 3 &&
	       memcmp(f.pf_data, "abc", 3) == 0,
	   "length-delimited field");
	ok(pb_next(&r, &f) == 1 && f.pf_wire == PB_I32 && f.pf_val == 0x04030201, "fixed32");
	ok(pb_next(&r, &f) == 1 && f.pf_wire == PB_I64 && f.pf_val == 1, "fixed64");
	ok(pb_next(&r, &f) == 0, "end");

	{
		static const uint8_t trunc_len[] = { 0x12, 0x05, 'a' };
		static const uint8_t group[] = { 0x0b, 0x0c };
		static const uint8_t field0[] = { 0x02, 0x00 };
		static const uint8_t long_varint[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
						       0xff, 0xff, 0xff, 0xff, 0x02 };
		static const uint8_t max_varint[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
						      0xff, 0xff, 0xff, 0xff, 0x01 };
		static const uint8_t huge_len[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f };

		pb_init(&r, trunc_len, sizeof(trunc_len));
		ok(pb_next(&r, &f) == -1 && r.pb_off == 0, "length past the end → malformed");
		pb_init(&r, group, sizeof(group));
		ok(pb_next(&r, &f) == -1, "groups → malformed");
		pb_init(&r, field0, sizeof(field0));
		ok(pb_next(&r, &f) == -1, "field number 0 → malformed");
		pb_init(&r, long_varint, sizeof(long_varint));
		ok(pb_next(&r, &f) == -1, "varint over 64 bits → malformed");
		pb_init(&r, max_varint, sizeof(max_varint));
		ok(pb_next(&r, &f) == 1 && f.pf_val == UINT64_MAX, "10-byte varint = 2^64-1");
		pb_init(&r, huge_len, sizeof(huge_len));
		ok(pb_next(&r, &f) == -1, "4 GiB length in 6 bytes → malformed");
	}
}

static void test_models(void)
{
	static const char cfg[] = "[acl]\nalice = m1, m2\nroot = *\n";
	struct conf c;
	char err[256], model[CONF_MODEL_MAX];
	uint8_t b[1024], task[400];
	size_t n, mlen, tn;

	conf_defaults(&c);
	ok(conf_load_buf(&c, "t.conf", cfg, sizeof(cfg) - 1, err, sizeof(err)) == 0, "conf");

	n = put_spec(b, "m1");
	n += put_ld(b + n, 2, "inputs", 6);
	ok(grpc_model_check(&c, "alice", b, n, 2, model, &mlen) == GRPC_MODEL_OK &&
	       strcmp(model, "m1") == 0 && mlen == 2,
	   "Predict for an allowed model");
	n = put_spec(b, "m3");
	ok(grpc_model_check(&c, "alice", b, n, 2, model, &mlen) == GRPC_MODEL_DENIED &&
	       strcmp(model, "m3") == 0,
	   "a model outside the list → denied, named for the log");
	ok(grpc_model_check(&c, "root", b, n, 2, model, &mlen) == GRPC_MODEL_OK, "'*' allows it");
	ok(grpc_model_check(&c, "bob", b, n, 2, model, &mlen) == GRPC_MODEL_DENIED,
	   "a user without an [acl] line → denied");

	/* protobuf merges a repeated model_spec and the last name wins: all are checked */
	n = put_spec(b, "m1");
	n += put_spec(b + n, "m3");
	ok(grpc_model_check(&c, "alice", b, n, 2, model, &mlen) == GRPC_MODEL_DENIED,
	   "a second model_spec naming a forbidden model → denied");
	n = put_spec(b, "m3");
	n += put_spec(b + n, "m1");
	ok(grpc_model_check(&c, "alice", b, n, 2, model, &mlen) == GRPC_MODEL_DENIED,
	   "... in either order");

	n = put_ld(b, 2, "inputs", 6);
	ok(grpc_model_check(&c, "alice", b, n, 2, model, &mlen) == GRPC_MODEL_NONE && mlen == 0,
	   "no model_spec → none (refused)");
	ok(grpc_model_check(&c, "root", b, n, 2, model, &mlen) == GRPC_MODEL_OK,
	   "... unless the user may call every model");
	n = put_spec(b, "");
	ok(grpc_model_check(&c, "alice", b, n, 2, model, &mlen) == GRPC_MODEL_NONE,
	   "empty name = none");

	/* MultiInference: tasks (field 1), each with model_spec (field 1) */
	tn = put_spec(task, "m2");
	n = put_ld(b, 1, task, tn);
	tn = put_spec(task, "m1");
	n += put_ld(b + n, 1, task, tn);
	ok(grpc_model_check(&c, "alice", b, n, 3, model, &mlen) == GRPC_MODEL_OK,
	   "MultiInference, every task allowed");
	tn = put_spec(task, "m9");
	n += put_ld(b + n, 1, task, tn);
	ok(grpc_model_check(&c, "alice", b, n, 3, model, &mlen) == GRPC_MODEL_DENIED,
	   "MultiInference, one task forbidden → denied");

	b[0] = 0x08; /* field 1 as a varint: not a message */
	b[1] = 0x01;
	ok(grpc_model_check(&c, "alice", b, 2, 2, model, &mlen) == GRPC_MODEL_BAD,
	   "model_spec with the wrong wire type → malformed");
	n = put_spec(b, "m1");
	ok(grpc_model_check(&c, "alice", b, n - 1, 2, model, &mlen) == GRPC_MODEL_BAD,
	   "truncated → malformed");
	{
		char longname[CONF_MODEL_MAX + 1];

		memset(longname, 'a', CONF_MODEL_MAX);
		longname[CONF_MODEL_MAX] = '\0';
		n = put_spec(b, longname);
		ok(grpc_model_check(&c, "root", b, n, 2, model, &mlen) == GRPC_MODEL_BAD,
		   "a name of CONF_MODEL_MAX bytes → malformed");
	}
	conf_free(&c);
}

static void test_methods(void)
{
	static const char cfg[] =
	    "[acl]\n"
	    "alice = m1\n"
	    "ops = *, @grpc:tensorflow.serving.ModelService/HandleReloadConfigRequest, "
	    "@grpc:tensorflow.ProfilerService/*\n";
	struct conf c;
	char err[256];
	unsigned d = 0;

#define M(user, p) grpc_method_check(&c, user, p, strlen(p), &d)
	conf_defaults(&c);
	ok(conf_load_buf(&c, "t.conf", cfg, sizeof(cfg) - 1, err, sizeof(err)) == 0,
	   "conf with @grpc: grants and '*'");
	ok(M("alice", "/tensorflow.serving.PredictionService/Predict") == GRPC_METHOD_MODEL &&
	       d == 2,
	   "Predict: allowed, model at depth 2");
	ok(M("alice", "/tensorflow.serving.PredictionService/MultiInference") ==
		   GRPC_METHOD_MODEL &&
	       d == 3,
	   "MultiInference: depth 3");
	ok(M("alice", "/tensorflow.serving.PredictionService/Classify") == GRPC_METHOD_MODEL &&
	       M("alice", "/tensorflow.serving.PredictionService/Regress") == GRPC_METHOD_MODEL &&
	       M("alice", "/tensorflow.serving.PredictionService/GetModelMetadata") ==
		   GRPC_METHOD_MODEL,
	   "Classify, Regress, GetModelMetadata: allowed");
	ok(M("alice", "/tensorflow.serving.PredictionService/PredictX") == GRPC_METHOD_DENIED &&
	       M("alice", "/tensorflow.serving.PredictionService/Future") == GRPC_METHOD_DENIED,
	   "other PredictionService methods: not on the list (denied by default)");
	ok(M("alice", "/tensorflow.serving.ModelService/GetModelStatus") == GRPC_METHOD_MODEL,
	   "GetModelStatus: allowed");
	ok(M("alice", "/tensorflow.serving.ModelService/HandleReloadConfigRequest") ==
	       GRPC_METHOD_DENIED,
	   "HandleReloadConfigRequest: denied by default");
	ok(M("ops", "/tensorflow.serving.ModelService/HandleReloadConfigRequest") ==
	       GRPC_METHOD_GRANTED,
	   "... granted by @grpc:");
	ok(M("ops", "/tensorflow.ProfilerService/Profile") == GRPC_METHOD_GRANTED,
	   "SERVICE/* grants the service's methods");
	ok(M("ops", "/tensorflow.ProfilerServiceX/Profile") == GRPC_METHOD_DENIED,
	   "... not a service with the same prefix");
	ok(M("ops", "/tensorflow.serving.SessionService/SessionRun") == GRPC_METHOD_DENIED,
	   "'*' does not grant methods");
	ok(M("alice", "/tensorflow.serving.PredictionService/") == GRPC_METHOD_BAD,
	   "no method name → bad");
	ok(M("alice", "/tensorflow.serving.PredictionService/Predict/x") == GRPC_METHOD_BAD,
	   "two slashes → bad");
	ok(M("alice", "tensorflow.serving.PredictionService/Predict") == GRPC_METHOD_BAD,
	   "no leading slash → bad");
	ok(M("alice", "/tensorflow.serving.PredictionServiceX/Predict") == GRPC_METHOD_DENIED,
	   "another service with the same prefix → denied");
#undef M
	conf_free(&c);

	{
		static const char *const bad[] = {
			"[acl]\nx = @grpc:\n",	     "[acl]\nx = @grpc:svc\n",
			"[acl]\nx = @grpc:svc/\n",   "[acl]\nx = @grpc:/m\n",
			"[acl]\nx = @grpc:s v/m\n",  "[acl]\nx = @grpc:svc/m/n\n",
			"[acl]\nx = @grpc:svc/*x\n", "[acl]\nx = m1, *\n",
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			conf_defaults(&c);
			ok(conf_load_buf(&c, "t.conf", bad[i], strlen(bad[i]), err, sizeof(err)) <
				   0 &&
			       strncmp(err, "t.conf:2: ", 10) == 0,
			   "bad @grpc: or mixed * refused with file:line");
		}
	}
}

static void test_timeout(void)
{
	uint64_t ms = 0;

	ok(grpc_timeout_parse("100m", 4, &ms) == 0 && ms == 100, "100m = 100 ms");
	ok(grpc_timeout_parse("2S", 2, &ms) == 0 && ms == 2000, "2S");
	ok(grpc_timeout_parse("1H", 2, &ms) == 0 && ms == 3600000, "1H");
	ok(grpc_timeout_parse("1500u", 5, &ms) == 0 && ms == 2, "1500u rounds up to 2 ms");
	ok(grpc_timeout_parse("1n", 2, &ms) == 0 && ms == 1, "1n rounds up to 1 ms");
	ok(grpc_timeout_parse("99999999M", 9, &ms) == 0 && ms == 99999999ull * 60000,
	   "8 digits of minutes");
	ok(grpc_timeout_parse("123456789S", 10, &ms) == -1, "9 digits → malformed");
	ok(grpc_timeout_parse("S", 1, &ms) == -1, "no digits → malformed");
	ok(grpc_timeout_parse("10x", 3, &ms) == -1, "unknown unit → malformed");
	ok(grpc_timeout_parse("-1S", 3, &ms) == -1, "sign → malformed");
	ok(grpc_http_status(GRPC_UNAUTHENTICATED) == 401 &&
	       grpc_http_status(GRPC_PERMISSION_DENIED) == 403 && grpc_http_status(GRPC_OK) == 200,
	   "status mapping for the log");
}

int main(void)
{
	subtest("pb reader");
	test_reader();
	subtest("model names");
	test_models();
	subtest("methods and grants");
	test_methods();
	subtest("grpc-timeout");
	test_timeout();
	return done_testing();
}
