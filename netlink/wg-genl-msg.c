/* SPDX-License-Identifier: MIT */
/*
 * WireGuard generic netlink messages on plain buffers, no socket: WG_CMD_SET_DEVICE
 * built and split at peer and allowed-IP boundaries, WG_CMD_GET_DEVICE dump parts
 * parsed and coalesced.
 */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "netlink/internal.h"

/* ---- SET ----------------------------------------------------------------------------- */

enum peer_put { PEER_NONE, PEER_PARTIAL, PEER_DONE };

static bool put_allowedip(struct nlmsghdr *nlh, size_t room, const struct ip_prefix *ip)
{
	struct nlattr *nest = mnl_attr_nest_start_check(nlh, room, 0);

	if (!nest)
		return false;
	if (!mnl_attr_put_u16_check(nlh, room, WGALLOWEDIP_A_FAMILY, ip->family) ||
	    !mnl_attr_put_check(nlh, room, WGALLOWEDIP_A_IPADDR, ip->family == AF_INET ? 4 : 16, &ip->ip6) ||
	    !mnl_attr_put_u8_check(nlh, room, WGALLOWEDIP_A_CIDR_MASK, ip->len)) {
		mnl_attr_nest_cancel(nlh, nest);
		return false;
	}
	mnl_attr_nest_end(nlh, nest);
	return true;
}

/* Attributes a peer carries once, in its first fragment. */
static bool put_peer_attributes(struct nlmsghdr *nlh, size_t room, const struct wg_peer *p)
{
	if ((p->flags & WG_PEER_HAS_PRESHARED_KEY) &&
	    !mnl_attr_put_check(nlh, room, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, p->preshared_key))
		return false;
	if (p->flags & WG_PEER_HAS_ENDPOINT) {
		size_t len = p->endpoint.addr.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								    : sizeof(struct sockaddr_in);

		if (!mnl_attr_put_check(nlh, room, WGPEER_A_ENDPOINT, len, &p->endpoint))
			return false;
	}
	if ((p->flags & WG_PEER_HAS_KEEPALIVE) &&
	    !mnl_attr_put_u16_check(nlh, room, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
				    p->persistent_keepalive))
		return false;
	return true;
}

/*
 * Peer p from the cursor on. A peer goes whole into one message (the kernel applies
 * each message on its own, so a split peer briefly has only part of its allowed IPs);
 * only a peer that starts a message and still does not fit is split. A continued peer
 * carries only its key, REMOVE/UPDATE_ONLY and more allowed IPs: REPLACE_ALLOWEDIPS
 * again would throw away the IPs its earlier fragment added.
 */
static enum peer_put put_peer(struct nlmsghdr *nlh, size_t room, const struct wg_peer *p,
			      struct wg_set_cursor *cur, bool first_in_message)
{
	struct nlattr *peer_nest, *ips_nest = NULL;
	uint32_t flags = 0;
	size_t ips_put = 0;

	peer_nest = mnl_attr_nest_start_check(nlh, room, 0);
	if (!peer_nest)
		return PEER_NONE;
	if (!mnl_attr_put_check(nlh, room, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p->public_key))
		goto none;
	if (p->flags & WG_PEER_REMOVE)
		flags |= WGPEER_F_REMOVE_ME;
	if (p->flags & WG_PEER_UPDATE_ONLY)
		flags |= WGPEER_F_UPDATE_ONLY;
	if (!cur->peer_started && (p->flags & WG_PEER_REPLACE_ALLOWEDIPS))
		flags |= WGPEER_F_REPLACE_ALLOWEDIPS;
	if (flags && !mnl_attr_put_u32_check(nlh, room, WGPEER_A_FLAGS, flags))
		goto none;
	if (p->flags & WG_PEER_REMOVE)
		goto done; /* the kernel reads nothing else of a removed peer */
	if (!cur->peer_started && !put_peer_attributes(nlh, room, p))
		goto none;

