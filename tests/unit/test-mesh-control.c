/* SPDX-License-Identifier: MIT */
/* Unit tests of the control socket and the public C API over it, with a scripted agent side. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "api/dstack-p2p.h"
#include "api/internal.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"

#define CONTRACT "0x5fbdb2315678afecb367f032d93f642f64180aa3"

/* The agent side: serves whatever document `doc` holds, broadcasts on request. */
static struct control_server server;
static pthread_t server_thread;
static atomic_bool server_stop;
static atomic_bool broadcast_pending;
static pthread_mutex_t doc_lock = PTHREAD_MUTEX_INITIALIZER;
static char doc[1024];
static char socket_path[64];

static void set_doc(const char *registered, const char *peers)
{
	pthread_mutex_lock(&doc_lock);
	snprintf(doc, sizeof(doc), "{\"registered\":%s,\"contract\":\"%s\",\"mode\":\"wireguard\",\"peers\":%s}",
		 registered, CONTRACT, peers);
	pthread_mutex_unlock(&doc_lock);
}

static int reply(void *ctx, const struct control_request *req, struct buf *out)
{
	int r;

	(void)ctx;
	if (strcmp(req->name, "peers"))
		return -ENOENT;
	pthread_mutex_lock(&doc_lock);
	r = buf_printf(out, "%s", doc);
	pthread_mutex_unlock(&doc_lock);
	return r;
}

static void *serve(void *arg)
{
	(void)arg;
	while (!server_stop) {
		struct pollfd pfd = { .fd = server.fd, .events = POLLIN };

		if (poll(&pfd, 1, 20) > 0)
			control_accept(&server, reply, NULL);
		if (broadcast_pending) {
			pthread_mutex_lock(&doc_lock);
			control_broadcast(&server, doc);
			pthread_mutex_unlock(&doc_lock);
			broadcast_pending = false;
		}
	}
	return NULL;
}

static void start_server(void)
{
	snprintf(socket_path, sizeof(socket_path), "/tmp/test-mesh-control-%d.sock", (int)getpid());
	set_doc("true", "[\"10.0.1.2\",\"10.0.1.3\"]");
	cr_assert_eq(control_listen(&server, socket_path), 0);
	setenv("DSTACK_P2P_CONTROL", socket_path, 1);
	server_stop = false;
	cr_assert_eq(pthread_create(&server_thread, NULL, serve, NULL), 0);
}

static void stop_server(void)
{
	server_stop = true;
	pthread_join(server_thread, NULL);
	control_close(&server);
}

TestSuite(mesh_control, .init = start_server, .fini = stop_server);

Test(mesh_control, query_and_unknown_request)
{
	struct buf b;

	buf_init(&b, 4096);
	cr_assert_eq(api_control_query(socket_path, "peers", &b, 2000), 0);
	cr_assert(strstr((char *)b.data, "\"10.0.1.3\""));
	buf_reset(&b);
	cr_assert_eq(api_control_query(socket_path, "launch-missiles", &b, 2000), 0);
	cr_assert(strstr((char *)b.data, "unknown request"));
	buf_clear(&b);
	cr_assert_eq(control_listen(&(struct control_server){ 0 }, socket_path), -EADDRINUSE,
		     "a second agent must not steal a live socket");
}

/* Protocol v1: the JSON form, an unknown version and malformed requests get error objects. */
Test(mesh_control, versioned_requests_and_error_objects)
{
	struct buf b;

	buf_init(&b, 4096);
	cr_assert_eq(api_control_query(socket_path, "{\"version\":1,\"request\":\"peers\"}", &b, 2000), 0);
	cr_assert(strstr((char *)b.data, "\"10.0.1.3\""), "%s", (char *)b.data);
	buf_reset(&b);
	cr_assert_eq(api_control_query(socket_path, "{\"version\":2,\"request\":\"peers\"}", &b, 2000), 0);
	cr_assert(strstr((char *)b.data, "\"code\":\"unsupported_version\""), "%s", (char *)b.data);
	cr_assert(strstr((char *)b.data, "\"supported\":[1]"), "%s", (char *)b.data);
	cr_assert(strstr((char *)b.data, "asked for version 2"), "%s", (char *)b.data);
	buf_reset(&b);
	cr_assert_eq(api_control_query(socket_path, "{\"request\":\"peers\"}", &b, 2000), 0);
	cr_assert(strstr((char *)b.data, "\"code\":\"bad_request\""), "%s", (char *)b.data);
	buf_reset(&b);
	cr_assert_eq(api_control_query(socket_path, "peers please", &b, 2000), 0);
	cr_assert(strstr((char *)b.data, "\"code\":\"bad_request\""), "%s", (char *)b.data);
	buf_clear(&b);
	/* The server counts what it served (each reply is sent after the count): the metrics' source. */
	cr_assert_eq(control_stats(&server).requests, 4);
	cr_assert_eq(control_stats(&server).malformed, 2);
	cr_assert_eq(control_stats(&server).watchers, 0);
}

