/*
 * fw: the tfguard nftables policy.
 *
 * One description of the rules (struct fw_policy -> a fixed list of rule
 * specs) feeds three outputs, so they cannot drift apart: the netlink batch
 * that `apply` sends (libnftnl objects serialised with libmnl), the `nft -f`
 * text that `print` writes, and the expected rules that `status` compares the
 * kernel's copy against.
 *
 * Table `inet tfguard`, owned by tfguard alone:
 *   set ports            the protected TCP ports (inet_service)
 *   chain prerouting     filter hook prerouting priority mangle (-150): after
 *                        conntrack, before DNAT (-100)
 *       iif "lo" accept
 *       [fib daddr type local tcp dport @ports limit ... log prefix "tfguard-drop: "]
 *       fib daddr type local tcp dport @ports counter drop
 *   chain input          filter hook input priority mangle: after NAT, so a
 *                        redirect (9502 -> 8501) onto the host itself is seen.
 *                        Not IPVS: it rewrites the destination in the input
 *                        hook at priority 99, after this chain (README)
 *       iif "lo" accept
 *       [tcp dport @ports limit ... log ...]
 *       tcp dport @ports counter drop
 *   chain forward        filter hook forward priority mangle
 *       [ct status dnat tcp dport @ports limit ... log ...]
 *       ct status dnat tcp dport @ports counter drop      (Docker -p 9000:8501)
 *       [strict: tcp dport @ports counter drop]           (routed to a container)
 *
 * Not reentrant with respect to a shared struct fw_batch; everything else pure.
 */
#ifndef TFG_FW_H
#define TFG_FW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"

#define FW_TABLE	    "tfguard"
#define FW_SET		    "ports"
#define FW_CHAIN_PRE	    "prerouting"
#define FW_CHAIN_IN	    "input"
#define FW_CHAIN_FWD	    "forward"
#define FW_LOG_PREFIX	    "tfguard-drop: "
#define FW_POLICY_VERSION   2 /* bump when the rule shapes change: old tables become stale */
#define FW_RULES_MAX	    12
#define FW_CHAINS	    3
#define FW_COMMENT_MAX	    128 /* nft's NFT_USERDATA_MAXLEN is 256; comments stay short */
#define FW_KEY_INET_SERVICE 13	/* nft's datatype id for inet_service: 2 bytes, big endian */

enum fw_match {
	FW_MATCH_LOOPBACK,	  /* iif "lo" */
	FW_MATCH_LOCAL_PROTECTED, /* fib daddr type local tcp dport @ports */
	FW_MATCH_DNAT_PROTECTED,  /* ct status dnat tcp dport @ports */
	FW_MATCH_PROTECTED,	  /* tcp dport @ports */
};

enum fw_action { FW_ACCEPT, FW_LOG, FW_DROP };

struct fw_rule_spec {
	const char *rs_chain;
	enum fw_match rs_match;
	enum fw_action rs_action;
	const char *rs_comment;
};

struct fw_chain_spec {
	const char *cs_name;
	unsigned cs_hook; /* NF_INET_PRE_ROUTING, ... */
	const char *cs_hook_name;
};

/* The base chains of the table, in the order they are created and printed. */
extern const struct fw_chain_spec fw_chains[FW_CHAINS];

struct fw_policy {
	struct ports fp_ports;
	bool fp_log;
	struct conf_rate fp_log_rate;
	bool fp_strict;
	char fp_digest[17];		 /* 16 hex digits */
	char fp_comment[FW_COMMENT_MAX]; /* the table comment: version + digest */
	struct fw_rule_spec fp_rules[FW_RULES_MAX];
	size_t fp_nrules;
};

/* Fills p from the [guard] section: ports, logging, strict mode, digest, rule list. */
void fw_policy_from_conf(struct fw_policy *p, const struct conf *c);
/* Extracts the 16-digit digest from a table comment written by any tfguard; -1 if none. */
int fw_comment_digest(const char *comment, char digest[17]);
/* Writes the policy as `nft -f` input. Returns 0, or -1 on a write error. */
int fw_print(const struct fw_policy *p, FILE *f);

/*
 * A batch in memory, built before any socket is opened (STYLE §6). Every
 * message except BEGIN/END asks for an ack; fw_batch_label() names the object
 * a sequence number belongs to, for error messages.
 */
