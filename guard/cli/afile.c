/*
 * afile: small files the CLI rewrites (htpasswd, tokens): read whole, replaced
 * atomically (temporary file in the same directory, fsync, rename, fsync of the
 * directory) with mode and owner kept, under an exclusive lock on FILE.lock so that
 * concurrent runs lose nothing. Not reentrant (err(3)-style callers).
 */
#include "afile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "conf.h"

#define AFILE_MAX (16u << 20)

int afile_lock(const char *path, char *lock, size_t locklen)
{
	int fd;

	snprintf(lock, locklen, "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Reads the whole file into a NUL-terminated buffer; *st gets its metadata.
 * A missing file is an empty buffer with *exists = false. */
char *afile_read(const char *path, struct stat *st, bool *exists)
{
	char *buf;
	size_t len = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	*exists = fd >= 0;
	if (fd < 0) {
		if (errno != ENOENT)
			return NULL;
		return calloc(1, 1);
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_size > AFILE_MAX ||
	    !(buf = malloc((size_t)st->st_size + 1))) {
		close(fd);
		errno = errno ? errno : EFBIG;
		return NULL;
	}
	while (len < (size_t)st->st_size) {
		r = read(fd, buf + len, (size_t)st->st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	/* a short read would write a truncated file back: refuse instead */
	if (len != (size_t)st->st_size) {
		explicit_bzero(buf, len);
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[len] = '\0';
	return buf;
}

/* Writes the new content next to path and renames it over path. */
int afile_replace(const char *path, const char *content, size_t len, const struct stat *st,
		  bool exists, gid_t new_gid)
{
	char tmp[CONF_PATH_MAX + 16], dir[CONF_PATH_MAX];
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (exists) {
		struct stat now;

		/* owner and group, or at least the group (a group member editing a
		 * root:tfguard file), and then check: a file the proxy can no longer
		 * read would lock everybody out */
		if (fchown(fd, st->st_uid, st->st_gid) < 0 &&
		    fchown(fd, (uid_t)-1, st->st_gid) < 0 && errno != EPERM)
			goto fail;
		if (fstat(fd, &now) < 0 || now.st_uid != st->st_uid || now.st_gid != st->st_gid) {
			errno = EPERM;
			goto fail;
		}
		if (fchmod(fd, st->st_mode & 07777) < 0)
			goto fail;
	} else {
		/* new file: readable by the proxy user's group, never by others */
		if (new_gid != (gid_t)-1 && fchown(fd, (uid_t)-1, new_gid) < 0 && errno != EPERM)
			goto fail;
		if (fchmod(fd, 0640) < 0)
			goto fail;
	}
	while (len > 0) {
		ssize_t w = write(fd, content, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		content += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	/* the rename itself must survive a crash too */
	snprintf(dir, sizeof(dir), "%s", path);
	dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}
