#include "sandbox.h"

#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

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
	struct scmp_arg_cmp r_arg[2];
};

#define SANDBOX_EPERM SCMP_ACT_ERRNO(EPERM)
/* socket(domain, type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC) == t) */
#define SANDBOX_SOCKET(what, domain, t)                                                            \
	{                                                                                          \
		what, SANDBOX_EPERM, SCMP_SYS(socket), 2,                                          \
		{                                                                                  \
			SANDBOX_INT_EQ(0, domain),                                                 \
			    SCMP_CMP(1, SCMP_CMP_MASKED_EQ, SANDBOX_TYPE_MASK, (scmp_datum_t)(t))  \
		}                                                                                  \
	}

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5) /* linux/seccomp.h, 5.19+ */
#endif

/*
 * Installs the filter with seccomp(2) ourselves, from libseccomp's own BPF
 * (seccomp_export_bpf: the same program seccomp_load would install, arch
 * checks included; no_new_privs is already set), so that we can ask for
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, which libseccomp 2.5 cannot: once
 * the supervisor has received a notification, the task waits for the answer
 * and only a fatal signal interrupts it. Without it a signal could interrupt
 * a bind the supervisor then performs anyway (bind returns EINTR, the socket
 * is bound). Kernels before 5.19 refuse the flag with EINVAL: then the filter
 * is installed without it. Returns the notification fd or -1 with err set.
 */
static int sandbox_install(scmp_filter_ctx ctx, char *err, size_t errlen)
{
	struct sock_fprog prog;
	struct sock_filter *insns = NULL;
	struct stat st;
	ssize_t n;
	int mfd, fd = -1, rc;

	mfd = memfd_create("tfguard-run-bpf", MFD_CLOEXEC);
	if (mfd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		return -1;
	}
	rc = seccomp_export_bpf(ctx, mfd);
	if (rc < 0) {
		snprintf(err, errlen, "exporting the filter: %s", strerror(-rc));
		goto out;
	}
	if (fstat(mfd, &st) < 0 || st.st_size <= 0 ||
	    st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
	    st.st_size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
		snprintf(err, errlen, "exported filter has an unexpected size");
		goto out;
	}
	insns = malloc((size_t)st.st_size);
	if (!insns) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n = pread(mfd, insns, (size_t)st.st_size, 0);
	if (n != st.st_size) {
		snprintf(err, errlen, "reading the exported filter: %s",
			 n < 0 ? strerror(errno) : "short read");
		goto out;
	}
	prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
	prog.filter = insns;
	fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			  SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
			  &prog);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
				  SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (fd < 0)
		snprintf(err, errlen,
			 "loading the filter: %s (kernel without seccomp user notification?)",
			 strerror(errno));
out:
	free(insns);
	close(mfd);
	return fd;
}

int sandbox_load(char *err, size_t errlen)
{
	const struct sandbox_rule rules[] = {
		{ "bind -> supervisor", SCMP_ACT_NOTIFY, SCMP_SYS(bind), 0, { { 0 } } },
		/* listen() on an unbound socket autobinds 0.0.0.0: the supervisor decides */
		{ "listen -> supervisor", SCMP_ACT_NOTIFY, SCMP_SYS(listen), 0, { { 0 } } },
		/* io_uring's IORING_OP_BIND/LISTEN (6.11+) never pass through seccomp */
		{ "io_uring_setup", SANDBOX_EPERM, SCMP_SYS(io_uring_setup), 0, { { 0 } } },
		{ "io_uring_enter", SANDBOX_EPERM, SCMP_SYS(io_uring_enter), 0, { { 0 } } },
		{ "io_uring_register", SANDBOX_EPERM, SCMP_SYS(io_uring_register), 0, { { 0 } } },
		/* Taking fds out of, or controlling, another process: nothing a server
		 * under tfguard-run needs, and the way to the supervisor's notification
		 * fd for a child that still has CAP_SYS_PTRACE somewhere. */
		{ "pidfd_getfd", SANDBOX_EPERM, SCMP_SYS(pidfd_getfd), 0, { { 0 } } },
		{ "ptrace", SANDBOX_EPERM, SCMP_SYS(ptrace), 0, { { 0 } } },
		/* Link-layer sockets bypass bind() entirely: denied for every type. */
		{ "socket(AF_PACKET)",
		  SANDBOX_EPERM,
		  SCMP_SYS(socket),
		  1,
		  { SANDBOX_INT_EQ(0, AF_PACKET) } },
		{ "socket(AF_XDP)",
		  SANDBOX_EPERM,
		  SCMP_SYS(socket),
		  1,
		  { SANDBOX_INT_EQ(0, AF_XDP) } },
		/* AF_SMC binds an IPv4/IPv6 address on a TCP socket of its own, and SCTP
		 * can bind through setsockopt(SCTP_SOCKOPT_BINDX_ADD): both would reach
		 * a protected port number without the bind the supervisor sees. */
		{ "socket(AF_SMC)",
		  SANDBOX_EPERM,
		  SCMP_SYS(socket),
		  1,
		  { SANDBOX_INT_EQ(0, AF_SMC) } },
		{ "socket(IPPROTO_SCTP)",
		  SANDBOX_EPERM,
		  SCMP_SYS(socket),
		  1,
		  { SANDBOX_INT_EQ(2, IPPROTO_SCTP) } },
		/* Raw IP sockets see and can answer any TCP port. Only for the inet
		 * families: netlink uses SOCK_RAW too (getifaddrs, ip, ss). */
		SANDBOX_SOCKET("socket(AF_INET, SOCK_RAW)", AF_INET, SOCK_RAW),
		SANDBOX_SOCKET("socket(AF_INET6, SOCK_RAW)", AF_INET6, SOCK_RAW),
		SANDBOX_SOCKET("socket(AF_INET, SOCK_PACKET)", AF_INET, SOCK_PACKET),
		SANDBOX_SOCKET("socket(AF_INET6, SOCK_PACKET)", AF_INET6, SOCK_PACKET),
		/* Protocol 0 takes the first protocol of the type: for SOCK_SEQPACKET
		 * that is SCTP (the rule on IPPROTO_SCTP alone would not see it). */
		SANDBOX_SOCKET("socket(AF_INET, SOCK_SEQPACKET)", AF_INET, SOCK_SEQPACKET),
		SANDBOX_SOCKET("socket(AF_INET6, SOCK_SEQPACKET)", AF_INET6, SOCK_SEQPACKET),
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

		rc = seccomp_rule_add_array(ctx, r->r_action, r->r_syscall, r->r_nargs, r->r_arg);
		if (rc < 0) {
			snprintf(err, errlen, "rule %s: %s", r->r_what, strerror(-rc));
			goto out_release;
		}
	}
	fd = sandbox_install(ctx, err, errlen);
	if (fd < 0)
		goto out_release;
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
