/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for common/hostport.c, the one host:port splitter, and its callers
 * that never resolve: the WireGuard endpoint (netlink/wg-text.c) and the WebSocket URL.
 * The first byte picks the flags; the rest is the text, not NUL-terminated for the
 * splitter (ASan catches a read past len).
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "net/net.h"
#include "netlink/netlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct hostport *hp, unsigned flags)
{
	size_t n = strnlen(hp->host, sizeof(hp->host));

	if (n == sizeof(hp->host) || (!n && !(flags & HOSTPORT_HOST_EMPTY)))
		abort();
	if (!hp->port && !(flags & HOSTPORT_PORT_ZERO))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hostport hp = { .port = 7 };
	union wg_endpoint ep;
	struct ws_url u;
	unsigned flags;
	char *text;

	if (size < 1 || size > 1024)
		return 0;
	flags = data[0] & 0xf;
	if (hostport_split((const char *)data + 1, size - 1, flags, &hp) == 0)
		check(&hp, flags);
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	(void)wg_endpoint_parse(&ep, text, NULL);
	if (ws_url_parse(text, &u) == 0 && (!u.host[0] || !u.port))
		abort();
	free(text);
	return 0;
}
