/*
 * supervise: the seccomp user-notification supervisor of tfguard-run.
 *
 * The child's bind() and listen() calls stop in the kernel and arrive here.
 * The supervisor never lets the child's own syscall continue (the kernel would
 * look the fd number up and read the child's memory again after the check):
 * it takes a duplicate of the calling thread's socket with pidfd_getfd()
 * (proved to be the caller's file with kcmp()), copies the address out of the
 * child once, decides inet binds with policy_decide() (preload/policy.h,
 * shared with the shim), performs the bind/listen on that duplicate with its
 * own copy of the address and answers with the result. Non-inet binds that
 * depend on the caller's identity (AF_UNIX paths, netlink groups) are made by
 * a short-lived helper process with the caller's credentials and directories. Single-threaded; one struct
 * supervise per notification fd.
 */
#ifndef TFG_SUPERVISE_H
#define TFG_SUPERVISE_H

#include <stddef.h>

#include "policy.h"

struct seccomp_notif;
struct seccomp_notif_resp;

struct supervise {
	int sv_fd;
	const struct policy *sv_policy;
	struct seccomp_notif *sv_req;
	struct seccomp_notif_resp *sv_resp;
	unsigned long sv_handled; /* notifications answered */
};

/* Returns 0, or -1 with a reason in err. sv keeps a pointer to pol. */
int supervise_init(struct supervise *sv, int fd, const struct policy *pol, char *err,
		   size_t errlen);
/*
 * Receives and answers one notification (call when sv_fd is readable).
 * Returns 0, or -1 when the notification fd is gone (no task left under it).
 */
int supervise_handle(struct supervise *sv);
void supervise_free(struct supervise *sv);

#endif
