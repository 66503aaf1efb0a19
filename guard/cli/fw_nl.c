/* fw_nl: the netlink side of fw.h: sending a batch, reading the table back. */
#include "fw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter_ipv4.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "str.h"

/* The kernel queues every ack while it processes the batch, before sendmsg()
 * returns; a reply that has not come in 5 s will not come. */
#define FW_ACK_TIMEOUT_MS 5000
/* A read is retried when the ruleset changed under it: the generation id moved,
 * or the kernel flagged a dump as interrupted (NLM_F_DUMP_INTR, EINTR). */
#define FW_READ_TRIES 50
/* MNL_SOCKET_BUFFER_SIZE is a function call (page size); 32 KiB holds any reply here. */
#define FW_NL_BUF      32768
#define FW_CHAINS_SEEN (FW_CHAINS + 2)

/* What to do when netfilter netlink itself is missing (socket or subsystem). */
#define FW_NO_NFTABLES                                                                             \
	"the kernel has no nf_tables: modprobe nf_tables, or use a kernel built with "             \
	"CONFIG_NF_TABLES; under systemd, RestrictAddressFamilies must allow AF_NETLINK"

static struct mnl_socket *fw_nl_open(char *err, size_t errlen)
{
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	int one = 1;

	if (!nl) {
		int e = errno;

		snprintf(err, errlen, "cannot open a netfilter netlink socket: %s%s%s", strerror(e),
			 e == EPROTONOSUPPORT || e == EAFNOSUPPORT || e == EOPNOTSUPP ? " (" : "",
			 e == EPROTONOSUPPORT || e == EAFNOSUPPORT || e == EOPNOTSUPP
			     ? FW_NO_NFTABLES ")"
			     : "");
		errno = e;
		return NULL;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "cannot bind the netlink socket: %s", strerror(errno));
		mnl_socket_close(nl);
		return NULL;
	}
	/* Extended acks carry the kernel's own words about a failure; capped
	 * acks keep our request out of every reply. Both are best effort. */
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	return nl;
}

static int fw_nl_wait(struct mnl_socket *nl)
{
	struct pollfd pfd = { .fd = mnl_socket_get_fd(nl), .events = POLLIN };
	int rc;

	do
		rc = poll(&pfd, 1, FW_ACK_TIMEOUT_MS);
	while (rc < 0 && errno == EINTR);
	if (rc == 0)
		errno = ETIMEDOUT;
	return rc > 0 ? 0 : -1;
}

/* The kernel's extended-ack message of an NLMSG_ERROR, or "". */
static const char *fw_nl_extack(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	size_t off = sizeof(*e);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return "";
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	mnl_attr_for_each(attr, nlh, off)
	{
		if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(attr);
	}
	return "";
}

static const char *fw_nl_hint(int error, bool whole_batch)
{
	switch (error) {
	case EPERM:
		return "run as root or with CAP_NET_ADMIN";
	case EOPNOTSUPP:
	case EPROTONOSUPPORT:
	case EAFNOSUPPORT:
		return FW_NO_NFTABLES;
	case ENOENT:
		return whole_batch ? FW_NO_NFTABLES
				   : "check that the kernel has nft_fib_inet, nft_ct and nft_limit";
	case ENOMEM:
	case ENOSPC:
		return "the kernel is out of memory";
	case EEXIST:
		return "it exists: another program created it meanwhile";
	default:
		return "see the kernel log";
	}
}

