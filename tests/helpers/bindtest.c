/*
 * bindtest: binds one TCP socket and reports where it ended up.
 *
 *	bindtest [-r] [-T] [-6 V6ONLY] [-s] [-l] ADDR PORT
 *
 * -r binds with syscall(SYS_bind) instead of libc's bind (the LD_PRELOAD shim
 * cannot see it); -6 sets IPV6_V6ONLY (0 = dual-stack); -s listens and answers
 * every connection with "bindtest\n" until killed; -l listens without binding
 * (autobind); -T makes the bind call from a second thread (the supervisor then
 * gets a thread id, not the process id). Prints "bound ADDR:PORT" (from getsockname) or "bind: ERROR".
 * Exit: 0 bound, 13 EACCES, 1 any other failure. Built dynamically
 * (bindtest) and with -static (bindtest-static, tests/helpers/helpers.mk).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void print_name(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";

	if (getsockname(fd, (struct sockaddr *)&ss, &l) < 0) {
		perror("getsockname");
		exit(1);
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		printf("bound %s:%u\n", host, ntohs(s->sin_port));
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		printf("bound [%s]:%u\n", host, ntohs(s->sin6_port));
	}
	fflush(stdout);
}

struct bind_call {
	int bc_fd, bc_raw, bc_ret, bc_errno;
	struct sockaddr_storage *bc_ss;
	socklen_t bc_len;
};

static void *do_bind(void *arg)
{
	struct bind_call *c = arg;

	c->bc_ret = c->bc_raw
			? (int)syscall(SYS_bind, c->bc_fd, (struct sockaddr *)c->bc_ss, c->bc_len)
			: bind(c->bc_fd, (struct sockaddr *)c->bc_ss, c->bc_len);
	c->bc_errno = errno;
	return NULL;
}

int main(int argc, char **argv)
{
	int raw = 0, serve = 0, nobind = 0, threaded = 0, v6only = -1, ch, fd, one = 1, r;
	struct sockaddr_storage ss;
	socklen_t len;

	while ((ch = getopt(argc, argv, "rT6:sl")) != -1) {
		switch (ch) {
		case 'r':
			raw = 1;
			break;
		case '6':
			v6only = atoi(optarg);
			break;
		case 'T':
			threaded = 1;
			break;
		case 's':
			serve = 1;
			break;
		case 'l':
			nobind = 1;
			break;
		default:
			fprintf(stderr,
				"usage: bindtest [-r] [-T] [-6 V6ONLY] [-s] [-l] ADDR PORT\n");
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: bindtest [-r] [-T] [-6 V6ONLY] [-s] [-l] ADDR PORT\n");
		return 2;
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, argv[optind], &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)atoi(argv[optind + 1]));
		len = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, argv[optind], &((struct sockaddr_in6 *)&ss)->sin6_addr) ==
		   1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)atoi(argv[optind + 1]));
		len = sizeof(struct sockaddr_in6);
	} else {
		fprintf(stderr, "bindtest: %s: not a numeric address\n", argv[optind]);
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (v6only >= 0 && ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)) < 0) {
		perror("IPV6_V6ONLY");
		return 1;
	}
	if (!nobind) {
		struct bind_call c = { fd, raw, -1, 0, &ss, len };
		pthread_t t;

		if (threaded) {
			if (pthread_create(&t, NULL, do_bind, &c) != 0 ||
			    pthread_join(t, NULL) != 0) {
				fprintf(stderr, "bindtest: thread failed\n");
				return 1;
			}
		} else {
			do_bind(&c);
		}
		if (c.bc_ret < 0) {
			printf("bind: %s\n", strerror(c.bc_errno));
			fflush(stdout);
			return c.bc_errno == EACCES ? 13 : 1;
		}
	}
	if (serve || nobind) {
		r = raw ? (int)syscall(SYS_listen, fd, 64) : listen(fd, 64);
		if (r < 0) {
			int e = errno;

			printf("listen: %s\n", strerror(e));
			fflush(stdout);
			return e == EACCES ? 13 : 1;
		}
	}
	print_name(fd);
	if (!serve)
		return 0;
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			continue;
		if (write(c, "bindtest\n", 9) < 0)
			perror("write");
		close(c);
	}
}
