/* SPDX-License-Identifier: MIT */
/* dstack-p2p: the VPN agent and its command line; dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"

static const struct subcommand subcommands[] = {
	{ "version", cmd_version, "print the version" },
	{ "agent", cmd_agent, "run the VPN agent: register, follow the registry, program WireGuard" },
	{ "peers", cmd_peers, "the verified peers' addresses or URLs, one a line (--json)" },
	{ "status", cmd_status, "identity, interface, peers with handshakes and transfer (--json)" },
	{ "metrics", cmd_metrics, "the agent's metrics in Prometheus's text format" },
	{ "wait", cmd_wait, "exit 0 once this instance is registered (startup gate)" },
	{ "leader", cmd_leader, "the cluster's leader; elect, heartbeat, vote through the agent" },
	{ "show", cmd_show, "WireGuard interfaces and peers, like wg show (--json)" },
	{ "identity", cmd_identity, "this node's ids and public keys, from the dstack guest agent" },
	{ "chain", cmd_chain, "the chain and the registry as the agent sees them (debugging)" },
	{ "cluster", cmd_cluster, "operator: deploy, mint, bind, policies, status of a cluster" },
	{ "relayer", cmd_relayer, "operator: send the nodes' registrations, paying their gas" },
};

bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

int cmd_version(int argc, char **argv)
{
	static const struct cli_opt opts[] = { { 0 } };
	static const struct cli_cmd cmd = {
		.name = "version", .synopsis = "", .about = "Print the version.", .opts = opts,
		.footer = "Exit status: 0, or 2 on a usage error.",
	};
	struct cli_args a;
	int c;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0)
		;
	if (c == CLI_STOP)
		return a.status;
	printf("dstack-p2p %s\n", DSTACK_P2P_VERSION);
	return CLI_EXIT_OK;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-p2p <command> [options]\n\n"
		   "A WireGuard mesh of dstack TEE VMs, with membership held by an NFT contract.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\nRun 'dstack-p2p <command> --help' for a command's options.\n"
		   "Exit status: 0 ok, 1 failed at run time, 2 usage or configuration error,\n"
		   "3 ran and the answer is no (status: not healthy).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "dstack-p2p: no command given\n");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "dstack-p2p: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
