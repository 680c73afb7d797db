/* SPDX-License-Identifier: MIT */
/*
 * The userspace backend: wireguard-go's UAPI text protocol on
 * /var/run/wireguard/<ifname>.sock ("set=1"/"get=1", key=value lines, a blank line;
 * the reply ends "errno=N" and a blank line).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/common.h"
#include "crypto/crypto.h"
#include "netlink/internal.h"

#define UAPI_DEFAULT_DIR "/var/run/wireguard"
#define UAPI_MAX_REPLY (64u << 20) /* 130k allowed IPs are ~4 MiB of text */
#define UAPI_MAX_REQUEST (256u << 20)
#define UAPI_MAX_LINE 256

int uapi_socket_path(char *out, size_t outlen, const char *dir, const char *ifname, struct err_detail *why)
{
	int n, r = nl_check_ifname(ifname, why);

	if (r < 0)
		return r;
	n = snprintf(out, outlen, "%s/%s.sock", dir ? dir : UAPI_DEFAULT_DIR, ifname);
	if (n < 0 || (size_t)n >= outlen)
		return nl_fail(why, -ENAMETOOLONG, "UAPI socket path for '%s' is too long", ifname);
	return 0;
}

/* ---- parsing a get=1 reply -------------------------------------------------------------- */

static int bad_line(struct err_detail *why, const char *line, const char *what)
{
	return nl_fail(why, -EBADMSG, "UAPI reply line '%.48s': %s", line, what);
}

