# SPDX-License-Identifier: MIT
# netns-harness: a stand-in for the dstack gateway, sourced after lib.sh.
#
#   gateway namespace: 192.168.77.253 on the hub bridge; Debian's nginx with the stream
#   module terminates TLS for *.$H_GW_DOMAIN (a certificate from a CA made for this run)
#   and bridges plain bytes to <node>:<port>, routed by the SNI <instance_id>-<port>.
#   Nodes resolve those names to the gateway through /etc/netns/<ns>/hosts (ip netns
#   exec bind-mounts it) and trust the CA through P2P_GATEWAY_CA, never by switching
#   verification off.
#
# h_gw_up; h_gw_node i (after h_node_add i, before its agent starts); h_gw_reload;
# h_gw_restart; h_gw_block_udp i j (nftables: no UDP between two nodes).

H_GW_IP=$H_SUBNET.253
H_GW_DOMAIN=${H_GW_DOMAIN:-gw.dstack-p2p.test}
H_GW_IDLE=${H_GW_IDLE:-600s}       # the gateway's idle cut (dstack: 10 min)
H_RELAY_PORT=${H_RELAY_PORT:-51831}

h_gw_ca() {
	local d=$H_RUN/gw
	mkdir -p "$d"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=dstack-p2p test gateway CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-subj "/CN=*.$H_GW_DOMAIN" -keyout "$d/gw.key" -out "$d/gw.csr" 2>/dev/null
	printf 'subjectAltName=DNS:*.%s\n' "$H_GW_DOMAIN" >"$d/ext.cnf"
	openssl x509 -req -in "$d/gw.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		-extfile "$d/ext.cnf" -out "$d/gw.pem" 2>/dev/null
	[ -s "$d/gw.pem" ] || h_die "gateway: could not make the test certificate"
	H_GW_CA=$d/ca.pem
}

