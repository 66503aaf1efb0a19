/* The firewall commands: apply, remove, status, print. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fw.h"
#include "json.h"
#include "str.h"

#define CMD_ERR_MAX	512
#define CMD_APPLY_USAGE "apply [--fallback]"

/*
 * Parses the command's options: only --help everywhere, plus --json for status
 * and --fallback for apply. Returns -1 to go on, or an exit code.
 */
static int cmd_options(int argc, char **argv, const char *usage, bool *json, bool *fallback)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ "fallback", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (ch == 'h') {
			printf("usage: tfguard [-c CONF] %s\n", usage);
			return EXIT_OK;
		}
		if (ch == 'j' && json) {
			*json = true;
			continue;
		}
		if (ch == 'F' && fallback) {
			*fallback = true;
			continue;
		}
		fprintf(stderr, "usage: tfguard [-c CONF] %s\n", usage);
		return EXIT_USAGE;
	}
	if (optind < argc) {
		warnx("%s: unexpected argument '%s'", argv[0], argv[optind]);
		return EXIT_USAGE;
	}
	return -1;
}

/* TFGUARD_TEST_FAULT=N makes apply add a rule the kernel refuses after N
 * objects: it can only make apply fail, which the rollback tests need. */
static unsigned cmd_fault_at(void)
{
	const char *s = getenv("TFGUARD_TEST_FAULT");
	uint64_t v;

	if (!s || str_to_u64(s, 100, &v) < 0)
		return 0;
	return (unsigned)v;
}

/* Builds and sends one batch. Returns 0, or -1 with the reason in err and the
 * kernel's errno in errno (EEXIST: FW_OP_CREATE found the table). */
static int cmd_fw_send(const struct fw_policy *p, enum fw_op op, char *err, size_t errlen)
{
	struct fw_batch *b;
	int rc, saved;
	size_t n;

	b = fw_batch_build(p, op, op == FW_OP_REMOVE ? 0 : cmd_fault_at(), err, errlen);
	if (!b) {
		n = strlen(err);
		snprintf(err + n, errlen - n, " (nothing was changed)");
		errno = 0;
		return -1;
	}
	rc = fw_batch_send(b, err, errlen);
	saved = errno;
	fw_batch_free(b);
	errno = saved;
	return rc;
}

/* "TCP ports 8500, 8501 reachable from loopback only, drops logged" */
static const char *cmd_policy_text(const struct fw_policy *p, char *out, size_t outlen)
{
	char ports[PORTS_MAX * 7];

	snprintf(out, outlen, "TCP ports %s reachable from loopback only%s%s",
		 ports_format(&p->fp_ports, ports, sizeof(ports)),
		 p->fp_log ? ", drops logged" : "", p->fp_strict ? ", strict forwarding" : "");
	return out;
}

int cmd_apply(struct conf *conf, int argc, char **argv)
{
	char err[CMD_ERR_MAX], text[PORTS_MAX * 7 + 96];
	bool fallback = false;
	struct fw_policy p;
	int rc;

	/* --fallback only matters when the config cannot be loaded (cmd_apply_noconf) */
	if ((rc = cmd_options(argc, argv, CMD_APPLY_USAGE, NULL, &fallback)) >= 0)
		return rc;
	if (!conf->c_found)
		warnx("%s not found: applying the built-in defaults (use -c to name a config)",
		      conf->c_path);
	fw_policy_from_conf(&p, conf);
	if (cmd_fw_send(&p, FW_OP_APPLY, err, sizeof(err)) < 0) {
		warnx("apply: %s", err);
		return EXIT_ERR;
	}
	printf("tfguard: table inet %s applied: %s (policy %s)\n", FW_TABLE,
	       cmd_policy_text(&p, text, sizeof(text)), p.fp_digest);
	return EXIT_OK;
}

/* Is the line s[0..n) a section header? *guard: it is [guard]. Mirrors conf.c:
 * a '#' at the start or after white space starts a comment. */
static bool cmd_section_header(const char *s, size_t n, bool *guard)
{
	char line[CONF_LINE_MAX + 1], *p, *e;
	size_t len;

	*guard = false;
	if (n > CONF_LINE_MAX)
		return false;
	memcpy(line, s, n);
	line[n] = '\0';
	p = line + strspn(line, " \t");
	if (*p != '[')
		return false;
	for (e = p + 1; *e; e++)
		if (*e == '#' && (e[-1] == ' ' || e[-1] == '\t')) {
			*e = '\0';
			break;
		}
	p = str_trim(p);
	len = strlen(p);
	if (len > 0 && p[len - 1] == '\r') /* CRLF */
		p[--len] = '\0';
	if (len >= 2 && p[len - 1] == ']') {
		p[len - 1] = '\0';
		*guard = strcmp(str_trim(p + 1), "guard") == 0;
	}
	return true; /* a broken header ends [guard] all the same */
}

