/* SPDX-License-Identifier: MIT */
/* rtnetlink: the WireGuard link itself, its MTU and state, its addresses and routes. */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "netlink/internal.h"

/* One short-lived socket per call: these run a handful of times per interface. */
static int rtnl_transact(struct nlmsghdr *nlh, int (*cb)(const struct nlmsghdr *, void *), void *data,
			 struct err_detail *why)
{
	struct mnl_socket *nl;
	int r;

	r = nl_socket_open(NETLINK_ROUTE, &nl, why);
	if (r < 0)
		return r;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	nl_clear_error(why);
	r = nl_request(nl, nlh, nlh->nlmsg_len, nlh->nlmsg_seq, cb, data, why);
	mnl_socket_close(nl);
	if (r == -EPERM && !nl_has_detail(why))
		r = nl_fail(why, r, "changing network configuration needs CAP_NET_ADMIN");
	return r;
}

static int ifindex_of(const char *ifname, int *ifindex, struct err_detail *why)
{
	unsigned idx;
	int r = nl_check_ifname(ifname, why);

	if (r < 0)
		return r;
	idx = if_nametoindex(ifname);
	if (!idx)
		return nl_fail(why, -ENODEV, "no interface '%s'", ifname);
	*ifindex = (int)idx;
	return 0;
}

static struct nlmsghdr *put_link_header(void *buf, uint16_t type, uint16_t flags, int ifindex)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	return nlh;
}

struct link_kind {
	char kind[32];
};

static int link_kind_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_kind *lk = data;
	const struct nlattr *attr, *info;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	mnl_attr_for_each(attr, nlh, sizeof(struct ifinfomsg)) {
		if (mnl_attr_get_type(attr) != IFLA_LINKINFO)
			continue;
		mnl_attr_for_each_nested(info, attr) {
			if (mnl_attr_get_type(info) != IFLA_INFO_KIND ||
			    mnl_attr_validate(info, MNL_TYPE_NUL_STRING) < 0)
				continue;
			snprintf(lk->kind, sizeof(lk->kind), "%s", mnl_attr_get_str(info));
		}
	}
	return 0;
}

int rtnl_link_is_wireguard(const char *ifname, struct err_detail *why)
{
	uint8_t buf[256];
	struct link_kind lk = { "" };
	struct nlmsghdr *nlh;
	int r = nl_check_ifname(ifname, why);

	if (r < 0)
		return r;
	nlh = put_link_header(buf, RTM_GETLINK, 0, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	r = rtnl_transact(nlh, link_kind_cb, &lk, why);
	if (r == -ENODEV)
		return nl_fail(why, r, "no interface '%s'", ifname);
	if (r < 0)
		return r;
	return !strcmp(lk.kind, "wireguard");
}

int rtnl_link_ensure_wireguard(const char *ifname, bool *created, struct err_detail *why)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh;
	struct nlattr *info;
	int r;

	if (created)
		*created = false;
	r = rtnl_link_is_wireguard(ifname, why);
	if (r == 1)
		return 0;
	if (r == 0)
		return nl_fail(why, -EEXIST, "'%s' exists and is not a WireGuard interface", ifname);
	if (r != -ENODEV)
		return r;

	nlh = put_link_header(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0);
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "wireguard");
	mnl_attr_nest_end(nlh, info);
	r = rtnl_transact(nlh, NULL, NULL, why);
	if (r == -EEXIST)
		return rtnl_link_is_wireguard(ifname, why) == 1 ? 0 : r; /* created meanwhile */
	if (r == -EOPNOTSUPP)
		return nl_fail(why, r, "kernel has no WireGuard; start wireguard-go or use --backend uapi");
	if (r == 0 && created)
		*created = true;
	return r;
}

int rtnl_link_delete(const char *ifname, struct err_detail *why)
{
	uint8_t buf[256];
	int ifindex = 0, r = ifindex_of(ifname, &ifindex, why);

	if (r < 0)
		return r;
	return rtnl_transact(put_link_header(buf, RTM_DELLINK, 0, ifindex), NULL, NULL, why);
}

