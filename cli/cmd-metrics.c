/* SPDX-License-Identifier: MIT */
/* dstack-p2p metrics: the running agent's Prometheus exposition (docs/metrics.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"

enum { O_CONTROL = 256 };

static const struct cli_opt opts[] = {
	{ "control", O_CONTROL, "PATH", "the agent's control socket (env DSTACK_P2P_CONTROL)" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "metrics",
	.synopsis = "[--control PATH]",
	.about = "Print the running agent's metrics in Prometheus's text exposition format 0.0.4:\n"
		 "per peer, the registry, the RPC, transactions and the leader (docs/metrics.md).\n"
		 "P2P_METRICS_LISTEN serves the same page over HTTP.",
	.opts = opts,
	.footer = "Exit status: 0 printed, 1 no agent answered or its reply is malformed, 2 usage.",
};

/* The exposition from {"version":1,"metrics":"..."}, malloc'd; -EBADMSG for another reply. */
static int exposition_of(const struct buf *reply, char **out)
{
	struct json j;
	int i, r;

	r = json_parse(&j, (const char *)reply->data, reply->len, 16);
	if (r < 0)
		return -EBADMSG;
	i = j.ntok ? json_get(&j, 0, "metrics") : -ENOENT;
	r = i >= 0 && j.tok[i].type == JSON_STRING ? json_strdup(&j, i, out) : -EBADMSG;
	json_clear(&j);
	return r;
}

int cmd_metrics(int argc, char **argv)
{
	const char *control = NULL;
	struct cli_args a;
	struct buf reply;
	char *text = NULL;
	int c, r;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0)
		if (c == O_CONTROL)
			control = a.value;
	if (c == CLI_STOP)
		return a.status;
	buf_init(&reply, 8 << 20);
	r = api_control_query(api_control_path(control), "metrics", &reply, 5000);
	if (r < 0) {
		cli_error("asking the agent at %s: %s", api_control_path(control), errstr(r));
		buf_clear(&reply);
		return CLI_EXIT_FAILURE;
	}
	r = exposition_of(&reply, &text);
	if (r < 0) {
		cli_error("the agent's reply is not a metrics document: %.200s", (const char *)reply.data);
		buf_clear(&reply);
		return CLI_EXIT_FAILURE;
	}
	fputs(text, stdout);
	free(text);
	buf_clear(&reply);
	return CLI_EXIT_OK;
}
