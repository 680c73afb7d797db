/* SPDX-License-Identifier: MIT */
/*
 * attest: the node's identity inside a dstack TEE. A client of the dstack guest agent
 * (Info, GetKey, GetQuote), the node's key schedule (docs/keys.md), and the off-chain
 * verification of dstack's KMS signature chains (a registry record's verification,
 * which builds on it, is registry_record_verify).
 * Fallible functions return 0 or a negative errno; verification returns a verdict.
 */
#ifndef DSTACK_P2P_ATTEST_H
#define DSTACK_P2P_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

/* Key paths carry the instance id: dstack derives keys per app, not per instance. */
#define ATTEST_NODE_KEY_PATH_PREFIX "dstack-p2p/node/"
#define ATTEST_NODE_KEY_PURPOSE     "dstack-p2p:node"
#define ATTEST_WG_KEY_PATH_PREFIX   "dstack-p2p/wireguard/"
#define ATTEST_WG_KEY_PURPOSE       "dstack-p2p:wireguard"
/* The one path WITHOUT an instance id: the cluster secret is the same on every member. */
#define ATTEST_CLUSTER_PSK_PATH "dstack-p2p/cluster-psk/v1"
#define ATTEST_CLUSTER_PSK_PURPOSE "dstack-p2p:cluster-psk"

/* Where the SDKs look for the agent, in order, after an explicit setting and the env. */
#define ATTEST_AGENT_ENV "DSTACK_SIMULATOR_ENDPOINT"

/* Longest path or purpose string we send to the agent. */
#define ATTEST_KEY_PATH_MAX 256
/* GetQuote takes at most 64 bytes of report data, zero padded, not hashed. */
#define ATTEST_REPORT_DATA_MAX 64

/* ---- the guest agent client ----------------------------------------------------------- */

/* One client per thread: it keeps the last call's error message. */
struct attest_client;

/*
 * A client for the agent at endpoint, resolved as the dstack SDKs do: endpoint when not
 * NULL, else $DSTACK_SIMULATOR_ENDPOINT, else the first of /var/run/dstack.sock,
 * /run/dstack.sock, /var/run/dstack/dstack.sock, /run/dstack/dstack.sock that exists
 * (the first one when none does, so the error names it). A value starting with http://
 * or https:// is a base URL, anything else a unix socket path, with or without the
 * "unix:" dstack-sim prints before it. -ENOMEM only.
 */
int attest_client_new(const char *endpoint, struct attest_client **out);
/*
 * Before any call: -EACCES when this process may not connect to the agent's socket (no
 * write permission), attest_client_error saying so; else 0 (a URL, or a socket it may
 * open or that does not exist: the first call says what is wrong then).
 */
int attest_client_check_access(struct attest_client *c);
void attest_client_free(struct attest_client *c);
/*
 * After a failed call: one line saying what went wrong, e.g.
 * "guest agent at unix:/var/run/dstack.sock: GetKey: reply field 'key': 31 bytes, expected 32".
 */
const char *attest_client_error(const struct attest_client *c);

/* Info. Measurements the agent left empty are all zero with has_* false. */
struct attest_info {
	uint8_t app_id[20];
	uint8_t instance_id[20];
	uint8_t device_id[32];
	uint8_t mr_aggregated[32];
	uint8_t os_image_hash[32];
	uint8_t compose_hash[32];
	bool has_device_id, has_mr_aggregated, has_os_image_hash, has_compose_hash;
	/* malloc'd, NUL-terminated; "" when the agent did not send them */
	char *app_name;
	char *app_cert;
	char *tcb_info;            /* a JSON document, as a string */
	char *key_provider_info;
	char *vm_config;
	char *cloud_vendor;
	char *cloud_product;
};

void attest_info_clear(struct attest_info *info);  /* frees the strings; accepts NULL */

/* signature_chain of a GetKey reply. kms_signature is absent with a local key provider. */
struct attest_kms_signatures {
	uint8_t app_signature[65];  /* chain[0] */
	uint8_t kms_signature[65];  /* chain[1] */
	bool has_kms_signature;
};

/* Quote, event log and the report data the agent says it used (GetQuote). */
struct attest_quote {
	uint8_t *quote;
	size_t quote_len;
	uint8_t report_data[ATTEST_REPORT_DATA_MAX];
	char *event_log;  /* JSON, as a string */
	char *vm_config;
};