int fw_batch_send(const struct fw_batch *b, char *err, size_t errlen)
{
	char buf[FW_NL_BUF];
	size_t want = fw_batch_acks(b), got = 0;
	uint32_t bad_seq = 0;
	struct mnl_socket *nl;
	char extack[160] = "";
	int bad_errno = 0;

	nl = fw_nl_open(err, errlen);
	if (!nl)
		return -1;
	if (mnl_socket_sendto(nl, fw_batch_data(b), fw_batch_len(b)) < 0) {
		snprintf(err, errlen, "sending the batch: %s (%s)", strerror(errno),
			 fw_nl_hint(errno, true));
		mnl_socket_close(nl);
		return -1;
	}
	/* One reply per message sent with NLM_F_ACK; a batch-level failure
	 * (no permission, no nf_tables) is a single error on BEGIN. */
	while (got < want) {
		struct nlmsghdr *nlh;
		ssize_t n;
		int left;

		if (fw_nl_wait(nl) < 0 || (n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) < 0) {
			snprintf(err, errlen,
				 "reading the kernel's answer: %s (the outcome is unknown: run "
				 "tfguard status)",
				 strerror(errno));
			mnl_socket_close(nl);
			return -1;
		}
		left = (int)n;
		for (nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *e;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			got++;
			if (e->error == 0 || bad_errno)
				continue;
			bad_errno = -e->error;
			bad_seq = nlh->nlmsg_seq;
			str_copy(extack, sizeof(extack), fw_nl_extack(nlh));
			if (bad_seq == fw_batch_seq_first(b))
				got = want; /* nothing else will come */
		}
	}
	mnl_socket_close(nl);
	if (!bad_errno)
		return 0;
	snprintf(err, errlen, "%s: refused by the kernel: %s%s%s%s (%s; nothing was changed)",
		 fw_batch_label(b, bad_seq), strerror(bad_errno), extack[0] ? " [" : "", extack,
		 extack[0] ? "]" : "", fw_nl_hint(bad_errno, bad_seq == fw_batch_seq_first(b)));
	errno = bad_errno;
	return -1;
}

/* ---- reading back ---------------------------------------------------------------------- */

struct fw_chain_seen {
	char name[32];
	char type[16];
	uint32_t hooknum;
	int32_t prio;
	uint32_t policy;
	bool base;
};

struct fw_reader {
	struct fw_state *r_st;
	struct nftnl_rule *r_rules[FW_STATE_RULES_MAX];
	size_t r_nrules;
	bool r_too_many;
	struct fw_chain_seen r_chains[FW_CHAINS_SEEN]; /* chains seen in the table */
	uint32_t r_table_flags;
	bool r_unparsed; /* a reply libnftnl could not parse: never call that "current" */
	size_t r_nchains;
	char r_set_diff[128]; /* the first set or element property apply does not set */
	uint32_t r_genid;
};

/* Sends one request and runs cb over the replies until the ack or NLMSG_DONE. */
static int fw_nl_talk(struct mnl_socket *nl, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	char buf[FW_NL_BUF];
	uint32_t portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int rc;

	if (mnl_socket_sendto(nl, req, req->nlmsg_len) < 0)
		return -1;
	do {
		if (fw_nl_wait(nl) < 0 || (n = mnl_socket_recvfrom(nl, buf, sizeof(buf))) < 0)
			return -1;
		rc = mnl_cb_run(buf, (size_t)n, req->nlmsg_seq, portid, cb, data);
	} while (rc > MNL_CB_STOP);
	return rc < 0 ? -1 : 0;
}

static int fw_gen_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_gen *gen = nftnl_gen_alloc();
	struct fw_reader *rd = data;

	if (!gen)
		return MNL_CB_ERROR;
	if (nftnl_gen_nlmsg_parse(nlh, gen) == 0)
		rd->r_genid = nftnl_gen_get_u32(gen, NFTNL_GEN_ID);
	nftnl_gen_free(gen);
	return MNL_CB_OK;
}

static int fw_udata_cb(const struct nftnl_udata *attr, void *data)
{
	const struct nftnl_udata **tb = data;
	uint8_t type = nftnl_udata_type(attr);

	if (type <= 1)
		tb[type] = attr;
	return 0;
}

/* The comment (udata type 0 for tables and rules) of a userdata blob. */
static void fw_udata_comment(const void *ud, uint32_t len, char *out, size_t outlen)
{
	const struct nftnl_udata *tb[2] = { NULL, NULL };
	const char *s;

	out[0] = '\0';
	if (!ud || nftnl_udata_parse(ud, len, fw_udata_cb, tb) < 0 || !tb[0])
		return;
	s = nftnl_udata_get(tb[0]);
	if (nftnl_udata_len(tb[0]) > 0 && s[nftnl_udata_len(tb[0]) - 1] == '\0')
		snprintf(out, outlen, "%s", s);
}

static int fw_table_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct fw_reader *rd = data;
	const void *ud;
	uint32_t len = 0;

	if (!t)
		return MNL_CB_ERROR;
	if (nftnl_table_nlmsg_parse(nlh, t) < 0) {
		rd->r_unparsed = true;
	} else {
		rd->r_st->fs_present = true;
		rd->r_table_flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
		ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
		fw_udata_comment(ud, len, rd->r_st->fs_comment, sizeof(rd->r_st->fs_comment));
	}
	nftnl_table_free(t);
	return MNL_CB_OK;
}

