/*
 * libnodiag.so: fault injection for tfguard check (LD_PRELOAD). NETLINK_SOCK_DIAG
 * sockets fail with EPROTONOSUPPORT, as on a kernel without sock_diag, after the
 * first TFG_NODIAG_AFTER of them (default 0: all fail). tfguard check opens two
 * per namespace (IPv4, IPv6), its own namespace first: TFG_NODIAG_AFTER=2 lets
 * it read its own namespace and no other. Built by the test that uses it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <stdlib.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);
	static long opened;
	const char *after = getenv("TFG_NODIAG_AFTER");

	if (!real)
		real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	if (domain == AF_NETLINK && protocol == NETLINK_SOCK_DIAG &&
	    opened++ >= (after ? atol(after) : 0)) {
		errno = EPROTONOSUPPORT;
		return -1;
	}
	return real(domain, type, protocol);
}
