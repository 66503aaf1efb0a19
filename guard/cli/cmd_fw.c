/* The firewall commands: apply, remove, status, print. */
#include <err.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fw.h"
#include "json.h"
#include "str.h"

#define CMD_ERR_MAX 512

/*
 * Parses the command's options: only --help everywhere, plus --json for status.
 * Returns -1 to go on, or an exit code.
 */
static int cmd_options(int argc, char **argv, const char *usage, bool *json)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
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

int cmd_apply(struct conf *conf, int argc, char **argv)
{
	char err[CMD_ERR_MAX], ports[PORTS_MAX * 7];
	struct fw_policy p;
	struct fw_batch *b;
	int rc;

	if ((rc = cmd_options(argc, argv, "apply", NULL)) >= 0)
		return rc;
	if (!conf->c_found)
		warnx("%s not found: applying the built-in defaults (use -c to name a config)",
		      conf->c_path);
	fw_policy_from_conf(&p, conf);
	b = fw_batch_build(&p, FW_OP_APPLY, cmd_fault_at(), err, sizeof(err));
	if (!b) {
		warnx("apply: %s (nothing was changed)", err);
		return EXIT_ERR;
	}
	rc = fw_batch_send(b, err, sizeof(err));
	fw_batch_free(b);
	if (rc < 0) {
		warnx("apply: %s", err);
		return EXIT_ERR;
	}
	printf("tfguard: table inet %s applied: TCP ports %s reachable from loopback only%s%s "
	       "(policy %s)\n",
	       FW_TABLE, ports_format(&p.fp_ports, ports, sizeof(ports)),
	       p.fp_log ? ", drops logged" : "", p.fp_strict ? ", strict forwarding" : "",
	       p.fp_digest);
	return EXIT_OK;
}

int cmd_remove(struct conf *conf, int argc, char **argv)
{
	char err[CMD_ERR_MAX];
	struct fw_policy p;
	struct fw_state st;
	struct fw_batch *b;
	int rc;

	if ((rc = cmd_options(argc, argv, "remove", NULL)) >= 0)
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
	b = fw_batch_build(&p, FW_OP_REMOVE, 0, err, sizeof(err));
	if (!b) {
		warnx("remove: %s (nothing was changed)", err);
		return EXIT_ERR;
	}
	rc = fw_batch_send(b, err, sizeof(err));
	fw_batch_free(b);
	if (rc < 0) {
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

	if ((rc = cmd_options(argc, argv, "status [--json]", &json)) >= 0)
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

	if ((rc = cmd_options(argc, argv, "print", NULL)) >= 0)
		return rc;
	fw_policy_from_conf(&p, conf);
	if (fw_print(&p, stdout) < 0) {
		warn("print: writing the policy");
		return EXIT_ERR;
	}
	return EXIT_OK;
}
