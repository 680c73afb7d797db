/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the agent's decision (mesh/decide.c), without sockets: signed records in,
 * a plan out, applied to a model of the device as WireGuard would apply it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "registry/registry.h"
#include "tests/unit/test-node-helpers.h"

#define CHAIN 31337
#define NODES 6

/* Node i (1..NODES-1) has instance byte i; node 1 is us unless a test says otherwise. */
static struct test_node nodes[NODES];
static struct mesh_self self;
static struct mesh_state st;
static struct buf logbuf;
static struct mesh_plan plan = { .log = &logbuf };

/* The device: what WireGuard holds, changed only by applying plans (or "by hand"). */
#define DEV_MAX 64
static struct wg_device dev;
static struct wg_peer dev_peers[DEV_MAX];
static struct ip_prefix dev_ips[DEV_MAX][4];

static void setup(void)
{
	for (int i = 1; i < NODES; i++)
		make_node(&nodes[i], (uint8_t)i);
	memset(&self, 0, sizeof(self));
	self.mode = REGISTRY_MODE_WIREGUARD;
	memcpy(self.contract, nodes[1].app_id, 20);
	memcpy(self.instance_id, nodes[1].id.instance_id, 20);
	memcpy(self.wg_public_key, nodes[1].id.wg_public_key, 32);
	snprintf(self.endpoint, sizeof(self.endpoint), "10.9.0.1:51830");
	self.chain_id = CHAIN;
	memcpy(self.kms_root, nodes[1].root, 20);
	self.listen_port = 51830;
	self.keepalive = 10;
	self.reg_spacing_ms = 15000;
	self.reg_max_per_hour = 20;
	mesh_state_init(&st);
	buf_init(&logbuf, 1 << 20);
	memset(&dev, 0, sizeof(dev));
	dev.peers = dev_peers;
	dev.listen_port = 51830;
}

static void teardown(void)
{
	mesh_plan_clear(&plan);
	mesh_state_clear(&st);
	buf_clear(&logbuf);
	for (int i = 1; i < NODES; i++)
		attest_node_secrets_free(nodes[i].secrets);
}

TestSuite(mesh_decide, .init = setup, .fini = teardown);

/* Node i's signed record: token, endpoint, nonce, on chain_id. */
static void record_on(struct registry_record *r, int i, uint64_t token, const char *endpoint,
		      uint64_t nonce, uint64_t chain_id)
{
	cr_assert_eq(registry_record_sign(&nodes[i].id, nodes[i].secrets, chain_id, nodes[i].app_id,
					endpoint, REGISTRY_MODE_WIREGUARD, nonce, r), 0);
	r->token_id = token;
}

static void record(struct registry_record *r, int i, uint64_t token, const char *endpoint, uint64_t nonce)
{
	record_on(r, i, token, endpoint, nonce, CHAIN);
}

/* Records of nodes 1..n (node i: token i, 10.9.0.i:51830, nonce 1). */
static size_t registry_of(struct registry_record *recs, int n)
{
	char ep[32];

	for (int i = 1; i <= n; i++) {
		snprintf(ep, sizeof(ep), "10.9.0.%d:51830", i);
		record(&recs[i - 1], i, (uint64_t)i, ep, 1);
	}
	return (size_t)n;
}

static void registry_free(struct registry_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		registry_record_clear(&recs[i]);
}

static void decide(const struct registry_record *recs, size_t n, bool view, bool full, uint64_t now)
{
	struct mesh_input in = {
		.now_ms = now, .have_view = view, .full = full, .recs = recs, .n_recs = n, .block = 7,
		.dev = &dev,
	};

	buf_reset(&logbuf);
	cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
	buf_terminate(&logbuf);
}

static struct wg_peer *dev_find(const uint8_t *key)
{
	for (size_t i = 0; i < dev.n_peers; i++)
		if (!memcmp(dev_peers[i].public_key, key, 32))
			return &dev_peers[i];
	return NULL;
}

