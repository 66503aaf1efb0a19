/*
 * steal: a child that tries to take over its supervisor. For every fd 0..255
 * of its parent it tries pidfd_getfd(); it also tries ptrace(PTRACE_ATTACH)
 * on the parent. Prints what it got and whether it holds CAP_SYS_PTRACE.
 *
 *	steal
 *
 * Exit 1 if any fd of the parent (or a ptrace attach) was obtained, 0 if all
 * were refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	pid_t pp = getppid();
	int pfd, fd, got = 0, lasterr = 0;
	char path[64], link[256];
	long r;

	pfd = (int)syscall(SYS_pidfd_open, pp, 0);
	if (pfd < 0) {
		printf("pidfd_open(%d): %s\n", (int)pp, strerror(errno));
		return 0;
	}
	for (fd = 0; fd < 256; fd++) {
		int s = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);

		if (s < 0) {
			if (errno != EBADF)
				lasterr = errno;
			continue;
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", s);
		r = readlink(path, link, sizeof(link) - 1);
		link[r > 0 ? r : 0] = '\0';
		printf("STOLE parent fd %d: %s\n", fd, link);
		got++;
		close(s);
	}
	if (!got)
		printf("pidfd_getfd on the parent: refused (%s)\n",
		       lasterr ? strerror(lasterr) : "EBADF only");
	r = ptrace(PTRACE_ATTACH, pp, 0, 0);
	if (r == 0) {
		printf("STOLE: ptrace attached to the parent\n");
		waitpid(pp, NULL, __WALL);
		ptrace(PTRACE_DETACH, pp, 0, 0);
		got++;
	} else {
		printf("ptrace attach on the parent: refused (%s)\n", strerror(errno));
	}
	return got ? 1 : 0;
}
