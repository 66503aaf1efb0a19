/*
 * libtfgfault.so: fault injection for tfguard-run itself (LD_PRELOAD into
 * tfguard-run, never into the program it runs). TFG_FAULT selects:
 *
 *	oldpidfd  pidfd_open() as before Linux 6.9: PIDFD_THREAD and a tid
 *	          that is not a thread-group leader fail with EINVAL (the
 *	          supervisor then falls back to the thread-group leader)
 *	dumpable  prctl(PR_SET_DUMPABLE, ...) fails with EPERM
 *	recv      ioctl(SECCOMP_IOCTL_NOTIF_RECV) fails with EIO
 */
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int pidfd_open(pid_t pid, unsigned int flags);
int prctl(int option, ...);

static int fault(const char *what)
{
	const char *f = getenv("TFG_FAULT");

	return f && strcmp(f, what) == 0;
}

int pidfd_open(pid_t pid, unsigned int flags)
{
	int fd;

	if (fault("oldpidfd") && (flags & O_EXCL)) {
		errno = EINVAL;
		return -1;
	}
	fd = (int)syscall(SYS_pidfd_open, pid, flags);
	/* 6.9+ says ENOENT for a tid that is not a thread-group leader, older
	 * kernels EINVAL */
	if (fd < 0 && fault("oldpidfd") && errno == ENOENT)
		errno = EINVAL;
	return fd;
}

int prctl(int option, ...)
{
	unsigned long a[4];
	va_list ap;
	int i;

	va_start(ap, option);
	for (i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (fault("dumpable") && option == PR_SET_DUMPABLE) {
		errno = EPERM;
		return -1;
	}
	return (int)syscall(SYS_prctl, option, a[0], a[1], a[2], a[3]);
}

int ioctl(int fd, unsigned long req, ...)
{
	void *arg;
	va_list ap;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (fault("recv") && req == SECCOMP_IOCTL_NOTIF_RECV) {
		errno = EIO;
		return -1;
	}
	return (int)syscall(SYS_ioctl, fd, req, arg);
}