	for (; cur->allowedip < p->n_allowedips; cur->allowedip++) {
		if (!ips_nest && !(ips_nest = mnl_attr_nest_start_check(nlh, room, WGPEER_A_ALLOWEDIPS)))
			break;
		if (!put_allowedip(nlh, room, &p->allowedips[cur->allowedip]))
			break;
		ips_put++;
	}
	if (ips_nest) {
		if (ips_put)
			mnl_attr_nest_end(nlh, ips_nest);
		else
			mnl_attr_nest_cancel(nlh, ips_nest);
	}
	if (cur->allowedip < p->n_allowedips) {
		/* Out of room inside this peer: it moves whole to the next message. */
		if (!first_in_message) {
			cur->allowedip -= ips_put;
			goto none;
		}
		/* Not even one IP after the peer's own attributes: the buffer is too small. */
		if (ips_put == 0)
			goto none;
		mnl_attr_nest_end(nlh, peer_nest);
		cur->peer_started = true;
		return PEER_PARTIAL;
	}
done:
	mnl_attr_nest_end(nlh, peer_nest);
	cur->peer++;
	cur->allowedip = 0;
	cur->peer_started = false;
	return PEER_DONE;
none:
	mnl_attr_nest_cancel(nlh, peer_nest);
	return PEER_NONE;
}

static bool put_device_attributes(struct nlmsghdr *nlh, size_t room, const struct wg_device *dev)
{
	if ((dev->flags & WG_DEVICE_REPLACE_PEERS) &&
	    !mnl_attr_put_u32_check(nlh, room, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS))
		return false;
	if ((dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) &&
	    !mnl_attr_put_check(nlh, room, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, dev->private_key))
		return false;
	if ((dev->flags & WG_DEVICE_HAS_LISTEN_PORT) &&
	    !mnl_attr_put_u16_check(nlh, room, WGDEVICE_A_LISTEN_PORT, dev->listen_port))
		return false;
	if ((dev->flags & WG_DEVICE_HAS_FWMARK) &&
	    !mnl_attr_put_u32_check(nlh, room, WGDEVICE_A_FWMARK, dev->fwmark))
		return false;
	return true;
}

int wg_set_msg_build(void *buf, size_t buflen, uint16_t family_id, uint32_t seq,
		     const struct wg_device *dev, struct wg_set_cursor *cur, struct err_detail *why)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *genl;
	struct nlattr *peers_nest;
	bool carries_device = false;
	size_t peers_put = 0;

	if (buflen < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(*genl)) || buflen > UINT32_MAX)
		return nl_fail(why, -EMSGSIZE, "netlink buffer of %zu bytes", buflen);
	if ((dev->flags & WG_DEVICE_HAS_PRIVATE_KEY) && !dev->private_key)
		return nl_fail(why, -EINVAL, "private key flagged but not given");
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = family_id;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = WG_CMD_SET_DEVICE;
	genl->version = WG_GENL_VERSION;
	if (!mnl_attr_put_strz_check(nlh, buflen, WGDEVICE_A_IFNAME, dev->name))
		return nl_fail(why, -EMSGSIZE, "netlink buffer of %zu bytes", buflen);

	/* Device attributes (and REPLACE_PEERS) go in the first message only. */
	if (!cur->device_done) {
		if (!put_device_attributes(nlh, buflen, dev))
			return nl_fail(why, -EMSGSIZE, "netlink buffer of %zu bytes", buflen);
		cur->device_done = true;
		carries_device = dev->flags & (WG_DEVICE_REPLACE_PEERS | WG_DEVICE_HAS_PRIVATE_KEY |
					       WG_DEVICE_HAS_LISTEN_PORT | WG_DEVICE_HAS_FWMARK);
	}
	if (cur->peer >= dev->n_peers)
		return 0;

	peers_nest = mnl_attr_nest_start_check(nlh, buflen, WGDEVICE_A_PEERS);
	while (peers_nest && cur->peer < dev->n_peers) {
		enum peer_put put = put_peer(nlh, buflen, &dev->peers[cur->peer], cur, peers_put == 0);

		if (put != PEER_NONE)
			peers_put++;
		if (put != PEER_DONE)
			break;
	}
	if (peers_nest && peers_put)
		mnl_attr_nest_end(nlh, peers_nest);
	else if (peers_nest)
		mnl_attr_nest_cancel(nlh, peers_nest);
	if (!peers_put && !carries_device)
		return nl_fail(why, -EMSGSIZE, "a peer does not fit in %zu bytes", buflen);
	return cur->peer < dev->n_peers;
}

/* ---- GET (dump) ------------------------------------------------------------------------ */

static int bad(struct err_detail *why, const char *what)
{
	return nl_fail(why, -EBADMSG, "WireGuard dump: %s", what);
}

