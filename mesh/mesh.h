/* SPDX-License-Identifier: MIT */
/*
 * mesh: the controller. It turns the on-chain peer registry into WireGuard peers
 * (or gateway URLs in tls mode), publishes the peer list to apps, and answers the
 * CLI and the C API on a local control socket.
 *
 * The pure parts (configuration, the desired-vs-current peer diff, the published
 * peer list) are usable on their own and unit-tested; the mesh_agent_* calls tie them to
 * registry/ (the contract and its records, over chain/), attest/ (the node's identity),
 * netlink/ (the WireGuard device) and relay/ (the gateway transport).
 */
#ifndef DSTACK_P2P_MESH_H
#define DSTACK_P2P_MESH_H

#include <limits.h>
#include <signal.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "netlink/netlink.h"
#include "registry/registry.h"

struct err_detail;

#define MESH_DEFAULT_IFNAME "dp2p0"   /* dstack owns wg0 / dstack-wg0 */
#define MESH_DEFAULT_PORT 51830       /* dstack's gateway uses 9182 */
#define MESH_DEFAULT_KEEPALIVE 10     /* seconds; also bounds how long a restart can blind us */
#define MESH_DEFAULT_CONTROL "/run/dstack-p2p/control.sock"
#define MESH_DEFAULT_REGISTER_MAX_PER_HOUR 20
#define MESH_MAX_REGISTER_PER_HOUR 64
/* Leader actions (control socket): at most this many an hour, this far apart, by default. */
#define MESH_DEFAULT_ACTION_MAX_PER_HOUR 120
#define MESH_MAX_ACTION_PER_HOUR 240
#define MESH_DEFAULT_ACTION_SPACING_MS 2000
/* The agent's transactions: caps the RPC's fee suggestion cannot raise (docs/agent.md). */
#define MESH_DEFAULT_TX_MAX_FEE_PER_GAS 100000000000ull        /* 100 gwei */
#define MESH_DEFAULT_TX_MAX_PRIORITY_FEE_PER_GAS 10000000000ull /* 10 gwei */
#define MESH_DEFAULT_TX_MAX_GAS 2000000ull
#define MESH_DEFAULT_TX_MAX_COST 50000000000000000ull           /* 0.05 ether */
/* No uid or gid allowed beyond root and the agent's own user. */
#define MESH_ID_NONE (-1)

/* How WireGuard datagrams reach a peer (docs/transport.md). */
enum mesh_transport { MESH_TRANSPORT_AUTO, MESH_TRANSPORT_UDP, MESH_TRANSPORT_GATEWAY };
#define MESH_DEFAULT_RELAY_PORT 51831   /* TCP, what the gateway forwards to */
#define MESH_DEFAULT_FALLBACK_MS 10000  /* no handshake over UDP that long: use the gateway */

int mesh_transport_parse(const char *s, enum mesh_transport *out);

const char *mesh_mode_name(enum registry_mode mode);
int mesh_mode_parse(const char *s, enum registry_mode *out);

/* ---- configuration: flags > environment > config file > defaults -------------- */

/* P2P_METRICS_LISTEN: where GET /metrics is served (docs/metrics.md); spec "" = off. */
struct mesh_metrics_listen {
	char spec[64]; /* as given */
	int error;     /* mesh_metrics_listen_parse's, for mesh_config_validate */
	bool overlay;  /* overlay:PORT: the node's overlay address, once it has one */
	char host[48]; /* else a numeric loopback address */
	uint16_t port;
};
/*
 * "127.0.0.1:PORT" (any of 127/8), "[::1]:PORT" or "overlay:PORT" into out; "" is off.
 * 0, or -EINVAL (not HOST:PORT, port 0), -EADDRNOTAVAIL (another address: metrics are
 * served only on loopback or the overlay).
 */
int mesh_metrics_listen_parse(const char *spec, struct mesh_metrics_listen *out);

