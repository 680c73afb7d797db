/* SPDX-License-Identifier: MIT */
/* TLS client set-up shared by the gateway relay and the RPC WebSocket: verified, with SNI. */
#include <errno.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/common.h"

int tls_client_ctx_new(const char *ca_file, SSL_CTX **out)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	*out = NULL;
	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (ca_file && ca_file[0]) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
			goto err;
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		goto err;
	}
	*out = ctx;
	return 0;
err:
	SSL_CTX_free(ctx);
	return -ENOENT;
}

int tls_client_new(SSL_CTX *ctx, int fd, const char *host, SSL **out)
{
	SSL *ssl = SSL_new(ctx);

	*out = NULL;
	if (!ssl)
		return -ENOMEM;
	if (!SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, host) || !SSL_set1_host(ssl, host)) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	*out = ssl;
	return 0;
}
