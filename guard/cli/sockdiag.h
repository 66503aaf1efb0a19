/*
 * sockdiag: every TCP listener on the host, in every network namespace.
 *
 * TF Serving logs "localhost:8501" while it listens on [::], so the audit asks
 * the kernel (NETLINK_SOCK_DIAG, one query per namespace) and never trusts a
 * log. Namespaces are found through /proc/1, /run/netns, every thread's
 * /proc/PID/task/TID/ns/net, and the namespace of every open socket
 * (pidfd_getfd + SIOCGSKNS: a namespace can be held by a socket alone), in every
 * fd table: a thread that unshared its fd table is read through
 * /proc/PID/task/TID/fd and a PIDFD_THREAD pidfd. Sockets are mapped to
 * processes the same way. Each namespace is held open from discovery to its
 * query, and each that could not be inspected is listed with the reason. Each namespace's
 * route_localnet settings are read while inside it. Needs root to see other
 * users' processes and to enter namespaces; says what it could not see.
 * Not thread-safe: it switches the calling thread's network namespace and
 * always switches back.
 */
#ifndef TFG_SOCKDIAG_H
#define TFG_SOCKDIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct sockdiag_listener {
	struct sockaddr_storage l_addr;
	bool l_v6only;
	uint32_t l_inode;
	uint32_t l_uid;
	uint64_t l_netns;      /* inode of the namespace */
	char l_netns_name[64]; /* "host", a /run/netns name, or "net:[INODE]" */
	pid_t l_pid;	       /* 0 when no process was found */
	char l_comm[32];
	pid_t l_ppid;
};

/* A namespace with route_localnet=1 on some interface. */
struct sockdiag_localnet {
	char ln_netns[64];
	char ln_ifname[32];
	int ln_fw; /* from fw_here in that namespace: 1 a tfguard table, 0 none, -1 unknown */
};

/* Every namespace found, and whether its listeners could be read. */
struct sockdiag_netns {
	char ns_name[64];
	bool ns_ok;
	char ns_why[96]; /* when !ns_ok: "setns: Operation not permitted", ... */
};

struct sockdiag_result {
	struct sockdiag_listener *r_list;
	size_t r_count;
	size_t r_netns;	       /* namespaces queried */
	size_t r_netns_failed; /* namespaces that could not be inspected (r_ns says why) */
	bool r_partial;	       /* not root: some processes/namespaces unseen */
	bool r_truncated;      /* more namespaces than the audit can hold */
	struct sockdiag_localnet *r_localnet;
	size_t r_nlocalnet;
	char r_self[64]; /* the name of the caller's own namespace (r_ns[0]) */
	struct sockdiag_netns *r_ns;
	size_t r_nns;
};

/*
 * Lists the listeners of every namespace. fw_here, when not NULL, is called inside
 * each namespace where route_localnet=1 was found: 1 when a tfguard table is
 * there, 0 when not, -1 unknown. Returns 0, or -1 with a reason.
 */
int sockdiag_dump_all(struct sockdiag_result *res, int (*fw_here)(void), char *err, size_t errlen);
void sockdiag_free(struct sockdiag_result *res);
/* True when a listener's address would accept traffic that is not loopback. */
bool sockdiag_is_public(const struct sockdiag_listener *l);
unsigned sockdiag_port(const struct sockdiag_listener *l);
/*
 * Whether pid runs under tfguard-run: it has a seccomp filter, and it or an
 * ancestor executes one of the given tfguard-run paths (a name can be faked).
 */
bool sockdiag_under_run(pid_t pid, const char *const *exes, size_t nexes);

#endif
