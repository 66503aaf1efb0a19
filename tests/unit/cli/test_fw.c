/*
 * Batch round trip for guard/cli/fw.c: build the nftables batch for a policy,
 * parse every message back with libnftnl and compare field by field. No
 * kernel is needed.
 */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdlib.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "fw.h"
#include "tap.h"

#define MSG_MAX 32

struct parsed {
	uint16_t type[MSG_MAX];
	uint16_t flags[MSG_MAX];
	uint32_t seq[MSG_MAX];
	const struct nlmsghdr *nlh[MSG_MAX];
	size_t n;
};

static void parse_batch(const struct fw_batch *b, struct parsed *out)
{
	const struct nlmsghdr *nlh = fw_batch_data(b);
	int left = (int)fw_batch_len(b);

	memset(out, 0, sizeof(*out));
	for (; mnl_nlmsg_ok(nlh, left) && out->n < MSG_MAX; nlh = mnl_nlmsg_next(nlh, &left)) {
		out->type[out->n] = nlh->nlmsg_type;
		out->flags[out->n] = nlh->nlmsg_flags;
		out->seq[out->n] = nlh->nlmsg_seq;
		out->nlh[out->n++] = nlh;
	}
	ok(left == 0, "batch holds whole messages only");
}

static uint16_t nft(int msg)
{
	return (uint16_t)((NFNL_SUBSYS_NFTABLES << 8) | msg);
}

static int udata_cb(const struct nftnl_udata *attr, void *data)
{
	const struct nftnl_udata **tb = data;

	if (nftnl_udata_type(attr) == 0)
		tb[0] = attr;
	return 0;
}

static const char *comment_of(const void *ud, uint32_t len)
{
	const struct nftnl_udata *tb[1] = { NULL };

	if (!ud || nftnl_udata_parse(ud, len, udata_cb, tb) < 0 || !tb[0])
		return "";
	return nftnl_udata_get(tb[0]);
}

static void policy(struct fw_policy *p, const char *text)
{
	char err[CONF_ERR_MAX];
	struct conf c;

	conf_defaults(&c);
	if (conf_load_buf(&c, "t.conf", text, strlen(text), err, sizeof(err)) < 0)
		printf("# config error: %s\n", err);
	fw_policy_from_conf(p, &c);
	conf_free(&c);
}

/*
 * Walks NFTA_SET_ELEM_LIST_ELEMENTS -> NFTA_LIST_ELEM -> NFTA_SET_ELEM_KEY ->
 * NFTA_DATA_VALUE with libmnl alone: libnftnl numbers the element nests 1, 2,
 * 3... (the kernel ignores the nest type) and its own parser accepts only
 * NFTA_LIST_ELEM (1), so it cannot read back what it writes.
 */
static int elems_parse(const struct nlmsghdr *nlh, struct ports *out)
{
	const struct nlattr *a, *elem, *k, *v;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(elem, a)
		{
			mnl_attr_for_each_nested(k, elem)
			{
				if (mnl_attr_get_type(k) != NFTA_SET_ELEM_KEY)
					continue;
				mnl_attr_for_each_nested(v, k)
				{
					if (mnl_attr_get_type(v) != NFTA_DATA_VALUE ||
					    mnl_attr_get_payload_len(v) != 2 ||
					    out->p_count == PORTS_MAX)
						return -1;
					out->p_port[out->p_count++] =
					    ntohs(*(const uint16_t *)mnl_attr_get_payload(v));
				}
			}
		}
	}
	return out->p_count ? 0 : -1;
}