void attest_quote_clear(struct attest_quote *q);  /* accepts NULL */

/*
 * The calls return 0, or: -ENOENT (no socket), -ECONNREFUSED, -ETIMEDOUT, -EIO (transport
 * failure or HTTP 5xx), -EINVAL (HTTP 4xx: the agent refused the request), -EBADMSG (a
 * malformed reply), -ENOMEM. attest_client_error() says which, in one line.
 */
int attest_get_info(struct attest_client *c, struct attest_info *info);
/*
 * GetKey(path, purpose, "secp256k1"). The 32-byte key lands only in key_out, which
 * should be locked memory (secret_alloc); the reply buffer is wiped.
 */
int attest_get_key(struct attest_client *c, const char *path, const char *purpose,
		   uint8_t key_out[static 32], struct attest_kms_signatures *chain);
int attest_get_quote(struct attest_client *c, const uint8_t *report_data, size_t len,
		     struct attest_quote *q);

/* ---- the node's identity (docs/keys.md) --------------------------------------------------- */

/* What the node may say about itself. No private key lives here. */
struct attest_identity {
	uint8_t app_id[20];            /* = the cluster contract's address */
	uint8_t instance_id[20];
	uint8_t node_pubkey[64];       /* x||y of the node key */
	uint8_t node_address[20];
	uint8_t app_pubkey[64];        /* recovered from chain[0] */
	struct attest_kms_signatures chain;
	uint8_t wg_public_key[32];
};

/* The node's private keys, only ever in locked memory: see attest_node_secrets_new. */
struct attest_node_secrets {
	uint8_t node_key[32];          /* signs registry records */
	uint8_t wg_private_key[32];    /* goes to the kernel and nowhere else */
};

/* Allocated with secret_alloc (locked, not dumped); free wipes it and accepts NULL. */
struct attest_node_secrets *attest_node_secrets_new(void);
void attest_node_secrets_free(struct attest_node_secrets *s);

/*
 * Info, then GetKey for the node key and the WireGuard key material (paths with the
 * instance id), then the WireGuard key pair. Deterministic: the same instance of the
 * same app gets the same keys on every boot. secrets may be NULL (public half only).
 */
int attest_load_identity(struct attest_client *c, struct attest_identity *id,
			 struct attest_node_secrets *secrets);

/* "<prefix><instance id as 40 lowercase hex digits>" into out. */
int attest_key_path(char *out, size_t out_len, const char *prefix,
		    const uint8_t instance_id[static 20]);

/*
 * WireGuard private key from GetKey material: keyed BLAKE2s-256 (key = material,
 * message = a domain-separation string), clamped for X25519 (docs/keys.md). The two
 * buffers may be the same.
 */
void attest_wireguard_key_from_material(const uint8_t material[static 32],
					uint8_t wg_private[static 32]);
/* Its public key: crypto's x25519_public_from_private. */

/* ---- the cluster secret and pairwise pre-shared keys (docs/keys.md) ---------------------- */

/*
 * GetKey(ATTEST_CLUSTER_PSK_PATH): known to exactly the instances the KMS admits as
 * this app (the cluster contract), and to no one else. Never logged, never sent.
 */
struct attest_cluster_secret {
	uint8_t key[32];
};

/* Allocated with secret_alloc (locked, not dumped); free wipes it and accepts NULL. */
struct attest_cluster_secret *attest_cluster_secret_new(void);
void attest_cluster_secret_free(struct attest_cluster_secret *s);

/* GetKey for the cluster secret into s (from attest_cluster_secret_new); attest_get_key's errors. */
int attest_load_cluster_secret(struct attest_client *c, struct attest_cluster_secret *s);

/*
 * The PSK epoch at unix_seconds: floor(unix_seconds / epoch_seconds). -EINVAL for a
 * negative time or an epoch length of 0.
 */
int attest_psk_epoch(int64_t unix_seconds, uint64_t epoch_seconds, uint64_t *epoch);

/*
 * The WireGuard pre-shared key of the pair (key_a, key_b) in epoch:
 * HKDF-SHA256(salt "dstack-p2p wireguard psk v1", ikm secret,
 *             info min(a, b) || max(a, b) || epoch as 8 bytes big-endian), 32 bytes.
 * The same whichever end computes it. psk should be locked memory. -EINVAL when the two
 * public keys are equal (a node has no pair with itself).
 */
