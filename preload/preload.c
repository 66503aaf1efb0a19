/*
 * libtfguard-preload.so: the LD_PRELOAD layer of tfguard-run.
 *
 * Interposes bind() and listen(). Every bind on an inet socket is decided by
 * policy_decide() (policy.h, the same code the seccomp supervisor runs) on a
 * private copy of the caller's address; the real bind gets that copy or the
 * rewritten loopback address, never the caller's buffer again, so a thread
 * rewriting the buffer mid-call cannot smuggle a public bind through.
 * listen() on an inet socket that has no port yet would autobind the wildcard
 * address, so it is decided as a bind of that wildcard with port 0.
 *
 * State (the real symbols and the policy) is filled once, under pthread_once,
 * from a constructor, because programs such as nginx clear their environment
 * later; after that it is read-only, so the interposed path is thread-safe and
 * fork-safe, and it neither allocates nor uses stdio (log lines are one
 * write(2)). If the real symbols cannot be resolved, or the policy in the
 * environment is malformed, inet binds fail (EACCES / ENOSYS): fail closed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "policy.h"

#define PL_EXPORT __attribute__((visibility("default")))

typedef int (*pl_bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*pl_listen_fn)(int, int);

static pthread_once_t pl_once = PTHREAD_ONCE_INIT;
static pl_bind_fn pl_real_bind;
static pl_listen_fn pl_real_listen;
static struct policy pl_policy;
static bool pl_policy_ok;
static bool pl_supervised;

static void pl_write_line(const char *line, size_t off)
{
	/* One write per line: lines of different threads and processes never interleave. */
	ssize_t r = write(STDERR_FILENO, line, off);

	(void)r;
}

/*
 * The thread's comm (PR_GET_NAME, at most 15 bytes), not
 * program_invocation_short_name: setproctitle() (nginx, postgres) writes over
 * argv[0], which that name points into, and the line would carry the whole
 * rewritten title. Log lines go to fd 2 of the process, whatever it is.
 */
static void pl_log_prefix(char *buf, size_t len, size_t *off)
{
	char comm[17];

	memset(comm, 0, sizeof(comm));
	if (prctl(PR_GET_NAME, comm, 0, 0, 0) < 0 || comm[0] == '\0')
		strcpy(comm, "?");
	policy_put_str(buf, len, off, "tfguard-preload: ");
	policy_put_str(buf, len, off, comm);
	policy_put_str(buf, len, off, "[");
	policy_put_uint(buf, len, off, (unsigned long)getpid());
	policy_put_str(buf, len, off, "]: ");
}

static void pl_init(void)
{
	char line[256];
	size_t off = 0;

	pl_real_bind = (pl_bind_fn)dlsym(RTLD_NEXT, "bind");
	pl_real_listen = (pl_listen_fn)dlsym(RTLD_NEXT, "listen");
	pl_policy_ok =
	    policy_parse(&pl_policy, getenv(POLICY_ENV_PORTS), getenv(POLICY_ENV_ALLOW)) == 0;
	pl_supervised = getenv(POLICY_ENV_SUPERVISED) != NULL;
	if (pl_real_bind && pl_real_listen && pl_policy_ok)
		return;
	pl_log_prefix(line, sizeof(line), &off);
	policy_put_str(line, sizeof(line), &off,
		       !pl_policy_ok ? "malformed " POLICY_ENV_PORTS " or " POLICY_ENV_ALLOW
				     : "cannot resolve the real bind/listen");
	policy_put_str(line, sizeof(line), &off, "; every inet bind will be refused\n");
	pl_write_line(line, off);
}

__attribute__((constructor)) static void pl_ctor(void)
{
	pthread_once(&pl_once, pl_init);
}

/*
 * Copies the caller's address without trusting the pointer: process_vm_readv
 * on ourselves turns a bad pointer into EFAULT, as the kernel's bind would,
 * instead of a crash inside the shim. Returns 0 or an errno value.
 */