static int parse_allowedip(const struct nlattr *nest, struct ip_prefix *out, struct err_detail *why)
{
	const struct nlattr *attr;
	bool has_family = false, has_addr = false, has_cidr = false;
	size_t addr_len = 0;
	uint8_t addr[16] = { 0 };

	memset(out, 0, sizeof(*out));
	mnl_attr_for_each_nested(attr, nest) {
		switch (mnl_attr_get_type(attr)) {
		case WGALLOWEDIP_A_FAMILY:
			if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
				return bad(why, "allowed IP family is not a u16");
			out->family = mnl_attr_get_u16(attr);
			has_family = true;
			break;
		case WGALLOWEDIP_A_IPADDR:
			addr_len = mnl_attr_get_payload_len(attr);
			if (addr_len != 4 && addr_len != 16)
				return bad(why, "allowed IP address is neither 4 nor 16 bytes");
			memcpy(addr, mnl_attr_get_payload(attr), addr_len);
			has_addr = true;
			break;
		case WGALLOWEDIP_A_CIDR_MASK:
			if (mnl_attr_validate(attr, MNL_TYPE_U8) < 0)
				return bad(why, "allowed IP prefix length is not a u8");
			out->len = mnl_attr_get_u8(attr);
			has_cidr = true;
			break;
		}
	}
	if (!has_family || !has_addr || !has_cidr)
		return bad(why, "allowed IP without family, address or prefix length");
	if ((out->family == AF_INET && (addr_len != 4 || out->len > 32)) ||
	    (out->family == AF_INET6 && (addr_len != 16 || out->len > 128)) ||
	    (out->family != AF_INET && out->family != AF_INET6))
		return bad(why, "allowed IP with a mismatched family, address or prefix length");
	memcpy(&out->ip6, addr, addr_len);
	return 0;
}

static int parse_allowedips(const struct nlattr *nest, struct wg_peer *peer, struct err_detail *why)
{
	const struct nlattr *attr;
	int r;

	mnl_attr_for_each_nested(attr, nest) {
		r = nl_array_reserve_next((void **)&peer->allowedips, peer->n_allowedips,
					  sizeof(*peer->allowedips), WG_MAX_ALLOWEDIPS, why);
		if (r < 0)
			return r;
		r = parse_allowedip(attr, &peer->allowedips[peer->n_allowedips], why);
		if (r < 0)
			return r;
		peer->n_allowedips++;
	}
	return 0;
}

static int parse_endpoint(const struct nlattr *attr, union wg_endpoint *ep, struct err_detail *why)
{
	size_t len = mnl_attr_get_payload_len(attr);
	const struct sockaddr *sa = mnl_attr_get_payload(attr);

	memset(ep, 0, sizeof(*ep));
	if (len < sizeof(struct sockaddr))
		return bad(why, "endpoint shorter than a sockaddr");
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		memcpy(&ep->in, sa, sizeof(struct sockaddr_in));
	else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		memcpy(&ep->in6, sa, sizeof(struct sockaddr_in6));
	else
		return bad(why, "endpoint of an unknown family or short length");
	return 0;
}

/* The peer slot for a peer nest: the previous one again if the kernel repeated it. */
static int peer_slot(struct wg_device *dev, const struct nlattr *nest, struct wg_peer **out,
		     struct err_detail *why)
{
	const struct nlattr *attr;
	const uint8_t *key = NULL;
	int r;

	mnl_attr_for_each_nested(attr, nest) {
		if (mnl_attr_get_type(attr) != WGPEER_A_PUBLIC_KEY)
			continue;
		if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
			return bad(why, "peer public key is not 32 bytes");
		key = mnl_attr_get_payload(attr);
	}
	if (!key)
		return bad(why, "peer without a public key");
	/*
	 * The kernel continues a peer whose allowed IPs did not fit at the start of the
	 * next part, so a repeat is always the peer just before.
	 */
	if (dev->n_peers && !memcmp(dev->peers[dev->n_peers - 1].public_key, key, WG_KEY_LEN)) {
		*out = &dev->peers[dev->n_peers - 1];
		return 0;
	}
	r = nl_array_reserve_next((void **)&dev->peers, dev->n_peers, sizeof(*dev->peers), WG_MAX_PEERS, why);
	if (r < 0)
		return r;
	*out = &dev->peers[dev->n_peers++];
	memset(*out, 0, sizeof(**out));
	memcpy((*out)->public_key, key, WG_KEY_LEN);
	return 0;
}

