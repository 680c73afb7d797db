/* SPDX-License-Identifier: MIT */
/* dstack-sim internals: the simulated agent's state and its API handlers (served by
 * net/http-server.c). */
#ifndef DSTACK_P2P_SIM_H
#define DSTACK_P2P_SIM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"

/* What one simulated CVM knows. app_sk lives in locked memory; the KMS root key is gone. */
struct sim_agent {
	uint8_t app_id[20];
	uint8_t instance_id[20];
	uint8_t compose_hash[32];
	const char *app_name;
	const char *app_compose;       /* app-compose.json; compose_hash = sha256 of it by default */
	uint8_t *app_sk;               /* 32 bytes, secret_alloc */
	uint8_t kms_signature[65];     /* chain[1], the same for every key of this app */
	uint8_t kms_root_pub[64];
	bool from_fixture;
};

/* Requests larger than this are refused (413); the real API's are a few hundred bytes. */
#define SIM_MAX_HEADER 8192
#define SIM_MAX_BODY   65536

/*
 * Answer one API request: path ("/GetKey"), content type (may be NULL), body. Writes the
 * HTTP status and a JSON body (an {"error": ...} object on failure) into out.
 */
int sim_handle_request(const struct sim_agent *agent, const char *path, const char *content_type,
		       const char *body, size_t body_len, struct buf *out);


#endif
