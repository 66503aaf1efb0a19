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
#include <unistd.h>

#include "log.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* linux/pidfd.h, 6.9+: a pidfd for one thread */
#endif
#define SUPERVISE_CAP_NET_BIND_SERVICE 10

/* The task behind one notification, and our duplicate of its socket. */
struct sv_call {
	pid_t c_tid;
	int c_pidfd;
	int c_sock;
	int c_domain;
	char c_comm[32];
};

static void sv_comm(pid_t tid, char *buf, size_t len)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
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

/* The value of "Key:" in /proc/TID/status into val; 0 or -1. */
static int sv_status_field(pid_t tid, const char *key, char *val, size_t len)
{
	char path[64], buf[4096], *p, *eol;
	size_t klen = strlen(key);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; p && *p; p = eol ? eol + 1 : NULL) {
		eol = strchr(p, '\n');
		if (eol)
			*eol = '\0';
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			p += klen + 1;
			p += strspn(p, " \t");
			snprintf(val, len, "%s", p);
			return 0;
		}
	}
	return -1;
}

/*
 * A pidfd for the thread that made the call. The fd table may differ between
 * threads only in exotic clone() uses, but PIDFD_THREAD (6.9+) makes it exact;
 * older kernels refuse it for non-leader threads, so fall back to the tgid.
 */
static int sv_pidfd(pid_t tid)
{
	char tgid[32];
	int fd;

	fd = pidfd_open(tid, PIDFD_THREAD);
	if (fd >= 0 || errno != EINVAL)
		return fd;
	fd = pidfd_open(tid, 0);
	if (fd >= 0 || errno != EINVAL)
		return fd;
	if (sv_status_field(tid, "Tgid", tgid, sizeof(tgid)) < 0)
		return -1;
	return pidfd_open((pid_t)atoi(tgid), 0);
}

static int sv_unprivileged_port_start(void)
{
	char buf[16];
	ssize_t n;
	int fd, v = 1024;

	fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return v;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		v = atoi(buf);
	}
	return v;
}

/*
 * Our bind runs with our credentials, so a port below
 * ip_unprivileged_port_start is bound for the child only when the child could
 * bind it itself: CAP_NET_BIND_SERVICE in its effective set, and in our user
 * namespace (capabilities inside a user namespace it created do not count for
 * our network namespace; refusing there is the conservative answer).
 */
static bool sv_child_may_bind(pid_t tid, unsigned port)
{
	char path[64], caps[64];
	struct stat a, b;
	unsigned long long eff;

	if (port == 0 || (int)port >= sv_unprivileged_port_start())
		return true;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)tid);
	if (stat("/proc/self/ns/user", &a) < 0 || stat(path, &b) < 0 || a.st_ino != b.st_ino ||
	    a.st_dev != b.st_dev)
		return false;
	if (sv_status_field(tid, "CapEff", caps, sizeof(caps)) < 0)
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
 * Opens the caller's pidfd and takes a duplicate of its socket fd. Returns 0,
 * or an errno value to answer with.
 */
static int sv_call_open(struct supervise *sv, struct sv_call *c, int fd)
{
	socklen_t l = sizeof(c->c_domain);

	memset(c, 0, sizeof(*c));
	c->c_tid = (pid_t)sv->sv_req->pid;
	c->c_pidfd = -1;
	c->c_sock = -1;
	sv_comm(c->c_tid, c->c_comm, sizeof(c->c_comm));
	c->c_pidfd = sv_pidfd(c->c_tid);
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
		if (errno == EBADF)
			return EBADF;
		log_warn("%s[%d]: pidfd_getfd: %s (bind refused)", c->c_comm, (int)c->c_tid,
			 strerror(errno));
		return EACCES;
	}
	if (getsockopt(c->c_sock, SOL_SOCKET, SO_DOMAIN, &c->c_domain, &l) < 0)
		return errno == ENOTSOCK ? ENOTSOCK : EACCES;
	return 0;
}

static void sv_call_close(struct sv_call *c)
{
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

/*
 * Sockets that are neither AF_INET nor AF_INET6 (AF_UNIX, AF_NETLINK, ...)
 * are let through with CONTINUE: whatever address the kernel re-reads from the
 * child's memory, such a socket can never end up on a TCP port. Emulating them
 * would be wrong anyway: an AF_UNIX path bind depends on the child's cwd,
 * mount namespace, umask and credentials, which our bind would not have.
 */
static void sv_continue(struct seccomp_notif_resp *resp)
{
	resp->val = 0;
	resp->error = 0;
	resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
}

static void sv_bind(struct supervise *sv)
{
	struct seccomp_notif *req = sv->sv_req;
	struct seccomp_notif_resp *resp = sv->sv_resp;
	struct sockaddr_storage copy;
	struct policy_decision d;
	struct sv_call c;
	struct iovec local, remote;
	int alen = (int)req->data.args[2], e;

	e = sv_call_open(sv, &c, (int)req->data.args[0]);
	if (e) {
		sv_answer(resp, e);
		goto out;
	}
	if (c.c_domain != AF_INET && c.c_domain != AF_INET6) {
		sv_continue(resp);
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
	policy_decide(sv->sv_policy, c.c_domain, sv_v6only(c.c_sock, c.c_domain), &copy,
		      (size_t)alen, &d);
	if (d.d_verdict == POLICY_REFUSE) {
		sv_log(&c, "bind", &copy, (size_t)alen, &d, d.d_errno);
		sv_answer(resp, d.d_errno);
		goto out;
	}
	if (!sv_child_may_bind(c.c_tid, d.d_orig.ep_port)) {
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
 * listen() has no pointer argument, but on a socket without a port it
 * autobinds the wildcard address; that case is decided like a bind of the
 * wildcard with port 0. The listen itself is done on our duplicate too, so a
 * dup2() onto the fd number after our check changes nothing.
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
	if (c.c_domain != AF_INET && c.c_domain != AF_INET6) {
		sv_continue(resp);
		goto out;
	}
	memset(&ss, 0, sizeof(ss));
	if (getsockname(c.c_sock, (struct sockaddr *)&ss, &l) < 0) {
		sv_answer(resp, errno);
		goto out;
	}
	if ((ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_port == 0) ||
	    (ss.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&ss)->sin6_port == 0)) {
		policy_decide(sv->sv_policy, c.c_domain, sv_v6only(c.c_sock, c.c_domain), &ss, l,
			      &d);
		if (d.d_verdict == POLICY_REFUSE) {
			sv_log(&c, "listen (autobind)", &ss, l, &d, d.d_errno);
			sv_answer(resp, d.d_errno);
			goto out;
		}
	}
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
	rc = seccomp_notify_receive(sv->sv_fd, req);
	if (rc < 0) {
		/* ENOENT: the task was interrupted or died between poll and receive */
		if (rc == -ENOENT || rc == -EINTR || rc == -EAGAIN)
			return 0;
		log_debug("notification receive: %s", strerror(-rc));
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
	rc = seccomp_notify_respond(sv->sv_fd, sv->sv_resp);
	/* ENOENT: interrupted by a signal; the call restarts and comes back (see
	 * sv_already_bound) */
	if (rc < 0)
		log_debug("answer to notification %llu: %s", (unsigned long long)req->id,
			  strerror(-rc));
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
