/*
 * sockprobe: tries one thing tfguard-run's seccomp filter must deny.
 *
 *	sockprobe io_uring|packet|raw|raw6|sockpacket|xdp|netlink|inet|int80
 *
 * io_uring: io_uring_setup(2); packet: socket(AF_PACKET, SOCK_RAW);
 * raw: socket(AF_INET, SOCK_RAW, IPPROTO_TCP); raw6: the same for AF_INET6
 * (with SOCK_NONBLOCK); sockpacket: socket(AF_INET, SOCK_PACKET); xdp:
 * socket(AF_XDP); netlink: socket(AF_NETLINK, SOCK_RAW) (a control, like
 * inet); inet: socket(AF_INET,
 * SOCK_STREAM) as a control; int80: a 32-bit getpid through int $0x80, the
 * way to reach ia32 socketcall(2) from a 64-bit process (x86_64 only). Prints "WHAT: ok" or "WHAT: <strerror>".
 * Exit 0 ok, 1 EPERM, 3 any other error.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <arpa/inet.h>

int main(int argc, char **argv)
{
	struct io_uring_params p;
	long r;

	if (argc != 2) {
		fprintf(stderr, "usage: sockprobe "
				"io_uring|packet|raw|raw6|sockpacket|xdp|netlink|inet|int80\n");
		return 2;
	}
	if (strcmp(argv[1], "io_uring") == 0) {
		memset(&p, 0, sizeof(p));
		r = syscall(SYS_io_uring_setup, 4, &p);
	} else if (strcmp(argv[1], "packet") == 0) {
		r = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	} else if (strcmp(argv[1], "raw") == 0) {
		r = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
	} else if (strcmp(argv[1], "int80") == 0) {
#if defined(__x86_64__)
		long nr = 20; /* __NR_getpid in the i386 table */

		__asm__ volatile("int $0x80" : "+a"(nr) : : "memory");
		r = nr;
		if (r < 0) {
			errno = (int)-r;
			r = -1;
		}
#else
		fprintf(stderr, "sockprobe: int80 is x86_64 only\n");
		return 2;
#endif
	} else if (strcmp(argv[1], "raw6") == 0) {
		r = socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_TCP);
	} else if (strcmp(argv[1], "sockpacket") == 0) {
		r = socket(AF_INET, SOCK_PACKET, htons(ETH_P_ALL));
	} else if (strcmp(argv[1], "xdp") == 0) {
		r = socket(AF_XDP, SOCK_RAW, 0);
	} else if (strcmp(argv[1], "netlink") == 0) {
		/* SOCK_RAW, but netlink: must stay allowed (getifaddrs, ip, ss) */
		r = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0 /* NETLINK_ROUTE */);
	} else if (strcmp(argv[1], "inet") == 0) {
		r = socket(AF_INET, SOCK_STREAM, 0);
	} else {
		fprintf(stderr, "sockprobe: unknown probe %s\n", argv[1]);
		return 2;
	}
	if (r >= 0) {
		printf("%s: ok\n", argv[1]);
		return 0;
	}
	printf("%s: %s\n", argv[1], strerror(errno));
	return errno == EPERM ? 1 : 3;
}