static int parse_peer(const struct nlattr *nest, struct wg_device *dev, struct err_detail *why)
{
	const struct nlattr *attr;
	struct wg_peer *peer = NULL;
	int r;

	r = peer_slot(dev, nest, &peer, why);
	if (r < 0)
		return r;
	mnl_attr_for_each_nested(attr, nest) {
		switch (mnl_attr_get_type(attr)) {
		case WGPEER_A_PRESHARED_KEY:
			if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
				return bad(why, "preshared key is not 32 bytes");
			memcpy(peer->preshared_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
			if (!wg_key_is_zero(peer->preshared_key))
				peer->flags |= WG_PEER_HAS_PRESHARED_KEY;
			break;
		case WGPEER_A_ENDPOINT:
			r = parse_endpoint(attr, &peer->endpoint, why);
			if (r < 0)
				return r;
			peer->flags |= WG_PEER_HAS_ENDPOINT;
			break;
		case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
			if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
				return bad(why, "keepalive interval is not a u16");
			peer->persistent_keepalive = mnl_attr_get_u16(attr);
			peer->flags |= WG_PEER_HAS_KEEPALIVE;
			break;
		case WGPEER_A_LAST_HANDSHAKE_TIME: {
			int64_t t[2]; /* struct __kernel_timespec: s64 seconds, s64 nanoseconds */

			if (mnl_attr_get_payload_len(attr) != sizeof(t))
				return bad(why, "last handshake time is not a 16-byte timespec");
			memcpy(t, mnl_attr_get_payload(attr), sizeof(t));
			peer->last_handshake.tv_sec = (time_t)t[0];
			peer->last_handshake.tv_nsec = (long)t[1];
			break;
		}
		case WGPEER_A_RX_BYTES:
		case WGPEER_A_TX_BYTES:
			if (mnl_attr_validate(attr, MNL_TYPE_U64) < 0)
				return bad(why, "transfer counter is not a u64");
			if (mnl_attr_get_type(attr) == WGPEER_A_RX_BYTES)
				peer->rx_bytes = mnl_attr_get_u64(attr);
			else
				peer->tx_bytes = mnl_attr_get_u64(attr);
			break;
		case WGPEER_A_ALLOWEDIPS:
			r = parse_allowedips(attr, peer, why);
			if (r < 0)
				return r;
			break;
		}
	}
	return 0;
}

int wg_dump_msg_parse(const void *msg, size_t len, struct wg_device *dev, struct err_detail *why)
{
	const struct nlmsghdr *nlh = msg;
	const struct nlattr *attr;
	int r;

	if (len < MNL_NLMSG_HDRLEN || nlh->nlmsg_len < MNL_NLMSG_HDRLEN || nlh->nlmsg_len > len)
		return bad(why, "truncated netlink message");
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct genlmsghdr)))
		return bad(why, "message without a generic netlink header");
	if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
		return nl_fail(why, -EINTR, "the device changed during the dump");

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		switch (mnl_attr_get_type(attr)) {
		case WGDEVICE_A_IFINDEX:
			if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
				return bad(why, "ifindex is not a u32");
			dev->ifindex = mnl_attr_get_u32(attr);
			break;
		case WGDEVICE_A_IFNAME: {
			const char *name = mnl_attr_get_payload(attr);
			size_t n = strnlen(name, mnl_attr_get_payload_len(attr));

			if (n == 0 || n >= IFNAMSIZ || n == mnl_attr_get_payload_len(attr))
				return bad(why, "interface name is empty, too long or not terminated");
			memcpy(dev->name, name, n);
			dev->name[n] = '\0';
			break;
		}
		case WGDEVICE_A_PRIVATE_KEY:
			/* Never copied out of the (wiped) receive buffer: only its presence. */
			if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
				return bad(why, "private key is not 32 bytes");
			dev->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
			break;
		case WGDEVICE_A_PUBLIC_KEY:
			if (mnl_attr_get_payload_len(attr) != WG_KEY_LEN)
				return bad(why, "public key is not 32 bytes");
			memcpy(dev->public_key, mnl_attr_get_payload(attr), WG_KEY_LEN);
			break;
		case WGDEVICE_A_LISTEN_PORT:
			if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
				return bad(why, "listen port is not a u16");
			dev->listen_port = mnl_attr_get_u16(attr);
			dev->flags |= WG_DEVICE_HAS_LISTEN_PORT;
			break;
		case WGDEVICE_A_FWMARK:
			if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
				return bad(why, "fwmark is not a u32");
			dev->fwmark = mnl_attr_get_u32(attr);
			dev->flags |= WG_DEVICE_HAS_FWMARK;
			break;
		case WGDEVICE_A_PEERS: {
			const struct nlattr *peer;

			mnl_attr_for_each_nested(peer, attr) {
				r = parse_peer(peer, dev, why);
				if (r < 0)
					return r;
			}
			break;
		}
		}
	}
	return 0;
}
