#!/bin/bash
# The command line as a new user meets it: every subcommand (as `dstack-p2p --help`
# lists them) with --help, no arguments, an unknown option and an extra argument, its
# exit status and message form checked; the options of each man page and of --help
# checked against each other and against the parser; then status's health exit codes
# and unknown fields and wait's messages against a stand-in agent (fake-control.py),
# read back with python's json parser. Only unix sockets under a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
O=${O:-build}
P2P=$O/dstack-p2p
PY=/usr/bin/python3
T=$(mktemp -d /tmp/test-cli.XXXXXX)
FAKE_PID=
WAIT_PID=
BG_PIDS=()

cleanup() {
	# Under set -e the last command of a failing && list would end the trap (and the
	# script) with the killed stand-in's status, 143, after every check passed.
	if [ -n "$WAIT_PID" ]; then kill "$WAIT_PID" 2>/dev/null || true; fi
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	if [ -n "$FAKE_PID" ]; then
		kill "$FAKE_PID" 2>/dev/null || true
		wait "$FAKE_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; [ -s "$T/err" ] && sed 's/^/  stderr: /' "$T/err" >&2; exit 1; }
pass() { echo "ok: $*"; }

[ -x "$P2P" ] || fail "no $P2P (run make first)"
: >"$T/empty.conf"

# run ARGS...: in a clean environment (no agent, no guest agent, nothing configured);
# sets $rc, leaves stdout and stderr in $T/out and $T/err.
run() {
	rc=0
	env -i PATH="$PATH" DSTACK_P2P_CONTROL="$T/no-agent.sock" P2P_CONFIG="$T/empty.conf" \
		DSTACK_SIMULATOR_ENDPOINT="$T/no-guest-agent.sock" ${EXTRA_ENV:-} \
		timeout "${RUN_TIMEOUT:-20}" "$P2P" "$@" >"$T/out" 2>"$T/err" || rc=$?
}

# Every stderr line is in the one format: "dstack-p2p CMD: ...", the usage line (and
# its continuation) or the pointer to --help.
check_stderr_form() {
	local cmd=$1 line
	while IFS= read -r line; do
		case $line in
		"dstack-p2p $cmd: "* | "Usage: dstack-p2p $cmd"* | "Run 'dstack-p2p $cmd --help'"* | "    "*) ;;
		*) fail "$cmd: stderr line not in the error format: '$line'" ;;
		esac
	done <"$T/err"
}

# usage_error CMD WHAT: exit 2, first line "dstack-p2p CMD: ..." naming WHAT, then the usage line.
usage_error() {
	local cmd=$1 what=$2
	[ "$rc" = 2 ] || fail "$cmd: exit $rc, not 2, for: $what"
	head -1 "$T/err" | grep -q "^dstack-p2p $cmd: " && head -1 "$T/err" | grep -qF "$what" ||
		fail "$cmd: the first line is not 'dstack-p2p $cmd: ...$what'"
	grep -q "^Usage: dstack-p2p $cmd" "$T/err" || fail "$cmd: no usage line after: $what"
	check_stderr_form "$cmd"
}

# --- the commands, from the top-level help
run --help
[ "$rc" = 0 ] || fail "dstack-p2p --help exits $rc"
mapfile -t CMDS < <(sed -n '/^Commands:/,/^$/p' "$T/out" | awk 'NF > 1 { print $1 }')
[ "${#CMDS[@]}" -ge 8 ] || fail "dstack-p2p --help lists ${#CMDS[@]} commands"
run
[ "$rc" = 2 ] && grep -q "^dstack-p2p: no command given" "$T/err" || fail "no command: exit $rc"
run no-such-command
[ "$rc" = 2 ] && grep -q "^dstack-p2p: unknown command 'no-such-command'" "$T/err" ||
	fail "an unknown command: exit $rc"
pass "dstack-p2p lists ${#CMDS[@]} commands (${CMDS[*]}); no command and an unknown one exit 2"

# What an extra argument and an unknown option are, for commands that take operands.
declare -A EXTRA=([show]="wgx0 extra-arg" [chain]="id extra-arg" [cluster]="status extra-arg" [leader]="show extra-arg")
declare -A BEFORE=([chain]="id" [cluster]="status")

