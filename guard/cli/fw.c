#include "fw.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter_ipv4.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "str.h"

#define FW_SET_ID	 1
#define FW_BYTEORDER_BIG 2 /* nft's BYTEORDER_BIG_ENDIAN, kept in the set's userdata */
#define FW_LABEL_MAX	 96
#define FW_FAULT_CHAIN	 "tfguard-test-fault"

struct fw_label {
	uint32_t l_seq;
	char l_text[FW_LABEL_MAX];
};

struct fw_batch {
	char *b_buf;
	size_t b_cap;
	struct mnl_nlmsg_batch *b_mnl;
	uint32_t b_seq_first;
	uint32_t b_seq;
	size_t b_acks;
	struct fw_label *b_labels;
	size_t b_nlabels;
	size_t b_maxlabels;
	bool b_full;
};

/* ---- policy ------------------------------------------------------------------------ */

const struct fw_chain_spec fw_chains[FW_CHAINS] = {
	{ FW_CHAIN_PRE, NF_INET_PRE_ROUTING, "prerouting" },
	{ FW_CHAIN_IN, NF_INET_LOCAL_IN, "input" },
	{ FW_CHAIN_FWD, NF_INET_FORWARD, "forward" },
};

/*
 * FNV-1a 64 over the canonical policy text. The digest detects drift between
 * the config and the installed table; it is not a MAC (anyone who can rewrite
 * the table can rewrite its comment), which is why status/check also compare
 * the rules themselves.
 */
static uint64_t fw_fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	/* a final avalanche (MurmurHash3's fmix64), so that one changed setting
	 * changes the whole digest, not two hex digits of it */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static void fw_rule_add(struct fw_policy *p, const char *chain, enum fw_match m, enum fw_action a,
			const char *comment)
{
	if (p->fp_nrules < FW_RULES_MAX)
		p->fp_rules[p->fp_nrules++] = (struct fw_rule_spec){ chain, m, a, comment };
}

void fw_policy_from_conf(struct fw_policy *p, const struct conf *c)
{
	char canon[512], ports[PORTS_MAX * 7];

	memset(p, 0, sizeof(*p));
	p->fp_ports = c->c_guard.g_ports;
	p->fp_log = c->c_guard.g_log_drops;
	p->fp_log_rate = c->c_guard.g_log_rate;
	if (p->fp_log_rate.r_burst == 0)
		p->fp_log_rate.r_burst = p->fp_log_rate.r_rate;
	p->fp_strict = c->c_guard.g_strict;

	fw_rule_add(p, FW_CHAIN_PRE, FW_MATCH_LOOPBACK, FW_ACCEPT, "tfguard: loopback is trusted");
	if (p->fp_log)
		fw_rule_add(p, FW_CHAIN_PRE, FW_MATCH_LOCAL_PROTECTED, FW_LOG,
			    "tfguard: log outside access");
	fw_rule_add(p, FW_CHAIN_PRE, FW_MATCH_LOCAL_PROTECTED, FW_DROP,
		    "tfguard: protected port from outside");
	fw_rule_add(p, FW_CHAIN_IN, FW_MATCH_LOOPBACK, FW_ACCEPT, "tfguard: loopback is trusted");
	if (p->fp_log)
		fw_rule_add(p, FW_CHAIN_IN, FW_MATCH_PROTECTED, FW_LOG,
			    "tfguard: log redirected access");
	fw_rule_add(p, FW_CHAIN_IN, FW_MATCH_PROTECTED, FW_DROP,
		    "tfguard: NAT redirect onto a protected port");
	if (p->fp_log)
		fw_rule_add(p, FW_CHAIN_FWD, FW_MATCH_DNAT_PROTECTED, FW_LOG,
			    "tfguard: log DNAT access");
	fw_rule_add(p, FW_CHAIN_FWD, FW_MATCH_DNAT_PROTECTED, FW_DROP,
		    "tfguard: DNAT onto a protected port");
	if (p->fp_strict)
		fw_rule_add(p, FW_CHAIN_FWD, FW_MATCH_PROTECTED, FW_DROP,
			    "tfguard: strict, forwarded to a protected port");

	ports_format(&p->fp_ports, ports, sizeof(ports));
	snprintf(canon, sizeof(canon), "tfguard-policy-v%d|ports=%s|log=%d|rate=%u/%u/%u|strict=%d",
		 FW_POLICY_VERSION, ports, p->fp_log, p->fp_log ? p->fp_log_rate.r_rate : 0,
		 p->fp_log ? p->fp_log_rate.r_period_s : 0, p->fp_log ? p->fp_log_rate.r_burst : 0,
		 p->fp_strict);
	snprintf(p->fp_digest, sizeof(p->fp_digest), "%016" PRIx64, fw_fnv1a(canon));
	snprintf(p->fp_comment, sizeof(p->fp_comment), "tfguard %s policy %s", TFG_VERSION,
		 p->fp_digest);
}

