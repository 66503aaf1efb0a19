#include "sockdiag.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/kcmp.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "addr.h"

#define SOCKDIAG_NS_MAX 65536 /* beyond it: r_truncated, said in the evidence */
#define SOCKDIAG_BUF	32768
#define SOCKDIAG_TABLES 64 /* distinct fd tables compared per process (kcmp) */

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* linux/pidfd.h, 6.9+: a pidfd for one thread */
#endif

struct sockdiag_ns {
	uint64_t n_ino;
	int n_fd;	 /* the namespace, held open from discovery, or -1 */
	char n_path[64]; /* a file that refers to it ("" when found through a socket) */
	char n_name[64];
};

struct sockdiag_vec {
	struct sockdiag_result *v_res;
	size_t v_cap;
	const struct sockdiag_ns *v_ns;
	int v_family;
};

static int sockdiag_push(struct sockdiag_vec *v, const struct sockdiag_listener *l)
{
	struct sockdiag_result *r = v->v_res;

	if (r->r_count == v->v_cap) {
		size_t cap = v->v_cap ? v->v_cap * 2 : 64;
		struct sockdiag_listener *n = realloc(r->r_list, cap * sizeof(*n));

		if (!n)
			return -1;
		r->r_list = n;
		v->v_cap = cap;
	}
	r->r_list[r->r_count++] = *l;
	return 0;
}

static int sockdiag_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	struct sockdiag_vec *v = data;
	struct sockdiag_listener l;
	const struct nlattr *attr;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m))
		return MNL_CB_ERROR;
	memset(&l, 0, sizeof(l));
	if (m->idiag_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&l.l_addr;

		sin->sin_family = AF_INET;
		sin->sin_port = m->id.idiag_sport;
		memcpy(&sin->sin_addr, m->id.idiag_src, 4);
	} else if (m->idiag_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&l.l_addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = m->id.idiag_sport;
		memcpy(&sin6->sin6_addr, m->id.idiag_src, 16);
	} else {
		return MNL_CB_OK;
	}
	mnl_attr_for_each(attr, nlh, sizeof(*m))
	{
		if (mnl_attr_get_type(attr) == INET_DIAG_SKV6ONLY &&
		    mnl_attr_validate(attr, MNL_TYPE_U8) == 0)
			l.l_v6only = mnl_attr_get_u8(attr) != 0;
	}
	l.l_inode = m->idiag_inode;
	l.l_uid = m->idiag_uid;
	l.l_netns = v->v_ns->n_ino;
	snprintf(l.l_netns_name, sizeof(l.l_netns_name), "%s", v->v_ns->n_name);
	return sockdiag_push(v, &l) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/* One family's TCP listeners in the calling thread's current namespace. */
/* One family's TCP listeners in the calling thread's current namespace.
 * Returns 0, or -1 with errno set. */
static int sockdiag_query(struct sockdiag_vec *v, int family)
{
	char buf[SOCKDIAG_BUF];
	struct inet_diag_req_v2 *req;
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	uint32_t seq = (uint32_t)time(NULL), portid;
	ssize_t n;
	int rc = -1, e;

	nl = mnl_socket_open(NETLINK_SOCK_DIAG);
	if (!nl)
		return -1;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = (uint8_t)family;
	req->sdiag_protocol = IPPROTO_TCP;
	req->idiag_states = 1u << TCP_LISTEN;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	v->v_family = family;
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			goto out;
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, sockdiag_cb, v);
	} while (rc > MNL_CB_STOP);
	rc = rc < 0 ? -1 : 0;
out:
	e = errno;
	mnl_socket_close(nl);
	errno = e;
	return rc;
}

static struct sockdiag_ns *sockdiag_ns_find(struct sockdiag_ns *ns, size_t n, uint64_t ino)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ns[i].n_ino == ino)
			return &ns[i];
	return NULL;
}

/* Socket inodes already looked at: a socket shared by several fds, fd tables or
 * processes is examined once. Open addressing; 0 (no socket has it) is a free slot. */
struct sockdiag_seen {
	uint64_t *s_slot;
	size_t s_cap; /* a power of two */
	size_t s_n;
};

/* True when ino was in the set; adds it otherwise. Out of memory, it answers false
 * (the socket is examined again: slower, never blind). */
