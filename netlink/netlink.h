/* SPDX-License-Identifier: MIT */
/*
 * netlink: program WireGuard interfaces. Kernel WireGuard over generic netlink
 * (libmnl), wireguard-go over its UAPI socket, both behind one wg_backend; links,
 * addresses and routes over rtnetlink. Every function returns 0 or a negative errno;
 * a function that can fail takes a struct err_detail (common/common.h; may be NULL)
 * last, and on failure writes into it what exactly was wrong (the kernel's extended
 * ACK message, the bad line of a reply): err_detail_str(why, r) is the line to log.
 */
#ifndef DSTACK_P2P_NETLINK_H
#define DSTACK_P2P_NETLINK_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#define WG_KEY_LEN 32
#define WG_KEY_B64_LEN 45 /* 44 characters + NUL */

struct err_detail;

/* ---- addresses, keys ------------------------------------------------------------- */

/* An IPv4 or IPv6 prefix: an allowed IP, an interface address or a route. */
struct ip_prefix {
	uint16_t family; /* AF_INET or AF_INET6 */
	uint8_t len;     /* prefix length in bits */
	union {
		struct in_addr ip4;
		struct in6_addr ip6;
	};
};

/* "10.0.1.2/24", "fd00::1/64"; a bare address means a host prefix (/32, /128). */
int ip_prefix_parse(struct ip_prefix *out, const char *text, struct err_detail *why);
/* Into out (INET6_ADDRSTRLEN + 4 bytes is always enough). */
int ip_prefix_format(char *out, size_t outlen, const struct ip_prefix *p);

/* A UDP endpoint as the kernel stores it. */
union wg_endpoint {
	struct sockaddr addr; /* sa_family AF_UNSPEC: none */
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* "192.0.2.1:51820", "[2001:db8::1]:51820" (numeric only: no DNS in the agent). */
int wg_endpoint_parse(union wg_endpoint *out, const char *text, struct err_detail *why);
int wg_endpoint_format(char *out, size_t outlen, const union wg_endpoint *ep);
/* Same family, address and port (AF_UNSPEC equals AF_UNSPEC). */
bool wg_endpoint_equal(const union wg_endpoint *a, const union wg_endpoint *b);

/* WireGuard's base64 form of a 32-byte key (44 characters). */
void wg_key_to_base64(char out[static WG_KEY_B64_LEN], const uint8_t key[static WG_KEY_LEN]);
int wg_key_from_base64(uint8_t key[static WG_KEY_LEN], const char *b64, struct err_detail *why);
bool wg_key_is_zero(const uint8_t key[static WG_KEY_LEN]);

/* ---- devices and peers ------------------------------------------------------------- */

/* Which fields of a wg_peer mean something (on SET), or were reported (on GET). */
enum wg_peer_flags {
	WG_PEER_REMOVE = 1u << 0,             /* remove this peer (only public_key is read) */
	WG_PEER_REPLACE_ALLOWEDIPS = 1u << 1, /* allowedips replaces the peer's list */
	WG_PEER_UPDATE_ONLY = 1u << 2,        /* do not create the peer if it is absent */
	WG_PEER_HAS_PRESHARED_KEY = 1u << 3,  /* all-zero key removes the PSK */
	WG_PEER_HAS_ENDPOINT = 1u << 4,
	WG_PEER_HAS_KEEPALIVE = 1u << 5,
};

struct wg_peer {
	uint8_t public_key[WG_KEY_LEN];
	uint8_t preshared_key[WG_KEY_LEN]; /* secret: wiped by wg_device_free */
	union wg_endpoint endpoint;
	uint16_t persistent_keepalive; /* seconds, 0 = off */
	uint32_t flags;                /* enum wg_peer_flags */
	struct ip_prefix *allowedips;
	size_t n_allowedips;

