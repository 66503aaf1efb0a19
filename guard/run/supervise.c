#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "log.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* linux/pidfd.h, 6.9+: a pidfd for one thread */
#endif
#define SUPERVISE_CAP_NET_BIND_SERVICE 10
#define SV_HELPER_TIMEOUT_MS	       10000
#define SV_GROUPS_MAX		       256

/* The task behind one notification, and our duplicate of its socket. */
struct sv_call {
	pid_t c_tid;
	int c_proc; /* /proc/TID: every read below goes through it (see sv_call_open) */
	int c_pidfd;
	int c_sock;
	int c_domain;
	char c_comm[32];
};

static void sv_comm(int proc, char *buf, size_t len)
{
	ssize_t n = -1;
	int fd;

	fd = openat(proc, "comm", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n <= 0) {
		snprintf(buf, len, "?");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* The value of "Key:" in /proc/TID/status (proc: its dirfd) into val; 0 or -1. */
static int sv_status_field(int proc, const char *key, char *val, size_t len)
{
	/* 64 KiB: the whole file even with hundreds of groups; a longer one is
	 * refused, never cut (a cut group list would name a different group) */
	static char buf[65536];
	char *p, *eol;
	size_t klen = strlen(key), got = 0;
	ssize_t n;
	int fd;

	fd = openat(proc, "status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (got == 0 || got == sizeof(buf) - 1)
		return -1;
	buf[got] = '\0';
	for (p = buf; p && *p; p = eol ? eol + 1 : NULL) {
		eol = strchr(p, '\n');
		if (eol)
			*eol = '\0';
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			p += klen + 1;
			p += strspn(p, " \t");
			if (strlen(p) >= len)
				return -1; /* too long for the caller: refuse, never truncate */
			memcpy(val, p, strlen(p) + 1);
			return 0;
		}
	}
	return -1;
}

/*
 * A pidfd for the thread that made the call. A thread made with CLONE_THREAD
 * but without CLONE_FILES has its own fd table, and pidfd_getfd() reads the
 * table of the task behind the pidfd: only PIDFD_THREAD (6.9+) names the
 * calling thread itself. Older kernels refuse it for non-leader threads, so we
 * fall back to the thread-group leader and *exact is set false: the duplicate
 * may then come from another table, and sv_call_open() proves with kcmp() that
 * it is the caller's file before anything is done with it.
 */
static int sv_pidfd(pid_t tid, int proc, bool *exact)
{
	char tgid[32];
	int fd;

	*exact = true;
	fd = pidfd_open(tid, PIDFD_THREAD);
	if (fd >= 0 || errno != EINVAL)
		return fd;
	/* Before 6.9 this succeeds only for a thread-group leader, whose table
	 * is its own: still exact. */
	fd = pidfd_open(tid, 0);
	if (fd >= 0 || errno != EINVAL)
		return fd;
	*exact = false;
	if (sv_status_field(proc, "Tgid", tgid, sizeof(tgid)) < 0)
		return -1;
	return pidfd_open((pid_t)atoi(tgid), 0);
}

/*
 * Is /proc/TID/WHAT (proc: the dirfd of /proc/TID) the same object as ours:
 * a namespace, or the root directory? statx with AT_STATX_DONT_SYNC: the
 * file system is not asked (a FUSE root served by the child itself must not
 * hang the supervisor); device and inode come from the kernel's own objects.
 * For a root the mount must be the same one too (the same directory seen
 * through a bind mount elsewhere is another root).
 */
static bool sv_same_ns(int proc, const char *what)
{
	char self[64];
	struct statx a, b;
	const unsigned mask = STATX_INO | STATX_MNT_ID;

	snprintf(self, sizeof(self), "/proc/self/%s", what);
	if (statx(AT_FDCWD, self, AT_STATX_DONT_SYNC, mask, &a) < 0 ||
	    statx(proc, what, AT_STATX_DONT_SYNC, mask, &b) < 0)
		return false;
	if (a.stx_dev_major != b.stx_dev_major || a.stx_dev_minor != b.stx_dev_minor ||
	    a.stx_ino != b.stx_ino)
		return false;
	/* before 5.8 there is no mount id: then device and inode must do */
	return !(a.stx_mask & b.stx_mask & STATX_MNT_ID) || a.stx_mnt_id == b.stx_mnt_id;
}

/*
 * ip_unprivileged_port_start of our network namespace. A kernel without it
 * (before 4.11) has the fixed 1024; any other failure counts every port as
 * privileged (closed, not open).
 */
static int sv_read_port_start(void)
{
	char buf[16], *end;
	ssize_t n;
	long v;
	int fd;

	fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1024 : 65536;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 65536;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (end == buf || (*end != '\n' && *end != '\0') || errno || v < 0 || v > 65536)
		return 65536;
	return (int)v;
}

/* Whether we hold CAP_NET_BIND_SERVICE in our effective set. */
static bool sv_have_bind_cap(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return true; /* cannot tell: assume our binds are privileged */
	return (d[0].effective >> SUPERVISE_CAP_NET_BIND_SERVICE) & 1;
}

/*
 * Whether sock lives in our network namespace, by SO_NETNS_COOKIE. A kernel
 * without it (before 5.14) cannot tell: then "yes" only when our own binds carry
 * no privilege (the kernel refuses for us what it would refuse for the caller).
 */
static bool sv_same_netns(int sock)
{
	uint64_t a = 0, b = 0;
	socklen_t la = sizeof(a), lb = sizeof(b);
	int own;

	if (getsockopt(sock, SOL_SOCKET, SO_NETNS_COOKIE, &a, &la) < 0)
		return errno == ENOPROTOOPT && !sv_have_bind_cap();
	own = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (own < 0)
		return false;
	if (getsockopt(own, SOL_SOCKET, SO_NETNS_COOKIE, &b, &lb) < 0)
		b = ~a;
	close(own);
	return a == b;
}

/*
 * ip_unprivileged_port_start of the network namespace the socket lives in: the
 * kernel checks a bind against that one, not ours. Another namespace's value is
 * read by a short-lived child that joins it (a /proc/sys/net file opened there
 * shows that namespace). If it cannot be read, every port counts as privileged
 * (only a caller with CAP_NET_BIND_SERVICE gets its bind): closed, not open.
 */
static int sv_unprivileged_port_start(int sock)
{
	struct statx a, b;
	int ns, p[2], v = 65536, st;
	pid_t pid;

	/*
	 * SIOCGSKNS needs CAP_NET_ADMIN. Without it (tfguard-run not root, or root
	 * without it) the namespace is compared by its cookie: our own value is used
	 * only for a socket of our namespace; another one counts every port as
	 * privileged.
	 */
	ns = ioctl(sock, SIOCGSKNS);
	if (ns < 0 && errno == EPERM)
		return sv_same_netns(sock) ? sv_read_port_start() : v;
	if (ns < 0)
		return errno == ENOTTY || errno == EINVAL ? sv_read_port_start() : v;
	if (statx(AT_FDCWD, "/proc/self/ns/net", 0, STATX_INO, &a) == 0 &&
	    statx(ns, "", AT_EMPTY_PATH, STATX_INO, &b) == 0 && a.stx_ino == b.stx_ino &&
	    a.stx_dev_major == b.stx_dev_major && a.stx_dev_minor == b.stx_dev_minor) {
		close(ns);
		return sv_read_port_start();
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		close(ns);
		return v;
	}
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		v = setns(ns, CLONE_NEWNET) == 0 ? sv_read_port_start() : 65536;
		_exit(write(p[1], &v, sizeof(v)) == (ssize_t)sizeof(v) ? 0 : 1);
	}
	close(ns);
	close(p[1]);
	if (pid < 0 || read(p[0], &v, sizeof(v)) != (ssize_t)sizeof(v))
		v = 65536;
	close(p[0]);
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return v;
}

/*
 * Our bind runs with our credentials, so a port below
 * ip_unprivileged_port_start is bound for the child only when the child could
 * bind it itself: CAP_NET_BIND_SERVICE in its effective set, and in our user
 * namespace (capabilities inside a user namespace it created do not count for
 * our network namespace; refusing there is the conservative answer).
 */
static bool sv_child_may_bind(int proc, int sock, unsigned port)
{
	char caps[64];
	unsigned long long eff;

	if (port == 0 || (int)port >= sv_unprivileged_port_start(sock))
		return true;
	if (!sv_same_ns(proc, "ns/user"))
		return false;
	if (sv_status_field(proc, "CapEff", caps, sizeof(caps)) < 0)
		return false;
	eff = strtoull(caps, NULL, 16);
	return (eff >> SUPERVISE_CAP_NET_BIND_SERVICE) & 1;
}

/*
 * Restarted binds. libseccomp 2.5.4 cannot ask for
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, so a signal (Go's SIGURG preemption)
 * can interrupt the child after our bind succeeded but before it got the
 * answer; it then calls bind again. If the socket already carries exactly the
 * address we would bind, that second call is answered 0 instead of EINVAL.
 * A bound TCP/UDP socket always has a port; an unbound one reads as port 0.
 */
static bool sv_already_bound(int sock, const struct sockaddr_storage *want, socklen_t wlen)
{
	struct sockaddr_storage cur;
	socklen_t clen = sizeof(cur);

	memset(&cur, 0, sizeof(cur));
	if (getsockname(sock, (struct sockaddr *)&cur, &clen) < 0)
		return false;
	if (cur.ss_family == AF_INET && wlen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *c = (const void *)&cur, *w = (const void *)want;

		return c->sin_port != 0 && (w->sin_port == 0 || w->sin_port == c->sin_port) &&
		       c->sin_addr.s_addr == w->sin_addr.s_addr &&
		       (want->ss_family == AF_INET || want->ss_family == AF_UNSPEC);
	}
	if (cur.ss_family == AF_INET6 && want->ss_family == AF_INET6 && wlen >= 24) {
		const struct sockaddr_in6 *c = (const void *)&cur, *w = (const void *)want;

		return c->sin6_port != 0 && (w->sin6_port == 0 || w->sin6_port == c->sin6_port) &&
		       memcmp(&c->sin6_addr, &w->sin6_addr, sizeof(c->sin6_addr)) == 0;
	}
	return false;
}

/*
 * 0 when fd in the task tid is the very file we hold as ours (kcmp
 * KCMP_FILE), 1 when it is another one, -1 with errno when kcmp cannot tell
 * (ENOSYS without CONFIG_KCMP / CONFIG_CHECKPOINT_RESTORE, EPERM, ...).
 */
static int sv_same_file(pid_t tid, int fd, int ours)
{
	long r = syscall(SYS_kcmp, (pid_t)getpid(), tid, KCMP_FILE, (unsigned long)ours,
			 (unsigned long)fd);

	if (r < 0)
		return -1;
	return r == 0 ? 0 : 1;
}

/*
 * Opens the caller's pidfd and takes a duplicate of its socket fd. Returns 0,
 * or an errno value to answer with.
 */
static int sv_call_open(struct supervise *sv, struct sv_call *c, int fd)
{
	char path[32];
	socklen_t l = sizeof(c->c_domain);
	bool exact;
	int same;

	memset(c, 0, sizeof(*c));
	c->c_tid = (pid_t)sv->sv_req->pid;
	c->c_pidfd = -1;
	c->c_sock = -1;
	/*
	 * /proc/TID as a directory fd: it stays bound to this task (reads fail
	 * with ESRCH once it is gone; a new task with the same number never shows
	 * through it). Opened before the notification is checked as still pending
	 * below, so everything read through it later is the caller's.
	 */
	snprintf(path, sizeof(path), "/proc/%d", (int)c->c_tid);
	c->c_proc = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (c->c_proc < 0) {
		log_warn("[%d]: %s: %s (bind refused)", (int)c->c_tid, path, strerror(errno));
		return EACCES;
	}
	sv_comm(c->c_proc, c->c_comm, sizeof(c->c_comm));
	c->c_pidfd = sv_pidfd(c->c_tid, c->c_proc, &exact);
	if (c->c_pidfd < 0) {
		log_warn("%s[%d]: pidfd_open: %s (bind refused)", c->c_comm, (int)c->c_tid,
			 strerror(errno));
		return EACCES;
	}
	/* The pid named in the notification is only trusted once the notification
	 * is known to be still pending (the task cannot have been replaced). */
	if (seccomp_notify_id_valid(sv->sv_fd, sv->sv_req->id) < 0)
		return ESRCH;
	c->c_sock = pidfd_getfd(c->c_pidfd, fd, 0);
	if (c->c_sock < 0) {
		if (errno == EBADF && exact)
			return EBADF;
		log_warn("%s[%d]: pidfd_getfd: %s (bind refused)", c->c_comm, (int)c->c_tid,
			 strerror(errno));
		return EACCES;
	}
	/*
	 * Is our duplicate the caller's fd, from the caller's own table? Without
	 * PIDFD_THREAD it came from the leader's table, which a thread cloned
	 * without CLONE_FILES does not share: then only kcmp() can tell, and a
	 * kernel that cannot answer gets a refusal. With PIDFD_THREAD the answer
	 * is known already; kcmp is asked anyway and a mismatch (the fd was
	 * replaced meanwhile) is refused as well.
	 */
	same = sv_same_file(c->c_tid, fd, c->c_sock);
	if (same == 1 || (same < 0 && !exact)) {
		log_warn("%s[%d]: cannot prove that fd %d of the calling thread is the socket "
			 "examined (%s; refused)",
			 c->c_comm, (int)c->c_tid, fd,
			 same == 1 ? "it is another file: separate fd table, or replaced"
				   : strerror(errno));
		return EACCES;
	}
	/* kcmp named the task by number: still pending means still the same task */
	if (seccomp_notify_id_valid(sv->sv_fd, sv->sv_req->id) < 0)
		return ESRCH;
	if (getsockopt(c->c_sock, SOL_SOCKET, SO_DOMAIN, &c->c_domain, &l) < 0)
		return errno == ENOTSOCK ? ENOTSOCK : EACCES;
	return 0;
}

static void sv_call_close(struct sv_call *c)
{
	if (c->c_proc >= 0)
		close(c->c_proc);
	if (c->c_sock >= 0)
		close(c->c_sock);
	if (c->c_pidfd >= 0)
		close(c->c_pidfd);
}

static int sv_v6only(int sock, int domain)
{
	int v = 0;
	socklen_t l = sizeof(v);

	if (domain != AF_INET6 || getsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l) < 0)
		return 0;
	return v;
}