int attest_pair_psk(const struct attest_cluster_secret *s, const uint8_t key_a[static 32],
		    const uint8_t key_b[static 32], uint64_t epoch, uint8_t psk[static 32]);

/* ---- dstack's key schedule, KMS and agent side (the simulator and tests use it) ---------- */

/* app_sk = HKDF-SHA256(salt "RATLS", ikm kms_root_sk, info app_id || "app-key") */
int attest_derive_app_key(const uint8_t kms_root_sk[static 32], const uint8_t app_id[static 20],
			  uint8_t app_sk[static 32]);
/* key = HKDF-SHA256(salt "RATLS", ikm app_sk, info path); the purpose plays no part. */
int attest_derive_path_key(const uint8_t app_sk[static 32], const char *path,
			   uint8_t key[static 32]);
/* keccak256(purpose ":" lowercase_hex(compressed key)): what chain[0] signs. */
void attest_app_message_digest(const char *purpose, const uint8_t key_pub[static 64],
			       uint8_t digest[static 32]);
/* keccak256("dstack-kms-issued:" || app_id || compressed app key): what chain[1] signs. */
void attest_kms_message_digest(const uint8_t app_id[static 20], const uint8_t app_pub[static 64],
			       uint8_t digest[static 32]);

/* ---- verification -------------------------------------------------------------------------- */

enum attest_verdict {
	ATTEST_VALID = 0,
	ATTEST_MALFORMED,            /* a key that is not a curve point, a signature with bad v */
	ATTEST_WRONG_PURPOSE,        /* the key was issued for another purpose */
	ATTEST_WRONG_APP_ID,         /* the key was issued to another app */
	ATTEST_BAD_APP_SIGNATURE,    /* chain[0] recovers no key */
	ATTEST_APP_KEY_MISMATCH,     /* chain[0] was signed by another key than the claimed app key */
	ATTEST_NO_KMS_SIGNATURE,     /* chain[1] empty: a local key provider, no KMS vouches */
	ATTEST_BAD_KMS_SIGNATURE,    /* chain[1] recovers no key */
	ATTEST_WRONG_ROOT,           /* chain[1] was signed by another key than the KMS root */
	ATTEST_BAD_NODE_SIGNATURE,   /* the record signature recovers no key, or another key */
};

const char *attest_verdict_str(enum attest_verdict v);

/* A signature chain as presented: the key, what it claims, and the signatures. */
struct attest_key_claim {
	const uint8_t *key_pub;       /* 64 bytes x||y: the derived (node) key */
	const char *purpose;          /* the purpose it was requested with */
	const uint8_t *app_id;        /* 20 bytes: the app it claims to belong to */
	const uint8_t *app_pub;       /* 64 bytes, or NULL when only recovered */
	const struct attest_kms_signatures *sigs;
};

/* What the verifier requires. */
struct attest_expect {
	const char *purpose;
	const uint8_t *app_id;        /* 20 bytes */
	const uint8_t *kms_root;      /* 20-byte address */
};

/*
 * Recover the app key from chain[0] over the claimed purpose and key, rebuild the KMS
 * message for the claimed app id, recover the root and compare it with the expected
 * root; the claimed purpose and app id must be the expected ones. ECDSA recovery cannot
 * tell which signed byte differs: a signature over another purpose or app id shows up
 * as APP_KEY_MISMATCH or WRONG_ROOT. app_pub_out (64 bytes, may be NULL) gets the
 * recovered app key.
 */
enum attest_verdict attest_verify_kms_chain(const struct attest_key_claim *chain,
					const struct attest_expect *expect,
					uint8_t *app_pub_out);

/*
 * The KMS root that issued our own keys: recovered from the KMS signature of our GetKey
 * reply over our app id and app key (the app key itself recovered from chain[0] by
 * attest_load_identity). The only trust anchor that does not come from the RPC.
 * -ENOKEY without a KMS signature (a local key provider), -EBADMSG when it recovers nothing.
 */
int attest_identity_kms_root(const struct attest_identity *id, uint8_t root[static 20]);

#endif
