/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for net/ws.c: what a WebSocket server sends. The first byte picks
 * the handshake reply check or the frame stream; the stream is fed in pieces whose sizes
 * come from the input, so every split of a frame is reached.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "net/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_event(void *ctx, int opcode, const uint8_t *p, size_t len)
{
	size_t *total = ctx;

	if (len > WS_MSG_MAX || (opcode >= 8 && len > 125))
		abort();
	if (opcode != 1 && opcode != 2 && opcode != 8 && opcode != 9 && opcode != 10)
		abort();
	if (len)
		*total += p[0] + p[len - 1];  /* touch both ends: ASan checks the bounds */
	return 0;
}

static struct ws_parser parser;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t total = 0;

	if (size < 2)
		return 0;
	if (data[0] & 1) {
		int r = ws_handshake_check((const char *)data + 1, size - 1, "dGhlIHNhbXBsZSBub25jZQ==");

		if (r > (int)(size - 1))
			abort();
		return 0;
	}
	ws_parser_init(&parser);
	for (size_t off = 2, step = (size_t)data[1] + 1; off < size; off += step) {
		size_t n = size - off < step ? size - off : step;

		if (ws_parser_feed(&parser, data + off, n, on_event, &total) < 0)
			break;
		if (parser.in_len > sizeof(parser.in) || parser.msg_len > WS_MSG_MAX)
			abort();
	}
	return 0;
}