static bool sockdiag_seen_add(struct sockdiag_seen *s, uint64_t ino)
{
	size_t i, j;

	if (s->s_n * 2 >= s->s_cap) {
		size_t cap = s->s_cap ? s->s_cap * 2 : 1024;
		uint64_t *n = calloc(cap, sizeof(*n));

		if (!n)
			return false;
		for (j = 0; j < s->s_cap; j++) {
			if (!s->s_slot[j])
				continue;
			for (i = s->s_slot[j] & (cap - 1); n[i]; i = (i + 1) & (cap - 1))
				;
			n[i] = s->s_slot[j];
		}
		free(s->s_slot);
		s->s_slot = n;
		s->s_cap = cap;
	}
	for (i = ino & (s->s_cap - 1); s->s_slot[i]; i = (i + 1) & (s->s_cap - 1))
		if (s->s_slot[i] == ino)
			return true;
	s->s_slot[i] = ino;
	s->s_n++;
	return false;
}

/* Called for each socket fd of an fd table: the process, the task whose table it is. */
typedef void sockdiag_fd_fn(pid_t pid, pid_t tid, int fd, uint64_t ino, void *arg);

/* Each socket fd of task tid's fd table, to fn. Returns -1 (errno) when unreadable. */
static int sockdiag_fd_table(pid_t pid, pid_t tid, sockdiag_fd_fn *fn, void *arg)
{
	char dir[96], link[128], target[64];
	unsigned long long ino;
	struct dirent *fe;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task/%d/fd", (int)pid, (int)tid);
	if (!(d = opendir(dir)))
		return -1;
	while ((fe = readdir(d))) {
		ssize_t len;

		if (fe->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%.20s", dir, fe->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%llu]", &ino) == 1)
			fn(pid, tid, atoi(fe->d_name), ino, arg);
	}
	closedir(d);
	return 0;
}

/*
 * Each socket fd of each distinct fd table of process pid, to fn: the threads
 * usually share one table, but a thread that called unshare(CLONE_FILES) has its
 * own, which /proc/PID/fd (the leader's) does not show and which may hold the
 * only socket of a namespace. kcmp(KCMP_FILES) tells the tables apart. Returns
 * -1 (errno) when no table of pid could be read.
 */
static int sockdiag_fd_tables(pid_t pid, sockdiag_fd_fn *fn, void *arg)
{
	pid_t tabs[SOCKDIAG_TABLES];
	size_t ntabs = 0, i;
	struct dirent *te;
	char path[64];
	int rc = -1, e = ENOENT;
	DIR *td;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(td = opendir(path)))
		return -1;
	while ((te = readdir(td))) {
		bool shared = false;
		pid_t tid;

		if (te->d_name[0] < '1' || te->d_name[0] > '9')
			continue;
		tid = (pid_t)atoi(te->d_name);
		/* kcmp fails without ptrace access: then the table is read again
		 * (the sockets are deduplicated by inode) */
		for (i = 0; i < ntabs && !shared; i++)
			shared = syscall(SYS_kcmp, tabs[i], tid, KCMP_FILES, 0, 0) == 0;
		if (shared)
			continue;
		if (sockdiag_fd_table(pid, tid, fn, arg) < 0) {
			e = errno;
			continue;
		}
		rc = 0;
		if (ntabs < SOCKDIAG_TABLES)
			tabs[ntabs++] = tid;
	}
	closedir(td);
	errno = e;
	return rc;
}

struct sockdiag_scan {
	struct sockdiag_ns *s_ns;
	size_t s_n;
	size_t s_max;
	bool s_truncated;
	bool *s_partial;
	struct sockdiag_seen s_seen;
	pid_t s_tid; /* the task s_pidfd refers to */
	int s_pidfd;
};

/* Adds the namespace path refers to, unless known. name may be NULL ("net:[INO]"). */
static void sockdiag_ns_add(struct sockdiag_scan *sc, const char *path, const char *name)
{
	struct sockdiag_ns *n;
	struct stat st;

	if (stat(path, &st) < 0) {
		/* as root, EACCES is a special process, not a blind spot */
		if (errno == EACCES && geteuid() != 0)
			*sc->s_partial = true;
		return;
	}
	if ((n = sockdiag_ns_find(sc->s_ns, sc->s_n, st.st_ino))) {
		if (name && strncmp(n->n_name, "net:[", 5) == 0)
			snprintf(n->n_name, sizeof(n->n_name), "%.60s", name);
		return;
	}
	if (sc->s_n == sc->s_max) {
		sc->s_truncated = true;
		return;
	}
	n = &sc->s_ns[sc->s_n];
	/* held open from now on: the task it was found through may exit before the
	 * query while the namespace lives on */
	n->n_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (n->n_fd < 0 && (errno == ENOENT || errno == ESRCH))
		return; /* the task is gone: anything else holding it is found later */
	sc->s_n++;
	n->n_ino = st.st_ino;
	snprintf(n->n_path, sizeof(n->n_path), "%s", path);
	if (name)
		snprintf(n->n_name, sizeof(n->n_name), "%.60s", name);
	else
		snprintf(n->n_name, sizeof(n->n_name), "net:[%llu]", (unsigned long long)st.st_ino);
}