static void test_apply_batch(const char *name, const char *text, size_t nrules)
{
	char err[256], want[2048], got[2048];
	struct nftnl_rule **exp;
	struct fw_policy p;
	struct fw_batch *b;
	struct parsed m;
	size_t i, nexp = 0, r;

	subtest(name);
	policy(&p, text);
	is_int(p.fp_nrules, nrules, "rule count of the policy");
	b = fw_batch_build(&p, FW_OP_APPLY, 0, err, sizeof(err));
	if (!ok(b != NULL, "batch built"))
		return;
	parse_batch(b, &m);
	/* BEGIN, 3 table messages, set, elements, 3 chains, rules, END */
	is_int(m.n, 2 + 3 + 2 + 3 + nrules, "message count");
	is_int(fw_batch_acks(b), m.n - 2, "every object message asks for an ack");
	is_int(m.type[0], NFNL_MSG_BATCH_BEGIN, "starts with BEGIN");
	is_int(m.type[m.n - 1], NFNL_MSG_BATCH_END, "ends with END");
	is_int(m.seq[0], fw_batch_seq_first(b), "BEGIN carries the first sequence number");
	for (i = 1; i < m.n; i++)
		if (m.seq[i] != m.seq[i - 1] + 1)
			break;
	is_int(i, m.n, "sequence numbers are consecutive");
	for (i = 1; i + 1 < m.n; i++)
		if (!(m.flags[i] & NLM_F_ACK) || !(m.flags[i] & NLM_F_REQUEST))
			break;
	is_int(i, m.n - 1, "NLM_F_ACK|NLM_F_REQUEST on every object");

	/* the replace idiom: NEWTABLE (no EXCL), DELTABLE, NEWTABLE */
	is_int(m.type[1], nft(NFT_MSG_NEWTABLE), "1: NEWTABLE");
	ok(!(m.flags[1] & NLM_F_EXCL), "first NEWTABLE has no EXCL (works if the table exists)");
	is_int(m.type[2], nft(NFT_MSG_DELTABLE), "2: DELTABLE");
	is_int(m.type[3], nft(NFT_MSG_NEWTABLE), "3: NEWTABLE");
	for (i = 1; i <= 3; i++) {
		struct nftnl_table *t = nftnl_table_alloc();

		ok(nftnl_table_nlmsg_parse(m.nlh[i], t) == 0, "table message parses");
		is_str(nftnl_table_get_str(t, NFTNL_TABLE_NAME), "tfguard", "table name");
		is_int(nftnl_table_get_u32(t, NFTNL_TABLE_FAMILY), NFPROTO_INET, "inet family");
		if (i == 3) {
			uint32_t len = 0;
			const void *ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);

			is_str(comment_of(ud, len), p.fp_comment, "table comment holds the digest");
		}
		nftnl_table_free(t);
	}
	is_str(fw_batch_label(b, m.seq[2]), "old table inet tfguard", "label of the DELTABLE");

	{
		struct nftnl_set *s = nftnl_set_alloc();
		struct ports got_ports = { 0 };

		is_int(m.type[4], nft(NFT_MSG_NEWSET), "4: NEWSET");
		ok(nftnl_set_nlmsg_parse(m.nlh[4], s) == 0, "set parses");
		is_str(nftnl_set_get_str(s, NFTNL_SET_NAME), "ports", "set name");
		is_int(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), 13, "key type inet_service");
		is_int(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), 2, "key length 2");
		is_int(nftnl_set_get_u32(s, NFTNL_SET_ID), 1, "set id for the lookups");
		nftnl_set_free(s);
		is_int(m.type[5], nft(NFT_MSG_NEWSETELEM), "5: NEWSETELEM");
		ok(elems_parse(m.nlh[5], &got_ports) == 0, "elements parse");
		is_int(got_ports.p_count, p.fp_ports.p_count, "element count = port count");
		ok(memcmp(got_ports.p_port, p.fp_ports.p_port,
			  p.fp_ports.p_count * sizeof(uint16_t)) == 0,
		   "elements are the protected ports, in network byte order");
	}

	for (i = 6; i <= 8; i++) {
		static const char *names[] = { "prerouting", "input", "forward" };
		static const unsigned hooks[] = { NF_INET_PRE_ROUTING, NF_INET_LOCAL_IN,
						  NF_INET_FORWARD };
		struct nftnl_chain *c = nftnl_chain_alloc();

		is_int(m.type[i], nft(NFT_MSG_NEWCHAIN), "NEWCHAIN");
		ok(nftnl_chain_nlmsg_parse(m.nlh[i], c) == 0, "chain parses");
		is_str(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), names[i - 6], "chain name");
		is_int(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM), hooks[i - 6], "hook");
		is_int(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), -150, "priority mangle (-150)");
		is_int(nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY), NF_ACCEPT, "policy accept");
		is_str(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), "filter", "filter chain");
		nftnl_chain_free(c);
	}

	exp = fw_rules_build(&p, &nexp);
	ok(exp && nexp == nrules, "expected rules built");
	for (r = 0; r < nrules && exp; r++) {
		struct nftnl_rule *rule = nftnl_rule_alloc();
		uint32_t len = 0;
		const void *ud;

		is_int(m.type[9 + r], nft(NFT_MSG_NEWRULE), "NEWRULE");
		ok(m.flags[9 + r] & NLM_F_APPEND, "rules are appended in order");
		ok(nftnl_rule_nlmsg_parse(m.nlh[9 + r], rule) == 0, "rule parses");
		is_str(nftnl_rule_get_str(rule, NFTNL_RULE_CHAIN), p.fp_rules[r].rs_chain,
		       "rule chain");
		ud = nftnl_rule_get_data(rule, NFTNL_RULE_USERDATA, &len);
		is_str(comment_of(ud, len), p.fp_rules[r].rs_comment, "rule comment");
		nftnl_rule_snprintf(want, sizeof(want), exp[r], NFTNL_OUTPUT_DEFAULT, 0);
		nftnl_rule_snprintf(got, sizeof(got), rule, NFTNL_OUTPUT_DEFAULT, 0);
		is_str(got, want, "rule expressions round-trip");
		nftnl_rule_free(rule);
	}
	fw_rules_free(exp, nexp);
	fw_batch_free(b);
}

