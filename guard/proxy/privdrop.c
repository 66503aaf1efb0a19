/*
 * privdrop: setgroups/setresgid/setresuid and proof that root is gone. See privdrop.h.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	char buf[4096];
	struct passwd pw, *res = NULL;
	int e = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

	if (res == NULL) {
		snprintf(err, errlen, "user %s: %s (create it, or set [proxy] user)", user,
			 e ? strerror(e) : "no such user");
		return -1;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen,
			 "user %s: has uid 0 (set [proxy] user to an unprivileged user)", user);
		return -1;
	}
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int privdrop_to(const char *user, char *err, size_t errlen)
{
	uid_t uid, ruid, euid, suid;
	gid_t gid, rgid, egid, sgid;

	if (geteuid() != 0)
		return 0;
	if (privdrop_lookup(user, &uid, &gid, err, errlen) < 0)
		return -1;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "user %s: cannot switch to it: %s", user, strerror(errno));
		return -1;
	}
	/* Prove it: every id is the target and root cannot be taken back. */
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
	    ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid ||
	    sgid != gid) {
		snprintf(err, errlen, "user %s: ids did not change as asked", user);
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || setegid(0) == 0) {
		snprintf(err, errlen, "user %s: root could be regained after dropping it", user);
		return -1;
	}
	return 1;
}
