/* SPDX-License-Identifier: MIT */
/* dstack-p2p identity: this node's ids and public keys from the guest agent; never private keys. */
#include <stdio.h>
#include <string.h>

#include "attest/attest.h"
#include "cli/args.h"
#include "cli/cli.h"
#include "common/common.h"
#include "netlink/netlink.h"

enum { O_AGENT = 256, O_KMS_ROOT, O_JSON };

static const struct cli_opt opts[] = {
	{ "agent", O_AGENT, "ENDPOINT", "guest agent socket path or http(s):// URL\n(default: $" ATTEST_AGENT_ENV
	  ", then /var/run/dstack.sock\nand the other standard paths)" },
	{ "kms-root", O_KMS_ROOT, "ADDRESS", "also verify the key's signature chain against this\nKMS root (0x and 40 hex digits)" },
	{ "json", O_JSON, NULL, "one JSON object instead of text" },
	{ 0 },
};

static const struct cli_cmd cmd = {
	.name = "identity",
	.synopsis = "[--agent ENDPOINT] [--kms-root ADDRESS] [--json]",
	.about = "Print this node's instance id, app id, node key address and WireGuard public key,\n"
		 "as derived from the dstack guest agent (docs/keys.md). Private keys are never shown.",
	.opts = opts,
	.footer = "Exit status: 0 ok, 1 guest agent error, 2 usage, 3 the chain does not verify\n"
		  "to --kms-root.",
};

static void print_hex_field(bool json, const char *name, const uint8_t *p, size_t n, bool last)
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
	const char *agent = NULL, *kms_root_hex = NULL;
	enum attest_verdict verdict = ATTEST_VALID;
	struct attest_client *client = NULL;
	struct attest_identity id;
	char wg_b64[WG_KEY_B64_LEN];
	uint8_t kms_root[20];
	struct cli_args a;
	bool json = false;
	int c, r, status = CLI_EXIT_FAILURE;

	cli_args_init(&a, &cmd, argc, argv);
	while ((c = cli_next(&a)) > 0) {
		switch (c) {
		case O_AGENT: agent = a.value; break;
		case O_KMS_ROOT:
			kms_root_hex = a.value;
			if (hex_decode_exact(kms_root, 20, kms_root_hex, strlen(kms_root_hex)) < 0)
				return cli_bad_value(&a, "want a 20-byte address, 0x and 40 hex digits");
			break;
		case O_JSON: json = true; break;
		}
	}
	if (c == CLI_STOP)
		return a.status;

	r = attest_client_new(agent, &client);
	if (r < 0) {
		cli_error("%s", errstr(r));
		return CLI_EXIT_FAILURE;
	}
	r = attest_load_identity(client, &id, NULL);
	if (r < 0) {
		cli_error("%s", attest_client_error(client));
		goto out;
	}
	if (kms_root_hex) {
		struct attest_key_claim chain = {
			.key_pub = id.node_pubkey, .purpose = ATTEST_NODE_KEY_PURPOSE,
			.app_id = id.app_id, .app_pub = id.app_pubkey, .sigs = &id.chain,
		};
		struct attest_expect expect = {
			.purpose = ATTEST_NODE_KEY_PURPOSE, .app_id = id.app_id, .kms_root = kms_root,
		};

		verdict = attest_verify_kms_chain(&chain, &expect, NULL);
	}

	wg_key_to_base64(wg_b64, id.wg_public_key);
	if (json)
		printf("{\n");
	print_hex_field(json, "instance_id", id.instance_id, 20, false);
	print_hex_field(json, "app_id", id.app_id, 20, false);
	print_hex_field(json, "node_address", id.node_address, 20, false);
	print_hex_field(json, "node_public_key", id.node_pubkey, 64, false);
	print_hex_field(json, "app_public_key", id.app_pubkey, 64, false);
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
	status = verdict == ATTEST_VALID ? CLI_EXIT_OK : CLI_EXIT_NEGATIVE;
	if (status)
		cli_error("signature chain: %s", attest_verdict_str(verdict));
out:
	attest_client_free(client);
	return status;
}
