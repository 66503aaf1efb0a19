/*
 * afile: small files the CLI rewrites (htpasswd, tokens): read whole, replaced
 * atomically (temporary file in the same directory, fsync, rename, fsync of the
 * directory) with mode and owner kept, under an exclusive lock on FILE.lock so that
 * concurrent runs lose nothing. Not reentrant (err(3)-style callers).
 */
#ifndef TFG_AFILE_H
#define TFG_AFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Takes an exclusive flock on path.lock (its name into lock). The fd, or -1 (errno). */
int afile_lock(const char *path, char *lock, size_t locklen);
/*
 * Reads the whole file (at most 16 MiB) into a NUL-terminated malloc'd buffer; *st gets
 * its metadata. A missing file is an empty buffer with *exists = false. NULL on error
 * (errno). The caller wipes (if secret) and frees it.
 */
char *afile_read(const char *path, struct stat *st, bool *exists);
/*
 * Replaces path with content: same owner, group and mode as *st when it existed (else
 * mode 0640 and group new_gid unless (gid_t)-1). Returns 0, or -1 with errno (EPERM:
 * the owner could not be kept) and path unchanged.
 */
int afile_replace(const char *path, const char *content, size_t len, const struct stat *st,
		  bool exists, gid_t new_gid);

#endif