h_gw_conf() {
	local d=$H_RUN/gw dom=${H_GW_DOMAIN//./\\.}
	cat >"$d/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
pid $d/nginx.pid;
error_log $d/error.log info;  # info: a stream cut by proxy_timeout is logged at info
worker_processes 1;
worker_shutdown_timeout 1s;
events { worker_connections 4096; }
stream {
	# dstack's gateway: <instance_id>-<port>.<domain>, TLS terminated, plain TCP to the CVM.
	map \$ssl_server_name \$gw_instance { "~^(?<i>[0-9a-f]{40})-[0-9]+\\.$dom\$" \$i; default ""; }
	map \$ssl_server_name \$gw_port { "~^[0-9a-f]{40}-(?<p>[0-9]+)\\.$dom\$" \$p; default 1; }
	map \$gw_instance \$gw_node { include $d/routes.conf; default 127.0.0.1; }
	server {
		listen $H_GW_IP:443 ssl;
		ssl_certificate $d/gw.pem;
		ssl_certificate_key $d/gw.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		proxy_connect_timeout 5s;
		proxy_timeout $H_GW_IDLE;
		proxy_pass \$gw_node:\$gw_port;
	}
}
CONF
}

h_gw_start() {
	local t
	ip netns exec "${H_PREFIX}gw" nginx -c "$H_RUN/gw/nginx.conf" -g 'daemon off;' >"$H_RUN/gw/nginx.log" 2>&1 &
	H_PID_GW=$!
	H_OTHER_PIDS+=($!)
	for t in $(seq 1 100); do
		ip netns exec "${H_PREFIX}gw" ss -ltn | grep -q "$H_GW_IP:443" && return 0
		sleep 0.05
	done
	h_die "gateway: nginx did not start ($H_RUN/gw/error.log: $(tail -3 "$H_RUN/gw/error.log" 2>/dev/null))"
}

h_gw_up() {
	local gw=${H_PREFIX}gw
	h_gw_ca
	: >"$H_RUN/gw/routes.conf"
	h_gw_conf
	ip netns add "$gw"
	ip link add "${H_PREFIX}vg" netns "${H_PREFIX}hub" type veth peer name eth0 netns "$gw"
	ip -n "${H_PREFIX}hub" link set "${H_PREFIX}vg" master br0 up
	ip -n "$gw" link set lo up
	ip -n "$gw" addr add "$H_GW_IP/24" dev eth0
	ip -n "$gw" link set eth0 up
	h_gw_start
	h_log "gateway ${gw}: nginx terminates TLS for *.$H_GW_DOMAIN on $H_GW_IP:443"
}

# A new node: the gateway routes its instance id to it, every node resolves its name.
h_gw_node() {
	local i=$1 j ns
	ns=$(h_ns "$i")
	printf '%s %s.%s;\n' "${H_INSTANCE[$i]}" "$H_SUBNET" "$i" >>"$H_RUN/gw/routes.conf"
	mkdir -p "/etc/netns/$ns"
	printf '127.0.0.1 localhost\n' >"/etc/netns/$ns/hosts"
	for j in "${H_NODES[@]}"; do
		[ -f "/etc/netns/$(h_ns "$j")/hosts" ] || continue
		# Appending keeps the inode that running agents have bind-mounted.
		printf '%s %s-%s.%s\n' "$H_GW_IP" "${H_INSTANCE[$i]}" "$H_RELAY_PORT" "$H_GW_DOMAIN" \
			>>"/etc/netns/$(h_ns "$j")/hosts"
		[ "$j" = "$i" ] || printf '%s %s-%s.%s\n' "$H_GW_IP" "${H_INSTANCE[$j]}" "$H_RELAY_PORT" \
			"$H_GW_DOMAIN" >>"/etc/netns/$ns/hosts"
	done
	h_gw_reload
}

# New routes or limits: nginx re-reads its configuration; old workers (and the streams they
# carry) are cut after worker_shutdown_timeout, like a gateway's connection cap.
h_gw_reload() { kill -HUP "$H_PID_GW"; sleep 0.3; }

# Stop nginx, master and workers. nginx overwrites its environment (setproctitle), so
# h_kill cannot tell it is ours; every process in the gateway namespace is, since this
# run created that namespace and started only nginx in it.
h_gw_stop() {
	local t pids
	pids=$(ip netns pids "${H_PREFIX}gw" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	kill $pids 2>/dev/null || true
	for t in $(seq 1 100); do
		[ -z "$(ip netns pids "${H_PREFIX}gw" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	kill -9 $(ip netns pids "${H_PREFIX}gw" 2>/dev/null) 2>/dev/null || true
	sleep 0.2
}

# Every stream through the gateway is cut; it comes back on the same address.
h_gw_restart() {
	h_gw_stop
	h_gw_start
}

# h_gw_block_udp i j: nftables in both namespaces drops UDP between nodes i and j.
h_gw_block_udp() {
	local a=$1 b=$2 x y
	for x in "$a" "$b"; do
		y=$([ "$x" = "$a" ] && echo "$b" || echo "$a")
		h_in "$x" nft list table inet dp2p >/dev/null 2>&1 || {
			h_in "$x" nft add table inet dp2p
			h_in "$x" nft add chain inet dp2p in '{ type filter hook input priority 0; }'
			h_in "$x" nft add chain inet dp2p out '{ type filter hook output priority 0; }'
		}
		h_in "$x" nft add rule inet dp2p in ip saddr "$H_SUBNET.$y" meta l4proto udp drop
		h_in "$x" nft add rule inet dp2p out ip daddr "$H_SUBNET.$y" meta l4proto udp drop
	done
}

h_gw_unblock_udp() { # i...: every UDP block of these nodes goes
	local x
	for x in "$@"; do h_in "$x" nft delete table inet dp2p 2>/dev/null || true; done
}

h_gw_cleanup() {
	local i
	h_gw_stop
	for i in "${H_NODES[@]}"; do rm -rf "/etc/netns/$(h_ns "$i")"; done
	ip netns del "${H_PREFIX}gw" 2>/dev/null || true
}

# Agent flags for the gateway transport (TRANSPORT: gateway or auto).
h_gw_agent_flags() {
	echo "--transport $1 --gateway-domain $H_GW_DOMAIN --gateway-ca $H_GW_CA --relay-port $H_RELAY_PORT"
}
