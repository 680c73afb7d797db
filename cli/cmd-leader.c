/* SPDX-License-Identifier: MIT */
/* dstack-p2p leader: the cluster's leader as the agent follows it; elect, heartbeat, vote through it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/internal.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"
#include "registry/registry.h"

enum { O_TARGET = 256, O_WITHDRAW, O_JSON, O_CONTROL };

static const struct cli_opt opts[] = {
	{ "target", O_TARGET, "TOKEN", "vote: the leader's token (default: the current leader)" },
	{ "withdraw", O_WITHDRAW, NULL, "vote: take a standing vote of no confidence back" },
	{ "json", O_JSON, NULL, "the agent's reply as one line of JSON" },
	{ "control", O_CONTROL, "PATH", "the agent's control socket (env DSTACK_P2P_CONTROL)" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "leader",
	.synopsis = "[show|elect|heartbeat|vote] [--target TOKEN] [--withdraw] [--json] [--control PATH]",
	.about = "Show the cluster's leader as the running agent follows it (show, the default),\n"
		 "or have the agent act in the contract's leader election: take a free or expired\n"
		 "lease (elect), extend its own lease (heartbeat), vote no confidence in the leader\n"
		 "(vote). The agent signs with the node key and sends through its funded key or\n"
		 "relayer; it answers once the transaction is mined.",
	.opts = opts,
	.max_operands = 1,
	.footer = "Exit status: 0 done, 1 no agent answered or the agent or contract refused, 2 usage.",
};

/* A string member of object obj, or "" (for messages). */
static void member(const struct json *j, int obj, const char *key, char *out, size_t cap)
{
	int i = json_get(j, obj, key);
	char *s = NULL;

	out[0] = '\0';
	if (i >= 0 && json_strdup(j, i, &s) == 0)
		snprintf(out, cap, "%s", s);
	free(s);
}

static int64_t number(const struct json *j, int obj, const char *key)
{
	int64_t v = 0;
	int i = json_get(j, obj, key);

	if (i >= 0)
		json_int64(j, i, &v);
	return v;
}

static void print_leader(const struct json *j, int l)
{
	char label[80], addr[32], when[REGISTRY_TIME_STR_MAX];
	time_t expiry;
	bool active = false, self = false;
	int i;

	if (l < 0 || j->tok[l].type != JSON_OBJECT) {
		printf("no leader\n");
		return;
	}
	member(j, l, "label", label, sizeof(label));
	member(j, l, "address", addr, sizeof(addr));
	expiry = (time_t)number(j, l, "expiry");
	if ((i = json_get(j, l, "lease_active")) >= 0)
		json_bool(j, i, &active);
	if ((i = json_get(j, l, "self")) >= 0)
		json_bool(j, i, &self);
	registry_time_str(expiry > 0 ? (uint64_t)expiry : 0, when);
	printf("leader: token %lld%s%s%s %s%s, term %lld, lease %s %s %s, no-confidence votes %lld of %lld\n",
	       (long long)number(j, l, "token"), *label ? " (" : "", label, *label ? ")" : "", addr,
	       self ? " (this node)" : "", (long long)number(j, l, "term"), active ? "active" : "expired",
	       active ? "until" : "at", when, (long long)number(j, l, "votes"),
	       (long long)number(j, l, "required"));
}

/* A refusal as the operator reads it: a contract error the agent names in its compact form
 * ("LeaderStillActive(2, 1764520000)") with field names, times in ISO 8601 and a hint. */
static void explain_and_report(const char *action, const char *message, const char *code)
{
	struct buf b;

	buf_init(&b, 4096);
	if (registry_explain_compact(message, &b) == 0 && buf_terminate(&b) == 0)
		message = (const char *)b.data;
	cli_error("%s: %s (%s)", action, message, code);
	buf_clear(&b);
}

/* The request line for an action; name is "show" for the plain leader request. */
static int request_line(const char *action, long target, bool withdraw, char *out, size_t cap)
{
	if (!strcmp(action, "show"))
		return snprintf(out, cap, "leader") < (int)cap ? 0 : -ENAMETOOLONG;
	if (strcmp(action, "elect") && strcmp(action, "heartbeat") && strcmp(action, "vote"))
		return -EINVAL;
	if (strcmp(action, "vote"))
		snprintf(out, cap, "{\"version\":1,\"request\":\"leader.%s\"}", action);
	else if (target)
		snprintf(out, cap, "{\"version\":1,\"request\":\"leader.vote\",\"target\":%ld,\"no_confidence\":%s}",
			 target, withdraw ? "false" : "true");
	else
		snprintf(out, cap, "{\"version\":1,\"request\":\"leader.vote\",\"no_confidence\":%s}",
			 withdraw ? "false" : "true");
	return 0;
}

static int show_reply(const char *action, const struct buf *reply, bool json_out)
{
	char code[64], message[512], tx[80], state[16];
	struct json j;
	int err;

	if (json_parse(&j, (const char *)reply->data, reply->len, 1024) < 0 || j.ntok < 1 ||
	    j.tok[0].type != JSON_OBJECT) {
		cli_error("the agent's reply is malformed");
		return CLI_EXIT_FAILURE;
	}
	err = json_get(&j, 0, "error");
	if (json_out)
		fputs((const char *)reply->data, stdout);
	if (err >= 0) {
		member(&j, err, "code", code, sizeof(code));
		member(&j, err, "message", message, sizeof(message));
		explain_and_report(action, message, code);
		json_clear(&j);
		return CLI_EXIT_FAILURE;
	}
	if (!json_out) {
		member(&j, 0, "tx", tx, sizeof(tx));
		member(&j, 0, "state", state, sizeof(state));
		if (strcmp(action, "show"))
			printf("%s: %s%s%s%s\n", action, *tx ? tx : "handed to the relayer", *state ? " (" : "", state,
			       *state ? ")" : "");
		print_leader(&j, json_get(&j, 0, "leader"));
	}
	json_clear(&j);
	return CLI_EXIT_OK;
}

int cmd_leader(int argc, char **argv)
{
	const char *control = NULL, *action = "show";
	bool json_out = false, withdraw = false;
	long target = 0;
	struct cli_args a;
	struct buf reply;
	char line[256];
	int c, r;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0) {
		switch (c) {
		case O_TARGET: {
			char *end;

			target = strtol(a.value, &end, 10);
			if (*end || end == a.value || target < 1 || target > 254)
				return cli_bad_value(&a, "want a token id, 1 to 254");
			break;
		}
		case O_WITHDRAW: withdraw = true; break;
		case O_JSON: json_out = true; break;
		case O_CONTROL: control = a.value; break;
		}
	}
	if (c == CLI_STOP)
		return a.status;
	if (a.n_operands)
		action = a.operands[0];
	if (request_line(action, target, withdraw, line, sizeof(line)) < 0)
		return cli_usage_error(&cmd, "unknown action '%s' (show, elect, heartbeat or vote)", action);
	control = api_control_path(control);
	buf_init(&reply, 1 << 20);
	/* An action answers once sent (its RPC calls, or one relayer request of at most 5 s). */
	r = api_control_query(control, line, &reply, strcmp(action, "show") ? 15000 : 5000);
	if (r < 0) {
		cli_error("asking the agent at %s: %s", control, errstr(r));
		buf_clear(&reply);
		return CLI_EXIT_FAILURE;
	}
	r = show_reply(action, &reply, json_out);
	buf_clear(&reply);
	return r;
}