# Options as --help lists them (one per line in its Options section) and as the man
# page documents them (the tags of .TP paragraphs in OPTIONS and COMMANDS, and the
# command's SYNOPSIS up to a .br, which starts another spelling), sorted.
help_options() {
	sed -n '/^Options:/,/^$/p' "$T/out" | grep -oE '^  (-[a-zA-Z], )?--[a-z0-9-]+' |
		grep -oE -- '-[a-zA-Z]\b|--[a-z0-9-]+' | { grep -vxE -- '-h|--help' || true; } | sort -u
}
man_options() {
	awk '/^\.SH/ { sec = $0; syn = 0; next }
	     sec ~ /SYNOPSIS/ && /^\.br/ { syn = 0 }
	     sec ~ /SYNOPSIS/ && /^\.B dstack-p2p [a-z]/ { syn = 1 }
	     sec ~ /SYNOPSIS/ { if (syn) print; next }
	     tag { print; tag = 0 }
	     /^\.TP/ && sec ~ /OPTIONS|COMMANDS/ { tag = 1 }' "$1" |
		sed 's/\\-/-/g' | grep -oE -- '(^|[^a-z-])--?[a-zA-Z][a-z0-9-]*' |
		grep -oE -- '--?[a-zA-Z][a-z0-9-]*' | { grep -vxE -- '-h|--help' || true; } | sort -u
}

for cmd in "${CMDS[@]}"; do
	man=docs/man/dstack-p2p-$cmd.1
	[ -f "$man" ] || fail "$cmd: no man page $man"

	run "$cmd" --help
	[ "$rc" = 0 ] || fail "$cmd --help exits $rc"
	head -1 "$T/out" | grep -q "^Usage: dstack-p2p $cmd" || fail "$cmd --help: no usage line first"
	[ -s "$T/err" ] && fail "$cmd --help writes to stderr"
	help_options >"$T/help.opts" || true
	man_options "$man" >"$T/man.opts" || true
	if ! diff -u "$T/man.opts" "$T/help.opts" >"$T/opts.diff"; then
		cat "$T/opts.diff" >&2
		fail "$cmd: options of $man (-) and of --help (+) differ"
	fi
	# Every listed option is one the parser knows: it never calls it unknown.
	while read -r opt; do
		val=$opt
		grep -qE "^  (-[a-zA-Z], )?$opt [A-Z]" <(sed -n '/^Options:/,/^$/p' "$T/out") && val="$opt=x"
		[[ $opt == -? ]] && val=$opt
		run "$cmd" "$val" ${BEFORE[$cmd]:-} --no-such-option-zz
		[ "$rc" = 2 ] || fail "$cmd $val --no-such-option-zz: exit $rc"
		grep -q "unknown option '$opt'" "$T/err" && fail "$cmd: --help lists $opt, the parser refuses it"
	done <"$T/help.opts"

	run "$cmd" --no-such-option ${BEFORE[$cmd]:-}
	usage_error "$cmd" "unknown option '--no-such-option'"
	run "$cmd" --no-such-option --help
	[ "$rc" = 0 ] || fail "$cmd: --help after an unknown option exits $rc"

	# shellcheck disable=SC2086
	run "$cmd" ${EXTRA[$cmd]:-extra-arg}
	usage_error "$cmd" "unexpected argument 'extra-arg'"
	pass "$cmd: --help (options = man page's: $(wc -l <"$T/help.opts")), unknown option, extra argument"
done

# --- no arguments: what each command does on its own, in a clean environment
run version
[ "$rc" = 0 ] && grep -qE '^dstack-p2p [0-9]' "$T/out" || fail "version: exit $rc"
run agent
[ "$rc" = 2 ] && grep -q '^dstack-p2p agent: no cluster contract' "$T/err" || fail "agent without a contract: exit $rc"
run peers
[ "$rc" = 1 ] && grep -q "^dstack-p2p peers: asking the agent at $T/no-agent.sock" "$T/err" || fail "peers without an agent: exit $rc"
run status
[ "$rc" = 2 ] && grep -q '^dstack-p2p status: no agent runs, and no cluster contract' "$T/err" ||
	fail "status without an agent or a contract: exit $rc"
