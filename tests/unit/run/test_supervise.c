/*
 * Unit tests for guard/run/sandbox.c + supervise.c with a real filter and a
 * real child: the child loads the filter, hands over the notification fd and
 * makes a scripted series of binds/listens/socket calls; this process answers
 * them with supervise_handle() and then checks what the child saw. No
 * namespaces, loopback only.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "policy.h"
#include "sandbox.h"
#include "supervise.h"
#include "tap.h"

enum {
	T_WILDCARD,	 /* bind 0.0.0.0:P (protected) */
	T_WILDCARD_NAME, /* ...its getsockname address */
	T_RESTART,	 /* the same bind again on the same socket */
	T_RAW,		 /* syscall(SYS_bind) [::]:Q dual-stack (Q protected) */
	T_RAW_NAME,
	T_UNPROTECTED, /* 127.0.0.1:0 */
	T_EFAULT,      /* address pointer 1 */
	T_EINVAL,      /* addrlen 200 */
	T_EBADF,       /* fd 999 */
	T_ENOTSOCK,    /* a pipe */
	T_UNIX,	       /* abstract AF_UNIX (bound by the supervisor on its duplicate) */
	T_LISTEN,      /* listen() on the bound socket */
	T_IO_URING,    /* io_uring_setup */
	T_PACKET,      /* socket(AF_PACKET) */
	T_RAWSOCK,     /* socket(AF_INET, SOCK_RAW) with junk in the upper 32 bits */
	T_MAX
};

static long res(long r)
{
	return r < 0 ? -errno : r;
}

static void child(int sock, unsigned port, unsigned port6)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port6) };
	struct sockaddr_in lo = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage ss;
	socklen_t l;
	long r[T_MAX];
	int fd, fd6, p[2], zero = 0;
	char cbuf[CMSG_SPACE(sizeof(int))], byte = 'F', err[256];
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	fd = sandbox_load(err, sizeof(err));
	if (fd < 0)
		_exit(10);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &msg, 0) != 1)
		_exit(11);
	close(fd);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	r[T_WILDCARD] = res(bind(fd, (struct sockaddr *)&a4, sizeof(a4)));
	l = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &l);
	r[T_WILDCARD_NAME] = (long)ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);
	r[T_RESTART] = res(bind(fd, (struct sockaddr *)&a4, sizeof(a4)));
	fd6 = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	r[T_RAW] = res(syscall(SYS_bind, fd6, &a6, sizeof(a6)));
	l = sizeof(ss);
	getsockname(fd6, (struct sockaddr *)&ss, &l);
	r[T_RAW_NAME] = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[10] == 0xff &&
			((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr[12] == 127;
	r[T_UNPROTECTED] =
	    res(bind(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&lo, sizeof(lo)));
	r[T_EFAULT] = res(syscall(SYS_bind, socket(AF_INET, SOCK_STREAM, 0), (void *)1, 16));
	r[T_EINVAL] = res(syscall(SYS_bind, socket(AF_INET, SOCK_STREAM, 0), &a4, 200));
	r[T_EBADF] = res(syscall(SYS_bind, 999, &a4, sizeof(a4)));
	if (pipe(p) < 0)
		_exit(12);
	r[T_ENOTSOCK] = res(syscall(SYS_bind, p[0], &a4, sizeof(a4)));
	snprintf(un.sun_path + 1, sizeof(un.sun_path) - 1, "tfg-test-%d", (int)getpid());
	r[T_UNIX] = res(bind(
	    socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&un,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un.sun_path + 1))));
	r[T_LISTEN] = res(listen(fd, 4));
	r[T_IO_URING] = res(syscall(SYS_io_uring_setup, 4, NULL));
	r[T_PACKET] = res(socket(AF_PACKET, SOCK_RAW, 0));
	r[T_RAWSOCK] = res(syscall(SYS_socket, AF_INET, 0xdead00000000ULL | SOCK_RAW, IPPROTO_TCP));
	if (write(sock, r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(13);
	_exit(0);
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))], byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* A port that is free on loopback and 0.0.0.0 right now. */
static unsigned free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned p;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) < 0)
		return 0;
	p = ntohs(a.sin_port);
	close(fd);
	return p;
}

int main(void)
{
	char ports[16], errbuf[256];
	struct policy pol;
	struct supervise sv;
	struct pollfd pf[2];
	long r[T_MAX];
	unsigned port = free_port(), port6 = free_port();
	int sp[2], nfd, pidfd, st = 0, i;
	pid_t pid;

	log_init("test_supervise", LOG_LEVEL_ERROR);
	for (i = 0; i < 10 && port6 == port; i++) /* two distinct ports, bounded */
		port6 = free_port();
	snprintf(ports, sizeof(ports), "%u,%u", port, port6);
	if (port == 0 || port6 == 0 || port == port6 || policy_parse(&pol, ports, NULL) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) {
		printf("Bail out! setup\n");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		close(sp[0]);
		child(sp[1], port, port6);
	}
	close(sp[1]);
	nfd = recv_fd(sp[0]);
	ok(nfd >= 0, "child loaded the filter and handed over the notification fd");
	if (nfd < 0)
		return done_testing();
	pidfd = pidfd_open(pid, 0);
	ok(supervise_init(&sv, nfd, &pol, errbuf, sizeof(errbuf)) == 0, "supervise_init");
	pf[0] = (struct pollfd){ .fd = nfd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	/* bounded: 200 polls of at most 50 ms */
	for (i = 0; i < 200; i++) {
		if (poll(pf, 2, 50) < 0)
			break;
		if (pf[0].revents & POLLIN)
			supervise_handle(&sv);
		if (pf[1].revents & POLLIN)
			break;
	}
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child ran its script and exited 0");
	memset(r, 0x55, sizeof(r));
	ok(read(sp[0], r, sizeof(r)) == (ssize_t)sizeof(r), "child reported its results");

	is_int(r[T_WILDCARD], 0, "bind 0.0.0.0:P (protected) succeeds");
	is_int(r[T_WILDCARD_NAME], INADDR_LOOPBACK, "... and the socket is on 127.0.0.1");
	is_int(r[T_RESTART], 0, "the same bind again (a restarted call) is answered 0");
	is_int(r[T_RAW], 0, "raw syscall bind [::]:Q dual-stack succeeds");
	is_int(r[T_RAW_NAME], 1, "... and the socket is on [::ffff:127.0.0.1]");
	is_int(r[T_UNPROTECTED], 0, "bind 127.0.0.1:0 succeeds");
	is_int(r[T_EFAULT], -EFAULT, "bad address pointer: EFAULT, as the kernel says");
	is_int(r[T_EINVAL], -EINVAL, "addrlen 200: EINVAL");
	is_int(r[T_EBADF], -EBADF, "fd not open: EBADF");
	is_int(r[T_ENOTSOCK], -ENOTSOCK, "fd not a socket: ENOTSOCK");
	is_int(r[T_UNIX], 0, "abstract AF_UNIX bind passes through");
	is_int(r[T_LISTEN], 0, "listen on the bound socket (done by the supervisor) succeeds");
	is_int(r[T_IO_URING], -EPERM, "io_uring_setup: EPERM");
	is_int(r[T_PACKET], -EPERM, "socket(AF_PACKET): EPERM");
	is_int(r[T_RAWSOCK], -EPERM, "socket(SOCK_RAW) with junk in the upper 32 bits: EPERM");
	ok(sv.sv_handled >= 10, "the supervisor answered every bind and listen");
	supervise_free(&sv);
	return done_testing();
}
