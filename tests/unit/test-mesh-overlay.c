/* SPDX-License-Identifier: MIT */
/* Unit tests of mesh/: endpoints, overlay addresses, config, publishing (the decision: test-mesh-decide.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "registry/registry.h"

Test(mesh_overlay, token_to_address)
{
	char s[16];

	cr_assert_eq(mesh_overlay_addr(2), htonl(0x0a000102));
	cr_assert_eq(mesh_overlay_addr(254), htonl(0x0a0001fe));
	cr_assert_eq(mesh_overlay_addr(0), 0);
	cr_assert_eq(mesh_overlay_addr(255), 0);
	mesh_overlay_addr_str(17, s);
	cr_assert_str_eq(s, "10.0.1.17");
}

Test(mesh_endpoint, parses_v4_v6_and_rejects_garbage)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *in = (const void *)&ss;

	cr_assert_eq(mesh_endpoint_parse("192.168.77.3:51830", &ss), 0);
	cr_assert_eq(ss.ss_family, AF_INET);
	cr_assert_eq(ntohs(in->sin_port), 51830);
	cr_assert_eq(mesh_endpoint_parse("[fd00::1]:51830", &ss), 0);
	cr_assert_eq(ss.ss_family, AF_INET6);
	cr_assert_eq(mesh_endpoint_parse("192.168.77.3", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("192.168.77.3:0", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("192.168.77.3:70000", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse(":80", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("fd00::1:80", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("[fd00::1]80", &ss), -EINVAL);
	cr_assert_eq(mesh_endpoint_parse("1.2.3.4:8x", &ss), -EINVAL);
}

/* The decision's parse: numbers only, a name left to the transport (no DNS lookup). */
Test(mesh_endpoint, udp_part_numeric_unless_dns)
{
	union wg_endpoint ep;

	cr_assert_eq(mesh_endpoint_udp("192.168.77.3:51830,https://x-1.example.org", false, &ep), 0);
	cr_assert_eq(ep.addr.sa_family, AF_INET);
	cr_assert_eq(ntohs(ep.in.sin_port), 51830);
	cr_assert_eq(mesh_endpoint_udp("[fd00::1]:51830", false, &ep), 0);
	cr_assert_eq(ep.addr.sa_family, AF_INET6);
	cr_assert_eq(mesh_endpoint_udp("localhost:51830", false, &ep), -EAGAIN);
	cr_assert_eq(ep.addr.sa_family, AF_UNSPEC);
	cr_assert_eq(mesh_endpoint_udp("localhost:51830", true, &ep), 0);
	cr_assert_neq(ep.addr.sa_family, AF_UNSPEC);
	cr_assert_eq(mesh_endpoint_udp("https://x-1.example.org", false, &ep), 0);
	cr_assert_eq(ep.addr.sa_family, AF_UNSPEC);
	cr_assert_eq(mesh_endpoint_udp("not an endpoint", true, &ep), -EINVAL);
}

