/* tfguard: firewall, audit and credential commands (see `tfguard --help`). */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "conf.h"
#include "log.h"

/*
 * One table drives both --help and dispatch, so the help cannot drift. The
 * fifth field lists every option of the command that takes a value: keep it
 * in step with the command's getopt table, or `-c` after such an option would
 * be taken for the config (`token new -m -c bob`: "-c" is the comment).
 */
static const struct cmd cmds[] = {
	{ "apply", cmd_apply, "[--fallback]",
	  "program the firewall: protected ports reachable from loopback only", "",
	  cmd_apply_noconf },
	{ "remove", cmd_remove, "", "delete the tfguard firewall table (idempotent)", "", NULL },
	{ "status", cmd_status, "[--json]", "show whether the firewall is installed and current",
	  "", NULL },
	{ "print", cmd_print, "", "print the firewall policy as `nft -f` input", "", NULL },
	{ "check", cmd_check, "[--json] [--junit FILE] [--netns NAME,...]",
	  "audit the host: firewall, listeners in every namespace, credentials", "--junit --netns",
	  NULL },
	{ "probe", cmd_probe, "[--proxy-port P|--no-proxy] [--timeout MS] HOST[:PORTS]",
	  "from outside: protected ports closed, proxy speaks TLS and answers 401",
	  "--proxy-port --timeout", NULL },
	{ "passwd", cmd_passwd, "[-f FILE] [-C COST] [-D|-v] [--stdin] USER",
	  "add, change, delete (-D) or verify (-v) a user's password (bcrypt)",
	  "-f --file -C --cost", NULL },
	{ "token", cmd_token,
	  "[-f FILE] new [-m COMMENT] USER | revoke [--user] USER | revoke --hash PREFIX | list",
	  "API tokens for auth = token: new prints one once and stores its SHA-256",
	  "-f --file -m --comment", NULL },
};

/*
 * Does argv[j] (an argument after the command) take the next argument as its
 * value? valopts: "-f --file ...". A long option may be abbreviated, as
 * getopt_long allows; a short one may end a cluster (`-Df FILE`).
 */
static bool takes_value(const char *arg, const char *valopts)
{
	char opt[64];
	const char *p = valopts;
	size_t n, k;

	if (strncmp(arg, "--", 2) == 0) {
		if (strchr(arg, '=') || arg[2] == '\0')
			return false;
		for (n = strlen(arg); sscanf(p, " %63s%zn", opt, &k) == 1; p += k)
			if (strncmp(opt, "--", 2) == 0 && strncmp(opt, arg, n) == 0)
				return true;
		return false;
	}
	if (arg[0] != '-' || arg[1] == '\0')
		return false;
	/* a short cluster: the first letter that takes a value takes the rest of the
	 * argument, or the next argument when it ends the cluster */
	for (n = 1; arg[n]; n++) {
		for (p = valopts; sscanf(p, " %63s%zn", opt, &k) == 1; p += k)
			if (opt[0] == '-' && opt[1] == arg[n] && opt[2] == '\0')
				return arg[n + 1] == '\0';
	}
	return false;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: tfguard [-c CONF] COMMAND [options]\n\n"
		   "Keeps TensorFlow Serving's raw ports reachable from loopback only.\n\n"
		   "commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char head[128];

		snprintf(head, sizeof(head), "%s %s", cmds[i].c_name, cmds[i].c_usage);
		if (strlen(head) > 20)
			fprintf(f, "  %s\n  %-20s %s\n", head, "", cmds[i].c_help);
		else
			fprintf(f, "  %-20s %s\n", head, cmds[i].c_help);
	}
	fprintf(f,
		"\noptions:\n"
		"  -c, --config PATH    config file (default %s; built-in defaults if absent)\n"
		"  -h, --help           this help\n"
		"  -V, --version        print the version\n"
		"\nexit codes: 0 ok, 1 error, 2 usage, 3 not compliant (status, check, probe;\n"
		"            passwd -v: wrong password)\n",
		CONF_DEFAULT_PATH);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = NULL;
	char errbuf[CONF_ERR_MAX];
	struct conf conf;
	bool help = false;
	size_t i;
	int ch, rc, j;

	log_init("tfguard", LOG_LEVEL_INFO);
	/* '+': stop at the command name, the command parses its own options */
	while ((ch = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("tfguard %s\n", TFG_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[optind], cmds[i].c_name) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		warnx("%s: unknown command (see tfguard --help)", argv[optind]);
		return EXIT_USAGE;
	}
	/* -c CONF is also accepted after the command: `tfguard check -c CONF`,
	 * but not as the value of another option */
	for (j = optind + 1; j < argc && strcmp(argv[j], "--"); j++) {
		if (takes_value(argv[j], cmds[i].c_valopts)) {
			j++;
		} else if ((strcmp(argv[j], "-c") == 0 || strcmp(argv[j], "--config") == 0) &&
			   j + 1 < argc) {
			path = argv[j + 1];
			memmove(&argv[j], &argv[j + 2], (size_t)(argc - j - 1) * sizeof(*argv));
			argc -= 2;
			j--;
		} else if (strncmp(argv[j], "--config=", 9) == 0) {
			path = argv[j] + 9;
			memmove(&argv[j], &argv[j + 1], (size_t)(argc - j) * sizeof(*argv));
			argc--;
			j--;
		}
	}
	/* `tfguard -c broken.conf status --help` must still show the help */
	for (j = optind + 1; j < argc && strcmp(argv[j], "--"); j++) {
		if (takes_value(argv[j], cmds[i].c_valopts))
			j++;
		else if (strcmp(argv[j], "-h") == 0 || strcmp(argv[j], "--help") == 0)
			help = true;
	}
	if (help) {
		conf_defaults(&conf);
	} else if (conf_load(&conf, path, errbuf, sizeof(errbuf)) < 0) {
		if (cmds[i].c_noconf)
			return cmds[i].c_noconf(path, errbuf, argc - optind, argv + optind);
		warnx("%s (nothing was changed)", errbuf);
		return EXIT_ERR;
	}
	optind++;
	rc = cmds[i].c_run(&conf, argc - optind + 1, argv + optind - 1);
	conf_free(&conf);
	return rc;
}