static void sv_log(const struct sv_call *c, const char *what, const void *orig, size_t olen,
		   const struct policy_decision *d, int result)
{
	char line[512];
	size_t off = 0;
	enum log_level lvl = LOG_LEVEL_INFO;

	policy_put_decision(line, sizeof(line), &off, what, orig, olen, d);
	if (d->d_verdict == POLICY_REFUSE)
		lvl = LOG_LEVEL_WARN;
	/* Already-loopback binds are what the shim produced: one line per decision
	 * is the shim's; the supervisor repeats it only with -v. */
	else if (d->d_reason == POLICY_R_LOOPBACK && result == 0)
		lvl = LOG_LEVEL_DEBUG;
	if (result != 0 && d->d_verdict != POLICY_REFUSE)
		log_msg(LOG_LEVEL_WARN, "%s[%d]: %s: failed: %s", c->c_comm, (int)c->c_tid, line,
			strerror(result));
	else
		log_msg(lvl, "%s[%d]: %s", c->c_comm, (int)c->c_tid, line);
}

static void sv_answer(struct seccomp_notif_resp *resp, int e)
{
	resp->val = 0;
	resp->error = e ? -e : 0;
}

/* Creds of a task as /proc/TID/status shows them (mapped into our user ns). */
struct sv_creds {
	uid_t cr_uid[4]; /* real, effective, saved, fs */
	gid_t cr_gid[4];
	gid_t cr_groups[SV_GROUPS_MAX];
	int cr_ngroups;
	mode_t cr_umask;
	unsigned long long cr_eff, cr_prm;
	bool cr_same_userns, cr_same_root, cr_same_mntns;
};

