/* SPDX-License-Identifier: MIT */
/*
 * What `dstack-p2p cluster` and `dstack-p2p relayer` share: the paying key (a key file or
 * an encrypted keystore, never the command line), amounts in wei with units, the fee caps,
 * contract calls pinned to one block, the events of the cluster contract by name, and the
 * parsers (amounts, addresses, words) and data-file lookups both use.
 */
#ifndef DSTACK_P2P_CLI_CLUSTER_H
#define DSTACK_P2P_CLI_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/chain.h"
#include "common/common.h"

/* Defaults of the caps: 100 gwei per gas, 0.05 ether per command. */
#define CLUSTER_DEFAULT_MAX_FEE 100000000000ull
#define CLUSTER_DEFAULT_MAX_COST 50000000000000000ull

struct cluster_key_opts {
	const char *key_file;       /* hex secret, 0x optional */
	const char *keystore;       /* Web3 Secret Storage v3 JSON */
	const char *password_file;  /* the keystore's password; else asked on the terminal */
	bool from_cli;              /* a key was named on the command line */
};

/* --key-file or --keystore (keystore true) PATH: a key named on the command line replaces
 * the one from the environment (both of its kinds), a later one an earlier one. */
void cluster_key_opt_set(struct cluster_key_opts *o, bool keystore, const char *path);

/* Load the paying key into locked memory (*sk: secret_free(*sk, 32)) and its address.
 * Prints what is wrong as "dstack-p2p <cmd>: ..."; -EINVAL for a configuration mistake. */
int cluster_load_key(const struct cluster_key_opts *o, uint8_t **sk, uint8_t addr[static 20]);

/* "1.5gwei", "0.01ether", "12wei" or a plain integer of wei; -EINVAL / -ERANGE (> 2^64-1). */
int cluster_parse_wei(const char *s, uint64_t *wei);
/* Decimal or 0x-hex, no sign. */
int cluster_parse_u64(const char *s, uint64_t *out);
int cluster_parse_address(const char *s, uint8_t out[static 20]);
int cluster_parse_bytes32(const char *s, uint8_t out[static 32]);

/* Read up to max bytes of a file into b (NUL-terminated). */
int cluster_read_file(const char *path, struct buf *b, size_t max);

/*
 * Where the files of a data folder are (probe: one file it must hold): in_checkout (relative
 * to the checkout's top) when this binary was built in a checkout; else in_share under
 * bin/../share/dstack-p2p/ beside this binary (an installed tree, also under a DESTDIR or a
 * moved prefix); else installed (the path make install was given, compiled in). The folder
 * is written to out (installed when none holds probe); -ENOENT, -ENAMETOOLONG.
 */
int cluster_find_data(const char *installed, const char *in_share, const char *in_checkout,
		      const char *probe, char *out, size_t max);

/* One eth_call of a batch: calldata in, return data or failure out. */
struct cluster_view {
	struct buf data;
	struct buf out;
	bool ok;
};

void cluster_views_init(struct cluster_view *v, size_t n);
void cluster_views_free(struct cluster_view *v, size_t n);
/* Run the calls to `to` at block tag in batches; -errno only when the RPC fails as a whole. */
int cluster_views_run(struct eth_rpc *rpc, const uint8_t to[static 20], const char *tag,
		      struct cluster_view *v, size_t n);
/* Calldata of sig with one static argument word (NULL: none). */
int cluster_calldata_word(struct buf *b, const char *sig, const uint8_t *word);

/* "Name(arg=value, ...)" of a log of the cluster contract, the KMS or OpenZeppelin's ERC721 and
 * Ownable2Step; "unknown event 0x<topic0>" otherwise. JSON: {"event":..,"args":{..}} when json. */
int cluster_describe_log(const struct eth_log *log, bool json, struct buf *out);

#endif
