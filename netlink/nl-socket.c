/* SPDX-License-Identifier: MIT */
/* Netlink sockets, request/ACK exchange with extended ACK messages, error detail. */
#include <errno.h>
#include <linux/netlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "netlink/internal.h"

int nl_fail(struct err_detail *why, int r, const char *fmt, ...)
{
	va_list ap;

	if (!why)
		return r;
	va_start(ap, fmt);
	vsnprintf(why->text, sizeof(why->text), fmt, ap);
	va_end(ap);
	return r;
}

void nl_clear_error(struct err_detail *why)
{
	if (why)
		why->text[0] = '\0';
}

bool nl_has_detail(const struct err_detail *why)
{
	return why && why->text[0];
}

int nl_check_ifname(const char *ifname, struct err_detail *why)
{
	if (!ifname || !ifname[0])
		return nl_fail(why, -EINVAL, "no interface name given");
	if (strlen(ifname) >= IFNAMSIZ)
		return nl_fail(why, -ENAMETOOLONG, "interface name '%.40s%s' is longer than %d characters",
			       ifname, strlen(ifname) > 40 ? "..." : "", IFNAMSIZ - 1);
	if (strchr(ifname, '/') || !strcmp(ifname, ".") || !strcmp(ifname, ".."))
		return nl_fail(why, -EINVAL, "'%s' is not a valid interface name", ifname);
	return 0;
}

int nl_socket_open(int protocol, struct mnl_socket **out, struct err_detail *why)
{
	struct mnl_socket *nl;
	int one = 1, r;

	nl = mnl_socket_open2(protocol, SOCK_CLOEXEC);
	if (!nl)
		return nl_fail(why, -errno, "opening a netlink socket");
	/* Both are best effort: old kernels answer without the extras. */
	mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		r = -errno;
		mnl_socket_close(nl);
		return nl_fail(why, r, "binding a netlink socket");
	}
	*out = nl;
	return 0;
}

int nl_error_msg_parse(const struct nlmsghdr *nlh, struct err_detail *why)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *attr;
	size_t off;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
		return nl_fail(why, -EBADMSG, "truncated netlink error message");
	if (err->error == 0)
		return 0;
	if (err->error > 0 || err->error < -4095)
		return nl_fail(why, -EBADMSG, "netlink error message with errno %d", err->error);

	nl_clear_error(why);
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return err->error;
	/* The TLVs follow the echoed request, which NETLINK_CAP_ACK trims to its header. */
	off = sizeof(*err);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
	if (off > nlh->nlmsg_len - MNL_NLMSG_HDRLEN)
		return err->error;
	mnl_attr_for_each_payload((const void *)((const char *)err + off), nlh->nlmsg_len - MNL_NLMSG_HDRLEN - off) {
		if (mnl_attr_get_type(attr) != NLMSGERR_ATTR_MSG)
			continue;
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
			break;
		return nl_fail(why, err->error, "kernel says: %s", mnl_attr_get_str(attr));
	}
	return err->error;
}

int nl_request(struct mnl_socket *nl, void *msg, size_t len, uint32_t seq,
	       int (*cb)(const struct nlmsghdr *nlh, void *data), void *data, struct err_detail *why)
{
	uint8_t buf[16384];
	uint32_t portid = mnl_socket_get_portid(nl);
	int r = 0;

	if (mnl_socket_sendto(nl, msg, len) < 0)
		return nl_fail(why, -errno, "sending a netlink request");
	/*
	 * Bounded: replies that are not ours cannot keep us here forever, nor can
	 * datagrams that hold no whole message (each counts too).
	 */
	for (int replies = 0; replies < 1024;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		int left;

		if (n < 0)
			return nl_fail(why, -errno, "receiving a netlink reply");
		if (!mnl_nlmsg_ok((const void *)buf, (int)n))
			replies++;
		left = (int)n;
		for (const struct nlmsghdr *nlh = (const void *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			replies++;
			if (nlh->nlmsg_seq != seq || (nlh->nlmsg_pid && nlh->nlmsg_pid != portid))
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				int err = nl_error_msg_parse(nlh, why);

				return r < 0 ? r : err;
			}
			if (nlh->nlmsg_type == NLMSG_DONE)
				return r;
			if (cb && r == 0)
				r = cb(nlh, data);
		}
	}
	return nl_fail(why, -EPROTO, "no acknowledgement for netlink request %u", seq);
}

/*
 * Growth by doubling where the capacity follows from the count alone (0, 8, 16, 32,
 * ...), so arrays in wg_device need no capacity field.
 */
int nl_array_reserve_next(void **array, size_t n, size_t elem, size_t max, struct err_detail *why)
{
	size_t ncap;
	void *p;

	if (n >= max)
		return nl_fail(why, -E2BIG, "more than %zu entries", max);
	if (n != 0 && (n < 8 || (n & (n - 1))))
		return 0; /* room left: n is not at a capacity boundary */
	ncap = n < 8 ? 8 : n * 2;
	if (ncap > max)
		ncap = max;
	p = realloc(*array, ncap * elem);
	if (!p)
		return -ENOMEM;
	*array = p;
	return 0;
}
