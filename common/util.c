/* SPDX-License-Identifier: MIT */
/* Clock and error-text helpers. */
#include <errno.h>
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

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
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

/* head, then e's text, into e->text (truncated to fit). */
static void err_detail_put_before(struct err_detail *e, const char *head, size_t n)
{
	size_t d = strnlen(e->text, sizeof(e->text) - 1);

	if (n > sizeof(e->text) - 1)
		n = sizeof(e->text) - 1;
	if (n + d > sizeof(e->text) - 1)
		d = sizeof(e->text) - 1 - n;
	memmove(e->text + n, e->text, d);
	memcpy(e->text, head, n);
	e->text[n + d] = '\0';
}

const char *err_detail_str(struct err_detail *e, int r)
{
	char head[sizeof(e->text)];
	int n;

	if (!e || !e->text[0])
		return errstr(r);
	n = snprintf(head, sizeof(head), "%s: ", errstr(r));
	err_detail_put_before(e, head, n < 0 ? 0 : (size_t)n);
	return e->text;
}

void err_detail_prefix(struct err_detail *e, const char *fmt, ...)
{
	char head[sizeof(e->text)];
	va_list ap;
	int n;

	if (!e)
		return;
	va_start(ap, fmt);
	n = vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	err_detail_put_before(e, head, n < 0 ? 0 : (size_t)n);
}
