/* SPDX-License-Identifier: MIT */
/* dstack-p2p peers: the running agent's peer list, one connection string a line or JSON. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"
#include "mesh/mesh.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-p2p peers [--json] [--control PATH]\n\n"
		   "Print the verified peers of this node: overlay addresses (wireguard mode) or\n"
		   "gateway URLs (tls mode), one a line, as the running agent knows them.\n\n"
		   "  --json          the agent's whole peers document\n"
		   "  --control PATH  the agent's control socket (env DSTACK_P2P_CONTROL)\n");
}

int cmd_peers(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "control", required_argument, NULL, 'c' },
		{ 0 },
	};
	const char *control = NULL;
	bool json = false;
	struct buf reply;
	struct json j;
	int c, r, arr;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'c': control = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	buf_init(&reply, 1 << 20);
	r = mesh_control_query(mesh_control_path(control), "peers", &reply, 5000);
	if (r < 0) {
		fprintf(stderr, "dstack-p2p peers: asking the agent at %s: %s\n",
			mesh_control_path(control), errstr(r));
		buf_free(&reply);
		return 1;
	}
	if (json) {
		fputs((const char *)reply.data, stdout);
		buf_free(&reply);
		return 0;
	}
	r = json_parse(&j, (const char *)reply.data, reply.len, 4096);
	arr = r < 0 ? r : json_get(&j, 0, "peers");
	if (arr < 0 || j.tok[arr].type != JSON_ARRAY) {
		fprintf(stderr, "dstack-p2p peers: the agent's reply has no peer list\n");
		if (r >= 0)
			json_free(&j);
		buf_free(&reply);
		return 1;
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
	return 0;
}
