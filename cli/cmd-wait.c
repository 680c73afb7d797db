/* SPDX-License-Identifier: MIT */
/* dstack-p2p wait: the startup gate; exits 0 once this instance is registered in the cluster. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "common/common.h"
#include "mesh/mesh.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-p2p wait [--timeout SECONDS] [--control PATH]\n\n"
		   "Exit 0 once the local agent reports this instance registered in the cluster,\n"
		   "1 when the timeout (default 300 s) passes first. For docker-compose:\n"
		   "  depends_on: { p2p-wait: { condition: service_completed_successfully } }\n\n"
		   "  --timeout S     give up after S seconds\n"
		   "  --control PATH  the agent's control socket (env DSTACK_P2P_CONTROL)\n");
}

/* The peers document says registered: true. */
static bool reply_says_registered(const struct buf *reply)
{
	struct json j;
	bool registered = false;
	int i;

	if (json_parse(&j, (const char *)reply->data, reply->len, 4096) < 0)
		return false;
	i = json_get(&j, 0, "registered");
	if (i < 0 || json_bool(&j, i, &registered) < 0)
		registered = false;
	json_free(&j);
	return registered;
}

int cmd_wait(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "control", required_argument, NULL, 'c' },
		{ 0 },
	};
	const char *control = NULL;
	long timeout_s = 300;
	uint64_t deadline;
	int c, last = 0;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			char *end;

			timeout_s = strtol(optarg, &end, 10);
			if (*end || timeout_s < 0 || timeout_s > 86400) {
				fprintf(stderr, "dstack-p2p wait: bad --timeout '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'c': control = optarg; break;
		default: usage(stderr); return 2;
		}
	}
	control = mesh_control_path(control);
	deadline = now_ms() + (uint64_t)timeout_s * 1000;
	for (;;) {
		struct buf reply;
		bool done;

		buf_init(&reply, 1 << 20);
		last = mesh_control_query(control, "peers", &reply, 2000);
		done = last == 0 && reply_says_registered(&reply);
		buf_free(&reply);
		if (done) {
			printf("registered\n");
			return 0;
		}
		if (now_ms() >= deadline)
			break;
		/* The agent may not be up yet, or still waiting for its transaction. */
		nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000000L }, NULL);
	}
	fprintf(stderr, "dstack-p2p wait: not registered after %ld s (%s)\n", timeout_s,
		last < 0 ? errstr(last) : "the agent says not yet");
	return 1;
}
