/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of netlink/ on buffers, no kernel: WG_CMD_SET_DEVICE split points,
 * a peer that alone overflows a message, multi-part dumps with a repeated peer,
 * hostile dump attributes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/rtnetlink.h>
#include <linux/wireguard.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "netlink/internal.h"

/* The detail of the last failure (each test runs in its own process). */
static struct err_detail why;

#define FAMILY 0x1d

/* What one SET message says, read back by a walker written for these tests. */
struct seen_peer {
	uint8_t key0; /* first byte of the public key: our test keys are 1, 2, 3, ... */
	uint32_t flags;
	bool has_endpoint, has_psk, has_keepalive;
	uint8_t psk[WG_KEY_LEN];
	size_t n_ips;
	uint32_t ips[4096]; /* IPv4 host part of each allowed IP, in order */
};

struct seen_msg {
	size_t len;
	bool has_private_key, has_port, has_fwmark;
	uint32_t device_flags;
	size_t n_peers;
	struct seen_peer peers[64];
};

static void walk_set_msg(const void *buf, struct seen_msg *m)
{
	const struct nlmsghdr *nlh = buf;
	const struct nlattr *a, *peer, *pa, *ip, *ia;

	memset(m, 0, sizeof(*m));
	m->len = nlh->nlmsg_len;
	cr_assert_eq(nlh->nlmsg_type, FAMILY);
	cr_assert(nlh->nlmsg_flags & NLM_F_ACK);
	mnl_attr_for_each(a, nlh, sizeof(struct genlmsghdr)) {
		switch (mnl_attr_get_type(a)) {
		case WGDEVICE_A_PRIVATE_KEY: m->has_private_key = true; break;
		case WGDEVICE_A_LISTEN_PORT: m->has_port = true; break;
		case WGDEVICE_A_FWMARK: m->has_fwmark = true; break;
		case WGDEVICE_A_FLAGS: m->device_flags = mnl_attr_get_u32(a); break;
		case WGDEVICE_A_PEERS:
			mnl_attr_for_each_nested(peer, a) {
				struct seen_peer *p = &m->peers[m->n_peers++];

				cr_assert(m->n_peers <= 64);
				mnl_attr_for_each_nested(pa, peer) {
					switch (mnl_attr_get_type(pa)) {
					case WGPEER_A_PUBLIC_KEY: p->key0 = ((const uint8_t *)mnl_attr_get_payload(pa))[0]; break;
					case WGPEER_A_FLAGS: p->flags = mnl_attr_get_u32(pa); break;
					case WGPEER_A_ENDPOINT: p->has_endpoint = true; break;
					case WGPEER_A_PRESHARED_KEY:
						p->has_psk = true;
						cr_assert_eq(mnl_attr_get_payload_len(pa), WG_KEY_LEN);
						memcpy(p->psk, mnl_attr_get_payload(pa), WG_KEY_LEN);
						break;
					case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL: p->has_keepalive = true; break;
					case WGPEER_A_ALLOWEDIPS:
						mnl_attr_for_each_nested(ip, pa) {
							mnl_attr_for_each_nested(ia, ip) {
								if (mnl_attr_get_type(ia) == WGALLOWEDIP_A_IPADDR)
									p->ips[p->n_ips] = ntohl(*(const uint32_t *)mnl_attr_get_payload(ia));
							}
							p->n_ips++;
						}
						break;
					}
				}
			}
			break;
		}
	}
}

/* n peers with keys 1..n, each with ips IPv4 /32s numbered from peer * 10000. */
static struct wg_device *make_device(size_t n, size_t ips, uint32_t peer_flags)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));

	strcpy(dev->name, "wg0");
	dev->peers = calloc(n, sizeof(*dev->peers));
	dev->n_peers = n;
	for (size_t i = 0; i < n; i++) {
		struct wg_peer *p = &dev->peers[i];

		p->public_key[0] = (uint8_t)(i + 1);
		p->flags = peer_flags;
		p->allowedips = calloc(ips ? ips : 1, sizeof(*p->allowedips));
		p->n_allowedips = ips;
		for (size_t k = 0; k < ips; k++) {
			p->allowedips[k].family = AF_INET;
			p->allowedips[k].len = 32;
			p->allowedips[k].ip4.s_addr = htonl((uint32_t)((i + 1) * 10000 + k));
		}
	}
	return dev;
}

