/*
 * tfguard-run: launch a server so that its binds on protected ports land on
 * loopback, with two layers: libtfguard-preload.so in LD_PRELOAD, and a seccomp
 * filter whose bind/listen notifications this process answers (supervise.c).
 *
 * Order (STYLE.md section 6, "exec last, fail closed"): parse arguments, load
 * the config, build the policy, find the shim, prepare the environment, fork.
 * The child sets no_new_privs, loads the filter, hands the notification fd to
 * the parent over a socketpair and waits for the parent's go-ahead before it
 * execs. If any of that fails, nothing is exec'd. The parent never execs: it
 * supervises (as a child subreaper, until no process under the filter is
 * left), forwards signals and exits with the child's status.
 */
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <stdint.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "policy.h"
#include "ports.h"
#include "sandbox.h"
#include "supervise.h"

#define RUN_SHIM_NAME	"libtfguard-preload.so"
#define RUN_ENV_PRELOAD "TFGUARD_PRELOAD"
#define RUN_ENV_MAX	(POLICY_ALLOW_MAX * (ADDR_TEXT_MAX + 1) + 1)
#define RUN_EXIT_USAGE	2
#define RUN_EXIT_NOEXEC 127
#ifdef TFG_LIBDIR
#define RUN_LIBDIR_TEXT TFG_LIBDIR
#else
#define RUN_LIBDIR_TEXT "(no LIBDIR)"
#endif

struct run_opts {
	const char *o_conf;
	const char *o_preload;
	const char *o_allow[POLICY_ALLOW_MAX];
	size_t o_nallow;
	bool o_no_seccomp;
	bool o_verbose;
	char **o_argv;
};

/* TFGUARD_SUPERVISED=1 inherited: we run inside another tfguard-run. */
static bool run_nested;

/* Signals a terminal, an init system or an operator sends to "the server". */
static const int run_forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT };

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: tfguard-run [-c CONF] [--allow-bind ADDR:PORT]... [--preload PATH]\n"
		"                   [--no-seccomp] [-v] -- CMD [ARGS...]\n"
		"\n"
		"Runs CMD so that its binds on the protected ports ([guard] protected_ports of\n"
		"CONF, default 8500, 8501) land on loopback: 0.0.0.0 -> 127.0.0.1, dual-stack\n"
		"[::] -> [::ffff:127.0.0.1], v6-only [::] -> [::1]; a bind of a protected port\n"
		"on any other non-loopback address fails with EACCES. Two layers: the\n"
		"libtfguard-preload.so shim in LD_PRELOAD, and a seccomp filter whose binds\n"
		"this process performs itself (covers static and Go binaries and raw\n"
		"syscalls; io_uring, raw IP, packet and XDP sockets, ptrace and pidfd_getfd are\n"
		"denied). Children inherit both; tfguard-run stays until the last process under\n"
		"its filter has exited (daemons included).\n"
		"CMD is not started if tfguard-run inherits a socket already bound where the\n"
		"policy would not allow it.\n"
		"\n"
		"  -c, --config CONF         config file (default %s; built-in\n"
		"                            defaults if that file does not exist)\n"
		"  --allow-bind ADDR:PORT    allow this non-loopback bind and refuse every other\n"
		"                            one (repeatable; 0.0.0.0:P or [::]:P = any address\n"
		"                            of that family on port P; [::] includes IPv4)\n"
		"  --preload PATH            the shim to use (else $%s, then next to\n"
		"                            tfguard-run, then " RUN_LIBDIR_TEXT ",\n"
		"                            then ../lib/tfguard/)\n"
		"  --no-seccomp              LD_PRELOAD only: static binaries and raw syscalls\n"
		"                            are NOT covered (a loud warning is printed)\n"
		"  -v, --verbose             also log binds that were already on loopback\n"
		"  -h, --help                this text\n"
		"      --version             print the version\n"
		"\n"
		"Exit status: CMD's own, 128+N if CMD was killed by signal N; 1 if a protection\n"
		"step failed (CMD is then not run at all); 2 for usage errors; 127 if CMD\n"
		"could not be executed. TERM, INT, HUP, USR1, USR2 and QUIT are forwarded to CMD\n"
		"(to the processes it left behind once CMD has exited).\n",
		CONF_DEFAULT_PATH, RUN_ENV_PRELOAD);
}