/* What WireGuard does with the plan (the oracle). */
static void apply(void)
{
	for (size_t k = 0; k < plan.n_changes; k++) {
		const struct wg_peer *c = &plan.changes[k];
		struct wg_peer *p = dev_find(c->public_key);

		if (c->flags & WG_PEER_REMOVE) {
			cr_assert_not_null(p, "removing a peer the device does not have");
			size_t i = (size_t)(p - dev_peers);
			memmove(&dev_peers[i], &dev_peers[i + 1], (dev.n_peers - i - 1) * sizeof(*p));
			memmove(&dev_ips[i], &dev_ips[i + 1], (dev.n_peers - i - 1) * sizeof(dev_ips[0]));
			dev.n_peers--;
			for (size_t j = i; j < dev.n_peers; j++)
				dev_peers[j].allowedips = dev_ips[j];
			continue;
		}
		if (!p) {
			cr_assert_not(c->flags & WG_PEER_UPDATE_ONLY, "updating a peer the device does not have");
			cr_assert_lt(dev.n_peers, DEV_MAX);
			p = &dev_peers[dev.n_peers];
			memset(p, 0, sizeof(*p));
			memcpy(p->public_key, c->public_key, 32);
			p->allowedips = dev_ips[dev.n_peers++];
		}
		if (c->flags & WG_PEER_HAS_ENDPOINT)
			p->endpoint = c->endpoint;
		if (c->flags & WG_PEER_HAS_KEEPALIVE)
			p->persistent_keepalive = c->persistent_keepalive;
		if (c->flags & WG_PEER_REPLACE_ALLOWEDIPS) {
			cr_assert_leq(c->n_allowedips, 4);
			memcpy(p->allowedips, c->allowedips, c->n_allowedips * sizeof(*c->allowedips));
			p->n_allowedips = c->n_allowedips;
		}
	}
	if (plan.set_listen_port)
		dev.listen_port = self.listen_port;
	mesh_note_applied(&st, &plan);
}

static bool logged(const char *text)
{
	return logbuf.len && strstr((const char *)logbuf.data, text);
}

/* The device holds exactly the peers tokens[], each with 10.0.1.t/32 only. */
static void assert_device_holds(const int *tokens, size_t n)
{
	cr_assert_eq(dev.n_peers, n, "device has %zu peers, want %zu", dev.n_peers, n);
	for (size_t i = 0; i < n; i++) {
		struct wg_peer *p = dev_find(nodes[tokens[i]].id.wg_public_key);

		cr_assert_not_null(p, "token %d missing", tokens[i]);
		cr_assert_eq(p->n_allowedips, 1);
		cr_assert_eq(p->allowedips[0].len, 32);
		cr_assert_eq(p->allowedips[0].ip4.s_addr, mesh_overlay_addr((uint32_t)tokens[i]));
	}
}

/* Converge: registry of nodes 1..n, device in step. */
static void converge(int n, uint64_t now)
{
	struct registry_record recs[NODES];
	size_t nrecs = registry_of(recs, n);

	decide(recs, nrecs, true, true, now);
	apply();
	decide(recs, nrecs, true, false, now + 1000);
	apply();
	decide(recs, nrecs, true, false, now + 2000);
	cr_assert_eq(plan.n_changes, 0, "in step after two turns");
	registry_free(recs, nrecs);
}

/* ---- the device: one diff, every turn ---------------------------------------------------- */

Test(mesh_decide, empty_device_gets_every_verified_peer_then_nothing_to_do)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 4);
	const int want[] = { 2, 3, 4 };

	decide(recs, n, true, true, 1000);
	cr_assert(plan.publish);
	cr_assert_eq(st.n_peers, 3, "our own record is not a peer");
	cr_assert(st.registered);
	cr_assert_eq(st.token, 1);
	cr_assert_eq(plan.address_token, 1);
	cr_assert_eq(plan.n_changes, 3);
	cr_assert_not(plan.send_registration);
	apply();
	assert_device_holds(want, 3);
	/* We are token 1: the lower token initiates, so keepalive is set at once. */
	cr_assert_eq(dev_find(nodes[2].id.wg_public_key)->persistent_keepalive, 10);
	decide(recs, n, true, false, 2000);
	cr_assert_eq(plan.n_changes, 0);
	cr_assert_not(plan.publish);
	registry_free(recs, n);
}