static int sv_ids(int proc, const char *key, unsigned out[4])
{
	char val[128];
	unsigned long v;
	char *p, *end;
	int i;

	if (sv_status_field(proc, key, val, sizeof(val)) < 0)
		return -1;
	p = val;
	for (i = 0; i < 4; i++) {
		errno = 0;
		v = strtoul(p, &end, 10);
		if (end == p || errno || v > UINT32_MAX)
			return -1;
		out[i] = (unsigned)v;
		p = end;
	}
	return 0;
}

static int sv_read_creds(int proc, struct sv_creds *cr)
{
	static char val[16384]; /* the supervisor is one thread */
	char *p, *end;
	unsigned u[4];
	unsigned long v;
	int i;

	memset(cr, 0, sizeof(*cr));
	if (sv_ids(proc, "Uid", u) < 0)
		return -1;
	for (i = 0; i < 4; i++)
		cr->cr_uid[i] = (uid_t)u[i];
	if (sv_ids(proc, "Gid", u) < 0)
		return -1;
	for (i = 0; i < 4; i++)
		cr->cr_gid[i] = (gid_t)u[i];
	if (sv_status_field(proc, "Groups", val, sizeof(val)) < 0)
		return -1;
	for (p = val; *p; p = end) {
		errno = 0;
		v = strtoul(p, &end, 10);
		if (end == p)
			break;
		if (errno || v > UINT32_MAX || cr->cr_ngroups == SV_GROUPS_MAX)
			return -1;
		cr->cr_groups[cr->cr_ngroups++] = (gid_t)v;
	}
	if (sv_status_field(proc, "Umask", val, sizeof(val)) < 0)
		return -1;
	cr->cr_umask = (mode_t)strtoul(val, NULL, 8) & 0777;
	if (sv_status_field(proc, "CapEff", val, sizeof(val)) < 0)
		return -1;
	cr->cr_eff = strtoull(val, NULL, 16);
	if (sv_status_field(proc, "CapPrm", val, sizeof(val)) < 0)
		return -1;
	cr->cr_prm = strtoull(val, NULL, 16);
	cr->cr_same_userns = sv_same_ns(proc, "ns/user");
	cr->cr_same_mntns = sv_same_ns(proc, "ns/mnt");
	cr->cr_same_root = sv_same_ns(proc, "root");
	return 0;
}