run identity
[ "$rc" = 1 ] && grep -q '^dstack-p2p identity: ' "$T/err" || fail "identity without a guest agent: exit $rc"
run chain
usage_error chain "no command given"
if unshare -n true 2>/dev/null; then
	rc=0
	unshare -n "$P2P" show >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = 0 ] && [ ! -s "$T/out" ] && [ ! -s "$T/err" ] || fail "show in an empty namespace: exit $rc"
fi
for c in version agent peers status identity chain; do check_stderr_form "$c"; done
pass "no arguments: version 0, agent 2, peers 1, status 2, identity 1, chain 2, show 0"

# --- the agent without root: it says what it needs before anything fails for want of it
# (a guest-agent socket only root may open, as in a CVM; no CAP_NET_ADMIN for WireGuard).
if [ "$(id -u)" = 0 ]; then
	chmod 711 "$T"  # uid 65534 may pass through, not list
	mkdir -m 755 "$T/np"
	: >"$T/np/empty.conf"
	chmod 644 "$T/np/empty.conf"
	$PY -c 'import os, socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o600)' "$T/np/dstack.sock"
	rc=0
	env -i PATH="$PATH" P2P_CONFIG="$T/np/empty.conf" DSTACK_SIMULATOR_ENDPOINT="unix:$T/np/dstack.sock" \
		DSTACK_P2P_CONTROL="$T/np/control.sock" CLUSTER_CONTRACT=0x5fbdb2315678afecb367f032d93f642f64180aa3 \
		ETH_RPC_URL=http://127.0.0.1:9 P2P_INTERFACE=np0 \
		setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
		timeout 20 "$P2P" agent >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] || fail "agent as uid 65534: exit $rc, not 1"
	grep -q "cannot open the guest agent's socket: guest agent at unix:$T/np/dstack.sock: connect: permission denied" "$T/err" ||
		fail "agent as uid 65534 does not name the guest agent's socket it may not open"
	grep -q 'the agent needs root or CAP_NET_ADMIN to set up the WireGuard interface np0' "$T/err" ||
		fail "agent as uid 65534 does not say it needs root or CAP_NET_ADMIN"
	grep -qiE 'localhost port 80|kernel has no WireGuard' "$T/err" && fail "agent as uid 65534: misleading errors"
	pass "agent as uid 65534: exit 1 saying it needs root or CAP_NET_ADMIN and naming the socket it may not open"
fi

# --- a demo's node count: the message names how it was started (make, or the script)
demo_n() { # DESC WANT ENV... -- SCRIPT N
	local desc=$1 want=$2
	shift 2
	rc=0
	env -i PATH="$PATH" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = 2 ] && grep -qxF "$want" "$T/err" || fail "$desc: exit $rc, not 2 with '$want'"
}
demo_n "make demo N=1" "make demo N=1: N is the number of nodes, 2 to 200 (e.g. make demo N=2)" \
	MAKELEVEL=1 bash netns-harness/demo.sh 1
demo_n "demo.sh x" "netns-harness/demo.sh x: N is the number of nodes, 2 to 200 (e.g. make demo N=2)" \
	bash netns-harness/demo.sh x
demo_n "make demo-counter N=2" "make demo-counter N=2: N is the number of nodes, 3 to 9 (e.g. make demo-counter N=3)" \
	MAKELEVEL=1 bash netns-harness/demo-counter.sh 2
demo_n "make demo-db N=10" "make demo-db N=10: N is the number of nodes, 3 to 9 (e.g. make demo-db N=3)" \
	MAKELEVEL=1 DB=1 bash netns-harness/demo-counter.sh 10
pass "make demo N=1 / demo-counter N=2 / demo-db N=10: exit 2 naming the make command"
# A cold demo says it compiles the contract: h_contract_compiled is false without the
# artifact or with a source newer than it (forge would compile), true otherwise.
mkdir -p "$T/root/contracts/src" "$T/root/contracts/script" "$T/root/contracts/out/DstackClusterNFT.sol"
# (lib.sh sets H_ROOT to this checkout; the check reads it, so it is set again after.)
# shellcheck disable=SC2034
compiled() { (. netns-harness/lib.sh; H_ROOT=$T/root; h_contract_compiled); }
touch -d '2 minutes ago' "$T/root/contracts/src/DstackClusterNFT.sol"
! compiled || fail "no artifact: said compiled"
touch -d '1 minute ago' "$T/root/contracts/out/DstackClusterNFT.sol/DstackClusterNFT.json"
compiled || fail "an artifact newer than the sources: said not compiled"
touch "$T/root/contracts/src/DstackClusterNFT.sol"
! compiled || fail "a source newer than the artifact: said compiled"
grep -q 'h_contract_compiled; then' netns-harness/lib.sh && grep -q 'h_log "compiling the cluster contract' netns-harness/lib.sh ||
	fail "h_deploy does not say it compiles"
