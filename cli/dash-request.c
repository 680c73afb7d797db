/* SPDX-License-Identifier: MIT */
/* Routing of the dashboard's requests: exact paths only, so no request names a file. */
#include <string.h>
#include <strings.h>

#include "cli/dash-request.h"
#include "common/common.h"
#include "net/net.h"

static const struct {
	const char *path;
	enum dash_route route;
	const char *file;
	const char *type;
} routes[] = {
	{ "/", DASH_FILE, "index.html", "text/html; charset=utf-8" },
	{ "/index.html", DASH_FILE, "index.html", "text/html; charset=utf-8" },
	{ "/app.js", DASH_FILE, "app.js", "text/javascript; charset=utf-8" },
	{ "/style.css", DASH_FILE, "style.css", "text/css; charset=utf-8" },
	{ "/api/status", DASH_STATUS, NULL, "application/json" },
	{ "/api/lists", DASH_LISTS, NULL, "application/json" },
	{ "/api/abi", DASH_ABI, NULL, "application/json" },
	{ "/api/events", DASH_EVENTS, NULL, "text/event-stream" },
};

/* Up to 18 decimal digits; "" is 0. */
static int parse_event_id(const char *s, uint64_t *out)
{
	size_t n = strlen(s);

	*out = 0;
	if (n > 18)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*out = *out * 10 + (uint64_t)(s[i] - '0');
	}
	return 0;
}

/* "localhost", "127.0.0.1", "[::1]", each with an optional ":port". */
static bool host_is_loopback(const char *host)
{
	struct hostport hp;
	size_t n;

	if (hostport_split(host, strlen(host), HOSTPORT_PORT_OPTIONAL | HOSTPORT_PORT_ZERO, &hp) < 0)
		return false;
	if (hp.bracketed)
		return !strcmp(hp.host, "::1");
	n = strlen(hp.host);
	if (!strcasecmp(hp.host, "localhost"))
		return true;
	if (n < 7 || strncmp(hp.host, "127.", 4))
		return false;
	return strspn(hp.host + 4, ".0123456789") == n - 4;
}

int dash_route_request(const struct http_request *req, bool loopback_only, struct dash_target *t)
{
	size_t plen = strcspn(req->path, "?");

	memset(t, 0, sizeof(*t));
	if (strcmp(req->method, "GET"))
		return 405;
	if (loopback_only && !host_is_loopback(req->host))
		return 403;
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		if (strlen(routes[i].path) != plen || memcmp(routes[i].path, req->path, plen))
			continue;
		t->route = routes[i].route;
		t->file = routes[i].file;
		t->type = routes[i].type;
		if (t->route == DASH_EVENTS && parse_event_id(req->last_event_id, &t->after) < 0)
			return 400;
		return 0;
	}
	return 404;
}
