/*
 * sandbox: the seccomp filter tfguard-run loads into the child before exec.
 *
 * bind and listen go to the supervisor (user notification); io_uring and raw /
 * packet sockets are denied with EPERM; foreign architectures (ia32 socketcall,
 * x32) kill the process (libseccomp's default bad-arch action). The filter is
 * inherited by every descendant and cannot be removed. Not reentrant: call it
 * once, in the child, after fork.
 */
#ifndef TFG_SANDBOX_H
#define TFG_SANDBOX_H

#include <stddef.h>

/*
 * Sets no_new_privs and loads the filter into the calling process. Returns the
 * notification fd (close-on-exec), or -1 with one line in err (nothing loaded
 * or the process must not exec: the caller exits).
 */
int sandbox_load(char *err, size_t errlen);

#endif
