/* SPDX-License-Identifier: MIT */
/*
 * host:port, the one splitter: "host:port", "[v6]:port", and (when the caller allows)
 * "host", "[v6]", ":port". Shape only: whether the host may be a name (DNS), must be a
 * numeric address, or is limited to a character set is the caller's rule.
 */
#include <errno.h>
#include <string.h>

#include "common/common.h"

#define PORT_DIGITS_MAX 5

/* The port's digits [p, end): 1 to 5 decimal digits, at most 65535; 0 only when allowed. */
static int port_parse(const char *p, const char *end, unsigned flags, uint16_t *port)
{
	unsigned long v = 0;

	if (p == end || end - p > PORT_DIGITS_MAX)
		return -ERANGE;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -ERANGE;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535 || (!v && !(flags & HOSTPORT_PORT_ZERO)))
		return -ERANGE;
	*port = (uint16_t)v;
	return 0;
}

/* Where the host ends and its colon (or NULL) in an unbracketed s[0..len). */
static const char *bare_colon(const char *s, size_t len, unsigned flags)
{
	if (!(flags & HOSTPORT_LAST_COLON))
		return memchr(s, ':', len);
	for (size_t i = len; i > 0; i--)
		if (s[i - 1] == ':')
			return s + i - 1;
	return NULL;
}

int hostport_split(const char *s, size_t len, unsigned flags, struct hostport *out)
{
	const char *end = s + len, *host = s, *host_end, *colon;
	size_t hlen;

	out->host[0] = '\0';
	out->bracketed = false;
	if (len && s[0] == '[') {
		host = s + 1;
		host_end = memchr(host, ']', len - 1);
		if (!host_end || (host_end + 1 < end && host_end[1] != ':'))
			return -EINVAL;
		colon = host_end + 1 < end ? host_end + 1 : NULL;
		out->bracketed = true;
	} else {
		colon = bare_colon(s, len, flags);
		host_end = colon ? colon : end;
	}
	if (!colon && !(flags & HOSTPORT_PORT_OPTIONAL))
		return -ENOENT;
	hlen = (size_t)(host_end - host);
	if (!hlen && !(flags & HOSTPORT_HOST_EMPTY))
		return -EDESTADDRREQ;
	if (hlen >= sizeof(out->host))
		return -ENAMETOOLONG;
	if (memchr(host, '\0', hlen))
		return -EINVAL;
	if (colon) {
		int r = port_parse(colon + 1, end, flags, &out->port);

		if (r < 0)
			return r;
	}
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	return 0;
}