/* In the helper: become the caller as far as a bind can tell. 0 or -1. */
static int sv_become(const struct sv_creds *cr)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2], mine[2];
	gid_t cur[SV_GROUPS_MAX];
	unsigned long long prm;
	int n;

	memset(mine, 0, sizeof(mine));
	if (syscall(SYS_capget, &h, mine) < 0)
		return -1;
	prm = (unsigned long long)mine[1].permitted << 32 | mine[0].permitted;
	/* keep what we have across the uid change; capset below trims it */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return -1;
	n = getgroups(SV_GROUPS_MAX, cur);
	if (n != cr->cr_ngroups || memcmp(cur, cr->cr_groups, (size_t)n * sizeof(gid_t)) != 0) {
		if (setgroups((size_t)cr->cr_ngroups, cr->cr_groups) < 0)
			return -1;
	}
	if (setresgid(cr->cr_gid[0], cr->cr_gid[1], cr->cr_gid[2]) < 0)
		return -1;
	(void)setfsgid(cr->cr_gid[3]);
	if ((gid_t)setfsgid((gid_t)-1) != cr->cr_gid[3])
		return -1;
	if (setresuid(cr->cr_uid[0], cr->cr_uid[1], cr->cr_uid[2]) < 0)
		return -1;
	(void)setfsuid(cr->cr_uid[3]);
	if ((uid_t)setfsuid((uid_t)-1) != cr->cr_uid[3])
		return -1;
	/* The caller's capabilities count in our namespace only if it is ours. */
	prm &= cr->cr_same_userns ? cr->cr_prm : 0;
	memset(d, 0, sizeof(d));
	d[0].permitted = (uint32_t)prm;
	d[1].permitted = (uint32_t)(prm >> 32);
	d[0].effective = (uint32_t)(prm & cr->cr_eff);
	d[1].effective = (uint32_t)((prm & cr->cr_eff) >> 32);
	if (syscall(SYS_capset, &h, d) < 0)
		return -1;
	umask(cr->cr_umask);
	return 0;
}