static int fw_chain_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct fw_reader *rd = data;

	if (!c)
		return MNL_CB_ERROR;
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0)
		rd->r_unparsed = true;
	else if (strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), FW_TABLE) == 0) {
		if (rd->r_nchains < FW_CHAINS_SEEN) {
			struct fw_chain_seen *ch = &rd->r_chains[rd->r_nchains];

			snprintf(ch->name, sizeof(ch->name), "%s",
				 nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
			ch->base = nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM);
			if (ch->base) {
				snprintf(ch->type, sizeof(ch->type), "%s",
					 nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE));
				ch->hooknum = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
				ch->prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
				ch->policy = nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY);
			}
		}
		rd->r_nchains++;
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static void fw_set_diff(struct fw_reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first set property that differs from what apply creates. */
static void fw_set_diff(struct fw_reader *rd, const char *fmt, ...)
{
	va_list ap;

	if (rd->r_set_diff[0])
		return;
	va_start(ap, fmt);
	vsnprintf(rd->r_set_diff, sizeof(rd->r_set_diff), fmt, ap);
	va_end(ap);
}

/*
 * The set must be exactly the one apply creates: no flags (a `timeout`,
 * `dynamic` or `interval` set behaves differently, e.g. its elements expire),
 * key inet_service of 2 bytes, no data, no timeout, no per-set expressions,
 * no size limit and the default policy.
 * Userdata only tells nft how to print, and is not compared.
 */
static int fw_set_cb(const struct nlmsghdr *nlh, void *data)
{
	static const struct {
		uint16_t attr;
		const char *name;
	} absent[] = {
		{ NFTNL_SET_DATA_TYPE, "a data type (a map)" },
		{ NFTNL_SET_DATA_LEN, "a data length (a map)" },
		{ NFTNL_SET_OBJ_TYPE, "an object type" },
		{ NFTNL_SET_TIMEOUT, "a timeout" },
		{ NFTNL_SET_GC_INTERVAL, "a gc-interval" },
		{ NFTNL_SET_EXPR, "an expression" },
		{ NFTNL_SET_EXPRESSIONS, "expressions" },
		{ NFTNL_SET_DESC_CONCAT, "a concatenated key" },
		{ NFTNL_SET_DESC_SIZE, "a size" },
		{ NFTNL_SET_POLICY, "a policy" },
	};
	static const struct {
		uint32_t flag;
		const char *name;
	} flag_names[] = {
		{ NFT_SET_ANONYMOUS, "anonymous" }, { NFT_SET_CONSTANT, "constant" },
		{ NFT_SET_INTERVAL, "interval" },   { NFT_SET_MAP, "map" },
		{ NFT_SET_TIMEOUT, "timeout" },	    { NFT_SET_EVAL, "dynamic" },
		{ NFT_SET_OBJECT, "object" },
	};
	struct nftnl_set *s = nftnl_set_alloc();
	struct fw_reader *rd = data;
	uint32_t flags;
	size_t i;

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_nlmsg_parse(nlh, s) < 0) {
		rd->r_unparsed = true;
		nftnl_set_free(s);
		return MNL_CB_OK;
	}
	flags = nftnl_set_get_u32(s, NFTNL_SET_FLAGS);
	if (flags) {
		char names[96] = "";
		size_t off = 0;

		for (i = 0; i < sizeof(flag_names) / sizeof(flag_names[0]); i++)
			if ((flags & flag_names[i].flag) && off < sizeof(names))
				off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
							off ? " " : "", flag_names[i].name);
		fw_set_diff(rd, "has flags 0x%x (%s)", flags, off ? names : "unknown");
	}
	if (nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) != FW_KEY_INET_SERVICE ||
	    nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) != sizeof(uint16_t))
		fw_set_diff(rd, "has key type %u of %u bytes, not inet_service",
			    nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE),
			    nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN));
	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (nftnl_set_is_set(s, absent[i].attr))
			fw_set_diff(rd, "has %s", absent[i].name);
	nftnl_set_free(s);
	return MNL_CB_OK;
}

/* An element is a port and nothing else: no flags, timeout, expiration, data,
 * expressions or comment. */