Test(mesh_control, request_parse)
{
	struct control_request req;
	struct err_detail why;
	const char *vote = "{\"version\":1,\"request\":\"leader.vote\",\"target\":3,\"no_confidence\":false}";
	/* Lengths from strlen: hand-counted ones read past the literals (ASan, make check). */
	const char *bad_target = "{\"version\":1,\"request\":\"x\",\"target\":255}";
	const char *bad_name = "{\"version\":1,\"request\":\"A B\"}";

	cr_assert_eq(control_request_parse(vote, strlen(vote), &req, &why), 0);
	cr_assert_str_eq(req.name, "leader.vote");
	cr_assert_eq(req.target, 3);
	cr_assert_eq(req.no_confidence, false);
	cr_assert_eq(control_request_parse(bad_target, strlen(bad_target), &req, &why), -EINVAL);
	cr_assert(strstr(why.text, "\"target\""), "%s", why.text);
	cr_assert_eq(control_request_parse(bad_name, strlen(bad_name), &req, &why), -EINVAL);
	cr_assert_eq(control_request_parse("status", 6, &req, &why), 0);
	cr_assert_eq(req.version, 1u);
	cr_assert_eq(control_request_parse("", 0, &req, &why), -EINVAL);
}

/* Read one line from fd (bounded by its receive timeout) into line. */
static void read_line_from(int fd, char *line, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		ssize_t got = recv(fd, line + n, 1, 0);

		if (got <= 0 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
}

/* The 17th watcher is told why it is refused, in a JSON document, not just closed. */
Test(mesh_control, a_refused_watcher_gets_an_error_document)
{
	struct timeval tv = { .tv_sec = 3 };
	int fds[CONTROL_MAX_WATCHERS + 1];
	char line[256];

	for (int i = 0; i <= CONTROL_MAX_WATCHERS; i++) {
		fds[i] = api_control_watch(socket_path);
		cr_assert_geq(fds[i], 0, "watcher %d", i);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		read_line_from(fds[i], line, sizeof(line));
		if (i < CONTROL_MAX_WATCHERS)
			cr_assert(strstr(line, "\"peers\""), "watcher %d: %s", i, line);
		else
			cr_assert(strstr(line, "\"code\":\"busy\"") && strstr(line, "too many watchers"), "refused watcher: '%s'", line);
	}
	for (int i = 0; i <= CONTROL_MAX_WATCHERS; i++)
		close(fds[i]);
}

/* An agent too busy to accept (its backlog full) still owns its socket. */
Test(mesh_control, a_full_backlog_is_not_a_dead_agent)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int busy, clients[64], n = 0;
	struct stat st;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "/tmp/test-mesh-busy-%d.sock", (int)getpid());
	unlink(sun.sun_path);
	busy = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(busy >= 0);
	cr_assert_eq(bind(busy, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(listen(busy, 0), 0);
	while (n < 64) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			cr_assert_eq(errno, EAGAIN, "connect: %s", strerror(errno));
			close(fd);
			break;
		}
		clients[n++] = fd;
	}
	cr_assert_lt(n, 64, "the backlog never filled");
	cr_assert_eq(control_listen(&(struct control_server){ 0 }, sun.sun_path), -EADDRINUSE);
	cr_assert_eq(stat(sun.sun_path, &st), 0, "the busy agent's socket was removed");
	while (n > 0)
		close(clients[--n]);
	close(busy);
	unlink(sun.sun_path);
}

/* A client that sends its request a byte at a time, until the server hangs up. */
static void *drip_request(void *arg)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)arg;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", socket_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return NULL;
	for (int i = 0; i < 60; i++) {
		struct timespec ts = { .tv_nsec = 150 * 1000000L };

		if (send(fd, "a", 1, MSG_NOSIGNAL) < 0)
			break;
		nanosleep(&ts, NULL);
	}
	close(fd);
	return NULL;
}

