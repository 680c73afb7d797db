/* SPDX-License-Identifier: MIT */
/* libFuzzer: rtnetlink route and link replies, as rtnl_route_mtu reads them. */
#include <libmnl/libmnl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netlink/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rtnl_mtu_reply reply = { 0 };
	int left = size > (size_t)INT32_MAX ? INT32_MAX : (int)size;
	void *copy = malloc(size ? size : 1);

	if (!copy)
		abort();
	/* An aligned copy, as a receive buffer would be. */
	memcpy(copy, data, size);
	for (const struct nlmsghdr *nlh = copy; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
		if (rtnl_mtu_msg_parse(nlh, (size_t)left, &reply, NULL) < 0)
			break;
	free(copy);
	return 0;
}
