/* SPDX-License-Identifier: MIT */
/* The kernel backend: WireGuard's generic netlink family over a libmnl socket. */
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "common/common.h"
#include "netlink/internal.h"

/*
 * SET messages are built this large: fewer messages and syscalls per bulk load; the
 * kernel copes with any size up to the socket's send buffer.
 */
#define WG_SET_MSG_SIZE (32 * 1024)
/* Dump parts: the kernel sizes them by our receive buffer, at most 32 KiB. */
#define WG_RECV_SIZE (64 * 1024)
#define WG_DUMP_RETRIES 5
#define WG_MAX_DUMP_PARTS (1u << 20)

typedef int (*msg_cb)(const struct nlmsghdr *nlh, void *data);

/*
 * Send one request and read until its ACK, error or end of dump, handing every other
 * reply of ours to cb. The receive buffer may hold a private key: wiped after use.
 */
static int genl_transact(struct wg_backend *b, void *msg, size_t len, msg_cb cb, void *data,
			 struct err_detail *why)
{
	const struct nlmsghdr *req = msg;
	uint32_t seq = req->nlmsg_seq, portid = mnl_socket_get_portid(b->nl);
	uint8_t *buf = b->recv_buf;
	int r = 0;

	if (mnl_socket_sendto(b->nl, msg, len) < 0)
		return nl_fail(why, -errno, "sending a WireGuard netlink request");
	b->messages++;
	for (unsigned parts = 0; parts < WG_MAX_DUMP_PARTS; parts++) {
		ssize_t n = mnl_socket_recvfrom(b->nl, buf, WG_RECV_SIZE);
		int left;

		if (n < 0)
			return nl_fail(why, -errno,
				       errno == EAGAIN ? "no netlink reply from the kernel in 30 s"
						       : "receiving a WireGuard netlink reply");
		left = (int)n;
		for (const struct nlmsghdr *nlh = (const void *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			if (nlh->nlmsg_seq != seq || (nlh->nlmsg_pid && nlh->nlmsg_pid != portid))
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				r = r < 0 ? r : nl_error_msg_parse(nlh, why);
				goto wipe_out;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				int err = 0;

				if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(err))
					memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
				if (err > 0 || err < -4095)
					err = -EBADMSG;
				/* A dump interrupted in its last part is flagged on DONE. */
				if (!err && (nlh->nlmsg_flags & NLM_F_DUMP_INTR))
					err = nl_fail(why, -EINTR, "the device changed during the dump");
				r = r < 0 ? r : err;
				goto wipe_out;
			}
			/* After a callback error keep reading, so the socket is left clean. */
			if (r == 0 && cb)
				r = cb(nlh, data);
		}
		secret_wipe(buf, (size_t)n);
	}
	return nl_fail(why, -EPROTO, "WireGuard netlink reply without an end");
wipe_out:
	secret_wipe(buf, WG_RECV_SIZE);
	return r;
}

/* What a callback fills, and where it puts the detail of a bad reply. */
struct family_id_reply {
	uint16_t id;
	struct err_detail *why;
};

static int family_id_cb(const struct nlmsghdr *nlh, void *data)
{
	struct family_id_reply *reply = data;
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct genlmsghdr)) {
		if (mnl_attr_get_type(attr) != CTRL_ATTR_FAMILY_ID)
			continue;
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return nl_fail(reply->why, -EBADMSG, "genetlink family id is not a u16");
		reply->id = mnl_attr_get_u16(attr);
	}
	return 0;
}

/* The "wireguard" family id, resolved once per socket. */
static int resolve_family(struct wg_backend *b, struct err_detail *why)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *genl;
	struct family_id_reply reply = { .why = why };
	int r;

	nlh->nlmsg_type = GENL_ID_CTRL;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++b->seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = CTRL_CMD_GETFAMILY;
	genl->version = 1;
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	r = genl_transact(b, buf, nlh->nlmsg_len, family_id_cb, &reply, why);
	if (r == -ENOENT)
		return nl_fail(why, -EOPNOTSUPP,
			       "kernel has no WireGuard; start wireguard-go or use --backend uapi");
	if (r < 0)
		return r;
	if (!reply.id)
		return nl_fail(why, -EPROTO, "no id in the genetlink family reply");
	b->family_id = reply.id;
	return 0;
}

