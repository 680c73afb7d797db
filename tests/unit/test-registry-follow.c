/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of what the registry follower takes from a change (registry/abi.c,
 * registry/reader.c): the contract's logs decoded to the tokens they name (topics and
 * data built by cast, not by our encoder), one getPeerByToken reply decoded, and the
 * patching of the peer set by the records read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/internal.h"
#include "tests/unit/test-chain-helpers.h"

static const uint8_t contract[20] = { 0xc0, 0x47, 0x12, [19] = 0x01 };

/* topic 0 of an event signature, as cast computes it. */
static void cast_topic(uint8_t out[static 32], const char *sig)
{
	char *hex = cast_output("keccak '%s'", sig);

	unhex(out, 32, hex);
	free(hex);
}

/* A uint256 / address topic. */
static void word_of(uint8_t out[static 32], uint64_t v)
{
	memset(out, 0, 32);
	for (int i = 0; i < 8; i++)
		out[31 - i] = (uint8_t)(v >> (8 * i));
}

/* A log of contract with topic 0 of sig, the given indexed words and data (cast hex or NULL). */
static void make_log(struct eth_log *log, const char *sig, size_t nwords, const uint64_t *words,
		     const char *data_hex)
{
	memset(log, 0, sizeof(*log));
	memcpy(log->address, contract, 20);
	cast_topic(log->topics[0], sig);
	for (size_t i = 0; i < nwords; i++)
		word_of(log->topics[1 + i], words[i]);
	log->ntopics = 1 + nwords;
	if (data_hex) {
		size_t n = (strlen(data_hex) - 2) / 2;

		log->data = malloc(n + 1);
		cr_assert_not_null(log->data);
		unhex(log->data, n, data_hex);
		log->data_len = n;
	}
}

static void free_log(struct eth_log *log)
{
	free(log->data);
	log->data = NULL;
}

#define REGISTERED "PeerRegistered(uint256,address,bytes32,string,uint8,uint64)"
#define UPDATED "PeerUpdated(uint256,address,bytes32,string,uint8,uint64)"
#define REMOVED "PeerRemoved(uint256,address,uint8)"
#define PEER_DATA_SIG "'f(bytes32,string,uint8,uint64)' 0x" \
	"1111111111111111111111111111111111111111111111111111111111111111 '10.0.0.7:51820' 1 9"

Test(registry_log, each_event_that_changes_a_record_names_its_token)
{
	char *data = cast_output("abi-encode " PEER_DATA_SIG);
	char *removed = cast_output("abi-encode 'f(uint8)' 1");
	struct eth_log log;
	uint64_t token;

	make_log(&log, REGISTERED, 2, (uint64_t[]){ 7, 0xabc }, data);
	cr_assert_eq(registry_log_token(&log, contract, &token), 1);
	cr_assert_eq(token, 7);
	free_log(&log);
	make_log(&log, UPDATED, 2, (uint64_t[]){ 254, 0xabc }, data);
	cr_assert_eq(registry_log_token(&log, contract, &token), 1);
	cr_assert_eq(token, 254);
	free_log(&log);
	make_log(&log, REMOVED, 2, (uint64_t[]){ 3, 0xabc }, removed);
	cr_assert_eq(registry_log_token(&log, contract, &token), 1);
	cr_assert_eq(token, 3);
	free_log(&log);
	make_log(&log, "InstanceUnbound(uint256,address)", 2, (uint64_t[]){ 12, 0xabc }, NULL);
	cr_assert_eq(registry_log_token(&log, contract, &token), 1);
	cr_assert_eq(token, 12);
	/* A burn: Transfer(holder, 0, token), the token in the third indexed topic. */
	make_log(&log, "Transfer(address,address,uint256)", 3, (uint64_t[]){ 0xabc, 0, 44 }, NULL);
	cr_assert_eq(registry_log_token(&log, contract, &token), 1);
	cr_assert_eq(token, 44);
	free(data);
	free(removed);
}

