/* SPDX-License-Identifier: MIT */
/* dstack-p2p status: identity, interface and every peer with its live WireGuard state. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/common.h"
#include "mesh/mesh.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-p2p status [--json] [--control PATH] [--contract ADDR] [--rpc URLS]\n"
		   "                         [--interface NAME] [--mode MODE]\n\n"
		   "Show this node's identity, interface and peers (token, address, endpoint,\n"
		   "last handshake, transfer, verification) as the running agent sees them.\n"
		   "Without a running agent, read them from the kernel and the chain, configured\n"
		   "like the agent (flags, environment, /etc/dstack-p2p.conf or $P2P_CONFIG).\n\n"
		   "  --json          the status document\n"
		   "  --control PATH  the agent's control socket (env DSTACK_P2P_CONTROL)\n");
}

/* String member of object obj, or "" (the value is copied into a bounded buffer). */
static const char *str(const struct json *j, int obj, const char *key, char *out, size_t cap)
{
	size_t len;
	const char *s;
	int i = json_get(j, obj, key);

	out[0] = '\0';
	if (i >= 0 && (j->tok[i].type == JSON_STRING || j->tok[i].type == JSON_PRIMITIVE)) {
		s = json_raw(j, i, &len);
		if (len >= cap)
			len = cap - 1;
		memcpy(out, s, len);
		out[len] = '\0';
	}
	return out;
}

static long long num(const struct json *j, int obj, const char *key)
{
	int64_t v = 0;
	int i = json_get(j, obj, key);

	if (i >= 0)
		json_int64(j, i, &v);
	return (long long)v;
}