struct fw_batch;

enum fw_op {
	FW_OP_APPLY,  /* replace: NEWTABLE, DELTABLE, NEWTABLE, set, elements, chains, rules */
	FW_OP_REMOVE, /* NEWTABLE, DELTABLE: idempotent */
	FW_OP_CREATE, /* NEWTABLE with EXCL, set, ...: the kernel refuses it (EEXIST) and
			 changes nothing when the table exists (apply --fallback) */
};

/* Returns a batch, or NULL with a reason in err. fault_at > 0 inserts a failing
 * rule after that many objects (TFGUARD_TEST_FAULT, for the rollback tests). */
struct fw_batch *fw_batch_build(const struct fw_policy *p, enum fw_op op, unsigned fault_at,
				char *err, size_t errlen);
const void *fw_batch_data(const struct fw_batch *b);
size_t fw_batch_len(const struct fw_batch *b);
uint32_t fw_batch_seq_first(const struct fw_batch *b); /* seq of BEGIN */
size_t fw_batch_acks(const struct fw_batch *b);	       /* acks to expect */
const char *fw_batch_label(const struct fw_batch *b, uint32_t seq);
void fw_batch_free(struct fw_batch *b);

/*
 * The expected rules of a policy as libnftnl objects (for comparisons).
 * Returns an array of n rules (caller frees with fw_rules_free), or NULL.
 */
struct nftnl_rule;
struct nftnl_rule **fw_rules_build(const struct fw_policy *p, size_t *n);
void fw_rules_free(struct nftnl_rule **r, size_t n);

/* Sends the batch as one atomic transaction and reads every ack.
 * Returns 0, or -1 with "OBJECT: REASON (what to do)" in err and the kernel's
 * errno (EEXIST: FW_OP_CREATE found the table) in errno. */
int fw_batch_send(const struct fw_batch *b, char *err, size_t errlen);

/* ---- reading the installed table back (fw_nl.c) ---- */

#define FW_STATE_RULES_MAX 16

struct fw_rule_state {
	char rs_chain[32];
	char rs_comment[FW_COMMENT_MAX];
	const char *rs_verdict; /* "accept", "drop", "log", or "other" */
	bool rs_counter;
	bool rs_match; /* equal to the policy's rule at the same place */
	uint64_t rs_packets;
	uint64_t rs_bytes;
};

struct fw_state {
	bool fs_present;
	char fs_comment[256];
	char fs_digest[17]; /* "" when the comment is not tfguard's */
	bool fs_ports_read;
	struct ports fs_ports;
	struct fw_rule_state fs_rules[FW_STATE_RULES_MAX];
	size_t fs_nrules;
	bool fs_match;	       /* chains, set and rules equal the policy */
	char fs_mismatch[256]; /* the first difference found, when !fs_match */
	uint32_t fs_genid;
};

/*
 * Reads table inet tfguard back over netlink, consistently (the ruleset
 * generation id is read before and after, and the read is retried, on a fresh
 * socket and a bounded number of times, if it changed or the kernel flagged a
 * dump as interrupted). With p, compares chains, the set (its flags, key,
 * timeouts, size, policy, expressions, and each element's) and rules
 * structurally to the policy.
 * Returns 0 (table present or not: see fs_present), or -1 with a reason.
 */
int fw_read(const struct fw_policy *p, struct fw_state *st, char *err, size_t errlen);

/* A DNAT rule in another table that sends traffic to a protected port. */
struct fw_dnat {
	char d_table[64];
	char d_chain[64];
	const char *d_family; /* "ip", "ip6", "inet" */
	const char *d_kind;   /* "DNAT" or "redirect" */
	uint64_t d_handle;
	unsigned d_port; /* the protected port concerned */
	bool d_to_port;	 /* true: translated to it; false: matched on it and kept */
};

/*
 * Finds nft-native dnat and redirect rules outside table inet tfguard whose
 * translated port or port range, or matched destination port or range when
 * the port is kept, includes a protected port. Not parsed: ports taken from
 * maps or sets, and xtables-compat DNAT targets (iptables-nft, Docker); the
 * firewall's rules drop those all the same. Returns the count, or -1.
 */
int fw_scan_dnat(const struct ports *ports, struct fw_dnat *out, size_t max, char *err,
		 size_t errlen);

#endif
