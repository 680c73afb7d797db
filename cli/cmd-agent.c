/* SPDX-License-Identifier: MIT */
/* dstack-p2p agent: the VPN daemon; options as flags, environment or a config file. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "attest/attest.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"
#include "dns/dns.h"
#include "mesh/mesh.h"

#define DEFAULT_CONFIG_FILE "/etc/dstack-p2p.conf"

/* Each flag is another spelling of one configuration name: one parser for all three. */
static const struct {
	const char *flag;
	const char *name;
	const char *arg;
	const char *help;
} flags[] = {
	{ "contract", "CLUSTER_CONTRACT", "ADDR", "cluster contract address (0x...)" },
	{ "mode", "P2P_MODE", "MODE", "wireguard (default) or tls" },
	{ "rpc", "ETH_RPC_URL", "URLS", "JSON-RPC URL(s), comma-separated failover list" },
	{ "endpoint", "P2P_ENDPOINT", "HOST:PORT", "where peers reach us (default: guessed)" },
	{ "interface", "P2P_INTERFACE", "NAME", "WireGuard interface (default " MESH_DEFAULT_IFNAME ")" },
	{ "listen-port", "P2P_LISTEN_PORT", "PORT", "WireGuard UDP port (default 51830)" },
	{ "keepalive", "P2P_KEEPALIVE", "SECONDS", "persistent keepalive (default 10, 0: off)" },
	{ "mtu", "P2P_MTU", "BYTES", "interface MTU (576-16352; default: route MTU - 80, 1420)" },
	{ "gateway-port", "P2P_GATEWAY_PORT", "PORT", "tls mode: the app port behind the gateway" },
	{ "gateway-domain", "DSTACK_GATEWAY_DOMAIN", "DOMAIN",
	  "gateway base domain[:port] (default: host-shared config)" },
	{ "transport", "P2P_TRANSPORT", "MODE",
	  "udp, gateway or auto (default): how WireGuard reaches peers" },
	{ "relay-port", "P2P_RELAY_PORT", "PORT", "TCP port the gateway forwards to (default 51831)" },
	{ "gateway-ca", "P2P_GATEWAY_CA", "FILE",
	  "CA bundle for the gateway's certificate (default: system)" },
	{ "fallback-ms", "P2P_FALLBACK_MS", "MS",
	  "auto: UDP without a handshake that long uses the gateway (10000)" },
	{ "tx-key-file", "P2P_TX_KEY_FILE", "FILE", "file with a funded key that pays for registration" },
	{ "relayer", "P2P_RELAYER_URL", "URL", "relayer that sends our registration" },
	{ "peers-file", "P2P_PEERS_FILE", "FILE", "write the peer list here, atomically, on change" },
	{ "hosts-file", "P2P_HOSTS_FILE", "FILE", "write \"10.0.1.2 node-2\" lines here, likewise" },
	{ "on-change", "P2P_ON_CHANGE", "CMD", "run this shell command on change (peers on stdin)" },
	{ "dns", "P2P_DNS", "on|off", "answer peer names over DNS on our overlay address, port 53 (off)" },
	{ "dns-zone", "P2P_DNS_ZONE", "ZONE", "the zone those names are in (default " DNS_ZONE_DEFAULT ")" },
	{ "control", "DSTACK_P2P_CONTROL", "PATH", "control socket (default " MESH_DEFAULT_CONTROL ")" },
	{ "poll-ms", "P2P_POLL_MS", "MS", "registry follow interval (default 1000)" },
	{ "rpc-ws", "P2P_RPC_WS_URL", "URL",
	  "ws(s):// URL for new heads by push; auto: from --rpc; off (default)" },
	{ "push-poll-ms", "P2P_PUSH_POLL_MS", "MS",
	  "registry read interval while push works (default 10000)" },
	{ "full-reread-ms", "P2P_FULL_REREAD_MS", "MS", "full registry re-read interval (default 60000)" },
	{ "kms-root", "P2P_KMS_ROOT", "ADDR", "pin the KMS root (checked against our own key's)" },
	{ "chain-id", "P2P_CHAIN_ID", "ID", "pin the chain id (default: learned, see docs)" },
	{ "register-max-per-hour", "P2P_REGISTER_MAX_PER_HOUR", "N",
	  "registrations per hour, then only log (20)" },
	{ "metrics-listen", "P2P_METRICS_LISTEN", "ADDR:PORT",
	  "serve GET /metrics: 127.0.0.1:PORT, [::1]:PORT or overlay:PORT" },
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
		struct mesh_agent_source src[MESH_AGENT_SOURCES_MAX];
		struct pollfd pfd[2 + MESH_AGENT_SOURCES_MAX] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = stop_pipe[0], .events = POLLIN },
		};
		size_t n = mesh_agent_sources(a, src);

		for (size_t i = 0; i < n; i++)
			pfd[2 + i] = (struct pollfd){ .fd = src[i].fd, .events = POLLIN }; /* -1: ignored */
		if (poll(pfd, 2 + n, stop_signal ? 0 : mesh_agent_timeout_ms(a)) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		if (!handle_signals(a, cfg, sfd))
			break;
		for (size_t i = 0; i < n; i++)
			if (pfd[2 + i].revents)
				src[i].serve(src[i].ctx);
		r = mesh_agent_turn(a);
	}
	mesh_agent_free(a);
	signals_close(sfd);
	return r;
}