/* The namespace of a socket another task holds: a namespace may be held by a
 * socket alone (created inside it, then the process moved on). Keeps an fd to it. */
static void sockdiag_ns_of_socket(struct sockdiag_scan *sc, int pidfd, int fd)
{
	struct sockdiag_ns *n;
	struct stat st;
	int sock, nsfd;

	sock = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (sock < 0)
		return;
	nsfd = ioctl(sock, SIOCGSKNS);
	close(sock);
	if (nsfd < 0)
		return;
	if (fstat(nsfd, &st) < 0 || sockdiag_ns_find(sc->s_ns, sc->s_n, st.st_ino)) {
		close(nsfd);
		return;
	}
	if (sc->s_n == sc->s_max) {
		sc->s_truncated = true;
		close(nsfd);
		return;
	}
	n = &sc->s_ns[sc->s_n++];
	n->n_ino = st.st_ino;
	n->n_fd = nsfd;
	n->n_path[0] = '\0';
	snprintf(n->n_name, sizeof(n->n_name), "net:[%llu]", (unsigned long long)st.st_ino);
}

/* sockdiag_fd_fn: the namespace of one socket, unless that socket was seen. */
static void sockdiag_socket_ns(pid_t pid, pid_t tid, int fd, uint64_t ino, void *arg)
{
	struct sockdiag_scan *sc = arg;

	if (sockdiag_seen_add(&sc->s_seen, ino))
		return;
	if (sc->s_tid != tid) {
		if (sc->s_pidfd >= 0)
			close(sc->s_pidfd);
		/* PIDFD_THREAD (6.9+): pidfd_getfd then reads this thread's own fd
		 * table; a pidfd of the process reaches only the leader's */
		sc->s_pidfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
		if (sc->s_pidfd < 0 && errno == EINVAL && tid == pid)
			sc->s_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		sc->s_tid = tid;
	}
	if (sc->s_pidfd >= 0)
		sockdiag_ns_of_socket(sc, sc->s_pidfd, fd);
}

/*
 * The distinct namespaces: the caller's, pid 1's ("host"), /run/netns names,
 * every thread's, and every socket's in every fd table (only as root:
 * pidfd_getfd needs it).
 */
static size_t sockdiag_namespaces(struct sockdiag_ns *ns, size_t max, bool *partial,
				  bool *truncated)
{
	struct sockdiag_scan sc = { ns, 0, max, false, partial, { NULL, 0, 0 }, 0, -1 };
	struct dirent *de, *te;
	char path[300];
	DIR *d, *td;

	sockdiag_ns_add(&sc, "/proc/self/ns/net", NULL); /* named below if nothing names it */
	sockdiag_ns_add(&sc, "/proc/1/ns/net", "host");
	if ((d = opendir("/run/netns"))) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.' &&
			    (size_t)snprintf(path, sizeof(path), "/run/netns/%s", de->d_name) <
				sizeof(ns[0].n_path))
				sockdiag_ns_add(&sc, path, de->d_name);
		closedir(d);
	}
	if ((d = opendir("/proc"))) {
		while ((de = readdir(d))) {
			if (de->d_name[0] < '1' || de->d_name[0] > '9')
				continue;
			/* threads can setns() on their own: look at each task */
			snprintf(path, sizeof(path), "/proc/%.20s/task", de->d_name);
			if ((td = opendir(path))) {
				while ((te = readdir(td))) {
					char tpath[96];

					if (te->d_name[0] == '.')
						continue;
					snprintf(tpath, sizeof(tpath),
						 "/proc/%.20s/task/%.20s/ns/net", de->d_name,
						 te->d_name);
					sockdiag_ns_add(&sc, tpath, NULL);
				}
				closedir(td);
			}
			if (geteuid() == 0)
				sockdiag_fd_tables((pid_t)atoi(de->d_name), sockdiag_socket_ns,
						   &sc);
		}
		closedir(d);
	}
	if (sc.s_pidfd >= 0)
		close(sc.s_pidfd);
	free(sc.s_seen.s_slot);
	if (sc.s_n && strncmp(ns[0].n_name, "net:[", 5) == 0) {
		char name[sizeof(ns[0].n_name)];

		snprintf(name, sizeof(name), "self %.50s", ns[0].n_name);
		memcpy(ns[0].n_name, name, sizeof(name));
	}
	*truncated = sc.s_truncated;
	return sc.s_n;
}