static int fw_elem_add(struct nftnl_set_elem *e, void *data)
{
	static const struct {
		uint16_t attr;
		const char *name;
	} absent[] = {
		{ NFTNL_SET_ELEM_TIMEOUT, "a timeout" },
		{ NFTNL_SET_ELEM_EXPIRATION, "an expiration" },
		{ NFTNL_SET_ELEM_DATA, "data" },
		{ NFTNL_SET_ELEM_VERDICT, "a verdict" },
		{ NFTNL_SET_ELEM_CHAIN, "a chain" },
		{ NFTNL_SET_ELEM_OBJREF, "an object reference" },
		{ NFTNL_SET_ELEM_EXPR, "an expression" },
		{ NFTNL_SET_ELEM_EXPRESSIONS, "expressions" },
		{ NFTNL_SET_ELEM_KEY_END, "a range end" },
		{ NFTNL_SET_ELEM_USERDATA, "a comment" },
	};
	struct fw_reader *rd = data;
	struct ports *p = &rd->r_st->fs_ports;
	uint32_t len = 0;
	const uint16_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
	unsigned port = key && len == sizeof(*key) ? ntohs(*key) : 0;
	size_t i;

	if (!key || len != sizeof(*key))
		fw_set_diff(rd, "has an element that is not a port");
	else if (p->p_count < PORTS_MAX)
		p->p_port[p->p_count++] = (uint16_t)port;
	if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
	    nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) != 0)
		fw_set_diff(rd, "element %u has flags 0x%x", port,
			    nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS));
	for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		if (nftnl_set_elem_is_set(e, absent[i].attr))
			fw_set_diff(rd, "element %u has %s", port, absent[i].name);
	return 0;
}

static int fw_elem_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct fw_reader *rd = data;

	if (!s)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, s) == 0) {
		rd->r_st->fs_ports_read = true;
		nftnl_set_elem_foreach(s, fw_elem_add, rd);
	} else {
		rd->r_unparsed = true;
	}
	nftnl_set_free(s);
	return MNL_CB_OK;
}

static int fw_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct fw_reader *rd = data;

	if (!r)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
		rd->r_unparsed = true;
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	if (strcmp(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), FW_TABLE) != 0) {
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	if (rd->r_nrules == FW_STATE_RULES_MAX) {
		rd->r_too_many = true;
		nftnl_rule_free(r);
		return MNL_CB_OK;
	}
	rd->r_rules[rd->r_nrules++] = r;
	return MNL_CB_OK;
}

/* Zeroes counters (after recording them) and forgets handles, so a kernel
 * rule prints exactly like the rule we would build. */
static int fw_expr_normalise(struct nftnl_expr *e, void *data)
{
	struct fw_rule_state *rs = data;
	const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

	if (strcmp(name, "counter") == 0) {
		if (rs) {
			rs->rs_counter = true;
			rs->rs_packets = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_PACKETS);
			rs->rs_bytes = nftnl_expr_get_u64(e, NFTNL_EXPR_CTR_BYTES);
		}
		nftnl_expr_set_u64(e, NFTNL_EXPR_CTR_PACKETS, 0);
		nftnl_expr_set_u64(e, NFTNL_EXPR_CTR_BYTES, 0);
	} else if (strcmp(name, "lookup") == 0) {
		/* the kernel reports the set by name only, and always reports flags
		 * (an inverted lookup, flags 1, must still show as a difference) */
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, 0);
		if (!nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS))
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);
	} else if (rs && strcmp(name, "log") == 0) {
		rs->rs_verdict = "log";
	} else if (rs && strcmp(name, "immediate") == 0 &&
		   nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT)) {
		int v = (int)nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);

		rs->rs_verdict = v == NF_DROP ? "drop" : v == NF_ACCEPT ? "accept" : "other";
	}
	return 0;
}

static void fw_rule_normalise(struct nftnl_rule *r, struct fw_rule_state *rs, char *text,
			      size_t len)
{
	nftnl_rule_unset(r, NFTNL_RULE_HANDLE);
	nftnl_rule_unset(r, NFTNL_RULE_POSITION);
	nftnl_expr_foreach(r, fw_expr_normalise, rs);
	nftnl_rule_snprintf(text, len, r, NFTNL_OUTPUT_DEFAULT, 0);
}

