/* SPDX-License-Identifier: MIT */
/* libFuzzer: replies of a userspace WireGuard to "get=1" on its UAPI socket. */
#include <stdint.h>
#include <stdlib.h>

#include "netlink/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_device *dev = calloc(1, sizeof(*dev));

	if (!dev)
		abort();
	uapi_get_reply_parse((const char *)data, size, dev, NULL);
	wg_device_free(dev);
	return 0;
}
