/* SPDX-License-Identifier: MIT */
/* libFuzzer: the agent's config file (NAME=VALUE lines), read by mesh_config_load_stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "mesh/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mesh_config cfg;
	struct err_detail why;
	FILE *f;

	if (size == 0)
		return 0;  /* fmemopen refuses an empty buffer */
	f = fmemopen((void *)data, size, "r");
	if (!f)
		abort();
	mesh_config_init(&cfg);
	if (mesh_config_load_stream(&cfg, f, "fuzz", &why) == 0)
		mesh_config_validate(&cfg, &why);
	fclose(f);
	return 0;
}
