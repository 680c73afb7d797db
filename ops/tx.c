/* SPDX-License-Identifier: MIT */
/*
 * The operator's transactions: the paying key loaded for each and wiped after it, the
 * call simulated first (a revert is refused with the contract's error and nothing is
 * sent), sent under the fee caps and followed to its receipt; the actions that are one
 * call of the cluster contract, by name, with their operands checked before anything is
 * asked of the RPC.
 */
#include <errno.h>
#include <string.h>

#include "ops/internal.h"

int ops_transact(struct ops *o, const uint8_t *to, const struct buf *calldata, uint64_t value,
		 struct eth_tx_result *res)
{
	struct eth_tx_request req = {
		.to = to, .data = calldata->data, .len = calldata->len, .value = value
	};
	struct err_detail why = { 0 };
	uint8_t *sk, from[20];
	int r;

	memset(res, 0, sizeof(*res));
	o->error[0] = '\0';
	r = ops_key_load(&o->key, o->ask_password, &sk, from, &why);
	if (r < 0) {
		ops_set_error(o, "%s", why.text[0] ? why.text : errstr(r));
		return r == -ENOMEM ? r : -EINVAL;
	}
	r = eth_send_capped(o->rpc, sk, &req, &o->caps, res);
	secret_free(sk, 32);
	if (r < 0) {
		const char *e = eth_rpc_error(o->rpc);

		if (!strncmp(e, "eth_call reverted: ", 19))
			e += 19; /* the simulation's revert: the error's name says it all */
		ops_set_error(o, "%s", e[0] ? e : errstr(r));
	}
	return r;
}

uint64_t ops_minted_token(struct ops *o, const struct eth_tx_result *res)
{
	const struct registry_event *minted = registry_event_get(REGISTRY_EV_NODE_ACCESS_MINTED);
	struct eth_log_filter f = { .from_block = res->receipt.block_number,
				    .to_block = res->receipt.block_number,
				    .address = o->contract,
				    .topic0 = minted->topic0 };
	struct eth_log *logs = NULL;
	size_t n = 0;
	uint64_t token = 0;

	if (eth_get_logs(o->rpc, &f, &logs, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (!memcmp(logs[i].tx_hash, res->tx_hash, 32) && logs[i].ntopics > 1)
				for (int b = 24; b < 32; b++)
					token = (token << 8) | logs[i].topics[1][b];
	eth_logs_free(logs, n);
	return token;
}

/* ---- the actions that are one contract call ----------------------------------------------- */

static const struct ops_action actions[] = {
	{ "mint", REGISTRY_FN_MINT_NODE_ACCESS, "as", NULL },
	{ "bind", REGISTRY_FN_BIND_INSTANCE, "ua", NULL },
	{ "unbind", REGISTRY_FN_UNBIND_INSTANCE, "u", NULL },
	{ "burn", REGISTRY_FN_BURN, "u", NULL },
	{ "allow-compose", REGISTRY_FN_ADD_COMPOSE_HASH, "h", NULL },
	{ "remove-compose", REGISTRY_FN_REMOVE_COMPOSE_HASH, "h", NULL },
	{ "allow-device", REGISTRY_FN_ADD_DEVICE, "h", NULL },
	{ "remove-device", REGISTRY_FN_REMOVE_DEVICE, "h", NULL },
	{ "set-any-device", REGISTRY_FN_SET_ALLOW_ANY_DEVICE, "e", ops_words_yes_no },
	{ "set-config", REGISTRY_FN_SET_CLUSTER_CONFIG, "um", NULL },
	{ "set-minting", REGISTRY_FN_SET_MINTING_POLICY, "we", ops_words_minting },
	{ "set-boot-policy", REGISTRY_FN_SET_BOOT_POLICY, "e", ops_words_boot },
	{ "set-tcb-policy", REGISTRY_FN_SET_REQUIRE_TCB_UP_TO_DATE, "e", ops_words_tcb },
	{ "set-lease", REGISTRY_FN_SET_LEADER_LEASE, "u", NULL },
	{ "withdraw", REGISTRY_FN_WITHDRAW, "a", NULL },
	{ "transfer-ownership", REGISTRY_FN_TRANSFER_OWNERSHIP, "a", NULL },
	{ "accept-ownership", REGISTRY_FN_ACCEPT_OWNERSHIP, "", NULL },
};

const struct ops_action *ops_action_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++)
		if (!strcmp(actions[i].name, name))
			return &actions[i];
	return NULL;
}

