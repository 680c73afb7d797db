/* SPDX-License-Identifier: MIT */
/* The dstack-p2p command line: one function per subcommand, dispatched by main. */
#ifndef DSTACK_P2P_CLI_H
#define DSTACK_P2P_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct mesh_config;

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);  /* argv[0] is the subcommand name */
	const char *summary;
};

/* True when argv holds -h or --help before "--". Subcommands use cli/args.h, which does this. */
bool wants_help(int argc, char **argv);

/* Subcommands; each lives in cli/cmd-<name>.c and returns a process exit status. */
int cmd_version(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_peers(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_identity(int argc, char **argv);
int cmd_chain(int argc, char **argv);
int cmd_cluster(int argc, char **argv);
int cmd_relayer(int argc, char **argv);
int cmd_leader(int argc, char **argv);
int cmd_metrics(int argc, char **argv);

/*
 * The agent's configuration layers under its flags: the config file (config_file, else
 * /etc/dstack-p2p.conf if readable), then the environment. Errors are printed; returns
 * 0 or CLI_EXIT_USAGE. Shared by agent and status (which configures itself the same way).
 */
int agent_config_load(struct mesh_config *cfg, const char *config_file);

/*
 * What a command that serves does before http_serve: SIGTERM and SIGINT blocked and
 * routed to on_stop (wait_mask, for http_serve, lets them in while it waits), SIGPIPE
 * ignored. Shared by relayer and cluster serve.
 */
void cli_serve_signals(void (*on_stop)(int), sigset_t *wait_mask);

/* "0x" and the lowercase hex of p[0..n) to f (nothing when out of memory). */
void cli_print_hex(FILE *f, const uint8_t *p, size_t n);

#endif