int fw_comment_digest(const char *comment, char digest[17])
{
	const char *d;
	size_t i;

	if (strncmp(comment, "tfguard ", 8) != 0)
		return -1;
	d = strstr(comment, " policy ");
	if (!d)
		return -1;
	d += 8;
	for (i = 0; i < 16; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return -1;
	if (d[16] != '\0')
		return -1;
	memcpy(digest, d, 17);
	return 0;
}

/* ---- nft text ------------------------------------------------------------------------ */

static const char *fw_match_text(enum fw_match m)
{
	switch (m) {
	case FW_MATCH_LOOPBACK:
		return "iif \"lo\"";
	case FW_MATCH_LOCAL_PROTECTED:
		return "fib daddr type local tcp dport @" FW_SET;
	case FW_MATCH_DNAT_PROTECTED:
		return "ct status dnat tcp dport @" FW_SET;
	case FW_MATCH_PROTECTED:
		return "tcp dport @" FW_SET;
	}
	return "";
}

static void fw_print_chain(const struct fw_policy *p, FILE *f, const char *chain, const char *hook)
{
	size_t i;

	fprintf(f, "\n\tchain %s {\n\t\ttype filter hook %s priority mangle; policy accept;\n",
		chain, hook);
	for (i = 0; i < p->fp_nrules; i++) {
		const struct fw_rule_spec *r = &p->fp_rules[i];

		if (strcmp(r->rs_chain, chain) != 0)
			continue;
		fprintf(f, "\t\t%s ", fw_match_text(r->rs_match));
		switch (r->rs_action) {
		case FW_ACCEPT:
			fputs("accept", f);
			break;
		case FW_LOG:
			fprintf(f, "limit rate %u/%s burst %u packets log prefix \"%s\"",
				p->fp_log_rate.r_rate,
				p->fp_log_rate.r_period_s == 1 ? "second" : "minute",
				p->fp_log_rate.r_burst, FW_LOG_PREFIX);
			break;
		case FW_DROP:
			fputs("counter drop", f);
			break;
		}
		fprintf(f, " comment \"%s\"\n", r->rs_comment);
	}
	fputs("\t}\n", f);
}

int fw_print(const struct fw_policy *p, FILE *f)
{
	size_t i;

	fprintf(f,
		"#!/usr/sbin/nft -f\n"
		"# Written by `tfguard print` (tfguard %s). Loading it with `nft -f` replaces\n"
		"# table inet %s atomically and leaves every other table alone.\n"
		"add table inet %s\n"
		"delete table inet %s\n\n"
		"table inet %s {\n"
		"\tcomment \"%s\"\n\n"
		"\tset %s {\n"
		"\t\ttype inet_service\n"
		"\t\telements = { ",
		TFG_VERSION, FW_TABLE, FW_TABLE, FW_TABLE, FW_TABLE, p->fp_comment, FW_SET);
	for (i = 0; i < p->fp_ports.p_count; i++)
		fprintf(f, "%s%u", i ? ", " : "", p->fp_ports.p_port[i]);
	fputs(" }\n\t}\n", f);
	for (i = 0; i < FW_CHAINS; i++)
		fw_print_chain(p, f, fw_chains[i].cs_name, fw_chains[i].cs_hook_name);
	fputs("}\n", f);
	return fflush(f) == 0 && !ferror(f) ? 0 : -1;
}

/* ---- libnftnl objects ------------------------------------------------------------------ */

static struct nftnl_expr *fw_expr(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (e)
		nftnl_rule_add_expr(r, e);
	return e;
}

static bool fw_cmp(struct nftnl_rule *r, enum nft_cmp_ops op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = fw_expr(r, "cmp");

	if (!e)
		return false;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	return true;
}

static bool fw_meta(struct nftnl_rule *r, enum nft_meta_keys key)
{
	struct nftnl_expr *e = fw_expr(r, "meta");

	if (!e)
		return false;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	return true;
}

/* "tcp dport @ports": in an inet chain nft compiles it to meta l4proto + payload + lookup. */
static bool fw_tcp_dport_in_set(struct nftnl_rule *r)
{
	uint8_t tcp = IPPROTO_TCP;
	struct nftnl_expr *e;

	if (!fw_meta(r, NFT_META_L4PROTO) || !fw_cmp(r, NFT_CMP_EQ, &tcp, sizeof(tcp)))
		return false;
	if (!(e = fw_expr(r, "payload")))
		return false;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, 2); /* TCP destination port */
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, 2);
	if (!(e = fw_expr(r, "lookup")))
		return false;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, FW_SET);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, FW_SET_ID);
	return true;
}

