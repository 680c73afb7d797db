/* SPDX-License-Identifier: MIT */
/* dstack-p2p agent: the VPN daemon; options as flags, environment or a config file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/common.h"
#include "mesh/mesh.h"

#define DEFAULT_CONFIG_FILE "/etc/dstack-p2p.conf"

/* Each flag is another spelling of one configuration name: one parser for all three. */
static const struct {
	const char *flag;
	const char *name;
	const char *help;
} flags[] = {
	{ "contract", "CLUSTER_CONTRACT", "cluster contract address (0x...)" },
	{ "mode", "P2P_MODE", "wireguard (default) or tls" },
	{ "rpc", "ETH_RPC_URL", "JSON-RPC URL(s), comma-separated failover list" },
	{ "endpoint", "P2P_ENDPOINT", "host:port peers reach us on (default: guessed)" },
	{ "interface", "P2P_INTERFACE", "WireGuard interface (default " MESH_DEFAULT_IFNAME ")" },
	{ "listen-port", "P2P_LISTEN_PORT", "WireGuard UDP port (default 51830)" },
	{ "keepalive", "P2P_KEEPALIVE", "persistent keepalive in seconds (default 10)" },
	{ "gateway-port", "P2P_GATEWAY_PORT", "tls mode: the app port behind the gateway" },
	{ "gateway-domain", "DSTACK_GATEWAY_DOMAIN", "tls mode: gateway base domain" },
	{ "tx-key-file", "P2P_TX_KEY_FILE", "file with a funded key that pays for registration" },
	{ "relayer", "P2P_RELAYER_URL", "relayer that sends our registration" },
	{ "peers-file", "P2P_PEERS_FILE", "write the peer list here, atomically, on change" },
	{ "on-change", "P2P_ON_CHANGE", "run this shell command on change (peers on stdin)" },
	{ "control", "DSTACK_P2P_CONTROL", "control socket (default " MESH_DEFAULT_CONTROL ")" },
	{ "poll-ms", "P2P_POLL_MS", "registry follow interval (default 1000)" },
	{ "full-reread-ms", "P2P_FULL_REREAD_MS", "full registry re-read interval (default 60000)" },
};

/*
 * SIGTERM/SIGINT: set by a handler rather than read from the signalfd, so an RPC that
 * hangs gives up at once (the flag is its abort hook) instead of after its timeout.
 * The pipe wakes the loop's poll; the other signals go through the signalfd.
 */
static volatile sig_atomic_t stop_signal;
static int stop_pipe[2] = { -1, -1 };

static void on_stop_signal(int signo)
{
	int saved = errno;

	stop_signal = signo;
	if (write(stop_pipe[1], "", 1) < 0) {
		/* Full pipe: a wake-up is already pending. */
	}
	errno = saved;
}

/* The signalfd for SIGHUP and SIGCHLD; SIGTERM and SIGINT set stop_signal. */
static int signals_open(void)
{
	/* SA_RESTART: file and netlink I/O carry on; poll (ours, curl's, the IPC's) wakes. */
	struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART };
	sigset_t set;
	int fd;

	if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -errno;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

static void signals_close(int sfd)
{
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	if (sfd >= 0)
		close(sfd);
	for (int i = 0; i < 2; i++) {
		if (stop_pipe[i] >= 0)
			close(stop_pipe[i]);
		stop_pipe[i] = -1;
	}
}

/* 1 to keep running, 0 to stop. */
static int handle_signals(struct mesh_agent *a, const struct mesh_config *cfg, int sfd)
{
	struct signalfd_siginfo si;

	if (stop_signal) {
		log_info("stopping on signal %d%s", (int)stop_signal,
			 cfg->remove_on_exit ? "" : "; the interface and its peers stay up");
		return 0;
	}
	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			mesh_agent_refresh(a);
			break;
		case SIGCHLD:
			mesh_reap_children();
			break;
		}
	}
	return 1;
}

