/* SPDX-License-Identifier: MIT */
/*
 * What deploying a cluster reads: a dstack KMS contract (its root key, gateway app, owner,
 * whether the cluster is registered with it), so an operator never guesses the KMS root;
 * and a contract's init code from forge's artifact.
 */
#include <errno.h>
#include <string.h>

#include "crypto/crypto.h"
#include "ops/internal.h"

#define ARTIFACT_MAX (8 << 20)
#define INITCODE_MAX (64 << 10)

/* k256Pubkey as the KMS stores it: 33 bytes compressed (or 64 / 65 uncompressed). */
static int root_from_pubkey(const uint8_t *p, size_t n, uint8_t root[static 20])
{
	uint8_t pub[64];

	if (n == 33) {
		if (crypto_decompress_pubkey(p, pub) < 0)
			return -EINVAL;
	} else if (n == 65 && p[0] == 0x04) {
		memcpy(pub, p + 1, 64);
	} else if (n == 64) {
		memcpy(pub, p, 64);
	} else {
		return -EINVAL;
	}
	crypto_address_from_pubkey(pub, root);
	return 0;
}

int ops_kms_read(struct ops *c, const uint8_t kms[static 20], struct ops_kms_facts *f)
{
	enum { K_INFO, K_GATEWAY, K_OWNER, K_REGISTERED, K_COUNT };
	struct ops_view v[K_COUNT];
	struct abi_tuple t;
	const uint8_t *p;
	size_t n = c->have_contract ? K_COUNT : K_REGISTERED;
	int r;

	memset(f, 0, sizeof(*f));
	ops_views_init(v, K_COUNT);
	r = ops_calldata_word(&v[K_INFO].data, "kmsInfo()", NULL);
	if (r == 0)
		r = ops_calldata_word(&v[K_GATEWAY].data, "gatewayAppId()", NULL);
	if (r == 0)
		r = ops_calldata_word(&v[K_OWNER].data, "owner()", NULL);
	if (r == 0 && c->have_contract) {
		uint8_t w[32] = { 0 };

		memcpy(w + 12, c->contract, 20);
		r = ops_calldata_word(&v[K_REGISTERED].data, "registeredApps(address)", w);
	}
	if (r == 0)
		r = ops_views_run(c->rpc, kms, "latest", v, n);
	if (r < 0) {
		ops_set_error(c, "reading the KMS: %s", eth_rpc_error(c->rpc));
		goto out;
	}
	abi_tuple_init(&t, v[K_INFO].out.data, v[K_INFO].out.len);
	if (!v[K_INFO].ok || abi_get_bytes(&t, 0, &p, &f->pubkey_len) < 0 || f->pubkey_len > 65 ||
	    root_from_pubkey(p, f->pubkey_len, f->root) < 0) {
		ops_set_error(c, "the contract at the KMS address answers no usable kmsInfo().k256Pubkey: "
				 "not a dstack KMS, or its root key is not set");
		r = -ENOENT;
		goto out;
	}
	memcpy(f->pubkey, p, f->pubkey_len);
	abi_tuple_init(&t, v[K_GATEWAY].out.data, v[K_GATEWAY].out.len);
	if (v[K_GATEWAY].ok && abi_get_bytes(&t, 0, &p, &n) == 0)
		for (size_t i = 0; i < n && i < sizeof(f->gateway_app_id) - 1; i++)
			f->gateway_app_id[i] = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' ? (char)p[i] : '?';
	f->have_owner = v[K_OWNER].ok && v[K_OWNER].out.len == 32;
	if (f->have_owner)
		memcpy(f->owner, v[K_OWNER].out.data + 12, 20);
	f->have_registered = c->have_contract && v[K_REGISTERED].ok && v[K_REGISTERED].out.len == 32;
	f->registered = f->have_registered && v[K_REGISTERED].out.data[31];
out:
	ops_views_free(v, K_COUNT);
	return r;
}