static void test_rule_shapes(void)
{
	char text[2048];
	struct nftnl_rule **r;
	struct fw_policy p;
	size_t n = 0;

	subtest("rule shapes (the nft bytecode the research verified)");
	policy(&p, "[guard]\nlog_drops = yes\nstrict = yes\n");
	r = fw_rules_build(&p, &n);
	if (!ok(r && n == 9, "nine rules with logging and strict mode"))
		return;
	nftnl_rule_snprintf(text, sizeof(text), r[0], NFTNL_OUTPUT_DEFAULT, 0);
	ok(strstr(text, "[ meta load iif => reg 1 ]") &&
	       strstr(text, "[ cmp eq reg 1 0x00000001 ]") &&
	       strstr(text, "[ immediate reg 0 accept ]"),
	   "iif lo accept");
	nftnl_rule_snprintf(text, sizeof(text), r[2], NFTNL_OUTPUT_DEFAULT, 0);
	ok(strstr(text, "[ fib daddr type => reg 1 ]") &&
	       strstr(text, "[ cmp eq reg 1 0x00000002 ]"),
	   "fib daddr type local");
	ok(strstr(text, "[ meta load l4proto => reg 1 ]") &&
	       strstr(text, "[ cmp eq reg 1 0x00000006 ]"),
	   "meta l4proto tcp (not ip protocol: the table is inet)");
	ok(strstr(text, "[ payload load 2b @ transport header + 2 => reg 1 ]") &&
	       strstr(text, "[ lookup reg 1 set ports ]"),
	   "tcp dport @ports");
	ok(strstr(text, "[ counter pkts 0 bytes 0 ]") && strstr(text, "[ immediate reg 0 drop ]"),
	   "counter drop");
	nftnl_rule_snprintf(text, sizeof(text), r[1], NFTNL_OUTPUT_DEFAULT, 0);
	ok(strstr(text, "[ limit rate 10/minute burst 5 type packets") &&
	       strstr(text, "[ log prefix tfguard-drop: "),
	   "rate-limited log with the documented prefix");
	ok(!strstr(text, "immediate"), "the log rule has no verdict");
	nftnl_rule_snprintf(text, sizeof(text), r[5], NFTNL_OUTPUT_DEFAULT, 0);
	ok(!strstr(text, "fib") && !strstr(text, "ct load") &&
	       strstr(text, "lookup reg 1 set ports") && strstr(text, "[ immediate reg 0 drop ]"),
	   "input: any TCP to a protected port after NAT (a redirect onto the host)");
	nftnl_rule_snprintf(text, sizeof(text), r[7], NFTNL_OUTPUT_DEFAULT, 0);
	ok(strstr(text, "[ ct load status => reg 1 ]") &&
	       strstr(text, "[ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]") &&
	       strstr(text, "[ cmp neq reg 1 0x00000000 ]"),
	   "ct status dnat");
	nftnl_rule_snprintf(text, sizeof(text), r[5], NFTNL_OUTPUT_DEFAULT, 0);
	ok(!strstr(text, "ct load") && !strstr(text, "fib") &&
	       strstr(text, "lookup reg 1 set ports"),
	   "strict: any forwarded TCP to a protected port");
	fw_rules_free(r, n);
}

static void test_remove_and_fault(void)
{
	struct fw_policy p;
	struct fw_batch *b;
	struct parsed m;
	char err[256];

	subtest("remove batch and fault injection");
	policy(&p, "");
	b = fw_batch_build(&p, FW_OP_REMOVE, 0, err, sizeof(err));
	parse_batch(b, &m);
	is_int(m.n, 4, "remove: BEGIN, NEWTABLE, DELTABLE, END");
	is_int(m.type[1], nft(NFT_MSG_NEWTABLE), "remove creates the table if absent (idempotent)");
	is_int(m.type[2], nft(NFT_MSG_DELTABLE), "then deletes it");
	fw_batch_free(b);

	b = fw_batch_build(&p, FW_OP_APPLY, 3, err, sizeof(err));
	parse_batch(b, &m);
	is_int(m.n, 2 + 3 + 2 + 3 + 5 + 1, "fault adds one message");
	is_int(m.type[4], nft(NFT_MSG_NEWRULE), "the fault rule follows the third object");
	is_str(fw_batch_label(b, m.seq[4]), "rule \"test fault\"", "and is labelled");
	fw_batch_free(b);
}

