/* test_accesslog: escaping and line formats of the access log, reopen after rotation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"
#include "tap.h"

static char *slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int main(void)
{
	char out[64], err[256], dir[] = "/tmp/tfg-test-alog.XXXXXX", path[128], rot[160];
	struct alog_rec r = { 0 };
	char *s;

	subtest("escaping");
	accesslog_escape(out, sizeof(out), "a\"b\\c\n\x01\xff", 8, 1);
	is_str(out, "a\\\"b\\\\c\\u000a\\u0001\\u00ff",
	       "JSON: quote, backslash, controls, high bytes");
	accesslog_escape(out, sizeof(out), "a\"b\\c\n\xff", 7, 0);
	is_str(out, "a\\x22b\\x5cc\\x0a\\xff", "combined: \\xHH");
	accesslog_escape(out, 6, "abc\"def", 7, 1);
	is_str(out, "abc\\\"", "cut at a whole escape");

	subtest("JSON line, then reopen after a rotation");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/access.log", dir);
	snprintf(rot, sizeof(rot), "%s.1", path);
	ok(accesslog_open(path, CONF_LOG_JSON, err, sizeof(err)) == 0, "open");
	r.ar_start_us = 1700000000123456ull;
	r.ar_dur_us = 1234;
	r.ar_client = "192.0.2.1:5555";
	r.ar_user = "al\"ice";
	r.ar_userlen = 6;
	r.ar_model = "fraud";
	r.ar_modellen = 5;
	r.ar_method = "POST";
	r.ar_methodlen = 4;
	r.ar_path = "/v1/models/fraud:predict";
	r.ar_pathlen = strlen(r.ar_path);
	r.ar_ua = "";
	r.ar_status = 200;
	r.ar_bytes_in = 17;
	r.ar_bytes_out = 99;
	accesslog_write(&r);
	s = slurp(path);
	ok(s && strstr(s, "\"time\":\"2023-11-14T22:13:20.123456Z\""), "time in UTC with µs");
	ok(s && strstr(s, "\"user\":\"al\\\"ice\""), "user escaped");
	ok(s && strstr(s, "\"status\":200,\"bytes_in\":17,\"bytes_out\":99,\"duration_us\":1234"),
	   "status, bytes, duration");
	ok(s && s[strlen(s) - 1] == '\n' && strchr(s, '\n') == s + strlen(s) - 1, "one line");
	if (rename(path, rot) < 0)
		return 1;
	ok(accesslog_reopen(err, sizeof(err)) == 0, "reopen");
	accesslog_write(&r);
	ok(slurp(path) != NULL, "new file created");
	s = slurp(rot);
	ok(s && strchr(s, '\n') == s + strlen(s) - 1, "rotated file got nothing more");
	ok(s && strstr(s, "\"limit\"") == NULL, "no limit field when none refused it");
	r.ar_status = 429;
	r.ar_limit = "user";
	accesslog_write(&r);
	s = slurp(path);
	ok(s && strstr(s, "\"user_agent\":\"\",\"limit\":\"user\"}\n"), "429: the limit named");
	r.ar_status = 200;
	r.ar_limit = NULL;

	subtest("buffered lines: nothing until the flush, then whole lines in order");
	{
		static struct alog_buf ab;
		size_t before = strlen(slurp(path)), i, lines = 0;

		for (i = 0; i < 100; i++)
			accesslog_write_buf(&ab, &r);
		s = slurp(path);
		ok(s != NULL, "file readable");
		ok(ab.ab_len > 0, "lines held in the buffer");
		accesslog_flush(&ab);
		is_int(ab.ab_len, 0, "buffer empty after the flush");
		s = slurp(path);
		for (i = before; s && s[i]; i++)
			lines += s[i] == '\n';
		ok(lines > 0 && s[strlen(s) - 1] == '\n', "whole lines written");
	}
	accesslog_close();

	subtest("combined format");
	unlink(path);
	ok(accesslog_open(path, CONF_LOG_COMBINED, err, sizeof(err)) == 0, "open combined");
	r.ar_client = "[2001:db8::1]:443";
	accesslog_write(&r);
	s = slurp(path);
	ok(s && strncmp(s, "2001:db8::1 - al\\x22ice [", 25) == 0, "host without brackets, user");
	ok(s && strstr(s, "\"POST /v1/models/fraud:predict HTTP/1.1\" 200 99 "),
	   "request, status, bytes");
	ok(s && strstr(s, "model=\"fraud\" bytes_in=17 duration_us=1234\n"), "our fields");
	r.ar_limit = "inflight";
	accesslog_write(&r);
	s = slurp(path);
	ok(s && strstr(s, "duration_us=1234 limit=inflight\n"), "combined: limit= last");
	accesslog_close();
	unlink(path);
	unlink(rot);
	rmdir(dir);
	return done_testing();
}