static int parse_u64(const char *value, uint64_t max, uint64_t *out)
{
	char *end;

	if (value[0] < '0' || value[0] > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(value, &end, 10);
	if (errno || *end || *out > max)
		return -EINVAL;
	return 0;
}

static int parse_hex_key(uint8_t key[static WG_KEY_LEN], const char *value)
{
	return hex_decode_exact(key, WG_KEY_LEN, value, strlen(value)) < 0 ? -EINVAL : 0;
}

static int device_line(struct wg_device *dev, const char *line, const char *key, const char *value,
		       struct err_detail *why)
{
	uint64_t v;

	if (!strcmp(key, "private_key")) {
		uint8_t priv[WG_KEY_LEN];
		int r = 0;

		/* Only the public key is kept; the private one is wiped right here. */
		if (parse_hex_key(priv, value) < 0)
			r = bad_line(why, "private_key=...", "not 64 hex digits");
		else if (!wg_key_is_zero(priv)) {
			r = x25519_public_from_private(dev->public_key, priv);
			dev->flags |= WG_DEVICE_HAS_PRIVATE_KEY;
		}
		secret_wipe(priv, sizeof(priv));
		return r;
	}
	if (!strcmp(key, "listen_port")) {
		if (parse_u64(value, UINT16_MAX, &v) < 0)
			return bad_line(why, line, "not a port");
		dev->listen_port = (uint16_t)v;
		dev->flags |= WG_DEVICE_HAS_LISTEN_PORT;
	} else if (!strcmp(key, "fwmark")) {
		if (parse_u64(value, UINT32_MAX, &v) < 0)
			return bad_line(why, line, "not a 32-bit mark");
		dev->fwmark = (uint32_t)v;
		dev->flags |= WG_DEVICE_HAS_FWMARK;
	}
	return 0;
}

static int peer_line(struct wg_peer *peer, const char *line, const char *key, const char *value,
		     struct err_detail *why)
{
	uint64_t v;
	int r;

	if (!strcmp(key, "preshared_key")) {
		if (parse_hex_key(peer->preshared_key, value) < 0)
			return bad_line(why, "preshared_key=...", "not 64 hex digits");
		if (!wg_key_is_zero(peer->preshared_key))
			peer->flags |= WG_PEER_HAS_PRESHARED_KEY;
	} else if (!strcmp(key, "endpoint")) {
		if (wg_endpoint_parse(&peer->endpoint, value, why) < 0)
			return bad_line(why, line, "not an endpoint");
		peer->flags |= WG_PEER_HAS_ENDPOINT;
	} else if (!strcmp(key, "persistent_keepalive_interval")) {
		if (parse_u64(value, UINT16_MAX, &v) < 0)
			return bad_line(why, line, "not an interval");
		peer->persistent_keepalive = (uint16_t)v;
		peer->flags |= WG_PEER_HAS_KEEPALIVE;
	} else if (!strcmp(key, "last_handshake_time_sec")) {
		if (parse_u64(value, INT64_MAX, &v) < 0)
			return bad_line(why, line, "not a time");
		peer->last_handshake.tv_sec = (time_t)v;
	} else if (!strcmp(key, "last_handshake_time_nsec")) {
		if (parse_u64(value, 999999999, &v) < 0)
			return bad_line(why, line, "not nanoseconds");
		peer->last_handshake.tv_nsec = (long)v;
	} else if (!strcmp(key, "rx_bytes") || !strcmp(key, "tx_bytes")) {
		if (parse_u64(value, UINT64_MAX, &v) < 0)
			return bad_line(why, line, "not a byte count");
		if (key[0] == 'r')
			peer->rx_bytes = v;
		else
			peer->tx_bytes = v;
	} else if (!strcmp(key, "allowed_ip")) {
		r = nl_array_reserve_next((void **)&peer->allowedips, peer->n_allowedips,
					  sizeof(*peer->allowedips), WG_MAX_ALLOWEDIPS, why);
		if (r < 0)
			return r;
		if (ip_prefix_parse(&peer->allowedips[peer->n_allowedips], value, why) < 0)
			return bad_line(why, line, "not an IP prefix");
		peer->n_allowedips++;
	}
	return 0;
}

int uapi_get_reply_parse(const char *text, size_t len, struct wg_device *dev, struct err_detail *why)
{
	struct wg_peer *peer = NULL;
	size_t pos = 0;
	int r;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = (nl ? (size_t)(nl - text) : len) - pos;
		char line[UAPI_MAX_LINE], *eq;
		uint64_t errnum;

		if (n >= sizeof(line))
			return nl_fail(why, -EBADMSG, "UAPI reply line longer than %d bytes",
				       UAPI_MAX_LINE - 1);
		memcpy(line, text + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (n == 0)
			break; /* the blank line ends the reply */
		if (memchr(line, '\0', n)) {
			secret_wipe(line, sizeof(line)); /* it may be the private key's line */
			return nl_fail(why, -EBADMSG, "UAPI reply holds a NUL byte");
		}
		eq = strchr(line, '=');
		if (!eq)
			return bad_line(why, line, "no '='");
		*eq = '\0';
		if (!strcmp(line, "errno")) {
			*eq = '=';
			if (parse_u64(eq + 1, 4095, &errnum) < 0)
				return bad_line(why, line, "not an errno");
			if (errnum)
				return nl_fail(why, -EIO, "userspace WireGuard answered errno=%" PRIu64,
					       errnum);
			return 0;
		}
		if (!strcmp(line, "public_key")) {
			r = nl_array_reserve_next((void **)&dev->peers, dev->n_peers, sizeof(*dev->peers),
						  WG_MAX_PEERS, why);
			if (r < 0)
				return r;
			peer = &dev->peers[dev->n_peers++];
			memset(peer, 0, sizeof(*peer));
			if (parse_hex_key(peer->public_key, eq + 1) < 0)
				return bad_line(why, "public_key=...", "not 64 hex digits");
			continue;
		}
		r = peer ? peer_line(peer, line, line, eq + 1, why)
			 : device_line(dev, line, line, eq + 1, why);
		secret_wipe(line, sizeof(line));
		if (r < 0)
			return r;
	}
	return nl_fail(why, -EBADMSG, "UAPI reply without errno=");
}

/* ---- building a set=1 request ---------------------------------------------------------- */

static int put_hex_key(struct buf *req, const char *name, const uint8_t key[static WG_KEY_LEN])
{
	char hex[2 * WG_KEY_LEN + 1];
	int r;

	hex_encode(hex, key, WG_KEY_LEN);
	r = buf_printf(req, "%s=%s\n", name, hex);
	secret_wipe(hex, sizeof(hex));
	return r;
}

static int put_peer(struct buf *req, const struct wg_peer *p)
{
	char text[INET6_ADDRSTRLEN + 16];
	int r;

	/* wireguard-go wants update_only and remove right after the key. */
	r = put_hex_key(req, "public_key", p->public_key);
	if (r == 0 && (p->flags & WG_PEER_UPDATE_ONLY))
		r = buf_printf(req, "update_only=true\n");
	if (r == 0 && (p->flags & WG_PEER_REMOVE))
		return buf_printf(req, "remove=true\n");
	if (r == 0 && (p->flags & WG_PEER_HAS_PRESHARED_KEY))
		r = put_hex_key(req, "preshared_key", p->preshared_key);
	if (r == 0 && (p->flags & WG_PEER_HAS_ENDPOINT)) {
		r = wg_endpoint_format(text, sizeof(text), &p->endpoint);
		if (r == 0)
			r = buf_printf(req, "endpoint=%s\n", text);
	}
	if (r == 0 && (p->flags & WG_PEER_HAS_KEEPALIVE))
		r = buf_printf(req, "persistent_keepalive_interval=%u\n", p->persistent_keepalive);
	if (r == 0 && (p->flags & WG_PEER_REPLACE_ALLOWEDIPS))
		r = buf_printf(req, "replace_allowed_ips=true\n");
	for (size_t i = 0; r == 0 && i < p->n_allowedips; i++) {
		r = ip_prefix_format(text, sizeof(text), &p->allowedips[i]);
		if (r == 0)
			r = buf_printf(req, "allowed_ip=%s\n", text);
	}
	return r;
}

static int build_set_request(struct buf *req, const struct wg_device *dev)
{
	int r = buf_printf(req, "set=1\n");

	if (r == 0 && (dev->flags & WG_DEVICE_HAS_PRIVATE_KEY))
		r = dev->private_key ? put_hex_key(req, "private_key", dev->private_key) : -EINVAL;
	if (r == 0 && (dev->flags & WG_DEVICE_HAS_LISTEN_PORT))
		r = buf_printf(req, "listen_port=%u\n", dev->listen_port);
	if (r == 0 && (dev->flags & WG_DEVICE_HAS_FWMARK))
		r = buf_printf(req, "fwmark=%u\n", dev->fwmark);
	if (r == 0 && (dev->flags & WG_DEVICE_REPLACE_PEERS))
		r = buf_printf(req, "replace_peers=true\n");
	for (size_t i = 0; r == 0 && i < dev->n_peers; i++)
		r = put_peer(req, &dev->peers[i]);
	if (r == 0)
		r = buf_printf(req, "\n");
	return r;
}

/* ---- the socket ------------------------------------------------------------------------ */

static int uapi_connect(const struct wg_backend *b, const char *ifname, struct err_detail *why)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct timeval timeout = { .tv_sec = 30 };
	int fd, r;

	r = uapi_socket_path(addr.sun_path, sizeof(addr.sun_path), b->socket_dir, ifname, why);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return nl_fail(why, -errno, "creating a unix socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		r = -errno;
		close(fd);
		if (r == -ENOENT || r == -ECONNREFUSED)
			return nl_fail(why, -ENODEV, "no userspace WireGuard serves '%s' (%s: %s)", ifname,
				       addr.sun_path, errstr(r));
		return nl_fail(why, r, "connecting to %s", addr.sun_path);
	}
	return fd;
}

