/* SPDX-License-Identifier: MIT */
/*
 * Benchmark of chain/ against a real registry on anvil: fill it with 254 signed peers,
 * then time the ABI decode of getPeers(), count round trips per idle poll of the
 * reader, and measure the resident memory of a reader holding the 254 peers.
 * Usage: chain-registry RPC CONTRACT   (env OWNER_KEY, KMS_KEY: 0x-hex secrets)
 *        chain-registry --fill N RPC CONTRACT   only register peers until N are registered
 *        (bench/agent.sh: synthetic, verifiable peers beside one real agent)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/internal.h"

#define PEERS 254
#define DECODE_ROUNDS 200
#define IDLE_POLLS 50

static void die(const char *what, struct eth_rpc *rpc, int r)
{
	fprintf(stderr, "chain-registry: %s: %s\n", what, rpc && eth_rpc_error(rpc)[0]
			? eth_rpc_error(rpc) : errstr(r));
	exit(1);
}

static void key_from_env(const char *name, uint8_t sk[static 32])
{
	const char *hex = getenv(name);

	if (!hex || hex_decode_exact(sk, 32, hex, strlen(hex)) < 0) {
		fprintf(stderr, "chain-registry: $%s must hold a 32-byte hex key\n", name);
		exit(2);
	}
}

/* A secret derived from a label and an index, so every run builds the same cluster. */
static void derive(uint8_t out[static 32], const char *label, unsigned i)
{
	char s[64];

	snprintf(s, sizeof(s), "%s-%u", label, i);
	keccak256(out, s, strlen(s));
}

static void send_call(struct eth_rpc *rpc, uint64_t chain_id, const uint8_t sk[static 32],
		      const uint8_t contract[static 20], const struct buf *calldata, const char *what)
{
	struct eth_receipt rc;
	struct eth_send_opts opts = { .chain_id = chain_id, .timeout_ms = 30000 };
	int r = eth_send_transaction(rpc, sk, contract, calldata->data, calldata->len, &opts, &rc);

	if (r < 0)
		die(what, rpc, r);
}

static void mint_and_bind(struct eth_rpc *rpc, uint64_t chain_id, const uint8_t owner_sk[static 32],
			  const uint8_t contract[static 20], uint64_t token,
			  const uint8_t instance[static 20])
{
	uint8_t pub[64], owner[20], sel[4];
	struct abi_encoder e;
	struct buf b;

	crypto_pubkey_from_secret(owner_sk, pub);
	crypto_address_from_pubkey(pub, owner);
	buf_init(&b, 0);
	abi_selector("mintNodeAccess(address,string)", sel);
	buf_append(&b, sel, 4);
	abi_enc_begin(&e, &b, 2);
	abi_put_address(&e, owner);
	abi_put_string(&e, "bench");
	send_call(rpc, chain_id, owner_sk, contract, &b, "mintNodeAccess");
	buf_reset(&b);
	abi_selector("bindInstance(uint256,address)", sel);
	buf_append(&b, sel, 4);
	abi_enc_begin(&e, &b, 2);
	abi_put_uint64(&e, token);
	abi_put_address(&e, instance);
	send_call(rpc, chain_id, owner_sk, contract, &b, "bindInstance");
	buf_clear(&b);
}

