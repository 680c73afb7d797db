/* SPDX-License-Identifier: MIT */
/*
 * The paying key, one loader for every operator command: a key file (common/key-file.c's
 * rule: 0600 or 0400, ours, checked on the file read), a Web3 keystore, or an environment
 * variable. The secret goes to locked memory; what was read is wiped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "ops/ops.h"

#define KEYSTORE_MAX (16 << 10)
#define PASSWORD_MAX 1024

static int key_from_env(const char *name, uint8_t sk[static 32], struct err_detail *why)
{
	const char *hex = getenv(name);

	if (!hex || !*hex) {
		err_detail_set(why, "no paying key in $%s", name);
		return -EINVAL;
	}
	if (hex_decode_exact(sk, 32, hex, strcspn(hex, " \t\r\n")) < 0) {
		err_detail_set(why, "$%s is not a 32-byte hex key", name);
		return -EINVAL;
	}
	return 0;
}

/* The keystore's password: the first line of its file, or asked for. */
static int keystore_password(const struct ops_key_source *src, ops_password_fn ask, char *pw, size_t max,
			     size_t *len, struct err_detail *why)
{
	struct buf text;
	int r;

	if (!src->password_file) {
		r = ask ? ask(pw, max, len) : -ENOTTY;
		if (r < 0)
			err_detail_set(
				why, "the keystore needs a password: --password-file, or run on a terminal");
		return r < 0 ? -EINVAL : 0;
	}
	r = ops_read_file(src->password_file, &text, max);
	if (r < 0) {
		err_detail_set(why, "reading the password file %s: %s", src->password_file, errstr(r));
		return -EINVAL;
	}
	*len = strcspn((const char *)text.data, "\r\n");
	memcpy(pw, text.data, *len);
	buf_wipe_clear(&text);
	return 0;
}

static int key_from_keystore(const struct ops_key_source *src, ops_password_fn ask, uint8_t sk[static 32],
			     struct err_detail *why)
{
	char *pw = secret_alloc(PASSWORD_MAX + 1);
	struct buf text;
	size_t pw_len = 0;
	int r;

	buf_init(&text, 0);
	if (!pw)
		return -ENOMEM;
	memset(pw, 0, PASSWORD_MAX + 1);
	r = ops_read_file(src->keystore, &text, KEYSTORE_MAX);
	if (r < 0) {
		err_detail_set(why, "reading the keystore %s: %s", src->keystore, errstr(r));
		r = -EINVAL;
		goto out;
	}
	r = keystore_password(src, ask, pw, PASSWORD_MAX, &pw_len, why);
	if (r < 0)
		goto out;
	r = eth_keystore_decrypt((const char *)text.data, text.len, pw, pw_len, sk);
	if (r == -EACCES)
		err_detail_set(why, "the keystore %s does not open with this password", src->keystore);
	else if (r < 0)
		err_detail_set(why,
			       "%s is not a keystore v3 file this tool reads (aes-128-ctr, scrypt up to "
			       "n=2^18 or pbkdf2-sha256): %s",
			       src->keystore, errstr(r));
	if (r < 0 && r != -ENOMEM)
		r = -EINVAL;
out:
	secret_free(pw, PASSWORD_MAX + 1);
	buf_clear(&text);
	return r;
}

/* The one source configured, or -EINVAL. */
static int one_source(const struct ops_key_source *src, struct err_detail *why)
{
	int n = !!src->key_file + !!src->keystore + !!src->env;

	if (n == 1)
		return 0;
	if (n == 0)
		err_detail_set(why, "this sends a transaction: give the paying key with --key-file FILE or "
				    "--keystore FILE");
	else
		err_detail_set(why, "give --key-file or --keystore, not both");
	return -EINVAL;
}

int ops_key_load(const struct ops_key_source *src, ops_password_fn ask, uint8_t **sk, uint8_t addr[static 20],
		 struct err_detail *why)
{
	uint8_t pub[64];
	int r;

	*sk = NULL;
	if ((r = one_source(src, why)) < 0)
		return r;
	*sk = secret_alloc(32);
	if (!*sk)
		return -ENOMEM;
	if (src->key_file)
		r = key_file_read32(src->key_file, *sk, why) < 0 ? -EINVAL : 0;
	else if (src->keystore)
		r = key_from_keystore(src, ask, *sk, why);
	else
		r = key_from_env(src->env, *sk, why);
	if (r == 0 && crypto_pubkey_from_secret(*sk, pub) < 0) {
		err_detail_set(why, "the key is not a valid secp256k1 secret");
		r = -EINVAL;
	}
	if (r < 0) {
		secret_free(*sk, 32);
		*sk = NULL;
		return r;
	}
	crypto_address_from_pubkey(pub, addr);
	return 0;
}
