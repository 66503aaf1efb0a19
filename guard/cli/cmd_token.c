/*
 * tfguard token [-f FILE] new [-m COMMENT] USER | revoke USER|HASHPREFIX | list
 *
 * API tokens for tfguard-proxy's `auth = token` (format in guard/proxy/token.h). `new`
 * prints a fresh 256-bit token once and appends only its SHA-256 to the token file;
 * `revoke` removes every token of a user or the one token whose hash starts with the
 * given hex prefix; `list` shows users, hash prefixes and ages, never a token. The file
 * is rewritten atomically with its mode and owner kept (afile.h); the proxy picks the
 * change up within a second.
 */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "afile.h"
#include "cmd.h"
#include "token.h"

/* A hash prefix shorter than this is more likely a typo than a choice. */
#define TOK_PREFIX_MIN 8

static const char tok_usage[] =
    "usage: tfguard [-c CONF] token [-f FILE] new [-m COMMENT] USER\n"
    "       tfguard [-c CONF] token [-f FILE] revoke USER|HASHPREFIX\n"
    "       tfguard [-c CONF] token [-f FILE] list\n"
    "  new prints a fresh token once (store it now) and adds its SHA-256 to FILE\n"
    "  (default: [proxy] tokens); revoke removes every token of USER, or the one whose\n"
    "  hash starts with HASHPREFIX (at least 8 hex digits, see list)\n";

/* The file with its entries: every line kept as is, entries parsed where they parse. */
struct tok_file {
	char *tf_buf;
	struct stat tf_st;
	bool tf_exists;
	int tf_lock;
};

static int tok_open(const char *path, struct tok_file *f)
{
	char lock[CONF_PATH_MAX + 8];

	memset(f, 0, sizeof(*f));
	f->tf_lock = afile_lock(path, lock, sizeof(lock));
	if (f->tf_lock < 0) {
		warn("token: %s", lock);
		return -1;
	}
	f->tf_buf = afile_read(path, &f->tf_st, &f->tf_exists);
	if (!f->tf_buf) {
		warn("token: %s", path);
		close(f->tf_lock);
		return -1;
	}
	return 0;
}

static void tok_close(struct tok_file *f)
{
	free(f->tf_buf);
	if (f->tf_lock >= 0)
		close(f->tf_lock);
}

static int tok_write(const struct conf *conf, const char *path, const struct tok_file *f,
		     const char *out, size_t len)
{
	const struct passwd *pw = getpwnam(conf->c_proxy.p_user);

	if (afile_replace(path, out, len, &f->tf_st, f->tf_exists, pw ? pw->pw_gid : (gid_t)-1) ==
	    0)
		return 0;
	if (errno == EPERM)
		warnx("token: %s: cannot keep its owner uid %u gid %u (run as root; nothing was "
		      "changed)",
		      path, (unsigned)f->tf_st.st_uid, (unsigned)f->tf_st.st_gid);
	else
		warn("token: writing %s (nothing was changed)", path);
	return -1;
}