/*
 * In a forked helper: closes every fd except the n in keep (-1 entries
 * ignored). 0, or -1 if that cannot be done.
 */
static int sv_keep_fds(int *keep, int n)
{
	unsigned lo = 0;
	int i, j, t;

	/* sort the few fds to keep, then close the gaps between them */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (i = 0; i < n; i++) {
		if (keep[i] < 0)
			continue;
		if ((unsigned)keep[i] > lo && close_range(lo, (unsigned)keep[i] - 1, 0) < 0)
			return -1;
		lo = (unsigned)keep[i] + 1;
	}
	return close_range(lo, ~0U, 0);
}

/*
 * A bind whose outcome depends on who makes it and from where: a path
 * AF_UNIX bind (resolved against the caller's root and cwd, permission checks
 * with its fsuid, fsgid and groups, the inode created with its umask and
 * owner) and a netlink bind that joins multicast groups (capability checks).
 * A short-lived helper process forked from the supervisor does it:
 *   - it joins the caller's mount namespace if that differs (needs
 *     CAP_SYS_ADMIN; otherwise the bind is refused),
 *   - takes the caller's root (chroot to /proc/TID/root, only if it differs
 *     from ours; needs CAP_SYS_CHROOT) and cwd (fchdir to an O_PATH fd of
 *     /proc/TID/cwd opened before anything changed),
 *   - takes its uids, gids, supplementary groups, fsuid/fsgid and umask, and
 *     no capability it does not have itself (none at all if it lives in
 *     another user namespace),
 *   - binds our duplicate of the socket with our copy of the address and
 *     exits with 0 or the errno.
 * Anything it cannot reproduce is answered EACCES: never a bind with more
 * rights than the caller has. LSM labels are not reproduced (README).
 */
/*
 * Runs bind(addr) -- or, with addr NULL, listen(backlog) -- on the caller's
 * socket in a short-lived helper with the caller's mount namespace, root, cwd
 * and credentials (path sockets; an AF_UNIX listener records its peer
 * credentials from whoever calls listen()).
 */
