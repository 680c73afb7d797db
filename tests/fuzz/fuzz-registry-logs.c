/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: what the registry follower takes from the RPC on a change. The input is read
 * three ways: as an eth_getLogs reply (JSON) whose logs go through registry_log_token; as
 * one log built from the bytes (an event of the contract chosen by the first byte, so the
 * fuzzer reaches the topic and data checks past topic 0); and as getPeerByToken return data.
 */
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "registry/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t contract[20] = { 0xc0, 0x47 };

static const char *const events[] = {
	"PeerRegistered(uint256,address,bytes32,string,uint8,uint64)",
	"PeerUpdated(uint256,address,bytes32,string,uint8,uint64)",
	"PeerRemoved(uint256,address,uint8)",
	"InstanceBound(uint256,address)",
	"InstanceUnbound(uint256,address)",
	"Transfer(address,address,uint256)",
	"NodeAccessMinted(uint256,address,string)",
	"LeaderChanged(uint256,uint256,uint64,uint64,uint8)",
};

/* A log from the bytes: [event][ntopics][address byte][topics 1..3 as 32-byte words][data]. */
static void one_log(const uint8_t *data, size_t size)
{
	static uint8_t topics[sizeof(events) / sizeof(events[0])][32];
	static bool ready;
	struct eth_log log = { 0 };
	uint64_t token;
	size_t words;

	if (!ready) {
		for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
			abi_event_topic(events[i], topics[i]);
		ready = true;
	}
	if (size < 3)
		return;
	memcpy(log.address, contract, 20);
	log.address[19] = data[2] & 1;     /* now and then another contract */
	memcpy(log.topics[0], topics[data[0] % (sizeof(events) / sizeof(events[0]))], 32);
	log.ntopics = data[1] % 6;         /* 0..5: also counts a parser never gives */
	data += 3;
	size -= 3;
	words = log.ntopics > 1 ? (log.ntopics < 4 ? log.ntopics : 4) - 1 : 0;
	for (size_t i = 0; i < words && size >= 32; i++, data += 32, size -= 32)
		memcpy(log.topics[1 + i], data, 32);
	/* The data in a buffer of its own size, so ASan sees any read past it. */
	log.data = size ? malloc(size) : NULL;
	if (size && !log.data)
		return;
	if (size)
		memcpy(log.data, data, size);
	log.data_len = size;
	if (registry_log_token(&log, contract, &token) == 1 && (token < 1 || token > REGISTRY_MAX_PEERS))
		abort();
	free(log.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct registry_record p;
	struct eth_log *logs = NULL;
	size_t n = 0;
	struct err_detail why;
	uint64_t token;

	if (eth_parse_logs((const char *)data, size, &logs, &n) == 0)
		for (size_t i = 0; i < n; i++)
			if (registry_log_token(&logs[i], contract, &token) == 1 &&
			    (token < 1 || token > REGISTRY_MAX_PEERS))
				abort();
	eth_logs_free(logs, n);
	one_log(data, size);
	if (registry_decode_peer(data, size, &p, &why) == 0)
		registry_record_clear(&p);
	return 0;
}
