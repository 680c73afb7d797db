/* SPDX-License-Identifier: MIT */
/* ops/: the one loader of the paying key, the actions by name, the operator's values. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "ops/ops.h"

/* A test key and its address as foundry's cast wallet address computes it. */
#define SK "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcad7cf6b3d8e0c1f1"
#define ADDR "d70a56d59bea3c703452a5d6e54964bdf40aa5da"

static void key_file(char *path, size_t cap, const char *text, mode_t mode)
{
	FILE *f;
	int fd;

	snprintf(path, cap, "/tmp/test-ops-key.XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static int load(const struct ops_key_source *src, char *addr_hex, struct err_detail *why)
{
	uint8_t *sk = NULL, addr[20];
	int r = ops_key_load(src, NULL, &sk, addr, why);

	if (r == 0)
		hex_encode(addr_hex, addr, 20);
	secret_free(sk, 32);
	return r;
}

Test(ops_key, one_loader_for_every_source)
{
	struct err_detail why = { 0 };
	char path[64], addr[41];

	key_file(path, sizeof(path), "0x" SK "\n", 0600);
	cr_assert_eq(load(&(struct ops_key_source){ .key_file = path }, addr, &why), 0, "%s", why.text);
	cr_assert_str_eq(addr, ADDR);
	unlink(path);

	setenv("TEST_OPS_KEY", SK, 1);
	cr_assert_eq(load(&(struct ops_key_source){ .env = "TEST_OPS_KEY" }, addr, &why), 0, "%s", why.text);
	cr_assert_str_eq(addr, ADDR);
	setenv("TEST_OPS_KEY", "12", 1);
	cr_assert_eq(load(&(struct ops_key_source){ .env = "TEST_OPS_KEY" }, addr, &why), -EINVAL);
	cr_assert(strstr(why.text, "$TEST_OPS_KEY is not a 32-byte hex key"), "%s", why.text);
	unsetenv("TEST_OPS_KEY");
}

/* The operator's key file follows the agent's and the relayer's rule: nobody else reads it. */
Test(ops_key, a_key_file_others_may_read_is_refused)
{
	struct err_detail why = { 0 };
	char path[64], addr[41];

	key_file(path, sizeof(path), SK "\n", 0644);
	cr_assert_eq(load(&(struct ops_key_source){ .key_file = path }, addr, &why), -EINVAL,
		     "a key file of mode 0644 was read");
	cr_assert(strstr(why.text, "mode 0644"), "%s", why.text);
	chmod(path, 0600);
	cr_assert_eq(load(&(struct ops_key_source){ .key_file = path }, addr, &why), 0, "%s", why.text);
	unlink(path);
}

Test(ops_key, configuration_mistakes_are_named)
{
	struct err_detail why = { 0 };
	char path[64], addr[41];

	cr_assert_eq(load(&(struct ops_key_source){ 0 }, addr, &why), -EINVAL);
	cr_assert(strstr(why.text, "--key-file FILE or --keystore FILE"), "%s", why.text);
	cr_assert_eq(load(&(struct ops_key_source){ .key_file = "/x", .keystore = "/y" }, addr, &why),
		     -EINVAL);
	cr_assert(strstr(why.text, "not both"), "%s", why.text);
	key_file(path, sizeof(path), "{}", 0600);
	cr_assert_eq(load(&(struct ops_key_source){ .keystore = path }, addr, &why), -EINVAL);
	cr_assert(strstr(why.text, "needs a password"), "%s", why.text);
	unlink(path);
	key_file(path, sizeof(path), "00", 0600);
	cr_assert_eq(load(&(struct ops_key_source){ .key_file = path }, addr, &why), -EINVAL);
	cr_assert(strstr(why.text, "32-byte hex key"), "%s", why.text);
	unlink(path);
}

Test(ops_action, encoded_from_the_operands_as_written)
{
	const struct ops_action *a = ops_action_find("bind");
	char *ok[] = { "7", "0x00000000000000000000000000000000000000aa" };
	char *bad[] = { "7", "0x12" };
	struct err_detail why = { 0 };
	uint8_t sel[4];
	struct buf b;

	cr_assert(a);
	cr_assert_str_eq(ops_action_signature("bind"), "bindInstance(uint256,address)");
	cr_assert_null(ops_action_find("bond"));
	buf_init(&b, 0);
	cr_assert_eq(ops_action_encode(a, ok, 2, &b, &why), 0, "%s", why.text);
	abi_selector("bindInstance(uint256,address)", sel);
	cr_assert_eq(b.len, 4 + 64);
	cr_assert(!memcmp(b.data, sel, 4));
	cr_assert_eq(b.data[4 + 31], 7);
	cr_assert_eq(b.data[4 + 63], 0xaa);
	b.len = 0;
	cr_assert_eq(ops_action_encode(a, bad, 2, &b, &why), -EINVAL);
	cr_assert_str_eq(why.text, "bind: '0x12' is not a 20-byte 0x address");
	cr_assert_eq(ops_action_encode(a, ok, 1, &b, &why), -EINVAL);
	cr_assert_str_eq(why.text, "bind takes 2 arguments, not 1 (see --help)");
	b.len = 0;
	cr_assert_eq(ops_action_encode(ops_action_find("set-boot-policy"), (char *[]){ "permissive" }, 1, &b,
				       &why),
		     0);
	cr_assert_eq(b.data[4 + 31], 1);
	cr_assert_eq(ops_action_encode(ops_action_find("set-boot-policy"), (char *[]){ "lax" }, 1, &b, &why),
		     -EINVAL);
	cr_assert_str_eq(why.text, "set-boot-policy: 'lax' is not one of strict|permissive");
	buf_clear(&b);
}

Test(ops_values, amounts_and_modes)
{
	uint64_t v;

	cr_assert_eq(ops_parse_wei("1.5gwei", &v), 0);
	cr_assert_eq(v, 1500000000ull);
	cr_assert_eq(ops_parse_wei("0.01ether", &v), 0);
	cr_assert_eq(v, 10000000000000000ull);
	cr_assert_eq(ops_parse_wei("0.5wei", &v), -EINVAL);
	cr_assert_eq(ops_parse_wei("19ether", &v), -ERANGE);
	cr_assert_eq(ops_parse_modes("both"), 3);
	cr_assert_eq(ops_parse_modes("4"), -EINVAL);
}

/* deploy's plan: only what the options change, in order, the ownership offered last. */
Test(ops_deploy, the_plan_sends_only_what_was_asked)
{
	struct ops_deploy d = { .boot_policy = 1,
				.modes = -1,
				.any_device = -1,
				.tcb_up_to_date = 0,
				.have_compose_hash = true,
				.offer_owner = true };
	struct ops_call calls[OPS_DEPLOY_CALLS_MAX];
	uint8_t deployer[20] = { 1 }, sel[4];
	static const char *const want[] = { "allow-compose", "set-boot-policy", "set-tcb-policy",
					    "transfer-ownership" };
	size_t n;

	memset(d.compose_hash, 0xcc, 32);
	d.owner[19] = 2;
	cr_assert_eq(ops_deploy_plan(&d, deployer, calls, &n), 0);
	cr_assert_eq(n, ARRAY_SIZE(want));
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(calls[i].what, want[i]);
	cr_assert_eq(calls[0].calldata.len, 36);
	cr_assert_eq(calls[0].calldata.data[4], 0xcc);
	abi_selector("setBootPolicy(uint8)", sel);
	cr_assert(!memcmp(calls[1].calldata.data, sel, 4));
	cr_assert_eq(calls[1].calldata.data[35], 1);
	cr_assert_eq(calls[3].calldata.data[35], 2, "the owner offered");
	ops_calls_clear(calls, n);
	/* Offered to the deployer itself: nothing to transfer. */
	memcpy(d.owner, deployer, 20);
	d.have_compose_hash = false;
	cr_assert_eq(ops_deploy_plan(&d, deployer, calls, &n), 0);
	cr_assert_eq(n, 2);
	ops_calls_clear(calls, n);
}
