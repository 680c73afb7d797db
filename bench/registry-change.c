/* SPDX-License-Identifier: MIT */
/*
 * Cost of one registry change to one agent, by registry size: the agent's own read and
 * decision (registry/handle.c's registry_handle_poll, then mesh_decide) in process, against a real
 * registry on anvil. Two followers see the same change: the incremental one (the logs'
 * tokens read by getPeerByToken, verdicts cached) and the full one (getPeers() and every
 * record verified: what each change cost before, and what the periodic re-read costs
 * without the cache); then the periodic re-read as it is now (a resync, verdicts cached).
 * CPU is this process's (CLOCK_PROCESS_CPUTIME_ID) around the poll and the decision; RPC
 * bytes are counted by the proxy the URL points at (bench/registry-change.sh), which
 * writes "<request bytes> <reply bytes> <requests>" to COUNTER after each request.
 *
 * Usage: registry-change RPC_URL CONTRACT COUNTER FILL_CMD SIZE...
 *   FILL_CMD N (run by the shell) registers synthetic peers until N are registered;
 *   FILL_CMD gas prints the eth_call gas of the reads at the registry's size.
 *   env KMS_KEY: the KMS root's secret, whose address the records are verified against.
 * Figures are printed, never asserted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "registry/registry.h"

#define CHANGES 3    /* changes measured per size; the median is printed */

struct cost {
	double cpu_ms;
	uint64_t bytes;       /* request + reply bodies */
	uint64_t requests;    /* HTTP exchanges (a batch is one) */
	uint64_t verified;    /* records verified (secp256k1) */
};

struct follower {
	struct registry_handle *c;
	struct mesh_state st;
	bool cached;          /* false: a fresh state (no verdicts) every decision */
};

static const char *counter_path;
static struct mesh_self self;

static void die(const char *what, int r)
{
	fprintf(stderr, "registry-change: %s: %s\n", what, errstr(r));
	exit(1);
}

static void counters(uint64_t *bytes, uint64_t *requests)
{
	unsigned long long req = 0, rep = 0, n = 0;
	FILE *f = fopen(counter_path, "re");

	if (f) {
		if (fscanf(f, "%llu %llu %llu", &req, &rep, &n) != 3)
			req = rep = n = 0;
		fclose(f);
	}
	*bytes = req + rep;
	*requests = n;
}

static double cpu_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* One turn of the agent's registry part: poll (full or following), then decide on the view. */
static struct cost turn(struct follower *f, bool full, uint64_t now)
{
	struct mesh_plan plan = { 0 };
	struct mesh_input in = { .now_ms = now, .registry_read = true, .full = full };
	struct cost k = { 0 };
	uint64_t b0, n0, b1, n1, misses;
	bool changed;
	double t0;
	int r;

	counters(&b0, &n0);
	t0 = cpu_ms();
	if (!f->cached) {
		mesh_state_clear(&f->st);
		mesh_state_init(&f->st);
	}
	misses = f->st.verified.misses;
	r = registry_handle_poll(f->c, full, &changed);
	if (r < 0) {
		fprintf(stderr, "registry-change: %s\n", registry_handle_error(f->c));
		die("registry_handle_poll", r);
	}
	in.have_view = changed || full;
	in.recs = registry_handle_peers(f->c, &in.n_recs);
	in.block = registry_handle_block(f->c);
	if (in.have_view && (r = mesh_decide(&f->st, &self, &in, &plan)) < 0)
		die("mesh_decide", r);
	k.cpu_ms = cpu_ms() - t0;
	k.verified = f->st.verified.misses - misses;
	mesh_plan_clear(&plan);
	counters(&b1, &n1);
	k.bytes = b1 - b0;
	k.requests = n1 - n0;
	return k;
}

static int by_cpu(const void *x, const void *y)
{
	const struct cost *a = x, *b = y;

	return (a->cpu_ms > b->cpu_ms) - (a->cpu_ms < b->cpu_ms);
}

static void fill(const char *cmd, unsigned n)
{
	char line[4096];

	snprintf(line, sizeof(line), "%s %u", cmd, n);
	if (system(line) != 0)
		die("filling the registry", -EIO);
}