Test(mesh_config, names_values_and_file)
{
	struct mesh_config cfg;
	char path[] = "/tmp/test-mesh-config-XXXXXX";
	struct err_detail why = { "" };
	char want[320];
	int fd;
	FILE *f;

	mesh_config_init(&cfg);
	cr_assert_eq(mesh_config_validate(&cfg, &why), -EINVAL, "no contract");
	cr_assert_eq(mesh_config_set(&cfg, "CLUSTER_CONTRACT", "0x5FbDB2315678afecb367f032d93F642f64180aa3"), 0);
	cr_assert_str_eq(cfg.contract, "0x5fbdb2315678afecb367f032d93f642f64180aa3");
	cr_assert_eq(cfg.contract_addr[0], 0x5f, "decoded once, when set");
	cr_assert_eq(cfg.contract_addr[19], 0xa3);
	cr_assert_eq(cfg.rpc.n, 1, "the default RPC URL, taken apart");
	cr_assert_eq(mesh_config_set(&cfg, "CLUSTER_CONTRACT", "0x1234"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_INTERFACE", "wg0"), -EINVAL, "dstack's interface");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_INTERFACE", "dstack-wg0"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_LISTEN_PORT", "9182"), -EINVAL, "dstack's port");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_LISTEN_PORT", "09182"), -EINVAL, "dstack's port");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_POLL_MS", "10"), -EINVAL, "too fast");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_LISTEN_PORT", "65536"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_MODE", "carrier-pigeon"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "NO_SUCH_THING", "1"), -ENOENT);
	cr_assert_eq(mesh_config_validate(&cfg, &why), 0, "%s", why.text);
	cr_assert_eq(mesh_config_set(&cfg, "ETH_RPC_URL", "notaurl"), 0);
	cr_assert_eq(mesh_config_validate(&cfg, &why), -EINVAL, "a bad RPC URL is a mistake");
	cr_assert(strstr(why.text, "notaurl"), "%s", why.text);
	cr_assert_eq(mesh_config_set(&cfg, "ETH_RPC_URL", "http://127.0.0.1:8545, /run/geth.ipc"), 0);
	cr_assert_eq(mesh_config_validate(&cfg, &why), 0, "%s", why.text);

	fd = mkstemp(path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "# comment\n\nP2P_MODE = tls\nP2P_LISTEN_PORT=\"51999\"\nETH_RPC_URL=http://a,http://b\n");
	fclose(f);
	cr_assert_eq(mesh_config_load_file(&cfg, path, &why), 0);
	cr_assert_eq(cfg.mode, REGISTRY_MODE_TLS_GATEWAY);
	cr_assert_eq(cfg.listen_port, 51999);
	cr_assert_str_eq(cfg.rpc_urls, "http://a,http://b");

	/* Each mistake names the line and the key; a typo also the name meant. */
	static const struct {
		const char *text;
		int err, line;
		const char *why;
	} bad[] = {
		{ "P2P_MODE=tls\nP2P_POLL_MS=abc\n", -EINVAL, 2,
		  "bad value for P2P_POLL_MS: 'abc' (see dstack-p2p-agent(1))" },
		{ "P2P_MODE=tls\n\nP2P_POL_MS=500\n", -ENOENT, 3,
		  "unknown option 'P2P_POL_MS' (did you mean P2P_POLL_MS?)" },
		{ "p2p_keepalive=5\nCOLOUR=blue\n", -ENOENT, 1,
		  "unknown option 'p2p_keepalive' (did you mean P2P_KEEPALIVE?)" },
		{ "COLOUR=blue\n", -ENOENT, 1, "unknown option 'COLOUR' (see dstack-p2p-agent(1))" },
		{ "P2P_MODE tls\n", -EINVAL, 1, "'P2P_MODE tls' is not NAME=VALUE" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		f = fopen(path, "w");
		fputs(bad[i].text, f);
		fclose(f);
		cr_assert_eq(mesh_config_load_file(&cfg, path, &why), bad[i].err, "%s", bad[i].text);
		snprintf(want, sizeof(want), "%s:%d: %s", path, bad[i].line, bad[i].why);
		cr_assert_str_eq(why.text, want);
	}
	unlink(path);
}

/* Issue 10: the new pins and the cap, and a config file with a NUL byte says so. */
Test(mesh_config, pins_cap_and_nul_bytes)
{
	static const char text[] = "P2P_CHAIN_ID=31337\nP2P_KMS_ROOT=0x7621a4656e313188b0cfa33fDcFea64d0ae48E6f\n"
				   "P2P_MODE=tls\0\nP2P_POLL_MS=100\n";
	struct mesh_config cfg;
	struct err_detail why;
	FILE *f;

	mesh_config_init(&cfg);
	cr_assert_eq(cfg.register_max_per_hour, 20);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_REGISTER_MAX_PER_HOUR", "0"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_REGISTER_MAX_PER_HOUR", "65"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_REGISTER_MAX_PER_HOUR", "3"), 0);
	cr_assert_eq(cfg.register_max_per_hour, 3);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_CHAIN_ID", "0"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_CHAIN_ID", "-1"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_KMS_ROOT", "0x1234"), -EINVAL);
	f = fmemopen((void *)text, sizeof(text) - 1, "r");
	cr_assert_not_null(f);
	cr_assert_eq(mesh_config_load_stream(&cfg, f, "text", &why), -EILSEQ);
	fclose(f);
	cr_assert(!strncmp(why.text, "text:3: ", 8), "the line with the NUL byte: %s", why.text);
	cr_assert(strstr(why.text, "NUL"));
	cr_assert_eq(cfg.chain_id, 31337);
	cr_assert_str_eq(cfg.kms_root, "0x7621a4656e313188b0cfa33fdcfea64d0ae48e6f");
}

Test(mesh_publish, lines_json_and_atomic_file)
{
	struct mesh_peer peers[2] = {
		{ .token = 2, .mode = REGISTRY_MODE_WIREGUARD },
		{ .token = 3, .mode = REGISTRY_MODE_TLS_GATEWAY, .endpoint = "https://ab-443.example.org" },
	};
	char path[] = "/tmp/test-mesh-peers-XXXXXX", text[128] = { 0 };
	struct buf b;
	FILE *f;
	int fd;

	buf_init(&b, 4096);
	cr_assert_eq(mesh_peers_format_lines(peers, 2, &b), 0);
	cr_assert_str_eq((char *)b.data, "10.0.1.2\nhttps://ab-443.example.org\n");
	buf_reset(&b);
	cr_assert_eq(mesh_peers_format_json(peers, 2, &b), 0);
	cr_assert_str_eq((char *)b.data, "[\"10.0.1.2\",\"https://ab-443.example.org\"]");

	fd = mkstemp(path);
	close(fd);
	cr_assert_eq(mesh_write_file_atomic(path, b.data, b.len), 0);
	f = fopen(path, "r");
	cr_assert(fread(text, 1, sizeof(text) - 1, f) == b.len);
	fclose(f);
	cr_assert_str_eq(text, (char *)b.data);
	unlink(path);
	buf_clear(&b);
}

/* The on-change command: sh -c, the list on stdin and in $DSTACK_P2P_PEERS, the overrides
 * replacing inherited variables of the same name (once each), the others inherited. */
Test(mesh_publish, on_change_command_environment_and_stdin)
{
	char path[] = "/tmp/test-mesh-onchange-XXXXXX", cmd[256], text[1024] = { 0 };
	const char *env[] = { "DSTACK_P2P_EVENT=peers", "DSTACK_P2P_ADDED=10.0.1.3", NULL };
	size_t n;
	int fd, status;
	FILE *f;

	fd = mkstemp(path);
	close(fd);
	setenv("DSTACK_P2P_EVENT", "stale", 1);
	setenv("TEST_ON_CHANGE_KEPT", "kept", 1);
	snprintf(cmd, sizeof(cmd),
		 "{ cat; echo \"$DSTACK_P2P_PEERS|$DSTACK_P2P_EVENT|$DSTACK_P2P_ADDED|$TEST_ON_CHANGE_KEPT\"; "
		 "env | grep -c '^DSTACK_P2P_EVENT='; } >%s", path);
	cr_assert_eq(mesh_run_on_change(cmd, "10.0.1.2\n10.0.1.3\n", env), 0);
	cr_assert_gt(waitpid(-1, &status, 0), 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	f = fopen(path, "r");
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	cr_assert_str_eq(text, "10.0.1.2\n10.0.1.3\n10.0.1.2 10.0.1.3 |peers|10.0.1.3|kept\n1\n",
			 "got: %s", text);
	unlink(path);
}

Test(mesh_config, transaction_caps_and_who_may_act)
{
	struct mesh_config cfg;

	mesh_config_init(&cfg);
	cr_assert_eq(cfg.tx_max_fee_per_gas, 100000000000ull);
	cr_assert_eq(cfg.tx_max_cost, 50000000000000000ull);
	cr_assert_eq(cfg.action_uid, MESH_ID_NONE);
	cr_assert_eq(cfg.action_spacing_ms, 2000);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_FEE_PER_GAS", "1.5gwei"), 0);
	cr_assert_eq(cfg.tx_max_fee_per_gas, 1500000000ull);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_COST", "0.01ether"), 0);
	cr_assert_eq(cfg.tx_max_cost, 10000000000000000ull);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_GAS", "300000"), 0);
	cr_assert_eq(cfg.tx_max_gas, 300000);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_PRIORITY_FEE_PER_GAS", "12wei"), 0);
	cr_assert_eq(cfg.tx_max_priority_fee_per_gas, 12);
	/* zero, a fraction finer than a wei, junk, overflow */
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_COST", "0"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_COST", "1.5wei"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_COST", "1gwe"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_COST", "1.2.3gwei"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_COST", "100ether"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_TX_MAX_COST", "-1"), -EINVAL);
	cr_assert_eq(cfg.tx_max_cost, 10000000000000000ull, "a bad value changes nothing");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_CONTROL_ACTION_UID", "1000"), 0);
	cr_assert_eq(cfg.action_uid, 1000);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_CONTROL_ACTION_UID", "none"), 0);
	cr_assert_eq(cfg.action_uid, MESH_ID_NONE);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_CONTROL_ACTION_GID", "-5"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_ACTION_MAX_PER_HOUR", "241"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_ACTION_SPACING_MS", "0"), 0);
}