struct mesh_config {
	char contract[43];              /* CLUSTER_CONTRACT, 0x + 40 hex; "" until set */
	uint8_t contract_addr[20];      /* the same, decoded once when set */
	enum registry_mode mode;            /* P2P_MODE */
	char rpc_urls[1024];            /* ETH_RPC_URL, comma-separated failover list */
	struct rpc_url_list rpc;        /* rpc_urls taken apart when set, or rpc_error */
	int rpc_error;                  /* rpc_url_list_parse's, for mesh_config_validate */
	char endpoint[REGISTRY_ENDPOINT_MAX + 1]; /* P2P_ENDPOINT host:port; empty = guess */
	char ifname[IFNAMSIZ];          /* P2P_INTERFACE */
	uint16_t listen_port;           /* P2P_LISTEN_PORT */
	uint16_t keepalive;             /* P2P_KEEPALIVE seconds, 0 = off */
	unsigned mtu;                   /* P2P_MTU, 0 = the rule (docs/transport.md, MTU) */
	uint16_t gateway_port;          /* P2P_GATEWAY_PORT: the app port published in tls mode */
	char gateway_domain[256];       /* DSTACK_GATEWAY_DOMAIN; empty = host-shared config */
	char tx_key_file[PATH_MAX];     /* P2P_TX_KEY_FILE: funded key that pays for registration */
	char relayer_url[512];          /* P2P_RELAYER_URL: someone else sends our tx */
	char peers_file[PATH_MAX];      /* P2P_PEERS_FILE: published atomically on change */
	char hosts_file[PATH_MAX];      /* P2P_HOSTS_FILE: "10.0.1.2 node-2" lines, likewise */
	bool dns;                       /* P2P_DNS: answer peer names on our overlay address, port 53 */
	char dns_zone[254];             /* P2P_DNS_ZONE: lower case; default DNS_ZONE_DEFAULT */
	char on_change[1024];           /* P2P_ON_CHANGE: sh -c command, peers on stdin */
	char control_path[PATH_MAX];    /* DSTACK_P2P_CONTROL */
	unsigned poll_ms;               /* P2P_POLL_MS: registry follow interval */
	char ws_url[1024];              /* P2P_RPC_WS_URL: ws(s):// for new heads, "auto", "" off */
	unsigned push_poll_ms;          /* P2P_PUSH_POLL_MS: registry read interval while push works */
	unsigned full_reread_ms;        /* P2P_FULL_REREAD_MS: periodic full getPeers() */
	bool remove_on_exit;            /* P2P_REMOVE_ON_EXIT */
	bool psk;                       /* P2P_PSK: pairwise pre-shared keys, on (default) or off */
	enum mesh_transport transport;  /* P2P_TRANSPORT: udp, gateway or auto */
	uint16_t relay_port;            /* P2P_RELAY_PORT: TCP port of the gateway relay */
	char gateway_ca[PATH_MAX];      /* P2P_GATEWAY_CA: CA bundle for the gateway; empty = system */
	unsigned fallback_ms;           /* P2P_FALLBACK_MS: UDP silence before the gateway path */
	char kms_root[43];              /* P2P_KMS_ROOT: pin; must match our own key's KMS root */
	uint64_t chain_id;              /* P2P_CHAIN_ID: pin; 0 = learn it (see docs/agent.md) */
	unsigned register_max_per_hour; /* P2P_REGISTER_MAX_PER_HOUR: registrations, then only log */
	/* who may ask for actions (leader.*) on the control socket besides root and our own uid */
	long action_uid;                /* P2P_CONTROL_ACTION_UID; MESH_ID_NONE: nobody else */
	long action_gid;                /* P2P_CONTROL_ACTION_GID: a caller's primary group */
	unsigned action_spacing_ms;     /* P2P_ACTION_SPACING_MS: between two actions */
	unsigned action_max_per_hour;   /* P2P_ACTION_MAX_PER_HOUR */
	/* caps on every transaction the agent pays for (P2P_TX_KEY_FILE) */
	uint64_t tx_max_fee_per_gas;    /* P2P_TX_MAX_FEE_PER_GAS (wei; units: gwei, ether) */
	uint64_t tx_max_priority_fee_per_gas; /* P2P_TX_MAX_PRIORITY_FEE_PER_GAS */
	uint64_t tx_max_gas;            /* P2P_TX_MAX_GAS: gas limit */
	uint64_t tx_max_cost;           /* P2P_TX_MAX_COST: gas limit x max fee, wei */
	struct mesh_metrics_listen metrics_listen; /* P2P_METRICS_LISTEN */
};