static int sv_as_caller(int nfd, const struct sv_call *c, const struct sockaddr_storage *addr,
			socklen_t len, int backlog)
{
	struct pollfd pfd;
	struct sv_creds cr;
	int cwd = -1, root = -1, mnt = -1, st, e;
	pid_t pid;

	if (sv_read_creds(c->c_proc, &cr) < 0) {
		log_warn("%s[%d]: cannot read its credentials (bind refused)", c->c_comm,
			 (int)c->c_tid);
		return EACCES;
	}
	cwd = openat(c->c_proc, "cwd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!cr.cr_same_root)
		root = openat(c->c_proc, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!cr.cr_same_mntns)
		mnt = openat(c->c_proc, "ns/mnt", O_RDONLY | O_CLOEXEC);
	if (cwd < 0 || (!cr.cr_same_root && root < 0) || (!cr.cr_same_mntns && mnt < 0)) {
		log_warn("%s[%d]: cannot open its cwd, root or mount namespace (bind refused)",
			 c->c_comm, (int)c->c_tid);
		e = EACCES;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		e = errno == EAGAIN ? EAGAIN : ENOBUFS;
		goto out;
	}
	if (pid == 0) {
		/* the helper runs as the caller: it keeps only the fds it needs
		 * (never the means to answer notifications, the caller's pidfd or
		 * anything else of the supervisor's) */
		(void)nfd;
		if (sv_keep_fds((int[]){ c->c_sock, cwd, root, mnt }, 4) < 0)
			_exit(EACCES);
		if (mnt >= 0 && setns(mnt, CLONE_NEWNS) < 0)
			_exit(EACCES);
		if (root >= 0 && (fchdir(root) < 0 || chroot(".") < 0))
			_exit(EACCES);
		if (fchdir(cwd) < 0 || sv_become(&cr) < 0)
			_exit(EACCES);
		if (addr ? bind(c->c_sock, (const struct sockaddr *)addr, len) < 0
			 : listen(c->c_sock, backlog) < 0)
			_exit(errno > 0 && errno < 256 ? errno : EINVAL);
		_exit(0);
	}
	/* Bounded: a path on a stuck (or the caller's own FUSE) mount must not
	 * stall every other bind of the program behind this one. */
	st = -1;
	pfd.fd = (int)syscall(SYS_pidfd_open, pid, 0);
	pfd.events = POLLIN;
	if (pfd.fd < 0 || poll(&pfd, 1, SV_HELPER_TIMEOUT_MS) != 1) {
		log_warn("%s[%d]: bind helper did not finish within %d ms (bind refused)",
			 c->c_comm, (int)c->c_tid, SV_HELPER_TIMEOUT_MS);
		kill(pid, SIGKILL);
	}
	if (pfd.fd >= 0)
		close(pfd.fd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			st = -1;
			break;
		}
	e = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : EACCES;
out:
	if (cwd >= 0)
		close(cwd);
	if (root >= 0)
		close(root);
	if (mnt >= 0)
		close(mnt);
	return e;
}

/*
 * Is a bind of this address on this non-inet socket the same whoever makes it
 * and wherever: an abstract or autobind AF_UNIX address (no file system, no
 * permission check), or a netlink bind that joins no multicast group? Those
 * the supervisor does itself; the rest goes through sv_as_caller().
 */
static bool sv_context_free(int domain, const struct sockaddr_storage *a, socklen_t len)
{
	if (domain == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)a;

		return len <= offsetof(struct sockaddr_un, sun_path) || un->sun_path[0] == '\0';
	}
	if (domain == AF_NETLINK) {
		const struct sockaddr_nl *nl = (const void *)a;

		return len < sizeof(*nl) || nl->nl_groups == 0;
	}
	return false;
}

/*
 * A netlink bind with port id 0 asks the kernel to choose one, and the kernel
 * picks the binding process's tgid first: ours, since we do the bind. Name
 * the caller's own tgid (as its pid namespace numbers it) instead, as its own
 * bind would have; true when copy was changed that way.
 */
static bool sv_netlink_portid(const struct sv_call *c, struct sockaddr_storage *copy, socklen_t len)
{
	struct sockaddr_nl *nl = (void *)copy;
	char v[128], *last, *end;
	unsigned long id;

	if (len < sizeof(*nl) || nl->nl_pid != 0 ||
	    sv_status_field(c->c_proc, "NStgid", v, sizeof(v)) < 0)
		return false;
	last = v + strlen(v);
	while (last > v && last[-1] != '\t' && last[-1] != ' ')
		last--;
	errno = 0;
	id = strtoul(last, &end, 10);
	if (end == last || *end || errno || id == 0 || id > INT32_MAX)
		return false;
	nl->nl_pid = (uint32_t)id;
	return true;
}