static void run_parse_args(int argc, char **argv, struct run_opts *o)
{
	enum { OPT_ALLOW = 256, OPT_PRELOAD, OPT_NO_SECCOMP, OPT_VERSION };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "allow-bind", required_argument, NULL, OPT_ALLOW },
		{ "preload", required_argument, NULL, OPT_PRELOAD },
		{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	/* "+": stop at the first non-option, CMD's own options are not ours */
	while ((ch = getopt_long(argc, argv, "+c:vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->o_conf = optarg;
			break;
		case OPT_ALLOW:
			if (o->o_nallow == POLICY_ALLOW_MAX)
				errx(RUN_EXIT_USAGE, "--allow-bind: more than %d entries",
				     POLICY_ALLOW_MAX);
			o->o_allow[o->o_nallow++] = optarg;
			break;
		case OPT_PRELOAD:
			o->o_preload = optarg;
			break;
		case OPT_NO_SECCOMP:
			o->o_no_seccomp = true;
			break;
		case 'v':
			o->o_verbose = true;
			break;
		case 'h':
			run_usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf("tfguard-run %s\n", TFG_VERSION);
			exit(0);
		default:
			run_usage(stderr);
			exit(RUN_EXIT_USAGE);
		}
	}
	if (optind >= argc) {
		warnx("no command given (usage: tfguard-run [OPTIONS] -- CMD [ARGS...])");
		exit(RUN_EXIT_USAGE);
	}
	o->o_argv = argv + optind;
}

/*
 * Builds the two policy strings the shim reads, then parses them back into
 * pol: the supervisor and the shim get their policy from the same text.
 */
static void run_build_policy(const struct run_opts *o, const struct conf *c, struct policy *pol,
			     char *ports, size_t plen, char *allow, size_t alen)
{
	size_t i, off = 0;

	ports[0] = '\0';
	for (i = 0; i < c->c_guard.g_ports.p_count; i++)
		off += (size_t)snprintf(ports + off, plen - off, "%s%u", i ? "," : "",
					c->c_guard.g_ports.p_port[i]);
	if (c->c_guard.g_ports.p_count == 0)
		errx(1, "%s: no protected ports (set [guard] protected_ports)", c->c_path);
	allow[0] = '\0';
	off = 0;
	for (i = 0; i < o->o_nallow; i++) {
		struct addr a;

		if (addr_parse(o->o_allow[i], &a) < 0)
			errx(RUN_EXIT_USAGE,
			     "--allow-bind %s: not a numeric ADDR:PORT (e.g. 0.0.0.0:8443 or "
			     "[::]:443)",
			     o->o_allow[i]);
		if (ports_contains(&c->c_guard.g_ports, addr_port((struct sockaddr *)&a.a_ss)))
			errx(RUN_EXIT_USAGE,
			     "--allow-bind %s: port %u is protected and always stays on loopback "
			     "(put the proxy on another port, or change [guard] protected_ports)",
			     o->o_allow[i], addr_port((struct sockaddr *)&a.a_ss));
		off += (size_t)snprintf(allow + off, alen - off, "%s%s", i ? "," : "", a.a_text);
		if (off >= alen)
			errx(RUN_EXIT_USAGE, "--allow-bind: too many entries");
	}
	if (policy_parse(pol, ports, o->o_nallow ? allow : NULL) < 0)
		errx(1, "policy \"%s\" / \"%s\" does not parse (this is a bug)", ports, allow);
}

/*
 * Sockets inherited already bound (systemd LISTEN_FDS, nginx's binary upgrade,
 * a wrapper that bound for us) never pass through bind() again, so neither
 * layer would see them. Each inherited inet socket is run through the same
 * policy: one the policy would have moved or refused is an error, before
 * anything is exec'd.
 */
static void run_check_inherited(const struct policy *pol)
{
	struct sockaddr_storage ss;
	struct policy_decision d;
	char text[POLICY_ADDR_TEXT_MAX + 32];
	struct dirent *de;
	int fd, domain, v6only;
	socklen_t l;
	size_t off;
	DIR *dir;

	/* /proc/self/fd rather than 0..RLIMIT_NOFILE: the limit may be 2^20 or more */
	dir = opendir("/proc/self/fd");
	if (!dir)
		err(1, "/proc/self/fd (is /proc mounted?)");
	while ((de = readdir(dir))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		/* 0-2 too: a listener passed as stdin is a listener */
		if (fd == dirfd(dir))
			continue;
		l = sizeof(domain);
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) < 0)
			continue;
		if (domain != AF_INET && domain != AF_INET6)
			continue;
		l = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0)
			continue;
		if ((ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_port == 0) ||
		    (ss.ss_family == AF_INET6 && ((struct sockaddr_in6 *)&ss)->sin6_port == 0))
			continue; /* not bound yet: its bind() will be seen */
		v6only = 0;
		l = sizeof(v6only);
		if (domain == AF_INET6)
			(void)getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
		policy_decide(pol, domain, v6only, &ss, sizeof(ss), &d);
		if (d.d_verdict == POLICY_ALLOW || d.d_verdict == POLICY_PASS)
			continue;
		off = 0;
		policy_put_addr(text, sizeof(text), &off, &ss, sizeof(ss));
		errx(1,
		     "fd %d: inherited socket already bound to %s (%s); it would bypass both "
		     "layers (close it, or let the program bind it itself)",
		     fd, text,
		     d.d_verdict == POLICY_REWRITE ? "a protected port on a wildcard address"
						   : policy_reason_text(d.d_reason));
	}
	closedir(dir);
}