/* Our token burned: the view lacks our record and the loop found us bound to no token. */
Test(mesh_decide, a_revoked_node_leaves_in_one_turn_and_sends_nothing)
{
	struct registry_record recs[NODES];
	size_t n;

	converge(3, 1000);
	n = registry_of(recs, 3);
	struct mesh_input in = { .now_ms = 5000, .have_view = true, .recs = recs + 1, .n_recs = n - 1,
				 .block = 8, .dev = &dev, .revoked = true, .registry_read = true };

	buf_reset(&logbuf);
	cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
	buf_terminate(&logbuf);
	cr_assert(st.revoked);
	cr_assert_not(st.registered);
	cr_assert_eq(st.n_peers, 0);
	cr_assert(plan.publish, "the empty list is published");
	cr_assert_not(plan.send_registration);
	cr_assert_eq(plan.address_token, 0);
	cr_assert(logged("leaving the mesh"));
	apply();
	assert_device_holds(NULL, 0);
	/* Later turns, with or without a view: nothing comes back, nothing is sent. */
	for (uint64_t t = 6000; t < 60000; t += 1000) {
		in.now_ms = t;
		in.have_view = t % 2000 == 0;
		cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
		cr_assert_not(plan.send_registration);
		cr_assert_eq(plan.n_changes, 0);
	}
	registry_free(recs, n);
}

Test(mesh_decide, drift_is_repaired_in_one_turn_without_the_rpc)
{
	const int want[] = { 2, 3, 4 };
	struct wg_peer *p;

	converge(4, 1000);
	/* By hand: remove token 2, widen token 3's allowed IPs, add a foreign peer that claims
	 * token 4's overlay address, change the listen port. */
	p = dev_find(nodes[2].id.wg_public_key);
	*p = dev_peers[--dev.n_peers];
	memcpy(dev_ips[p - dev_peers], dev_ips[dev.n_peers], sizeof(dev_ips[0]));
	p->allowedips = dev_ips[p - dev_peers];
	p = dev_find(nodes[3].id.wg_public_key);
	p->allowedips[0].len = 24;
	p = &dev_peers[dev.n_peers];
	memset(p, 0, sizeof(*p));
	memset(p->public_key, 0xee, 32);
	p->allowedips = dev_ips[dev.n_peers++];
	p->allowedips[0] = (struct ip_prefix){ .family = AF_INET, .len = 32 };
	p->allowedips[0].ip4.s_addr = mesh_overlay_addr(4);
	p->n_allowedips = 1;
	dev.listen_port = 40000;

	/* The RPC is down this turn: no view, the device is repaired all the same. */
	decide(NULL, 0, false, false, 10000);
	cr_assert_eq(plan.n_changes, 3, "add 2, fix 3, remove the foreign peer: %zu", plan.n_changes);
	cr_assert(plan.set_listen_port);
	cr_assert(logged("restoring it"));
	apply();
	assert_device_holds(want, 3);
	cr_assert_eq(dev.listen_port, 51830);
	decide(NULL, 0, false, false, 11000);
	cr_assert_eq(plan.n_changes, 0);
	cr_assert_not(plan.set_listen_port);
}

Test(mesh_decide, roamed_endpoint_is_kept_until_the_registry_changes_it)
{
	struct registry_record recs[NODES];
	size_t n;
	struct wg_peer *p;

	converge(3, 1000);
	p = dev_find(nodes[2].id.wg_public_key);
	cr_assert_eq(wg_endpoint_parse(&p->endpoint, "203.0.113.9:4000", NULL), 0);  /* NAT */
	n = registry_of(recs, 3);
	decide(recs, n, true, true, 5000);
	cr_assert_eq(plan.n_changes, 0, "roaming is respected");
	registry_record_clear(&recs[1]);
	record(&recs[1], 2, 2, "10.9.0.22:51830", 2);
	decide(recs, n, true, false, 6000);
	cr_assert_eq(plan.n_changes, 1);
	cr_assert(plan.changes[0].flags & WG_PEER_HAS_ENDPOINT, "a new registered endpoint wins");
	cr_assert_not(plan.changes[0].flags & WG_PEER_REPLACE_ALLOWEDIPS);
	registry_free(recs, n);
}

