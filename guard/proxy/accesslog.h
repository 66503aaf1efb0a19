/*
 * accesslog: one line per request, JSON lines or the combined log format.
 *
 * Process-wide: one file descriptor shared by every worker. Each line is written
 * with one write(2) on an O_APPEND descriptor, so lines from different workers
 * never interleave. accesslog_reopen() (SIGUSR1, after logrotate moved the file)
 * opens the path again and dup2()s it over the old descriptor, so a worker
 * writing at that moment lands in the old or the new file, never elsewhere.
 * Every client-controlled string is escaped.
 */
#ifndef TFG_ACCESSLOG_H
#define TFG_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

struct alog_rec {
	uint64_t ar_start_us; /* wall clock, µs since the epoch */
	uint64_t ar_dur_us;
	const char *ar_client; /* "1.2.3.4:5678" */
	const char *ar_user;   /* "" before authentication */
	size_t ar_userlen;
	const char *ar_model; /* "" when none */
	size_t ar_modellen;
	const char *ar_method;
	size_t ar_methodlen;
	const char *ar_path;
	size_t ar_pathlen;
	const char *ar_ua;
	size_t ar_ualen;
	int ar_status;
	uint64_t ar_bytes_in;  /* request body bytes */
	uint64_t ar_bytes_out; /* response bytes (head + body) */
	const char *ar_limit;  /* the [limits] limit that refused it ("user"...), or NULL */
};

/*
 * A worker's line buffer: lines are formatted into it and written out with one write(2)
 * per event-loop iteration (accesslog_flush from the loop's prepare hook) or when it is
 * nearly full, so the log costs one syscall per batch of requests, not one per request.
 * Lines stay whole: a flush writes complete lines only.
 */
#define ACCESSLOG_LINE_MAX 4096
#define ACCESSLOG_BUF	   (64u << 10)
struct alog_buf {
	size_t ab_len;
	char ab_data[ACCESSLOG_BUF];
};

/* path "" = no log, "-" = stderr. Returns 0 or -1 with a message in err. */
int accesslog_open(const char *path, enum conf_log_format fmt, char *err, size_t errlen);
int accesslog_reopen(char *err, size_t errlen);
void accesslog_close(void);
/* Writes one line at once (unbuffered). */
void accesslog_write(const struct alog_rec *r);
/* Appends one line to ab, flushing it first when it might not fit. */
void accesslog_write_buf(struct alog_buf *ab, const struct alog_rec *r);
/* Writes out what ab holds (a no-op when empty). */
void accesslog_flush(struct alog_buf *ab);
/*
 * Escapes n bytes of s into dst (JSON string rules when json, else \xHH for
 * quotes, backslashes, controls and non-ASCII). Always NUL-terminates; returns
 * the length written (cut at a whole escape when dst is too small).
 */
size_t accesslog_escape(char *dst, size_t dstlen, const char *s, size_t n, int json);

#endif
