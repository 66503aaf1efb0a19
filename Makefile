# tfguard: one non-recursive GNU Makefile (STYLE.md §8).
#
#   make            programs into build/ (build/tfguard, build/tfguard-run, ...)
#   make test       install missing Debian packages, then every test (the README's command)
#   make SAN=1 ...  the same in build/san/ with AddressSanitizer + UBSan
#   make install    PREFIX=/usr/local DESTDIR=

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:

# gcc unless CC is given on the command line or in the environment (make's own
# default "cc" does not count)
ifeq ($(origin CC),default)
CC	:= gcc
endif
PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
SBINDIR	?= $(PREFIX)/sbin
LIBDIR	?= $(PREFIX)/lib
SYSCONFDIR ?= /etc
UNITDIR	?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
MANDIR	?= $(PREFIX)/share/man
DOCDIR	?= $(PREFIX)/share/doc/tfguard
VERSION	:= 0.1.0

ifeq ($(SAN),1)
B	:= build/san
OPT	:= -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDSAN	:= -fsanitize=address,undefined
else
B	:= build
OPT	:= -O2 -g -D_FORTIFY_SOURCE=3
LDSAN	:=
endif

WARN	:= -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes -Wvla
HARDEN	:= -fstack-protector-strong -fstack-clash-protection -fcf-protection
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -DTFG_VERSION='"$(VERSION)"' $(OPT) $(WARN) $(HARDEN) \
	-MMD -MP -Iguard/lib
EXE_CFLAGS := $(BASE_CFLAGS) -fPIE
EXE_LDFLAGS := -pie -Wl,-z,relro,-z,now,-z,noexecstack $(LDSAN)

# Each binary takes the flags of its own packages only (STYLE.md §1: the proxy
# never links libnftnl/libmnl; tfguard links OpenSSL for check/probe only: tlsprobe.c).
PKGS_CLI   := libnftnl libmnl openssl libcrypt
PKGS_RUN   := libseccomp
PKGS_PROXY := openssl libcrypt libnghttp2
pkg_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkg_libs   = $(shell pkg-config --libs $(1) 2>/dev/null)
MISSING_PKGS := $(foreach p,$(PKGS_CLI) $(PKGS_RUN) $(PKGS_PROXY),\
	$(if $(shell pkg-config --exists $(p) 2>/dev/null && echo y),,$(p)))