Test(mesh_decide, higher_token_adds_without_keepalive_then_sets_it)
{
	struct registry_record recs[NODES];
	size_t n;

	/* We are node 3 now: node 2 (lower) initiates, we add it quietly first. */
	memcpy(self.instance_id, nodes[3].id.instance_id, 20);
	memcpy(self.wg_public_key, nodes[3].id.wg_public_key, 32);
	snprintf(self.endpoint, sizeof(self.endpoint), "10.9.0.3:51830");
	n = registry_of(recs, 3);
	decide(recs, n, true, true, 1000);
	apply();
	cr_assert_eq(dev_find(nodes[2].id.wg_public_key)->persistent_keepalive, 0);
	cr_assert_eq(dev_find(nodes[1].id.wg_public_key)->persistent_keepalive, 0);
	decide(recs, n, false, false, 2000);
	cr_assert_eq(plan.n_changes, 2);
	apply();
	cr_assert_eq(dev_find(nodes[2].id.wg_public_key)->persistent_keepalive, 10);
	registry_free(recs, n);
}

/* ---- point 2: registration spacing, hourly cap, pending by the funded key's nonce ------- */

/* How the turns see the registry while our record is hidden. */
enum hidden_turns {
	VIEW_EVERY_TURN,      /* as if every turn brought news */
	VIEW_THEN_IDLE,       /* a view on the first turn, then an unchanged registry */
	VIEW_THEN_RPC_DOWN,   /* a view on the first turn, then no answer */
};

/* Turns of 1 s for `seconds` with our record hidden; the funded nonce advances by each send
 * when mined, else stays. Turns without a view must log nothing. Returns the sends. */
static int turns_hidden(int seconds, bool mined, uint64_t t0, enum hidden_turns how)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 3);
	uint64_t funded = 100;
	int sends = 0;

	for (int s = 0; s < seconds; s++) {
		bool view = s == 0 || how == VIEW_EVERY_TURN;
		struct mesh_input in = {
			.now_ms = t0 + (uint64_t)s * 1000, .have_view = view, .full = false,
			.registry_read = view || how == VIEW_THEN_IDLE, .dev = &dev,
			.recs = view ? recs + 1 : NULL, .n_recs = view ? n - 1 : 0,
			.funded_nonce_known = true, .funded_nonce = funded,
		};

		buf_reset(&logbuf);
		cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
		buf_terminate(&logbuf);
		cr_assert(view || !logbuf.len, "turn %d logged: %s", s, (char *)logbuf.data);
		apply();
		if (plan.send_registration) {
			sends++;
			mesh_note_registration(&st, in.now_ms, true, true, funded);
			if (mined)
				funded++;
		}
	}
	cr_assert_eq(st.n_peers, 2, "the first view's peers stay");
	registry_free(recs, n);
	return sends;
}

static int hide_own_record(int seconds, bool mined, uint64_t t0)
{
	return turns_hidden(seconds, mined, t0, VIEW_EVERY_TURN);
}

Test(mesh_decide, hidden_own_record_registers_at_most_every_15_s)
{
	int sends = hide_own_record(40, true, 1000);

	cr_assert_eq(sends, 3, "40 s hidden, 15 s spacing: %d sends", sends);
}

Test(mesh_decide, pending_registration_is_not_sent_again)
{
	int sends = hide_own_record(120, false, 1000);

	cr_assert_eq(sends, 1, "the funded key's nonce never moved: %d sends", sends);
}

Test(mesh_decide, hourly_cap_then_only_log)
{
	int sends = hide_own_record(3600, true, 1000);

	cr_assert_eq(sends, 20, "an hour hidden: %d sends", sends);
	cr_assert(st.reg_capped_said);
	sends = hide_own_record(60, true, 1000 + 3600 * 1000 + 20000);
	cr_assert_geq(sends, 1, "a new hour allows sends again");
}

