/* SPDX-License-Identifier: MIT */
/*
 * The one argument parser of every dstack-p2p subcommand: getopt_long underneath, so
 * `--opt value` and `--opt=value` both work; -h/--help anywhere (before `--`) prints
 * the help generated from the same table and exits 0; an unknown option, a missing
 * value or an operand too many prints one error line and the usage line and exits 2.
 * Errors everywhere read "dstack-p2p <command>: <what>" (cli_error).
 *
 * A subcommand uses it like this (cli/cmd-wait.c is a short complete example):
 *
 *	enum { O_TIMEOUT = 256, O_JSON };      // keys > 255: long options only
 *	static const struct cli_opt opts[] = {
 *		{ "timeout", O_TIMEOUT, "SECONDS", "give up after SECONDS (default 300)" },
 *		{ "json", O_JSON, NULL, "JSON instead of text" },
 *		{ 0 },
 *	};
 *	static const struct cli_cmd cmd = {
 *		.name = "wait", .synopsis = "[--timeout SECONDS] [--json]",
 *		.about = "One paragraph on what the command does.", .opts = opts,
 *		.max_operands = 0,
 *	};
 *	struct cli_args a;
 *	int c;
 *
 *	cli_args_init(&a, &cmd, argc, argv);      // argv[0] is the subcommand's name
 *	while ((c = cli_next(&a)) > 0) {
 *		switch (c) {
 *		case O_TIMEOUT: if (parse(a.value) < 0) return cli_bad_value(&a, "not a number"); break;
 *		case O_JSON: json = true; break;
 *		}
 *	}
 *	if (c == CLI_STOP)
 *		return a.status;                  // help printed (0) or usage error (2)
 *	// a.operands[0 .. a.n_operands-1]: the non-option arguments, count within bounds
 *
 * Exit statuses are a contract (docs/man/dstack-p2p.1, EXIT STATUS): see enum cli_exit.
 */
#ifndef DSTACK_P2P_CLI_ARGS_H
#define DSTACK_P2P_CLI_ARGS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

/* The exit statuses of every subcommand. */
enum cli_exit {
	CLI_EXIT_OK = 0,        /* done */
	CLI_EXIT_FAILURE = 1,   /* the work failed at run time: no agent, no chain, an I/O error */
	CLI_EXIT_USAGE = 2,     /* usage or configuration: bad option, value, operand or setting */
	CLI_EXIT_NEGATIVE = 3,  /* it ran and the answer is no: status not healthy,
				   identity's chain does not verify */
};

#define CLI_MAX_OPTS 40

struct cli_opt {
	const char *name;   /* long name without "--"; NULL ends the table */
	int key;            /* what cli_next returns: > 255 for a long option only; a letter
			       (not 'h') makes -<letter> a short spelling of it too */
	const char *arg;    /* the value's name in --help ("PATH"); NULL: a flag without a value */
	const char *help;   /* one line of --help; a '\n' continues on an indented line */
};

/* The rows of the options that chain, cluster and relayer share, in one wording (the
 * keys are each command's own). */
#define CLI_OPT_RPC(key) \
	{ "rpc", key, "URLS", "comma-separated JSON-RPC endpoints (env ETH_RPC_URL):\n" \
	  "http(s)://..., a path or ipc://PATH (raw IPC), http+unix://PATH" }
#define CLI_OPT_CONTRACT(key) { "contract", key, "ADDR", "the cluster contract (env CLUSTER_CONTRACT)" }
#define CLI_OPT_CHAIN_ID(key) { "chain-id", key, "N", "refuse an RPC that serves another chain" }
#define CLI_OPT_KEY_FILE(key) { "key-file", key, "FILE", "the paying key, hex (env DSTACK_P2P_KEY_FILE)" }
#define CLI_OPT_PASSWORD_FILE(key) \
	{ "password-file", key, "FILE", "the keystore's password (else asked on the tty)" }

struct cli_cmd {
	const char *name;             /* "status": messages read "dstack-p2p status: ..." */
	const char *synopsis;         /* the usage line after "Usage: dstack-p2p <name> " */
	const char *about;            /* --help text between the usage line and the options */
	const struct cli_opt *opts;   /* ends with { 0 }; -h/--help is added to it */
	int min_operands;             /* non-option arguments allowed: min .. max */
	int max_operands;
	const char *footer;           /* --help text after the options (may be NULL) */
};

struct cli_args {
	const struct cli_cmd *cmd;
	int argc;
	char **argv;
	const char *value;            /* the value of the option cli_next just returned */
	const char *opt_name;         /* and its long name */
	char **operands;              /* after the last option: the non-option arguments */
	int n_operands;
	int status;                   /* after CLI_STOP: what the subcommand returns */
	bool help;
	struct option longopts[CLI_MAX_OPTS + 2];
	char shortopts[2 * CLI_MAX_OPTS + 4];
};

#define CLI_END 0     /* every option read; the operands are in a.operands */
#define CLI_STOP (-1) /* help printed or a usage error reported: return a.status */

/* Starts parsing argv (argv[0] is the subcommand's name); also names the command for cli_error. */
void cli_args_init(struct cli_args *a, const struct cli_cmd *cmd, int argc, char **argv);

/* The next option's key (> 0), CLI_END, or CLI_STOP (then a->status is the exit status). */
int cli_next(struct cli_args *a);

/* "dstack-p2p <cmd>: bad value for --<opt> '<value>': <why>" and the usage line; returns 2. */
int cli_bad_value(struct cli_args *a, const char *why);

/* "dstack-p2p <cmd>: <what>" and the usage line on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The whole --help text of cmd. */
void cli_help(const struct cli_cmd *cmd, FILE *f);

/* Names the running command for cli_error (cli_args_init does it too). */
void cli_set_command(const char *name);

/* "dstack-p2p <command>: <what>\n" on stderr: the one error format of the CLI. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