/* whether cmd_keep_guard() saw a [guard] header (a misspelled one keeps nothing) */
static bool cmd_saw_guard;

/* conf_load_filter(): keeps the [guard] section(s) alone. Every other line is
 * blanked (spaces), so line numbers in messages stay right. */
static void cmd_keep_guard(char *buf, size_t len)
{
	bool in_guard = false, guard;
	size_t off, n;

	cmd_saw_guard = false;
	for (off = 0; off < len; off += n + 1) {
		char *nl = memchr(buf + off, '\n', len - off);

		n = nl ? (size_t)(nl - (buf + off)) : len - off;
		if (cmd_section_header(buf + off, n, &guard)) {
			in_guard = guard;
			cmd_saw_guard |= guard;
		}
		if (!in_guard)
			memset(buf + off, ' ', n);
	}
}

/*
 * apply when the config cannot be loaded. Plain apply: the error, exit 1,
 * nothing changed. apply --fallback (the boot unit): if no table inet tfguard
 * is installed, install the policy of the config's [guard] section alone (or
 * of the built-in defaults when that is not valid either), so that a typo in
 * [proxy] does not leave the ports open after a reboot; a table that is
 * installed stays untouched. Always exit 1, with a message naming FILE:LINE
 * and what was installed.
 */
int cmd_apply_noconf(const char *path, const char *why, int argc, char **argv)
{
	char err[CMD_ERR_MAX], gerr[CONF_ERR_MAX], text[PORTS_MAX * 7 + 96];
	char source[CONF_ERR_MAX + 96];
	bool fallback = false;
	struct fw_policy p;
	struct fw_state st;
	struct conf c;
	int rc;

	if ((rc = cmd_options(argc, argv, CMD_APPLY_USAGE, NULL, &fallback)) >= 0)
		return rc;
	if (!fallback) {
		warnx("%s (nothing was changed)", why);
		return EXIT_ERR;
	}
	warnx("%s", why);
	if (fw_read(NULL, &st, err, sizeof(err)) < 0) {
		warnx("apply --fallback: the config could not be loaded, and %s (nothing was "
		      "changed)",
		      err);
		return EXIT_ERR;
	}
	if (st.fs_present) {
		warnx("apply --fallback: the config could not be loaded; the installed table inet "
		      "%s stays as it is (nothing was changed). Fix the config, then run: tfguard "
		      "apply",
		      FW_TABLE);
		return EXIT_ERR;
	}
	if (!path)
		path = CONF_DEFAULT_PATH;
	if (conf_load_filter(&c, path, cmd_keep_guard, gerr, sizeof(gerr)) == 0) {
		if (cmd_saw_guard)
			snprintf(source, sizeof(source), "the [guard] section of %s alone", path);
		else
			snprintf(source, sizeof(source),
				 "the built-in defaults, as %s has no [guard] section", path);
	} else {
		conf_defaults(&c);
		snprintf(source, sizeof(source),
			 "the built-in defaults, as [guard] is not usable either: %s", gerr);
	}
	fw_policy_from_conf(&p, &c);
	conf_free(&c);
	rc = cmd_fw_send(&p, FW_OP_CREATE, err, sizeof(err));
	if (rc < 0 && errno == EEXIST) {
		warnx("apply --fallback: a table inet %s appeared meanwhile and stays as it is "
		      "(nothing was changed). Fix the config, then run: tfguard apply",
		      FW_TABLE);
		return EXIT_ERR;
	}
	if (rc < 0) {
		warnx("apply --fallback: %s: NO tfguard FIREWALL IS INSTALLED", err);
		return EXIT_ERR;
	}
	warnx("apply --fallback: FALLBACK POLICY INSTALLED: no table inet %s was installed and "
	      "the config could not be loaded, so table inet %s now has %s, from %s (policy %s). "
	      "Fix the config, then run: tfguard apply",
	      FW_TABLE, FW_TABLE, cmd_policy_text(&p, text, sizeof(text)), source, p.fp_digest);
	return EXIT_ERR;
}

int cmd_remove(struct conf *conf, int argc, char **argv)
{
	char err[CMD_ERR_MAX];
	struct fw_policy p;
	struct fw_state st;
	int rc;

	if ((rc = cmd_options(argc, argv, "remove", NULL, NULL)) >= 0)
		return rc;
	if (fw_read(NULL, &st, err, sizeof(err)) < 0) {
		warnx("remove: %s", err);
		return EXIT_ERR;
	}
	if (!st.fs_present) {
		printf("tfguard: no table inet %s in this network namespace, nothing to remove\n",
		       FW_TABLE);
		return EXIT_OK;
	}
	fw_policy_from_conf(&p, conf);
	if (cmd_fw_send(&p, FW_OP_REMOVE, err, sizeof(err)) < 0) {
		warnx("remove: %s", err);
		return EXIT_ERR;
	}
	printf("tfguard: table inet %s removed: protected ports are reachable again\n", FW_TABLE);
	return EXIT_OK;
}