/* Build every message of dev with buflen-byte buffers, walked into msgs. */
static size_t build_all(const struct wg_device *dev, size_t buflen, struct seen_msg *msgs, size_t max)
{
	struct wg_set_cursor cur = { 0 };
	uint8_t *buf = malloc(buflen);
	size_t n = 0;
	int more;

	do {
		cr_assert_lt(n, max, "too many messages");
		more = wg_set_msg_build(buf, buflen, FAMILY, (uint32_t)n + 1, dev, &cur, &why);
		cr_assert_geq(more, 0, "build failed: %d", more);
		walk_set_msg(buf, &msgs[n]);
		cr_assert_leq(msgs[n].len, buflen);
		n++;
	} while (more);
	free(buf);
	return n;
}

/*
 * Sizes: nlmsghdr 16 + genl 4 + IFNAME "wg0" 8 + PEERS nest 4 = 32; a peer with no
 * flags and one IPv4 allowed IP: nest 4 + key 36 + allowedips nest 4 + IP 28 = 72.
 */
Test(netlink_set, exact_split_point_between_peers)
{
	static struct seen_msg msgs[8];
	struct wg_device *dev = make_device(5, 1, 0);

	cr_assert_eq(build_all(dev, 32 + 72 * 3, msgs, 8), 2);
	cr_assert_eq(msgs[0].n_peers, 3);
	cr_assert_eq(msgs[0].len, 32 + 72 * 3, "the first message is filled to the byte");
	cr_assert_eq(msgs[1].n_peers, 2);
	cr_assert_eq(msgs[1].peers[0].key0, 4);

	/* One byte less: the third peer moves whole to the next message. */
	cr_assert_eq(build_all(dev, 32 + 72 * 3 - 1, msgs, 8), 3);
	cr_assert_eq(msgs[0].n_peers, 2);
	cr_assert_eq(msgs[1].n_peers, 2);
	cr_assert_eq(msgs[1].peers[0].key0, 3);
	cr_assert_eq(msgs[1].peers[0].n_ips, 1, "no peer split when it fits a message whole");
	cr_assert_eq(msgs[2].n_peers, 1);
	wg_device_free(dev);
}

Test(netlink_set, device_attributes_and_replace_peers_only_first)
{
	static struct seen_msg msgs[64];
	struct wg_device *dev = make_device(23, 3, WG_PEER_REPLACE_ALLOWEDIPS);
	static const uint8_t key[WG_KEY_LEN] = { 7 };
	size_t n;

	dev->flags = WG_DEVICE_REPLACE_PEERS | WG_DEVICE_HAS_PRIVATE_KEY | WG_DEVICE_HAS_LISTEN_PORT |
		     WG_DEVICE_HAS_FWMARK;
	dev->private_key = key;
	n = build_all(dev, 600, msgs, 64);
	cr_assert_gt(n, 3);
	cr_assert(msgs[0].has_private_key && msgs[0].has_port && msgs[0].has_fwmark);
	cr_assert_eq(msgs[0].device_flags, WGDEVICE_F_REPLACE_PEERS);
	for (size_t i = 1; i < n; i++) {
		cr_assert(!msgs[i].has_private_key && !msgs[i].has_port && !msgs[i].has_fwmark);
		cr_assert_eq(msgs[i].device_flags, 0, "REPLACE_PEERS again would drop earlier peers");
	}
	/* Every peer exactly once, in order, whole, with its flag. */
	uint8_t next = 1;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < msgs[i].n_peers; k++) {
			cr_assert_eq(msgs[i].peers[k].key0, next++);
			cr_assert_eq(msgs[i].peers[k].n_ips, 3);
			cr_assert_eq(msgs[i].peers[k].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
		}
	cr_assert_eq(next, 24);
	wg_device_free(dev);
}