void mesh_config_init(struct mesh_config *cfg);
/*
 * Set one option by its environment name (CLUSTER_CONTRACT, P2P_MODE, ...).
 * -ENOENT for an unknown name, -EINVAL for a bad value (the caller names the source).
 */
int mesh_config_set(struct mesh_config *cfg, const char *name, const char *value);
/*
 * Every known option present in the environment. -EINVAL, why (may be NULL) naming the
 * variable: "bad value in the environment variable P2P_POLL_MS".
 */
int mesh_config_load_env(struct mesh_config *cfg, struct err_detail *why);
/*
 * NAME=VALUE lines, '#' comments. On error why (may be NULL) says where and what, naming
 * the key: "agent.conf:3: unknown option 'P2P_POL_MS' (did you mean P2P_POLL_MS?)",
 * "agent.conf:2: bad value for P2P_POLL_MS: 'abc' (...)", "agent.conf: No such file or
 * directory". -ENOENT unknown name, -EINVAL bad value or not NAME=VALUE, -EMSGSIZE a line
 * over 2046 bytes, -EILSEQ a NUL byte, -EIO, or fopen's errno.
 */
int mesh_config_load_file(struct mesh_config *cfg, const char *path, struct err_detail *why);
/* Whole-config checks; why gets a sentence for the user. */
int mesh_config_validate(const struct mesh_config *cfg, struct err_detail *why);
/* The names mesh_config_set accepts, NULL-terminated (for --help). */
extern const char *const mesh_config_names[];

/* ---- peers ----------------------------------------------------------------------- */

/* One verified registry record, reduced to what the mesh needs. */
struct mesh_peer {
	uint32_t token;                 /* 1..254; overlay address 10.0.1.<token> */
	uint8_t instance_id[20];
	uint8_t wg_key[WG_KEY_LEN];   /* zero in tls mode */
	char endpoint[REGISTRY_ENDPOINT_MAX + 1];
	enum registry_mode mode;
	uint64_t nonce;
	uint8_t node_addr[20];          /* keccak(node key)[12:]: who may open its gateway stream */
	union wg_endpoint udp;          /* endpoint's UDP part when numeric, parsed once when the record
					 * was accepted; AF_UNSPEC: none, or a name (the transport's) */
};

/*
 * The overlay network, defined here only: node <token> is 10.0.1.<token> in 10.0.1.0/24.
 * C code uses these and the functions below; the harness scripts use netns-harness/lib.sh's
 * H_OVERLAY_NET and h_addr. Tests and docs spell the addresses out, as an observer would.
 */
#define MESH_OVERLAY_NET 0x0a000100u    /* 10.0.1.0, host byte order */
#define MESH_OVERLAY_PREFIX_LEN 24

/* 10.0.1.<token> in network byte order; 0 for a token outside 1..254. */
uint32_t mesh_overlay_addr(uint32_t token);
/* "10.0.1.<token>" into out (16 bytes). */
void mesh_overlay_addr_str(uint32_t token, char out[static 16]);
/* What an app connects to: the overlay address (wireguard) or the gateway URL (tls). */
const char *mesh_peer_connect_string(const struct mesh_peer *p, char addr_buf[static 16]);

/*
 * "host:port", "[v6]:port" to a socket address, numeric hosts first and DNS
 * otherwise. -EINVAL names nothing; the caller logs the endpoint.
 */
int mesh_endpoint_parse(const char *endpoint, struct sockaddr_storage *out);

/*
 * The UDP part of an endpoint field (see mesh_endpoint_split) as a socket address: numeric
 * only, or with dns a name looked up too (it may block: the transport does it, on change).
 * 0 (AF_UNSPEC when the field has no UDP part), -EAGAIN (a name, and !dns), -EINVAL (not an
 * endpoint field, or a name that does not resolve).
 */
int mesh_endpoint_udp(const char *field, bool dns, union wg_endpoint *out);

/*
 * A wireguard-mode endpoint field: a UDP "host:port", a gateway name
 * "https://<instance_id>-<port>.<domain>[:<tls port>]", or both joined by a comma.
 * udp and gw_host get "" for a part that is absent; *gw_port the TLS port (443).
 * -EINVAL for anything else (two of a kind, an empty part, a path, a bad character).
 */
