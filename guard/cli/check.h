/*
 * check: the compliance audit behind `tfguard check`.
 *
 * Each control has a stable id, a title, a status (pass / warn / fail /
 * skipped), the evidence that decided it, and a one-line remediation. The
 * evidence comes from the kernel (nf_tables over netlink, sock_diag in every
 * network namespace, sysctls) and from files, never from logs. Output as
 * text, JSON or JUnit XML. Not reentrant.
 */
#ifndef TFG_CHECK_H
#define TFG_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "conf.h"

enum check_status { CHECK_PASS, CHECK_WARN, CHECK_FAIL, CHECK_SKIP };

#define CHECK_EVIDENCE_MAX 4096

struct check_control {
	const char *cc_id;
	const char *cc_title;
	const char *cc_remedy;
	enum check_status cc_status;
	bool cc_mandatory; /* skipped => the audit is incomplete, never "compliant" */
	char cc_evidence[CHECK_EVIDENCE_MAX]; /* lines separated by '\n' */
	size_t cc_len;
};

/* Adds one line of evidence to a control. */
void check_evidence(struct check_control *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *check_status_name(enum check_status s);
/* How many mandatory controls were skipped (the audit could not decide). */
size_t check_incomplete(const struct check_control *c, size_t n);
void check_print_text(FILE *f, const struct check_control *c, size_t n);
void check_print_json(FILE *f, const struct check_control *c, size_t n);
int check_write_junit(const char *path, const struct check_control *c, size_t n);

#endif