/* 0 if path names a readable regular file usable in LD_PRELOAD, resolved into out. */
static int run_shim_try(const char *path, char *out, size_t len)
{
	char real[PATH_MAX];
	struct stat st;

	if (!realpath(path, real) || stat(real, &st) < 0 || !S_ISREG(st.st_mode) ||
	    access(real, R_OK) < 0)
		return -1;
	/* ld.so splits LD_PRELOAD on spaces and colons */
	if (strpbrk(real, " :") || strlen(real) >= len)
		return -1;
	strcpy(out, real);
	return 0;
}

static void run_find_shim(const char *override, char *out, size_t len)
{
	char exe[PATH_MAX], cand[PATH_MAX + 64];
	const char *env = getenv(RUN_ENV_PRELOAD), *why = NULL;
	ssize_t n;
	char *slash;

	if (override || (env && *env)) {
		const char *p = override ? override : env;

		if (run_shim_try(p, out, len) < 0)
			errx(1, "%s: not a readable shim without spaces or colons in its path (%s)",
			     p, override ? "check --preload" : "check $" RUN_ENV_PRELOAD);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			/* build/: next to tfguard-run; installed: $(PREFIX)/lib/tfguard/ */
			snprintf(cand, sizeof(cand), "%s/%s", exe, RUN_SHIM_NAME);
			if (run_shim_try(cand, out, len) == 0)
				return;
#ifdef TFG_LIBDIR
			/* the LIBDIR of the build; absolute, so a copied binary finds it */
			snprintf(cand, sizeof(cand), "%s/%s", TFG_LIBDIR, RUN_SHIM_NAME);
			if (TFG_LIBDIR[0] == '/' && run_shim_try(cand, out, len) == 0)
				return;
#endif
			/* relocated trees (DESTDIR, a tarball): ../lib/tfguard/ */
			snprintf(cand, sizeof(cand), "%s/../lib/tfguard/%s", exe, RUN_SHIM_NAME);
			if (run_shim_try(cand, out, len) == 0)
				return;
			why = exe;
		}
	}
	errx(1,
	     "%s: not found next to tfguard-run (%s), in %s nor in ../lib/tfguard/ (run "
	     "'make', or name it with --preload or $%s)",
	     RUN_SHIM_NAME, why ? why : "?", RUN_LIBDIR_TEXT, RUN_ENV_PRELOAD);
}

