/*
 * splitfd: a thread made with CLONE_THREAD but without CLONE_FILES has an fd
 * table of its own. Its fd 100 is an inet socket, the leader's fd 100 an
 * AF_UNIX socket; the thread binds fd 100 to 0.0.0.0:PORT with a raw syscall.
 * A supervisor that reads the leader's table (pidfd of the thread group on
 * kernels without PIDFD_THREAD) sees AF_UNIX where the kernel binds inet.
 *
 *	splitfd PORT
 *
 * Prints "thread: bind=R (ERR) socket on ADDR:PORT" and exits 1 if the
 * thread's socket ended on anything but loopback or unbound, else 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SF_FD 100

static atomic_int sf_done = -1;
static unsigned short sf_port;
static char sf_stack[1 << 16] __attribute__((aligned(16)));

static int sf_thread(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET }, g;
	socklen_t l = sizeof(g);
	char h[INET_ADDRSTRLEN];
	long r;
	int e, s;

	(void)arg;
	sin.sin_port = htons(sf_port);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || dup2(s, SF_FD) < 0) {
		atomic_store(&sf_done, 2);
		syscall(SYS_exit, 0);
	}
	r = syscall(SYS_bind, SF_FD, &sin, sizeof(sin));
	e = errno;
	memset(&g, 0, sizeof(g));
	getsockname(SF_FD, (struct sockaddr *)&g, &l);
	inet_ntop(AF_INET, &g.sin_addr, h, sizeof(h));
	printf("thread: bind=%ld (%s) socket on %s:%u\n", r, r ? strerror(e) : "ok", h,
	       ntohs(g.sin_port));
	fflush(stdout);
	atomic_store(&sf_done, g.sin_port != 0 && g.sin_addr.s_addr != htonl(INADDR_LOOPBACK));
	syscall(SYS_exit, 0);
	return 0;
}

int main(int argc, char **argv)
{
	int u, i;

	if (argc != 2) {
		fprintf(stderr, "usage: splitfd PORT\n");
		return 2;
	}
	sf_port = (unsigned short)atoi(argv[1]);
	u = socket(AF_UNIX, SOCK_STREAM, 0);
	if (u < 0 || dup2(u, SF_FD) < 0)
		return 2;
	/* CLONE_THREAD without CLONE_FILES: a thread with its own fd table */
	if (clone(sf_thread, sf_stack + sizeof(sf_stack), CLONE_VM | CLONE_SIGHAND | CLONE_THREAD,
		  NULL) < 0) {
		perror("clone");
		return 2;
	}
	for (i = 0; i < 10000 && atomic_load(&sf_done) < 0; i++)
		usleep(1000);
	return atomic_load(&sf_done) < 0 ? 2 : atomic_load(&sf_done);
}
