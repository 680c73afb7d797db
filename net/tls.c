/* SPDX-License-Identifier: MIT */
/* TLS client set-up shared by the gateway relay and the RPC WebSocket: verified, with SNI. */
#include <errno.h>
#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/common.h"
#include "net/net.h"

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

static bool is_ip_literal(const char *host)
{
	unsigned char a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

int tls_client_new(SSL_CTX *ctx, int fd, const char *host, SSL **out)
{
	SSL *ssl = SSL_new(ctx);
	bool ip = is_ip_literal(host);

	*out = NULL;
	if (!ssl)
		return -ENOMEM;
	/* An address is checked against the certificate's IP names, and sent no SNI (RFC 6066). */
	if (!SSL_set_fd(ssl, fd) || (!ip && !SSL_set_tlsext_host_name(ssl, host)) ||
	    (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1 : !SSL_set1_host(ssl, host))) {
		SSL_free(ssl);
		return -ENOMEM;
	}
	*out = ssl;
	return 0;
}
