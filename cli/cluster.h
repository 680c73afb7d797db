/* SPDX-License-Identifier: MIT */
/*
 * What `dstack-p2p cluster`, `relayer` and `chain` share on the command line: the paying
 * key's options (a key file or an encrypted keystore, never the command line; loaded by
 * ops_key_load) and where the data files are. What they do with the contract is ops/'s.
 */
#ifndef DSTACK_P2P_CLI_CLUSTER_H
#define DSTACK_P2P_CLI_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/chain.h"
#include "common/common.h"
#include "ops/ops.h"

struct cluster_key_opts {
	struct ops_key_source src;
	bool from_cli;              /* a key was named on the command line */
};

/* --key-file or --keystore (keystore true) PATH: a key named on the command line replaces
 * the one from the environment (both of its kinds), a later one an earlier one. */
void cluster_key_opt_set(struct cluster_key_opts *o, bool keystore, const char *path);

/* The keystore's password typed on the terminal without echo (an ops_password_fn). */
int cluster_ask_password(char *pw, size_t max, size_t *len);

/* ops_key_load with the terminal for a password; prints what is wrong as
 * "dstack-p2p <cmd>: ..."; -EINVAL for a configuration mistake. */
int cluster_load_key(const struct ops_key_source *src, uint8_t **sk, uint8_t addr[static 20]);

/*
 * Where the files of a data folder are (probe: one file it must hold): in_checkout (relative
 * to the checkout's top) when this binary was built in a checkout; else in_share under
 * bin/../share/dstack-p2p/ beside this binary (an installed tree, also under a DESTDIR or a
 * moved prefix); else installed (the path make install was given, compiled in). The folder
 * is written to out (installed when none holds probe); -ENOENT, -ENAMETOOLONG.
 */
int cluster_find_data(const char *installed, const char *in_share, const char *in_checkout,
		      const char *probe, char *out, size_t max);

#endif