pass "a cold demo says it compiles the contract (artifact missing or older than a source)"

# --- one health check everywhere: the image, the compose examples and the docs agree
hc='"dstack-p2p", "wait", "--timeout", "5"'
grep -qF "CMD [$hc]" Dockerfile || fail "the Dockerfile's HEALTHCHECK is not wait --timeout 5"
for f in examples/compose/self-hosted.yml examples/compose/phala.yml; do
	grep -qF "test: [\"CMD\", $hc]" "$f" || fail "$f: healthcheck is not wait --timeout 5"
done
grep -qF 'CMD ["dstack-p2p", "wait", "\-\-timeout", "5"]' docs/man/dstack-p2p.1 || fail "dstack-p2p(1): health check example"
grep -qF 'Its health check is `dstack-p2p wait --timeout 5`' docs/deploy.md || fail "docs/deploy.md: health check"
grep -qF '`wait --timeout 5` is also the container health check' docs/agent.md || fail "docs/agent.md: health check"
! grep -rnE 'HEALTHCHECK.*"status"|test: \["CMD", "dstack-p2p", "status"' docs README.md examples Dockerfile ||
	fail "a document still gives status as the container health check"
pass "one health check (wait --timeout 5) in the image, the compose examples and the docs"

# --opt=value and --opt value are the same
for form in "--backend=bogus" "--backend bogus"; do
	# shellcheck disable=SC2086
	run show $form
	usage_error show "bad value for --backend 'bogus'"
done
for form in "--timeout=x" "--timeout x"; do
	# shellcheck disable=SC2086
	run wait $form
	usage_error wait "bad value for --timeout 'x'"
done
run status --mode bogus
usage_error status "bad value for --mode 'bogus'"
run chain no-such-command
usage_error chain "unknown command 'no-such-command'"
pass "--opt=value = --opt value; a bad value or chain command exits 2 with the usage line"

# --- wait without an agent says once what it waits for (the default timeout is 300 s)
RUN_TIMEOUT=3 run wait
[ "$rc" = 124 ] || fail "wait without an agent ended ($rc) before its 300 s"
[ "$(grep -c '^dstack-p2p wait: waiting for the registration: no agent listens on' "$T/err")" = 1 ] ||
	fail "wait did not say once that no agent runs"
run wait --timeout 1
[ "$rc" = 1 ] && grep -q "^dstack-p2p wait: not registered after 1 s: no agent listens on $T/no-agent.sock" "$T/err" ||
	fail "wait --timeout 1: exit $rc"
# The startup gate of the compose files: no deadline at all.
RUN_TIMEOUT=3 run wait --timeout never
[ "$rc" = 124 ] || fail "wait --timeout never ended ($rc)"
run wait --timeout 90000
usage_error wait "want whole seconds, 0 to 86400, or never"
pass "wait without an agent: one line saying so, exit 1 at its timeout, none with --timeout never"

