/* SPDX-License-Identifier: MIT */
/* Helpers shared by the chain unit tests: run Foundry's cast at test time, hex in and out. */
#ifndef TEST_CHAIN_HELPERS_H
#define TEST_CHAIN_HELPERS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common/common.h"

/*
 * Run a shell command line and return its first output line, without the newline, in a
 * malloc'd string; the command must succeed and print something.
 */
static inline char *command_output(const char *cmd)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f;

	f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s", cmd);
	if (getline(&line, &cap, f) < 0) {
		free(line);
		line = NULL;
	}
	cr_assert_eq(pclose(f), 0, "failed: %s", cmd);
	cr_assert_not_null(line, "no output: %s", cmd);
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

/*
 * "cast <args>" (args formatted by the caller, already shell-quoted). $CAST overrides the
 * path; by default the repository's node_modules/.bin/cast, found through git.
 */
static inline __attribute__((format(printf, 1, 2))) char *cast_output(const char *fmt, ...)
{
	char args[8192], cmd[9000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd),
		 "\"${CAST:-$(git rev-parse --show-toplevel)/node_modules/.bin/cast}\" %s 2>/dev/null",
		 args);
	return command_output(cmd);
}

/* "0x" + lowercase hex of n bytes, in a malloc'd string. */
static inline char *hex0x(const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 3);

	cr_assert_not_null(s);
	s[0] = '0';
	s[1] = 'x';
	hex_encode(s + 2, p, n);
	return s;
}

/* Decode hex (with or without 0x) that must be exactly n bytes. */
static inline void unhex(uint8_t *out, size_t n, const char *hex)
{
	cr_assert_eq(hex_decode_exact(out, n, hex, strlen(hex)), (int)n, "bad test hex %s", hex);
}

static inline void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rand();
}

#endif
