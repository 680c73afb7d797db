/* SPDX-License-Identifier: MIT */
/* Choosing a WireGuard backend per interface, and the calls every backend answers. */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "netlink/internal.h"

extern char **environ;

#define USERSPACE_START_TIMEOUT_MS 5000

int wg_backend_open_kernel(struct wg_backend **out, struct err_detail *why)
{
	struct wg_backend *b = calloc(1, sizeof(*b));
	int r;

	*out = NULL;
	if (!b)
		return -ENOMEM;
	nl_clear_error(why);
	r = wg_genl_open(b, why);
	if (r < 0) {
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

int wg_backend_open_uapi(struct wg_backend **out, const char *socket_dir, struct err_detail *why)
{
	struct wg_backend *b = calloc(1, sizeof(*b));
	int r;

	*out = NULL;
	if (!b)
		return -ENOMEM;
	nl_clear_error(why);
	r = uapi_open(b, socket_dir, why);
	if (r < 0) {
		free(b);
		return r;
	}
	*out = b;
	return 0;
}

void wg_backend_close(struct wg_backend *b)
{
	if (!b)
		return;
	b->ops->close(b);
	free(b);
}

enum wg_backend_kind wg_backend_kind(const struct wg_backend *b)
{
	return b->kind;
}

uint64_t wg_backend_messages(const struct wg_backend *b)
{
	return b->messages;
}

static bool uapi_socket_present(const char *ifname)
{
	char path[108];
	struct stat st;

	return uapi_socket_path(path, sizeof(path), NULL, ifname, NULL) == 0 && stat(path, &st) == 0 &&
	       S_ISSOCK(st.st_mode);
}

/*
 * Start the userspace implementation for ifname (WG_USERSPACE_IMPLEMENTATION, else
 * wireguard-go); it daemonizes, so we wait for it to exit and then for its socket.
 */
static int start_userspace(const char *ifname, struct err_detail *why)
{
	const char *impl = getenv("WG_USERSPACE_IMPLEMENTATION");
	char *argv[3];
	uint64_t deadline;
	pid_t pid;
	int status, r;

	if (!impl || !impl[0])
		impl = "wireguard-go";
	argv[0] = (char *)impl;
	argv[1] = (char *)ifname;
	argv[2] = NULL;
	r = posix_spawnp(&pid, impl, NULL, NULL, argv, environ);
	if (r)
		return nl_fail(why, -EOPNOTSUPP,
			       "kernel has no WireGuard and '%s' cannot be started (%s)", impl, errstr(-r));
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return nl_fail(why, -EOPNOTSUPP, "kernel has no WireGuard and '%s %s' failed", impl, ifname);
	deadline = now_ms() + USERSPACE_START_TIMEOUT_MS;
	while (!uapi_socket_present(ifname)) {
		if (now_ms() > deadline)
			return nl_fail(why, -ETIMEDOUT,
				       "'%s %s' started but its socket did not appear in 5 s",
				       impl, ifname);
		nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
	}
	return 0;
}

int wg_backend_open_auto(struct wg_backend **out, const char *ifname, unsigned flags, struct err_detail *why)
{
	int r;

	*out = NULL;
	nl_clear_error(why);
	r = nl_check_ifname(ifname, why);
	if (r < 0)
		return r;
	/* A userspace implementation already serving ifname wins: it owns the TUN link. */
	if (uapi_socket_present(ifname))
		return wg_backend_open_uapi(out, NULL, why);

	r = wg_backend_open_kernel(out, why);
	if (r == 0) {
		if (flags & WG_AUTO_CREATE)
			r = rtnl_link_ensure_wireguard(ifname, NULL, why);
		if (r < 0) {
			wg_backend_close(*out);
			*out = NULL;
		}
		return r;
	}
	if (r != -EOPNOTSUPP)
		return r;
	if (!(flags & WG_AUTO_START_USERSPACE))
		return nl_fail(why, -EOPNOTSUPP, "kernel has no WireGuard and no userspace implementation "
					    "serves '%s'; start wireguard-go %s or use --backend uapi",
			       ifname, ifname);
	r = start_userspace(ifname, why);
	if (r < 0)
		return r;
	return wg_backend_open_uapi(out, NULL, why);
}

int wg_backend_open_named(struct wg_backend **out, const char *kind, const char *ifname,
			  struct err_detail *why)
{
	*out = NULL;
	if (!strcmp(kind, "kernel"))
		return wg_backend_open_kernel(out, why);
	if (!strcmp(kind, "uapi"))
		return wg_backend_open_uapi(out, NULL, why);
	if (!strcmp(kind, "auto"))
		return wg_backend_open_auto(out, ifname, 0, why);
	return nl_fail(why, -EINVAL, "backend '%.32s' is none of kernel, uapi, auto", kind);
}

int wg_get_device(struct wg_backend *b, const char *ifname, struct wg_device **out, struct err_detail *why)
{
	int r;

	*out = NULL;
	nl_clear_error(why);
	r = nl_check_ifname(ifname, why);
	if (r < 0)
		return r;
	return b->ops->get_device(b, ifname, out, why);
}

int wg_set_device(struct wg_backend *b, const struct wg_device *dev, struct err_detail *why)
{
	int r;

	nl_clear_error(why);
	r = nl_check_ifname(dev->name, why);
	if (r < 0)
		return r;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct wg_peer *p = &dev->peers[i];

		for (size_t k = 0; k < p->n_allowedips; k++)
			if ((p->allowedips[k].family != AF_INET && p->allowedips[k].family != AF_INET6) ||
			    p->allowedips[k].len > (p->allowedips[k].family == AF_INET ? 32 : 128))
				return nl_fail(why, -EINVAL, "peer %zu: allowed IP %zu is not a valid prefix", i, k);
		if ((p->flags & WG_PEER_HAS_ENDPOINT) && p->endpoint.addr.sa_family != AF_INET &&
		    p->endpoint.addr.sa_family != AF_INET6)
			return nl_fail(why, -EINVAL, "peer %zu: endpoint is neither IPv4 nor IPv6", i);
	}
	return b->ops->set_device(b, dev, why);
}

int wg_apply_peers(struct wg_backend *b, const char *ifname, const struct wg_peer *changes, size_t n,
		   struct err_detail *why)
{
	struct wg_device dev = { .peers = (struct wg_peer *)changes, .n_peers = n };
	int r;

	nl_clear_error(why);
	r = nl_check_ifname(ifname, why);
	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	memcpy(dev.name, ifname, strlen(ifname) + 1);
	return wg_set_device(b, &dev, why);
}