const char *ops_action_signature(const char *name)
{
	const struct ops_action *a = ops_action_find(name);

	return a ? registry_functions[a->fn] : NULL;
}

/* One operand as its kind reads; -EINVAL with why naming it. */
static int put_operand(struct abi_encoder *e, const struct ops_action *a, char kind, const char *s,
		       struct err_detail *why)
{
	uint8_t bytes[32];
	uint64_t v;
	int i;

	switch (kind) {
	case 'a':
		if (ops_parse_address(s, bytes) < 0)
			return err_detail_set(why, "%s: '%s' is not a 20-byte 0x address", a->name, s),
			       -EINVAL;
		return abi_put_address(e, bytes);
	case 'u':
		if (ops_parse_u64(s, &v) < 0)
			return err_detail_set(why, "%s: '%s' is not a number", a->name, s), -EINVAL;
		return abi_put_uint64(e, v);
	case 'w':
		if (ops_parse_wei(s, &v) < 0)
			return err_detail_set(why, "%s: '%s' is not an amount (12wei, 1.5gwei, 0.01ether)",
					      a->name, s),
			       -EINVAL;
		return abi_put_uint64(e, v);
	case 's':
		return abi_put_string(e, s);
	case 'h':
		if (ops_parse_bytes32(s, bytes) < 0)
			return err_detail_set(why, "%s: '%s' is not a 32-byte 0x hash", a->name, s), -EINVAL;
		return abi_put_word(e, bytes);
	case 'm':
		if ((i = ops_parse_modes(s)) < 0)
			return err_detail_set(why, "%s: modes '%s': tls, wireguard or both", a->name, s),
			       -EINVAL;
		return abi_put_uint64(e, (uint64_t)i);
	default:
		if ((i = ops_word_index(a->words, s)) < 0)
			return err_detail_set(why, "%s: '%s' is not one of %s|%s", a->name, s, a->words[0],
					      a->words[1]),
			       -EINVAL;
		return abi_put_uint64(e, (uint64_t)i);
	}
}

int ops_action_encode(const struct ops_action *a, char *const *args, size_t nargs, struct buf *calldata,
		      struct err_detail *why)
{
	size_t n = strlen(a->kinds);
	struct abi_encoder e;
	uint8_t sel[4];
	int r;

	if (nargs > n) {
		err_detail_set(why, "unexpected argument '%s'", args[n]);
		return -EINVAL;
	}
	if (nargs < n) {
		err_detail_set(why, "%s takes %zu argument%s, not %zu (see --help)", a->name, n,
			       n == 1 ? "" : "s", nargs);
		return -EINVAL;
	}
	registry_fn_selector(a->fn, sel);
	if ((r = buf_append(calldata, sel, 4)) < 0 || (r = abi_enc_begin(&e, calldata, n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if ((r = put_operand(&e, a, a->kinds[i], args[i], why)) < 0)
			return r;
	return abi_enc_end(&e);
}

int ops_transfer_calldata(struct ops *o, uint64_t token, const uint8_t to[static 20], struct buf *calldata)
{
	struct ops_view v;
	struct abi_encoder e;
	uint8_t word[32] = { 0 }, sel[4];
	int r;

	for (int b = 0; b < 8; b++)
		word[31 - b] = (uint8_t)(token >> (8 * b));
	ops_views_init(&v, 1);
	r = ops_calldata_word(&v.data, registry_functions[REGISTRY_FN_OWNER_OF], word);
	if (r == 0)
		r = ops_views_run(o->rpc, o->contract, "latest", &v, 1);
	if (r == 0 && (!v.ok || v.out.len != 32))
		r = -ENOENT;
	if (r == 0) {
		registry_fn_selector(REGISTRY_FN_TRANSFER_FROM, sel);
		if ((r = buf_append(calldata, sel, 4)) == 0 && (r = abi_enc_begin(&e, calldata, 3)) == 0 &&
		    (r = abi_put_word(&e, v.out.data)) == 0 && (r = abi_put_address(&e, to)) == 0 &&
		    (r = abi_put_uint64(&e, token)) == 0)
			r = abi_enc_end(&e);
	}
	if (r == -ENOENT)
		ops_set_error(o, "token %llu has no holder (not minted, or burned)",
			      (unsigned long long)token);
	else if (r < 0)
		ops_set_error(o, "ownerOf(%llu): %s", (unsigned long long)token, eth_rpc_error(o->rpc));
	ops_views_free(&v, 1);
	return r;
}
