#!/bin/bash
# SPDX-License-Identifier: MIT
# examples/compose/*.yml, checked without docker (tests/host/compose-check.py): YAML,
# what `docker compose config` would refuse, and what the agent reads and needs, with the
# agent's variable names taken from the C source. Then the checker itself must refuse
# broken copies, each for the reason planted in it.
set -eu
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
"$py" -c 'import yaml' 2>/dev/null || { echo "test-compose: python3-yaml missing (scripts/deps.sh)" >&2; exit 1; }
files=(examples/compose/*.yml)
[ "${#files[@]}" -ge 2 ] || { echo "test-compose: no compose files" >&2; exit 1; }
"$py" tests/host/compose-check.py . "${files[@]}"

tmp=$(mktemp -d /tmp/dstack-p2p-compose.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# mutate NAME FILE EXPECTED PYTHON: apply PYTHON to the document `d`, expect EXPECTED.
mutate() {
	local name=$1 src=$2 want=$3 code=$4 out
	"$py" - "$src" "$tmp/$name-$(basename "$src")" <<-PY
	import sys, yaml
	d = yaml.safe_load(open(sys.argv[1]))
	a = d["services"]["dstack-p2p"]
	$code
	yaml.safe_dump(d, open(sys.argv[2], "w"))
	PY
	if out=$("$py" tests/host/compose-check.py . "$tmp/$name-$(basename "$src")"); then
		echo "test-compose: FAIL: the checker accepted '$name'"; exit 1
	fi
	grep -qF "$want" <<<"$out" || { echo "test-compose: FAIL: '$name' refused for another reason: $out"; exit 1; }
	echo "test-compose: refused as expected: $name"
}
for f in "${files[@]}"; do
	mutate unknown-env "$f" "not a variable the agent reads" 'a["environment"]["P2P_BOGUS"] = "1"'
	mutate no-gate "$f" "no startup gate" 'del d["services"]["p2p-wait"]; d["services"]["app"].pop("depends_on")'
	mutate no-socket "$f" "guest agent's socket" 'a["volumes"] = [v for v in a["volumes"] if "dstack.sock" not in v]'
	mutate no-cap "$f" "NET_ADMIN" 'a["cap_add"] = []'
	mutate undeclared "$f" "not declared" 'd.pop("volumes")'
	mutate bare-dollar "$f" "bare" 'd["services"]["app"]["command"][2] = "echo \$HOME"'
	mutate no-port "$f" "not published" 'a.pop("network_mode"); a["ports"] = []'
	mutate service-net "$f" "strands 'app'" 'd["services"]["app"]["network_mode"] = "service:dstack-p2p"'
	mutate agent-bridge "$f" "not on network_mode: host" 'a.pop("network_mode")'
	mutate gate-deadline "$f" "has a deadline" 'd["services"]["p2p-wait"]["command"][3] = "600"'
	mutate image-from-env "$f" "image from the environment" 'a["image"] = "\${IMG}"'
done
mutate no-dstack-mount examples/compose/phala.yml "/dstack not mounted" \
	'a["volumes"] = [v for v in a["volumes"] if not v.startswith("/dstack:")]'
mutate phala-udp examples/compose/phala.yml "gateway transport" \
	'a["environment"]["P2P_TRANSPORT"] = "udp"'
echo "test-compose: PASS (${#files[@]} files)"