/* A bind on a unix or netlink socket: here, or as the caller if it matters. */
static int sv_bind_other(struct supervise *sv, const struct sv_call *c,
			 const struct sockaddr_storage *copy, socklen_t len)
{
	if (sv_context_free(c->c_domain, copy, len))
		return bind(c->c_sock, (const struct sockaddr *)copy, len) < 0 ? errno : 0;
	return sv_as_caller(sv->sv_fd, c, copy, len, 0);
}

/*
 * Never SECCOMP_USER_NOTIF_FLAG_CONTINUE: the kernel would look the fd number
 * up again, after another thread may have dup2()'d an inet socket onto it.
 * Every bind is done here, on our duplicate, with our copy of the address.
 */
static void sv_bind(struct supervise *sv)
{
	struct seccomp_notif *req = sv->sv_req;
	struct seccomp_notif_resp *resp = sv->sv_resp;
	struct sockaddr_storage copy;
	struct policy_decision d;
	struct sv_call c;
	struct iovec local, remote;
	int alen = (int)req->data.args[2], e;
	bool named;

	e = sv_call_open(sv, &c, (int)req->data.args[0]);
	if (e) {
		sv_answer(resp, e);
		goto out;
	}
	/* The kernel reads addrlen as an int and refuses more than a sockaddr_storage. */
	if (alen < 0 || (size_t)alen > sizeof(copy)) {
		sv_answer(resp, EINVAL);
		goto out;
	}
	memset(&copy, 0, sizeof(copy));
	local.iov_base = &copy;
	local.iov_len = (size_t)alen;
	remote.iov_base = (void *)(uintptr_t)req->data.args[1];
	remote.iov_len = (size_t)alen;
	if (alen > 0 && process_vm_readv(c.c_tid, &local, 1, &remote, 1, 0) != alen) {
		sv_answer(resp, EFAULT);
		goto out;
	}
	/* From here on only `copy` is used: the child's memory is never read again. */
	if (seccomp_notify_id_valid(sv->sv_fd, req->id) < 0)
		goto out;
	/* Only families whose binds cannot reach the network pass as non-inet:
	 * AF_SMC, for one, binds an IPv4/IPv6 address on an internal TCP socket. */
	if (c.c_domain != AF_INET && c.c_domain != AF_INET6 && c.c_domain != AF_UNIX &&
	    c.c_domain != AF_NETLINK) {
		log_warn("%s[%d]: bind on a socket of family %d refused (only inet, unix and "
			 "netlink sockets may bind under tfguard-run)",
			 c.c_comm, (int)c.c_tid, c.c_domain);
		sv_answer(resp, EACCES);
		goto out;
	}
	if (c.c_domain != AF_INET && c.c_domain != AF_INET6) {
		named = c.c_domain == AF_NETLINK && sv_netlink_portid(&c, &copy, (socklen_t)alen);
		e = sv_bind_other(sv, &c, &copy, (socklen_t)alen);
		if (named && e == EADDRINUSE) {
			/* taken: let the kernel pick another, as it would */
			((struct sockaddr_nl *)&copy)->nl_pid = 0;
			e = sv_bind_other(sv, &c, &copy, (socklen_t)alen);
		}
		log_debug("%s[%d]: bind on a socket of family %d: %s", c.c_comm, (int)c.c_tid,
			  c.c_domain, e ? strerror(e) : "done");
		sv_answer(resp, e);
		goto out;
	}
	policy_decide(sv->sv_policy, c.c_domain, sv_v6only(c.c_sock, c.c_domain), &copy,
		      (size_t)alen, &d);
	if (d.d_verdict == POLICY_REFUSE) {
		sv_log(&c, "bind", &copy, (size_t)alen, &d, d.d_errno);
		sv_answer(resp, d.d_errno);
		goto out;
	}
	if (!sv_child_may_bind(c.c_proc, c.c_sock, d.d_orig.ep_port)) {
		log_warn("%s[%d]: bind to port %u refused: below ip_unprivileged_port_start and "
			 "the process lacks CAP_NET_BIND_SERVICE",
			 c.c_comm, (int)c.c_tid, d.d_orig.ep_port);
		sv_answer(resp, EACCES);
		goto out;
	}
	if (sv_already_bound(c.c_sock, &d.d_addr, d.d_len)) {
		log_debug("%s[%d]: restarted bind, socket already bound as decided", c.c_comm,
			  (int)c.c_tid);
		sv_answer(resp, 0);
		goto out;
	}
	e = bind(c.c_sock, (const struct sockaddr *)&d.d_addr, d.d_len) < 0 ? errno : 0;
	sv_log(&c, "bind", &copy, (size_t)alen, &d, e);
	sv_answer(resp, e);
out:
	sv_call_close(&c);
}

