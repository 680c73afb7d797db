#!/bin/bash
# The Python SDK tests' mesh: a live 3-node netns harness (netns-harness/lib.sh), driven by
# one command a line on stdin; each answer is one line on the original stdout
# ("ready ...", "ok ...", "err ..."), everything the harness logs goes to stderr.
#
#   add I        a new node I: namespace, mint, bind, agent       -> ok <token>
#   burn I       the operator burns node I's token                 -> ok
#   stop I       SIGTERM node I's agent (the interface stays)      -> ok
#   start I      start node I's agent again                        -> ok
#   registered I wait (bounded) until node I's agent is registered -> ok
#   relaystart I restart node I's agent with no funded key and the hub's relayer
#                                                                 -> ok
#   appstart I   restart node I's agent with an on-change command that saves its
#                environment to $H_RUN/env<I>.<generation>-<event> and a hosts file
#                $H_RUN/hosts<I>                                  -> ok
set -u
exec 3>&1 1>&2
. "$(dirname "$0")/../../netns-harness/lib.sh"
H_POLL_MS=${H_POLL_MS:-200}
h_init py
h_deploy
# The operator's relayer in the hub, for agents without a funded key (relaystart).
h_relayer_start
for i in 1 2 3; do h_node_up "$i"; done
for i in 1 2 3; do h_agent_wait_registered "$i" 90; done
echo "ready run=$H_RUN prefix=$H_PREFIX contract=$H_CONTRACT cast=$H_CAST" \
	"tokens=${H_TOKEN[1]},${H_TOKEN[2]},${H_TOKEN[3]}" >&3

while read -r cmd arg; do
	case $cmd in
	add) h_node_up "$arg" && echo "ok ${H_TOKEN[$arg]}" >&3 ;;
	burn)
		if h_cast send --private-key "$H_OPERATOR_KEY" "$H_CONTRACT" "burn(uint256)" \
			"${H_TOKEN[$arg]}" >/dev/null; then echo ok >&3; else echo "err burn" >&3; fi ;;
	stop) h_kill "${H_PID_AGENT[$arg]}"; echo ok >&3 ;;
	start) h_agent_start "$arg"; echo ok >&3 ;;
	registered) h_agent_wait_registered "$arg" 90 && echo ok >&3 ;;
	relaystart)
		h_kill "${H_PID_AGENT[$arg]}"
		h_agent_start "$arg" --tx-key-file "" --relayer "http://$H_HUB_IP:8600/relay"
		echo ok >&3 ;;
	appstart)
		h_kill "${H_PID_AGENT[$arg]}"
		h_agent_start "$arg" --hosts-file "$H_RUN/hosts$arg" --on-change \
			"env | grep ^DSTACK_P2P_ | sort >'$H_RUN/env$arg'.\$\$ && mv '$H_RUN/env$arg'.\$\$ \"$H_RUN/env$arg.\$DSTACK_P2P_GENERATION-\$DSTACK_P2P_EVENT\""
		echo ok >&3 ;;
	quit) break ;;
	*) echo "err unknown command $cmd" >&3 ;;
	esac
done