/* Errors the kernel reports without an extended ACK, made specific. */
static int explain(int r, const char *ifname, struct err_detail *why)
{
	if (nl_has_detail(why))
		return r;
	switch (r) {
	case -ENODEV:
		return nl_fail(why, r, "no interface '%s'", ifname);
	case -EOPNOTSUPP:
		return nl_fail(why, r, "'%s' is not a kernel WireGuard interface", ifname);
	case -EPERM:
		return nl_fail(why, r, "configuring '%s' needs CAP_NET_ADMIN", ifname);
	}
	return r;
}

/* The device a dump fills, part by part, and where a bad part's detail goes. */
struct dump_parts {
	struct wg_device *dev;
	struct err_detail *why;
};

static int dump_part_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_parts *parts = data;

	return wg_dump_msg_parse(nlh, nlh->nlmsg_len, parts->dev, parts->why);
}

static int genl_get_device(struct wg_backend *b, const char *ifname, struct wg_device **out,
			   struct err_detail *why)
{
	uint8_t buf[128];
	int r = -EINTR;

	*out = NULL;
	/* A dump the device changed under is redone, a bounded number of times. */
	for (int attempt = 0; attempt < WG_DUMP_RETRIES && r == -EINTR; attempt++) {
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
		struct genlmsghdr *genl;
		struct wg_device *dev;

		nlh->nlmsg_type = b->family_id;
		nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP;
		nlh->nlmsg_seq = ++b->seq;
		genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
		genl->cmd = WG_CMD_GET_DEVICE;
		genl->version = WG_GENL_VERSION;
		mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);

		dev = calloc(1, sizeof(*dev));
		if (!dev)
			return -ENOMEM;
		nl_clear_error(why);
		r = genl_transact(b, buf, nlh->nlmsg_len, dump_part_cb, &(struct dump_parts){ dev, why },
				  why);
		if (r == 0) {
			*out = dev;
			return 0;
		}
		wg_device_free(dev);
	}
	return explain(r, ifname, why);
}

static int genl_set_device(struct wg_backend *b, const struct wg_device *dev, struct err_detail *why)
{
	struct wg_set_cursor cursor = { 0 };
	uint8_t *buf;
	int more, r;

	/* Locked memory: the message may carry the private key or preshared keys. */
	buf = secret_alloc(b->msg_size);
	if (!buf)
		return -ENOMEM;
	do {
		more = wg_set_msg_build(buf, b->msg_size, b->family_id, ++b->seq, dev, &cursor, why);
		if (more < 0) {
			r = more;
			goto out;
		}
		nl_clear_error(why);
		r = genl_transact(b, buf, ((struct nlmsghdr *)buf)->nlmsg_len, NULL, NULL, why);
		secret_wipe(buf, ((struct nlmsghdr *)buf)->nlmsg_len);
		if (r < 0) {
			r = explain(r, dev->name, why);
			goto out;
		}
	} while (more);
out:
	secret_free(buf, b->msg_size);
	return r;
}

static void genl_close(struct wg_backend *b)
{
	if (b->nl)
		mnl_socket_close(b->nl);
	b->nl = NULL;
	secret_free(b->recv_buf, WG_RECV_SIZE);
	b->recv_buf = NULL;
}

static const struct wg_backend_ops genl_ops = {
	.get_device = genl_get_device,
	.set_device = genl_set_device,
	.close = genl_close,
};

int wg_backend_set_message_size(struct wg_backend *b, size_t bytes, struct err_detail *why)
{
	if (b->kind != WG_BACKEND_KERNEL)
		return nl_fail(why, -EOPNOTSUPP, "only the kernel backend splits messages");
	if (bytes < 512 || bytes > 1024 * 1024)
		return nl_fail(why, -EINVAL, "message size %zu is outside 512..1048576", bytes);
	b->msg_size = bytes;
	return 0;
}

int wg_genl_open(struct wg_backend *b, struct err_detail *why)
{
	struct timeval timeout = { .tv_sec = 30 };
	int r;

	b->kind = WG_BACKEND_KERNEL;
	b->ops = &genl_ops;
	b->msg_size = WG_SET_MSG_SIZE;
	b->recv_buf = secret_alloc(WG_RECV_SIZE);
	if (!b->recv_buf)
		return -ENOMEM;
	r = nl_socket_open(NETLINK_GENERIC, &b->nl, why);
	if (r < 0) {
		genl_close(b);
		return r;
	}
	/* The kernel always answers; the timeout only keeps a wedged system from hanging us. */
	setsockopt(mnl_socket_get_fd(b->nl), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	r = resolve_family(b, why);
	if (r < 0)
		genl_close(b);
	return r;
}
