/* SPDX-License-Identifier: MIT */
/* dstack-p2p: the VPN agent and its command line; dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"

static const struct subcommand subcommands[] = {
	{ "version", cmd_version, "print the version" },
	{ "agent", cmd_agent, "run the VPN agent: register, follow the registry, program WireGuard" },
	{ "peers", cmd_peers, "the verified peers' addresses or URLs, one a line (--json)" },
	{ "status", cmd_status, "identity, interface, peers with handshakes and transfer (--json)" },
	{ "wait", cmd_wait, "exit 0 once this instance is registered (startup gate)" },
	{ "show", cmd_show, "WireGuard interfaces and peers, like wg show (--json)" },
	{ "identity", cmd_identity, "this node's ids and public keys, from the dstack guest agent" },
	{ "chain", cmd_chain, "the chain and the registry as the agent sees them (debugging)" },
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
	if (wants_help(argc, argv)) {
		printf("Usage: dstack-p2p version\n");
		return 0;
	}
	printf("dstack-p2p %s\n", DSTACK_P2P_VERSION);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-p2p <command> [options]\n\n"
		   "A WireGuard mesh of dstack TEE VMs, with membership held by an NFT contract.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(f, "\nRun 'dstack-p2p <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv);
	for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "dstack-p2p: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
