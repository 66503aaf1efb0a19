# shellcheck shell=bash
# check_env.sh: tfguard check in a namespace of the test's own, for the audit
# tests. Source after lib.sh; ck_setup creates namespaces NS (audited, with the
# firewall applied from an empty config) and OTHER (a second one).

ck_setup() {
	need_root
	need_cmd jq nft
	netns_new NS
	netns_new OTHER
	CK_CONF=$TFG_TMP/empty.conf
	: >"$CK_CONF"
	check "apply in the audited namespace" tfguard_ns "$NS" apply
}
# ck_run [ENV=VALUE...] -- CHECK-ARGS...: tfguard check --json in NS, with the
# environment given; sets JSON (stdout), RC and ERR (stderr)
ck_run() {
	local env=()
	while [ "$1" != -- ]; do env+=("$1"); shift; done
	shift
	JSON=$(ip netns exec "$NS" env "${env[@]+"${env[@]}"}" "$B/tfguard" -c "$CK_CONF" check --json "$@" 2>"$TFG_TMP/ck_err")
	RC=$?
	ERR=$(cat "$TFG_TMP/ck_err")
}
ck_status() { jq -r --arg id "$1" '.controls[] | select(.id == $id) | .status' <<<"$JSON"; }
ck_evidence() { jq -r --arg id "$1" '.controls[] | select(.id == $id) | .evidence[]' <<<"$JSON"; }
# ck_baseline: a correct namespace is compliant, NET-1 passing
ck_baseline() {
	ck_run -- --netns "$NS,$OTHER"
	check "baseline: compliant (exit $RC, NET-1 $(ck_status NET-1))" bash -c "[ $RC = 0 ] && [ '$(ck_status NET-1)' = pass ]"
}
# ck_jq FILTER: the JSON satisfies FILTER (jq -e)
ck_jq() { jq -e "$1" >/dev/null <<<"$JSON"; }