/* The loop: signals, control clients, and a turn of the agent when one is due. */
static int run_agent(const struct mesh_config *cfg)
{
	struct mesh_agent *a = NULL;
	int sfd, r;

	sfd = signals_open();
	if (sfd < 0) {
		log_error("signals: %s", errstr(sfd));
		return sfd;
	}
	r = mesh_agent_new(cfg, &stop_signal, &a);
	while (r == 0) {
		struct pollfd pfd[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = mesh_agent_control_fd(a), .events = POLLIN },
			{ .fd = stop_pipe[0], .events = POLLIN },
		};

		if (poll(pfd, 3, stop_signal ? 0 : mesh_agent_timeout_ms(a)) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (!handle_signals(a, cfg, sfd))
			break;
		if (pfd[1].revents & POLLIN)
			mesh_agent_serve_control(a);
		r = mesh_agent_turn(a);
	}
	mesh_agent_free(a);
	signals_close(sfd);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: dstack-p2p agent [options]\n\n"
		   "Join this CVM to the cluster's WireGuard mesh and keep it in step with the\n"
		   "registry. Each option is also an environment variable and a NAME=VALUE line\n"
		   "of the config file (--config, $P2P_CONFIG, or " DEFAULT_CONFIG_FILE ");\n"
		   "flags win over the environment, which wins over the file.\n\n");
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		fprintf(f, "  --%-16s %-22s %s\n", flags[i].flag, flags[i].name, flags[i].help);
	fprintf(f, "  --%-16s %-22s %s\n", "remove-on-exit", "P2P_REMOVE_ON_EXIT",
		"delete the interface on SIGTERM (default: leave it up)");
	fprintf(f, "  --%-16s %-22s %s\n", "config FILE", "P2P_CONFIG", "config file");
	fprintf(f, "  -v, --verbose                           debug logging\n");
}

int cmd_agent(int argc, char **argv)
{
	struct option opts[ARRAY_SIZE(flags) + 4];
	const char *config_file = getenv("P2P_CONFIG"), *bad = NULL;
	struct mesh_config cfg;
	char why[256];
	int c, r, line, idx;
	size_t n = 0;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		opts[n++] = (struct option){ flags[i].flag, required_argument, NULL, 0 };
	opts[n++] = (struct option){ "remove-on-exit", no_argument, NULL, 'R' };
	opts[n++] = (struct option){ "config", required_argument, NULL, 'C' };
	opts[n++] = (struct option){ "verbose", no_argument, NULL, 'v' };
	opts[n] = (struct option){ 0 };

	/* First pass: only --config, since the file is the lowest layer. */
	while ((c = getopt_long(argc, argv, "v", opts, &idx)) != -1)
		if (c == 'C')
			config_file = optarg;
		else if (c == '?')
			return 2;

	mesh_config_init(&cfg);
	if (config_file || access(DEFAULT_CONFIG_FILE, R_OK) == 0) {
		const char *path = config_file ? config_file : DEFAULT_CONFIG_FILE;

		r = mesh_config_load_file(&cfg, path, &line);
		if (r < 0) {
			if (line)
				fprintf(stderr, "dstack-p2p agent: %s:%d: %s\n", path, line,
					mesh_config_file_strerror(r, line));
			else
				fprintf(stderr, "dstack-p2p agent: %s: %s\n", path, errstr(r));
			return 2;
		}
	}
	if (mesh_config_load_env(&cfg, &bad) < 0) {
		fprintf(stderr, "dstack-p2p agent: bad value in the environment variable %s\n", bad);
		return 2;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "v", opts, &idx)) != -1) {
		switch (c) {
		case 0:
			if (mesh_config_set(&cfg, flags[idx].name, optarg) < 0) {
				fprintf(stderr, "dstack-p2p agent: bad --%s '%s'\n", flags[idx].flag, optarg);
				return 2;
			}
			break;
		case 'R': cfg.remove_on_exit = true; break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'C': break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "dstack-p2p agent: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (mesh_config_validate(&cfg, why, sizeof(why)) < 0) {
		fprintf(stderr, "dstack-p2p agent: %s\n", why);
		return 2;
	}
	log_set_timestamps(true);
	r = run_agent(&cfg);
	return r == -EBADR ? 2 : r < 0 ? 1 : 0;
}
