/* SPDX-License-Identifier: MIT */
/*
 * mesh: the agent's registration: find our token, sign our record with the next nonce,
 * send it through the sender (funded key or relayer) or print it for an operator.
 */
#include <stdio.h>
#include <string.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

/*
 * No key and no relayer: say exactly how an operator can send our registration, once
 * for each distinct record (a new nonce or endpoint prints again), on stdout.
 */
static void print_relay_instructions(struct mesh_agent *a, const struct registry_record *rec)
{
	struct buf text;

	buf_init(&text, 1 << 17);
	if (mesh_sender_manual(a->sender, rec, &text) > 0 && buf_terminate(&text) == 0) {
		log_info("no funded key (P2P_TX_KEY_FILE) and no relayer (P2P_RELAYER_URL): "
			 "relay this registration from any funded account:");
		fputs((const char *)text.data, stdout);
		fflush(stdout);
	}
	buf_clear(&text);
}

/* Our record signed with the next nonce, sent, relayed or printed for an operator. */
static int send_registration(struct mesh_agent *a)
{
	struct registry_record rec = { 0 };
	uint64_t stored_nonce, nonce;
	uint8_t tx_hash[32];
	char hex[65];
	int r;

	r = registry_handle_nonce_of(a->reg, a->id.instance_id, &stored_nonce);
	if (r < 0) {
		log_warn("reading our registration nonce: %s", registry_handle_error(a->reg));
		return r;
	}
	/* stored + 1, or the next nonce carrying our features (docs/registry.md) */
	r = registry_nonce_next(stored_nonce, a->self.features, &nonce);
	if (r == 0)
		r = registry_record_sign(&a->id, a->secrets, a->self.chain_id, a->self.contract,
					 a->self.endpoint, (enum registry_mode)a->cfg->mode, nonce, &rec);
	if (r < 0) {
		log_error("signing our registry record: %s", errstr(r));
		return r;
	}
	if (!mesh_sender_configured(a->sender)) {
		print_relay_instructions(a, &rec);
	} else if ((r = mesh_sender_hold_key(a->sender)) < 0) {
		log_error("%s", mesh_sender_error(a->sender));
	} else if (mesh_sender_pays(a->sender)) {
		log_info("registering: endpoint %s, nonce %llu", a->self.endpoint,
			 (unsigned long long)rec.nonce);
		r = mesh_sender_register(a->sender, &rec, tx_hash);
		if (r < 0) {
			log_error("registration transaction: %s", mesh_sender_error(a->sender));
		} else {
			hex_encode(hex, tx_hash, 32);
			log_info("registration transaction 0x%s sent; the registry will show it", hex);
		}
	} else {
		r = mesh_sender_register(a->sender, &rec, tx_hash);
		if (r < 0)
			log_error("handing the registration to the relayer %s: %s", a->cfg->relayer_url,
				  mesh_sender_error(a->sender));
	}
	mesh_sender_release_key(a->sender);
	registry_record_clear(&rec);
	return r < 0 ? r : 0;
}

/*
 * The plan says register: find our token (a record needs a bound instance), then sign
 * and send. Every attempt is noted, sent or not, so the spacing holds whatever happens.
 */
void agent_register_now(struct mesh_agent *a, uint64_t now)
{
	uint64_t token = 0, fnonce = 0;
	bool known, sent;
	int r;

	r = registry_handle_token_of_instance(a->reg, a->id.instance_id, &token);
	if (r < 0 || !token) {
		if (r == 0 && !a->said_unbound)
			log_info("instance 0x%s is not bound to a cluster token yet; waiting for the "
				 "operator's bindInstance", a->instance_hex);
		a->said_unbound = r == 0;
		return;  /* nothing sent: asking again next turn costs one call, no gas */
	}
	/* Once per token: an agent waiting for its registration to be relayed retries every
	 * 15 s and would say it each time. */
	if (a->said_unbound || a->said_token != token)
		log_info("instance 0x%s holds token %llu", a->instance_hex, (unsigned long long)token);
	a->said_unbound = false;
	a->said_token = token;
	known = mesh_sender_funded_nonce(a->sender, &fnonce) == 0;
	r = send_registration(a);
	sent = r == 0 && mesh_sender_configured(a->sender);
	mesh_note_registration(&a->st, now, sent, known, fnonce);
}
