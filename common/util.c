/* SPDX-License-Identifier: MIT */
/* Clock and error-text helpers. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *errstr(int negative_errno)
{
	return strerror(negative_errno < 0 ? -negative_errno : negative_errno);
}

void err_detail_set(struct err_detail *e, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
}

const char *err_detail_str(struct err_detail *e, int r)
{
	const char *head = errstr(r);
	size_t n, d;

	if (!e || !e->text[0])
		return head;
	n = strnlen(head, sizeof(e->text) / 2);
	d = strnlen(e->text, sizeof(e->text) - 1);
	if (n + 2 + d > sizeof(e->text) - 1)
		d = sizeof(e->text) - 1 - n - 2;
	memmove(e->text + n + 2, e->text, d);
	memcpy(e->text, head, n);
	memcpy(e->text + n, ": ", 2);
	e->text[n + 2 + d] = '\0';
	return e->text;
}
