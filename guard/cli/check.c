#include "check.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "json.h"

void check_evidence(struct check_control *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->cc_len >= sizeof(c->cc_evidence) - 1)
		return;
	if (c->cc_len)
		c->cc_evidence[c->cc_len++] = '\n';
	va_start(ap, fmt);
	n = vsnprintf(c->cc_evidence + c->cc_len, sizeof(c->cc_evidence) - c->cc_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		c->cc_len += (size_t)n;
	if (c->cc_len >= sizeof(c->cc_evidence))
		c->cc_len = sizeof(c->cc_evidence) - 1;
	c->cc_evidence[c->cc_len] = '\0';
}

const char *check_status_name(enum check_status s)
{
	static const char *names[] = { "pass", "warn", "fail", "skipped" };

	return names[s];
}

size_t check_incomplete(const struct check_control *c, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++)
		k += c[i].cc_mandatory && c[i].cc_status == CHECK_SKIP;
	return k;
}

static const char *check_verdict(const size_t count[4], size_t incomplete)
{
	if (count[CHECK_FAIL])
		return "NOT COMPLIANT";
	return incomplete ? "INCOMPLETE (firewall or listener controls could not run)"
			  : "compliant";
}

void check_print_text(FILE *f, const struct check_control *c, size_t n)
{
	size_t i, count[4] = { 0 };

	for (i = 0; i < n; i++) {
		const char *p = c[i].cc_evidence, *nl;
		static const char *tag[] = { "PASS", "WARN", "FAIL", "SKIP" };

		count[c[i].cc_status]++;
		fprintf(f, "%s  %-7s %s\n", tag[c[i].cc_status], c[i].cc_id, c[i].cc_title);
		while (*p) {
			nl = strchr(p, '\n');
			fprintf(f, "               %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
			if (!nl)
				break;
			p = nl + 1;
		}
		if (c[i].cc_status == CHECK_FAIL || c[i].cc_status == CHECK_WARN)
			fprintf(f, "               -> %s\n", c[i].cc_remedy);
	}
	fprintf(f, "\n%zu controls: %zu pass, %zu warn, %zu fail, %zu skipped: %s\n", n,
		count[CHECK_PASS], count[CHECK_WARN], count[CHECK_FAIL], count[CHECK_SKIP],
		check_verdict(count, check_incomplete(c, n)));
}

static void check_json_lines(FILE *f, const char *s)
{
	const char *nl;
	char line[CHECK_EVIDENCE_MAX];
	bool first = true;

	fputc('[', f);
	while (*s) {
		nl = strchr(s, '\n');
		snprintf(line, sizeof(line), "%.*s", nl ? (int)(nl - s) : (int)strlen(s), s);
		if (!first)
			fputc(',', f);
		json_put_str(f, line);
		first = false;
		if (!nl)
			break;
		s = nl + 1;
	}
	fputc(']', f);
}

void check_print_json(FILE *f, const struct check_control *c, size_t n)
{
	size_t i, count[4] = { 0 };

	for (i = 0; i < n; i++)
		count[c[i].cc_status]++;
	fprintf(f, "{\"tool\":\"tfguard\",\"version\":\"%s\",\"compliant\":%s,\"complete\":%s,",
		TFG_VERSION, count[CHECK_FAIL] || check_incomplete(c, n) ? "false" : "true",
		check_incomplete(c, n) ? "false" : "true");
	fprintf(f, "\"summary\":{\"pass\":%zu,\"warn\":%zu,\"fail\":%zu,\"skipped\":%zu},",
		count[CHECK_PASS], count[CHECK_WARN], count[CHECK_FAIL], count[CHECK_SKIP]);
	fputs("\"controls\":[", f);
	for (i = 0; i < n; i++) {
		fprintf(f, "%s{\"id\":\"%s\",\"title\":", i ? "," : "", c[i].cc_id);
		json_put_str(f, c[i].cc_title);
		fprintf(f, ",\"status\":\"%s\",\"evidence\":", check_status_name(c[i].cc_status));
		check_json_lines(f, c[i].cc_evidence);
		fputs(",\"remediation\":", f);
		json_put_str(f, c[i].cc_remedy);
		fputc('}', f);
	}
	fputs("]}\n", f);
}

static void check_xml(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			/* XML 1.0 forbids most control characters even when escaped, and the
			 * file says UTF-8: bytes from processes and files may not be */
			fputc(((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t') ||
				      (unsigned char)*s >= 0x7f
				  ? '?'
				  : *s,
			      f);
		}
	}
}

int check_write_junit(const char *path, const struct check_control *c, size_t n)
{
	size_t i, fails = 0, skips = 0;
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	for (i = 0; i < n; i++) {
		fails += c[i].cc_status == CHECK_FAIL;
		skips += c[i].cc_status == CHECK_SKIP;
	}
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<testsuites>\n<testsuite name=\"tfguard check\" tests=\"%zu\" failures=\"%zu\" "
		"skipped=\"%zu\">\n",
		n, fails, skips);
	for (i = 0; i < n; i++) {
		fputs("  <testcase classname=\"tfguard\" name=\"", f);
		check_xml(f, c[i].cc_id);
		fputs(" ", f);
		check_xml(f, c[i].cc_title);
		fputs("\">\n", f);
		if (c[i].cc_status == CHECK_FAIL) {
			fputs("    <failure message=\"", f);
			check_xml(f, c[i].cc_remedy);
			fputs("\">", f);
			check_xml(f, c[i].cc_evidence);
			fputs("</failure>\n", f);
		} else if (c[i].cc_status == CHECK_SKIP) {
			fputs("    <skipped message=\"", f);
			check_xml(f, c[i].cc_evidence);
			fputs("\"/>\n", f);
		}
		fputs("    <system-out>", f);
		check_xml(f, c[i].cc_evidence);
		fputs("</system-out>\n  </testcase>\n", f);
	}
	fputs("</testsuite>\n</testsuites>\n", f);
	return fclose(f) == 0 ? 0 : -1;
}