Test(mesh_config, dns)
{
	struct mesh_config cfg;
	struct err_detail why = { "" };

	mesh_config_init(&cfg);
	cr_assert_not(cfg.dns, "off by default");
	cr_assert_str_eq(cfg.dns_zone, "p2p.internal");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_DNS", "on"), 0);
	cr_assert(cfg.dns);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_DNS", "OFF"), 0);
	cr_assert_not(cfg.dns);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_DNS", "yes"), 0);
	cr_assert(cfg.dns);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_DNS", "maybe"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_DNS_ZONE", "Mesh.Example."), 0);
	cr_assert_str_eq(cfg.dns_zone, "mesh.example");
	cr_assert_eq(mesh_config_set(&cfg, "P2P_DNS_ZONE", "bad_zone"), -EINVAL);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_DNS_ZONE", "a..b"), -EINVAL);
	cr_assert_str_eq(cfg.dns_zone, "mesh.example", "a bad value leaves the last good one");
	cr_assert_eq(mesh_config_set(&cfg, "CLUSTER_CONTRACT", "0x5FbDB2315678afecb367f032d93F642f64180aa3"),
		     0);
	cr_assert_eq(mesh_config_validate(&cfg, &why), 0, "%s", why.text);
	cr_assert_eq(mesh_config_set(&cfg, "P2P_MODE", "tls"), 0);
	cr_assert_eq(mesh_config_validate(&cfg, &why), -EINVAL);
	cr_assert(strstr(why.text, "P2P_DNS=on"), "%s", why.text);
}