Test(netlink_set, peer_that_alone_overflows_is_continued)
{
	static struct seen_msg msgs[64];
	struct wg_device *dev = make_device(2, 1000, WG_PEER_REPLACE_ALLOWEDIPS | WG_PEER_UPDATE_ONLY |
						     WG_PEER_HAS_ENDPOINT | WG_PEER_HAS_KEEPALIVE |
						     WG_PEER_HAS_PRESHARED_KEY);
	size_t n, ips = 0;

	for (int i = 0; i < 2; i++) {
		dev->peers[i].endpoint.in.sin_family = AF_INET;
		dev->peers[i].persistent_keepalive = 25;
	}
	n = build_all(dev, 1024, msgs, 64);
	cr_assert_gt(n, 2 * 1000 * 28 / 1024);
	/* The first fragment of each peer has its attributes and REPLACE_ALLOWEDIPS ... */
	cr_assert_eq(msgs[0].peers[0].flags, WGPEER_F_REPLACE_ALLOWEDIPS | WGPEER_F_UPDATE_ONLY);
	cr_assert(msgs[0].peers[0].has_endpoint && msgs[0].peers[0].has_psk && msgs[0].peers[0].has_keepalive);
	/* ... continuations only key, UPDATE_ONLY and IPs, one peer per message. */
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(msgs[i].n_peers, 1, "message %zu", i);
		struct seen_peer *p = &msgs[i].peers[0];
		bool first = i == 0 || msgs[i - 1].peers[0].key0 != p->key0;

		if (!first) {
			cr_assert_eq(p->flags, WGPEER_F_UPDATE_ONLY);
			cr_assert(!p->has_endpoint && !p->has_psk && !p->has_keepalive);
		}
		for (size_t k = 0; k < p->n_ips; k++, ips++)
			cr_assert_eq(p->ips[k], (uint32_t)(p->key0 * 10000 + ips % 1000),
				     "allowed IPs in order across messages");
	}
	cr_assert_eq(ips, 2000);
	wg_device_free(dev);
}

/* Each peer's PSK in the message that carries the peer's first fragment, at every split. */
Test(netlink_set, psk_goes_with_its_peer_at_every_split)
{
	static struct seen_msg msgs[64];
	struct wg_device *dev = make_device(
		40, 3, WG_PEER_REPLACE_ALLOWEDIPS | WG_PEER_HAS_PRESHARED_KEY | WG_PEER_HAS_ENDPOINT);

	for (size_t i = 0; i < 40; i++) {
		dev->peers[i].endpoint.in.sin_family = AF_INET;
		memset(dev->peers[i].preshared_key, (int)(0x80 + i), WG_KEY_LEN);
	}
	dev->peers[7].flags &= ~WG_PEER_HAS_PRESHARED_KEY; /* one peer without: none is sent */
	for (size_t buflen = 256; buflen <= 4096; buflen += 97) {
		size_t n = build_all(dev, buflen, msgs, 64), seen = 0;

		for (size_t m = 0; m < n; m++) {
			for (size_t k = 0; k < msgs[m].n_peers; k++) {
				struct seen_peer *p = &msgs[m].peers[k];
				bool first = !(m > 0 && k == 0 && msgs[m - 1].n_peers &&
					       msgs[m - 1].peers[msgs[m - 1].n_peers - 1].key0 == p->key0);
				uint8_t want[WG_KEY_LEN];

				if (!first || p->key0 == 8) {
					cr_assert(!p->has_psk, "peer %d, %zu-byte messages", p->key0, buflen);
					continue;
				}
				memset(want, 0x80 + p->key0 - 1, WG_KEY_LEN);
				cr_assert(p->has_psk && p->has_endpoint, "peer %d, %zu-byte messages",
					  p->key0, buflen);
				cr_assert_eq(memcmp(p->psk, want, WG_KEY_LEN), 0, "peer %d's own PSK",
					     p->key0);
				seen++;
			}
		}
		cr_assert_eq(seen, 39, "%zu-byte messages: %zu PSKs sent", buflen, seen);
	}
	wg_device_free(dev);
}