Test(mesh_control, a_dripping_client_cannot_hold_the_server)
{
	struct timespec ts = { .tv_nsec = 100 * 1000000L };
	pthread_t dripper;
	uint64_t start;
	struct buf b;

	cr_assert_eq(pthread_create(&dripper, NULL, drip_request, NULL), 0);
	nanosleep(&ts, NULL);
	buf_init(&b, 4096);
	start = now_ms();
	cr_assert_eq(api_control_query(socket_path, "peers", &b, 5000), 0);
	/* 60 bytes at 150 ms would hold it 9 s; a client gets about a second. */
	cr_assert_lt(now_ms() - start, 2500, "the next client waited %llu ms",
		     (unsigned long long)(now_ms() - start));
	buf_clear(&b);
	pthread_join(dripper, NULL);
}

Test(mesh_control, api_get_peers_and_register)
{
	struct dstack_p2p *p2p;
	char **peers;
	size_t n;

	cr_assert_eq(dstack_p2p_open(&p2p, CONTRACT, "wireguard"), 0);
	cr_assert_eq(dstack_p2p_register(p2p, 1000), 0);
	cr_assert_eq(dstack_p2p_get_peers(p2p, &peers, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(peers[0], "10.0.1.2");
	cr_assert_str_eq(peers[1], "10.0.1.3");
	dstack_p2p_free_peers(peers, n);
	dstack_p2p_close(p2p);

	set_doc("false", "[]");
	cr_assert_eq(dstack_p2p_open(&p2p, NULL, NULL), 0);
	cr_assert_eq(dstack_p2p_register(p2p, 300), -ETIMEDOUT);
	cr_assert_eq(dstack_p2p_get_peers(p2p, &peers, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(peers);
	dstack_p2p_close(p2p);
}

Test(mesh_control, api_rejects_mismatch_and_garbage)
{
	struct dstack_p2p *p2p;
	char **peers;
	size_t n;

	cr_assert_eq(dstack_p2p_open(&p2p, "0x1234", "wireguard"), -EINVAL);
	cr_assert_eq(dstack_p2p_open(&p2p, CONTRACT, "carrier-pigeon"), -EINVAL);
	cr_assert_eq(dstack_p2p_open(&p2p, "0x0000000000000000000000000000000000000001", NULL), 0);
	cr_assert_eq(dstack_p2p_get_peers(p2p, &peers, &n), -EXDEV);
	dstack_p2p_close(p2p);

	cr_assert_eq(dstack_p2p_open(&p2p, NULL, "tls"), 0);
	cr_assert_eq(dstack_p2p_get_peers(p2p, &peers, &n), -EXDEV, "the agent runs wireguard");
	dstack_p2p_close(p2p);

	pthread_mutex_lock(&doc_lock);
	snprintf(doc, sizeof(doc), "{\"registered\":true,\"peers\":[1,2,{}]}");
	pthread_mutex_unlock(&doc_lock);
	cr_assert_eq(dstack_p2p_open(&p2p, NULL, NULL), 0);
	cr_assert_eq(dstack_p2p_get_peers(p2p, &peers, &n), -EBADMSG);
	dstack_p2p_close(p2p);
}

/* What the monitor callback saw, for the test thread. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen[256];
static int seen_calls;

static void on_change(const char *const *peers, size_t n, void *user)
{
	(void)user;
	pthread_mutex_lock(&seen_lock);
	seen[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s ", peers[i]);
	seen_calls++;
	pthread_mutex_unlock(&seen_lock);
}

static bool wait_seen(const char *want, int calls)
{
	for (int i = 0; i < 200; i++) {
		bool ok;

		pthread_mutex_lock(&seen_lock);
		ok = !strcmp(seen, want) && seen_calls == calls;
		pthread_mutex_unlock(&seen_lock);
		if (ok)
			return true;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000L }, NULL);
	}
	return false;
}

Test(mesh_control, api_monitor_sees_every_change_once)
{
	struct dstack_p2p *p2p;

	cr_assert_eq(dstack_p2p_open(&p2p, CONTRACT, "wireguard"), 0);
	cr_assert_eq(dstack_p2p_monitor_peers(p2p, on_change, NULL), 0);
	cr_assert_eq(dstack_p2p_monitor_peers(p2p, on_change, NULL), -EBUSY);
	cr_assert(wait_seen("10.0.1.2 10.0.1.3 ", 1), "the current list first");

	set_doc("true", "[\"10.0.1.2\",\"10.0.1.3\",\"10.0.1.4\"]");
	broadcast_pending = true;
	cr_assert(wait_seen("10.0.1.2 10.0.1.3 10.0.1.4 ", 2), "then the change");

	broadcast_pending = true;  /* the same list again is not a change */
	nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000000L }, NULL);
	cr_assert(wait_seen("10.0.1.2 10.0.1.3 10.0.1.4 ", 2));
	dstack_p2p_close(p2p);  /* joins the thread while it blocks in recv */
}
