/* SPDX-License-Identifier: MIT */
/* dstack-p2p status: identity, interface and every peer with its live WireGuard state; health. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "api/internal.h"
#include "cli/cli.h"
#include "cli/status-doc.h"
#include "common/common.h"
#include "mesh/mesh.h"

#define DEFAULT_CONFIG_FILE "/etc/dstack-p2p.conf"

enum { O_JSON = 256, O_CONTROL, O_CONTRACT, O_RPC, O_INTERFACE, O_MODE };

static const struct cli_opt opts[] = {
	{ "json", O_JSON, NULL, "the status document, one line of JSON" },
	{ "control", O_CONTROL, "PATH", "the agent's control socket (env DSTACK_P2P_CONTROL)" },
	{ "contract", O_CONTRACT, "ADDR", "without an agent: the cluster contract [CLUSTER_CONTRACT]" },
	{ "rpc", O_RPC, "URLS", "without an agent: JSON-RPC URL(s) [ETH_RPC_URL]" },
	{ "interface", O_INTERFACE, "NAME", "without an agent: the WireGuard interface [P2P_INTERFACE]" },
	{ "mode", O_MODE, "MODE", "without an agent: wireguard or tls [P2P_MODE]" },
	{ 0 },
};

/* The flags that configure status without an agent, by their configuration names. */
static const char *const override_names[] = {
	[O_CONTRACT - O_CONTRACT] = "CLUSTER_CONTRACT",
	[O_RPC - O_CONTRACT] = "ETH_RPC_URL",
	[O_INTERFACE - O_CONTRACT] = "P2P_INTERFACE",
	[O_MODE - O_CONTRACT] = "P2P_MODE",
};

static const struct cli_cmd cmd = {
	.name = "status",
	.synopsis = "[--json] [--control PATH] [--contract ADDR] [--rpc URLS]\n"
		    "                         [--interface NAME] [--mode MODE]",
	.about = "Show this node's identity, interface and peers (token, address, endpoint,\n"
		 "last handshake, transfer, verification) as the running agent sees them, and\n"
		 "whether it is healthy. Without a running agent, read them from the kernel and\n"
		 "the chain, configured like the agent (flags, environment, " DEFAULT_CONFIG_FILE "\n"
		 "or $P2P_CONFIG); the flags marked 'without an agent' are ignored when one answers.\n"
		 "Fields not known yet are shown as unknown (null in JSON).",
	.opts = opts,
	.footer = "Exit status (for monitoring; the container health check is wait --timeout 5):\n"
		  "  0  healthy: the agent answers, this node is registered, the RPC works,\n"
		  "     no record was rejected\n"
		  "  1  no status: the agent failed to answer, or without one the chain could not\n"
		  "     be read\n"
		  "  2  usage or configuration error\n"
		  "  3  status printed, but not healthy (no agent running, not registered,\n"
		  "     registry not read yet, RPC failing, records rejected)",
};

