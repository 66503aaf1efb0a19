/*
 * tfguard token [-f FILE] new [-m COMMENT] USER | revoke [--user] USER | revoke --hash PREFIX
 *   | list
 *
 * API tokens for tfguard-proxy's `auth = token` (format in guard/proxy/token.h). `new`
 * prints a fresh 256-bit token once and appends only its SHA-256 to the token file;
 * `revoke` removes every token of a user or (--hash) the one token whose hash starts
 * with the given hex prefix; `list` shows users, hash prefixes and ages, never a token. The file
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
    "       tfguard [-c CONF] token [-f FILE] revoke [--user] USER\n"
    "       tfguard [-c CONF] token [-f FILE] revoke --hash HASHPREFIX\n"
    "       tfguard [-c CONF] token [-f FILE] list\n"
    "  new prints a fresh token once (store it now) and adds its SHA-256 to FILE\n"
    "  (default: [proxy] tokens); revoke removes every token of USER, or with --hash\n"
    "  the one whose hash starts with HASHPREFIX (at least 8 hex digits, see list;\n"
    "  a full 64-digit hash needs no --hash)\n";

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

enum tok_by { TOK_BY_ANY, TOK_BY_USER, TOK_BY_HASH };

/*
 * revoke [--user|--hash] ARG. --user: every token of user ARG. --hash: the token whose
 * hash starts with ARG (every line with that hash: a hash written twice is one token).
 * Neither: ARG is a user of the file, or a full 64-digit hash (never a user name: too
 * long); a hash prefix must be said with --hash, so that a user name that merely looks
 * like hex (and has no token) never revokes somebody else's token by prefix.
 */
static int tok_revoke(const struct conf *conf, const char *path, const char *arg, enum tok_by by)
{
	size_t alen = strlen(arg), n_user = 0, n_hash = 0, n_hashes = 0, removed = 0;
	bool hexarg = alen > 0 && strspn(arg, "0123456789abcdefABCDEF") == alen, by_user;
	uint8_t first[TOKEN_HASH_LEN];
	char err[128], *out = NULL, *line;
	size_t outlen = 0;
	struct tok_file f;
	struct token_entry e;
	FILE *mem = NULL;
	int rc = EXIT_ERR;

	if (by == TOK_BY_HASH && !hexarg) {
		warnx("token: --hash '%s': not a hex hash prefix (nothing was changed)", arg);
		return EXIT_USAGE;
	}
	if (tok_open(path, &f) < 0)
		return EXIT_ERR;
	if (!f.tf_exists) {
		warnx("token: %s does not exist (nothing was changed)", path);
		goto out;
	}
	/* first pass: what does arg name? distinct hashes are counted, equal ones are one */
	for (line = f.tf_buf; *line;) {
		char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (token_parse_line(line, len, &e, err, sizeof(err)) == 1) {
			n_user += e.te_user_len == alen && memcmp(e.te_user, arg, alen) == 0;
			if (hexarg && tok_prefix_of(arg, alen, e.te_hash)) {
				if (n_hash == 0)
					memcpy(first, e.te_hash, TOKEN_HASH_LEN);
				n_hashes +=
				    n_hash == 0 || memcmp(first, e.te_hash, TOKEN_HASH_LEN) != 0;
				n_hash++;
			}
		}
		line += len + (end ? 1 : 0);
	}
	if (by == TOK_BY_ANY && !n_user && !n_hash) {
		warnx("token: %s: no token of user '%s'%s (nothing was changed; see tfguard token "
		      "list)",
		      path, arg, hexarg ? ", and none whose hash starts with it" : "");
		goto out;
	}
	if (by == TOK_BY_ANY) {
		if (n_user && n_hash) {
			warnx("token: '%s' is both a user and a hash prefix (say --user or --hash; "
			      "nothing was changed)",
			      arg);
			goto out;
		}
		if (!n_user && n_hash && alen != 2 * TOKEN_HASH_LEN) {
			warnx("token: %s: no user '%s'; to revoke by hash prefix say --hash %s "
			      "(nothing was changed)",
			      path, arg, arg);
			goto out;
		}
		by = n_user ? TOK_BY_USER : TOK_BY_HASH;
	}
	by_user = by == TOK_BY_USER;
	if (by_user ? n_user == 0 : n_hash == 0) {
		warnx("token: %s: %s '%s' (nothing was changed; see tfguard token list)", path,
		      by_user ? "no token of user" : "no token whose hash starts with", arg);
		goto out;
	}
	if (!by_user && alen < TOK_PREFIX_MIN) {
		warnx("token: hash prefix '%s' too short: give at least %d hex digits (nothing was "
		      "changed)",
		      arg, TOK_PREFIX_MIN);
		goto out;
	}
	if (!by_user && n_hashes > 1) {
		warnx("token: hash prefix '%s' is ambiguous: %zu tokens match (give more digits; "
		      "nothing was changed)",
		      arg, n_hashes);
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
				       : memcmp(e.te_hash, first, TOKEN_HASH_LEN) == 0;
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
	printf("tfguard: revoked %zu token line%s %s %s in %s\n", removed, removed == 1 ? "" : "s",
	       by_user ? "of user" : "with hash prefix", arg, path);
	rc = EXIT_OK;
out:
	explicit_bzero(first, sizeof(first));
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
		{ "user", no_argument, NULL, 'U' },
		{ "hash", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = conf->c_proxy.p_tokens, *comment = NULL, *sub;
	enum tok_by by = TOK_BY_ANY;
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
		case 'U':
		case 'H':
			if (by != TOK_BY_ANY && by != (ch == 'U' ? TOK_BY_USER : TOK_BY_HASH))
				errx(EXIT_USAGE, "token: --user and --hash exclude each other");
			by = ch == 'U' ? TOK_BY_USER : TOK_BY_HASH;
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
	if (by != TOK_BY_ANY && strcmp(sub, "revoke") != 0)
		errx(EXIT_USAGE, "token: --user and --hash are for revoke only");
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
	return tok_revoke(conf, path, argv[optind + 1], by);
}