/*
 * listen() has no pointer argument, but on an inet socket without a port it
 * autobinds the wildcard address; that case is decided like a bind of the
 * wildcard with port 0. The listen itself is always done on our duplicate,
 * for every address family (it needs no context), so a dup2() onto the fd
 * number after our check changes nothing.
 */
static void sv_listen(struct supervise *sv)
{
	struct seccomp_notif *req = sv->sv_req;
	struct seccomp_notif_resp *resp = sv->sv_resp;
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct policy_decision d;
	struct sv_call c;
	int e;

	e = sv_call_open(sv, &c, (int)req->data.args[0]);
	if (e) {
		sv_answer(resp, e);
		goto out;
	}
	if (c.c_domain == AF_INET || c.c_domain == AF_INET6) {
		/* on our duplicate: a dup2() onto the fd number changes nothing */
		e = policy_listen(sv->sv_policy, c.c_sock, c.c_domain,
				  sv_v6only(c.c_sock, c.c_domain), (int)req->data.args[1], bind,
				  listen, &ss, &l, &d);
		if (e == 1)
			sv_log(&c, "listen", &ss, l, &d, d.d_errno);
		sv_answer(resp, e == 0 ? 0 : e == 1 ? d.d_errno : errno);
		goto out;
	}
	if (c.c_domain != AF_INET && c.c_domain != AF_INET6 && c.c_domain != AF_UNIX &&
	    c.c_domain != AF_NETLINK) {
		log_warn("%s[%d]: listen on a socket of family %d refused", c.c_comm, (int)c.c_tid,
			 c.c_domain);
		sv_answer(resp, EACCES);
		goto out;
	}
	if (c.c_domain == AF_UNIX)
		/* as the caller: clients see its uid/gid in SO_PEERCRED, not ours */
		e = sv_as_caller(sv->sv_fd, &c, NULL, 0, (int)req->data.args[1]);
	else
		e = listen(c.c_sock, (int)req->data.args[1]) < 0 ? errno : 0;
	sv_answer(resp, e);
out:
	sv_call_close(&c);
}

int supervise_init(struct supervise *sv, int fd, const struct policy *pol, char *err, size_t errlen)
{
	memset(sv, 0, sizeof(*sv));
	sv->sv_fd = fd;
	sv->sv_policy = pol;
	if (seccomp_notify_alloc(&sv->sv_req, &sv->sv_resp) < 0) {
		snprintf(err, errlen, "cannot allocate notification buffers");
		return -1;
	}
	return 0;
}

int supervise_handle(struct supervise *sv)
{
	struct seccomp_notif *req = sv->sv_req;
	int rc;

	/* The kernel refuses a receive buffer that is not zeroed. */
	memset(req, 0, sizeof(*req));
	/*
	 * The ioctl itself, not seccomp_notify_receive(): libseccomp 2.5 turns
	 * every failure into ECANCELED, and ENOENT (the task was interrupted or
	 * died between poll and receive; frequent under signals) must not be
	 * taken for a broken fd.
	 */
	rc = ioctl(sv->sv_fd, SECCOMP_IOCTL_NOTIF_RECV, req);
	if (rc < 0) {
		if (errno == ENOENT || errno == EINTR || errno == EAGAIN)
			return 0;
		return -1;
	}
	memset(sv->sv_resp, 0, sizeof(*sv->sv_resp));
	sv->sv_resp->id = req->id;
	if (req->data.nr == SCMP_SYS(bind))
		sv_bind(sv);
	else if (req->data.nr == SCMP_SYS(listen))
		sv_listen(sv);
	else
		sv_answer(sv->sv_resp, ENOSYS);
	rc = ioctl(sv->sv_fd, SECCOMP_IOCTL_NOTIF_SEND, sv->sv_resp);
	/* ENOENT: interrupted by a signal before we received it; with
	 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (sandbox.c) only a fatal one can
	 * come after. Otherwise the call restarts and comes back (see
	 * sv_already_bound). */
	if (rc < 0)
		log_debug("answer to notification %llu: %s", (unsigned long long)req->id,
			  strerror(errno));
	sv->sv_handled++;
	return 0;
}

void supervise_free(struct supervise *sv)
{
	if (sv->sv_req)
		seccomp_notify_free(sv->sv_req, sv->sv_resp);
	sv->sv_req = NULL;
	sv->sv_resp = NULL;
}
