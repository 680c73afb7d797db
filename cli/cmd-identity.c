/* SPDX-License-Identifier: MIT */
/* dstack-p2p identity: this node's ids and public keys from the guest agent; never private keys. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "attest/attest.h"
#include "cli/cli.h"
#include "common/common.h"
#include "netlink/netlink.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dstack-p2p identity [--agent ENDPOINT] [--kms-root ADDRESS] [--json]\n\n"
		"Print this node's instance id, app id, node key address and WireGuard public key,\n"
		"as derived from the dstack guest agent (docs/keys.md). Private keys are never shown.\n\n"
		"  --agent ENDPOINT    guest agent socket path or http(s):// URL\n"
		"                      (default: $%s, then /var/run/dstack.sock\n"
		"                      and the other standard paths)\n"
		"  --kms-root ADDRESS  also verify the key's signature chain against this KMS root\n"
		"  --json              one JSON object instead of text\n\n"
		"Exit status: 0 ok, 1 guest agent error, 2 usage, 3 the chain does not verify\n"
		"to --kms-root.\n", ATTEST_AGENT_ENV);
}

static void print_hex(bool json, const char *name, const uint8_t *p, size_t n, bool last)
{
	char hex[2 * 64 + 1];

	hex_encode(hex, p, n);
	if (json)
		printf("  \"%s\": \"0x%s\"%s\n", name, hex, last ? "" : ",");
	else
		printf("%-21s 0x%s\n", name, hex);
}

int cmd_identity(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "kms-root", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *agent = NULL, *kms_root_hex = NULL;
	enum attest_verdict verdict = ATTEST_VALID;
	struct attest_client *client = NULL;
	struct attest_identity id;
	char wg_b64[WG_KEY_B64_LEN];
	uint8_t kms_root[20];
	bool json = false;
	int c, r, status = 1;

	if (wants_help(argc, argv)) {
		usage(stdout);
		return 0;
	}
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': agent = optarg; break;
		case 'k': kms_root_hex = optarg; break;
		case 'j': json = true; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (kms_root_hex && hex_decode_exact(kms_root, 20, kms_root_hex, strlen(kms_root_hex)) < 0) {
		fprintf(stderr, "dstack-p2p identity: --kms-root wants a 20-byte address\n");
		return 2;
	}

	r = attest_client_new(agent, &client);
	if (r < 0) {
		fprintf(stderr, "dstack-p2p identity: %s\n", errstr(r));
		return 1;
	}
	r = attest_load_identity(client, &id, NULL);
	if (r < 0) {
		fprintf(stderr, "dstack-p2p identity: %s\n", attest_client_error(client));
		goto out;
	}
	if (kms_root_hex) {
		struct attest_chain chain = {
			.key_pub = id.node_pubkey, .purpose = ATTEST_NODE_KEY_PURPOSE,
			.app_id = id.app_id, .app_pub = id.app_pubkey, .sigs = &id.chain,
		};
		struct attest_expect expect = {
			.purpose = ATTEST_NODE_KEY_PURPOSE, .app_id = id.app_id, .kms_root = kms_root,
		};

		verdict = attest_verify_chain(&chain, &expect, NULL);
	}

	wg_key_to_base64(wg_b64, id.wg_public_key);
	if (json)
		printf("{\n");
	print_hex(json, "instance_id", id.instance_id, 20, false);
	print_hex(json, "app_id", id.app_id, 20, false);
	print_hex(json, "node_address", id.node_address, 20, false);
	print_hex(json, "node_public_key", id.node_pubkey, 64, false);
	print_hex(json, "app_public_key", id.app_pubkey, 64, false);
	if (json) {
		printf("  \"wireguard_public_key\": \"%s\",\n", wg_b64);
		printf("  \"kms_signature\": %s", id.chain.has_kms_signature ? "true" : "false");
		if (kms_root_hex)
			printf(",\n  \"chain\": \"%s\"", attest_verdict_str(verdict));
		printf("\n}\n");
	} else {
		printf("%-21s %s\n", "wireguard_public_key", wg_b64);
		if (kms_root_hex)
			printf("%-21s %s\n", "chain", attest_verdict_str(verdict));
	}
	status = verdict == ATTEST_VALID ? 0 : 3;
	if (status)
		fprintf(stderr, "dstack-p2p identity: signature chain: %s\n", attest_verdict_str(verdict));
out:
	attest_client_free(client);
	return status;
}