static void human_bytes(char *out, size_t len, unsigned long long b)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(out, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void human_ago(char *out, size_t len, long long unix_s)
{
	long long ago = (long long)time(NULL) - unix_s;

	if (!unix_s)
		snprintf(out, len, "never");
	else if (ago < 120)
		snprintf(out, len, "%llds ago", ago < 0 ? 0 : ago);
	else
		snprintf(out, len, "%lldm ago", ago / 60);
}

static void print_status(const struct json *j)
{
	char a[128], b[128], c[128], d[300];
	int peers = json_get(j, 0, "peers"), rejected = json_get(j, 0, "rejected");

	if (peers >= 0 && j->tok[peers].type != JSON_ARRAY)
		peers = -1;
	if (rejected >= 0 && j->tok[rejected].type != JSON_ARRAY)
		rejected = -1;

	printf("instance    0x%s\n", str(j, 0, "instance_id", a, sizeof(a)));
	printf("cluster     %s (chain %lld), %s mode\n", str(j, 0, "contract", a, sizeof(a)),
	       num(j, 0, "chain_id"), str(j, 0, "mode", b, sizeof(b)));
	printf("token       %lld  address %s  %s\n", num(j, 0, "token"), str(j, 0, "address", a, sizeof(a)),
	       json_eq(j, json_get(j, 0, "registered"), "true") ? "registered" : "NOT registered");
	printf("endpoint    %s\n", str(j, 0, "endpoint", d, sizeof(d)));
	if (*str(j, 0, "interface", a, sizeof(a)))
		printf("interface   %s (%s), port %lld, public key %s\n", a, str(j, 0, "backend", b, sizeof(b)),
		       num(j, 0, "listen_port"), str(j, 0, "public_key", c, sizeof(c)));
	printf("registry    block %lld, read %lld ms ago, RPC %s, %lld RPC calls\n", num(j, 0, "block"),
	       num(j, 0, "last_sync_ms_ago"), json_eq(j, json_get(j, 0, "rpc_ok"), "true") ? "ok" : "FAILING",
	       num(j, 0, "rpc_calls"));
	printf("\n%-6s %-12s %-28s %-12s %-22s %s\n", "TOKEN", "ADDRESS", "ENDPOINT", "HANDSHAKE",
	       "TRANSFER rx/tx", "VERIFIED");
	/* Walk each array in one pass: json_array_at per element would be quadratic. */
	for (int k = 0, p = peers + 1; peers >= 0 && k < j->tok[peers].size && p < j->ntok;
	     k++, p = json_skip(j, p)) {
		char rx[32], tx[32], hs[32], xfer[80];

		human_bytes(rx, sizeof(rx), (unsigned long long)num(j, p, "rx_bytes"));
		human_bytes(tx, sizeof(tx), (unsigned long long)num(j, p, "tx_bytes"));
		snprintf(xfer, sizeof(xfer), "%s / %s", rx, tx);
		human_ago(hs, sizeof(hs), num(j, p, "last_handshake"));
		printf("%-6lld %-12s %-28s %-12s %-22s %s\n", num(j, p, "token"),
		       str(j, p, "address", a, sizeof(a)), str(j, p, "endpoint", d, sizeof(d)), hs, xfer,
		       str(j, p, "verification", b, sizeof(b)));
	}
	for (int k = 0, p = rejected + 1; rejected >= 0 && k < j->tok[rejected].size && p < j->ntok;
	     k++, p = json_skip(j, p)) {
		printf("%-6lld %-12s %-28s %-12s %-22s REJECTED: %s\n", num(j, p, "token"), "-", "-", "-", "-",
		       str(j, p, "verification", d, sizeof(d)));
	}
}

/* No agent: configure like the agent would be, then read the kernel and the chain. */
static int status_without_agent(const char *overrides[4][2], struct buf *out)
{
	const char *file = getenv("P2P_CONFIG"), *bad = NULL;
	struct mesh_config cfg;
	char why[512];
	int r, line;

	mesh_config_init(&cfg);
	if (!file && access("/etc/dstack-p2p.conf", R_OK) == 0)
		file = "/etc/dstack-p2p.conf";
	if (file && (r = mesh_config_load_file(&cfg, file, &line)) < 0) {
		if (line)
			fprintf(stderr, "dstack-p2p status: %s:%d: %s\n", file, line,
				mesh_config_file_strerror(r, line));
		else
			fprintf(stderr, "dstack-p2p status: %s: %s\n", file, errstr(r));
		return -EINVAL;
	}
	if (mesh_config_load_env(&cfg, &bad) < 0) {
		fprintf(stderr, "dstack-p2p status: bad value in %s\n", bad);
		return -EINVAL;
	}
	for (int i = 0; i < 4; i++) {
		if (overrides[i][1] && mesh_config_set(&cfg, overrides[i][0], overrides[i][1]) < 0) {
			fprintf(stderr, "dstack-p2p status: bad value for %s\n", overrides[i][0]);
			return -EINVAL;
		}
	}
	r = mesh_status_standalone(&cfg, out, why, sizeof(why));
	if (r < 0)
		fprintf(stderr, "dstack-p2p status: no agent runs, and reading the chain failed: %s\n", why);
	return r;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "control", required_argument, NULL, 'c' },
		{ "contract", required_argument, NULL, 'C' },
		{ "rpc", required_argument, NULL, 'r' },
		{ "interface", required_argument, NULL, 'i' },
		{ "mode", required_argument, NULL, 'm' },
		{ 0 },
	};
	const char *control = NULL, *overrides[4][2] = { { "CLUSTER_CONTRACT" }, { "ETH_RPC_URL" },
							{ "P2P_INTERFACE" }, { "P2P_MODE" } };
	bool as_json = false, standalone = false;
	struct buf reply;
	struct json j;
	int c, r;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': as_json = true; break;
		case 'c': control = optarg; break;
		case 'C': overrides[0][1] = optarg; break;
		case 'r': overrides[1][1] = optarg; break;
		case 'i': overrides[2][1] = optarg; break;
		case 'm': overrides[3][1] = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	control = mesh_control_path(control);
	buf_init(&reply, 1 << 20);
	r = mesh_control_query(control, "status", &reply, 5000);
	if (r == -ENOENT || r == -ECONNREFUSED) {
		buf_reset(&reply);
		r = status_without_agent(overrides, &reply);
		standalone = true;
	}
	if (r < 0) {
		if (!standalone)
			fprintf(stderr, "dstack-p2p status: the agent at %s: %s\n", control, errstr(r));
		buf_free(&reply);
		return 1;
	}
	if (standalone && !as_json)
		printf("(no agent running: read from the kernel and the chain)\n");
	if (as_json) {
		fputs((const char *)reply.data, stdout);
	} else {
		bool parsed = json_parse(&j, (const char *)reply.data, reply.len, 1 << 14) == 0;

		if (parsed && j.ntok > 0 && j.tok[0].type == JSON_OBJECT) {
			print_status(&j);
		} else {
			fprintf(stderr, "dstack-p2p status: the agent's reply is not a status document\n");
			r = -EBADMSG;
		}
		if (parsed)
			json_free(&j);
	}
	buf_free(&reply);
	return r < 0 ? 1 : 0;
}
