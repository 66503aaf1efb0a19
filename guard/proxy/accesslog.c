/*
 * accesslog: request log lines. See accesslog.h.
 */
#include "accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "str.h"

static atomic_int alog_fd = -1;
static enum conf_log_format alog_fmt;
static char alog_path[CONF_PATH_MAX];

static int alog_openfile(const char *path, char *err, size_t errlen)
{
	int fd;

	if (strcmp(path, "-") == 0) {
		fd = dup(STDERR_FILENO);
		if (fd < 0)
			snprintf(err, errlen, "access log: cannot dup stderr: %s", strerror(errno));
		return fd;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		snprintf(err, errlen, "%s: cannot open the access log: %s (check access_log)", path,
			 strerror(errno));
	return fd;
}

int accesslog_open(const char *path, enum conf_log_format fmt, char *err, size_t errlen)
{
	int fd;

	alog_fmt = fmt;
	if (str_copy(alog_path, sizeof(alog_path), path) < 0) {
		snprintf(err, errlen, "access log: path too long");
		return -1;
	}
	if (path[0] == '\0')
		return 0;
	fd = alog_openfile(path, err, errlen);
	if (fd < 0)
		return -1;
	atomic_store(&alog_fd, fd);
	return 0;
}

int accesslog_reopen(char *err, size_t errlen)
{
	int fd, old = atomic_load(&alog_fd);

	if (alog_path[0] == '\0' || strcmp(alog_path, "-") == 0 || old < 0)
		return 0;
	fd = alog_openfile(alog_path, err, errlen);
	if (fd < 0)
		return -1;
	/* dup2 swaps the file under the number atomically: writers never see a closed fd. */
	if (dup2(fd, old) < 0) {
		snprintf(err, errlen, "%s: cannot reopen the access log: %s", alog_path,
			 strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

void accesslog_close(void)
{
	int fd = atomic_exchange(&alog_fd, -1);

	if (fd >= 0)
		close(fd);
}

size_t accesslog_escape(char *dst, size_t dstlen, const char *s, size_t n, int json)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (dstlen == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[8];
		size_t k = 0;

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			e[k++] = (char)c;
		} else if (json && (c == '"' || c == '\\')) {
			e[k++] = '\\';
			e[k++] = (char)c;
		} else if (json) {
			/* Bytes, not characters: a non-UTF-8 user name must still be one valid line. */
			memcpy(e, "\\u00", 4);
			k = 4;
			e[k++] = hex[c >> 4];
			e[k++] = hex[c & 15];
		} else {
			e[k++] = '\\';
			e[k++] = 'x';
			e[k++] = hex[c >> 4];
			e[k++] = hex[c & 15];
		}
		if (o + k >= dstlen)
			break;
		memcpy(dst + o, e, k);
		o += k;
	}
	dst[o] = '\0';
	return o;
}

/* Formats r into line (ACCESSLOG_LINE_MAX bytes); returns the length, 0 if logging is off. */
static size_t alog_format(char *line, const struct alog_rec *r)
{
	/* 4 KiB per line: a long path is cut (escaped) rather than split. */
	char user[192], model[384], path[2048], method[48], ua[512], ts[40];
	int fd = atomic_load_explicit(&alog_fd, memory_order_relaxed), n;
	time_t sec = (time_t)(r->ar_start_us / 1000000u);
	struct tm tm;
	int json = alog_fmt == CONF_LOG_JSON;

	if (fd < 0)
		return 0;
	accesslog_escape(user, sizeof(user), r->ar_user, r->ar_userlen, json);
	accesslog_escape(model, sizeof(model), r->ar_model, r->ar_modellen, json);
	accesslog_escape(path, sizeof(path), r->ar_path, r->ar_pathlen, json);
	accesslog_escape(method, sizeof(method), r->ar_method, r->ar_methodlen, json);
	accesslog_escape(ua, sizeof(ua), r->ar_ua, r->ar_ualen, json);
	if (json) {
		gmtime_r(&sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, ACCESSLOG_LINE_MAX,
			     "{\"time\":\"%s.%06uZ\",\"client\":\"%s\",\"user\":\"%s\","
			     "\"model\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,"
			     "\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_us\":%llu,"
			     "\"user_agent\":\"%s\"%s%s%s}\n",
			     ts, (unsigned)(r->ar_start_us % 1000000u), r->ar_client, user, model,
			     method, path, r->ar_status, (unsigned long long)r->ar_bytes_in,
			     (unsigned long long)r->ar_bytes_out, (unsigned long long)r->ar_dur_us,
			     ua, r->ar_limit ? ",\"limit\":\"" : "", r->ar_limit ? r->ar_limit : "",
			     r->ar_limit ? "\"" : "");
	} else {
		/*
		 * Combined log format, then three fields of ours: model, bytes in, µs.
		 * "-" for an empty user, as Apache and nginx write it.
		 */
		char host[64];
		const char *colon;
		size_t hl;

		colon = strrchr(r->ar_client, ':');
		hl = colon ? (size_t)(colon - r->ar_client) : strlen(r->ar_client);
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, r->ar_client, hl);
		host[hl] = '\0';
		if (host[0] == '[' && hl > 1 && host[hl - 1] == ']') {
			memmove(host, host + 1, hl - 2);
			host[hl - 2] = '\0';
		}
		localtime_r(&sec, &tm);
		strftime(ts, sizeof(ts), "%d/%b/%Y:%H:%M:%S %z", &tm);
		n = snprintf(line, ACCESSLOG_LINE_MAX,
			     "%s - %s [%s] \"%s %s HTTP/1.1\" %d %llu \"-\" \"%s\" model=\"%s\" "
			     "bytes_in=%llu duration_us=%llu%s%s\n",
			     host, user[0] ? user : "-", ts, method, path, r->ar_status,
			     (unsigned long long)r->ar_bytes_out, ua, model,
			     (unsigned long long)r->ar_bytes_in, (unsigned long long)r->ar_dur_us,
			     r->ar_limit ? " limit=" : "", r->ar_limit ? r->ar_limit : "");
	}
	if (n < 0)
		return 0;
	if ((size_t)n >= ACCESSLOG_LINE_MAX) {
		n = ACCESSLOG_LINE_MAX - 1;
		line[n - 1] = '\n';
	}
	return (size_t)n;
}

static void alog_out(const char *p, size_t n)
{
	int fd = atomic_load_explicit(&alog_fd, memory_order_relaxed);

	/* One write on an O_APPEND descriptor: lines of different workers never interleave.
	 * A full disk must not stop the proxy; the metrics still count. */
	if (fd >= 0 && n > 0 && write(fd, p, n) < 0)
		return;
}

void accesslog_write(const struct alog_rec *r)
{
	char line[ACCESSLOG_LINE_MAX];

	alog_out(line, alog_format(line, r));
}

void accesslog_flush(struct alog_buf *ab)
{
	alog_out(ab->ab_data, ab->ab_len);
	ab->ab_len = 0;
}

void accesslog_write_buf(struct alog_buf *ab, const struct alog_rec *r)
{
	if (sizeof(ab->ab_data) - ab->ab_len < ACCESSLOG_LINE_MAX)
		accesslog_flush(ab);
	ab->ab_len += alog_format(ab->ab_data + ab->ab_len, r);
}
