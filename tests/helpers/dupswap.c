/*
 * dupswap: races dup2() of an inet socket over an AF_UNIX fd against the
 * supervisor. A second thread keeps swapping fd 100 between an AF_UNIX socket
 * and an inet socket while the main thread calls raw bind/listen on fd 100.
 * A supervisor that checks the fd and then lets the kernel look it up again
 * (SECCOMP_USER_NOTIF_FLAG_CONTINUE) loses this race.
 *
 *	dupswap bind PORT ITER	bind(100, 0.0.0.0:PORT): a violation is an
 *				inet socket bound anywhere but 127.0.0.1
 *	dupswap listen ITER	listen(100) on an unbound inet socket: a
 *				violation is an inet socket that got a port
 *				(autobind of the wildcard)
 *
 * Prints "iterations N ok N violations N" and exits 1 on the first violation
 * (left listening for SLEEP_ON_VIOLATION seconds if set, for reachability
 * checks), 0 otherwise.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DS_FD 100

static int ds_unix;
static atomic_int ds_inet = -1;
static atomic_int ds_stop;

static void ds_spin(unsigned *seed)
{
	for (volatile int i = 0, n = (int)(rand_r(seed) % 2000); i < n; i++)
		;
}

static void *ds_flip(void *arg)
{
	unsigned seed = 1;

	(void)arg;
	while (!atomic_load(&ds_stop)) {
		int s = atomic_load(&ds_inet);

		if (s < 0)
			continue;
		dup2(ds_unix, DS_FD);
		ds_spin(&seed);
		dup2(s, DS_FD);
		ds_spin(&seed);
	}
	return NULL;
}

static int ds_new_inet(void)
{
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0) {
		perror("socket");
		exit(2);
	}
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	return s;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	long iter, i, ok = 0;
	bool do_listen;
	pthread_t t;
	int s;

	if (argc < 3 || (strcmp(argv[1], "bind") && strcmp(argv[1], "listen")) ||
	    (strcmp(argv[1], "bind") == 0 && argc != 4)) {
		fprintf(stderr, "usage: dupswap bind PORT ITER | dupswap listen ITER\n");
		return 2;
	}
	do_listen = strcmp(argv[1], "listen") == 0;
	if (!do_listen)
		sin.sin_port = htons((unsigned short)atoi(argv[2]));
	iter = atol(argv[do_listen ? 2 : 3]);
	ds_unix = socket(AF_UNIX, SOCK_STREAM, 0);
	s = ds_new_inet();
	atomic_store(&ds_inet, s);
	dup2(s, DS_FD);
	if (pthread_create(&t, NULL, ds_flip, NULL) != 0)
		return 2;
	for (i = 0; i < iter; i++) {
		struct sockaddr_in g;
		socklen_t l = sizeof(g);
		char h[INET_ADDRSTRLEN];
		long r;

		if (do_listen)
			r = syscall(SYS_listen, DS_FD, 5);
		else
			r = syscall(SYS_bind, DS_FD, &sin, sizeof(sin));
		memset(&g, 0, sizeof(g));
		getsockname(s, (struct sockaddr *)&g, &l);
		if (g.sin_port != 0 && (do_listen || g.sin_addr.s_addr != htonl(INADDR_LOOPBACK))) {
			inet_ntop(AF_INET, &g.sin_addr, h, sizeof(h));
			atomic_store(&ds_stop, 1);
			printf("VIOLATION after %ld iterations: inet socket %s on %s:%u\n", i,
			       do_listen ? "autobound by listen" : "bound", h, ntohs(g.sin_port));
			printf("iterations %ld ok %ld violations 1\n", i + 1, ok);
			fflush(stdout);
			if (getenv("SLEEP_ON_VIOLATION")) {
				listen(s, 5);
				sleep((unsigned)atoi(getenv("SLEEP_ON_VIOLATION")));
			}
			return 1;
		}
		if (r == 0 || g.sin_port != 0) {
			/* a loopback bind (or a listen that was allowed): next socket */
			int n = ds_new_inet();

			ok++;
			atomic_store(&ds_inet, n);
			close(s);
			s = n;
		}
	}
	atomic_store(&ds_stop, 1);
	pthread_join(t, NULL);
	printf("iterations %ld ok %ld violations 0\n", iter, ok);
	return 0;
}