/* route_localnet=1 on any interface of the current namespace, into the result;
 * fw_here (asked once, only when one is found) says whether a tfguard table is here. */
static void sockdiag_localnet(struct sockdiag_result *res, const char *netns, int (*fw_here)(void))
{
	const char *dir = "/proc/sys/net/ipv4/conf";
	struct dirent *de;
	DIR *d = opendir(dir);
	int fw = -2; /* not asked yet */

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct sockdiag_localnet *ln;
		char path[300], v[8] = "";
		ssize_t n;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/route_localnet", dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, v, sizeof(v) - 1);
		close(fd);
		if (n <= 0 || v[0] != '1')
			continue;
		ln = realloc(res->r_localnet, (res->r_nlocalnet + 1) * sizeof(*ln));
		if (!ln)
			break;
		if (fw == -2)
			fw = fw_here ? fw_here() : -1;
		res->r_localnet = ln;
		ln = &ln[res->r_nlocalnet++];
		snprintf(ln->ln_netns, sizeof(ln->ln_netns), "%s", netns);
		snprintf(ln->ln_ifname, sizeof(ln->ln_ifname), "%.31s", de->d_name);
		ln->ln_fw = fw;
	}
	closedir(d);
}

static int sockdiag_inode_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct sockdiag_listener *)a)->l_inode;
	uint32_t y = ((const struct sockdiag_listener *)b)->l_inode;

	return x < y ? -1 : x > y;
}

static void sockdiag_proc_info(pid_t pid, char *comm, size_t commlen, pid_t *ppid)
{
	char path[64], stat[512], *p;
	ssize_t n;
	int fd;

	comm[0] = '\0';
	*ppid = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return;
	stat[n] = '\0';
	/* "PID (COMM) STATE PPID ...": COMM may hold ')' so take the last one */
	p = strrchr(stat, ')');
	if (!p || !strchr(stat, '('))
		return;
	snprintf(comm, commlen, "%.*s", (int)(p - strchr(stat, '(') - 1), strchr(stat, '(') + 1);
	/* any user can name a process: keep it from forging evidence lines */
	for (char *q = comm; *q; q++)
		if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
			*q = '?';
	if (sscanf(p + 1, " %*c %d", ppid) != 1)
		*ppid = 0;
}

/* Fills l_pid/l_comm by finding which process holds each listening socket. */

/* sockdiag_fd_fn: names the process holding a listening socket. */
static void sockdiag_owner_fd(pid_t pid, pid_t tid, int fd, uint64_t ino, void *arg)
{
	struct sockdiag_result *res = arg;
	struct sockdiag_listener key, *hit;

	(void)tid, (void)fd;
	key.l_inode = (uint32_t)ino;
	hit = bsearch(&key, res->r_list, res->r_count, sizeof(key), sockdiag_inode_cmp);
	/* several fds (or processes after fork) may share a socket: the first match
	 * is enough to name a responsible process */
	while (hit && hit > res->r_list && hit[-1].l_inode == key.l_inode)
		hit--;
	for (; hit && hit < res->r_list + res->r_count && hit->l_inode == key.l_inode; hit++) {
		if (hit->l_pid)
			continue;
		hit->l_pid = pid;
		sockdiag_proc_info(pid, hit->l_comm, sizeof(hit->l_comm), &hit->l_ppid);
	}
}

/* Fills l_pid/l_comm by finding which process holds each listening socket, in
 * every fd table of every process (a thread's private table included). */
static void sockdiag_owners(struct sockdiag_result *res, bool *partial)
{
	struct dirent *de;
	DIR *d;

	if (res->r_count == 0)
		return;
	qsort(res->r_list, res->r_count, sizeof(res->r_list[0]), sockdiag_inode_cmp);
	if (!(d = opendir("/proc")))
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		/* as root, EACCES means a dying or special process, not a blind spot */
		if (sockdiag_fd_tables((pid_t)atoi(de->d_name), sockdiag_owner_fd, res) < 0 &&
		    errno == EACCES && geteuid() != 0)
			*partial = true;
	}
	closedir(d);
}

/* A namespace that was not inspected, and why. */
static void sockdiag_ns_failed(struct sockdiag_result *res, struct sockdiag_netns *rn,
			       const char *what, int e)
{
	rn->ns_ok = false;
	snprintf(rn->ns_why, sizeof(rn->ns_why), "%s: %s%s", what, strerror(e),
		 e == EPERM && geteuid() ? " (needs root)" : "");
	res->r_netns_failed++;
}

