/* SPDX-License-Identifier: MIT */
/* libFuzzer: what a local client sends the agent's control socket (one request line). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/common.h"
#include "mesh/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int reply(void *ctx, const struct control_request *req, struct buf *out)
{
	(void)ctx;
	if (!strcmp(req->name, "peers"))
		return buf_printf(out, "{\"registered\":true,\"peers\":[\"10.0.1.2\"]}");
	if (!strcmp(req->name, "status"))
		return buf_printf(out, "{\"instance_id\":\"%s\"}", req->name);
	return -ENOENT;
}

static struct control_server server = { .fd = -1 };

/* The socket file goes when the fuzzer exits. */
static void remove_socket(void)
{
	control_close(&server);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char sink[4096];
	int fd;

	if (size > 4096)
		return 0;  /* more than the socket buffer; the server reads at most CONTROL_REQUEST_MAX bytes anyway */
	if (server.fd < 0) {
		char path[64];

		snprintf(path, sizeof(path), "/tmp/fuzz-control-%d.sock", (int)getpid());
		if (control_listen(&server, path) < 0)
			abort();
		atexit(remove_socket);
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", server.path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		abort();
	if (size && send(fd, data, size, MSG_NOSIGNAL) < 0)
		abort();
	shutdown(fd, SHUT_WR);
	control_accept(&server, reply, NULL);
	control_broadcast(&server, "{\"peers\":[]}");
	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	close(fd);
	/* Watchers would pile up across inputs: start each input with none. */
	for (size_t i = 0; i < ARRAY_SIZE(server.watchers); i++) {
		if (server.watchers[i] >= 0)
			close(server.watchers[i]);
		server.watchers[i] = -1;
	}
	return 0;
}