/* apply --fallback: one NEWTABLE with EXCL, so an existing table makes the
 * kernel refuse the whole batch (EEXIST) instead of replacing it */
static void test_create_batch(void)
{
	struct fw_policy p;
	struct fw_batch *b;
	struct parsed m;
	char err[256];
	size_t i, tables = 0;

	subtest("create batch (apply --fallback)");
	policy(&p, "");
	b = fw_batch_build(&p, FW_OP_CREATE, 0, err, sizeof(err));
	if (!ok(b != NULL, "batch built"))
		return;
	parse_batch(b, &m);
	is_int(m.n, 2 + 1 + 2 + 3 + 5, "BEGIN, NEWTABLE, set, elements, 3 chains, 5 rules, END");
	is_int(m.type[1], nft(NFT_MSG_NEWTABLE), "1: NEWTABLE");
	ok((m.flags[1] & NLM_F_EXCL) && (m.flags[1] & NLM_F_CREATE),
	   "NEWTABLE with EXCL: refused if the table exists");
	for (i = 1; i + 1 < m.n; i++)
		if (m.type[i] == nft(NFT_MSG_NEWTABLE) || m.type[i] == nft(NFT_MSG_DELTABLE))
			tables++;
	is_int(tables, 1, "no DELTABLE: an installed table can never be replaced");
	is_int(m.type[2], nft(NFT_MSG_NEWSET), "2: NEWSET");
	fw_batch_free(b);
}

static void test_digest_and_print(void)
{
	struct fw_policy a, b;
	char d[17], *text;
	size_t len;
	FILE *f;

	subtest("digest and nft text");
	policy(&a, "[guard]\nprotected_ports = 8501, 8500\n");
	policy(&b, "");
	is_str(a.fp_digest, b.fp_digest, "same ports in another order: same digest");
	policy(&b, "[guard]\nprotected_ports = 8500, 8501, 9000\n");
	ok(strcmp(a.fp_digest, b.fp_digest) != 0, "another port list: another digest");
	policy(&b, "[guard]\nlog_drops = yes\n");
	ok(strcmp(a.fp_digest, b.fp_digest) != 0, "logging changes the digest");
	policy(&b, "[guard]\nstrict = yes\n");
	ok(strcmp(a.fp_digest, b.fp_digest) != 0, "strict mode changes the digest");
	ok(fw_comment_digest(a.fp_comment, d) == 0, "our comment parses");
	is_str(d, a.fp_digest, "digest read back from the comment");
	ok(fw_comment_digest("tfguard 0.1.0 policy 123", d) < 0, "short digest refused");
	ok(fw_comment_digest("someone else policy 0123456789abcdef", d) < 0,
	   "foreign comment refused");
	ok(fw_comment_digest("tfguard 9 policy 0123456789abcdeF", d) < 0, "upper case refused");

	f = open_memstream(&text, &len);
	policy(&b, "[guard]\nprotected_ports = 9000, 8500\nlog_drops = yes\nlog_rate = 3r/s\n");
	ok(fw_print(&b, f) == 0, "print succeeds");
	fclose(f);
	ok(strstr(text, "add table inet tfguard\ndelete table inet tfguard\n") != NULL,
	   "print replaces the table atomically");
	ok(strstr(text, "elements = { 8500, 9000 }") != NULL, "ports in the set");
	ok(strstr(text, "type filter hook prerouting priority mangle; policy accept;") != NULL,
	   "prerouting chain at mangle");
	ok(strstr(text, "limit rate 3/second burst 3 packets log prefix \"tfguard-drop: \"") !=
	       NULL,
	   "log rate from the config, burst defaults to the rate");
	ok(strstr(text, b.fp_comment) != NULL, "table comment printed");
	free(text);
}

int main(void)
{
	test_apply_batch("default policy", "", 5);
	test_apply_batch("logging", "[guard]\nlog_drops = yes\n", 8);
	test_apply_batch("strict, three ports",
			 "[guard]\nprotected_ports = 1, 8500, 65535\nstrict = yes\n", 6);
	test_rule_shapes();
	test_remove_and_fault();
	test_create_batch();
	test_digest_and_print();
	return done_testing();
}