/* Prepends the shim to LD_PRELOAD, keeping whatever was there. */
static void run_set_env(const char *shim, const char *ports, const char *allow, bool restrict_,
			bool supervised)
{
	const char *old = getenv("LD_PRELOAD");
	char *v;

	if (old && *old) {
		if (asprintf(&v, "%s %s", shim, old) < 0)
			err(1, "LD_PRELOAD");
	} else if (!(v = strdup(shim))) {
		err(1, "LD_PRELOAD");
	}
	if (setenv("LD_PRELOAD", v, 1) < 0 || setenv(POLICY_ENV_PORTS, ports, 1) < 0)
		err(1, "environment");
	free(v);
	/* An inherited TFGUARD_ALLOW_BIND must not loosen or tighten the shim
	 * behind the supervisor's back. */
	if (restrict_ ? setenv(POLICY_ENV_ALLOW, allow, 1) < 0 : unsetenv(POLICY_ENV_ALLOW) < 0)
		err(1, "environment");
	if (supervised ? setenv(POLICY_ENV_SUPERVISED, "1", 1) < 0
		       : unsetenv(POLICY_ENV_SUPERVISED) < 0)
		err(1, "environment");
}

static void run_send_fd(int sock, int fd)
{
	char byte = 'F';
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;

	memset(&u, 0, sizeof(u));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 1) {
		warn("seccomp: cannot hand the notification fd to the supervisor");
		_exit(1);
	}
}

/* -1 when the child sent none (it failed and said why on stderr). */
static int run_recv_fd(int sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	ssize_t n;
	int fd = -1;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/*
 * CAP_SYS_PTRACE out of every set of the child before exec. PR_SET_DUMPABLE 0
 * on the supervisor stops a same-uid child, but not one holding
 * CAP_SYS_PTRACE (root): it could pidfd_getfd() the notification fd and
 * answer its own binds. The bounding set needs CAP_SETPCAP to change; without
 * it no_new_privs already keeps exec from raising the permitted set above
 * what it is now, and that no longer has the bit. 0 or -1 (errno).
 */
static int run_drop_ptrace(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	const uint32_t bit = 1U << (CAP_SYS_PTRACE % 32);
	const int w = CAP_SYS_PTRACE / 32;

	if (prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE, 0, 0, 0) == 1 &&
	    prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) < 0 && errno != EPERM)
		return -1;
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[w].effective &= ~bit;
	d[w].permitted &= ~bit;
	d[w].inheritable &= ~bit; /* the ambient set follows (ambient ⊆ inheritable) */
	if (syscall(SYS_capset, &h, d) < 0)
		return -1;
	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	if ((d[w].effective | d[w].permitted | d[w].inheritable) & bit ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_SYS_PTRACE, 0, 0) == 1) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

