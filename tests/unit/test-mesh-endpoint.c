/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of mesh/endpoint.c's gateway-domain discovery: a host-shared config file
 * written here, and a gateway answering GET /prpc/Info on loopback (common's HTTP server).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

struct info_server {
	int fd;
	uint16_t port;
	pthread_t thread;
	volatile sig_atomic_t stop;
	int status;                 /* what /prpc/Info answers */
	const char *body;
	char seen[160];             /* "METHOD path" of the last request */
};

static int info_handler(void *ctx, const struct http_request *req, struct buf *reply)
{
	struct info_server *s = ctx;

	snprintf(s->seen, sizeof(s->seen), "%s %s", req->method, req->path);
	if (strcmp(req->path, "/prpc/Info"))
		return buf_printf(reply, "{}") < 0 ? 500 : 404;
	return buf_printf(reply, "%s", s->body) < 0 ? 500 : s->status;
}

static void *info_serve(void *arg)
{
	struct info_server *s = arg;
	sigset_t none;

	sigemptyset(&none);
	http_serve(&(struct http_server){ .max_header = 4096, .handler = info_handler, .ctx = s }, &s->fd, 1,
		   &none, &s->stop);
	return NULL;
}

static void info_start(struct info_server *s, int status, const char *body)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->status = status;
	s->body = body;
	cr_assert_eq(http_listen("127.0.0.1:0", &s->fd, NULL), 0);
	cr_assert_eq(getsockname(s->fd, (struct sockaddr *)&a, &alen), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->thread, NULL, info_serve, s), 0);
}

/* stop, then one connection to wake the server's poll */
static void info_stop(struct info_server *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(s->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	s->stop = 1;
	if (fd >= 0) {
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			/* already gone */
		}
		close(fd);
	}
	pthread_join(s->thread, NULL);
	close(s->fd);
}

/* A host-shared config file holding text; its path in path (a mkstemp template). */
static void sys_config(char path[static 64], const char *text)
{
	int fd;

	snprintf(path, 64, "/tmp/dp2p-sys-config-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Discovery against a gateway answering status/body, the config naming it in gateway_urls[]. */
static int discover(int status, const char *body, char *domain, size_t len, char seen[static 160])
{
	struct info_server s;
	char path[64], text[256];
	int r;

	http_global_init();
	info_start(&s, status, body);
	snprintf(text, sizeof(text), "{\"gateway_urls\":[\"http://127.0.0.1:%u\",\"http://127.0.0.1:1\"],"
		 "\"pccs_url\":\"x\"}", s.port);
	sys_config(path, text);
	r = agent_gateway_domain_discover(path, domain, len);
	info_stop(&s);
	unlink(path);
	memcpy(seen, s.seen, 160);
	return r;
}

Test(gateway_domain, from_the_host_shared_config_and_the_gateway_info)
{
	char domain[256], seen[160];

	cr_assert_eq(discover(200, "{\"base_domain\":\"gw.phala.example\",\"external_port\":443}", domain,
			      sizeof(domain), seen), 0);
	cr_assert_str_eq(domain, "gw.phala.example");
	cr_assert_str_eq(seen, "GET /prpc/Info");
	/* A TLS port other than 443 goes with the domain. */
	cr_assert_eq(discover(200, "{\"base_domain\":\"gw.example\",\"external_port\":8443,\"x\":[1]}", domain,
			      sizeof(domain), seen), 0);
	cr_assert_str_eq(domain, "gw.example:8443");
	/* No port, or one out of range: 443. */
	cr_assert_eq(discover(200, "{\"base_domain\":\"gw.example\"}", domain, sizeof(domain), seen), 0);
	cr_assert_str_eq(domain, "gw.example");
	cr_assert_eq(discover(200, "{\"base_domain\":\"gw.example\",\"external_port\":70000}", domain,
			      sizeof(domain), seen), 0);
	cr_assert_str_eq(domain, "gw.example");
}

Test(gateway_domain, a_gateway_that_says_nothing_useful_is_an_error)
{
	char domain[16], seen[160];

	cr_assert_eq(discover(500, "{\"base_domain\":\"gw.example\"}", domain, sizeof(domain), seen), -EBADMSG);
	cr_assert_eq(discover(200, "{\"external_port\":443}", domain, sizeof(domain), seen), -EBADMSG);
	cr_assert_eq(discover(200, "{\"base_domain\":\"\"}", domain, sizeof(domain), seen), -EBADMSG);
	cr_assert_eq(discover(200, "{\"base_domain\":7}", domain, sizeof(domain), seen), -EBADMSG);
	cr_assert_eq(discover(200, "not json", domain, sizeof(domain), seen), -EBADMSG);
	/* longer than the caller's buffer (16) */
	cr_assert_eq(discover(200, "{\"base_domain\":\"a-very-long-gateway.example\"}", domain, sizeof(domain),
			      seen), -EBADMSG);
	cr_assert_eq(discover(200, "{\"base_domain\":\"gw.example\",\"external_port\":8443}", domain, 14, seen),
		     -ENAMETOOLONG);
}

Test(gateway_domain, a_config_without_a_gateway_is_an_error)
{
	const char *bad[] = { "{}", "{\"gateway_urls\":[]}", "{\"gateway_urls\":\"http://127.0.0.1:1\"}",
			      "{\"gateway_urls\":[7]}", "", "[", "{\"gateway_urls\":[\"http://127.0.0.1:1\"" };
	char path[64], domain[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sys_config(path, bad[i]);
		cr_assert_lt(agent_gateway_domain_discover(path, domain, sizeof(domain)), 0, "accepted '%s'", bad[i]);
		unlink(path);
	}
	cr_assert_eq(agent_gateway_domain_discover("/nonexistent/.sys-config.json", domain, sizeof(domain)),
		     -ENOENT);
}

/* The agent's gateway name: DSTACK_GATEWAY_DOMAIN wins over the host-shared config. */
Test(gateway_domain, the_configured_domain_comes_first)
{
	struct mesh_config cfg = { 0 };
	char name[REGISTRY_ENDPOINT_MAX + 1];

	snprintf(cfg.gateway_domain, sizeof(cfg.gateway_domain), "gw.example:8443");
	cr_assert_eq(agent_gateway_name(&cfg, "00112233445566778899aabbccddeeff00112233", 51831, name, sizeof(name)),
		     0);
	cr_assert_str_eq(name, "https://00112233445566778899aabbccddeeff00112233-51831.gw.example:8443");
}
