/* Temporary: replaced by the nftables implementation in this same issue. */
#include <err.h>

#include "cmd.h"

int cmd_apply(struct conf *conf, int argc, char **argv)
{
	(void)conf, (void)argc, (void)argv;
	warnx("apply: not built yet");
	return EXIT_ERR;
}

int cmd_remove(struct conf *conf, int argc, char **argv)
{
	return cmd_apply(conf, argc, argv);
}

int cmd_status(struct conf *conf, int argc, char **argv)
{
	return cmd_apply(conf, argc, argv);
}

int cmd_print(struct conf *conf, int argc, char **argv)
{
	return cmd_apply(conf, argc, argv);
}
