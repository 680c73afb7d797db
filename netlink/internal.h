/* SPDX-License-Identifier: MIT */
/* netlink/ private helpers shared by its files: error detail, sockets, backends' ops. */
#ifndef DSTACK_P2P_NETLINK_INTERNAL_H
#define DSTACK_P2P_NETLINK_INTERNAL_H

#include <libmnl/libmnl.h>

#include "common/common.h"
#include "netlink/netlink.h"

/* Write the detail into why (may be NULL) and return r. */
int nl_fail(struct err_detail *why, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Empty why's detail (may be NULL): public entry points start from none. */
void nl_clear_error(struct err_detail *why);
/* Whether why holds a detail (a NULL why never does). */
bool nl_has_detail(const struct err_detail *why);

/* -ENAMETOOLONG / -EINVAL with detail unless ifname is a usable interface name. */
int nl_check_ifname(const char *ifname, struct err_detail *why);

/*
 * A netlink socket of the given protocol: SOCK_CLOEXEC, NETLINK_EXT_ACK (the kernel's
 * reason in errors) and NETLINK_CAP_ACK (errors do not echo our large requests).
 */
int nl_socket_open(int protocol, struct mnl_socket **out, struct err_detail *why);

/*
 * Send one request (NLM_F_ACK set by the caller) and wait for its ACK, handing every
 * reply that is not the ACK/error/DONE to cb (may be NULL). An error ACK becomes its
 * negative errno, with the extended ACK message as detail.
 */
int nl_request(struct mnl_socket *nl, void *msg, size_t len, uint32_t seq,
	       int (*cb)(const struct nlmsghdr *nlh, void *data), void *data, struct err_detail *why);

/* The error carried by an NLMSG_ERROR message (0 for an ACK), detail recorded. */
int nl_error_msg_parse(const struct nlmsghdr *nlh, struct err_detail *why);

/*
 * Make room for element n (0-based) of a growing array, bounded by max entries so
 * hostile input cannot run away with memory.
 */
int nl_array_reserve_next(void **array, size_t n, size_t elem, size_t max, struct err_detail *why);

/* Backends implement these; netlink/backend.c dispatches and counts messages. */
struct wg_backend_ops {
	int (*get_device)(struct wg_backend *b, const char *ifname, struct wg_device **out,
			  struct err_detail *why);
	int (*set_device)(struct wg_backend *b, const struct wg_device *dev, struct err_detail *why);
	void (*close)(struct wg_backend *b);
};

struct wg_backend {
	enum wg_backend_kind kind;
	const struct wg_backend_ops *ops;
	uint64_t messages;
	/* kernel */
	struct mnl_socket *nl;
	uint16_t family_id;
	uint32_t seq;
	size_t msg_size; /* SET messages are built up to this many bytes */
	uint8_t *recv_buf; /* locked: replies may carry the private key */
	/* userspace */
	char socket_dir[108];
};

int wg_genl_open(struct wg_backend *b, struct err_detail *why);
int uapi_open(struct wg_backend *b, const char *socket_dir, struct err_detail *why);
/* Path of ifname's UAPI socket in dir (NULL: /var/run/wireguard). */
int uapi_socket_path(char *out, size_t outlen, const char *dir, const char *ifname, struct err_detail *why);

/* Limits on what we accept from dumps and replies (the kernel's own are lower). */
#define WG_MAX_PEERS (1u << 20)
#define WG_MAX_ALLOWEDIPS (1u << 22)

/*
 * Kernel: build SET messages up to bytes (512..1 MiB; default 32 KiB). Smaller means
 * more messages; tests use it to put message boundaries everywhere.
 */
int wg_backend_set_message_size(struct wg_backend *b, size_t bytes, struct err_detail *why);

/* Netlink messages (kernel) or UAPI requests (userspace) sent so far. */
uint64_t wg_backend_messages(const struct wg_backend *b);

void wg_changes_free(struct wg_peer *changes, size_t n_changes);

/* ---- kernel messages on buffers (for tests and tools) ------------------------- */

/* Where the next SET message continues: peer index, allowed-IP index within it. */
struct wg_set_cursor {
	size_t peer;
	size_t allowedip;
	bool peer_started; /* the current peer's attributes went out already */
	bool device_done;  /* the first message (device attributes) was built */
};

/*
 * Build the next WG_CMD_SET_DEVICE message for dev into buf (buflen bytes). Device
 * attributes (and REPLACE_PEERS) go in the first message only. A peer that does not
 * fit moves whole to the next message; only a peer that alone overflows a message is
 * split, continued with its public key (+REMOVE / UPDATE_ONLY) and the rest of its
 * allowed IPs. Returns 1 when more messages follow, 0 when this is the last,
 * -EMSGSIZE when buflen cannot hold a peer's key and one allowed IP.
 */
int wg_set_msg_build(void *buf, size_t buflen, uint16_t family_id, uint32_t seq,
		     const struct wg_device *dev, struct wg_set_cursor *cursor, struct err_detail *why);

/*
 * Merge one WG_CMD_GET_DEVICE dump message (a genetlink message, header included)
 * into dev; a peer repeated from the previous message (its allowed IPs spilled over)
 * is coalesced by public key. Bad attributes: -EBADMSG, detail set.
 */
int wg_dump_msg_parse(const void *msg, size_t len, struct wg_device *dev, struct err_detail *why);

/* Parse a UAPI `get=1` reply (text up to and including "errno=N") into dev. */
int uapi_get_reply_parse(const char *text, size_t len, struct wg_device *dev, struct err_detail *why);

/* What rtnl_route_mtu reads from RTM_NEWROUTE and RTM_NEWLINK replies (0: absent). */
struct rtnl_mtu_reply {
	uint32_t route_mtu; /* RTA_METRICS / RTAX_MTU */
	uint32_t oif;       /* RTA_OIF */
	uint32_t link_mtu;  /* IFLA_MTU */
	struct err_detail *why;
};

/*
 * Merge one reply message (len bytes available) into out: a route's output device and
 * MTU metric, a link's MTU; other message types are skipped. -EBADMSG with detail for a
 * truncated message or an attribute of the wrong size.
 */
int rtnl_mtu_msg_parse(const void *msg, size_t len, struct rtnl_mtu_reply *out, struct err_detail *why);

/* A route to prefix through ifname (e.g. the overlay 10.0.1.0/24); idempotent. */
int rtnl_route_add(const char *ifname, const struct ip_prefix *prefix, struct err_detail *why);

#endif