/* A record as attest/ would build it from the guest agent, signed here with test keys. */
static void make_record(uint64_t chain_id, const uint8_t contract[static 20], unsigned i,
			const uint8_t kms_sk[static 32], struct registry_record *rec)
{
	uint8_t node_sk[32], app_sk[32], inst_sk[32], pub[64], comp[33], digest[32];
	uint8_t kms_msg[18 + 20 + 33];
	char app_msg[128], hex[67];
	uint8_t app_comp[33];

	memset(rec, 0, sizeof(*rec));
	derive(node_sk, "node", i);
	derive(app_sk, "app", 0);
	derive(inst_sk, "instance", i);
	crypto_pubkey_from_secret(inst_sk, pub);
	crypto_address_from_pubkey(pub, rec->instance_id);
	derive(rec->wg_public_key, "wg", i);
	rec->mode = REGISTRY_MODE_WIREGUARD;
	rec->nonce = 1;
	rec->endpoint = malloc(64);
	snprintf(rec->endpoint, 64, "[2001:db8:%x::%x]:51820", i / 16, i);

	crypto_pubkey_from_secret(node_sk, rec->node_pubkey);
	crypto_pubkey_from_secret(app_sk, rec->app_pubkey);
	crypto_compress_pubkey(rec->node_pubkey, comp);
	hex_encode(hex, comp, 33);
	snprintf(app_msg, sizeof(app_msg), "dstack-p2p:node:%s", hex);
	keccak256(digest, app_msg, strlen(app_msg));
	crypto_sign_digest(app_sk, digest, rec->app_signature);
	crypto_compress_pubkey(rec->app_pubkey, app_comp);
	memcpy(kms_msg, "dstack-kms-issued:", 18);
	memcpy(kms_msg + 18, contract, 20);
	memcpy(kms_msg + 38, app_comp, 33);
	keccak256(digest, kms_msg, sizeof(kms_msg));
	crypto_sign_digest(kms_sk, digest, rec->kms_signature);
	registry_record_digest(chain_id, contract, rec, digest);
	crypto_sign_digest(node_sk, digest, rec->node_signature);
}

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	uint8_t contract[20], owner_sk[32], kms_sk[32];
	struct eth_rpc_config cfg = { .timeout_ms = 30000, .errors = &registry_contract_errors };
	struct registry_reader_stats st;
	struct registry_reader *reader;
	uint64_t chain_id, times[DECODE_ROUNDS], rt0, count = 0;
	struct eth_rpc *rpc;
	struct buf ret, calldata;
	long rss_before, rss_after;
	uint8_t sel[4];
	bool changed;
	size_t heap = 0;
	unsigned target = PEERS;
	bool fill_only = false;
	int r;

	if (argc == 5 && !strcmp(argv[1], "--fill")) {
		target = (unsigned)strtoul(argv[2], NULL, 10);
		fill_only = true;
		argv += 2;
		argc -= 2;
	}
	if (argc != 3 || hex_decode_exact(contract, 20, argv[2], strlen(argv[2])) < 0 ||
	    target < 1 || target > PEERS) {
		fprintf(stderr, "usage: chain-registry [--fill N] RPC CONTRACT (env OWNER_KEY, KMS_KEY)\n");
		return 2;
	}
	key_from_env("OWNER_KEY", owner_sk);
	key_from_env("KMS_KEY", kms_sk);
	cfg.urls = argv[1];
	if ((r = eth_rpc_new(&cfg, &rpc)) < 0 || (r = eth_chain_id(rpc, &chain_id)) < 0)
		die("rpc", rpc, r);

	/* ---- fill the registry (skipped when a previous run already did) */
	buf_init(&ret, 0);
	buf_init(&calldata, 0);
	abi_selector("peerCount()", sel);
	if ((r = eth_call(rpc, contract, sel, 4, "latest", &ret)) < 0)
		die("peerCount()", rpc, r);
	count = ret.len == 32 ? ret.data[31] | (uint64_t)ret.data[30] << 8 : 0;
	fprintf(stderr, "chain-registry: registering %d peers (1 mint + 1 bind + 1 registerPeer each)\n",
		count < target ? (int)(target - count) : 0);
	for (unsigned i = (unsigned)count + 1; i <= target; i++) {
		struct registry_record rec;

		make_record(chain_id, contract, i, kms_sk, &rec);
		mint_and_bind(rpc, chain_id, owner_sk, contract, i, rec.instance_id);
		buf_reset(&calldata);
		if ((r = registry_encode_register_call(&rec, &calldata)) < 0)
			die("encode", NULL, r);
		send_call(rpc, chain_id, owner_sk, contract, &calldata, "registerPeer");
		registry_record_clear(&rec);
	}
	if (fill_only) {
		buf_clear(&ret);
		buf_clear(&calldata);
		eth_rpc_free(rpc);
		return 0;
	}

	/* ---- ABI decode of the real 254-peer reply */
	buf_reset(&ret);
	abi_selector("getPeers()", sel);
	if ((r = eth_call(rpc, contract, sel, 4, "latest", &ret)) < 0)
		die("getPeers()", rpc, r);
	for (int k = 0; k < DECODE_ROUNDS; k++) {
		struct registry_record *peers;
		size_t n;
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		r = registry_decode_peers(ret.data, ret.len, &peers, &n, NULL, 0, NULL);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (r < 0 || n != PEERS)
			die("decode", NULL, r < 0 ? r : -EBADMSG);
		times[k] = (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000u + (uint64_t)(b.tv_nsec - a.tv_nsec);
		registry_records_free(peers, n);
	}
	qsort(times, DECODE_ROUNDS, sizeof(times[0]), cmp_u64);
	printf("chain: getPeers() reply with %d peers: %zu bytes of ABI data\n", PEERS, ret.len);
	printf("chain: ABI decode of %d peers: median %.1f us, min %.1f us (%d rounds)\n", PEERS,
	       times[DECODE_ROUNDS / 2] / 1000.0, times[0] / 1000.0, DECODE_ROUNDS);

	/* ---- the reader: memory holding 254 peers, round trips per idle poll */
	rss_before = rss_kib();
	if ((r = registry_reader_new(rpc, contract, chain_id, &reader)) < 0 ||
	    (r = registry_reader_poll(reader, &changed)) < 0)
		die("reader", rpc, r);
	rss_after = rss_kib();
	{
		size_t n;
		const struct registry_record *p = registry_reader_peers(reader, &n);

		for (size_t i = 0; i < n; i++)
			heap += sizeof(*p) + strlen(p[i].endpoint) + 1;
		printf("chain: reader holding %zu peers: %zu KiB of records, process RSS %ld KiB "
		       "(+%ld KiB for the first read, reply buffers included)\n",
		       n, heap / 1024, rss_after, rss_after - rss_before);
	}
	rt0 = eth_rpc_round_trips(rpc);
	for (int k = 0; k < IDLE_POLLS; k++) {
		if ((r = registry_reader_poll(reader, &changed)) < 0)
			die("poll", rpc, r);
	}
	printf("chain: idle polls (no new block): %.2f round trips per poll (%d polls)\n",
	       (double)(eth_rpc_round_trips(rpc) - rt0) / IDLE_POLLS, IDLE_POLLS);
	{
		uint64_t mine_rts = 0;

		rt0 = eth_rpc_round_trips(rpc);
		for (int k = 0; k < IDLE_POLLS; k++) {
			struct eth_rpc_call c = { 0 };

			/* A block without registry logs: still idle for the reader. */
			eth_rpc_call(rpc, "evm_mine", NULL, &c);
			eth_rpc_call_clear(&c);
			mine_rts++;
			if ((r = registry_reader_poll(reader, &changed)) < 0)
				die("poll", rpc, r);
		}
		registry_reader_get_stats(reader, &st);
		printf("chain: idle polls (a new block each, no registry logs): %.2f round trips per poll, "
		       "%" PRIu64 " full re-reads in all\n",
		       (double)(eth_rpc_round_trips(rpc) - rt0 - mine_rts) / IDLE_POLLS, st.full_reads);
	}
	registry_reader_free(reader);
	buf_clear(&ret);
	buf_clear(&calldata);
	eth_rpc_free(rpc);
	return 0;
}
