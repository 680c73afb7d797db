/* SPDX-License-Identifier: MIT */
/* The contract's errors as the operator's tools print them: field names, units, a hint. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/registry.h"
#include "tests/unit/test-chain-helpers.h"

static void describe(const char *sig, const uint64_t *args, size_t n, char *out, size_t max)
{
	struct abi_encoder e;
	uint8_t sel[4];
	struct buf b;

	buf_init(&b, 0);
	abi_selector(sig, sel);
	buf_append(&b, sel, 4);
	abi_enc_begin(&e, &b, n);
	for (size_t i = 0; i < n; i++)
		abi_put_uint64(&e, args[i]);
	eth_describe_revert(b.data, b.len, &registry_contract_errors_explained, out, max);
	buf_clear(&b);
}

Test(errors, named_fields_units_and_hint)
{
	char out[512];

	describe("WrongMintPayment(uint256,uint256)", (uint64_t[]){ 0, 10000000000000000ull }, 2,
		 out, sizeof(out));
	cr_assert_str_eq(out, "WrongMintPayment(sent=0 ETH, price=0.01 ETH): a public mint pays "
			 "exactly the price: --value PRICE (cluster status shows it)");
	describe("LeaderStillActive(uint256,uint64)", (uint64_t[]){ 2, 1796654689 }, 2, out, sizeof(out));
	cr_assert(!strncmp(out, "LeaderStillActive(leader=2, expiry=2026-12-07T14:44:49Z): ", 58), "%s", out);
	describe("NetworkModeNotAllowed(uint8,uint8)", (uint64_t[]){ 0, 2 }, 2, out, sizeof(out));
	cr_assert(!strncmp(out, "NetworkModeNotAllowed(mode=tls, allowedModes=wireguard): ", 57), "%s", out);
	describe("ClusterFull(uint256)", (uint64_t[]){ 3 }, 1, out, sizeof(out));
	cr_assert(!strncmp(out, "ClusterFull(maxNodes=3): ", 25), "%s", out);
	describe("StaleNonce(uint64,uint64)", (uint64_t[]){ 3 }, 1, out, sizeof(out));
	cr_assert(!strncmp(out, "StaleNonce(nonce=3, storedNonce=<missing>): ", 44), "%s", out);
	/* The agent's and the relayer's table stays compact: revert/describes_reasons. */
}

Test(errors, ether_and_time)
{
	static const struct { uint64_t wei; const char *s; } cases[] = {
		{ 0, "0 ETH" }, { 1, "0.000000000000000001 ETH" }, { 10000000000000000ull, "0.01 ETH" },
		{ 1000000000000000000ull, "1 ETH" }, { 1500000000000000000ull, "1.5 ETH" },
		{ 18446744073709551615ull, "18.446744073709551615 ETH" },
	};
	char s[REGISTRY_ETHER_STR_MAX], t[REGISTRY_TIME_STR_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t w[32] = { 0 };

		for (int k = 0; k < 8; k++)
			w[31 - k] = (uint8_t)(cases[i].wei >> (8 * k));
		registry_ether_str(w, s);
		cr_assert_str_eq(s, cases[i].s);
	}
	{
		uint8_t w[32];

		memset(w, 0xff, 32);  /* 2^256-1 wei: every digit kept */
		registry_ether_str(w, s);
		cr_assert_str_eq(s, "115792089237316195423570985008687907853269984665640564039457."
				 "584007913129639935 ETH");
	}
	registry_time_str(0, t);
	cr_assert_str_eq(t, "1970-01-01T00:00:00Z");
	registry_time_str(UINT64_MAX, t);
	cr_assert_str_eq(t, "18446744073709551615");
}

#define ARTIFACT "\"$(git rev-parse --show-toplevel)/contracts/out/DstackClusterNFT.sol/DstackClusterNFT.json\""

/* Every error the contract declares has its fields named as the contract names them. */
Test(errors, field_names_match_the_contract_abi)
{
	const char *const *sigs = registry_contract_errors.signatures;

	for (size_t i = 0; i < registry_contract_errors.n; i++) {
		char name[64], cmd[1024], want[256] = "", *abi;
		const char *fields, *hint, *f;
		size_t k = 0;

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(sigs[i], "("), sigs[i]);
		cr_assert_eq(registry_error_doc(name, &fields, &hint), 0, "no wording for %s", name);
		cr_assert(hint[0], "%s has no hint", name);
		for (f = fields; *f; f += *f == ' ') {
			size_t n = strcspn(f, ":");

			k += snprintf(want + k, sizeof(want) - k, "%s%.*s", k ? "," : "", (int)n, f);
			f += n + 2;
		}
		snprintf(cmd, sizeof(cmd), "top=$(git rev-parse --show-toplevel) && "
			 "{ [ -f " ARTIFACT " ] || (cd \"$top/contracts\" && flock .forge.lock ../node_modules/.bin/forge build --quiet); } && "
			 "jq -r '.abi[] | select(.type == \"error\" and .name == \"%s\") | [.inputs[].name] | join(\",\")' "
			 ARTIFACT, name);
		abi = command_output(cmd);
		cr_assert_str_eq(want, abi, "%s: our fields '%s', the ABI's '%s'", name, want, abi);
		free(abi);
	}
}