# --- a stand-in agent
mkdir -p "$T/docs"
$PY tests/host/fake-control.py "$T/ctl.sock" "$T/docs" &
FAKE_PID=$!
for _ in $(seq 50); do [ -e "$T/docs/ready" ] && break; sleep 0.1; done
[ -e "$T/docs/ready" ] || fail "the stand-in agent did not start"
export EXTRA_ENV="DSTACK_P2P_CONTROL=$T/ctl.sock"
I1=6b28ec681e4fe62615b46a1cf230afba043437d0
I2=a0d8924af34fac953f58c7836909ecb61f9663eb
C=0x5fbdb2315678afecb367f032d93f642f64180aa3
PEER="{\"token\":2,\"instance_id\":\"$I2\",\"address\":\"10.0.1.2\",\"endpoint\":\"192.168.77.2:51830\",\"public_key\":\"ssh6n0n3lSvnWrsio44IO0dmH8SqcCP0GnDoqhTbehM=\",\"configured\":true,\"last_handshake\":0,\"rx_bytes\":0,\"tx_bytes\":0,\"nonce\":1,\"verification\":\"valid\"}"
# status_doc REGISTERED LAST_SYNC RPC_OK REJECTED: the agent's document (its own format)
status_doc() {
	echo "{\"instance_id\":\"$I1\",\"app_id\":\"$C\",\"contract\":\"$C\",\"chain_id\":31337,\"mode\":\"wireguard\",\"token\":1,\"address\":\"10.0.1.1\",\"registered\":$1,\"endpoint\":\"192.168.77.1:51830\",\"interface\":\"dp2p0\",\"public_key\":\"PFI7/DWp0ZunEZt1c+WHpan6OsTyrpvul+oPs7n52Gw=\",\"listen_port\":51830,\"backend\":\"userspace\",\"block\":10,\"last_sync_ms_ago\":$2,\"rpc_ok\":$3,\"rpc_calls\":24,\"generation\":2,\"peers\":[$PEER],\"rejected\":[$4]}" >"$T/docs/status.json"
}
# json_check EXPR: a python expression over the parsed stdout (d) must hold
json_check() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$T/out" || fail "status --json: not ($1)"; }

status_doc true 237 true ""
run status
[ "$rc" = 0 ] && grep -q '^health      ok$' "$T/out" && grep -q "^instance    0x$I1$" "$T/out" || fail "healthy status: exit $rc"
run status --json
[ "$rc" = 0 ] || fail "healthy status --json: exit $rc"
json_check "d['instance_id'] == '0x$I1' and d['peers'][0]['instance_id'] == '0x$I2' and d['app_id'] == '$C'"
json_check "d['healthy'] is True and d['problems'] == [] and d['chain_id'] == 31337 and d['block'] == 10"
pass "healthy: status exits 0; every id 0x-prefixed in --json"

status_doc false 237 true ""
run status
[ "$rc" = 3 ] && grep -qx 'dstack-p2p status: not healthy: not registered' "$T/err" || fail "unregistered: exit $rc"
status_doc true 237 false ""
run status --json
[ "$rc" = 3 ] && grep -qx 'dstack-p2p status: not healthy: RPC failing' "$T/err" || fail "RPC failing: exit $rc"
json_check "d['healthy'] is False and d['problems'] == ['RPC failing']"
status_doc true 237 true "{\"token\":5,\"instance_id\":\"$I2\",\"verification\":\"registered in tls mode\"}"
run status
[ "$rc" = 3 ] && grep -qx 'dstack-p2p status: not healthy: 1 record rejected' "$T/err" &&
	grep -q 'REJECTED: registered in tls mode' "$T/out" || fail "a rejected record: exit $rc"
pass "up but not healthy (unregistered, RPC failing, a record rejected): status exits 3 and says why"

# Before the first chain read, without a guest agent: unknown, not zeroes.
echo "{\"instance_id\":\"\",\"app_id\":\"0x0000000000000000000000000000000000000000\",\"contract\":\"$C\",\"chain_id\":0,\"mode\":\"wireguard\",\"token\":0,\"address\":\"\",\"registered\":false,\"endpoint\":\"\",\"interface\":\"dp2p0\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"listen_port\":51830,\"backend\":\"none\",\"block\":0,\"last_sync_ms_ago\":-1,\"rpc_ok\":true,\"rpc_calls\":0,\"generation\":0,\"peers\":[],\"rejected\":[]}" >"$T/docs/status.json"
run status
[ "$rc" = 3 ] || fail "status before the first read: exit $rc"
grep -q '^instance    unknown (no dstack guest agent)$' "$T/out" && grep -q '(chain unknown)' "$T/out" &&
	grep -q '^registry    not read yet' "$T/out" && grep -q 'public key unknown' "$T/out" ||
	fail "status before the first read does not say unknown: $(cat "$T/out")"