Test(mesh_decide, failed_send_still_spaces)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 3);
	int sends = 0;

	for (int s = 0; s < 30; s++) {
		decide(recs + 1, n - 1, true, false, 1000 + (uint64_t)s * 1000);
		if (plan.send_registration) {
			sends++;
			mesh_note_registration(&st, 1000 + (uint64_t)s * 1000, false, false, 0);
		}
	}
	cr_assert_eq(sends, 2, "%d attempts in 30 s", sends);
	registry_free(recs, n);
}

/*
 * Issue 12, point 2: unregistered and the registry unchanged, the turns after the first
 * view decide on no records (the loop passes none, nothing is verified again) and log
 * nothing, and the registration is retried on the same spacing; with the RPC down, no
 * more is sent.
 */
Test(mesh_decide, unregistered_idle_turns_retry_without_a_view)
{
	int sends = turns_hidden(40, true, 1000, VIEW_THEN_IDLE);

	cr_assert_eq(sends, 3, "40 s unregistered, registry unchanged, 15 s spacing: %d sends", sends);
}

Test(mesh_decide, unregistered_with_the_rpc_down_sends_nothing_more)
{
	int sends = turns_hidden(40, true, 1000, VIEW_THEN_RPC_DOWN);

	cr_assert_eq(sends, 1, "only the first turn's view registered: %d sends", sends);
}

/* ---- point 3: no rollback to an older record ---------------------------------------------- */

Test(mesh_decide, replayed_older_record_keeps_the_newer_one)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 3);
	struct wg_peer *p;
	union wg_endpoint want;

	registry_record_clear(&recs[1]);
	record(&recs[1], 2, 2, "10.9.0.22:51830", 5);
	decide(recs, n, true, true, 1000);
	apply();
	/* The RPC now serves node 2's nonce-4 record with its old endpoint. */
	registry_record_clear(&recs[1]);
	record(&recs[1], 2, 2, "10.9.0.2:51830", 4);
	decide(recs, n, true, false, 2000);
	cr_assert(logged("older than the nonce 5"), "%s", (char *)logbuf.data);
	cr_assert_eq(plan.n_changes, 0, "nothing rolls back");
	cr_assert_not(plan.publish);
	cr_assert_eq(st.peers[0].nonce, 5);
	cr_assert_str_eq(st.peers[0].endpoint, "10.9.0.22:51830");
	p = dev_find(nodes[2].id.wg_public_key);
	wg_endpoint_parse(&want, "10.9.0.22:51830", NULL);
	cr_assert_eq(p->endpoint.in.sin_addr.s_addr, want.in.sin_addr.s_addr);
	/* Warned once. */
	decide(recs, n, true, true, 3000);
	cr_assert_not(logged("older than"));
	/* A newer record still wins. */
	registry_record_clear(&recs[1]);
	record(&recs[1], 2, 2, "10.9.0.23:51830", 6);
	decide(recs, n, true, false, 4000);
	cr_assert_eq(plan.n_changes, 1);
	cr_assert_str_eq(st.peers[0].endpoint, "10.9.0.23:51830");
	registry_free(recs, n);
}

/* ---- point 4: a view that would empty the mesh is confirmed first ----------------------- */

Test(mesh_decide, empty_registry_needs_a_fresh_full_read)
{
	const int want[] = { 2, 3 };

	converge(3, 1000);
	decide(NULL, 0, true, false, 5000);
	cr_assert(plan.recheck);
	cr_assert(logged("reads empty"));
	cr_assert_eq(plan.n_changes, 0);
	cr_assert_eq(st.n_peers, 2);
	decide(NULL, 0, true, false, 6000);
	cr_assert_eq(st.n_peers, 2, "a follow step does not confirm");
	apply();
	assert_device_holds(want, 2);
	decide(NULL, 0, true, true, 7000);
	cr_assert_eq(st.n_peers, 0, "a fresh full read confirms");
	cr_assert_eq(plan.n_changes, 2);
}

