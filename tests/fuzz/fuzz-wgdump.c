/* SPDX-License-Identifier: MIT */
/* libFuzzer: WG_CMD_GET_DEVICE dump parts, as a sequence of netlink messages. */
#include <libmnl/libmnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netlink/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct wg_device *dev = calloc(1, sizeof(*dev));
	int left = size > (size_t)INT32_MAX ? INT32_MAX : (int)size;
	void *copy = malloc(size ? size : 1);

	if (!devnull)
		devnull = fopen("/dev/null", "w");
	if (!dev || !copy)
		abort();
	/* An aligned copy, as a receive buffer would be. */
	memcpy(copy, data, size);
	for (const struct nlmsghdr *nlh = copy; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
		if (wg_dump_msg_parse(nlh, (size_t)left, dev, NULL) < 0)
			break;
	if (devnull)
		wg_device_print_dump(devnull, dev);
	wg_device_free(dev);
	free(copy);
	return 0;
}