static int pl_copy_addr(const void *src, size_t len, struct sockaddr_storage *dst)
{
	struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)src, len };
	ssize_t n;

	if (len == 0)
		return 0;
	if (!src)
		return EFAULT;
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
		memcpy(dst, src, len);
		return 0;
	}
	return EFAULT;
}

static void pl_log(const char *what, const void *orig, size_t olen, const struct policy_decision *d)
{
	char line[512];
	size_t off = 0;

	pl_log_prefix(line, sizeof(line), &off);
	policy_put_decision(line, sizeof(line), &off, what, orig, olen, d);
	if (off + 1 >= sizeof(line))
		off = sizeof(line) - 2;
	line[off++] = '\n';
	pl_write_line(line, off);
}

/* The socket's family; -1 with errno when fd is not a socket. */
static int pl_domain(int fd)
{
	int domain;
	socklen_t l = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0)
		return -1;
	return domain;
}

static int pl_v6only(int fd, int domain)
{
	int v = 0;
	socklen_t l = sizeof(v);

	if (domain != AF_INET6)
		return 0;
	/*
	 * Unknown counts as dual-stack: the rewrite then picks ::ffff:127.0.0.1,
	 * which is loopback either way (and fails harmlessly on a v6-only socket).
	 */
	if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l) < 0)
		return 0;
	return v;
}

static int pl_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage copy;
	struct policy_decision d;
	int domain, e, r;

	pthread_once(&pl_once, pl_init);
	if (!pl_real_bind) {
		errno = ENOSYS;
		return -1;
	}
	domain = pl_domain(fd);
	if (domain < 0) {
		/* EBADF/ENOTSOCK: the real bind reports exactly that and binds nothing */
		if (errno == EBADF || errno == ENOTSOCK)
			return pl_real_bind(fd, addr, len);
		return -1;
	}
	if (domain != AF_INET && domain != AF_INET6)
		return pl_real_bind(fd, addr, len); /* AF_UNIX, netlink, ...: untouched */
	if (!pl_policy_ok) {
		errno = EACCES;
		return -1;
	}
	if (len > sizeof(copy)) {
		errno = EINVAL;
		return -1;
	}
	memset(&copy, 0, sizeof(copy));
	e = pl_copy_addr(addr, len, &copy);
	if (e) {
		errno = e;
		return -1;
	}
	policy_decide(&pl_policy, domain, pl_v6only(fd, domain), &copy, len, &d);
	if (d.d_verdict != POLICY_ALLOW || !pl_supervised)
		pl_log("bind", &copy, len, &d);
	if (d.d_verdict == POLICY_REFUSE) {
		errno = d.d_errno;
		return -1;
	}
	r = pl_real_bind(fd, (const struct sockaddr *)&d.d_addr, d.d_len);
	return r;
}

static int pl_listen(int fd, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct policy_decision d;
	int domain, r;

	pthread_once(&pl_once, pl_init);
	if (!pl_real_listen) {
		errno = ENOSYS;
		return -1;
	}
	domain = pl_domain(fd);
	if (domain != AF_INET && domain != AF_INET6)
		return pl_real_listen(fd, backlog);
	if (!pl_policy_ok) {
		errno = EACCES;
		return -1;
	}
	/* under tfguard-run's filter the supervisor makes the same checks (and the bind) */
	if (pl_supervised)
		return pl_real_listen(fd, backlog);
	r = policy_listen(&pl_policy, fd, domain, pl_v6only(fd, domain), backlog, pl_real_bind,
			  pl_real_listen, &ss, &l, &d);
	if (r == 1) {
		pl_log("listen", &ss, l, &d);
		errno = d.d_errno;
		return -1;
	}
	return r;
}

PL_EXPORT int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return pl_bind(fd, addr, len);
}

PL_EXPORT int listen(int fd, int backlog)
{
	return pl_listen(fd, backlog);
}
