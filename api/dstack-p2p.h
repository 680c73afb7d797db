/* SPDX-License-Identifier: MIT */
/*
 * dstack-p2p: peers of a dstack TEE mesh, for apps. Three calls are all most apps need:
 *
 *	struct dstack_p2p *p2p;
 *	dstack_p2p_open(&p2p, "0x5fbd...0aa3", "wireguard");
 *	dstack_p2p_register(p2p, 60000);
 *	dstack_p2p_get_peers(p2p, &peers, &n);   // "10.0.1.2", ... or gateway URLs
 *
 * plus dstack_p2p_monitor_peers() for a callback on every change, on the library's
 * own thread. The library is a client of the node's dstack-p2p agent (its control
 * socket, $DSTACK_P2P_CONTROL or /run/dstack-p2p/control.sock): the agent holds the
 * keys and the WireGuard interface, so an app never touches key material.
 *
 * Every function returns 0 or a negative errno; dstack_p2p_strerror() explains one.
 * Link with `pkg-config --cflags --libs dstack-p2p`.
 */
#ifndef DSTACK_P2P_API_H
#define DSTACK_P2P_API_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DSTACK_P2P_API __attribute__((visibility("default")))

struct dstack_p2p;

/*
 * A handle for the cluster contract (0x + 40 hex digits; NULL: whichever the agent
 * serves) in mode "wireguard" or "tls" (NULL: the agent's). Nothing is contacted yet.
 * -EINVAL for a malformed contract or unknown mode, -ENOMEM.
 */
DSTACK_P2P_API int dstack_p2p_open(struct dstack_p2p **out, const char *contract, const char *mode);

/* Stops the monitor thread (waiting for a callback in progress) and frees; NULL is fine. */
DSTACK_P2P_API void dstack_p2p_close(struct dstack_p2p *p2p);

/*
 * Wait until this instance is registered in the cluster (the agent registers it), for
 * at most timeout_ms (<= 0: one check). 0 once registered; -ETIMEDOUT; -ENOENT or
 * -ECONNREFUSED when no agent runs; -EXDEV when the agent serves another contract or
 * mode than the handle's.
 */
DSTACK_P2P_API int dstack_p2p_register(struct dstack_p2p *p2p, int timeout_ms);

/*
 * Copies of the peers' connection strings: overlay addresses ("10.0.1.2") in
 * wireguard mode, gateway URLs in tls mode; this node is not in the list. Free with
 * dstack_p2p_free_peers. An empty list is *peers = NULL, *n = 0.
 */
DSTACK_P2P_API int dstack_p2p_get_peers(struct dstack_p2p *p2p, char ***peers, size_t *n);
DSTACK_P2P_API void dstack_p2p_free_peers(char **peers, size_t n);

/*
 * Called with the current list right away and then on every change, from the
 * library's thread (one call at a time). The strings are valid during the call only.
 */
typedef void (*dstack_p2p_peers_fn)(const char *const *peers, size_t n, void *user);

/*
 * Start the monitor: it follows the agent's stream of changes and reconnects (every
 * second) when the agent restarts. One monitor per handle: -EBUSY for a second.
 */
DSTACK_P2P_API int dstack_p2p_monitor_peers(struct dstack_p2p *p2p, dstack_p2p_peers_fn fn, void *user);

/*
 * Ask the agent for a leader action: "elect", "heartbeat" or "vote" (target: the
 * leader's token, 0: the current leader; withdraw non-zero takes a standing vote back).
 * The agent signs it with the node key and sends it without waiting for it to be mined:
 * on 0, tx holds the transaction's hash ("0x" and 64 hex digits; "" when a relayer named
 * none), and the agent's "leader" reply follows its state (docs/control-protocol.md).
 * -EACCES: this process's user may not ask for actions (only root, the agent's user and
 * whom its operator allows); -EAGAIN: rate-limited, try later; -EDQUOT: above one of the
 * agent's transaction caps, nothing sent; -EPERM: the contract or the relayer refused;
 * -ENOLINK: this node is not registered; -ENOKEY: no funded key or relayer; -EIO: the
 * chain or relayer failed; -EINVAL: a bad action or target; as above for the socket.
 */
DSTACK_P2P_API int dstack_p2p_leader_action(struct dstack_p2p *p2p, const char *action, int target, int withdraw,
					    char tx[67]);

/* A sentence for an error returned above. */
DSTACK_P2P_API const char *dstack_p2p_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
