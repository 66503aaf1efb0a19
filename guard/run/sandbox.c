#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>

/* An int argument compared on its low 32 bits only, as the kernel reads it (no
 * bypass with garbage in the upper half of the register). */
#define SANDBOX_INT_EQ(i, v) SCMP_CMP((i), SCMP_CMP_MASKED_EQ, 0xffffffffULL, (scmp_datum_t)(v))
/* socket(2)'s type without SOCK_CLOEXEC / SOCK_NONBLOCK */
#define SANDBOX_TYPE_MASK 0xfULL

struct sandbox_rule {
	const char *r_what;
	uint32_t r_action;
	int r_syscall;
	unsigned r_nargs;
	struct scmp_arg_cmp r_arg;
};

int sandbox_load(char *err, size_t errlen)
{
	const struct sandbox_rule rules[] = {
		{ "bind -> supervisor", SCMP_ACT_NOTIFY, SCMP_SYS(bind), 0, { 0 } },
		/* listen() on an unbound socket autobinds 0.0.0.0: the supervisor decides */
		{ "listen -> supervisor", SCMP_ACT_NOTIFY, SCMP_SYS(listen), 0, { 0 } },
		/* io_uring's IORING_OP_BIND/LISTEN (6.11+) never pass through seccomp */
		{ "io_uring_setup", SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0, { 0 } },
		{ "io_uring_enter", SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_enter), 0, { 0 } },
		{ "io_uring_register",
		  SCMP_ACT_ERRNO(EPERM),
		  SCMP_SYS(io_uring_register),
		  0,
		  { 0 } },
		{ "socket(AF_PACKET)", SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
		  SANDBOX_INT_EQ(0, AF_PACKET) },
		{ "socket(SOCK_RAW)", SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
		  SCMP_CMP(1, SCMP_CMP_MASKED_EQ, SANDBOX_TYPE_MASK, SOCK_RAW) },
		{ "socket(SOCK_PACKET)", SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
		  SCMP_CMP(1, SCMP_CMP_MASKED_EQ, SANDBOX_TYPE_MASK, SOCK_PACKET) },
	};
	scmp_filter_ctx ctx;
	size_t i;
	int rc, fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	/* API level 5: SCMP_ACT_NOTIFY and the notify calls work on this kernel
	 * (libseccomp probes with seccomp(2) itself). */
	if (seccomp_api_get() < 5) {
		snprintf(err, errlen,
			 "seccomp user notification unavailable (libseccomp API level %u < 5: "
			 "kernel older than 5.0, or seccomp(2) blocked by an outer filter)",
			 seccomp_api_get());
		return -1;
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct sandbox_rule *r = &rules[i];

		if (r->r_nargs)
			rc = seccomp_rule_add(ctx, r->r_action, r->r_syscall, 1, r->r_arg);
		else
			rc = seccomp_rule_add(ctx, r->r_action, r->r_syscall, 0);
		if (rc < 0) {
			snprintf(err, errlen, "rule %s: %s", r->r_what, strerror(-rc));
			goto out_release;
		}
	}
	rc = seccomp_load(ctx);
	if (rc < 0) {
		snprintf(err, errlen,
			 "loading the filter: %s (kernel without seccomp user notification?)",
			 strerror(-rc));
		goto out_release;
	}
	fd = seccomp_notify_fd(ctx);
	if (fd < 0) {
		snprintf(err, errlen, "no notification fd: %s", strerror(-fd));
		goto out_release;
	}
	/* The child must never keep it across exec: it could answer its own binds. */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		snprintf(err, errlen, "notification fd: %s", strerror(errno));
		goto out_release;
	}
	seccomp_release(ctx);
	return fd;

out_release:
	seccomp_release(ctx);
	return -1;
}