static void fw_mismatch(struct fw_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records the first difference only: it is the one worth reading. */
static void fw_mismatch(struct fw_state *st, const char *fmt, ...)
{
	va_list ap;

	if (!st->fs_match)
		return;
	st->fs_match = false;
	va_start(ap, fmt);
	vsnprintf(st->fs_mismatch, sizeof(st->fs_mismatch), fmt, ap);
	va_end(ap);
}

static void fw_compare_chains(const struct fw_reader *rd, struct fw_state *st)
{
	size_t i, j;

	if (rd->r_nchains != FW_CHAINS)
		fw_mismatch(st, "%zu chains instead of %d", rd->r_nchains, FW_CHAINS);
	for (i = 0; i < FW_CHAINS; i++) {
		const struct fw_chain_seen *ch = NULL;

		for (j = 0; j < rd->r_nchains && j < FW_CHAINS_SEEN; j++)
			if (strcmp(rd->r_chains[j].name, fw_chains[i].cs_name) == 0)
				ch = &rd->r_chains[j];
		if (!ch) {
			fw_mismatch(st, "chain %s is missing", fw_chains[i].cs_name);
			continue;
		}
		if (!ch->base || strcmp(ch->type, "filter") != 0 ||
		    ch->hooknum != fw_chains[i].cs_hook || ch->prio != NF_IP_PRI_MANGLE ||
		    ch->policy != NF_ACCEPT)
			fw_mismatch(st, "chain %s has another type, hook, priority or policy",
				    fw_chains[i].cs_name);
	}
}

static void fw_compare_ports(const struct fw_policy *p, const struct fw_reader *rd,
			     struct fw_state *st)
{
	char want[PORTS_MAX * 7], got[PORTS_MAX * 7];
	struct ports sorted = st->fs_ports;

	ports_sort(&sorted);
	ports_format(&p->fp_ports, want, sizeof(want));
	ports_format(&sorted, got, sizeof(got));
	if (!st->fs_ports_read)
		fw_mismatch(st, "set %s is missing", FW_SET);
	else if (rd->r_set_diff[0])
		fw_mismatch(st, "set %s %s: it is not the set tfguard installs", FW_SET,
			    rd->r_set_diff);
	else if (strcmp(want, got) != 0)
		fw_mismatch(st, "protected ports are {%s}, the config says {%s}", got, want);
}

static void fw_compare_rules(const struct fw_policy *p, struct fw_reader *rd, struct fw_state *st)
{
	char want[2048], got[2048];
	struct nftnl_rule **exp;
	size_t n = 0, i;

	if (rd->r_too_many || rd->r_nrules != p->fp_nrules)
		fw_mismatch(st, "%s rules than the policy",
			    rd->r_nrules > p->fp_nrules || rd->r_too_many ? "more" : "fewer");
	exp = fw_rules_build(p, &n);
	if (!exp) {
		fw_mismatch(st, "out of memory while comparing rules");
		return;
	}
	for (i = 0; i < n && i < rd->r_nrules; i++) {
		if (strcmp(st->fs_rules[i].rs_comment, p->fp_rules[i].rs_comment) != 0) {
			fw_mismatch(st, "rule %s: comment differs from \"%s\"",
				    st->fs_rules[i].rs_comment, p->fp_rules[i].rs_comment);
			continue;
		}
		fw_rule_normalise(exp[i], NULL, want, sizeof(want));
		fw_rule_normalise(rd->r_rules[i], NULL, got, sizeof(got));
		st->fs_rules[i].rs_match = strcmp(want, got) == 0;
		if (!st->fs_rules[i].rs_match)
			fw_mismatch(st,
				    "rule \"%s\" was changed: it is not the rule tfguard installs",
				    p->fp_rules[i].rs_comment);
	}
	fw_rules_free(exp, n);
}

static struct nlmsghdr *fw_req(char *buf, uint16_t type, uint16_t family, uint16_t flags,
			       uint32_t seq)
{
	return nftnl_nlmsg_build_hdr(buf, type, family, flags, seq);
}

/* One consistent read: everything between two equal generation ids. */
static int fw_read_once(struct mnl_socket *nl, struct fw_reader *rd, uint32_t *seq)
{
	char buf[FW_NL_BUF];
	struct nlmsghdr *nlh;
	struct nftnl_table *t;
	struct nftnl_chain *c;
	struct nftnl_set *s;
	struct nftnl_rule *r;
	uint32_t gen_before;
	int rc;

	/* GETGEN needs NLM_F_ACK, or no NLMSG_DONE ever arrives. */
	nlh = fw_req(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, (*seq)++);
	if (fw_nl_talk(nl, nlh, fw_gen_cb, rd) < 0)
		return -1;
	gen_before = rd->r_genid;

	t = nftnl_table_alloc();
	if (!t)
		return -1;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, FW_TABLE);
	nlh = fw_req(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, (*seq)++);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	rc = fw_nl_talk(nl, nlh, fw_table_cb, rd);
	if (rc < 0 && errno == ENOENT)
		goto gen_after; /* no table: nothing more to read */
	if (rc < 0)
		return -1;

	c = nftnl_chain_alloc();
	if (!c)
		return -1;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, FW_TABLE);
	nlh = fw_req(buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP, (*seq)++);
	nftnl_chain_nlmsg_build_payload(nlh, c);
	nftnl_chain_free(c);
	if (fw_nl_talk(nl, nlh, fw_chain_cb, rd) < 0)
		return -1;

	s = nftnl_set_alloc();
	if (!s)
		return -1;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, FW_SET);
	nlh = fw_req(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_ACK, (*seq)++);
	nftnl_set_nlmsg_build_payload(nlh, s);
	rc = fw_nl_talk(nl, nlh, fw_set_cb, rd);
	if (rc == 0) {
		nlh = fw_req(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, (*seq)++);
		nftnl_set_elems_nlmsg_build_payload(nlh, s);
		rc = fw_nl_talk(nl, nlh, fw_elem_cb, rd);
	} else if (errno == ENOENT) {
		rc = 0; /* reported as a mismatch */
	}
	nftnl_set_free(s);
	if (rc < 0)
		return -1;

	r = nftnl_rule_alloc();
	if (!r)
		return -1;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, FW_TABLE);
	nlh = fw_req(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, (*seq)++);
	nftnl_rule_nlmsg_build_payload(nlh, r);
	nftnl_rule_free(r);
	if (fw_nl_talk(nl, nlh, fw_rule_cb, rd) < 0)
		return -1;