int ops_initcode_load(const char *path, struct buf *code)
{
	struct json j = { 0 };
	struct buf text;
	const char *hex;
	size_t n;
	int bc, obj, r;

	r = ops_read_file(path, &text, ARTIFACT_MAX);
	if (r < 0)
		return r;
	r = json_parse(&j, (const char *)text.data, text.len, 1 << 20);
	if (r < 0 || j.tok[0].type != JSON_OBJECT) {
		r = -EINVAL;
		goto out;
	}
	bc = json_get(&j, 0, "bytecode");
	obj = bc < 0 ? bc : json_get(&j, bc, "object");
	if (obj < 0 || j.tok[obj].type != JSON_STRING) {
		r = -EINVAL;
		goto out;
	}
	hex = json_raw(&j, obj, &n);
	if (n >= 2 && hex[0] == '0' && hex[1] == 'x')
		hex += 2, n -= 2;
	if (n < 2 || n % 2 || n / 2 > INITCODE_MAX) {
		r = -EINVAL;
		goto out;
	}
	buf_init(code, INITCODE_MAX + 64);
	r = buf_append(code, hex, n); /* room, then decode in place */
	if (r == 0) {
		r = hex_decode(code->data, n / 2, hex, n);
		code->len = r < 0 ? 0 : (size_t)r;
	}
	r = r < 0 ? -EINVAL : 0;
out:
	json_clear(&j);
	buf_clear(&text);
	return r;
}

/* ---- the deploy's plan --------------------------------------------------------------------- */

int ops_deploy_constructor(struct buf *code, const uint8_t deployer[static 20],
			   const uint8_t kms_root[static 20])
{
	struct abi_encoder e = { 0 };
	int r;

	/* constructor(address initialOwner, address kmsRoot): the deployer, who configures. */
	if ((r = abi_enc_begin(&e, code, 2)) == 0 && (r = abi_put_address(&e, deployer)) == 0 &&
	    (r = abi_put_address(&e, kms_root)) == 0)
		r = abi_enc_end(&e);
	return r;
}

/* One call of the plan: fn with up to two uint arguments, or one word. */
static int plan_call(struct ops_call *c, const char *what, enum registry_fn fn, int nargs, uint64_t a,
		     uint64_t b, const uint8_t *word)
{
	struct abi_encoder e;
	uint8_t sel[4];
	int r;

	c->what = what;
	buf_init(&c->calldata, 0);
	registry_fn_selector(fn, sel);
	if ((r = buf_append(&c->calldata, sel, 4)) < 0)
		return r;
	if (word)
		return buf_append(&c->calldata, word, 32);
	if ((r = abi_enc_begin(&e, &c->calldata, (size_t)nargs)) < 0 || (r = abi_put_uint64(&e, a)) < 0 ||
	    (nargs == 2 && (r = abi_put_uint64(&e, b)) < 0))
		return r;
	return abi_enc_end(&e);
}

int ops_deploy_plan(const struct ops_deploy *d, const uint8_t deployer[static 20], struct ops_call *calls,
		    size_t *n)
{
	uint8_t w[32] = { 0 };
	int r = 0;

	*n = 0;
	if (d->have_compose_hash)
		r = plan_call(&calls[(*n)++], "allow-compose", REGISTRY_FN_ADD_COMPOSE_HASH, 0, 0, 0,
			      d->compose_hash);
	/* The policy options, each one transaction by the deployer (still the owner). */
	if (r == 0 && d->boot_policy > 0)
		r = plan_call(&calls[(*n)++], "set-boot-policy", REGISTRY_FN_SET_BOOT_POLICY, 1,
			      (uint64_t)d->boot_policy, 0, NULL);
	if (r == 0 && (d->max_nodes || d->modes >= 0))
		r = plan_call(&calls[(*n)++], "set-config", REGISTRY_FN_SET_CLUSTER_CONFIG, 2,
			      d->max_nodes ? d->max_nodes : REGISTRY_MAX_PEERS,
			      d->modes < 0 ? 3 : (uint64_t)d->modes, NULL);
	if (r == 0 && d->any_device == 0)
		r = plan_call(&calls[(*n)++], "set-any-device", REGISTRY_FN_SET_ALLOW_ANY_DEVICE, 1, 0, 0,
			      NULL);
	if (r == 0 && d->tcb_up_to_date == 0)
		r = plan_call(&calls[(*n)++], "set-tcb-policy", REGISTRY_FN_SET_REQUIRE_TCB_UP_TO_DATE, 1, 0,
			      0, NULL);
	if (r == 0 && d->have_mint_policy)
		r = plan_call(&calls[(*n)++], "set-minting", REGISTRY_FN_SET_MINTING_POLICY, 2, d->mint_price,
			      d->public_minting, NULL);
	if (r == 0 && d->offer_owner && memcmp(d->owner, deployer, 20)) {
		memcpy(w + 12, d->owner, 20);
		r = plan_call(&calls[(*n)++], "transfer-ownership", REGISTRY_FN_TRANSFER_OWNERSHIP, 0, 0, 0,
			      w);
	}
	if (r < 0)
		ops_calls_clear(calls, *n);
	return r;
}

void ops_calls_clear(struct ops_call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_clear(&calls[i].calldata);
}