Test(mesh_decide, nothing_verifies_ours_included_needs_a_fresh_full_read)
{
	struct registry_record recs[NODES];
	char ep[32];
	const int want[] = { 2, 3 };

	converge(3, 1000);
	/* Every record served as if for another chain: none verifies, ours neither. */
	for (int i = 1; i <= 3; i++) {
		snprintf(ep, sizeof(ep), "10.9.0.%d:51830", i);
		record_on(&recs[i - 1], i, (uint64_t)i, ep, 1, 1);
	}
	decide(recs, 3, true, true, 5000);
	cr_assert(plan.recheck);
	cr_assert(logged("no record that verifies"));
	cr_assert_eq(plan.n_changes, 0);
	cr_assert(st.registered, "our registration is not doubted on such a view");
	cr_assert_not(plan.send_registration);
	apply();
	assert_device_holds(want, 2);
	registry_free(recs, 3);
	/* The RPC answers right again: nothing was lost. */
	converge(3, 6000);
	assert_device_holds(want, 2);
}

/* ---- the on-change contract: the first list is published even when empty ------------------ */

Test(mesh_decide, first_view_is_published_even_when_empty)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 1);  /* only our own record: no peers */

	decide(recs, n, true, true, 1000);
	cr_assert_eq(st.n_peers, 0);
	cr_assert(plan.publish, "the first (empty) list is published");
	cr_assert_eq(st.generation, 1);
	mesh_plan_clear(&plan);
	decide(recs, n, true, true, 2000);
	cr_assert_not(plan.publish, "an unchanged list is not published again");
	cr_assert_eq(st.generation, 1);
	registry_free(recs, n);
}
/* ---- point 7: two providers; one's omission never removes a peer ------------------------ */

static void decide2(const struct registry_record *a, size_t na, const struct registry_record *b, size_t nb,
		    bool full, uint64_t now)
{
	struct mesh_input in = {
		.now_ms = now, .have_view = true, .full = full, .recs = a, .n_recs = na, .block = 9,
		.recs2 = b, .n_recs2 = nb, .provider = "http://a", .provider2 = "http://b",
		.block_disagreement = "", .dev = &dev,
	};

	buf_reset(&logbuf);
	cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
	buf_terminate(&logbuf);
}

Test(mesh_decide, one_providers_omission_removes_nothing)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 3);
	const int want[] = { 2, 3 };

	decide2(recs, n, recs, n, true, 1000);
	apply();
	assert_device_holds(want, 2);
	cr_assert_str_eq(st.disagreement, "");
	/* b omits token 3: kept, and the disagreement is logged and kept for status. */
	decide2(recs, n, recs, 2, false, 2000);
	cr_assert_eq(plan.n_changes, 0);
	cr_assert_eq(st.n_peers, 2);
	cr_assert(logged("disagree"), "%s", (char *)logbuf.data);
	cr_assert(strstr(st.disagreement, "http://b omits token 3"), "%s", st.disagreement);
	/* Logged once while it lasts. */
	decide2(recs, n, recs, 2, true, 3000);
	cr_assert_not(logged("disagree"));
	cr_assert_eq(st.disagreements, 2);
	/* a (the followed one) omits token 3 and our own record: b still serves them. */
	decide2(recs + 1, 1, recs, n, true, 4000);
	cr_assert_eq(plan.n_changes, 0);
	cr_assert(st.registered);
	cr_assert_not(plan.send_registration);
	cr_assert(strstr(st.disagreement, "http://a omits token 3"), "%s", st.disagreement);
	/* They agree again. */
	decide2(recs, n, recs, n, true, 5000);
	cr_assert(logged("agree again"));
	cr_assert_str_eq(st.disagreement, "");
	assert_device_holds(want, 2);
	registry_free(recs, n);
}

