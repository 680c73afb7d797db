/* SPDX-License-Identifier: MIT */
/* mesh: what this node registers as its endpoint: its underlay address, or its gateway URL. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"

#define SYS_CONFIG_PATH "/dstack/.host-shared/.sys-config.json"

/* Host of the first http(s) RPC URL: "http://host:port/path" or "https://[v6]:port". */
static int rpc_host(const struct rpc_url_list *list, struct hostport *hp)
{
	for (size_t i = 0; i < list->n; i++) {
		const char *p = strstr(list->url[i].target, "://");

		if (list->url[i].transport != RPC_HTTP || !p)
			continue;
		p += 3;
		return hostport_split(p, strcspn(p, "/?#"), HOSTPORT_PORT_OPTIONAL, hp);
	}
	return -EINVAL;
}

/*
 * The address our packets to the RPC server leave from is the one peers can most
 * likely reach us on (no packet is sent: connect() on UDP only picks a route).
 */
int agent_guess_endpoint(const struct mesh_config *cfg, char *out, size_t len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res = NULL;
	struct sockaddr_storage local;
	socklen_t slen = sizeof(local);
	struct hostport hp;
	char ip[INET6_ADDRSTRLEN];
	int fd = -1, r;

	r = rpc_host(&cfg->rpc, &hp);
	if (r < 0)
		return -EADDRNOTAVAIL;
	if (getaddrinfo(hp.host, "9", &hints, &res) || !res)
		return -EHOSTUNREACH;
	fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    getsockname(fd, (struct sockaddr *)&local, &slen) < 0) {
		r = -errno;
		goto out;
	}
	if (local.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&local;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		if (in->sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
			r = -EADDRNOTAVAIL;  /* an RPC on localhost says nothing about our address */
			goto out;
		}
		r = snprintf(out, len, "%s:%u", ip, cfg->listen_port) >= (int)len ? -ENOSPC : 0;
	} else {
		const struct sockaddr_in6 *in6 = (const void *)&local;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		r = snprintf(out, len, "[%s]:%u", ip, cfg->listen_port) >= (int)len ? -ENOSPC : 0;
	}
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return r;
}

/* docs/dstack-facts.md, networking in a CVM: the gateway's RPC URLs, then its Info. */
int agent_gateway_domain_discover(const char *sys_config, char *domain, size_t len)
{
	struct http_target target = { .timeout_ms = 5000 };
	struct http_reply reply = { 0 };
	struct json j = { 0 }, g = { 0 };
	char *text = NULL, *url = NULL, *d = NULL;
	int64_t port = 443;
	size_t n = 0;
	FILE *f;
	int r, i;

	f = fopen(sys_config, "re");
	if (!f)
		return -errno;
	text = calloc(1, 1 << 16);
	if (text)
		n = fread(text, 1, (1 << 16) - 1, f);
	fclose(f);
	if (!text)
		return -ENOMEM;
	r = json_parse(&j, text, n, 4096);
	if (r < 0)
		goto out;
	i = json_get(&j, 0, "gateway_urls");
	i = i < 0 ? i : json_array_at(&j, i, 0);
	if (i < 0 || json_strdup(&j, i, &url) < 0) {
		r = -ENOENT;
		goto out;
	}
	target.base_url = url;
	r = http_get(&target, "/prpc/Info", &reply);
	if (r < 0)
		goto out;
	if (reply.status != 200 || json_parse(&g, (const char *)reply.body.data, reply.body.len, 1024) < 0) {
		r = -EBADMSG;
		goto out;
	}
	i = json_get(&g, 0, "base_domain");
	if (i < 0 || json_strdup(&g, i, &d) < 0 || !*d || strlen(d) >= len) {
		free(d);
		r = -EBADMSG;
		goto out;
	}
	/* The gateway's TLS port, when it is not 443, goes with the domain: "domain:port". */
	i = json_get(&g, 0, "external_port");
	if (i >= 0 && (json_int64(&g, i, &port) < 0 || port < 1 || port > 65535))
		port = 443;
	r = port == 443 ? snprintf(domain, len, "%s", d) : snprintf(domain, len, "%s:%d", d, (int)port);
	free(d);
	r = r >= (int)len ? -ENAMETOOLONG : 0;
out:
	json_clear(&g);
	json_clear(&j);
	http_reply_clear(&reply);
	free(url);
	free(text);
	return r;
}

int agent_gateway_url(const struct mesh_config *cfg, const char *instance_hex, char *out, size_t len)
{
	return agent_gateway_name(cfg, instance_hex, cfg->gateway_port, out, len);
}

/*
 * https://<instance>-<port>.<domain>: the gateway bridges it to our TCP port `port` (the
 * app's port in tls mode, the relay's in wireguard mode).
 */
int agent_gateway_name(const struct mesh_config *cfg, const char *instance_hex, uint16_t port, char *out,
		       size_t len)
{
	char domain[256];
	int r;

	if (cfg->gateway_domain[0]) {
		snprintf(domain, sizeof(domain), "%s", cfg->gateway_domain);
	} else {
		r = agent_gateway_domain_discover(SYS_CONFIG_PATH, domain, sizeof(domain));
		if (r < 0)
			return r;
	}
	if (snprintf(out, len, "https://%s-%u.%s", instance_hex, port, domain) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}