gen_after:
	nlh = fw_req(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, (*seq)++);
	if (fw_nl_talk(nl, nlh, fw_gen_cb, rd) < 0)
		return -1;
	return rd->r_genid == gen_before ? 0 : 1;
}

/* "reading the ruleset: REASON (what to do)"; e == 0: it never held still. */
static void fw_read_error(int e, char *err, size_t errlen)
{
	const char *hint = "";

	if (e == EPERM)
		hint = " (run as root or with CAP_NET_ADMIN)";
	else if (e == EOPNOTSUPP || e == EPROTONOSUPPORT || e == EAFNOSUPPORT)
		hint = " (" FW_NO_NFTABLES ")";
	snprintf(err, errlen, "reading the ruleset: %s%s",
		 e ? strerror(e) : "it kept changing while being read", hint);
	errno = e;
}

static void fw_reader_reset(struct fw_reader *rd, struct fw_state *st)
{
	size_t i;

	for (i = 0; i < rd->r_nrules; i++)
		nftnl_rule_free(rd->r_rules[i]);
	memset(rd, 0, sizeof(*rd));
	memset(st, 0, sizeof(*st));
	rd->r_st = st;
}

int fw_read(const struct fw_policy *p, struct fw_state *st, char *err, size_t errlen)
{
	struct fw_reader rd;
	uint32_t seq = (uint32_t)time(NULL);
	struct mnl_socket *nl;
	int tries, saved, rc = 1;
	size_t i;

	memset(&rd, 0, sizeof(rd));
	/* A fresh socket for each try: an interrupted dump leaves its remaining
	 * parts queued on the old one. */
	for (tries = 0; tries < FW_READ_TRIES && rc == 1; tries++) {
		fw_reader_reset(&rd, st);
		nl = fw_nl_open(err, errlen);
		if (!nl)
			return -1;
		rc = fw_read_once(nl, &rd, &seq);
		if (rc < 0 && errno == EINTR)
			rc = 1;
		saved = errno;
		mnl_socket_close(nl);
		errno = saved;
	}
	if (rc != 0) {
		fw_read_error(rc < 0 ? errno : 0, err, errlen);
		fw_reader_reset(&rd, st);
		return -1;
	}
	st->fs_genid = rd.r_genid;
	if (fw_comment_digest(st->fs_comment, st->fs_digest) < 0)
		st->fs_digest[0] = '\0';
	for (i = 0; i < rd.r_nrules; i++) {
		struct fw_rule_state *rs = &st->fs_rules[i];
		uint32_t len = 0;
		const void *ud = nftnl_rule_get_data(rd.r_rules[i], NFTNL_RULE_USERDATA, &len);

		snprintf(rs->rs_chain, sizeof(rs->rs_chain), "%s",
			 nftnl_rule_get_str(rd.r_rules[i], NFTNL_RULE_CHAIN));
		fw_udata_comment(ud, len, rs->rs_comment, sizeof(rs->rs_comment));
		rs->rs_verdict = NULL;
		nftnl_expr_foreach(rd.r_rules[i], fw_expr_normalise, rs);
		if (!rs->rs_verdict)
			rs->rs_verdict = "other";
	}
	st->fs_nrules = rd.r_nrules;
	st->fs_match = st->fs_present;
	if (p && st->fs_present) {
		/* a dormant table is installed but its rules do nothing */
		if (rd.r_table_flags & NFT_TABLE_F_DORMANT)
			fw_mismatch(st, "the table is dormant: its rules are not active");
		else if (rd.r_table_flags)
			fw_mismatch(st, "the table has unexpected flags 0x%x", rd.r_table_flags);
		if (rd.r_unparsed)
			fw_mismatch(st, "a part of the table could not be parsed (newer nftables "
					"features?): it is not the table tfguard installs");
		fw_compare_chains(&rd, st);
		fw_compare_ports(p, &rd, st);
		fw_compare_rules(p, &rd, st);
	}
	fw_reader_reset(&rd, &(struct fw_state){ 0 });
	return 0;
}