	/* Filled by wg_get_device only. */
	struct timespec last_handshake; /* wall clock; 0 = never */
	uint64_t rx_bytes, tx_bytes;
};

enum wg_device_flags {
	WG_DEVICE_REPLACE_PEERS = 1u << 0, /* drops every session: bulk loads only */
	WG_DEVICE_HAS_PRIVATE_KEY = 1u << 1,
	WG_DEVICE_HAS_LISTEN_PORT = 1u << 2,
	WG_DEVICE_HAS_FWMARK = 1u << 3,
};

struct wg_device {
	char name[IFNAMSIZ];
	uint32_t ifindex;  /* from GET */
	uint32_t flags;    /* enum wg_device_flags */
	/*
	 * SET: the caller's key, in its own locked memory; we copy it only into netlink
	 * buffers that are wiped after sending. GET never stores the private key: it sets
	 * WG_DEVICE_HAS_PRIVATE_KEY and public_key.
	 */
	const uint8_t *private_key;
	uint8_t public_key[WG_KEY_LEN];
	uint16_t listen_port;
	uint32_t fwmark;
	struct wg_peer *peers;
	size_t n_peers;
};

/*
 * dev in `wg show IF dump`'s format (tab-separated; the private and preshared keys
 * print as "(hidden)" when set), for scripts and for diffing us against wg(8).
 */
void wg_device_print_dump(FILE *f, const struct wg_device *dev);

/* The peer of dev (may be NULL) with this public key, or NULL: the one peer lookup. */
const struct wg_peer *wg_device_find_peer(const struct wg_device *dev, const uint8_t key[static WG_KEY_LEN]);

/* Frees a device from wg_get_device (or built with the same allocator); NULL is fine. */
void wg_device_free(struct wg_device *dev);

/* ---- backends: one interface, kernel or userspace ------------------------------------ */

enum wg_backend_kind { WG_BACKEND_KERNEL, WG_BACKEND_UAPI };

struct wg_backend;

/* Kernel WireGuard over generic netlink; -EOPNOTSUPP when the kernel has none. */
int wg_backend_open_kernel(struct wg_backend **out, struct err_detail *why);
/* wireguard-go and friends: sockets in socket_dir (NULL: /var/run/wireguard). */
int wg_backend_open_uapi(struct wg_backend **out, const char *socket_dir, struct err_detail *why);

enum wg_auto_flags {
	WG_AUTO_CREATE = 1u << 0,          /* create a kernel link if it is absent */
	WG_AUTO_START_USERSPACE = 1u << 1, /* start `wireguard-go IFNAME` if needed */
};
/*
 * The backend for ifname: a userspace implementation that already serves ifname's
 * socket, else kernel WireGuard (creating the link with WG_AUTO_CREATE), else
 * wireguard-go started for it (WG_AUTO_START_USERSPACE, waits up to 5 s for its
 * socket). -EOPNOTSUPP when none of these is possible.
 */
int wg_backend_open_auto(struct wg_backend **out, const char *ifname, unsigned flags, struct err_detail *why);
/* By a --backend style name: "kernel", "uapi" or "auto" (open_auto without flags). */
int wg_backend_open_named(struct wg_backend **out, const char *kind, const char *ifname,
			  struct err_detail *why);
void wg_backend_close(struct wg_backend *b);
enum wg_backend_kind wg_backend_kind(const struct wg_backend *b);

/* The whole configuration and state of ifname; free with wg_device_free. */
int wg_get_device(struct wg_backend *b, const char *ifname, struct wg_device **out, struct err_detail *why);
/*
 * Apply dev as a change: device fields by dev->flags, peers by their flags. Without
 * WG_DEVICE_REPLACE_PEERS, peers not listed are left alone (sessions kept).
 * Kernel: as few messages as fit (each is applied on its own; a failure midway
 * leaves the earlier ones applied).
 */
int wg_set_device(struct wg_backend *b, const struct wg_device *dev, struct err_detail *why);
/*
 * The incremental entry point for the mesh controller: add, change (by flags) or
 * remove (WG_PEER_REMOVE) exactly the listed peers; nothing else is touched and
 * REPLACE_PEERS is never used.
 */
int wg_apply_peers(struct wg_backend *b, const char *ifname, const struct wg_peer *changes,
		   size_t n, struct err_detail *why);

/*
 * The change set that turns current's peers into desired's (what `wg syncconf` does,
 * without touching unchanged peers): removals, additions, and changed peers with
 * only what changed (endpoint, keepalive, PSK; allowed IPs replaced when the sets
 * differ). The changes point into desired's allowed-IP arrays: use them while desired
 * is alive, release them with wg_changes_free (they may hold preshared keys).
 */
int wg_device_diff(const struct wg_device *current, const struct wg_device *desired,
		   struct wg_peer **changes, size_t *n_changes);

/* ---- rtnetlink: links, addresses, routes ---------------------------------------------- */

/*
 * Create a "wireguard" link named ifname, or adopt it if it already exists
 * (*created says which; may be NULL). -EOPNOTSUPP: the kernel has no WireGuard.
 */
int rtnl_link_ensure_wireguard(const char *ifname, bool *created, struct err_detail *why);
int rtnl_link_delete(const char *ifname, struct err_detail *why);
int rtnl_link_set_up(const char *ifname, bool up, struct err_detail *why);
/* 1 if ifname exists and is a kernel WireGuard link, 0 if it exists and is not. */
int rtnl_link_is_wireguard(const char *ifname, struct err_detail *why);
/* Idempotent: an address that is already there (or already gone) is not an error. */
int rtnl_addr_add(const char *ifname, const struct ip_prefix *addr, struct err_detail *why);
int rtnl_addr_del(const char *ifname, const struct ip_prefix *addr, struct err_detail *why);

/*
 * MTU. rtnl_link_set_mtu: 576..65535 (-EINVAL outside), for a kernel WireGuard link and
 * a wireguard-go TUN alike (both are links). rtnl_link_mtu: ifname's MTU now.
 * rtnl_route_mtu: the MTU towards dst's address (its port is ignored), as the kernel
 * routes it now: the route's own MTU (`ip route ... mtu N`, or a path MTU the kernel
 * learned) when it has one, else the output device's MTU. -ENETUNREACH: no route.
 */
int rtnl_link_set_mtu(const char *ifname, uint32_t mtu, struct err_detail *why);
int rtnl_link_mtu(const char *ifname, uint32_t *mtu, struct err_detail *why);
int rtnl_route_mtu(const union wg_endpoint *dst, uint32_t *mtu, struct err_detail *why);

#endif
