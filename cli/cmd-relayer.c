/* SPDX-License-Identifier: MIT */
#include "cli/cli.h"
int cmd_relayer(int argc, char **argv) { (void)argc; (void)argv; return 2; }
