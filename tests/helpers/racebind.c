/*
 * racebind: tries to win the check-then-use race against a bind guard.
 *
 *	racebind [-r] PUBLIC_ADDR PORT ITERATIONS
 *
 * One thread keeps flipping the address of a shared sockaddr_in between
 * 0.0.0.0 and PUBLIC_ADDR while the main thread binds fresh sockets to PORT
 * from that very buffer (-r: with syscall(SYS_bind), past any LD_PRELOAD).
 * Every successful bind is checked with getsockname: anything but 127.0.0.1
 * is a violation. Runs at least ITERATIONS binds, more (up to 50x) until both
 * a rewrite and a refusal were seen, so a run where the flipper never got the
 * CPU does not pass as "tested". Prints one summary line:
 *	"iterations N loopback L refused R failed F violations V"
 * Exit 1 if V > 0 (or on setup errors), else 0. Without a guard, every
 * successful bind is a violation, which is how the test shows it can fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct sockaddr_in race_addr;
static in_addr_t race_public;
static atomic_int race_stop;
static atomic_long race_flips;

static void *race_flip(void *arg)
{
	volatile in_addr_t *a = &race_addr.sin_addr.s_addr;
	volatile unsigned spin;
	unsigned long k = 0;

	(void)arg;
	/* Each value is held for the same short, varying while, so that copies
	 * in the guard and in the kernel land on both values and on the edges. */
	while (!atomic_load_explicit(&race_stop, memory_order_relaxed)) {
		unsigned hold = 1 + (unsigned)(k++ % 97);

		*a = htonl(INADDR_ANY);
		atomic_fetch_add_explicit(&race_flips, 1, memory_order_relaxed);
		for (spin = 0; spin < hold; spin++)
			;
		*a = race_public;
		atomic_fetch_add_explicit(&race_flips, 1, memory_order_relaxed);
		for (spin = 0; spin < hold; spin++)
			;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long n, i, loop = 0, refused = 0, failed = 0, bad = 0;
	int raw = 0, ch, one = 1;
	pthread_t t;

	while ((ch = getopt(argc, argv, "r")) != -1) {
		if (ch != 'r') {
			fprintf(stderr, "usage: racebind [-r] PUBLIC_ADDR PORT ITERATIONS\n");
			return 2;
		}
		raw = 1;
	}
	if (argc - optind != 3 || inet_pton(AF_INET, argv[optind], &race_public) != 1) {
		fprintf(stderr, "usage: racebind [-r] PUBLIC_ADDR PORT ITERATIONS\n");
		return 2;
	}
	n = atol(argv[optind + 2]);
	race_addr.sin_family = AF_INET;
	race_addr.sin_port = htons((uint16_t)atoi(argv[optind + 1]));
	race_addr.sin_addr.s_addr = race_public;
	if (pthread_create(&t, NULL, race_flip, NULL) != 0) {
		fprintf(stderr, "racebind: pthread_create failed\n");
		return 1;
	}
	/* start racing only once the flipper really runs (2 busy cores may delay it) */
	while (atomic_load(&race_flips) < 1000)
		sched_yield();
	/*
	 * At least n binds, and on until the guard has been seen on both values
	 * (one rewrite, one refusal), at most 50 n: on two busy cores the flipper
	 * can sit descheduled through a whole fast run.
	 */
	for (i = 0; i < n || (i < 50 * n && (loop == 0 || refused == 0) && bad == 0); i++) {
		struct sockaddr_in got;
		socklen_t l = sizeof(got);
		char host[INET_ADDRSTRLEN];
		int fd = socket(AF_INET, SOCK_STREAM, 0), r;

		if (fd < 0) {
			perror("socket");
			return 1;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		r = raw ? (int)syscall(SYS_bind, fd, (struct sockaddr *)&race_addr,
				       sizeof(race_addr))
			: bind(fd, (struct sockaddr *)&race_addr, sizeof(race_addr));
		if (r < 0) {
			if (errno == EACCES)
				refused++;
			else
				failed++;
		} else if (getsockname(fd, (struct sockaddr *)&got, &l) == 0 &&
			   got.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
			loop++;
		} else {
			inet_ntop(AF_INET, &got.sin_addr, host, sizeof(host));
			if (bad < 5)
				fprintf(stderr, "racebind: VIOLATION: bound %s:%u\n", host,
					ntohs(got.sin_port));
			bad++;
		}
		close(fd);
		sched_yield(); /* let the flipper run if it shares our CPU */
	}
	atomic_store(&race_stop, 1);
	pthread_join(t, NULL);
	printf("iterations %ld loopback %ld refused %ld failed %ld violations %ld\n", i, loop,
	       refused, failed, bad);
	return bad ? 1 : 0;
}