int rtnl_link_set_mtu(const char *ifname, uint32_t mtu, struct err_detail *why)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh;
	int ifindex = 0, r = ifindex_of(ifname, &ifindex, why);

	if (r < 0)
		return r;
	if (mtu < 576 || mtu > 65535)
		return nl_fail(why, -EINVAL, "MTU %u is outside 576..65535", mtu);
	nlh = put_link_header(buf, RTM_NEWLINK, 0, ifindex);
	mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
	return rtnl_transact(nlh, NULL, NULL, why);
}

/* An attribute of a reply: the expected size, or -EBADMSG naming it. */
static int attr_u32(const struct nlattr *attr, const char *what, uint32_t *out, struct err_detail *why)
{
	if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
		return nl_fail(why, -EBADMSG, "rtnetlink reply: %s is not a 32-bit value", what);
	*out = mnl_attr_get_u32(attr);
	return 0;
}

static int route_metrics_parse(const struct nlattr *metrics, struct rtnl_mtu_reply *out,
			       struct err_detail *why)
{
	const struct nlattr *m;
	int r;

	mnl_attr_for_each_nested(m, metrics) {
		if (mnl_attr_get_type(m) != RTAX_MTU)
			continue;
		r = attr_u32(m, "RTAX_MTU", &out->route_mtu, why);
		if (r < 0)
			return r;
	}
	return 0;
}

int rtnl_mtu_msg_parse(const void *msg, size_t len, struct rtnl_mtu_reply *out, struct err_detail *why)
{
	const struct nlmsghdr *nlh = msg;
	const struct nlattr *attr;
	bool route;
	size_t hdr;
	int r;

	if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len)
		return nl_fail(why, -EBADMSG, "rtnetlink reply: truncated message");
	if (nlh->nlmsg_type != RTM_NEWROUTE && nlh->nlmsg_type != RTM_NEWLINK)
		return 0;
	route = nlh->nlmsg_type == RTM_NEWROUTE;
	hdr = route ? sizeof(struct rtmsg) : sizeof(struct ifinfomsg);
	if (mnl_nlmsg_get_payload_len(nlh) < hdr)
		return nl_fail(why, -EBADMSG, "rtnetlink reply: truncated %s header",
			       route ? "route" : "link");
	mnl_attr_for_each(attr, nlh, hdr) {
		uint16_t type = mnl_attr_get_type(attr);

		if (route && type == RTA_OIF)
			r = attr_u32(attr, "RTA_OIF", &out->oif, why);
		else if (route && type == RTA_METRICS)
			r = mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0
				    ? nl_fail(why, -EBADMSG, "rtnetlink reply: RTA_METRICS is not nested")
				    : route_metrics_parse(attr, out, why);
		else if (!route && type == IFLA_MTU)
			r = attr_u32(attr, "IFLA_MTU", &out->link_mtu, why);
		else
			r = 0;
		if (r < 0)
			return r;
	}
	return 0;
}

static int mtu_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rtnl_mtu_reply *out = data;

	return rtnl_mtu_msg_parse(nlh, nlh->nlmsg_len, out, out->why);
}

int rtnl_route_mtu(const union wg_endpoint *dst, uint32_t *mtu, struct err_detail *why)
{
	uint8_t buf[256];
	struct rtnl_mtu_reply reply = { .why = why };
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int r;

	if (dst->addr.sa_family != AF_INET && dst->addr.sa_family != AF_INET6)
		return nl_fail(why, -EINVAL, "the route MTU needs an IPv4 or IPv6 address");
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)dst->addr.sa_family;
	if (dst->addr.sa_family == AF_INET) {
		rtm->rtm_dst_len = 32;
		mnl_attr_put(nlh, RTA_DST, 4, &dst->in.sin_addr);
	} else {
		rtm->rtm_dst_len = 128;
		mnl_attr_put(nlh, RTA_DST, 16, &dst->in6.sin6_addr);
	}
	r = rtnl_transact(nlh, mtu_cb, &reply, why);
	if (r == -ENETUNREACH || r == -EHOSTUNREACH)
		return nl_fail(why, r, "no route to the endpoint");
	if (r < 0)
		return r;
	if (reply.route_mtu) {
		*mtu = reply.route_mtu;
		return 0;
	}
	if (!reply.oif)
		return nl_fail(why, -EBADMSG, "rtnetlink reply: the route names no output device");
	r = rtnl_transact(put_link_header(buf, RTM_GETLINK, 0, (int)reply.oif), mtu_cb, &reply, why);
	if (r < 0)
		return r;
	if (!reply.link_mtu)
		return nl_fail(why, -EBADMSG, "rtnetlink reply: the output device has no MTU");
	*mtu = reply.link_mtu;
	return 0;
}