static bool fw_match_build(struct nftnl_rule *r, enum fw_match m)
{
	struct nftnl_expr *e;
	uint32_t v;

	switch (m) {
	case FW_MATCH_LOOPBACK:
		v = 1; /* the loopback device is ifindex 1 in every network namespace */
		return fw_meta(r, NFT_META_IIF) && fw_cmp(r, NFT_CMP_EQ, &v, sizeof(v));
	case FW_MATCH_LOCAL_PROTECTED:
		if (!(e = fw_expr(r, "fib")))
			return false;
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
		v = RTN_LOCAL;
		return fw_cmp(r, NFT_CMP_EQ, &v, sizeof(v)) && fw_tcp_dport_in_set(r);
	case FW_MATCH_DNAT_PROTECTED: {
		uint32_t mask = IPS_DST_NAT, zero = 0;

		if (!(e = fw_expr(r, "ct")))
			return false;
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
		if (!(e = fw_expr(r, "bitwise")))
			return false;
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
		return fw_cmp(r, NFT_CMP_NEQ, &zero, sizeof(zero)) && fw_tcp_dport_in_set(r);
	}
	case FW_MATCH_PROTECTED:
		return fw_tcp_dport_in_set(r);
	}
	return false;
}

static bool fw_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = fw_expr(r, "immediate");

	if (!e)
		return false;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	return true;
}

static bool fw_action_build(struct nftnl_rule *r, const struct fw_policy *p, enum fw_action a)
{
	struct nftnl_expr *e;

	switch (a) {
	case FW_ACCEPT:
		return fw_verdict(r, NF_ACCEPT, NULL);
	case FW_LOG:
		if (!(e = fw_expr(r, "limit")))
			return false;
		nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_RATE, p->fp_log_rate.r_rate);
		nftnl_expr_set_u64(e, NFTNL_EXPR_LIMIT_UNIT, p->fp_log_rate.r_period_s);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_BURST, p->fp_log_rate.r_burst);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LIMIT_FLAGS, 0);
		if (!(e = fw_expr(r, "log")))
			return false;
		nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, FW_LOG_PREFIX);
		/* the kernel's default, stated so that read-back compares equal */
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_LEVEL, LOG_WARNING);
		return true;
	case FW_DROP:
		return fw_expr(r, "counter") && fw_verdict(r, NF_DROP, NULL);
	}
	return false;
}

