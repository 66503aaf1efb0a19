/*
 * cmd: the tfguard subcommands. Each takes the loaded config and its own
 * argv (argv[0] is the command name) and returns the process exit code:
 * 0 ok, 1 error, 2 usage, 3 not compliant (status/check).
 */
#ifndef TFG_CMD_H
#define TFG_CMD_H

#include "conf.h"

enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2, EXIT_NONCOMPLIANT = 3 };

struct cmd {
	const char *c_name;
	int (*c_run)(struct conf *conf, int argc, char **argv);
	const char *c_usage; /* options after the command name */
	const char *c_help;  /* one line */
	/* every option of the command that takes a value ("-f --file -m --comment"),
	 * so that main() never takes such a value for `-c CONF` */
	const char *c_valopts;
	/* runs instead of c_run when the config cannot be loaded (path NULL: the
	 * default; why: "FILE:LINE: message"); NULL: main() reports it, exit 1 */
	int (*c_noconf)(const char *path, const char *why, int argc, char **argv);
};

int cmd_apply(struct conf *conf, int argc, char **argv);
int cmd_apply_noconf(const char *path, const char *why, int argc, char **argv);
int cmd_remove(struct conf *conf, int argc, char **argv);
int cmd_status(struct conf *conf, int argc, char **argv);
int cmd_print(struct conf *conf, int argc, char **argv);
int cmd_check(struct conf *conf, int argc, char **argv);
int cmd_probe(struct conf *conf, int argc, char **argv);
int cmd_passwd(struct conf *conf, int argc, char **argv);
int cmd_token(struct conf *conf, int argc, char **argv);

#endif
