/*
 * privdrop: setgroups/setresgid/setresuid and proof that root is gone. See privdrop.h.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define PRIVDROP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define PRIVDROP_ARCH AUDIT_ARCH_AARCH64
#endif

int privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	char buf[4096];
	struct passwd pw, *res = NULL;
	int e = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

	if (res == NULL) {
		snprintf(err, errlen, "user %s: %s (create it, or set [proxy] user)", user,
			 e ? strerror(e) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen,
			 "user %s: has uid 0 (set [proxy] user to an unprivileged user)", user);
		return -1;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int privdrop_to(const char *user, char *err, size_t errlen)
{
	uid_t uid, ruid, euid, suid;
	gid_t gid, rgid, egid, sgid;

	if (geteuid() != 0)
		return 0;
	if (privdrop_lookup(user, &uid, &gid, err, errlen) < 0)
		return -1;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "user %s: cannot switch to it: %s", user, strerror(errno));
		return -1;
	}
	/* Prove it: every id is the target and root cannot be taken back. */
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid ||
	    sgid != gid) {
		snprintf(err, errlen, "user %s: ids did not change as asked", user);
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || setegid(0) == 0) {
		snprintf(err, errlen, "user %s: root could be regained after dropping it", user);
		return -1;
	}
	return 1;
}

int privdrop_nodump(bool keep_dumpable, char *err, size_t errlen)
{
	struct rlimit zero = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &zero) < 0) {
		snprintf(err, errlen, "setrlimit(RLIMIT_CORE, 0): %s", strerror(errno));
		return -1;
	}
	if (!keep_dumpable && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		snprintf(err, errlen, "prctl(PR_SET_DUMPABLE, 0): %s", strerror(errno));
		return -1;
	}
	return 0;
}

#ifdef PRIVDROP_ARCH
/* Syscalls refused with EPERM after start-up (see privdrop.h). */
static const int privdrop_denied[] = {
	__NR_execve,
	__NR_execveat,
	__NR_ptrace,
	__NR_process_vm_readv,
	__NR_process_vm_writev,
	__NR_mount,
	__NR_umount2,
	__NR_pivot_root,
	__NR_chroot,
	__NR_unshare,
	__NR_setns,
	__NR_kexec_load,
	__NR_init_module,
	__NR_finit_module,
	__NR_delete_module,
	__NR_bpf,
	__NR_io_uring_setup,
	__NR_io_uring_enter,
	__NR_io_uring_register,
	__NR_keyctl,
	__NR_add_key,
	__NR_request_key,
	__NR_userfaultfd,
	__NR_perf_event_open,
	__NR_setuid,
	__NR_setgid,
	__NR_setreuid,
	__NR_setregid,
	__NR_setresuid,
	__NR_setresgid,
	__NR_setgroups,
	__NR_setfsuid,
	__NR_setfsgid,
#ifdef __NR_fork
	__NR_fork,
	__NR_vfork,
#endif
};

#define PRIVDROP_NDENIED (sizeof(privdrop_denied) / sizeof(privdrop_denied[0]))

int privdrop_lockdown(char *err, size_t errlen)
{
	/* arch check (3) + load nr (1) + x32 (2) + clone3 (2) + clone (5) + denied (2 each) +
	 * allow (1) */
	struct sock_filter f[3 + 1 + 2 + 2 + 5 + 2 * PRIVDROP_NDENIED + 1];
	struct sock_fprog prog;
	size_t n = 0, i;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PRIVDROP_ARCH, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	/*
	 * x32 calls come with the x86_64 arch and the number | 0x40000000: none of the numbers
	 * below would match them, so every one of them is refused with EPERM (the proxy is not
	 * x32; a kernel without x32 would say ENOSYS).
	 * Elsewhere the jump never triggers (no syscall number is that large).
	 */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	/* clone3's flags sit in memory a filter cannot read: ENOSYS makes glibc use clone. */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
	/* clone: threads (CLONE_THREAD) only, no new processes. */
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, args[0]));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	for (i = 0; i < PRIVDROP_NDENIED; i++) {
		f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (unsigned)privdrop_denied[i], 0, 1);
		f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
	}
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = (unsigned short)n;
	prog.filter = f;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		snprintf(err, errlen, "seccomp: %s (kernel without seccomp filters?)",
			 strerror(errno));
		return -1;
	}
	return 0;
}
#else
int privdrop_lockdown(char *err, size_t errlen)
{
	snprintf(err, errlen, "seccomp: not built for this architecture");
	return -1;
}
#endif