/* Rule comments are stored the way nft stores them, so `nft list` shows them. */
static bool fw_rule_comment(struct nftnl_rule *r, const char *comment)
{
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(FW_COMMENT_MAX + 8);
	bool ok;

	if (!ud)
		return false;
	ok = nftnl_udata_put_strz(ud, NFTNL_UDATA_RULE_COMMENT, comment) &&
	     nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(ud),
				 nftnl_udata_buf_len(ud)) == 0;
	nftnl_udata_buf_free(ud);
	return ok;
}

static struct nftnl_rule *fw_rule_new(const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, FW_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	return r;
}

static struct nftnl_rule *fw_rule_from_spec(const struct fw_policy *p, const struct fw_rule_spec *s)
{
	struct nftnl_rule *r = fw_rule_new(s->rs_chain);

	if (r && fw_match_build(r, s->rs_match) && fw_action_build(r, p, s->rs_action) &&
	    fw_rule_comment(r, s->rs_comment))
		return r;
	if (r)
		nftnl_rule_free(r);
	return NULL;
}

struct nftnl_rule **fw_rules_build(const struct fw_policy *p, size_t *n)
{
	struct nftnl_rule **rules = calloc(p->fp_nrules ? p->fp_nrules : 1, sizeof(*rules));
	size_t i;

	if (!rules)
		return NULL;
	for (i = 0; i < p->fp_nrules; i++) {
		rules[i] = fw_rule_from_spec(p, &p->fp_rules[i]);
		if (!rules[i]) {
			fw_rules_free(rules, i);
			return NULL;
		}
	}
	*n = p->fp_nrules;
	return rules;
}

void fw_rules_free(struct nftnl_rule **r, size_t n)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < n; i++)
		nftnl_rule_free(r[i]);
	free(r);
}

/* ---- the batch ------------------------------------------------------------------------ */

static void fw_label(struct fw_batch *b, uint32_t seq, const char *what, const char *name)
{
	struct fw_label *l;

	if (b->b_nlabels == b->b_maxlabels)
		return;
	l = &b->b_labels[b->b_nlabels++];
	l->l_seq = seq;
	snprintf(l->l_text, sizeof(l->l_text), "%s %s", what, name);
}

/* Starts a message with NLM_F_ACK; returns its header, or NULL when the buffer is full. */
static struct nlmsghdr *fw_msg(struct fw_batch *b, uint16_t type, uint16_t flags, const char *what,
			       const char *name)
{
	struct nlmsghdr *nlh;

	if (b->b_full)
		return NULL;
	nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b->b_mnl), type, NFPROTO_INET,
				    flags | NLM_F_ACK, b->b_seq);
	fw_label(b, b->b_seq, what, name);
	b->b_seq++;
	b->b_acks++;
	return nlh;
}

static void fw_msg_end(struct fw_batch *b)
{
	if (!mnl_nlmsg_batch_next(b->b_mnl))
		b->b_full = true;
}

static struct nftnl_table *fw_table_obj(const struct fw_policy *p)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_udata_buf *ud;

	if (!t)
		return NULL;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, FW_TABLE);
	nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
	if (!p)
		return t;
	/* The comment holds version + digest; nft shows it as the table's comment. */
	ud = nftnl_udata_buf_alloc(FW_COMMENT_MAX + 8);
	if (!ud || !nftnl_udata_put_strz(ud, NFTNL_UDATA_TABLE_COMMENT, p->fp_comment) ||
	    nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
				 nftnl_udata_buf_len(ud)) < 0) {
		if (ud)
			nftnl_udata_buf_free(ud);
		nftnl_table_free(t);
		return NULL;
	}
	nftnl_udata_buf_free(ud);
	return t;
}

static bool fw_batch_table(struct fw_batch *b, const struct fw_policy *p, uint16_t type,
			   uint16_t flags, const char *what)
{
	struct nftnl_table *t = fw_table_obj(p);
	struct nlmsghdr *nlh;

	if (!t)
		return false;
	nlh = fw_msg(b, type, flags, what, "inet " FW_TABLE);
	if (nlh) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		fw_msg_end(b);
	}
	nftnl_table_free(t);
	return !b->b_full;
}