/* ---- DNAT rules in other tables -------------------------------------------------------- */

struct fw_dnat_scan {
	const struct ports *s_ports;
	struct fw_dnat *s_out;
	size_t s_max;
	size_t s_n;
};

static const char *fw_family_name(uint32_t f)
{
	switch (f) {
	case NFPROTO_IPV4:
		return "ip";
	case NFPROTO_IPV6:
		return "ip6";
	case NFPROTO_INET:
		return "inet";
	default:
		return "other";
	}
}

/* Ports are 2-byte big-endian values in registers; reg 0..NFT_REG32_15. */
#define FW_REGS 32

static unsigned fw_reg_index(uint32_t reg)
{
	if (reg >= NFT_REG32_00)
		return (reg - NFT_REG32_00) % FW_REGS;
	/* the 128-bit NFT_REG_1..4 alias NFT_REG32_00, 04, 08 and 12 */
	return reg ? ((reg - 1) * 4) % FW_REGS : 0;
}

/* The first protected port in [lo, hi], or 0. */
static unsigned fw_protected_in(const struct ports *p, unsigned lo, unsigned hi)
{
	size_t i;

	for (i = 0; i < p->p_count; i++)
		if (p->p_port[i] >= lo && p->p_port[i] <= hi)
			return p->p_port[i];
	return 0;
}

static void fw_dnat_found(struct fw_dnat_scan *s, struct nftnl_rule *r, const char *kind,
			  unsigned port, bool to)
{
	struct fw_dnat *d;

	if (!port || s->s_n >= s->s_max)
		return;
	d = &s->s_out[s->s_n++];
	snprintf(d->d_table, sizeof(d->d_table), "%s", nftnl_rule_get_str(r, NFTNL_RULE_TABLE));
	snprintf(d->d_chain, sizeof(d->d_chain), "%s", nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	d->d_family = fw_family_name(nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY));
	d->d_kind = kind;
	d->d_handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
	d->d_port = port;
	d->d_to_port = to;
}

/* A 2-byte big-endian port held by expression attribute attr, or -1. */
static int fw_be16(const struct nftnl_expr *e, uint16_t attr)
{
	uint32_t len = 0;
	const uint8_t *b = nftnl_expr_get(e, attr, &len);

	return b && len == 2 ? (b[0] << 8) | b[1] : -1;
}