Test(registry_log, events_that_change_no_record_name_nothing)
{
	char *label = cast_output("abi-encode 'f(string)' bench");
	char *lead = cast_output("abi-encode 'f(uint64,uint64,uint8)' 3 99 0");
	char *epoch = cast_output("abi-encode 'f(uint64)' 30");
	struct eth_log log;
	uint64_t token = 99;

	make_log(&log, "NodeAccessMinted(uint256,address,string)", 2, (uint64_t[]){ 5, 0xabc }, label);
	cr_assert_eq(registry_log_token(&log, contract, &token), 0);
	cr_assert_eq(token, 0);
	free_log(&log);
	make_log(&log, "LeaderChanged(uint256,uint256,uint64,uint64,uint8)", 2, (uint64_t[]){ 1, 2 }, lead);
	cr_assert_eq(registry_log_token(&log, contract, &token), 0);
	free_log(&log);
	make_log(&log, "PskEpochSet(uint64)", 0, NULL, epoch);
	cr_assert_eq(registry_log_token(&log, contract, &token), 0, "a new PSK epoch changes no record");
	free_log(&log);
	free(label);
	free(lead);
	free(epoch);
}

/* A lying log costs at most a full read: each of these is refused, none names a token. */
Test(registry_log, a_log_not_to_be_taken_at_its_word_is_refused)
{
	char *data = cast_output("abi-encode " PEER_DATA_SIG);
	struct eth_log log;
	uint64_t token;

	/* another contract */
	make_log(&log, REGISTERED, 2, (uint64_t[]){ 7, 0xabc }, data);
	log.address[0] ^= 1;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	log.address[0] ^= 1;
	/* a topic missing, or one too many */
	log.ntopics = 2;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	log.ntopics = 4;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	log.ntopics = 3;
	/* the string's length word points past the data; data not whole words; data cut short */
	log.data[5 * 32 - 1] = 0xff;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	log.data[5 * 32 - 1] = 14;
	log.data_len -= 1;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	log.data_len = 4 * 32;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	free_log(&log);
	/* tokens outside 1..254, or with bits above 64 */
	make_log(&log, REGISTERED, 2, (uint64_t[]){ 0, 0xabc }, data);
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	free_log(&log);
	make_log(&log, REGISTERED, 2, (uint64_t[]){ 255, 0xabc }, data);
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	log.topics[1][31] = 7;
	log.topics[1][0] = 1;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	free_log(&log);
	/* PeerRemoved with more data than its one word */
	make_log(&log, REMOVED, 2, (uint64_t[]){ 3, 0xabc }, data);
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	free_log(&log);
	/* an event the contract does not have */
	make_log(&log, "PeerMoved(uint256)", 1, (uint64_t[]){ 3 }, NULL);
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	/* no topic at all */
	log.ntopics = 0;
	cr_assert_eq(registry_log_token(&log, contract, &token), -EBADMSG);
	free(data);
}

#define PEER_TUPLE "'f((uint256,address,bytes32,string,uint8,uint64,bytes,bytes,bytes,bytes,bytes))'"

/* abi.encode(Peer) of token 9 as cast encodes it; 'endpoint' is the endpoint argument. */
static char *cast_peer(const char *endpoint, unsigned sig_len)
{
	char k64[131] = "0x", s[2 * 65 + 3] = "0x", s_bad[2 * 66 + 3] = "0x";

	memset(k64 + 2, 'a', 128);
	k64[130] = 0;
	memset(s + 2, 'b', 130);
	s[132] = 0;
	memset(s_bad + 2, 'b', 2 * sig_len);
	s_bad[2 + 2 * sig_len] = 0;
	return cast_output("abi-encode " PEER_TUPLE " '(9,0x00000000000000000000000000000000000000a9,0x%064x,%s,1,3,"
			   "%s,%s,%s,%s,%s)'", 0x77, endpoint, k64, k64, s, s, s_bad);
}

