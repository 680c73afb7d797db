/* SPDX-License-Identifier: MIT */
/* Web3 Secret Storage (keystore v3) decryption: the encrypted key files of geth, cast, clef. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "chain/internal.h"

/* Bounds on what a keystore file may ask of us: geth's "standard" scrypt is n = 2^18, r = 8. */
#define SCRYPT_N_MAX (1ull << 18)
#define SCRYPT_R_MAX 16
#define SCRYPT_P_MAX 16
#define SCRYPT_MAXMEM (600ull << 20)
#define PBKDF2_C_MAX 10000000
#define SALT_MAX 128
#define DKLEN 32

struct keystore {
	uint8_t iv[16];
	uint8_t ciphertext[32];
	uint8_t mac[32];
	uint8_t salt[SALT_MAX];
	size_t salt_len;
	bool scrypt;
	uint64_t n, r, p, c;
};

static int hex_member(const struct json *j, int obj, const char *key, uint8_t *out, size_t max,
		      size_t *len)
{
	int i = json_get(j, obj, key);
	const char *s;
	size_t n;
	int r;

	if (i < 0 || j->tok[i].type != JSON_STRING)
		return -EINVAL;
	s = json_raw(j, i, &n);
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2, n -= 2;
	if (n % 2 || n / 2 > max || n == 0)
		return -EINVAL;
	r = hex_decode(out, max, s, n);
	if (r < 0)
		return -EINVAL;
	if (len)
		*len = (size_t)r;
	else if ((size_t)r != max)
		return -EINVAL;
	return 0;
}

static int uint_member(const struct json *j, int obj, const char *key, uint64_t max, uint64_t *out)
{
	int i = json_get(j, obj, key);
	int64_t v;

	if (i < 0 || json_int64(j, i, &v) < 0 || v <= 0 || (uint64_t)v > max)
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

static int parse_kdf(const struct json *j, int crypto, struct keystore *ks)
{
	int kdf = json_get(j, crypto, "kdf"), params = json_get(j, crypto, "kdfparams");
	uint64_t dklen;

	if (kdf < 0 || params < 0 || j->tok[params].type != JSON_OBJECT)
		return -EINVAL;
	if (uint_member(j, params, "dklen", DKLEN, &dklen) < 0 || dklen != DKLEN ||
	    hex_member(j, params, "salt", ks->salt, SALT_MAX, &ks->salt_len) < 0)
		return -EINVAL;
	if (json_eq(j, kdf, "scrypt")) {
		ks->scrypt = true;
		if (uint_member(j, params, "n", SCRYPT_N_MAX, &ks->n) < 0 || (ks->n & (ks->n - 1)) ||
		    ks->n < 2 || uint_member(j, params, "r", SCRYPT_R_MAX, &ks->r) < 0 ||
		    uint_member(j, params, "p", SCRYPT_P_MAX, &ks->p) < 0)
			return -EINVAL;
		return 0;
	}
	if (json_eq(j, kdf, "pbkdf2")) {
		int prf = json_get(j, params, "prf");

		if (prf < 0 || !json_eq(j, prf, "hmac-sha256") ||
		    uint_member(j, params, "c", PBKDF2_C_MAX, &ks->c) < 0)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

static int parse_keystore(const char *text, size_t len, struct keystore *ks)
{
	struct json j = { 0 };
	int crypto, cipher, cparams, version, r;
	int64_t v;

	memset(ks, 0, sizeof(*ks));
	if (json_parse(&j, text, len, 256) < 0)
		return -EINVAL;
	r = -EINVAL;
	if (j.tok[0].type != JSON_OBJECT)
		goto out;
	version = json_get(&j, 0, "version");
	crypto = json_get(&j, 0, "crypto");
	if (crypto < 0)
		crypto = json_get(&j, 0, "Crypto");  /* geth wrote it capitalised once */
	if (version < 0 || json_int64(&j, version, &v) < 0 || v != 3 || crypto < 0 ||
	    j.tok[crypto].type != JSON_OBJECT)
		goto out;
	cipher = json_get(&j, crypto, "cipher");
	cparams = json_get(&j, crypto, "cipherparams");
	if (cipher < 0 || !json_eq(&j, cipher, "aes-128-ctr") || cparams < 0 ||
	    j.tok[cparams].type != JSON_OBJECT ||
	    hex_member(&j, cparams, "iv", ks->iv, 16, NULL) < 0 ||
	    hex_member(&j, crypto, "ciphertext", ks->ciphertext, 32, NULL) < 0 ||
	    hex_member(&j, crypto, "mac", ks->mac, 32, NULL) < 0)
		goto out;
	r = parse_kdf(&j, crypto, ks);
out:
	json_clear(&j);
	return r;
}

static int derive(const struct keystore *ks, const char *password, size_t password_len,
		  uint8_t dk[static DKLEN])
{
	if (ks->scrypt)
		return EVP_PBE_scrypt(password, password_len, ks->salt, ks->salt_len, ks->n, ks->r,
				      ks->p, SCRYPT_MAXMEM, dk, DKLEN) == 1 ? 0 : -ENOMEM;
	return PKCS5_PBKDF2_HMAC(password, (int)password_len, ks->salt, (int)ks->salt_len,
				 (int)ks->c, EVP_sha256(), DKLEN, dk) == 1 ? 0 : -ENOMEM;
}

static int aes128_ctr(const uint8_t key[static 16], const uint8_t iv[static 16],
		      const uint8_t in[static 32], uint8_t out[static 32])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0, r = -ENOMEM;

	if (!ctx)
		return -ENOMEM;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_128_ctr(), NULL, key, iv) == 1 &&
	    EVP_DecryptUpdate(ctx, out, &n, in, 32) == 1 && EVP_DecryptFinal_ex(ctx, out + n, &fin) == 1 &&
	    n + fin == 32)
		r = 0;
	EVP_CIPHER_CTX_free(ctx);
	return r;
}

int eth_keystore_decrypt(const char *json, size_t len, const char *password, size_t password_len,
			 uint8_t sk[static 32])
{
	struct keystore ks;
	uint8_t *dk = secret_alloc(DKLEN);
	uint8_t mac_input[16 + 32], mac[32];
	int r;

	if (!dk)
		return -ENOMEM;
	r = parse_keystore(json, len, &ks);
	if (r < 0)
		goto out;
	r = derive(&ks, password, password_len, dk);
	if (r < 0)
		goto out;
	memcpy(mac_input, dk + 16, 16);
	memcpy(mac_input + 16, ks.ciphertext, 32);
	keccak256(mac, mac_input, sizeof(mac_input));
	if (secret_cmp(mac, ks.mac, 32)) {
		r = -EACCES;
		goto out;
	}
	r = aes128_ctr(dk, ks.iv, ks.ciphertext, sk);
out:
	secret_wipe(mac_input, sizeof(mac_input));
	secret_free(dk, DKLEN);
	return r;
}