int rtnl_link_mtu(const char *ifname, uint32_t *mtu, struct err_detail *why)
{
	uint8_t buf[256];
	struct rtnl_mtu_reply reply = { .why = why };
	int ifindex = 0, r = ifindex_of(ifname, &ifindex, why);

	if (r < 0)
		return r;
	r = rtnl_transact(put_link_header(buf, RTM_GETLINK, 0, ifindex), mtu_cb, &reply, why);
	if (r < 0)
		return r;
	if (!reply.link_mtu)
		return nl_fail(why, -EBADMSG, "rtnetlink reply: '%s' has no MTU", ifname);
	*mtu = reply.link_mtu;
	return 0;
}

int rtnl_link_set_up(const char *ifname, bool up, struct err_detail *why)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int ifindex = 0, r = ifindex_of(ifname, &ifindex, why);

	if (r < 0)
		return r;
	nlh = put_link_header(buf, RTM_NEWLINK, 0, ifindex);
	ifi = mnl_nlmsg_get_payload(nlh);
	ifi->ifi_change = IFF_UP;
	ifi->ifi_flags = up ? IFF_UP : 0;
	return rtnl_transact(nlh, NULL, NULL, why);
}

static size_t prefix_bytes(const struct ip_prefix *p)
{
	return p->family == AF_INET ? 4 : 16;
}

static int check_prefix(const struct ip_prefix *p, struct err_detail *why)
{
	if ((p->family != AF_INET && p->family != AF_INET6) || p->len > prefix_bytes(p) * 8)
		return nl_fail(why, -EINVAL, "not an IPv4 or IPv6 prefix");
	return 0;
}

static int addr_request(const char *ifname, const struct ip_prefix *addr, uint16_t type, uint16_t flags,
			struct err_detail *why)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	int ifindex = 0, r = ifindex_of(ifname, &ifindex, why);

	if (r < 0 || (r = check_prefix(addr, why)) < 0)
		return r;
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)addr->family;
	ifa->ifa_prefixlen = addr->len;
	ifa->ifa_index = (uint32_t)ifindex;
	/* Duplicate address detection means nothing on a point-to-multipoint tunnel. */
	ifa->ifa_flags = addr->family == AF_INET6 ? IFA_F_NODAD : 0;
	mnl_attr_put(nlh, IFA_LOCAL, prefix_bytes(addr), &addr->ip6);
	mnl_attr_put(nlh, IFA_ADDRESS, prefix_bytes(addr), &addr->ip6);
	return rtnl_transact(nlh, NULL, NULL, why);
}

int rtnl_addr_add(const char *ifname, const struct ip_prefix *addr, struct err_detail *why)
{
	int r = addr_request(ifname, addr, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, why);

	return r == -EEXIST ? 0 : r;
}

int rtnl_addr_del(const char *ifname, const struct ip_prefix *addr, struct err_detail *why)
{
	int r = addr_request(ifname, addr, RTM_DELADDR, 0, why);

	return r == -EADDRNOTAVAIL ? 0 : r;
}

static int route_request(const char *ifname, const struct ip_prefix *prefix, uint16_t type, uint16_t flags,
			 struct err_detail *why)
{
	uint8_t buf[256], dst[16] = { 0 };
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int ifindex = 0, r = ifindex_of(ifname, &ifindex, why);

	if (r < 0 || (r = check_prefix(prefix, why)) < 0)
		return r;
	/* The kernel wants the network address: clear the host bits. */
	memcpy(dst, &prefix->ip6, prefix_bytes(prefix));
	for (unsigned bit = prefix->len; bit < prefix_bytes(prefix) * 8; bit++)
		dst[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)prefix->family;
	rtm->rtm_dst_len = prefix->len;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = RTPROT_BOOT;
	rtm->rtm_scope = RT_SCOPE_LINK;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put(nlh, RTA_DST, prefix_bytes(prefix), dst);
	mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
	return rtnl_transact(nlh, NULL, NULL, why);
}

int rtnl_route_add(const char *ifname, const struct ip_prefix *prefix, struct err_detail *why)
{
	int r = route_request(ifname, prefix, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, why);

	return r == -EEXIST ? 0 : r;
}