int sockdiag_dump_all(struct sockdiag_result *res, int (*fw_here)(void), char *err, size_t errlen)
{
	struct sockdiag_ns *ns = calloc(SOCKDIAG_NS_MAX, sizeof(*ns));
	struct sockdiag_vec v = { .v_res = res };
	struct rlimit old, rl;
	bool limit = false;
	size_t n = 0, i;
	int self = -1, rc = -1;

	memset(res, 0, sizeof(*res));
	if (!ns) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* one fd per namespace is held from discovery to query */
	if (getrlimit(RLIMIT_NOFILE, &old) == 0 && old.rlim_cur < old.rlim_max) {
		rl = old;
		rl.rlim_cur = rl.rlim_max;
		limit = setrlimit(RLIMIT_NOFILE, &rl) == 0;
	}
	n = sockdiag_namespaces(ns, SOCKDIAG_NS_MAX, &res->r_partial, &res->r_truncated);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		snprintf(err, errlen, "cannot open /proc/self/ns/net: %s", strerror(errno));
		goto out;
	}
	if (!(res->r_ns = calloc(n ? n : 1, sizeof(*res->r_ns)))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	snprintf(res->r_self, sizeof(res->r_self), "%s", n ? ns[0].n_name : "self");
	for (i = 0; i < n; i++) {
		struct sockdiag_netns *rn = &res->r_ns[res->r_nns++];

		snprintf(rn->ns_name, sizeof(rn->ns_name), "%s", ns[i].n_name);
		/* ns[0] is the caller's own: queried without setns, which needs no privilege */
		if (i > 0) {
			if (ns[i].n_fd < 0 &&
			    (ns[i].n_fd = open(ns[i].n_path, O_RDONLY | O_CLOEXEC)) < 0) {
				sockdiag_ns_failed(res, rn, "open", errno);
				continue;
			}
			if (setns(ns[i].n_fd, CLONE_NEWNET) < 0) {
				sockdiag_ns_failed(res, rn, "setns", errno);
				continue;
			}
		}
		v.v_ns = &ns[i];
		/* a listener read before a failure still counts (a public one fails NET-1) */
		if (sockdiag_query(&v, AF_INET) < 0 || sockdiag_query(&v, AF_INET6) < 0) {
			sockdiag_ns_failed(res, rn, "NETLINK_SOCK_DIAG query", errno);
		} else {
			rn->ns_ok = true;
			res->r_netns++;
		}
		sockdiag_localnet(res, ns[i].n_name, fw_here);
		if (i > 0 && setns(self, CLONE_NEWNET) < 0) {
			/* everything after this must run in the caller's namespace */
			snprintf(err, errlen, "cannot return to the original network namespace: %s",
				 strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	if (self >= 0)
		close(self);
	for (i = 0; i < n; i++)
		if (ns[i].n_fd >= 0)
			close(ns[i].n_fd);
	free(ns);
	if (limit)
		setrlimit(RLIMIT_NOFILE, &old);
	if (rc < 0) {
		sockdiag_free(res);
		return -1;
	}
	sockdiag_owners(res, &res->r_partial);
	return 0;
}

void sockdiag_free(struct sockdiag_result *res)
{
	free(res->r_list);
	free(res->r_localnet);
	free(res->r_ns);
	memset(res, 0, sizeof(*res));
}

bool sockdiag_is_public(const struct sockdiag_listener *l)
{
	return !addr_is_loopback((const struct sockaddr *)&l->l_addr);
}

unsigned sockdiag_port(const struct sockdiag_listener *l)
{
	return addr_port((const struct sockaddr *)&l->l_addr);
}

/* Seccomp mode of pid from /proc/PID/status: 2 = filter, -1 unknown. */
static int sockdiag_seccomp_mode(pid_t pid)
{
	char path[64], line[128];
	int mode = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode;
}

bool sockdiag_under_run(pid_t pid, const char *const *exes, size_t nexes)
{
	int depth;

	/* a process name is chosen by the process: require the seccomp filter
	 * tfguard-run installs, and an ancestor whose executable is tfguard-run */
	if (sockdiag_seccomp_mode(pid) != 2)
		return false;
	/* bounded: process trees are shallow, and a loop must not hang the audit */
	for (depth = 0; pid > 1 && depth < 64; depth++) {
		char path[64], exe[512], c[32];
		pid_t ppid;
		ssize_t n;
		size_t i;

		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			for (i = 0; i < nexes; i++)
				if (exes[i] && strcmp(exe, exes[i]) == 0)
					return true;
		}
		sockdiag_proc_info(pid, c, sizeof(c), &ppid);
		pid = ppid;
	}
	return false;
}
