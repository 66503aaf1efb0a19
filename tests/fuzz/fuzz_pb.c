/*
 * fuzz_pb: the protobuf field reader (pb.c) and the model-name walk built on it
 * (grpc_model_check), on arbitrary bytes.
 *
 * Invariants: pb_next() never hands out a slice outside its input, always moves
 * forward on success and stays put on failure; grpc_model_check() returns one of its
 * four results, the name it reports is NUL-terminated, shorter than CONF_MODEL_MAX,
 * and is bytes of the input; with no [acl] every well-formed named call is allowed,
 * and a user without an [acl] line is never allowed.
 */
#include "fuzz.h"

#include "conf.h"
#include "grpc.h"
#include "pb.h"

static void walk(const uint8_t *p, size_t n, unsigned depth)
{
	struct pb r;
	struct pb_field f;
	size_t before = 0;
	int k;

	pb_init(&r, p, n);
	while ((k = pb_next(&r, &f)) == 1) {
		FUZZ_CHECK(r.pb_off > before && r.pb_off <= n);
		FUZZ_CHECK(f.pf_num >= 1 && f.pf_num <= 0x1fffffff);
		if (f.pf_wire == PB_LEN) {
			FUZZ_CHECK(fuzz_inside(f.pf_data, f.pf_len, p, n));
			if (depth < 4)
				walk(f.pf_data, f.pf_len, depth + 1);
		}
		before = r.pb_off;
	}
	FUZZ_CHECK(k == 0 || (k == -1 && r.pb_off == before));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct conf open_conf, acl_conf;
	static int init;
	char model[CONF_MODEL_MAX];
	size_t mlen = 0;
	uint8_t *p;
	unsigned depth;
	enum grpc_model r;

	if (!init) {
		static const char acl[] = "[acl]\nalice = m1, m2\n";
		char err[256];

		conf_defaults(&open_conf);
		conf_defaults(&acl_conf);
		if (conf_load_buf(&acl_conf, "fuzz.conf", acl, sizeof(acl) - 1, err, sizeof(err)) <
		    0)
			abort();
		init = 1;
	}
	p = (uint8_t *)fuzz_dup(data, size);
	walk(p, size, 0);
	for (depth = 2; depth <= 3; depth++) {
		r = grpc_model_check(&acl_conf, "alice", p, size, depth, model, &mlen);
		FUZZ_CHECK(r == GRPC_MODEL_OK || r == GRPC_MODEL_DENIED || r == GRPC_MODEL_NONE ||
			   r == GRPC_MODEL_BAD);
		FUZZ_CHECK(mlen < CONF_MODEL_MAX && model[mlen] == '\0');
		FUZZ_CHECK(mlen == 0 || memmem(p, size, model, mlen) != NULL);
		if (r == GRPC_MODEL_OK)
			FUZZ_CHECK(mlen > 0 && ((mlen == 2 && (memcmp(model, "m1", 2) == 0 ||
							       memcmp(model, "m2", 2) == 0))));
		r = grpc_model_check(&acl_conf, "nobody", p, size, depth, model, &mlen);
		FUZZ_CHECK(r != GRPC_MODEL_OK);
		r = grpc_model_check(&open_conf, "anyone", p, size, depth, model, &mlen);
		FUZZ_CHECK(r == GRPC_MODEL_OK || r == GRPC_MODEL_BAD);
	}
	free(p);
	return 0;
}
