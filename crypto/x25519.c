/* SPDX-License-Identifier: MIT */
/* X25519 public keys (nettle), for WireGuard keys. */
#include <nettle/curve25519.h>

#include "common/common.h"
#include "crypto/crypto.h"

/* X25519 with the base point (nettle clamps the scalar as RFC 7748 says); nettle leaves
 * its scratch, derived from the private key, on the stack. */
int x25519_public_from_private(uint8_t pub[static 32], const uint8_t priv[static 32])
{
	curve25519_mul_g(pub, priv);
	secret_wipe_stack();
	return 0;
}