/* An all-zero PSK with the flag is sent as it is: the kernel then clears the peer's PSK. */
Test(netlink_set, zero_psk_is_sent_to_remove_it)
{
	static struct seen_msg msgs[2];
	struct wg_device *dev = make_device(1, 1, WG_PEER_UPDATE_ONLY | WG_PEER_HAS_PRESHARED_KEY);
	static const uint8_t zero[WG_KEY_LEN];

	cr_assert_eq(build_all(dev, 4096, msgs, 2), 1);
	cr_assert(msgs[0].peers[0].has_psk);
	cr_assert_eq(memcmp(msgs[0].peers[0].psk, zero, WG_KEY_LEN), 0);
	wg_device_free(dev);
}

Test(netlink_set, removed_peers_carry_only_key_and_flag)
{
	static struct seen_msg msgs[4];
	struct wg_device *dev = make_device(3, 2, WG_PEER_REMOVE | WG_PEER_HAS_ENDPOINT);

	cr_assert_eq(build_all(dev, 4096, msgs, 4), 1);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(msgs[0].peers[i].flags, WGPEER_F_REMOVE_ME);
		cr_assert_eq(msgs[0].peers[i].n_ips, 0);
		cr_assert(!msgs[0].peers[i].has_endpoint);
	}
	wg_device_free(dev);
}

Test(netlink_set, buffer_too_small_is_an_error_not_a_loop)
{
	struct wg_device *dev = make_device(1, 1, 0);
	struct wg_set_cursor cur = { 0 };
	uint8_t buf[80];

	cr_assert_eq(wg_set_msg_build(buf, sizeof(buf), FAMILY, 1, dev, &cur, &why), -EMSGSIZE);
	wg_device_free(dev);
}

/* ---- dumps ------------------------------------------------------------------------------ */

static struct nlmsghdr *dump_header(void *buf, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = FAMILY;
	nlh->nlmsg_flags = NLM_F_MULTI | flags;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = WG_CMD_GET_DEVICE;
	genl->version = 1;
	return nlh;
}

/* The first byte of the PSK dump_peer gives each peer (0: none, as the kernel dumps it). */
static uint8_t dump_psk0;

/* A peer as the kernel dumps it; attributes only on its first appearance. */
static void dump_peer(struct nlmsghdr *nlh, uint8_t key0, bool first, uint32_t ip_from, size_t n_ips)
{
	struct nlattr *peer = mnl_attr_nest_start(nlh, 0), *ips, *ip;
	uint8_t key[WG_KEY_LEN] = { key0 };

	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, key);
	if (first) {
		struct sockaddr_in6 ep = { .sin6_family = AF_INET6, .sin6_port = htons(51820) };
		int64_t ts[2] = { 1700000000, 5 };
		uint8_t psk[WG_KEY_LEN] = { dump_psk0 };

		mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN, psk);
		mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), ts);
		mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
		mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 1000 + key0);
		mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 2000 + key0);
		mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
		ep.sin6_addr.s6_addr[15] = key0;
		mnl_attr_put(nlh, WGPEER_A_ENDPOINT, sizeof(ep), &ep);
	}
	ips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	for (size_t k = 0; k < n_ips; k++) {
		uint32_t a = htonl(ip_from + (uint32_t)k);

		ip = mnl_attr_nest_start(nlh, 0);
		mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
		mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, &a);
		mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 32);
		mnl_attr_nest_end(nlh, ip);
	}
	mnl_attr_nest_end(nlh, ips);
	mnl_attr_nest_end(nlh, peer);
}

