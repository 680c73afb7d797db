/* SPDX-License-Identifier: MIT */
/* dstack-p2p wait: the startup gate; exits 0 once this instance is registered in the cluster. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "api/internal.h"
#include "cli/cli.h"
#include "common/common.h"
#include "mesh/mesh.h"

#define DEFAULT_TIMEOUT_S 300

enum { O_TIMEOUT = 256, O_CONTROL };

static const struct cli_opt opts[] = {
	{ "timeout", O_TIMEOUT, "SECONDS", "give up after SECONDS, 0 to 86400, or never (default 300)" },
	{ "control", O_CONTROL, "PATH", "the agent's control socket (env DSTACK_P2P_CONTROL)" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "wait",
	.synopsis = "[--timeout SECONDS] [--control PATH]",
	.about = "Exit 0 once the local agent reports this instance registered in the cluster.\n"
		 "Says on standard error what it waits for (no agent yet, or the registration),\n"
		 "once each time that changes. For docker-compose:\n"
		 "  depends_on: { p2p-wait: { condition: service_completed_successfully } }\n"
		 "A gate that compose does not restart takes --timeout never: a deadline would\n"
		 "leave an app whose node is bound later never started.",
	.opts = opts,
	.footer = "Exit status: 0 registered, 1 the timeout passed first, 2 usage.",
};

/* --timeout never: no deadline (the startup gate of the compose files). */
#define TIMEOUT_NEVER (-1L)

/* What the agent's peers document says; the states wait reports. */
enum wait_state { W_NONE, W_NO_AGENT, W_AGENT_ERROR, W_NOT_REGISTERED, W_RPC_FAILING, W_REGISTERED };

/* The peers document says registered: true (the one parser, api/). */
static bool reply_says_registered(const struct buf *reply)
{
	struct peers_doc d;
	bool registered;

	if (peers_doc_parse((const char *)reply->data, reply->len, &d) < 0)
		return false;
	registered = d.registered;
	peers_doc_clear(&d);
	return registered;
}

/*
 * The agent's status document says its RPC fails: true with rpc_error (or "" when it gives
 * none) in out. An agent that does not answer status says nothing.
 */
static bool rpc_failing(const char *control, char *out, size_t cap)
{
	struct buf reply;
	struct json j;
	char *err = NULL;
	bool failing = false;
	int i;

	buf_init(&reply, 1 << 20);
	if (api_control_query(control, "status", &reply, 2000) == 0 &&
	    json_parse(&j, (const char *)reply.data, reply.len, 1 << 14) == 0) {
		failing = j.ntok > 0 && j.tok[0].type == JSON_OBJECT && json_eq(&j, json_get(&j, 0, "rpc_ok"), "false");
		i = failing ? json_get(&j, 0, "rpc_error") : -1;
		snprintf(out, cap, "%s", i >= 0 && json_strdup(&j, i, &err) == 0 ? err : "");
		free(err);
		json_clear(&j);
	}
	buf_clear(&reply);
	return failing;
}

static enum wait_state ask(const char *control, int *err, char *rpc_error, size_t cap)
{
	struct buf reply;
	enum wait_state s;

	buf_init(&reply, 1 << 20);
	*err = api_control_query(control, "peers", &reply, 2000);
	if (*err == -ENOENT || *err == -ECONNREFUSED)
		s = W_NO_AGENT;
	else if (*err < 0)
		s = W_AGENT_ERROR;
	else if (reply_says_registered(&reply))
		s = W_REGISTERED;
	else
		s = rpc_failing(control, rpc_error, cap) ? W_RPC_FAILING : W_NOT_REGISTERED;
	buf_clear(&reply);
	return s;
}

/* Why we are still waiting, in words; buf holds the text. */
static const char *why(enum wait_state s, int err, const char *control, const char *rpc_error, char *buf,
		       size_t len)
{
	if (s == W_RPC_FAILING)
		snprintf(buf, len, "the agent runs; this instance is not registered yet: its RPC fails: %s",
			 *rpc_error ? rpc_error : "(the agent gives no reason)");
	else if (s == W_NO_AGENT)
		snprintf(buf, len, "no agent listens on %s yet (%s)", control, errstr(err));
	else if (s == W_AGENT_ERROR)
		snprintf(buf, len, "the agent at %s does not answer: %s", control, errstr(err));
	else
		snprintf(buf, len, "the agent runs; this instance is not registered yet");
	return buf;
}

/* Whole seconds, 0 to 86400, or "never" (TIMEOUT_NEVER); -EINVAL otherwise. */
static int parse_timeout(const char *s, long *out)
{
	char *end;

	if (strcmp(s, "never") == 0) {
		*out = TIMEOUT_NEVER;
		return 0;
	}
	errno = 0;
	*out = strtol(s, &end, 10);
	return errno || end == s || *end || *out < 0 || *out > 86400 ? -EINVAL : 0;
}

int cmd_wait(int argc, char **argv)
{
	const char *control = NULL;
	enum wait_state s, said = W_NONE;
	long timeout_s = DEFAULT_TIMEOUT_S;
	struct cli_args a;
	uint64_t deadline;
	char text[1024], rpc_error[512] = "";
	int c, err;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0) {
		switch (c) {
		case O_TIMEOUT:
			if (parse_timeout(a.value, &timeout_s) < 0)
				return cli_bad_value(&a, "want whole seconds, 0 to 86400, or never");
			break;
		case O_CONTROL: control = a.value; break;
		}
	}
	if (c == CLI_STOP)
		return a.status;
	control = api_control_path(control);
	deadline = timeout_s == TIMEOUT_NEVER ? UINT64_MAX : now_ms() + (uint64_t)timeout_s * 1000;
	for (;;) {
		s = ask(control, &err, rpc_error, sizeof(rpc_error));
		if (s == W_REGISTERED) {
			printf("registered\n");
			return CLI_EXIT_OK;
		}
		if (now_ms() >= deadline)
			break;
		if (s != said) {
			cli_error("waiting for the registration: %s", why(s, err, control, rpc_error, text, sizeof(text)));
			said = s;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000000L }, NULL);
	}
	cli_error("not registered after %ld s: %s", timeout_s, why(s, err, control, rpc_error, text, sizeof(text)));
	return CLI_EXIT_FAILURE;
}