static bool fw_batch_set(struct fw_batch *b, const struct fw_policy *p)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(16);
	struct nlmsghdr *nlh;
	bool ok = false;
	size_t i;

	if (!s || !ud)
		goto out;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, FW_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, FW_SET);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, FW_KEY_INET_SERVICE);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, sizeof(uint16_t));
	nftnl_set_set_u32(s, NFTNL_SET_ID, FW_SET_ID);
	/* nft records the key byte order so that it prints ports, not raw numbers */
	if (!nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, FW_BYTEORDER_BIG) ||
	    nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
			       nftnl_udata_buf_len(ud)) < 0)
		goto out;
	nlh = fw_msg(b, NFT_MSG_NEWSET, NLM_F_CREATE, "set", FW_SET);
	if (!nlh)
		goto out;
	nftnl_set_nlmsg_build_payload(nlh, s);
	fw_msg_end(b);

	for (i = 0; i < p->fp_ports.p_count; i++) {
		struct nftnl_set_elem *e = nftnl_set_elem_alloc();
		uint16_t port = htons(p->fp_ports.p_port[i]);

		if (!e)
			goto out;
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, &port, sizeof(port));
		nftnl_set_elem_add(s, e);
	}
	nlh = fw_msg(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, "elements of set", FW_SET);
	if (!nlh)
		goto out;
	nftnl_set_elems_nlmsg_build_payload(nlh, s);
	fw_msg_end(b);
	ok = !b->b_full;
out:
	if (ud)
		nftnl_udata_buf_free(ud);
	if (s)
		nftnl_set_free(s);
	return ok;
}

static bool fw_batch_chain(struct fw_batch *b, const char *name, uint32_t hook)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return false;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, FW_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	/* mangle (-150): after conntrack (-200), before DNAT (-100), so Docker's
	 * published ports are seen with their original destination */
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, NF_IP_PRI_MANGLE);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	nlh = fw_msg(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, "chain", name);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		fw_msg_end(b);
	}
	nftnl_chain_free(c);
	return !b->b_full;
}

static bool fw_batch_rule(struct fw_batch *b, struct nftnl_rule *r, const char *comment)
{
	struct nlmsghdr *nlh;

	char quoted[FW_COMMENT_MAX + 2];

	snprintf(quoted, sizeof(quoted), "\"%s\"", comment);
	nlh = fw_msg(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, "rule", quoted);
	if (!nlh)
		return false;
	nftnl_rule_nlmsg_build_payload(nlh, r);
	fw_msg_end(b);
	return !b->b_full;
}

/* A rule that jumps to a chain that does not exist: the kernel refuses it with ENOENT. */
static bool fw_batch_fault(struct fw_batch *b)
{
	struct nftnl_rule *r = fw_rule_new(FW_CHAIN_PRE);
	bool ok;

	if (!r)
		return false;
	ok = fw_verdict(r, NFT_JUMP, FW_FAULT_CHAIN) && fw_batch_rule(b, r, "test fault");
	nftnl_rule_free(r);
	return ok;
}

static bool fw_batch_policy(struct fw_batch *b, const struct fw_policy *p, bool create,
			    unsigned fault_at)
{
	unsigned objects = 0;
	size_t i;

#define FW_STEP(expr)                                                                              \
	do {                                                                                       \
		if (!(expr))                                                                       \
			return false;                                                              \
		if (++objects == fault_at && !fw_batch_fault(b))                                   \
			return false;                                                              \
	} while (0)
	/* NEWTABLE without EXCL then DELTABLE: works whether or not the table
	 * exists (nft 1.0.6 has no `destroy`), and all of it is one transaction. */
	if (create) {
		FW_STEP(fw_batch_table(b, p, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, "table"));
	} else {
		FW_STEP(fw_batch_table(b, NULL, NFT_MSG_NEWTABLE, NLM_F_CREATE, "table"));
		FW_STEP(fw_batch_table(b, NULL, NFT_MSG_DELTABLE, 0, "old table"));
		FW_STEP(fw_batch_table(b, p, NFT_MSG_NEWTABLE, NLM_F_CREATE, "table"));
	}
	FW_STEP(fw_batch_set(b, p));
	for (i = 0; i < FW_CHAINS; i++)
		FW_STEP(fw_batch_chain(b, fw_chains[i].cs_name, fw_chains[i].cs_hook));
	for (i = 0; i < p->fp_nrules; i++) {
		struct nftnl_rule *r = fw_rule_from_spec(p, &p->fp_rules[i]);
		bool ok = r && fw_batch_rule(b, r, p->fp_rules[i].rs_comment);

		if (r)
			nftnl_rule_free(r);
		FW_STEP(ok);
	}
#undef FW_STEP
	return true;
}

