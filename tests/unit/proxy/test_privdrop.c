/* test_privdrop: the seccomp lockdown (in a child process): exec, fork, setuid refused,
 * threads still work; privdrop_lookup refuses unknown and uid-0 users. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "privdrop.h"
#include "tap.h"

#if !defined(__SANITIZE_ADDRESS__)
static void *thr(void *arg)
{
	return arg;
}

/* Exit code: bit set for each check that failed. */
__attribute__((unused)) static int child(void) /* unused in sanitizer builds */
{
	char err[256];
	char *const argv[] = { "true", NULL };
	pthread_t t;
	void *ret = NULL;
	int bad = 0;

	if (privdrop_lockdown(err, sizeof(err)) < 0)
		return 64;
	if (execv("/bin/true", argv) == 0 || errno != EPERM)
		bad |= 1;
	{
		pid_t p = fork();

		if (p == 0)
			_exit(0);
		if (p > 0) {
			waitpid(p, NULL, 0);
			bad |= 2;
		} else if (errno != EPERM) {
			bad |= 2;
		}
	}
	if (setuid(getuid()) == 0 || errno != EPERM)
		bad |= 4;
	if (pthread_create(&t, NULL, thr, (void *)1L) != 0 || pthread_join(t, &ret) != 0 ||
	    ret != (void *)1L)
		bad |= 8;
#ifdef __x86_64__
	/* getpid as an x32 call: refused by the filter (EPERM; the kernel's own answer
	 * without x32 support would be ENOSYS) */
	if (syscall(0x40000000L | SYS_getpid) != -1 || errno != EPERM)
		bad |= 16;
#endif
	return bad;
}

#endif

int main(void)
{
	char err[256];
	uid_t uid;
	gid_t gid;
	pid_t p;
	int st = 0;

	ok(privdrop_lookup("no-such-user-tfg", &uid, &gid, err, sizeof(err)) < 0,
	   "unknown user refused");
	ok(privdrop_lookup("root", &uid, &gid, err, sizeof(err)) < 0, "uid 0 refused as target");
#if defined(__SANITIZE_ADDRESS__)
	ok(1, "# SKIP seccomp under ASan (LeakSanitizer needs ptrace)");
#else
	p = fork();
	if (p == 0)
		_exit(child());
	waitpid(p, &st, 0);
	ok(WIFEXITED(st), "child exited normally");
	is_int(WEXITSTATUS(st) & 64, 0, "filter installed");
	is_int(WEXITSTATUS(st) & 1, 0, "execve refused with EPERM");
	is_int(WEXITSTATUS(st) & 2, 0, "fork refused with EPERM");
	is_int(WEXITSTATUS(st) & 4, 0, "setuid refused with EPERM");
	is_int(WEXITSTATUS(st) & 8, 0, "threads still work");
	is_int(WEXITSTATUS(st) & 16, 0, "x32 syscall numbers refused by the filter (EPERM)");
#endif
	(void)p;
	(void)st;
	{
		struct rlimit rl;

		ok(privdrop_nodump(false, err, sizeof(err)) == 0, "privdrop_nodump");
		is_int(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0, "not dumpable any more");
		ok(getrlimit(RLIMIT_CORE, &rl) == 0 && rl.rlim_cur == 0 && rl.rlim_max == 0,
		   "no core files (RLIMIT_CORE 0/0)");
	}
	return done_testing();
}
