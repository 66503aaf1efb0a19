/*
 * tfguard passwd [-f FILE] [-C COST] [-D] [-v] [--stdin] USER
 *
 * Creates or updates bcrypt entries in an htpasswd file, so that nobody needs
 * apache2-utils. The file is rewritten atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory) with its mode and owner
 * kept, under an exclusive lock on FILE.lock so concurrent runs lose nothing.
 */
#include <crypt.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "afile.h"
#include "cmd.h"
#include "htpasswd.h"
#include "str.h"

#define PW_MAX		HTPASSWD_PASS_MAX
#define PW_COST_DEFAULT 12

static bool pw_user_valid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n >= HTPASSWD_USER_MAX)
		return false;
	for (; *u; u++)
		if ((unsigned char)*u <= 0x20 || *u == ':' || *u == 0x7f)
			return false;
	return true;
}

/* Reads one line into buf (without the newline). From the terminal without echo,
 * or from stdin. Returns the length, or -1. */
static ssize_t pw_read(const char *prompt, bool from_stdin, char *buf, size_t len)
{
	struct termios old, quiet;
	FILE *in = stdin;
	bool tty = false;
	size_t n;

	if (!from_stdin) {
		in = fopen("/dev/tty", "r+e");
		if (!in) {
			warnx("passwd: no terminal to read the password from (use --stdin)");
			return -1;
		}
		if (tcgetattr(fileno(in), &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			tty = tcsetattr(fileno(in), TCSAFLUSH, &quiet) == 0;
		}
		fputs(prompt, in);
		fflush(in);
	}
	if (!fgets(buf, (int)len, in)) {
		buf[0] = '\0';
		n = 0;
	} else {
		n = strcspn(buf, "\r\n");
		if (buf[n] == '\0' && n == len - 1) {
			warnx("passwd: password longer than %zu bytes", len - 2);
			explicit_bzero(buf, len);
			n = (size_t)-1;
		}
		if (n != (size_t)-1)
			buf[n] = '\0';
	}
	if (tty) {
		tcsetattr(fileno(in), TCSAFLUSH, &old);
		fputs("\n", in);
	}
	if (in != stdin)
		fclose(in);
	return n == (size_t)-1 ? -1 : (ssize_t)n;
}

/* Is line (up to its newline) an entry for user? */
static bool pw_line_is(const char *line, const char *user)
{
	size_t n = strlen(user);

	return strncmp(line, user, n) == 0 && line[n] == ':';
}

static int pw_verify(const char *path, const char *user, bool from_stdin)
{
	char pass[PW_MAX + 2], err[CONF_PATH_MAX + 64];
	struct htpasswd *ht = htpasswd_load(path, true, NULL, NULL, err, sizeof(err));
	ssize_t n;
	int rc;

	if (!ht) {
		warnx("passwd: %s", err);
		return EXIT_ERR;
	}
	if (!htpasswd_find(ht, user, strlen(user))) {
		warnx("passwd: %s: no usable entry for user '%s'", path, user);
		htpasswd_unref(ht);
		return EXIT_ERR;
	}
	n = pw_read("Password: ", from_stdin, pass, sizeof(pass));
	if (n < 0) {
		htpasswd_unref(ht);
		return EXIT_ERR;
	}
	rc = htpasswd_verify(ht, user, strlen(user), pass, (size_t)n, NULL);
	explicit_bzero(pass, sizeof(pass));
	htpasswd_unref(ht);
	if (rc < 0) {
		warnx("passwd: verifying failed (internal error)");
		return EXIT_ERR;
	}
	printf("tfguard: password for user %s %s\n", user,
	       rc == 1 ? "is correct" : "does NOT match");
	return rc == 1 ? EXIT_OK : EXIT_NONCOMPLIANT;
}

int cmd_passwd(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "cost", required_argument, NULL, 'C' },
		{ "delete", no_argument, NULL, 'D' },
		{ "verify", no_argument, NULL, 'v' },
		{ "stdin", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const char usage[] =
	    "usage: tfguard [-c CONF] passwd [-f FILE] [-C COST] [-D | -v] [--stdin] USER\n"
	    "  sets USER's password (bcrypt, cost 12) in FILE (default: [proxy] htpasswd);\n"
	    "  -D deletes USER, -v checks a password; --stdin reads it from standard input\n";
	const char *path = conf->c_proxy.p_htpasswd, *user;
	char pass[PW_MAX + 2], again[PW_MAX + 2], salt[64], lock[CONF_PATH_MAX + 8];
	struct crypt_data *cd = NULL;
	bool del = false, verify = false, from_stdin = false, exists, found = false;
	uint64_t cost = PW_COST_DEFAULT;
	char *old = NULL, *out = NULL, *line, *hash;
	size_t outlen = 0;
	const struct passwd *pwent;
	struct stat st;
	FILE *mem = NULL;
	int ch, lfd = -1, rc = EXIT_ERR;
	ssize_t n;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "f:C:Dvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			path = optarg;
			break;
		case 'C':
			if (str_to_u64(optarg, 31, &cost) < 0 || cost < 4)
				errx(EXIT_USAGE, "passwd: -C: bcrypt cost must be 4 to 31 (10+ "
						 "recommended)");
			break;
		case 'D':
			del = true;
			break;
		case 'v':
			verify = true;
			break;
		case 's':
			from_stdin = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || (del && verify)) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	user = argv[optind];
	if (!pw_user_valid(user))
		errx(EXIT_USAGE,
		     "passwd: '%s' is not a valid user name (no ':', spaces or control "
		     "characters, at most %d bytes)",
		     user, HTPASSWD_USER_MAX - 1);
	if (verify)
		return pw_verify(path, user, from_stdin);

	if (!del) {
		n = pw_read("New password: ", from_stdin, pass, sizeof(pass));
		if (n < 0)
			return EXIT_ERR;
		if (n == 0) {
			warnx("passwd: empty password refused (nothing was changed)");
			return EXIT_ERR;
		}
		if (!from_stdin &&
		    (pw_read("Retype new password: ", false, again, sizeof(again)) < 0 ||
		     strcmp(pass, again) != 0)) {
			explicit_bzero(pass, sizeof(pass));
			explicit_bzero(again, sizeof(again));
			warnx("passwd: passwords do not match (nothing was changed)");
			return EXIT_ERR;
		}
		explicit_bzero(again, sizeof(again));
		if (n > 72)
			warnx("passwd: bcrypt uses only the first 72 bytes of the password");
		cd = calloc(1, sizeof(*cd));
		/* $2y$: what Apache's htpasswd -B writes, understood everywhere */
		if (!cd ||
		    !crypt_gensalt_rn("$2y$", (unsigned long)cost, NULL, 0, salt, sizeof(salt)) ||
		    !(hash = crypt_rn(pass, salt, cd, sizeof(*cd))) || hash[0] == '*') {
			explicit_bzero(pass, sizeof(pass));
			warnx("passwd: bcrypt hashing failed (nothing was changed)");
			goto out;
		}
		explicit_bzero(pass, sizeof(pass));
	}

	lfd = afile_lock(path, lock, sizeof(lock));
	if (lfd < 0) {
		warn("passwd: %s", lock);
		goto out;
	}
	memset(&st, 0, sizeof(st));
	old = afile_read(path, &st, &exists);
	if (!old) {
		warn("passwd: %s", path);
		goto out;
	}
	if (!exists && del) {
		warnx("passwd: %s does not exist", path);
		goto out;
	}
	mem = open_memstream(&out, &outlen);
	if (!mem)
		goto out;
	for (line = old; *line;) {
		char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (pw_line_is(line, user)) {
			/* the first entry is replaced; later duplicates are dropped */
			if (!found && !del)
				fprintf(mem, "%s:%s\n", user, cd->output);
			found = true;
		} else {
			fprintf(mem, "%.*s\n", (int)len, line);
		}
		line += len + (end ? 1 : 0);
	}
	if (!found && !del)
		fprintf(mem, "%s:%s\n", user, cd->output);
	if (fclose(mem) != 0) {
		mem = NULL;
		warnx("passwd: out of memory");
		goto out;
	}
	mem = NULL;
	if (del && !found) {
		warnx("passwd: %s: no user '%s' (nothing was changed)", path, user);
		goto out;
	}
	pwent = getpwnam(conf->c_proxy.p_user);
	if (afile_replace(path, out, outlen, &st, exists, pwent ? pwent->pw_gid : (gid_t)-1) < 0) {
		if (errno == EPERM)
			warnx(
			    "passwd: %s: cannot keep its owner uid %u gid %u (run as root; nothing "
			    "was changed)",
			    path, (unsigned)st.st_uid, (unsigned)st.st_gid);
		else
			warn("passwd: writing %s (nothing was changed)", path);
		goto out;
	}
	printf("tfguard: %s user %s in %s\n",
	       del     ? "deleted"
	       : found ? "updated"
		       : "added",
	       user, path);
	rc = EXIT_OK;
out:
	if (mem)
		fclose(mem);
	if (out) {
		explicit_bzero(out, outlen);
		free(out);
	}
	if (old) {
		explicit_bzero(old, strlen(old));
		free(old);
	}
	if (cd) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	if (lfd >= 0)
		close(lfd);
	return rc;
}