int mesh_endpoint_split(const char *endpoint, char udp[static REGISTRY_ENDPOINT_MAX + 1], char gw_host[static 256],
			uint16_t *gw_port);

/* The path a peer's datagrams take, and the choice in auto mode. */
enum mesh_path { MESH_PATH_NONE, MESH_PATH_UDP, MESH_PATH_GATEWAY };

const char *mesh_path_name(enum mesh_path p);

struct mesh_path_state {
	enum mesh_path want;            /* what we program into WireGuard */
	uint64_t since_ms;              /* when want was last set */
	uint64_t rx_at_since;           /* on UDP: rx bytes at the first dump with our UDP endpoint */
	bool confirmed;                 /* UDP carried the peer's packets since */
	uint64_t probe_ms;              /* on the gateway: when to try UDP again */
	unsigned probe_wait_ms;         /* doubles after each failed probe */
	unsigned seed;                  /* the caller's random number: spreads the probes */
	uint64_t last_rx;               /* rx bytes last seen, and when they last grew */
	uint64_t rx_grew_ms;
};

/* ---- publishing ---------------------------------------------------------------------- */

/* The connection strings of a peer list, one per line, into a NUL-terminated buffer. */
struct buf;
int mesh_peers_format_lines(const struct mesh_peer *peers, size_t n, struct buf *out);
int mesh_peers_format_json(const struct mesh_peer *peers, size_t n, struct buf *out);
/* Write path atomically (temp file in the same directory, fsync, rename). */
int mesh_write_file_atomic(const char *path, const void *data, size_t len);
/*
 * Run `sh -c command` with the peer lines on stdin and DSTACK_P2P_PEERS in the
 * environment, plus env (NAME=VALUE strings, NULL-terminated; may be NULL); does not
 * wait (children are reaped by mesh_reap_children).
 */
int mesh_run_on_change(const char *command, const char *peer_lines, const char *const *env);
void mesh_reap_children(void);

/* ---- the agent ---------------------------------------------------------------------- */

/*
 * The agent as a library: the command owns the loop and the signals. A turn follows
 * the registry, verifies every record, decides (mesh/decide.c, pure) and applies the
 * plan: WireGuard, our registration, the published peer list.
 */
struct mesh_agent;

/*
 * Identity and keys from the guest agent (the KMS root recovered from our own GetKey
 * reply), the interface (locked against a second agent), the control socket.
 * abort_flag (may be NULL): RPC calls give up once it is set. Negative errno; -EBADR
 * for a configuration mistake the user must fix (the command exits 2), already logged.
 */
int mesh_agent_new(const struct mesh_config *cfg, const volatile sig_atomic_t *abort_flag,
		   struct mesh_agent **out);
void mesh_agent_free(struct mesh_agent *a);
/*
 * What the agent reads besides the command's signals and the turn's timer, for the
 * command's poll: the control socket (its clients waiting in accept are served) and the
 * RPC WebSocket of P2P_RPC_WS_URL (a new head makes the next turn due now, bounded rate).
 * fd is -1 while a source has none (poll ignores it); serve when poll saw it ready.
 */
#define MESH_AGENT_SOURCES_MAX 8
struct mesh_agent_source {
	int fd;
	void (*serve)(void *ctx);
	void *ctx;
};
size_t mesh_agent_sources(const struct mesh_agent *a,
			  struct mesh_agent_source out[static MESH_AGENT_SOURCES_MAX]);
/* A full registry re-read and device check at the next turn (SIGHUP). */
void mesh_agent_refresh(struct mesh_agent *a);
/* Milliseconds until the next turn is due (0: now). */
int mesh_agent_timeout_ms(const struct mesh_agent *a);
/*
 * One turn when due: RPC failures keep the mesh and back off (0 is returned); -EBADR on
 * a configuration mistake found on the chain (no contract code, not a cluster).
 */
int mesh_agent_turn(struct mesh_agent *a);

/*
 * The status document of a node whose agent is not running, read from the kernel (the
 * interface, if any) and the chain; the same JSON as the agent's "status" reply.
 * why gets a sentence when it fails.
 */
int mesh_status_standalone(const struct mesh_config *cfg, struct buf *out, struct err_detail *why);

#endif
