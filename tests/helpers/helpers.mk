# Extra helper builds for the tfguard-run integration tests (included by the Makefile).
# The -static variants cannot be touched by LD_PRELOAD: only the seccomp
# supervisor stands between them and a public bind.
STATIC_HELPERS := $(B)/helpers/bindtest-static $(B)/helpers/racebind-static
HELPER_BINS += $(STATIC_HELPERS)
$(B)/helpers/%-static: tests/helpers/%.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static -pthread -o $@ $<
HELPER_BINS += $(B)/helpers/dupswap-static $(B)/helpers/splitfd-static $(B)/helpers/sigbind-static
# Fault injection into tfguard-run itself (LD_PRELOAD), for the fail-closed tests.
HELPER_BINS += $(B)/helpers/libtfgfault.so
$(B)/helpers/libtfgfault.so: tests/helpers/preload/tfgfault.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $<