Test(mesh_decide, of_two_providers_the_newer_verified_record_wins)
{
	struct registry_record a[NODES], b[NODES];
	size_t n = registry_of(a, 3);

	registry_of(b, 3);
	registry_record_clear(&b[1]);
	record(&b[1], 2, 2, "10.9.0.22:51830", 3);
	decide2(a, n, b, n, true, 1000);
	cr_assert_eq(st.peers[0].token, 2);
	cr_assert_eq(st.peers[0].nonce, 3);
	cr_assert_str_eq(st.peers[0].endpoint, "10.9.0.22:51830");
	cr_assert(strstr(st.disagreement, "token 2: nonce 1 at http://a, 3 at http://b"), "%s", st.disagreement);
	/* A newer record that does not verify loses to the older one that does. */
	registry_record_clear(&b[2]);
	record(&b[2], 3, 3, "10.9.0.33:51830", 9);
	b[2].node_signature[5] ^= 1;
	decide2(a, n, b, n, false, 2000);
	cr_assert_str_eq(st.peers[1].endpoint, "10.9.0.3:51830");
	registry_free(a, n);
	registry_free(b, n);
}

Test(mesh_decide, a_registration_never_mined_is_given_up_after_ten_minutes)
{
	int sends = hide_own_record(660, false, 1000);

	cr_assert_eq(sends, 2, "pending for 10 min, then sent again: %d sends", sends);
}

/* ---- point 5: a chain id nothing has confirmed, under which nothing verifies ------------- */

Test(mesh_decide, nothing_verifying_under_an_unconfirmed_chain_id_refuses_the_view)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 3);
	struct mesh_input in = {
		.now_ms = 1000, .have_view = true, .full = true, .recs = recs, .n_recs = n,
		.chain_unconfirmed = true, .dev = &dev,
	};
	const int want[] = { 2, 3 };

	/* The device holds peers from our last run; the RPC names chain 1 at start. */
	converge(3, 1);
	mesh_state_clear(&st);
	mesh_state_init(&st);
	self.chain_id = 1;
	cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
	cr_assert(plan.refuse_view);
	cr_assert_eq(plan.n_changes, 0, "peers adopted from the last run stay");
	cr_assert_not(plan.send_registration);
	cr_assert_not(st.applied_view);
	in.now_ms = 2000;
	cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
	cr_assert_eq(plan.n_changes, 0, "no view applied yet: the device is left alone");
	/* The RPC answers right: everything verifies, nothing was lost. */
	self.chain_id = CHAIN;
	in.now_ms = 3000;
	cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
	cr_assert_not(plan.refuse_view);
	cr_assert(st.registered);
	apply();
	assert_device_holds(want, 2);
	registry_free(recs, n);
}

Test(mesh_decide, a_tls_node_among_wireguard_records_is_not_refused)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 3);
	struct mesh_input in = {
		.now_ms = 1000, .have_view = true, .full = true, .recs = recs + 1, .n_recs = n - 1,
		.chain_unconfirmed = true,
	};

	self.mode = REGISTRY_MODE_TLS_GATEWAY;
	memset(self.wg_public_key, 0, 32);
	cr_assert_eq(mesh_decide(&st, &self, &in, &plan), 0);
	cr_assert_not(plan.refuse_view, "their records verify: the chain id is right");
	cr_assert_not(plan.recheck);
	cr_assert_eq(st.n_peers, 0);
	cr_assert(plan.send_registration, "our record is missing: register");
	registry_free(recs, n);
}

Test(mesh_decide, an_rpc_that_flaps_our_record_does_not_reset_the_spacing)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 3);
	int sends = 0;

	for (int s = 0; s < 60; s++) {
		bool hide = s % 2;
		uint64_t now = 1000 + (uint64_t)s * 1000;

		decide(hide ? recs + 1 : recs, hide ? n - 1 : n, true, false, now);
		if (plan.send_registration) {
			sends++;
			mesh_note_registration(&st, now, true, false, 0);
		}
	}
	cr_assert_leq(sends, 4, "60 s of a record shown and hidden every poll: %d sends", sends);
	registry_free(recs, n);
}

/* ---- point 1: a record whose chain ends at another KMS root is never a peer --------------- */