struct fw_batch *fw_batch_build(const struct fw_policy *p, enum fw_op op, unsigned fault_at,
				char *err, size_t errlen)
{
	struct fw_batch *b = calloc(1, sizeof(*b));
	bool ok;

	if (!b)
		goto nomem;
	/* Sized from the policy: each message is well under 1 KiB (a rule with a
	 * comment is ~300 bytes), plus BEGIN/END and the fault rule. */
	b->b_maxlabels = 8 + FW_CHAINS + p->fp_nrules;
	b->b_cap = (b->b_maxlabels + 2) * 1024;
	/* libmnl writes a message before it notices the limit is passed, so the
	 * buffer is twice the limit it is given */
	b->b_buf = calloc(2, b->b_cap);
	b->b_labels = calloc(b->b_maxlabels, sizeof(*b->b_labels));
	if (!b->b_buf || !b->b_labels)
		goto nomem;
	b->b_mnl = mnl_nlmsg_batch_start(b->b_buf, b->b_cap);
	if (!b->b_mnl)
		goto nomem;
	b->b_seq_first = b->b_seq = (uint32_t)time(NULL);
	nftnl_batch_begin(mnl_nlmsg_batch_current(b->b_mnl), b->b_seq++);
	mnl_nlmsg_batch_next(b->b_mnl);
	if (op == FW_OP_REMOVE)
		ok = fw_batch_table(b, NULL, NFT_MSG_NEWTABLE, NLM_F_CREATE, "table") &&
		     fw_batch_table(b, NULL, NFT_MSG_DELTABLE, 0, "table");
	else
		ok = fw_batch_policy(b, p, op == FW_OP_CREATE, fault_at);
	if (!ok) {
		snprintf(err, errlen, "building the nftables batch failed (%s)",
			 b->b_full ? "batch buffer too small, a bug" : strerror(ENOMEM));
		fw_batch_free(b);
		return NULL;
	}
	nftnl_batch_end(mnl_nlmsg_batch_current(b->b_mnl), b->b_seq++);
	mnl_nlmsg_batch_next(b->b_mnl);
	return b;
nomem:
	snprintf(err, errlen, "out of memory");
	fw_batch_free(b);
	return NULL;
}

const void *fw_batch_data(const struct fw_batch *b)
{
	return mnl_nlmsg_batch_head(b->b_mnl);
}

size_t fw_batch_len(const struct fw_batch *b)
{
	return mnl_nlmsg_batch_size(b->b_mnl);
}

uint32_t fw_batch_seq_first(const struct fw_batch *b)
{
	return b->b_seq_first;
}

size_t fw_batch_acks(const struct fw_batch *b)
{
	return b->b_acks;
}

const char *fw_batch_label(const struct fw_batch *b, uint32_t seq)
{
	size_t i;

	if (seq == b->b_seq_first)
		return "batch";
	for (i = 0; i < b->b_nlabels; i++)
		if (b->b_labels[i].l_seq == seq)
			return b->b_labels[i].l_text;
	return "unknown object";
}

void fw_batch_free(struct fw_batch *b)
{
	if (!b)
		return;
	if (b->b_mnl)
		mnl_nlmsg_batch_stop(b->b_mnl);
	free(b->b_buf);
	free(b->b_labels);
	free(b);
}
