/* SPDX-License-Identifier: MIT */
/* dstack-p2p peers: the running agent's peer list, one connection string a line or JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"
#include "mesh/mesh.h"

enum { O_JSON = 256, O_CONTROL };

static const struct cli_opt opts[] = {
	{ "json", O_JSON, NULL, "the agent's whole peers document" },
	{ "control", O_CONTROL, "PATH", "the agent's control socket (env DSTACK_P2P_CONTROL)" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "peers",
	.synopsis = "[--json] [--control PATH]",
	.about = "Print the verified peers of this node: overlay addresses (wireguard mode) or\n"
		 "gateway URLs (tls mode), one a line, as the running agent knows them.",
	.opts = opts,
	.footer = "Exit status: 0 printed, 1 no agent answered or its reply is malformed, 2 usage.",
};

int cmd_peers(int argc, char **argv)
{
	const char *control = NULL;
	struct cli_args a;
	bool json = false;
	struct buf reply;
	struct json j;
	int c, r, arr;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0) {
		switch (c) {
		case O_JSON: json = true; break;
		case O_CONTROL: control = a.value; break;
		}
	}
	if (c == CLI_STOP)
		return a.status;
	buf_init(&reply, 1 << 20);
	r = mesh_control_query(mesh_control_path(control), "peers", &reply, 5000);
	if (r < 0) {
		cli_error("asking the agent at %s: %s", mesh_control_path(control), errstr(r));
		buf_free(&reply);
		return CLI_EXIT_FAILURE;
	}
	if (json) {
		fputs((const char *)reply.data, stdout);
		buf_free(&reply);
		return CLI_EXIT_OK;
	}
	r = json_parse(&j, (const char *)reply.data, reply.len, 4096);
	arr = r < 0 ? r : json_get(&j, 0, "peers");
	if (arr < 0 || j.tok[arr].type != JSON_ARRAY) {
		cli_error("the agent's reply has no peer list");
		if (r >= 0)
			json_free(&j);
		buf_free(&reply);
		return CLI_EXIT_FAILURE;
	}
	/* One pass over the elements: json_array_at per element would be quadratic. */
	for (int k = 0, e = arr + 1; k < j.tok[arr].size && e < j.ntok; k++, e = json_skip(&j, e)) {
		char *s;

		if (json_strdup(&j, e, &s) == 0) {
			puts(s);
			free(s);
		}
	}
	json_free(&j);
	buf_free(&reply);
	return CLI_EXIT_OK;
}
