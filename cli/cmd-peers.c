/* SPDX-License-Identifier: MIT */
/* dstack-p2p peers: the running agent's peer list, one connection string a line or JSON. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "api/dstack-p2p.h"
#include "api/internal.h"
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
	struct peers_doc d;
	struct buf reply;
	int c, r;

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
	r = api_control_query(api_control_path(control), "peers", &reply, 5000);
	if (r < 0) {
		cli_error("asking the agent at %s: %s", api_control_path(control), errstr(r));
		buf_clear(&reply);
		return CLI_EXIT_FAILURE;
	}
	if (json) {
		fputs((const char *)reply.data, stdout);
		buf_clear(&reply);
		return CLI_EXIT_OK;
	}
	/* The one peers-document parser (api/), so the CLI and apps read it alike. */
	r = peers_doc_parse((const char *)reply.data, reply.len, &d);
	if (r < 0) {
		cli_error("the agent's peers document: %s", dstack_p2p_strerror(r));
		buf_clear(&reply);
		return CLI_EXIT_FAILURE;
	}
	for (size_t i = 0; i < d.n; i++)
		puts(d.peers[i]);
	peers_doc_clear(&d);
	buf_clear(&reply);
	return CLI_EXIT_OK;
}