grep -qE 'instance +0x$|chain 0\)|-1 ms|AAAAAAAA' "$T/out" && fail "status prints zeroes for unknowns: $(cat "$T/out")"
run status --json
json_check "all(d[k] is None for k in ('instance_id', 'app_id', 'chain_id', 'token', 'block', 'last_sync_ms_ago', 'rpc_ok', 'public_key', 'address', 'endpoint'))"
json_check "d['problems'] == ['not registered', 'registry not read yet']"
echo '[1,2]' >"$T/docs/status.json"
run status
[ "$rc" = 1 ] && grep -qx "dstack-p2p status: the agent's reply is not a status document" "$T/err" || fail "a malformed reply: exit $rc"
pass "unknown fields: 'unknown' in text, null in JSON; a malformed reply exits 1"

# --- wait: says once that the agent runs but we are not registered, then succeeds
echo '{"registered":false,"peers":[]}' >"$T/docs/peers.json"
env -i PATH="$PATH" DSTACK_P2P_CONTROL="$T/ctl.sock" "$P2P" wait --timeout 60 >"$T/wait.out" 2>"$T/wait.err" &
WAIT_PID=$!
for _ in $(seq 100); do grep -q 'not registered yet' "$T/wait.err" && break; sleep 0.1; done
grep -q 'not registered yet' "$T/wait.err" || fail "wait did not say what it waits for"
sleep 1  # several more polls: it must not repeat itself
echo '{"registered":true,"peers":[]}' >"$T/docs/peers.json"
rc=0
wait "$WAIT_PID" || rc=$?
WAIT_PID=
[ "$rc" = 0 ] && grep -qx registered "$T/wait.out" || fail "wait did not end once registered: exit $rc"
[ "$(wc -l <"$T/wait.err")" = 1 ] && grep -qx 'dstack-p2p wait: waiting for the registration: the agent runs; this instance is not registered yet' "$T/wait.err" ||
	fail "wait said more than once what it waits for: $(cat "$T/wait.err")"
pass "wait: one line while the agent runs unregistered, exit 0 once registered"
# --- a real agent whose RPC URL is a web server, not a node (HTTP 501 to a POST, as
# python's http.server answers): status and wait say why, with the hint.
cat >"$T/web.py" <<'PY'
import http.server, os, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
class S(socketserver.UnixStreamServer):
    def get_request(self):
        c, _ = self.socket.accept()
        return c, ("local", 0)
S(sys.argv[1], H).serve_forever()
PY
$PY "$T/web.py" "$T/web.sock" & BG_PIDS+=($!)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/kms.key"
"$O/dstack-sim" --kms-root-key-file "$T/kms.key" --app-id "${C#0x}" --instance-id "$I1" \
	--socket "$T/sim.sock" >"$T/sim.log" 2>&1 & BG_PIDS+=($!)
for _ in $(seq 100); do [ -S "$T/sim.sock" ] && [ -S "$T/web.sock" ] && break; sleep 0.05; done
env -i PATH="$PATH" P2P_CONFIG="$T/empty.conf" DSTACK_SIMULATOR_ENDPOINT="unix:$T/sim.sock" \
	DSTACK_P2P_CONTROL="$T/real.sock" CLUSTER_CONTRACT=$C P2P_MODE=tls DSTACK_GATEWAY_DOMAIN=example.com \
	ETH_RPC_URL="http+unix://$T/web.sock" P2P_POLL_MS=200 "$P2P" agent >"$T/agent.log" 2>&1 & BG_PIDS+=($!)
export EXTRA_ENV="DSTACK_P2P_CONTROL=$T/real.sock"
for _ in $(seq 100); do grep -q 'registry unreachable' "$T/agent.log" && break; sleep 0.1; done
HINT="$T/web.sock: HTTP 501 (not a JSON-RPC endpoint?)"
run status
[ "$rc" = 3 ] && grep -qF "dstack-p2p status: not healthy: not registered; registry not read yet: checking the contract: $HINT" "$T/err" ||
	fail "status with an RPC URL that is not a node: exit $rc"
run status --json
json_check "d['rpc_ok'] is False and d['rpc_error'].endswith('$HINT') and d['problems'][1].endswith('$HINT')"
run wait --timeout 1
[ "$rc" = 1 ] && grep -qxF "dstack-p2p wait: not registered after 1 s: the agent runs; this instance is not registered yet: its RPC fails: checking the contract: $HINT" "$T/err" ||
	fail "wait with an RPC URL that is not a node: exit $rc"
pass "the RPC fails (a web server, HTTP 501): status and wait say why, '(not a JSON-RPC endpoint?)'"
echo "test-cli: all passed"