static int tok_new(const struct conf *conf, const char *path, const char *user, const char *comment)
{
	char tok[TOKEN_NEW_LEN + 1], hex[2 * TOKEN_HASH_LEN + 1], when[32];
	uint8_t h[TOKEN_HASH_LEN];
	struct tok_file f;
	char *out = NULL;
	size_t outlen = 0, n;
	time_t now = time(NULL);
	FILE *mem;
	int rc = EXIT_ERR;

	for (const char *p = comment; p && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			errx(EXIT_USAGE, "token: the comment may not contain control characters");
	if (tok_open(path, &f) < 0)
		return EXIT_ERR;
	if (token_generate(tok, sizeof(tok)) < 0 || token_hash(tok, strlen(tok), h) < 0) {
		warn("token: no random token (getrandom)");
		goto out;
	}
	token_hex(h, hex, sizeof(hex));
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	mem = open_memstream(&out, &outlen);
	if (!mem)
		goto out;
	n = strlen(f.tf_buf);
	fputs(f.tf_buf, mem);
	if (n > 0 && f.tf_buf[n - 1] != '\n')
		fputc('\n', mem);
	fprintf(mem, "%s:%s:created=%s%s%s\n", user, hex, when, comment ? " " : "",
		comment ? comment : "");
	if (fclose(mem) != 0) {
		warnx("token: out of memory (nothing was changed)");
		goto out;
	}
	if (tok_write(conf, path, &f, out, outlen) < 0)
		goto out;
	/* the token alone on stdout, so that TOKEN=$(tfguard token new USER) works */
	printf("%s\n", tok);
	fflush(stdout);
	fprintf(stderr,
		"tfguard: added a token for %s to %s (hash %.12s...); it is shown only once: "
		"store it now\n",
		user, path, hex);
	rc = EXIT_OK;
out:
	explicit_bzero(tok, sizeof(tok));
	explicit_bzero(h, sizeof(h));
	free(out);
	tok_close(&f);
	return rc;
}

/* Does hex (any case) start the hash? */
static bool tok_prefix_of(const char *prefix, size_t n, const uint8_t hash[TOKEN_HASH_LEN])
{
	char hex[2 * TOKEN_HASH_LEN + 1];

	token_hex(hash, hex, sizeof(hex));
	return n <= 2 * TOKEN_HASH_LEN && strncasecmp(hex, prefix, n) == 0;
}

static int tok_revoke(const struct conf *conf, const char *path, const char *arg)
{
	size_t alen = strlen(arg), by_user = 0, by_hash = 0, removed = 0;
	bool hexarg = alen > 0 && strspn(arg, "0123456789abcdefABCDEF") == alen;
	char err[128], *out = NULL, *line;
	size_t outlen = 0;
	struct tok_file f;
	struct token_entry e;
	FILE *mem = NULL;
	int rc = EXIT_ERR;

	if (tok_open(path, &f) < 0)
		return EXIT_ERR;
	if (!f.tf_exists) {
		warnx("token: %s does not exist (nothing was changed)", path);
		goto out;
	}
	/* first pass: what does arg name? */
	for (line = f.tf_buf; *line;) {
		char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (token_parse_line(line, len, &e, err, sizeof(err)) == 1) {
			by_user += e.te_user_len == alen && memcmp(e.te_user, arg, alen) == 0;
			by_hash += hexarg && tok_prefix_of(arg, alen, e.te_hash);
		}
		line += len + (end ? 1 : 0);
	}
	if (by_user && by_hash) {
		warnx("token: '%s' is both a user and a hash prefix (give more hex digits; nothing "
		      "was changed)",
		      arg);
		goto out;
	}
	if (!by_user && by_hash && alen < TOK_PREFIX_MIN) {
		warnx("token: hash prefix '%s' too short: give at least %d hex digits (nothing was "
		      "changed)",
		      arg, TOK_PREFIX_MIN);
		goto out;
	}
	if (by_hash > 1) {
		warnx("token: hash prefix '%s' is ambiguous: %zu tokens match (give more digits; "
		      "nothing was changed)",
		      arg, by_hash);
		goto out;
	}
	if (!by_user && !by_hash) {
		warnx("token: %s: no token of user '%s' and none whose hash starts with it "
		      "(nothing was changed; see tfguard token list)",
		      path, arg);
		goto out;
	}
	mem = open_memstream(&out, &outlen);
	if (!mem)
		goto out;
	for (line = f.tf_buf; *line;) {
		char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		bool drop = false;

		if (token_parse_line(line, len, &e, err, sizeof(err)) == 1)
			drop = by_user ? e.te_user_len == alen && memcmp(e.te_user, arg, alen) == 0
				       : tok_prefix_of(arg, alen, e.te_hash);
		if (drop)
			removed++;
		else
			fprintf(mem, "%.*s\n", (int)len, line);
		line += len + (end ? 1 : 0);
	}
	if (fclose(mem) != 0) {
		warnx("token: out of memory (nothing was changed)");
		goto out;
	}
	if (tok_write(conf, path, &f, out, outlen) < 0)
		goto out;
	printf("tfguard: revoked %zu token%s %s %s in %s\n", removed, removed == 1 ? "" : "s",
	       by_user ? "of user" : "with hash prefix", arg, path);
	rc = EXIT_OK;
out:
	free(out);
	tok_close(&f);
	return rc;
}

static void tok_warn(void *arg, const char *file, unsigned line, const char *msg)
{
	(void)arg;
	warnx("%s:%u: %s", file, line, msg);
}

static int tok_list(const char *path)
{
	char err[CONF_ERR_MAX], hex[2 * TOKEN_HASH_LEN + 1], when[32];
	struct token_table *t = token_load(path, tok_warn, NULL, err, sizeof(err));
	time_t now = time(NULL);
	size_t i;

	if (!t) {
		warnx("token: %s", err);
		return EXIT_ERR;
	}
	printf("%-24s %-12s %-20s %s\n", "USER", "HASH", "CREATED", "AGE");
	for (i = 0; i < token_count(t); i++) {
		const struct token_entry *e = token_entry_at(t, i);

		token_hex(e->te_hash, hex, sizeof(hex));
		if (e->te_created >= 0) {
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&e->te_created));
			printf("%-24s %.12s %-20s %lldd\n", e->te_user, hex, when,
			       (long long)(now - e->te_created) / 86400);
		} else {
			printf("%-24s %.12s %-20s %s\n", e->te_user, hex, "-", "unknown");
		}
	}
	token_unref(t);
	return EXIT_OK;
}

int cmd_token(struct conf *conf, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "comment", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = conf->c_proxy.p_tokens, *comment = NULL, *sub;
	int ch;

	optind = 0;
	/* options before and after the subcommand: `token -f F new -m x alice` */
	while ((ch = getopt_long(argc, argv, "f:m:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			path = optarg;
			break;
		case 'm':
			comment = optarg;
			break;
		case 'h':
			fputs(tok_usage, stdout);
			return EXIT_OK;
		default:
			fputs(tok_usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(tok_usage, stderr);
		return EXIT_USAGE;
	}
	sub = argv[optind];
	if (path[0] == '\0')
		errx(EXIT_ERR,
		     "token: no token file: set [proxy] tokens = FILE in %s or give -f "
		     "FILE",
		     conf->c_path);
	if (strcmp(sub, "list") == 0 && optind + 1 == argc)
		return tok_list(path);
	if (optind + 2 != argc || (strcmp(sub, "new") != 0 && strcmp(sub, "revoke") != 0)) {
		fputs(tok_usage, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(sub, "new") == 0) {
		if (!conf_name_valid(argv[optind + 1], TOKEN_USER_MAX))
			errx(EXIT_USAGE,
			     "token: '%s' is not a valid user name (letters, digits and ._@+- "
			     "only, at most %d bytes)",
			     argv[optind + 1], TOKEN_USER_MAX - 1);
		return tok_new(conf, path, argv[optind + 1], comment);
	}
	if (comment)
		errx(EXIT_USAGE, "token: -m is for new only");
	return tok_revoke(conf, path, argv[optind + 1]);
}
