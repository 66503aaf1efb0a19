/*
 * fuzz_conf: the config loader (guard/lib/conf.c), as every tfguard program runs it.
 *
 * Invariants: success or a one-line "NAME:LINE: message" error; on success the [acl]
 * entries hold valid, NUL-terminated names, and conf_free() releases everything
 * (LeakSanitizer checks that in the libFuzzer build).
 */
#include "conf.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = fuzz_dup(data, size), err[CONF_ERR_MAX];
	struct conf c;
	size_t i, j;

	err[0] = '\0';
	conf_defaults(&c);
	if (conf_load_buf(&c, "f.conf", p, size, err, sizeof(err)) == 0) {
		for (i = 0; i < c.c_nacl; i++) {
			FUZZ_CHECK(strlen(c.c_acl[i].acl_user) > 0);
			FUZZ_CHECK(strlen(c.c_acl[i].acl_user) < CONF_NAME_MAX);
			FUZZ_CHECK(conf_acl_find(&c, c.c_acl[i].acl_user) == &c.c_acl[i]);
			for (j = 0; j < c.c_acl[i].acl_nmodels; j++) {
				FUZZ_CHECK(strlen(c.c_acl[i].acl_models[j]) > 0);
				FUZZ_CHECK(strlen(c.c_acl[i].acl_models[j]) < CONF_MODEL_MAX);
				FUZZ_CHECK(!strchr(c.c_acl[i].acl_models[j], '/'));
			}
		}
		FUZZ_CHECK(c.c_proxy.p_nlisten <= CONF_LISTEN_MAX);
		conf_free(&c);
	} else {
		FUZZ_CHECK(strncmp(err, "f.conf", 6) == 0);
		FUZZ_CHECK(!strchr(err, '\n'));
	}
	free(p);
	return 0;
}