static void fw_dnat_rule(struct fw_dnat_scan *s, struct nftnl_rule *r)
{
	int reg_port[FW_REGS];		     /* port held by a register, or -1 */
	bool reg_dport[FW_REGS] = { false }; /* register loaded with the dport */
	unsigned matched = 0;		     /* a protected port the rule matches on */
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	size_t i;

	for (i = 0; i < FW_REGS; i++)
		reg_port[i] = -1;
	it = nftnl_expr_iter_create(r);
	if (!it)
		return;
	while ((e = nftnl_expr_iter_next(it))) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

		if (strcmp(name, "payload") == 0) {
			unsigned dreg =
			    fw_reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_DREG));

			reg_dport[dreg] = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE) ==
					      NFT_PAYLOAD_TRANSPORT_HEADER &&
					  nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET) == 2 &&
					  nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN) == 2;
		} else if (strcmp(name, "cmp") == 0) {
			unsigned sreg = fw_reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_SREG));
			int p = fw_be16(e, NFTNL_EXPR_CMP_DATA);

			if (reg_dport[sreg] && p > 0 &&
			    nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP) == NFT_CMP_EQ)
				matched = fw_protected_in(s->s_ports, (unsigned)p, (unsigned)p);
		} else if (strcmp(name, "range") == 0) {
			/* tcp dport 8500-8502 */
			unsigned sreg = fw_reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_SREG));
			int lo = fw_be16(e, NFTNL_EXPR_RANGE_FROM_DATA);
			int hi = fw_be16(e, NFTNL_EXPR_RANGE_TO_DATA);

			if (reg_dport[sreg] && lo > 0 && hi >= lo &&
			    nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_OP) == NFT_RANGE_EQ)
				matched = fw_protected_in(s->s_ports, (unsigned)lo, (unsigned)hi);
		} else if (strcmp(name, "immediate") == 0 &&
			   nftnl_expr_is_set(e, NFTNL_EXPR_IMM_DATA)) {
			unsigned dreg = fw_reg_index(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_DREG));

			/* dnat to ADDR:PORT loads the address and the port into two registers */
			reg_port[dreg] = fw_be16(e, NFTNL_EXPR_IMM_DATA);
		} else if ((strcmp(name, "nat") == 0 &&
			    nftnl_expr_get_u32(e, NFTNL_EXPR_NAT_TYPE) == NFT_NAT_DNAT) ||
			   strcmp(name, "redir") == 0) {
			bool redir = name[0] == 'r';
			uint16_t amin =
			    redir ? NFTNL_EXPR_REDIR_REG_PROTO_MIN : NFTNL_EXPR_NAT_REG_PROTO_MIN;
			uint16_t amax =
			    redir ? NFTNL_EXPR_REDIR_REG_PROTO_MAX : NFTNL_EXPR_NAT_REG_PROTO_MAX;
			const char *kind = redir ? "redirect" : "DNAT";

			if (nftnl_expr_is_set(e, amin)) {
				/* translated to a port, or a range (dnat to ADDR:8400-8600) */
				int lo = reg_port[fw_reg_index(nftnl_expr_get_u32(e, amin))];
				int hi = nftnl_expr_is_set(e, amax)
					     ? reg_port[fw_reg_index(nftnl_expr_get_u32(e, amax))]
					     : lo;

				if (lo > 0 && hi >= lo)
					fw_dnat_found(
					    s, r, kind,
					    fw_protected_in(s->s_ports, (unsigned)lo, (unsigned)hi),
					    true);
			} else {
				/* the port is kept: what the rule matched on arrives */
				fw_dnat_found(s, r, kind, matched, false);
			}
		}
	}
	nftnl_expr_iter_destroy(it);
}

static int fw_dnat_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct fw_dnat_scan *s = data;

	if (!r)
		return MNL_CB_ERROR;
	if (nftnl_rule_nlmsg_parse(nlh, r) == 0 &&
	    !(nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY) == NFPROTO_INET &&
	      strcmp(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), FW_TABLE) == 0))
		fw_dnat_rule(s, r);
	nftnl_rule_free(r);
	return MNL_CB_OK;
}

int fw_scan_dnat(const struct ports *ports, struct fw_dnat *out, size_t max, char *err,
		 size_t errlen)
{
	struct fw_dnat_scan s = { ports, out, max, 0 };
	char buf[FW_NL_BUF];
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	int rc, tries, saved = 0;

	/* an interrupted dump (the ruleset changed meanwhile) is read again, from
	 * the start and on a fresh socket */
	for (tries = 0; tries < FW_READ_TRIES; tries++) {
		nl = fw_nl_open(err, errlen);
		if (!nl)
			return -1;
		s.s_n = 0;
		nlh =
		    fw_req(buf, NFT_MSG_GETRULE, NFPROTO_UNSPEC, NLM_F_DUMP, (uint32_t)time(NULL));
		rc = fw_nl_talk(nl, nlh, fw_dnat_cb, &s);
		saved = errno;
		mnl_socket_close(nl);
		if (rc == 0)
			return (int)s.s_n;
		if (saved != EINTR)
			break;
	}
	fw_read_error(saved == EINTR ? 0 : saved, err, errlen);
	return -1;
}
