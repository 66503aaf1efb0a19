/*
 * sigbind: binds 0.0.0.0:PORT with raw syscalls ITER times while a second
 * thread hits the binding thread with SIGUSR1 every GAP microseconds (handler
 * installed without SA_RESTART, or with it if RESTART is 1).
 *
 *	sigbind PORT ITER GAP RESTART
 *
 * Counts binds that succeeded on loopback (ok), returned EINTR with the socket
 * left unbound (eintr), returned EINTR although the socket *was* bound
 * (eintr_bound: the caller is told it failed while it holds the port), and
 * public binds (bad). Prints "ok N eintr N eintr_bound N bad N other N"; exit
 * 1 if eintr_bound, bad or other is non-zero.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t sb_tid;
static atomic_int sb_stop;
static unsigned sb_gap;

static void sb_handler(int sig)
{
	(void)sig;
}

static void *sb_storm(void *arg)
{
	(void)arg;
	while (!atomic_load(&sb_stop)) {
		syscall(SYS_tgkill, getpid(), sb_tid, SIGUSR1);
		usleep(sb_gap);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long iter, i, ok = 0, eintr = 0, eintr_bound = 0, bad = 0, other = 0;
	struct sigaction sa;
	pthread_t t;

	if (argc != 5) {
		fprintf(stderr, "usage: sigbind PORT ITER GAP RESTART\n");
		return 2;
	}
	iter = atol(argv[2]);
	sb_gap = (unsigned)atoi(argv[3]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sb_handler;
	sa.sa_flags = atoi(argv[4]) ? SA_RESTART : 0;
	sigaction(SIGUSR1, &sa, NULL);
	sb_tid = (pid_t)syscall(SYS_gettid);
	if (pthread_create(&t, NULL, sb_storm, NULL) != 0)
		return 2;
	for (i = 0; i < iter; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET }, g;
		socklen_t l = sizeof(g);
		int one = 1, s = socket(AF_INET, SOCK_STREAM, 0), e;
		long r;

		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		sin.sin_port = htons((unsigned short)atoi(argv[1]));
		r = syscall(SYS_bind, s, &sin, sizeof(sin));
		e = errno;
		memset(&g, 0, sizeof(g));
		getsockname(s, (struct sockaddr *)&g, &l);
		if (g.sin_port != 0 && g.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
			bad++;
		else if (r == 0)
			ok++;
		else if (e == EINTR && g.sin_port != 0)
			eintr_bound++;
		else if (e == EINTR)
			eintr++;
		else if (other++ < 3)
			fprintf(stderr, "sigbind: bind: %s\n", strerror(e));
		close(s);
	}
	atomic_store(&sb_stop, 1);
	pthread_join(t, NULL);
	printf("ok %ld eintr %ld eintr_bound %ld bad %ld other %ld\n", ok, eintr, eintr_bound, bad,
	       other);
	return eintr_bound || bad || other ? 1 : 0;
}
