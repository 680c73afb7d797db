/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of mesh/metrics.c: the agent's exposition from a filled struct mesh_metrics,
 * read back by Debian's python3-prometheus-client (every family once, typed as
 * docs/metrics.md says, the values given).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "test-prom-parse.h"

static const char parse_py[] = "import sys\n"
			       "from prometheus_client.parser import text_string_to_metric_families as f\n"
			       "for fam in f(open(sys.argv[1], encoding=\"utf-8\").read()):\n"
			       " for s in fam.samples:\n"
			       "  print(fam.type, s.name, \",\".join(k + \"=\" + v for k, v in "
			       "sorted(s.labels.items())), s.value)\n";

/* The render of m, as python reads it: one "type name labels value" line per sample. */
static char *parsed(const struct mesh_metrics *m)
{
	struct buf b;
	char *out;

	buf_init(&b, 1 << 20);
	cr_assert_eq(mesh_metrics_render(m, &b), 0);
	out = python_on_page(&b, parse_py);
	buf_clear(&b);
	return out;
}

static void has(const char *text, const char *line)
{
	cr_assert(strstr(text, line), "no line '%s' in:\n%s", line, text);
}

Test(mesh_metrics, every_series_parses_with_its_type_and_value)
{
	struct mesh_metrics_peer peers[2] = {
		{ .token = 2,
		  .label = "node-2",
		  .has_device = true,
		  .has_handshake = true,
		  .handshake_age_s = 4.5,
		  .rx_bytes = 1000,
		  .tx_bytes = 2000,
		  .path = "udp" },
		{ .token = 7,
		  .label = "q\"\\",
		  .has_device = true,
		  .path = "gateway",
		  .has_relay = true,
		  .relay_redials = 3,
		  .relay_drops = 9,
		  .relay_queue_drops = 4 },
	};
	struct mesh_metrics m = {
		.peers = peers,
		.n_peers = 2,
		.block = 100,
		.registry = { .polls = 50, .full_reads = 2, .records_read = 5, .reorgs = 1, .head = 103 },
		.rejected = { [MESH_REJECT_VERIFICATION] = 2, [MESH_REJECT_MALFORMED] = 1 },
		.disagreements = 6,
		.rpc = { .calls = 77, .errors = { [ETH_RPC_TIMEOUT] = 2 } },
		.sender = { .sent_by = { [MESH_TX_REGISTRATION] = 1 },
			    .gas_limit_by = { [MESH_TX_REGISTRATION] = 300000 },
			    .relayed_by = { [MESH_TX_LEADER_CALL] = 3 } },
		.leader_known = true,
		.leader_term = 4,
		.leader_token = 2,
	};
	char *t = parsed(&m);

	has(t, "gauge dstack_p2p_peers  2.0\n");
	has(t, "gauge dstack_p2p_peer_last_handshake_age_seconds label=node-2,token=2 4.5\n");
	cr_assert_null(strstr(t, "age_seconds label=q"), "no handshake, no sample:\n%s", t);
	has(t, "counter dstack_p2p_peer_rx_bytes_total label=node-2,token=2 1000.0\n");
	has(t, "counter dstack_p2p_peer_tx_bytes_total label=node-2,token=2 2000.0\n");
	has(t, "gauge dstack_p2p_peer_path label=node-2,path=udp,token=2 1.0\n");
	has(t, "gauge dstack_p2p_peer_path label=q\"\\,path=gateway,token=7 1.0\n");
	has(t, "counter dstack_p2p_peer_relay_redials_total label=q\"\\,token=7 3.0\n");
	has(t, "counter dstack_p2p_peer_relay_drops_total label=q\"\\,token=7 9.0\n");
	has(t, "counter dstack_p2p_peer_relay_queue_drops_total label=q\"\\,token=7 4.0\n");
	has(t, "gauge dstack_p2p_registry_block  100.0\n");
	has(t, "gauge dstack_p2p_registry_head_block  103.0\n");
	has(t, "gauge dstack_p2p_registry_lag_blocks  3.0\n");
	has(t, "counter dstack_p2p_registry_polls_total  50.0\n");
	has(t, "counter dstack_p2p_registry_full_reads_total  2.0\n");
	has(t, "counter dstack_p2p_registry_records_read_total  5.0\n");
	has(t, "counter dstack_p2p_registry_reorgs_total  1.0\n");
	has(t, "gauge dstack_p2p_registry_records_rejected reason=verification 2.0\n");
	has(t, "gauge dstack_p2p_registry_records_rejected reason=malformed 1.0\n");
	has(t, "gauge dstack_p2p_registry_records_rejected reason=replayed 0.0\n");
	has(t, "counter dstack_p2p_registry_provider_disagreements_total  6.0\n");
	has(t, "counter dstack_p2p_rpc_calls_total  77.0\n");
	has(t, "counter dstack_p2p_rpc_errors_total kind=timeout 2.0\n");
	has(t, "counter dstack_p2p_rpc_errors_total kind=connection 0.0\n");
	has(t, "counter dstack_p2p_transactions_sent_total kind=registration 1.0\n");
	has(t, "counter dstack_p2p_transactions_sent_total kind=leader_call 0.0\n");
	has(t, "counter dstack_p2p_transactions_gas_limit_total kind=registration 300000.0\n");
	has(t, "counter dstack_p2p_transactions_relayed_total kind=leader_call 3.0\n");
	has(t, "counter dstack_p2p_transactions_failed_total kind=registration 0.0\n");
	has(t, "gauge dstack_p2p_leader_term  4.0\n");
	has(t, "gauge dstack_p2p_leader_token  2.0\n");
	free(t);
}

Test(mesh_metrics, nothing_known_yet_is_left_out_not_zero)
{
	struct mesh_metrics m = { 0 };
	char *t = parsed(&m);

	has(t, "gauge dstack_p2p_peers  0.0\n");
	cr_assert_null(strstr(t, "dstack_p2p_registry_block"), "no block read yet:\n%s", t);
	cr_assert_null(strstr(t, "dstack_p2p_leader_term"), "no leader read yet:\n%s", t);
	free(t);
}

Test(mesh_metrics, listen_only_on_loopback_or_the_overlay)
{
	static const char *const bad[] = { "0.0.0.0:9464",   ":9464",     "192.168.1.5:9464", "10.0.1.3:9464",
					   "localhost:9464", "[::]:9464", "[fd00::1]:9464",   "127.0.0.1",
					   "overlay",        "overlay:0", "127.0.0.1:99999",  "[::1:9464",
					   "0x7f.1:9464" };
	struct mesh_metrics_listen l;

	cr_assert_eq(mesh_metrics_listen_parse("127.0.0.1:9464", &l), 0);
	cr_assert_str_eq(l.host, "127.0.0.1");
	cr_assert_eq(l.port, 9464);
	cr_assert_not(l.overlay);
	cr_assert_eq(mesh_metrics_listen_parse("127.1.2.3:1", &l), 0);
	cr_assert_eq(mesh_metrics_listen_parse("[::1]:9464", &l), 0);
	cr_assert_str_eq(l.host, "::1");
	cr_assert_eq(mesh_metrics_listen_parse("overlay:9100", &l), 0);
	cr_assert(l.overlay);
	cr_assert_eq(l.port, 9100);
	cr_assert_eq(mesh_metrics_listen_parse("", &l), 0);
	cr_assert_eq(l.spec[0], '\0');
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cr_assert_lt(mesh_metrics_listen_parse(bad[i], &l), 0, "%s accepted", bad[i]);
		cr_assert_str_eq(l.spec, bad[i], "the value is kept for the message");
	}
}