/* CAP_NET_ADMIN in the effective set (root has it), from /proc/self/status. */
static bool has_net_admin(void)
{
	unsigned long long eff;
	char line[256];
	bool ok = geteuid() == 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return ok;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1) {
			ok = eff & (1ULL << CAP_NET_ADMIN);
			break;
		}
	fclose(f);
	return ok;
}

/*
 * What the agent cannot do without privileges, said before anything fails for want of
 * them (the guest agent's socket, then the interface): -EPERM after logging each.
 */
static int check_privileges(const struct mesh_config *cfg)
{
	struct attest_client *c;
	int r = 0;

	if (attest_client_new(NULL, &c) == 0) {
		if (attest_client_check_access(c) == -EACCES) {
			log_error("cannot open the guest agent's socket: %s", attest_client_error(c));
			r = -EPERM;
		}
		attest_client_free(c);
	}
	if (cfg->mode == REGISTRY_MODE_WIREGUARD && !has_net_admin()) {
		log_error("the agent needs root or CAP_NET_ADMIN to set up the WireGuard interface %s "
			  "and its address (uid %u has neither)", cfg->ifname, (unsigned)geteuid());
		r = -EPERM;
	}
	return r;
}

enum { O_FLAG = 256, O_REMOVE_ON_EXIT = O_FLAG + 64, O_CONFIG };

/* The option table: the flags above (key O_FLAG + index), then the agent's own. */
static struct cli_opt opts[ARRAY_SIZE(flags) + 4];
static char helps[ARRAY_SIZE(flags)][160];

static const struct cli_cmd cmd = {
	.name = "agent",
	.synopsis = "[options]",
	.about = "Join this CVM to the cluster's WireGuard mesh and keep it in step with the\n"
		 "registry. Each option is also an environment variable (in brackets) and a\n"
		 "NAME=VALUE line of the config file (--config, $P2P_CONFIG, or " DEFAULT_CONFIG_FILE ");\n"
		 "flags win over the environment, which wins over the file.",
	.opts = opts,
	.footer = "Exit status: 0 stopped by SIGTERM or SIGINT, 1 failed at run time,\n"
		  "2 usage or configuration error.",
};

static void build_opts(void)
{
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
		snprintf(helps[i], sizeof(helps[i]), "%s\n[%s]", flags[i].help, flags[i].name);
		opts[n++] = (struct cli_opt){ flags[i].flag, O_FLAG + (int)i, flags[i].arg, helps[i] };
	}
	opts[n++] = (struct cli_opt){ "remove-on-exit", O_REMOVE_ON_EXIT, NULL,
				      "delete the interface on SIGTERM (default: leave it up)\n[P2P_REMOVE_ON_EXIT]" };
	opts[n++] = (struct cli_opt){ "config", O_CONFIG, "FILE", "config file [P2P_CONFIG]" };
	opts[n++] = (struct cli_opt){ "verbose", 'v', NULL, "debug logging" };
	opts[n] = (struct cli_opt){ 0 };
}

int agent_config_load(struct mesh_config *cfg, const char *config_file)
{
	const char *path = config_file ? config_file : DEFAULT_CONFIG_FILE;
	struct err_detail why;

	if ((config_file || access(DEFAULT_CONFIG_FILE, R_OK) == 0) &&
	    mesh_config_load_file(cfg, path, &why) < 0) {
		cli_error("%s", why.text);
		return CLI_EXIT_USAGE;
	}
	if (mesh_config_load_env(cfg, &why) < 0) {
		cli_error("%s", why.text);
		return CLI_EXIT_USAGE;
	}
	return CLI_EXIT_OK;
}

int cmd_agent(int argc, char **argv)
{
	const char *config_file = getenv("P2P_CONFIG");
	struct mesh_config cfg;
	struct cli_args a;
	struct err_detail why;
	int c, r;

	build_opts();
	/* First pass: only --config, since the file is the lowest layer. */
	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0)
		if (c == O_CONFIG)
			config_file = a.value;
	if (c == CLI_STOP)
		return a.status;

	mesh_config_init(&cfg);
	if (agent_config_load(&cfg, config_file))
		return CLI_EXIT_USAGE;
	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0) {
		if (c >= O_FLAG && c < O_FLAG + (int)ARRAY_SIZE(flags)) {
			if (mesh_config_set(&cfg, flags[c - O_FLAG].name, a.value) < 0)
				return cli_bad_value(&a, "see dstack-p2p-agent(1)");
		} else if (c == O_REMOVE_ON_EXIT) {
			cfg.remove_on_exit = true;
		} else if (c == 'v') {
			log_set_level(LOG_DEBUG);
		}
	}
	if (mesh_config_validate(&cfg, &why) < 0) {
		cli_error("%s", why.text);
		return CLI_EXIT_USAGE;
	}
	log_set_timestamps(true);
	r = check_privileges(&cfg);
	if (r == 0)
		r = run_agent(&cfg);
	return r == -EBADR ? CLI_EXIT_USAGE : r < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
