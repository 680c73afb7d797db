/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD observer for the netlink benchmark: the same measure of "the call" for wg(8)
 * and for our tool, neither of which it changes. It notes the moment the process opens
 * its first netlink socket or connects to a UAPI socket (a path under .../wireguard/)
 * and prints "call_ms=T" on stderr when the process exits: the configuration exchange
 * with the kernel or wireguard-go, the diff and the output after it, without process
 * start-up and configuration-file parsing, which come before.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

static struct timespec start;
static int started;

static void mark(void)
{
	if (!started) {
		clock_gettime(CLOCK_MONOTONIC, &start);
		started = 1;
	}
}

EXPORT int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);

	if (!real)
		real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	if (domain == AF_NETLINK)
		mark();
	return real(domain, type, protocol);
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);
	const struct sockaddr_un *un = (const struct sockaddr_un *)sa;

	if (!real)
		real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
	if (sa && sa->sa_family == AF_UNIX && len > sizeof(sa_family_t) &&
	    strstr(un->sun_path, "/wireguard/"))
		mark();
	return real(fd, sa, len);
}

__attribute__((destructor)) static void report(void)
{
	struct timespec end;

	if (!started)
		return;
	clock_gettime(CLOCK_MONOTONIC, &end);
	fprintf(stderr, "call_ms=%.2f\n", (double)(end.tv_sec - start.tv_sec) * 1e3 +
		(double)(end.tv_nsec - start.tv_nsec) / 1e6);
}