/* The child: filter, fd to the parent, wait for go, exec. Never returns. */
static void run_child(int sock, const sigset_t *oldmask, char **argv)
{
	char errbuf[256], go;
	ssize_t n;
	int fd;

	if (sigprocmask(SIG_SETMASK, oldmask, NULL) < 0) {
		warn("signal mask");
		_exit(1);
	}
	if (run_drop_ptrace() < 0) {
		warn("cannot drop CAP_SYS_PTRACE (nothing was run)");
		_exit(1);
	}
	fd = sandbox_load(errbuf, sizeof(errbuf));
	if (fd < 0 && run_nested) {
		/* the kernel allows one notification listener per filter chain */
		warnx("seccomp: %s: this process already runs under a tfguard-run supervisor "
		      "(TFGUARD_SUPERVISED=1 was inherited), which covers the command already; "
		      "run it without the inner tfguard-run",
		      errbuf);
		_exit(1);
	}
	if (fd < 0) {
		warnx("seccomp: %s (nothing was run; --no-seccomp runs with the LD_PRELOAD layer "
		      "only)",
		      errbuf);
		_exit(1);
	}
	run_send_fd(sock, fd);
	close(fd);
	do
		n = read(sock, &go, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || go != 'G')
		_exit(1); /* the parent failed and said why: exec nothing */
	close(sock);
	execvp(argv[0], argv);
	warn("%s: cannot execute (check the command name and PATH)", argv[0]);
	_exit(RUN_EXIT_NOEXEC);
}

static int run_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/*
 * Once CMD has exited, signals go to the processes tfguard-run adopted as
 * subreaper (a daemonised server's master). They are our children, so their
 * pids cannot be reused before we reap them. Needs CONFIG_PROC_CHILDREN.
 */
static void run_signal_adopted(int sig)
{
	char path[64], buf[4096], *p, *end;
	ssize_t n;
	long pid;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0) {
		log_warn("signal %d not forwarded: %s: %s", sig, path, strerror(errno));
		return;
	}
	buf[n] = '\0';
	for (p = buf;; p = end) {
		pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0) {
			log_debug("forwarding signal %d to adopted %ld", sig, pid);
			kill((pid_t)pid, sig);
		}
	}
}

/* Reaps every exited child (CMD and adopted orphans); true once CMD was. */
static bool run_reap(pid_t child, int *status)
{
	bool gone = false;
	pid_t p;
	int st;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0 || (p < 0 && errno == EINTR)) {
		if (p == child) {
			*status = st;
			gone = true;
		}
	}
	return gone;
}

