/* SPDX-License-Identifier: MIT */
/* common: Unix stream socket helpers shared by the control socket's server and its clients. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common.h"

int unix_sockaddr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

/*
 * Whole buffer or an error. The socket's send timeout bounds each send, the deadline
 * the whole: a peer that reads a byte now and then must not hold the caller.
 */
int unix_send_all(int fd, const void *data, size_t len, uint64_t deadline)
{
	const char *p = data;

	while (len) {
		ssize_t w;

		if (now_ms() > deadline)
			return -ETIMEDOUT;
		w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}