/* Send req and read the whole reply (up to the blank line after errno=N). */
static int uapi_exchange(struct wg_backend *b, const char *ifname, const struct buf *req,
			 struct buf *reply, struct err_detail *why)
{
	uint8_t chunk[16384];
	size_t sent = 0;
	int fd, r = 0;

	fd = uapi_connect(b, ifname, why);
	if (fd < 0)
		return fd;
	b->messages++;
	while (sent < req->len) {
		ssize_t n = send(fd, req->data + sent, req->len - sent, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = nl_fail(why, -errno, "writing to the UAPI socket of '%s'", ifname);
			goto out;
		}
		sent += (size_t)n;
	}
	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = nl_fail(why, -errno, "reading the UAPI reply of '%s'", ifname);
			goto out;
		}
		if (n == 0)
			break;
		r = buf_append(reply, chunk, (size_t)n);
		if (r < 0) {
			nl_fail(why, r, "UAPI reply of '%s' larger than %u bytes", ifname, UAPI_MAX_REPLY);
			goto out;
		}
		if (reply->len >= 2 && !memcmp(reply->data + reply->len - 2, "\n\n", 2))
			break;
	}
out:
	secret_wipe(chunk, sizeof(chunk));
	close(fd);
	return r;
}

static int uapi_get_device(struct wg_backend *b, const char *ifname, struct wg_device **out,
			   struct err_detail *why)
{
	static const char get[] = "get=1\n\n";
	struct buf req = { .data = (uint8_t *)get, .len = sizeof(get) - 1 };
	struct buf reply;
	struct wg_device *dev;
	int r;

	*out = NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	buf_init(&reply, UAPI_MAX_REPLY);
	nl_clear_error(why);
	r = uapi_exchange(b, ifname, &req, &reply, why);
	if (r == 0)
		r = uapi_get_reply_parse((const char *)reply.data, reply.len, dev, why);
	if (r == 0) {
		snprintf(dev->name, sizeof(dev->name), "%s", ifname);
		*out = dev;
		dev = NULL;
	}
	buf_wipe_clear(&reply); /* holds the private key */
	wg_device_free(dev);
	return r;
}

static int uapi_set_device(struct wg_backend *b, const struct wg_device *dev, struct err_detail *why)
{
	struct buf req, reply;
	struct wg_device *status = NULL;
	int r;

	buf_init(&req, UAPI_MAX_REQUEST);
	buf_init(&reply, 4096);
	nl_clear_error(why);
	r = build_set_request(&req, dev);
	if (r == 0)
		r = uapi_exchange(b, dev->name, &req, &reply, why);
	if (r == 0) {
		/* The reply of a set is just errno=N; the get parser reads exactly that. */
		status = calloc(1, sizeof(*status));
		r = status ? uapi_get_reply_parse((const char *)reply.data, reply.len, status, why) : -ENOMEM;
	}
	buf_wipe_clear(&req);
	buf_clear(&reply);
	wg_device_free(status);
	return r;
}

static void uapi_close(struct wg_backend *b)
{
	(void)b;
}

static const struct wg_backend_ops uapi_ops = {
	.get_device = uapi_get_device,
	.set_device = uapi_set_device,
	.close = uapi_close,
};

int uapi_open(struct wg_backend *b, const char *socket_dir, struct err_detail *why)
{
	int n = snprintf(b->socket_dir, sizeof(b->socket_dir), "%s", socket_dir ? socket_dir : UAPI_DEFAULT_DIR);

	if (n < 0 || (size_t)n >= sizeof(b->socket_dir) - IFNAMSIZ - 6)
		return nl_fail(why, -ENAMETOOLONG, "UAPI socket directory '%.64s' is too long", socket_dir);
	b->kind = WG_BACKEND_UAPI;
	b->ops = &uapi_ops;
	return 0;
}
