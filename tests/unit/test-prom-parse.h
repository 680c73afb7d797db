/* SPDX-License-Identifier: MIT */
/* For the exposition's tests: what Debian's python3-prometheus-client makes of a page. */
#ifndef TEST_PROM_PARSE_H
#define TEST_PROM_PARSE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/common.h"

/*
 * The output of python's script run on page (its sys.argv[1] names a file holding the
 * page's bytes), malloc'd and NUL-terminated; python must exit 0 (the parser accepted it).
 */
static inline char *python_on_page(const struct buf *page, const char *script)
{
	char path[] = "/tmp/test-prom-XXXXXX", cmd[2048], line[512];
	struct buf out;
	FILE *f;
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, page->data, page->len), (ssize_t)page->len);
	close(fd);
	cr_assert_lt(snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c '%s' %s", script, path),
		     (int)sizeof(cmd));
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	buf_init(&out, 1 << 20);
	while (fgets(line, sizeof(line), f))
		cr_assert_eq(buf_append(&out, line, strlen(line)), 0);
	cr_assert_eq(pclose(f), 0, "python3-prometheus-client refused:\n%s", (const char *)page->data);
	unlink(path);
	buf_terminate(&out);
	return (char *)out.data;
}

#endif
