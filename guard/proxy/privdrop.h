/*
 * privdrop: leave root for good after the privileged start-up work.
 *
 * privdrop_to() is called once, from the main thread, before any worker thread
 * exists: setgroups(0), setresgid, setresuid to the configured user, then it
 * checks that neither the uid nor the gid 0 can be regained. Not reentrant.
 */
#ifndef TFG_PRIVDROP_H
#define TFG_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * When running as root, switches to user. Returns 1 when privileges were dropped,
 * 0 when not root (nothing to do), -1 with a message in err.
 */
int privdrop_to(const char *user, char *err, size_t errlen);
/*
 * Installs a seccomp filter (PR_SET_NO_NEW_PRIVS first) for the rest of the process's
 * life: no exec, no new processes (threads only), no ptrace, no namespace, mount,
 * module, bpf, io_uring or keyring calls, no uid/gid changes and no x32 syscall numbers.
 * Everything else is allowed (a deny-list: the proxy's own needs are OpenSSL's and
 * glibc's, which vary).
 * Call from the main thread before any other thread exists: threads inherit it.
 * Returns 0 or -1 with a message in err.
 */
int privdrop_lockdown(char *err, size_t errlen);
/*
 * No core dumps and no ptrace/proc-mem access by other processes of the same user
 * (PR_SET_DUMPABLE 0, RLIMIT_CORE 0): the process holds the TLS key and, briefly,
 * passwords. A drop from root does this by itself; a proxy started as its service user
 * needs it said. keep_dumpable = true leaves PR_SET_DUMPABLE alone (sanitizer builds:
 * LeakSanitizer ptraces the process).
 * Returns 0 or -1 with a message in err.
 */
int privdrop_nodump(bool keep_dumpable, char *err, size_t errlen);
/* Looks user up: 0 with uid/gid, or -1 with a message in err. */
int privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);

#endif