Test(netlink_dump, multi_part_with_repeated_peer_is_coalesced)
{
	static uint8_t part1[65536], part2[65536], part3[65536];
	struct wg_device *dev = calloc(1, sizeof(*dev));
	uint8_t key[WG_KEY_LEN] = { 0x42 };
	struct nlmsghdr *nlh;
	struct nlattr *peers;

	/* Part 1: device attributes, peer 1 whole, peer 2 with its first 100 IPs. */
	nlh = dump_header(part1, 0);
	mnl_attr_put_u16(nlh, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, 0);
	mnl_attr_put_u32(nlh, WGDEVICE_A_IFINDEX, 7);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wg0");
	mnl_attr_put(nlh, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, key);
	mnl_attr_put(nlh, WGDEVICE_A_PUBLIC_KEY, WG_KEY_LEN, key);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	dump_peer(nlh, 1, true, 100, 3);
	dump_peer(nlh, 2, true, 1000, 100);
	mnl_attr_nest_end(nlh, peers);
	/* Part 2: peer 2 repeated with 200 more IPs, then again in part 3 with the rest. */
	nlh = dump_header(part2, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	dump_peer(nlh, 2, false, 1100, 200);
	mnl_attr_nest_end(nlh, peers);
	nlh = dump_header(part3, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	dump_peer(nlh, 2, false, 1300, 50);
	dump_peer(nlh, 3, true, 5000, 0);
	mnl_attr_nest_end(nlh, peers);

	cr_assert_eq(wg_dump_msg_parse(part1, sizeof(part1), dev, &why), 0);
	cr_assert_eq(wg_dump_msg_parse(part2, sizeof(part2), dev, &why), 0);
	cr_assert_eq(wg_dump_msg_parse(part3, sizeof(part3), dev, &why), 0);
	cr_assert_str_eq(dev->name, "wg0");
	cr_assert_eq(dev->ifindex, 7);
	cr_assert_eq(dev->listen_port, 51820);
	cr_assert(dev->flags & WG_DEVICE_HAS_PRIVATE_KEY);
	cr_assert_eq(dev->private_key, NULL, "the private key is never kept from a dump");
	cr_assert_eq(dev->n_peers, 3);
	cr_assert_eq(dev->peers[1].n_allowedips, 350);
	for (size_t k = 0; k < 350; k++)
		cr_assert_eq(ntohl(dev->peers[1].allowedips[k].ip4.s_addr), 1000 + k);
	cr_assert_eq(dev->peers[1].rx_bytes, 2002, "the repeat did not reset the first part's fields");
	cr_assert_eq(dev->peers[1].persistent_keepalive, 25);
	cr_assert_eq(dev->peers[1].endpoint.in6.sin6_addr.s6_addr[15], 2);
	cr_assert_eq(dev->peers[1].last_handshake.tv_sec, 1700000000);
	cr_assert(!(dev->peers[1].flags & WG_PEER_HAS_PRESHARED_KEY), "an all-zero PSK is no PSK");
	cr_assert_eq(dev->peers[2].n_allowedips, 0);
	wg_device_free(dev);
}

Test(netlink_dump, hostile_attributes_are_rejected)
{
	static uint8_t buf[4096];
	struct wg_device *dev = calloc(1, sizeof(*dev));
	struct nlmsghdr *nlh;
	struct nlattr *peers, *peer;
	uint8_t short_key[16] = { 0 };

	nlh = dump_header(buf, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, sizeof(short_key), short_key);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	cr_assert_eq(wg_dump_msg_parse(buf, sizeof(buf), dev, &why), -EBADMSG);
	cr_assert(strstr(why.text, "public key"), "%s", why.text);

	nlh = dump_header(buf, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 1);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	cr_assert_eq(wg_dump_msg_parse(buf, sizeof(buf), dev, &why), -EBADMSG, "a peer without a key");

	nlh = dump_header(buf, NLM_F_DUMP_INTR);
	cr_assert_eq(wg_dump_msg_parse(buf, sizeof(buf), dev, &why), -EINTR);

	nlh = dump_header(buf, 0);
	cr_assert_eq(wg_dump_msg_parse(buf, 10, dev, &why), -EBADMSG, "truncated");
	wg_device_free(dev);
}

/* ---- UAPI replies, keys, text forms ------------------------------------------------------- */

Test(netlink_uapi, get_reply_is_parsed)
{
	static const char reply[] =
		"private_key=77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a\n"
		"listen_port=51820\n"
		"public_key=de0100000000000000000000000000000000000000000000000000000000000a\n"
		"preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
		"protocol_version=1\n"
		"endpoint=[2001:db8::1]:4242\n"
		"last_handshake_time_sec=12\n"
		"last_handshake_time_nsec=34\n"
		"tx_bytes=56\n"
		"rx_bytes=78\n"
		"persistent_keepalive_interval=25\n"
		"allowed_ip=10.0.1.2/32\n"
		"allowed_ip=fd00::/64\n"
		"errno=0\n\n";
	struct wg_device *dev = calloc(1, sizeof(*dev));
	char b64[WG_KEY_B64_LEN];

	cr_assert_eq(uapi_get_reply_parse(reply, sizeof(reply) - 1, dev, &why), 0, "%s", why.text);
	/* RFC 7748 6.1: Alice's public key, derived from her private key. */
	wg_key_to_base64(b64, dev->public_key);
	cr_assert_str_eq(b64, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
	cr_assert_eq(dev->listen_port, 51820);
	cr_assert_eq(dev->n_peers, 1);
	cr_assert_eq(dev->peers[0].public_key[0], 0xde);
	cr_assert_eq(dev->peers[0].n_allowedips, 2);
	cr_assert_eq(dev->peers[0].allowedips[1].len, 64);
	cr_assert_eq(dev->peers[0].rx_bytes, 78);
	cr_assert_eq(ntohs(dev->peers[0].endpoint.in6.sin6_port), 4242);
	wg_device_free(dev);
}

Test(netlink_uapi, bad_replies_are_errors)
{
	static const char *const bad[] = {
		"errno=5\n\n",
		"listen_port=70000\nerrno=0\n\n",
		"public_key=abc\nerrno=0\n\n",
		"public_key=de0100000000000000000000000000000000000000000000000000000000000a\n"
		"allowed_ip=10.0.0.1/33\nerrno=0\n\n",
		"no equals sign\n\n",
		"listen_port=1\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct wg_device *dev = calloc(1, sizeof(*dev));

		why.text[0] = '\0';
		cr_assert_lt(uapi_get_reply_parse(bad[i], strlen(bad[i]), dev, &why), 0, "reply %zu accepted",
			     i);
		cr_assert_neq(why.text[0], '\0', "reply %zu: no detail", i);
		wg_device_free(dev);
	}
}

Test(netlink_types, keys_prefixes_endpoints)
{
	uint8_t key[WG_KEY_LEN], back[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN], text[64];
	struct ip_prefix p;
	union wg_endpoint ep;

	for (int i = 0; i < WG_KEY_LEN; i++)
		key[i] = (uint8_t)(i * 37 + 1);
	wg_key_to_base64(b64, key);
	cr_assert_eq(strlen(b64), 44);
	cr_assert_eq(wg_key_from_base64(back, b64, &why), 0);
	cr_assert_eq(memcmp(key, back, WG_KEY_LEN), 0);
	cr_assert_eq(wg_key_from_base64(back, "AAAA", &why), -EINVAL, "wrong length");
	b64[42] = 'B'; /* non-canonical last digit */
	cr_assert_eq(wg_key_from_base64(back, b64, &why), -EINVAL);

	cr_assert_eq(ip_prefix_parse(&p, "10.0.1.2/24", &why), 0);
	cr_assert_eq(p.family, AF_INET);
	cr_assert_eq(p.len, 24);
	cr_assert_eq(ip_prefix_format(text, sizeof(text), &p), 0);
	cr_assert_str_eq(text, "10.0.1.2/24");
	cr_assert_eq(ip_prefix_parse(&p, "fd00::1", &why), 0);
	cr_assert_eq(p.len, 128);
	cr_assert_eq(ip_prefix_parse(&p, "10.0.0.1/33", &why), -EINVAL);
	cr_assert_eq(ip_prefix_parse(&p, "10.0.0.1/", &why), -EINVAL);
	cr_assert_eq(ip_prefix_parse(&p, "host/8", &why), -EINVAL);

	cr_assert_eq(wg_endpoint_parse(&ep, "[2001:db8::1]:51820", &why), 0);
	cr_assert_eq(wg_endpoint_format(text, sizeof(text), &ep), 0);
	cr_assert_str_eq(text, "[2001:db8::1]:51820");
	cr_assert_eq(wg_endpoint_parse(&ep, "192.0.2.1:1", &why), 0);
	cr_assert_eq(ep.addr.sa_family, AF_INET);
	cr_assert_eq(wg_endpoint_parse(&ep, "192.0.2.1:65536", &why), -EINVAL);
	cr_assert_eq(wg_endpoint_parse(&ep, "example.com:1", &why), -EINVAL, "no DNS");
}

Test(netlink_diff, only_what_changed)
{
	struct wg_device *cur = make_device(4, 2, 0), *want = make_device(5, 2, 0);
	struct wg_peer *changes;
	size_t n;

	/* want: peer 1 gone (key 9 instead), peer 2 new endpoint, peer 3 new IP set. */
	want->peers[0].public_key[0] = 9;
	want->peers[1].flags |= WG_PEER_HAS_ENDPOINT;
	want->peers[1].endpoint.in.sin_family = AF_INET;
	want->peers[1].endpoint.in.sin_port = htons(1);
	want->peers[2].allowedips[0].ip4.s_addr = htonl(1);
	/* peer 4 equal, IPs listed in another order. */
	want->peers[3].allowedips[0] = cur->peers[3].allowedips[1];
	want->peers[3].allowedips[1] = cur->peers[3].allowedips[0];
	cur->peers[3].flags = want->peers[3].flags = WG_PEER_HAS_KEEPALIVE;
	cr_assert_eq(wg_device_diff(cur, want, &changes, &n), 0);
	cr_assert_eq(n, 5, "remove 1, change 2 and 3, add 5 and 9: got %zu", n);
	for (size_t i = 0; i < n; i++) {
		switch (changes[i].public_key[0]) {
		case 1: cr_assert_eq(changes[i].flags, WG_PEER_REMOVE); break;
		case 2: cr_assert_eq(changes[i].flags, WG_PEER_HAS_ENDPOINT | WG_PEER_UPDATE_ONLY); break;
		case 3: cr_assert_eq(changes[i].flags, WG_PEER_REPLACE_ALLOWEDIPS | WG_PEER_UPDATE_ONLY); break;
		case 5: case 9: cr_assert(changes[i].flags & WG_PEER_REPLACE_ALLOWEDIPS); break;
		default: cr_assert_fail("unexpected change for peer %d", changes[i].public_key[0]);
		}
	}
	wg_changes_free(changes, n);
	wg_device_free(cur);
	wg_device_free(want);
}

/* A dumped PSK is kept (to compare with the wanted one) and a change of it is a change. */
Test(netlink_diff, psk_read_back_compared_and_changed)
{
	static uint8_t part[65536];
	struct wg_device *cur = calloc(1, sizeof(*cur)), *want = make_device(5, 1, WG_PEER_HAS_PRESHARED_KEY);
	static const uint8_t zero[WG_KEY_LEN];
	struct nlmsghdr *nlh;
	struct nlattr *peers;
	struct wg_peer *changes;
	size_t n;

	/* The device as the kernel dumps it: peers 1 to 4, each with PSK 0x55..., one IP. */
	dump_psk0 = 0x55;
	nlh = dump_header(part, 0);
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	for (uint8_t k = 1; k <= 4; k++)
		dump_peer(nlh, k, true, (uint32_t)k * 10000, 1);
	mnl_attr_nest_end(nlh, peers);
	cr_assert_eq(wg_dump_msg_parse(part, sizeof(part), cur, &why), 0);
	cr_assert(cur->peers[0].flags & WG_PEER_HAS_PRESHARED_KEY, "a non-zero PSK is read back");
	cr_assert_eq(cur->peers[0].preshared_key[0], 0x55);

	/* Wanted: peer 1 the same PSK, 2 another, 3 none, 4 the same; 5 is new, with a PSK. */
	for (size_t i = 0; i < 5; i++) {
		want->peers[i].preshared_key[0] = 0x55;
		want->peers[i].persistent_keepalive = 25; /* as dumped */
	}
	want->peers[1].preshared_key[31] = 1;
	want->peers[2].flags &= ~WG_PEER_HAS_PRESHARED_KEY;
	memset(want->peers[2].preshared_key, 0, WG_KEY_LEN);
	want->peers[4].preshared_key[0] = 0x66;
	cr_assert_eq(wg_device_diff(cur, want, &changes, &n), 0);
	cr_assert_eq(n, 3, "PSK changed, PSK removed, peer added: got %zu", n);
	for (size_t i = 0; i < n; i++) {
		const struct wg_peer *c = &changes[i];

		switch (c->public_key[0]) {
		case 2:
			cr_assert_eq(c->flags, WG_PEER_HAS_PRESHARED_KEY | WG_PEER_UPDATE_ONLY);
			cr_assert_eq(memcmp(c->preshared_key, want->peers[1].preshared_key, WG_KEY_LEN), 0);
			break;
		case 3:
			cr_assert_eq(c->flags, WG_PEER_HAS_PRESHARED_KEY | WG_PEER_UPDATE_ONLY);
			cr_assert_eq(memcmp(c->preshared_key, zero, WG_KEY_LEN), 0, "zero: remove the PSK");
			break;
		case 5:
			cr_assert(c->flags & WG_PEER_HAS_PRESHARED_KEY);
			cr_assert_eq(c->preshared_key[0], 0x66);
			break;
		default:
			cr_assert_fail("unexpected change for peer %d", c->public_key[0]);
		}
	}
	wg_changes_free(changes, n);
	wg_device_free(cur);
	wg_device_free(want);
}

/* ---- rtnetlink MTU replies ------------------------------------------------------------------- */

static struct nlmsghdr *route_reply(void *buf, uint32_t oif, uint32_t metric_mtu)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	struct nlattr *metrics;
	uint32_t dst = htonl(0xc0a84d02);

	nlh->nlmsg_type = RTM_NEWROUTE;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = AF_INET;
	rtm->rtm_dst_len = 32;
	mnl_attr_put(nlh, RTA_DST, 4, &dst);
	mnl_attr_put_u32(nlh, RTA_OIF, oif);
	metrics = mnl_attr_nest_start(nlh, RTA_METRICS);
	mnl_attr_put_u32(nlh, RTAX_ADVMSS, 1300);
	if (metric_mtu)
		mnl_attr_put_u32(nlh, RTAX_MTU, metric_mtu);
	mnl_attr_nest_end(nlh, metrics);
	return nlh;
}

Test(netlink_rtnl, route_and_link_mtu_replies)
{
	static uint8_t buf[512];
	struct rtnl_mtu_reply reply = { 0 };
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	route_reply(buf, 7, 1340);
	cr_assert_eq(rtnl_mtu_msg_parse(buf, sizeof(buf), &reply, &why), 0, "%s", why.text);
	cr_assert_eq(reply.oif, 7);
	cr_assert_eq(reply.route_mtu, 1340, "the route's MTU metric, not its advmss");

	memset(&reply, 0, sizeof(reply));
	route_reply(buf, 3, 0);
	cr_assert_eq(rtnl_mtu_msg_parse(buf, sizeof(buf), &reply, &why), 0);
	cr_assert_eq(reply.route_mtu, 0, "no MTU metric: the device's MTU counts");

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = 3;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "eth0");
	mnl_attr_put_u32(nlh, IFLA_MTU, 1500);
	cr_assert_eq(rtnl_mtu_msg_parse(buf, sizeof(buf), &reply, &why), 0);
	cr_assert_eq(reply.link_mtu, 1500);
}

Test(netlink_rtnl, hostile_mtu_replies_are_rejected)
{
	static uint8_t buf[512];
	struct rtnl_mtu_reply reply = { 0 };
	struct nlmsghdr *nlh;
	struct nlattr *metrics;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWROUTE;
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg));
	metrics = mnl_attr_nest_start(nlh, RTA_METRICS);
	mnl_attr_put_u16(nlh, RTAX_MTU, 1400);
	mnl_attr_nest_end(nlh, metrics);
	cr_assert_eq(rtnl_mtu_msg_parse(buf, sizeof(buf), &reply, &why), -EBADMSG);
	cr_assert(strstr(why.text, "RTAX_MTU"), "%s", why.text);

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWROUTE;
	mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg));
	mnl_attr_put_u16(nlh, RTA_OIF, 2);
	cr_assert_eq(rtnl_mtu_msg_parse(buf, sizeof(buf), &reply, &why), -EBADMSG, "a short RTA_OIF");

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	nlh->nlmsg_len = sizeof(*nlh) + 4; /* shorter than struct ifinfomsg */
	cr_assert_eq(rtnl_mtu_msg_parse(buf, sizeof(buf), &reply, &why), -EBADMSG, "a truncated link header");
	cr_assert_eq(rtnl_mtu_msg_parse(buf, 8, &reply, &why), -EBADMSG, "a truncated message");
}