static void cmd_status_json(const struct fw_policy *p, const struct fw_state *st, bool current)
{
	char ports[PORTS_MAX * 7];
	size_t i;

	printf("{\"table\":\"inet %s\",\"installed\":%s,\"current\":%s,", FW_TABLE,
	       st->fs_present ? "true" : "false", current ? "true" : "false");
	printf("\"policy_digest\":\"%s\",\"installed_digest\":", p->fp_digest);
	json_put_str(stdout, st->fs_digest);
	printf(",\"installed_comment\":");
	json_put_str(stdout, st->fs_comment);
	printf(",\"rules_match\":%s,\"problem\":",
	       st->fs_present && st->fs_match ? "true" : "false");
	json_put_str(stdout, !st->fs_present ? "not installed"
			     : current	     ? ""
			     : !st->fs_match ? st->fs_mismatch
					     : "installed for another policy (digest differs)");
	printf(",\"config_ports\":[%s],\"installed_ports\":[",
	       ports_format(&p->fp_ports, ports, sizeof(ports)));
	for (i = 0; i < st->fs_ports.p_count; i++)
		printf("%s%u", i ? "," : "", st->fs_ports.p_port[i]);
	printf("],\"genid\":%" PRIu32 ",\"rules\":[", st->fs_genid);
	for (i = 0; i < st->fs_nrules; i++) {
		const struct fw_rule_state *r = &st->fs_rules[i];

		printf("%s{\"chain\":", i ? "," : "");
		json_put_str(stdout, r->rs_chain);
		printf(",\"comment\":");
		json_put_str(stdout, r->rs_comment);
		printf(",\"verdict\":\"%s\"", r->rs_verdict);
		if (r->rs_counter)
			printf(",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64, r->rs_packets,
			       r->rs_bytes);
		printf("}");
	}
	printf("]}\n");
}

static void cmd_status_text(const struct fw_policy *p, const struct fw_state *st, bool current)
{
	char ports[PORTS_MAX * 7];
	size_t i;

	if (!st->fs_present) {
		printf("tfguard firewall: NOT INSTALLED in this network namespace "
		       "(run: tfguard apply)\n");
		return;
	}
	if (current)
		printf("tfguard firewall: installed and current (policy %s)\n", p->fp_digest);
	else if (!st->fs_match)
		printf("tfguard firewall: installed but STALE: %s (run: tfguard apply)\n",
		       st->fs_mismatch);
	else
		printf("tfguard firewall: installed but STALE: installed policy %s, config says "
		       "%s (run: tfguard apply)\n",
		       st->fs_digest[0] ? st->fs_digest : "(none)", p->fp_digest);
	printf("protected ports: %s\n", ports_format(&st->fs_ports, ports, sizeof(ports)));
	printf("rules:\n");
	for (i = 0; i < st->fs_nrules; i++) {
		const struct fw_rule_state *r = &st->fs_rules[i];

		printf("  %-10s %-7s %-48s", r->rs_chain, r->rs_verdict, r->rs_comment);
		if (r->rs_counter)
			printf(" %" PRIu64 " packets, %" PRIu64 " bytes", r->rs_packets,
			       r->rs_bytes);
		printf("\n");
	}
}

int cmd_status(struct conf *conf, int argc, char **argv)
{
	char err[CMD_ERR_MAX];
	struct fw_policy p;
	struct fw_state st;
	bool json = false, current;
	int rc;

	if ((rc = cmd_options(argc, argv, "status [--json]", &json, NULL)) >= 0)
		return rc;
	fw_policy_from_conf(&p, conf);
	if (fw_read(&p, &st, err, sizeof(err)) < 0) {
		warnx("status: %s", err);
		return EXIT_ERR;
	}
	current = st.fs_present && st.fs_match && strcmp(st.fs_digest, p.fp_digest) == 0;
	if (json)
		cmd_status_json(&p, &st, current);
	else
		cmd_status_text(&p, &st, current);
	return current ? EXIT_OK : EXIT_NONCOMPLIANT;
}

int cmd_print(struct conf *conf, int argc, char **argv)
{
	struct fw_policy p;
	int rc;

	if ((rc = cmd_options(argc, argv, "print", NULL, NULL)) >= 0)
		return rc;
	fw_policy_from_conf(&p, conf);
	if (fw_print(&p, stdout) < 0) {
		warn("print: writing the policy");
		return EXIT_ERR;
	}
	return EXIT_OK;
}
