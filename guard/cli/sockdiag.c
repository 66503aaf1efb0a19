#include "sockdiag.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "addr.h"

#define SOCKDIAG_NS_MAX 4096
#define SOCKDIAG_BUF	32768

struct sockdiag_ns {
	uint64_t n_ino;
	char n_path[64]; /* a file that refers to the namespace */
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
static int sockdiag_query(struct sockdiag_vec *v, int family)
{
	char buf[SOCKDIAG_BUF];
	struct inet_diag_req_v2 *req;
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	uint32_t seq = (uint32_t)time(NULL), portid;
	ssize_t n;
	int rc = -1;

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
	mnl_socket_close(nl);
	return rc;
}

static int sockdiag_ns_ino(const char *path, uint64_t *ino)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	*ino = st.st_ino;
	return 0;
}

static bool sockdiag_ns_known(const struct sockdiag_ns *ns, size_t n, uint64_t ino)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ns[i].n_ino == ino)
			return true;
	return false;
}

/* The distinct namespaces: pid 1's ("host"), /run/netns names, then any other process's. */
static size_t sockdiag_namespaces(struct sockdiag_ns *ns, size_t max, bool *partial)
{
	struct dirent *de;
	size_t n = 0;
	uint64_t ino;
	DIR *d;

	if (sockdiag_ns_ino("/proc/1/ns/net", &ino) == 0) {
		ns[n].n_ino = ino;
		snprintf(ns[n].n_path, sizeof(ns[n].n_path), "/proc/1/ns/net");
		snprintf(ns[n].n_name, sizeof(ns[n].n_name), "host");
		n++;
	} else if (errno == EACCES && geteuid() != 0) {
		*partial = true;
	}
	if ((d = opendir("/run/netns"))) {
		while ((de = readdir(d)) && n < max) {
			char path[sizeof(ns[0].n_path)];

			if (de->d_name[0] == '.' ||
			    (size_t)snprintf(path, sizeof(path), "/run/netns/%s", de->d_name) >=
				sizeof(path) ||
			    sockdiag_ns_ino(path, &ino) < 0 || sockdiag_ns_known(ns, n, ino))
				continue;
			ns[n].n_ino = ino;
			memcpy(ns[n].n_path, path, sizeof(path));
			snprintf(ns[n].n_name, sizeof(ns[n].n_name), "%.52s", de->d_name);
			n++;
		}
		closedir(d);
	}
	if (!(d = opendir("/proc")))
		return n;
	while ((de = readdir(d)) && n < max) {
		char path[sizeof(ns[0].n_path)];

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/ns/net", de->d_name);
		if (sockdiag_ns_ino(path, &ino) < 0) {
			/* as root, EACCES is a special process, not a blind spot */
			if (errno == EACCES && geteuid() != 0)
				*partial = true;
			continue;
		}
		if (sockdiag_ns_known(ns, n, ino))
			continue;
		ns[n].n_ino = ino;
		memcpy(ns[n].n_path, path, sizeof(path));
		snprintf(ns[n].n_name, sizeof(ns[n].n_name), "net:[%llu]", (unsigned long long)ino);
		n++;
	}
	closedir(d);
	return n;
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
	if (sscanf(p + 1, " %*c %d", ppid) != 1)
		*ppid = 0;
}

/* Fills l_pid/l_comm by finding which process holds each listening socket. */
static void sockdiag_owners(struct sockdiag_result *res, bool *partial)
{
	struct dirent *de, *fe;
	DIR *d, *fd;

	if (res->r_count == 0)
		return;
	qsort(res->r_list, res->r_count, sizeof(res->r_list[0]), sockdiag_inode_cmp);
	if (!(d = opendir("/proc")))
		return;
	while ((de = readdir(d))) {
		char dir[64];
		pid_t pid;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pid = (pid_t)atoi(de->d_name);
		snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
		if (!(fd = opendir(dir))) {
			/* as root, EACCES means a dying or special process, not a blind spot */
			if (errno == EACCES && geteuid() != 0)
				*partial = true;
			continue;
		}
		while ((fe = readdir(fd))) {
			struct sockdiag_listener key, *hit;
			char link[96], target[64];
			unsigned long ino;
			ssize_t n;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(link, sizeof(link), "%s/%.20s", dir, fe->d_name);
			n = readlink(link, target, sizeof(target) - 1);
			if (n <= 0)
				continue;
			target[n] = '\0';
			if (sscanf(target, "socket:[%lu]", &ino) != 1)
				continue;
			key.l_inode = (uint32_t)ino;
			hit = bsearch(&key, res->r_list, res->r_count, sizeof(key),
				      sockdiag_inode_cmp);
			/* several fds (or processes after fork) may share a socket: the
			 * first match is enough to name a responsible process */
			while (hit && hit > res->r_list && hit[-1].l_inode == key.l_inode)
				hit--;
			for (;
			     hit && hit < res->r_list + res->r_count && hit->l_inode == key.l_inode;
			     hit++) {
				if (hit->l_pid)
					continue;
				hit->l_pid = pid;
				sockdiag_proc_info(pid, hit->l_comm, sizeof(hit->l_comm),
						   &hit->l_ppid);
			}
		}
		closedir(fd);
	}
	closedir(d);
}

int sockdiag_dump_all(struct sockdiag_result *res, char *err, size_t errlen)
{
	struct sockdiag_ns *ns = calloc(SOCKDIAG_NS_MAX, sizeof(*ns));
	struct sockdiag_vec v = { .v_res = res };
	size_t n, i;
	int self;

	memset(res, 0, sizeof(*res));
	if (!ns) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = sockdiag_namespaces(ns, SOCKDIAG_NS_MAX, &res->r_partial);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		snprintf(err, errlen, "cannot open /proc/self/ns/net: %s", strerror(errno));
		free(ns);
		return -1;
	}
	for (i = 0; i < n; i++) {
		int fd = open(ns[i].n_path, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
			res->r_netns_failed++;
			if (fd >= 0)
				close(fd);
			continue;
		}
		close(fd);
		v.v_ns = &ns[i];
		if (sockdiag_query(&v, AF_INET) < 0 || sockdiag_query(&v, AF_INET6) < 0)
			res->r_netns_failed++;
		else
			res->r_netns++;
	}
	/* back home: everything after this must run in the caller's namespace */
	if (setns(self, CLONE_NEWNET) < 0) {
		snprintf(err, errlen, "cannot return to the original network namespace: %s",
			 strerror(errno));
		close(self);
		free(ns);
		sockdiag_free(res);
		return -1;
	}
	close(self);
	free(ns);
	sockdiag_owners(res, &res->r_partial);
	return 0;
}

void sockdiag_free(struct sockdiag_result *res)
{
	free(res->r_list);
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

bool sockdiag_has_ancestor(pid_t pid, const char *comm)
{
	char c[32];
	int depth;

	/* bounded: process trees are shallow, and a loop must not hang the audit */
	for (depth = 0; pid > 1 && depth < 64; depth++) {
		pid_t ppid;

		sockdiag_proc_info(pid, c, sizeof(c), &ppid);
		if (strcmp(c, comm) == 0)
			return true;
		pid = ppid;
	}
	return false;
}
