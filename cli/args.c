/* SPDX-License-Identifier: MIT */
/* The one argument parser, help generator and error format of every subcommand (cli/args.h). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"

/* Help columns: options longer than this put their text on the next line. */
#define HELP_COLUMN 24

static char command[32] = "";

void cli_set_command(const char *name)
{
	snprintf(command, sizeof(command), "%s", name ? name : "");
}

static void vreport(const char *fmt, va_list ap)
{
	fprintf(stderr, command[0] ? "dstack-p2p %s: " : "dstack-p2p: ", command);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
}

static void usage_line(const struct cli_cmd *cmd, FILE *f)
{
	bool syn = cmd->synopsis && cmd->synopsis[0];

	fprintf(f, "Usage: dstack-p2p %s%s%s\n", cmd->name, syn ? " " : "", syn ? cmd->synopsis : "");
}

static void usage_hint(const struct cli_cmd *cmd)
{
	usage_line(cmd, stderr);
	fprintf(stderr, "Run 'dstack-p2p %s --help' for its options.\n", cmd->name);
}

int cli_usage_error(const struct cli_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	cli_set_command(cmd->name);
	va_start(ap, fmt);
	vreport(fmt, ap);
	va_end(ap);
	usage_hint(cmd);
	return CLI_EXIT_USAGE;
}

int cli_bad_value(struct cli_args *a, const char *why)
{
	return cli_usage_error(a->cmd, "bad value for --%s '%s': %s", a->opt_name,
			       a->value ? a->value : "", why);
}

/* Prints text, continuing each '\n' on a line indented to the help column. */
static void print_wrapped(FILE *f, const char *text)
{
	for (const char *p = text; *p; p++) {
		fputc(*p, f);
		if (*p == '\n')
			fprintf(f, "%*s", HELP_COLUMN + 2, "");
	}
	fputc('\n', f);
}

static void print_option(FILE *f, const char *flag, const char *help)
{
	int n = fprintf(f, "  %s", flag);

	if (n - 2 >= HELP_COLUMN)
		fprintf(f, "\n%*s", HELP_COLUMN + 2, "");
	else
		fprintf(f, "%*s", HELP_COLUMN + 2 - n, "");
	print_wrapped(f, help);
}

void cli_help(const struct cli_cmd *cmd, FILE *f)
{
	char flag[96];

	usage_line(cmd, f);
	if (cmd->about)
		fprintf(f, "\n%s\n", cmd->about);
	fprintf(f, "\nOptions:\n");
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
		int n = 0;

		if (o->key > 0 && o->key < 128)
			n = snprintf(flag, sizeof(flag), "-%c, ", o->key);
		snprintf(flag + n, sizeof(flag) - (size_t)n, "--%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		print_option(f, flag, o->help);
	}
	print_option(f, "-h, --help", "print this help and exit");
	if (cmd->footer)
		fprintf(f, "\n%s\n", cmd->footer);
}

static bool is_short(int key)
{
	return (key >= 'a' && key <= 'z') || (key >= 'A' && key <= 'Z');
}

void cli_args_init(struct cli_args *a, const struct cli_cmd *cmd, int argc, char **argv)
{
	size_t n = 0, s = 0;

	memset(a, 0, sizeof(*a));
	a->cmd = cmd;
	a->argc = argc;
	a->argv = argv;
	cli_set_command(cmd->name);
	/* --help wins wherever it is, so a half-typed command line still gets help. */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			a->help = true;
	a->shortopts[s++] = ':';  /* report a missing value as ':', not '?' */
	for (const struct cli_opt *o = cmd->opts; o && o->name && n < CLI_MAX_OPTS; o++) {
		a->longopts[n++] = (struct option){ o->name, o->arg ? required_argument : no_argument,
						    NULL, o->key };
		if (is_short(o->key)) {
			a->shortopts[s++] = (char)o->key;
			if (o->arg)
				a->shortopts[s++] = ':';
		}
	}
	a->longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	a->longopts[n] = (struct option){ 0 };
	a->shortopts[s++] = 'h';
	a->shortopts[s] = '\0';
	optind = 0;  /* glibc: a full re-initialisation, so a command may parse twice */
	opterr = 0;  /* the messages are ours, in the one format */
}

/* The option named by the argument getopt just refused, for the message. */
static void refused_name(const struct cli_args *a, char *out, size_t len)
{
	const char *arg = optind > 0 && optind <= a->argc ? a->argv[optind - 1] : "";

	if (optopt && (!arg || strncmp(arg, "--", 2)))
		snprintf(out, len, "-%c", optopt);
	else
		snprintf(out, len, "%.*s", (int)strcspn(arg, "="), arg);
}

/* How many long options --dashed names (getopt_long takes prefixes); *match gets one. */
static int prefix_matches(const struct cli_cmd *cmd, const char *dashed, const struct cli_opt **match)
{
	size_t len = strlen(dashed + 2);
	int n = 0;

	for (const struct cli_opt *o = cmd->opts; o && o->name; o++) {
		if (!strcmp(o->name, dashed + 2)) {
			*match = o;
			return 1;
		}
		if (len && !strncmp(o->name, dashed + 2, len)) {
			*match = o;
			n++;
		}
	}
	return n;
}

static int refused(struct cli_args *a, int c)
{
	const struct cli_opt *o = NULL;
	char name[80];
	int n;

	refused_name(a, name, sizeof(name));
	n = strncmp(name, "--", 2) ? 0 : prefix_matches(a->cmd, name, &o);
	a->status = CLI_EXIT_USAGE;
	if (c == ':')
		cli_usage_error(a->cmd, "option '%s' needs a value", name);
	else if (n == 1 && !o->arg)
		cli_usage_error(a->cmd, "option '--%s' takes no value", o->name);
	else if (n > 1)
		cli_usage_error(a->cmd, "ambiguous option '%s'", name);
	else
		cli_usage_error(a->cmd, "unknown option '%s'", name);
	return CLI_STOP;
}

static int operands(struct cli_args *a)
{
	a->operands = a->argv + optind;
	a->n_operands = a->argc - optind;
	if (a->n_operands > a->cmd->max_operands) {
		a->status = cli_usage_error(a->cmd, "unexpected argument '%s'",
					    a->operands[a->cmd->max_operands]);
		return CLI_STOP;
	}
	if (a->n_operands < a->cmd->min_operands) {
		a->status = cli_usage_error(a->cmd, "missing argument");
		return CLI_STOP;
	}
	return CLI_END;
}

int cli_next(struct cli_args *a)
{
	int c, idx = -1;

	if (a->help) {
		cli_help(a->cmd, stdout);
		a->status = CLI_EXIT_OK;
		return CLI_STOP;
	}
	c = getopt_long(a->argc, a->argv, a->shortopts, a->longopts, &idx);
	if (c == -1)
		return operands(a);
	if (c == '?' || c == ':')
		return refused(a, c);
	a->value = optarg;
	a->opt_name = idx >= 0 ? a->longopts[idx].name : "";
	if (idx < 0)
		for (const struct option *o = a->longopts; o->name; o++)
			if (o->val == c)
				a->opt_name = o->name;
	return c;
}

void cli_serve_signals(void (*on_stop)(int), sigset_t *wait_mask)
{
	struct sigaction sa = { .sa_handler = on_stop };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, wait_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void cli_print_hex(FILE *f, const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 1);

	if (!s)
		return;
	hex_encode(s, p, n);
	fprintf(f, "0x%s", s);
	free(s);
}