/* String member of object obj, or NULL when absent, null or empty (copied, bounded). */
static const char *str(const struct json *j, int obj, const char *key, char *out, size_t cap)
{
	size_t len;
	const char *s;
	int i = json_get(j, obj, key);

	if (i < 0 || json_is_null(j, i) ||
	    (j->tok[i].type != JSON_STRING && j->tok[i].type != JSON_PRIMITIVE))
		return NULL;
	s = json_raw(j, i, &len);
	if (!len)
		return NULL;
	if (len >= cap)
		len = cap - 1;
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

/* The same, "unknown" when not known. */
static const char *known(const struct json *j, int obj, const char *key, char *out, size_t cap)
{
	const char *s = str(j, obj, key, out, cap);

	return s ? s : "unknown";
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

static void print_node(const struct json *j)
{
	char a[128], b[128], c[128], d[300];
	bool registered = json_eq(j, json_get(j, 0, "registered"), "true");

	/* Only status without an agent lacks it: the agent cannot start without its identity. */
	printf("instance    %s\n", str(j, 0, "instance_id", a, sizeof(a)) ? a : "unknown (no dstack guest agent)");
	printf("cluster     %s (chain %s), %s mode\n", known(j, 0, "contract", a, sizeof(a)),
	       known(j, 0, "chain_id", b, sizeof(b)), known(j, 0, "mode", c, sizeof(c)));
	printf("token       %s  address %s  %s\n", str(j, 0, "token", a, sizeof(a)) ? a : "none",
	       str(j, 0, "address", b, sizeof(b)) ? b : "none", registered ? "registered" : "NOT registered");
	printf("endpoint    %s\n", str(j, 0, "endpoint", d, sizeof(d)) ? d : "none");
	if (str(j, 0, "interface", a, sizeof(a)))
		printf("interface   %s (%s), port %s, public key %s\n", a, known(j, 0, "backend", b, sizeof(b)),
		       known(j, 0, "listen_port", c, sizeof(c)), known(j, 0, "public_key", d, sizeof(d)));
	if (str(j, 0, "last_sync_ms_ago", a, sizeof(a)))
		printf("registry    block %s, read %s ms ago, RPC %s, %lld RPC calls\n",
		       known(j, 0, "block", b, sizeof(b)), a,
		       json_eq(j, json_get(j, 0, "rpc_ok"), "true") ? "ok" : "FAILING", num(j, 0, "rpc_calls"));
	else
		printf("registry    not read yet, RPC %s, %lld RPC calls\n",
		       json_eq(j, json_get(j, 0, "rpc_ok"), "false") ? "FAILING" : "unknown",
		       num(j, 0, "rpc_calls"));
}

/* How WireGuard reaches the peer: "udp", "gateway" with the relay's redials, or "-" (tls
 * mode, or no agent to ask). */
static void peer_path(const struct json *j, int p, char *out, size_t cap)
{
	int relay = json_get(j, p, "relay");
	long long redials = relay >= 0 && j->tok[relay].type == JSON_OBJECT ? num(j, relay, "reconnects") : 0;

	if (!str(j, p, "path", out, cap))
		snprintf(out, cap, "-");
	else if (redials > 0)
		snprintf(out + strlen(out), cap - strlen(out), " (%lld redials)", redials);
}

static void print_peers(const struct json *j)
{
	char a[128], b[128], d[300];
	int peers = json_get(j, 0, "peers"), rejected = json_get(j, 0, "rejected");

	if (peers >= 0 && j->tok[peers].type != JSON_ARRAY)
		peers = -1;
	if (rejected >= 0 && j->tok[rejected].type != JSON_ARRAY)
		rejected = -1;
	printf("\n%-6s %-12s %-28s %-12s %-22s %-20s %s\n", "TOKEN", "ADDRESS", "ENDPOINT", "HANDSHAKE",
	       "TRANSFER rx/tx", "PATH", "VERIFIED");
	/* Walk each array in one pass: json_array_at per element would be quadratic. */
	for (int k = 0, p = peers + 1; peers >= 0 && k < j->tok[peers].size && p < j->ntok;
	     k++, p = json_skip(j, p)) {
		char rx[32], tx[32], hs[32], xfer[80], path[48];

		human_bytes(rx, sizeof(rx), (unsigned long long)num(j, p, "rx_bytes"));
		human_bytes(tx, sizeof(tx), (unsigned long long)num(j, p, "tx_bytes"));
		snprintf(xfer, sizeof(xfer), "%s / %s", rx, tx);
		human_ago(hs, sizeof(hs), num(j, p, "last_handshake"));
		peer_path(j, p, path, sizeof(path));
		printf("%-6lld %-12s %-28s %-12s %-22s %-20s %s\n", num(j, p, "token"),
		       str(j, p, "address", a, sizeof(a)) ? a : "-", known(j, p, "endpoint", d, sizeof(d)),
		       hs, xfer, path, known(j, p, "verification", b, sizeof(b)));
	}
	for (int k = 0, p = rejected + 1; rejected >= 0 && k < j->tok[rejected].size && p < j->ntok;
	     k++, p = json_skip(j, p)) {
		printf("%-6lld %-12s %-28s %-12s %-22s %-20s REJECTED: %s\n", num(j, p, "token"), "-", "-", "-", "-", "-",
		       known(j, p, "verification", d, sizeof(d)));
	}
}

static void print_status(const struct json *j, const struct status_health *h)
{
	print_node(j);
	printf("health      %s%s\n", h->healthy ? "ok" : "NOT healthy: ", h->problems);
	print_peers(j);
}

/* No agent: configure like the agent would be, then read the kernel and the chain. */
static int status_without_agent(const char *const overrides[4], struct buf *out)
{
	struct mesh_config cfg;
	struct err_detail why;
	int r;

	mesh_config_init(&cfg);
	if (agent_config_load(&cfg, getenv("P2P_CONFIG")))
		return CLI_EXIT_USAGE;
	for (size_t i = 0; i < ARRAY_SIZE(override_names); i++)
		if (overrides[i])
			mesh_config_set(&cfg, override_names[i], overrides[i]);  /* checked when parsed */
	if (!cfg.contract[0]) {
		cli_error("no agent runs, and no cluster contract to read the chain with "
			  "(--contract or CLUSTER_CONTRACT)");
		return CLI_EXIT_USAGE;
	}
	r = mesh_status_standalone(&cfg, out, &why);
	if (r < 0) {
		cli_error("no agent runs, and reading the chain failed: %s", why.text);
		return CLI_EXIT_FAILURE;
	}
	return CLI_EXIT_OK;
}

/* The document out, normalized, in the form asked for; the exit status. */
static int print_document(const struct buf *reply, bool standalone, bool as_json)
{
	struct status_health health;
	struct buf doc;
	struct json j;
	int r;

	buf_init(&doc, 2 << 20);
	r = status_doc_normalize((const char *)reply->data, reply->len, standalone, &doc, &health);
	if (r < 0) {
		if (r == -EBADMSG)
			cli_error("the agent's reply is not a status document");
		else
			cli_error("the agent's reply: %s", errstr(r));
		buf_clear(&doc);
		return CLI_EXIT_FAILURE;
	}
	if (as_json) {
		printf("%s\n", (const char *)doc.data);
	} else if (json_parse(&j, (const char *)doc.data, doc.len, 1 << 14) == 0) {
		if (standalone)
			printf("(no agent running: read from the kernel and the chain)\n");
		print_status(&j, &health);
		json_clear(&j);
	}
	buf_clear(&doc);
	if (!health.healthy)
		cli_error("not healthy: %s", health.problems);
	return health.healthy ? CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
}

int cmd_status(int argc, char **argv)
{
	const char *control = NULL, *overrides[ARRAY_SIZE(override_names)] = { NULL };
	bool as_json = false, standalone = false;
	struct mesh_config check;
	struct cli_args a;
	struct buf reply;
	int c, r, status;

	mesh_config_init(&check);
	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0) {
		switch (c) {
		case O_JSON: as_json = true; break;
		case O_CONTROL: control = a.value; break;
		default:
			/* Checked now, whether or not an agent answers: a typo is a typo. */
			if (mesh_config_set(&check, override_names[c - O_CONTRACT], a.value) < 0)
				return cli_bad_value(&a, c == O_MODE ? "want wireguard (or wg) or tls"
						   : c == O_CONTRACT ? "want 0x and 40 hex digits"
						   : "see dstack-p2p-status(1)");
			overrides[c - O_CONTRACT] = a.value;
		}
	}
	if (c == CLI_STOP)
		return a.status;
	control = api_control_path(control);
	buf_init(&reply, 1 << 20);
	r = api_control_query(control, "status", &reply, 5000);
	if (r == -ENOENT || r == -ECONNREFUSED) {
		buf_reset(&reply);
		standalone = true;
		status = status_without_agent(overrides, &reply);
	} else if (r < 0) {
		cli_error("the agent at %s: %s", control, errstr(r));
		status = CLI_EXIT_FAILURE;
	} else {
		status = CLI_EXIT_OK;
	}
	if (status == CLI_EXIT_OK)
		status = print_document(&reply, standalone, as_json);
	buf_clear(&reply);
	return status;
}