static void open_follower(struct follower *f, const char *url, const uint8_t contract[static 20], bool cached)
{
	struct rpc_url_list rpc;
	int r;

	memset(f, 0, sizeof(*f));
	mesh_state_init(&f->st);
	f->cached = cached;
	if ((r = rpc_url_list_parse(url, &rpc)) < 0 ||
	    (r = registry_handle_open(&f->c, &rpc, contract, NULL)) < 0)
		die("registry_handle_open", r);
	registry_handle_expect_chain_id(f->c, self.chain_id);
}

static void print_row(unsigned size, const char *what, struct cost *k)
{
	qsort(k, CHANGES, sizeof(*k), by_cpu);
	printf("registry-change: %4u entries  %-34s %8.2f ms CPU %9llu B RPC %3llu req %4llu verified\n",
	       size, what, k[CHANGES / 2].cpu_ms, (unsigned long long)k[CHANGES / 2].bytes,
	       (unsigned long long)k[CHANGES / 2].requests, (unsigned long long)k[CHANGES / 2].verified);
}

int main(int argc, char **argv)
{
	uint8_t contract[20], kms_sk[32], pub[64];
	const char *hex = getenv("KMS_KEY");
	struct follower incr, full;
	uint64_t now = 1000;

	if (argc < 6 || hex_decode_exact(contract, 20, argv[2], strlen(argv[2])) < 0 || !hex ||
	    hex_decode_exact(kms_sk, 32, hex, strlen(hex)) < 0) {
		fprintf(stderr, "usage: registry-change RPC_URL CONTRACT COUNTER FILL_CMD SIZE... (env KMS_KEY)\n");
		return 2;
	}
	counter_path = argv[3];
	crypto_pubkey_from_secret(kms_sk, pub);
	/* A node of the cluster that is not in the registry: every record is a peer to verify. */
	self.mode = REGISTRY_MODE_WIREGUARD;
	memcpy(self.contract, contract, 20);
	memset(self.instance_id, 0xee, 20);
	memset(self.wg_public_key, 0xee, 32);
	snprintf(self.endpoint, sizeof(self.endpoint), "192.0.2.1:51820");
	self.chain_id = 31337;
	crypto_address_from_pubkey(pub, self.kms_root);
	self.listen_port = 51820;
	self.transport = MESH_TRANSPORT_UDP;
	self.reg_spacing_ms = 15000;
	self.reg_max_per_hour = 1;
	open_follower(&incr, argv[1], contract, true);
	open_follower(&full, argv[1], contract, false);

	for (int a = 5; a < argc; a++) {
		unsigned size = (unsigned)strtoul(argv[a], NULL, 10);
		struct cost ki[CHANGES], kf[CHANGES], kr[CHANGES];
		char gas[4096];

		if (size <= CHANGES || size > REGISTRY_MAX_PEERS)
			die("size out of range", -EINVAL);
		fill(argv[4], size - CHANGES);
		/* Both followers up to date (the first turn of each is its full read). */
		turn(&incr, false, now += 1000);
		turn(&full, true, now += 1000);
		for (int i = 0; i < CHANGES; i++) {
			/* One change: a peer minted, bound and registered (three blocks, one poll). */
			fill(argv[4], size - CHANGES + 1 + (unsigned)i);
			ki[i] = turn(&incr, false, now += 1000);
			kf[i] = turn(&full, true, now += 1000);
			kr[i] = turn(&incr, true, now += 1000);
		}
		print_row(size, "change, incremental (now)", ki);
		print_row(size, "change, full read + verify all", kf);
		print_row(size, "periodic re-read (resync, cached)", kr);
		fflush(stdout);
		snprintf(gas, sizeof(gas), "%s gas", argv[4]);
		if (system(gas) != 0)
			fprintf(stderr, "registry-change: no gas estimate\n");
	}
	registry_handle_close(incr.c);
	registry_handle_close(full.c);
	mesh_state_clear(&incr.st);
	mesh_state_clear(&full.st);
	return 0;
}