# ---- sources, one directory per binary -------------------------------------------
LIB_SRCS   := $(wildcard guard/lib/*.c)
CLI_SRCS   := $(wildcard guard/cli/*.c)
RUN_SRCS   := $(wildcard guard/run/*.c)
PROXY_SRCS := $(wildcard guard/proxy/*.c)
obj = $(patsubst %.c,$(B)/obj/%.o,$(1))
# everything but main.o, so that unit tests and fuzz replays can link a component
nomain = $(filter-out %/main.o,$(call obj,$(1)))

PROGS :=
ifneq ($(CLI_SRCS),)
PROGS += $(B)/tfguard
endif
ifneq ($(RUN_SRCS),)
PROGS += $(B)/tfguard-run
endif
ifneq ($(PROXY_SRCS),)
PROGS += $(B)/tfguard-proxy
endif
ifneq ($(wildcard preload/preload.c),)
PROGS += $(B)/libtfguard-preload.so
endif

all: $(PROGS)

pkgcheck:
	@if [ -n "$(strip $(MISSING_PKGS))" ]; then \
		echo "tfguard: missing development packages: $(MISSING_PKGS) (run scripts/deps.sh as root)" >&2; \
		exit 1; fi

$(B)/obj/%.o: %.c | pkgcheck
	@mkdir -p $(@D)
	$(CC) $(EXE_CFLAGS) $(CFLAGS_EXTRA) $(CFLAGS) -c -o $@ $<

$(B)/obj/guard/cli/%.o: CFLAGS_EXTRA = $(call pkg_cflags,$(PKGS_CLI)) -Iguard/proxy
$(B)/obj/guard/run/%.o: CFLAGS_EXTRA = $(call pkg_cflags,$(PKGS_RUN)) -Ipreload
# where "make install" puts the shim: tfguard-run looks there after its own directory
$(B)/obj/guard/run/main.o: CFLAGS_EXTRA += -DTFG_LIBDIR='"$(LIBDIR)/tfguard"'
$(B)/obj/guard/proxy/%.o: CFLAGS_EXTRA = $(call pkg_cflags,$(PKGS_PROXY)) -pthread

$(B)/libtfg.a: $(call obj,$(LIB_SRCS))
$(B)/libcli.a: $(call nomain,$(CLI_SRCS))
$(B)/librun.a: $(call nomain,$(RUN_SRCS))
$(B)/libproxy.a: $(call nomain,$(PROXY_SRCS))
$(B)/%.a:
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

LIBS_CLI   := $(call pkg_libs,$(PKGS_CLI))
LIBS_RUN   := $(call pkg_libs,$(PKGS_RUN))
LIBS_PROXY := $(call pkg_libs,$(PKGS_PROXY)) -pthread

# tfguard passwd, token and check read htpasswd and token files with the proxy's own parsers
CLI_SHARED := $(B)/obj/guard/proxy/htpasswd.o $(B)/obj/guard/proxy/b64.o \
	$(B)/obj/guard/proxy/token.o
$(B)/tfguard: $(B)/obj/guard/cli/main.o $(B)/libcli.a $(CLI_SHARED) $(B)/libtfg.a
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS_CLI) -pthread
$(B)/tfguard-run: $(B)/obj/guard/run/main.o $(B)/librun.a $(B)/libtfg.a
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS_RUN)
$(B)/tfguard-proxy: $(B)/obj/guard/proxy/main.o $(B)/libproxy.a $(B)/libtfg.a
	$(CC) $(EXE_LDFLAGS) -o $@ $^ $(LIBS_PROXY)

# The preload: one file, no guard/lib, only the interposed symbols exported.
PRELOAD_CFLAGS := $(filter-out -fPIE,$(BASE_CFLAGS)) -fPIC -fvisibility=hidden -Ipreload
$(B)/obj/preload/%.o: preload/%.c
	@mkdir -p $(@D)
	$(CC) $(PRELOAD_CFLAGS) $(CFLAGS) -c -o $@ $<
$(B)/libtfguard-preload.so: $(call obj,$(wildcard preload/*.c)) preload/preload.map
	$(CC) -shared -Wl,--version-script=preload/preload.map -Wl,-z,relro,-z,now,-z,noexecstack \
		$(LDSAN) -o $@ $(filter %.o,$^) -ldl -lpthread

# ---- tests ------------------------------------------------------------------------
# tests/unit/<component>/test_<module>.c links that component's archive.
UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRCS))
TEST_CFLAGS := $(EXE_CFLAGS) -Itests/unit -Wno-missing-prototypes

$(B)/tests/unit/lib/%: tests/unit/lib/%.c $(B)/libtfg.a
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(EXE_LDFLAGS) -o $@ $^
$(B)/tests/unit/cli/%: tests/unit/cli/%.c $(B)/libcli.a $(B)/libtfg.a
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Iguard/cli $(call pkg_cflags,$(PKGS_CLI)) $(EXE_LDFLAGS) -o $@ $^ $(LIBS_CLI)
$(B)/tests/unit/run/%: tests/unit/run/%.c $(B)/librun.a $(B)/libtfg.a
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Iguard/run -Ipreload $(call pkg_cflags,$(PKGS_RUN)) $(EXE_LDFLAGS) -o $@ $^ $(LIBS_RUN)
$(B)/tests/unit/proxy/%: tests/unit/proxy/%.c $(B)/libproxy.a $(B)/libtfg.a
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Iguard/proxy $(call pkg_cflags,$(PKGS_PROXY)) $(EXE_LDFLAGS) -o $@ $^ $(LIBS_PROXY)
$(B)/tests/unit/preload/%: tests/unit/preload/%.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Ipreload $(EXE_LDFLAGS) -o $@ $^

# tests/helpers/<name>.c: small programs the integration tests run.
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(patsubst tests/helpers/%.c,$(B)/helpers/%,$(HELPER_SRCS))
$(B)/helpers/%: tests/helpers/%.c
	@mkdir -p $(@D)
	$(CC) $(EXE_CFLAGS) -Wno-missing-prototypes $(EXE_LDFLAGS) -o $@ $< -lpthread
-include tests/helpers/helpers.mk

# tests/fuzz/fuzz_<target>.c: libFuzzer entry points; replay.c runs a corpus with gcc.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRCS))
FUZZ_REPLAYS := $(patsubst %,$(B)/fuzz/replay_%,$(FUZZ_NAMES))
FUZZ_ARCHIVES := $(if $(PROXY_SRCS),$(B)/libproxy.a) $(if $(CLI_SRCS),$(B)/libcli.a) $(B)/libtfg.a
FUZZ_CFLAGS := -Iguard/proxy -Iguard/cli -Ipreload $(call pkg_cflags,$(PKGS_PROXY) $(PKGS_CLI))
FUZZ_LIBS := $(LIBS_PROXY) $(LIBS_CLI)
$(B)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_ARCHIVES)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) $(FUZZ_CFLAGS) $(EXE_LDFLAGS) -o $@ $^ $(FUZZ_LIBS)

FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

test-bins: $(PROGS) $(UNIT_BINS) $(HELPER_BINS) $(FUZZ_REPLAYS)
san-bins: $(UNIT_BINS) $(FUZZ_REPLAYS) $(filter %/tfguard %/tfguard-proxy %/tfguard-run,$(PROGS))

check-unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(B)

check-fuzz: $(FUZZ_REPLAYS)
	@scripts/run-fuzz-replay.sh $(B)

check-integ: $(PROGS) $(HELPER_BINS)
	@tests/integ/run.sh $(B)

# under ASan+UBSan: the netlink code (acks, read-back, fallback, set comparison) on the
# firewall tests, and the
# proxy on its auth, parser, backend-failure, throttle, keep-alive, garbage, mTLS, token and
# auth-method tests (a sanitizer report in its log fails the test: tests/helpers/proxy_env.sh
# pass_hook)
SAN_INTEG ?= 10 11 13 15 63 64 30 32 34 36 38 39 44 45 46 47 50 51 52 53 54 55 56 65 66
check-integ-san:
	@TESTS="$(SAN_INTEG)" tests/integ/run.sh build/san

# tfguard-run (its supervisor) under ASan+UBSan on the tfguard-run tests, with the
# shim and helpers of the normal build (an ASan shim cannot be preloaded into other
# programs). 25 is left out: it preloads fault injection into tfguard-run itself.
# Any sanitizer report (written to build/san/run-reports/) fails the step.
SAN_RUN_INTEG ?= 20 21 22 23 24 26 27 28 29
check-integ-san-run:
	@rm -rf build/san/run-reports && mkdir -p build/san/run-reports
	@ln -sf ../libtfguard-preload.so build/san/libtfguard-preload.so
	@TFG_RUN=$(CURDIR)/build/san/tfguard-run \
		ASAN_OPTIONS=log_path=$(CURDIR)/build/san/run-reports/asan \
		UBSAN_OPTIONS=print_stacktrace=1:log_path=$(CURDIR)/build/san/run-reports/ubsan \
		TESTS="$(SAN_RUN_INTEG)" tests/integ/run.sh build
	@if ls build/san/run-reports/* >/dev/null 2>&1; then \
		head -50 build/san/run-reports/*; echo "sanitizer reports from tfguard-run" >&2; exit 1; fi

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
check-format:
	@out=$$(clang-format --dry-run --Werror $(FORMAT_SRCS) 2>&1) || \
		{ printf '%s\n' "$$out" | head -40; echo "format: run 'make format'" >&2; exit 1; }
	@echo "format: ok"

format:
	clang-format -i $(FORMAT_SRCS)

test:
	@scripts/test.sh

bench: all
	scripts/bench.sh

demo: all
	scripts/demo.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/tfguard $(DESTDIR)$(DOCDIR)
	install -m 0755 $(B)/tfguard $(DESTDIR)$(SBINDIR)/tfguard
	$(if $(RUN_SRCS),install -m 0755 $(B)/tfguard-run $(DESTDIR)$(BINDIR)/tfguard-run)
	$(if $(PROXY_SRCS),install -m 0755 $(B)/tfguard-proxy $(DESTDIR)$(SBINDIR)/tfguard-proxy)
	$(if $(wildcard preload/preload.c),install -m 0755 $(B)/libtfguard-preload.so $(DESTDIR)$(LIBDIR)/tfguard/)
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	sed -e 's|@BINDIR@|$(BINDIR)|g' systemd/tensorflow-serving.service.example \
		>$(DESTDIR)$(DOCDIR)/tensorflow-serving.service.example
	install -d $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 systemd/tfguard.sysusers $(DESTDIR)$(SYSUSERSDIR)/tfguard.conf
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	for m in man/*.[58]; do install -m 0644 "$$m" $(DESTDIR)$(MANDIR)/man$${m##*.}/; done
	install -d $(DESTDIR)$(UNITDIR)
	for u in systemd/*.service; do \
		sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
			"$$u" >$(DESTDIR)$(UNITDIR)/$${u##*/} && chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}; \
	done

clean:
	rm -rf build

.PHONY: all pkgcheck test test-bins san-bins check-integ-san check-unit check-fuzz check-integ check-format format \
	fuzz bench demo install clean

-include $(shell find $(B)/obj $(B)/tests -name '*.d' 2>/dev/null)
