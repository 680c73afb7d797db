/* SPDX-License-Identifier: MIT */
/*
 * registry/contract.c's table against forge's ABI artifact of DstackClusterNFT, read with
 * the project's JSON parser: every function, event and error of the table is the
 * contract's (names, types, indexed flags; selectors and topic0 by Keccak on both sides),
 * and every event and error the contract has is in the table.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/registry.h"
#include "tests/unit/test-chain-helpers.h"

/* The artifact's path, built by forge first when it is missing (as `make contracts` does). */
#define ARTIFACT_CMD                                                                                 \
	"top=$(git rev-parse --show-toplevel) && f=\"$top/contracts/out/DstackClusterNFT.sol/"       \
	"DstackClusterNFT.json\" && { [ -f \"$f\" ] || (cd \"$top/contracts\" && flock .forge.lock " \
	"../node_modules/.bin/forge build --quiet); } && printf %s \"$f\""

struct artifact {
	char *text;
	struct json j;
	int abi; /* the "abi" array */
	int ids; /* "methodIdentifiers": signature -> selector hex */
};

static void artifact_load(struct artifact *a)
{
	char *path = command_output(ARTIFACT_CMD);
	FILE *f = fopen(path, "r");
	long len;

	cr_assert(f, "the artifact %s cannot be read", path);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	a->text = malloc((size_t)len);
	cr_assert(a->text && fread(a->text, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	free(path);
	cr_assert_eq(json_parse(&a->j, a->text, (size_t)len, 0), 0, "the artifact is not JSON");
	a->abi = json_get(&a->j, 0, "abi");
	a->ids = json_get(&a->j, 0, "methodIdentifiers");
	cr_assert(a->abi >= 0 && a->ids >= 0, "no abi or methodIdentifiers in the artifact");
}

static void artifact_clear(struct artifact *a)
{
	json_clear(&a->j);
	free(a->text);
}

static char *str_of(const struct json *j, int obj, const char *key)
{
	char *s = NULL;
	int i = json_get(j, obj, key);

	cr_assert(i >= 0 && json_strdup(j, i, &s) == 0, "no string %s", key);
	return s;
}

/* An ABI type as a signature writes it: a tuple as "(t1,t2,...)", arrays kept. */
static void put_type(const struct json *j, int param, struct buf *b)
{
	char *type = str_of(j, param, "type");

	if (!strncmp(type, "tuple", 5)) {
		int comps = json_get(j, param, "components");

		cr_assert(comps >= 0);
		buf_printf(b, "(");
		for (int k = 0; k < j->tok[comps].size; k++) {
			if (k)
				buf_printf(b, ",");
			put_type(j, json_array_at(j, comps, k), b);
		}
		buf_printf(b, ")%s", type + 5);
	} else {
		buf_printf(b, "%s", type);
	}
	free(type);
}

/* The canonical signature of ABI entry e, NUL-terminated in b. */
static void signature_of(const struct json *j, int e, struct buf *b)
{
	char *name = str_of(j, e, "name");
	int inputs = json_get(j, e, "inputs");

	b->len = 0;
	buf_printf(b, "%s(", name);
	for (int k = 0; inputs >= 0 && k < j->tok[inputs].size; k++) {
		if (k)
			buf_printf(b, ",");
		put_type(j, json_array_at(j, inputs, k), b);
	}
	buf_printf(b, ")");
	cr_assert_eq(buf_terminate(b), 0);
	free(name);
}

/* Whether ABI entry number k is of kind ("function", "event", "error"); its signature into b. */
static bool entry_sig(const struct artifact *a, int k, const char *kind, struct buf *b)
{
	int e = json_array_at(&a->j, a->abi, k);

	if (!json_eq(&a->j, json_get(&a->j, e, "type"), kind))
		return false;
	signature_of(&a->j, e, b);
	return true;
}

/* The ABI entry of kind with canonical signature sig, or -1. */
static int find_entry(const struct artifact *a, const char *kind, const char *sig)
{
	struct buf b;
	int found = -1;

	buf_init(&b, 256);
	for (int k = 0; found < 0 && k < a->j.tok[a->abi].size; k++)
		if (entry_sig(a, k, kind, &b) && !strcmp((const char *)b.data, sig))
			found = json_array_at(&a->j, a->abi, k);
	buf_clear(&b);
	return found;
}

Test(contract_table, functions_are_the_contracts)
{
	struct artifact a;

	artifact_load(&a);
	for (size_t f = 0; f < REGISTRY_FN_COUNT; f++) {
		const char *sig = registry_functions[f];
		uint8_t sel[4];
		char hex[9], *want;
		int id;

		cr_assert(sig, "function %zu of the table is empty", f);
		cr_assert(find_entry(&a, "function", sig) >= 0, "%s is not a function of the contract", sig);
		id = json_get(&a.j, a.ids, sig);
		cr_assert(id >= 0 && json_strdup(&a.j, id, &want) == 0, "forge gives no selector for %s",
			  sig);
		registry_fn_selector((enum registry_fn)f, sel);
		hex_encode(hex, sel, 4);
		cr_assert_str_eq(hex, want, "%s: our selector %s, forge's %s", sig, hex, want);
		free(want);
	}
	/* The leader calls registry/leader.c encodes are the table's. */
	cr_assert_str_eq(registry_leader_call_sigs[REGISTRY_LEADER_ELECT],
			 registry_functions[REGISTRY_FN_ELECT_LEADER_SIGNED]);
	cr_assert_str_eq(registry_leader_call_sigs[REGISTRY_LEADER_HEARTBEAT],
			 registry_functions[REGISTRY_FN_LEADER_HEARTBEAT_SIGNED]);
	cr_assert_str_eq(registry_leader_call_sigs[REGISTRY_LEADER_VOTE],
			 registry_functions[REGISTRY_FN_CAST_VOTE_SIGNED]);
	artifact_clear(&a);
}

/* Table event e against ABI entry k: the names, types and indexed flags of its arguments. */
static void check_event_args(const struct artifact *a, int k, const struct registry_event *e)
{
	int inputs = json_get(&a->j, k, "inputs");

	cr_assert_eq(a->j.tok[inputs].size, e->nparams, "%s: %d arguments, the table has %u", e->name,
		     a->j.tok[inputs].size, e->nparams);
	for (int i = 0; i < e->nparams; i++) {
		int in = json_array_at(&a->j, inputs, i);
		char *name = str_of(&a->j, in, "name"), *type = str_of(&a->j, in, "type");
		bool indexed = false;

		cr_assert_eq(json_bool(&a->j, json_get(&a->j, in, "indexed"), &indexed), 0);
		cr_assert_str_eq(e->params[i].name, name, "%s argument %d", e->name, i);
		cr_assert_str_eq(e->params[i].type, type, "%s.%s", e->name, name);
		cr_assert_eq(e->params[i].indexed, indexed, "%s.%s: indexed", e->name, name);
		free(name);
		free(type);
	}
}

Test(contract_table, events_are_every_event_the_contract_emits)
{
	struct artifact a;
	struct buf b;
	size_t seen = 0;

	artifact_load(&a);
	buf_init(&b, 256);
	for (size_t id = 0; id < REGISTRY_EV_COUNT; id++) {
		const struct registry_event *e = registry_event_get((enum registry_event_id)id);
		int k;

		cr_assert(e->name[0], "event %zu of the table does not parse", id);
		k = find_entry(&a, "event", e->sig);
		cr_assert(k >= 0, "%s is not an event of the contract", e->sig);
		check_event_args(&a, k, e);
	}
	/* Every event of the ABI, by the topic0 of its own signature, is in the table. */
	for (int k = 0; k < a.j.tok[a.abi].size; k++) {
		uint8_t topic[32];

		if (!entry_sig(&a, k, "event", &b))
			continue;
		abi_event_topic((const char *)b.data, topic);
		cr_assert(registry_event_by_topic(topic), "the contract emits %s, which the table lacks",
			  (const char *)b.data);
		seen++;
	}
	cr_assert_eq(seen, REGISTRY_EV_COUNT, "the contract has %zu events, the table %d", seen,
		     REGISTRY_EV_COUNT);
	buf_clear(&b);
	artifact_clear(&a);
}

Test(contract_table, errors_are_every_error_the_contract_has)
{
	struct artifact a;
	struct buf b;
	size_t seen = 0;

	artifact_load(&a);
	buf_init(&b, 256);
	for (int k = 0; k < a.j.tok[a.abi].size; k++) {
		uint8_t want[4], have[4];
		bool found = false;

		if (!entry_sig(&a, k, "error", &b))
			continue;
		abi_selector((const char *)b.data, want);
		for (size_t i = 0; i < REGISTRY_ERROR_COUNT && !found; i++) {
			cr_assert(registry_error_sigs[i], "error %zu of the table is empty", i);
			abi_selector(registry_error_sigs[i], have);
			found = !memcmp(have, want, 4);
		}
		cr_assert(found, "the contract has %s, which the table lacks (or has other types)",
			  (const char *)b.data);
		seen++;
	}
	cr_assert_eq(seen, REGISTRY_ERROR_COUNT, "the contract has %zu errors, the table %d", seen,
		     REGISTRY_ERROR_COUNT);
	buf_clear(&b);
	artifact_clear(&a);
}

/* The bounds the follower checks follow from the declarations. */
Test(contract_table, event_bounds)
{
	const struct registry_event *reg = registry_event_get(REGISTRY_EV_PEER_REGISTERED);
	const struct registry_event *rm = registry_event_get(REGISTRY_EV_PEER_REMOVED);
	const struct registry_event *tr = registry_event_get(REGISTRY_EV_TRANSFER);
	struct registry_event e;

	cr_assert_str_eq(reg->sig, "PeerRegistered(uint256,address,bytes32,string,uint8,uint64)");
	cr_assert_eq(reg->ntopics, 3);
	cr_assert_eq(reg->min_data, 5 * 32, "4 head words and the endpoint's length");
	cr_assert_eq(reg->max_data, UINT16_MAX);
	cr_assert_eq(rm->min_data, 32);
	cr_assert_eq(rm->max_data, 32);
	cr_assert_eq(tr->ntopics, 4);
	cr_assert_eq(tr->token_topic, 3);
	cr_assert_eq(tr->max_data, 0);
	cr_assert_eq(registry_event_by_topic(rm->topic0), rm);
	cr_assert_eq(registry_event_parse("AppRegistered(address appId)", 0, &e), 0);
	cr_assert_str_eq(e.sig, "AppRegistered(address)");
	cr_assert_eq(e.ntopics, 1);
	cr_assert_eq(registry_event_parse("Bad(uint256)", 0, &e), -EINVAL, "an argument without a name");
	cr_assert_eq(registry_event_parse("Bad(uint8 a", 0, &e), -EINVAL, "unterminated");
	cr_assert_eq(registry_event_parse("Bad(uint8 !a,uint8 !b,uint8 !c,uint8 !d)", 0, &e), -EINVAL,
		     "four indexed arguments");
	cr_assert_eq(registry_event_parse("Bad(uint8 a) ", 0, &e), -EINVAL, "trailing text");
}