Test(mesh_decide, a_record_under_another_kms_root_is_never_programmed)
{
	struct registry_record recs[NODES + 1];
	size_t n = registry_of(recs, 3);
	struct test_node forged;
	const int want[] = { 2, 3 };

	converge(3, 1000);
	/* The attacker's own KMS root signs a node that claims token 2's overlay address. */
	make_node_rooted(&forged, 0x77, 9);
	cr_assert_eq(registry_record_sign(&forged.id, forged.secrets, CHAIN, forged.app_id, "10.9.0.66:51830",
					REGISTRY_MODE_WIREGUARD, 1, &recs[n]), 0);
	recs[n].token_id = 2;
	decide(recs, n + 1, true, true, 5000);
	cr_assert_eq(plan.n_changes, 0, "nothing programmed");
	cr_assert(logged("not by the expected KMS root"), "%s", (char *)logbuf.data);
	apply();
	assert_device_holds(want, 2);
	registry_free(recs, n + 1);
	attest_node_secrets_free(forged.secrets);
}

/* ---- the verified cache: a record is verified once, again only when it differs --------- */

Test(mesh_decide, a_record_seen_before_is_not_verified_again)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 4);
	const int want[] = { 2, 3, 4 };
	uint64_t misses;

	decide(recs, n, true, true, 1000);
	apply();
	assert_device_holds(want, 3);
	misses = st.verified.misses;
	cr_assert_eq(misses, 4, "ours and three peers verified once each");
	/* The same view (a follow step, the periodic full re-read): nothing verified again. */
	decide(recs, n, true, false, 2000);
	decide(recs, n, true, true, 3000);
	cr_assert_eq(st.verified.misses, misses);
	cr_assert_geq(st.verified.hits, 8);
	cr_assert_eq(plan.n_changes, 0);
	/* Node 3 moves (a new nonce): that one record is verified. */
	registry_record_clear(&recs[2]);
	record(&recs[2], 3, 3, "10.9.0.33:51830", 2);
	decide(recs, n, true, false, 4000);
	cr_assert_eq(st.verified.misses, misses + 1);
	cr_assert_str_eq(st.peers[1].endpoint, "10.9.0.33:51830");
	registry_free(recs, n);
}

/* Same token and nonce, one byte of the signature changed: verified again, and refused. */
Test(mesh_decide, the_cache_keys_on_every_byte_not_on_token_and_nonce)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 4);
	const int want[] = { 2, 3 };
	uint64_t misses;

	decide(recs, n, true, true, 1000);
	apply();
	misses = st.verified.misses;
	recs[3].node_signature[10] ^= 0x01;
	decide(recs, n, true, false, 2000);
	cr_assert_eq(st.verified.misses, misses + 1);
	cr_assert(logged("dropping the record of token 4"), "%s", (char *)logbuf.data);
	apply();
	assert_device_holds(want, 2);
	/* A verdict holds only under the KMS root it was reached under. */
	misses = st.verified.misses;
	self.kms_root[0] ^= 0x01;
	decide(recs, n, true, true, 3000);
	cr_assert_eq(st.verified.misses, misses + 4, "each record verified again");
	cr_assert(plan.recheck, "nothing verifies under the other root");
	self.kms_root[0] ^= 0x01;
	registry_free(recs, n);
}

Test(mesh_decide, a_token_that_left_the_registry_is_forgotten)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 4);

	decide(recs, n, true, true, 1000);
	cr_assert(st.verified.by_token[4][0].used);
	decide(recs, n - 1, true, false, 2000);
	cr_assert_not(st.verified.by_token[4][0].used);
	cr_assert_not(st.verified.by_token[4][1].used);
	cr_assert(st.verified.by_token[3][0].used);
	registry_free(recs, n);
}

/* A peer that leaves is logged by the overlay address the device gave it, not its key only. */
Test(mesh_decide, a_removed_peer_is_logged_with_its_address)
{
	struct registry_record recs[NODES];
	size_t n = registry_of(recs, 4);
	char key[WG_KEY_B64_LEN], line[128];

	decide(recs, n, true, true, 1000);
	apply();
	decide(recs, n - 1, true, false, 2000);
	cr_assert_eq(plan.n_changes, 1);
	wg_key_to_base64(key, nodes[4].id.wg_public_key);
	snprintf(line, sizeof(line), "peer 10.0.1.4 (%s): removed", key);
	cr_assert(logged(line), "%s", (char *)logbuf.data);
	registry_free(recs, n);
}