static int run_supervised(const struct run_opts *o, const struct policy *pol)
{
	sigset_t mask, oldmask;
	struct supervise sv;
	struct pollfd pf[2];
	char errbuf[256];
	int sp[2], nfd, sfd, pidfd, st = 0;
	bool child_done = false;
	pid_t child;
	size_t i;

	sigemptyset(&mask);
	for (i = 0; i < sizeof(run_forwarded) / sizeof(run_forwarded[0]); i++)
		sigaddset(&mask, run_forwarded[i]);
	sigaddset(&mask, SIGCHLD);
	/* Blocked before fork: a signal in between is queued, then forwarded. */
	if (sigprocmask(SIG_BLOCK, &mask, &oldmask) < 0)
		err(1, "signal mask");
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		err(1, "signalfd");
	/*
	 * Subreaper: CMD's descendants stay under the filter after CMD exits (a
	 * daemonising server, "cmd &" in a shell script). They are reparented to
	 * us, and we keep answering until no process is left under the filter.
	 */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		err(1, "prctl(PR_SET_CHILD_SUBREAPER)");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		err(1, "socketpair");
	child = fork();
	if (child < 0)
		err(1, "fork");
	if (child == 0) {
		close(sp[0]);
		close(sfd);
		run_child(sp[1], &oldmask, o->o_argv);
	}
	close(sp[1]);
	/* The child (same uid) must not be able to ptrace its supervisor or take
	 * its fds; a failure here would leave exactly that open: fail closed. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		kill(child, SIGKILL);
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		err(1, "prctl(PR_SET_DUMPABLE); %s was not run", o->o_argv[0]);
	}
	nfd = run_recv_fd(sp[0]);
	if (nfd < 0) {
		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		errx(1, "seccomp: the filter could not be set up (see above); %s was not run",
		     o->o_argv[0]);
	}
	pidfd = pidfd_open(child, 0);
	if (pidfd < 0 || supervise_init(&sv, nfd, pol, errbuf, sizeof(errbuf)) < 0) {
		kill(child, SIGKILL);
		if (pidfd < 0)
			err(1, "pidfd_open (Linux 5.3+ needed); %s was not run", o->o_argv[0]);
		errx(1, "supervisor: %s; %s was not run", errbuf, o->o_argv[0]);
	}
	if (write(sp[0], "G", 1) != 1) {
		kill(child, SIGKILL);
		err(1, "cannot start %s", o->o_argv[0]);
	}
	close(sp[0]);

	pf[0] = (struct pollfd){ .fd = nfd, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	/* Until CMD has exited and no process is left under the filter (POLLHUP
	 * on the notification fd: the last one was reaped). */
	while (!child_done || pf[0].fd >= 0) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		if (pf[0].revents & POLLIN) {
			if (supervise_handle(&sv) < 0) {
				/* Fail closed: with the fd closed, every pending and later
				 * bind/listen under the filter gets ENOSYS instead of
				 * waiting forever for an answer. */
				log_error("seccomp notification fd broken: %s; from now on every "
					  "bind and listen of %s fails with ENOSYS",
					  strerror(errno), o->o_argv[0]);
				close(nfd);
				pf[0].fd = -1;
			}
		} else if (pf[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			close(nfd); /* no supervised task left */
			pf[0].fd = -1;
		}
		if (pf[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGCHLD) {
				if (run_reap(child, &st)) {
					child_done = true;
					if (pf[0].fd >= 0)
						log_debug("%s exited; serving its remaining "
							  "descendants",
							  o->o_argv[0]);
				}
			} else if (!child_done) {
				log_debug("forwarding signal %u to %d", si.ssi_signo, (int)child);
				/* by pidfd: no pid reuse between its exit and our reaping */
				(void)pidfd_send_signal(pidfd, (int)si.ssi_signo, NULL, 0);
			} else {
				run_signal_adopted((int)si.ssi_signo);
			}
		}
	}
	close(pidfd);
	supervise_free(&sv);
	return run_status(st);
}

int main(int argc, char **argv)
{
	char errbuf[CONF_ERR_MAX], ports[POLICY_PORTS_MAX * 6 + 1], allow[RUN_ENV_MAX],
	    shim[PATH_MAX];
	struct run_opts o;
	struct policy pol;
	struct conf c;

	run_parse_args(argc, argv, &o);
	log_init("tfguard-run", o.o_verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (conf_load(&c, o.o_conf, errbuf, sizeof(errbuf)) < 0)
		errx(1, "%s (fix the config, or name another with -c)", errbuf);
	run_build_policy(&o, &c, &pol, ports, sizeof(ports), allow, sizeof(allow));
	run_check_inherited(&pol);
	run_nested =
	    getenv(POLICY_ENV_SUPERVISED) && strcmp(getenv(POLICY_ENV_SUPERVISED), "1") == 0;
	run_find_shim(o.o_preload, shim, sizeof(shim));
	run_set_env(shim, ports, allow, o.o_nallow > 0, !o.o_no_seccomp);
	log_debug("protected ports %s%s%s; shim %s; seccomp supervisor %s", ports,
		  o.o_nallow ? "; allowed binds " : "", o.o_nallow ? allow : "", shim,
		  o.o_no_seccomp ? "off" : "on");
	conf_free(&c);

	if (o.o_no_seccomp) {
		warnx("WARNING: --no-seccomp: only the LD_PRELOAD layer protects %s; static "
		      "binaries, Go programs and raw bind syscalls are NOT covered",
		      o.o_argv[0]);
		execvp(o.o_argv[0], o.o_argv);
		err(RUN_EXIT_NOEXEC, "%s: cannot execute (check the command name and PATH)",
		    o.o_argv[0]);
	}
	return run_supervised(&o, &pol);
}