Test(registry_record, one_record_decodes_and_a_malformed_one_says_why)
{
	struct registry_record p;
	struct err_detail why = { "" };
	char *hex = cast_peer("10.0.0.9:51820", 65);
	size_t n = (strlen(hex) - 2) / 2;
	uint8_t *data = malloc(n);

	unhex(data, n, hex);
	cr_assert_eq(registry_decode_peer(data, n, &p, &why), 0, "%s", why.text);
	cr_assert_eq(p.token_id, 9);
	cr_assert_eq(p.nonce, 3);
	cr_assert_eq(p.mode, REGISTRY_MODE_WIREGUARD);
	cr_assert_eq(p.instance_id[19], 0xa9);
	cr_assert_eq(p.wg_public_key[31], 0x77);
	cr_assert_str_eq(p.endpoint, "10.0.0.9:51820");
	cr_assert_eq(p.node_signature[64], 0xbb);
	registry_record_clear(&p);
	/* cut short: offsets outside the data */
	cr_assert_eq(registry_decode_peer(data, n / 2, &p, &why), -EPROTO);
	cr_assert_eq(registry_decode_peer(data, 0, &p, &why), -EPROTO);
	free(data);
	free(hex);
	/* a 66-byte node signature */
	hex = cast_peer("10.0.0.9:51820", 66);
	n = (strlen(hex) - 2) / 2;
	data = malloc(n);
	unhex(data, n, hex);
	cr_assert_eq(registry_decode_peer(data, n, &p, &why), -EBADMSG);
	cr_assert(strstr(why.text, "node signature"), "%s", why.text);
	cr_assert_null(p.endpoint);
	free(data);
	free(hex);
}

/* ---- patching the set ------------------------------------------------------------------ */

static void peer(struct registry_record *p, uint64_t token, uint64_t nonce)
{
	char ep[32];

	memset(p, 0, sizeof(*p));
	p->token_id = token;
	p->nonce = nonce;
	p->instance_id[19] = (uint8_t)token;
	snprintf(ep, sizeof(ep), "10.0.0.%llu:51820", (unsigned long long)token);
	p->endpoint = strdup(ep);
	cr_assert_not_null(p->endpoint);
}

/* The set 1, 3, 5 (nonce 1), sorted as getPeers() returns it. */
static void set_135(struct registry_record **set, size_t *n)
{
	*set = calloc(3, sizeof(**set));
	cr_assert_not_null(*set);
	peer(&(*set)[0], 1, 1);
	peer(&(*set)[1], 3, 1);
	peer(&(*set)[2], 5, 1);
	*n = 3;
}

Test(registry_patch, named_tokens_are_updated_inserted_and_removed_in_order)
{
	bool named[REGISTRY_MAX_PEERS + 1] = { false };
	struct registry_record *set, got[2];
	size_t n;
	bool changed;

	set_135(&set, &n);
	named[3] = named[4] = named[5] = true;   /* 3 updated, 4 new, 5 has no record any more */
	peer(&got[0], 4, 1);
	peer(&got[1], 3, 2);
	cr_assert_eq(registry_peers_patch(&set, &n, named, got, 2, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(n, 3);
	cr_assert_eq(set[0].token_id, 1);
	cr_assert_eq(set[1].token_id, 3);
	cr_assert_eq(set[1].nonce, 2);
	cr_assert_eq(set[2].token_id, 4);
	registry_records_free(set, n);
}

Test(registry_patch, the_same_records_read_again_are_no_change)
{
	bool named[REGISTRY_MAX_PEERS + 1] = { false };
	struct registry_record *set, got[1];
	size_t n;
	bool changed = true;

	set_135(&set, &n);
	named[3] = true;
	named[200] = true;                       /* named, no record before or after */
	peer(&got[0], 3, 1);
	cr_assert_eq(registry_peers_patch(&set, &n, named, got, 1, &changed), 0);
	cr_assert_not(changed);
	cr_assert_eq(n, 3);
	registry_records_free(set, n);
}

Test(registry_patch, removing_every_record_leaves_an_empty_set)
{
	bool named[REGISTRY_MAX_PEERS + 1] = { false };
	struct registry_record *set;
	size_t n;
	bool changed;

	set_135(&set, &n);
	named[1] = named[3] = named[5] = true;
	cr_assert_eq(registry_peers_patch(&set, &n, named, NULL, 0, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(n, 0);
	cr_assert_null(set);
	/* and from empty, one record in */
	struct registry_record one;

	peer(&one, 9, 1);
	memset(named, 0, sizeof(named));
	named[9] = true;
	cr_assert_eq(registry_peers_patch(&set, &n, named, &one, 1, &changed), 0);
	cr_assert(changed);
	cr_assert_eq(n, 1);
	cr_assert_eq(set[0].token_id, 9);
	registry_records_free(set, n);
}
