/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text exposition, format 0.0.4: HELP and TYPE lines, one sample a line,
 * label values escaped. Whatever bytes a label value holds (a peer's label is chosen
 * on chain), the output stays one sample a line of valid UTF-8, and a line that does not
 * fit is not written at all.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

static bool name_char(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':')
		return colon;
	return !first && c >= '0' && c <= '9';
}

static bool name_valid(const char *name, bool colon)
{
	size_t n = name ? strnlen(name, PROM_NAME_MAX + 1) : 0;

	if (n == 0 || n > PROM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(name[i], i == 0, colon))
			return false;
	return true;
}

bool prom_metric_name_valid(const char *name)
{
	return name_valid(name, true);
}

bool prom_label_name_valid(const char *name)
{
	/* Names beginning with "__" are Prometheus's own. */
	return name_valid(name, false) && strncmp(name, "__", 2) != 0;
}

/* Back to the length the line began at: a line is written whole or not at all. */
static void rewind_to(struct buf *b, size_t start)
{
	b->len = start;
	if (b->data)
		b->data[start] = '\0';
}

/* The length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 when it is not one. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
	size_t len;
	uint32_t cp, min;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2, cp = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3, cp = s[0] & 0x0f, min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4, cp = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* No overlong forms, no UTF-16 surrogates, nothing past U+10FFFF. */
	if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* s escaped: \ and newline always, " in label values; other control bytes and bytes that
 * are not UTF-8 become '?'. */
static int put_escaped(struct buf *b, const char *s, bool quote)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s);
	int r = 0;

	for (size_t i = 0; i < n && r == 0;) {
		size_t len = utf8_len(p + i, n - i);

		if (p[i] == '\\')
			r = buf_append(b, "\\\\", 2);
		else if (p[i] == '\n')
			r = buf_append(b, "\\n", 2);
		else if (p[i] == '"' && quote)
			r = buf_append(b, "\\\"", 2);
		else if (len == 0 || p[i] < 0x20 || p[i] == 0x7f)
			r = buf_append(b, "?", 1);
		else
			r = buf_append(b, p + i, len);
		i += len ? len : 1;
	}
	return r;
}

int prom_family(struct buf *b, const char *name, enum prom_type type, const char *help)
{
	size_t start = b->len;
	size_t n;
	int r;

	if (!prom_metric_name_valid(name) || (type != PROM_COUNTER && type != PROM_GAUGE))
		return -EINVAL;
	n = strlen(name);
	/* A counter's samples end in _total (the family's name in OpenMetrics is the rest). */
	if (type == PROM_COUNTER && (n < 6 || strcmp(name + n - 6, "_total")))
		return -EINVAL;
	r = buf_printf(b, "# HELP %s ", name);
	if (r == 0)
		r = put_escaped(b, help ? help : "", false);
	if (r == 0)
		r = buf_printf(b, "\n# TYPE %s %s\n", name, type == PROM_COUNTER ? "counter" : "gauge");
	if (r < 0)
		rewind_to(b, start);
	return r;
}

static int put_labels(struct buf *b, const struct prom_label *labels, size_t n)
{
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		if (!prom_label_name_valid(labels[i].name) || !labels[i].value ||
		    strnlen(labels[i].value, PROM_VALUE_MAX + 1) > PROM_VALUE_MAX)
			return -EINVAL;
		r = buf_printf(b, "%c%s=\"", i ? ',' : '{', labels[i].name);
		if (r == 0)
			r = put_escaped(b, labels[i].value, true);
		if (r == 0)
			r = buf_append(b, "\"", 1);
	}
	if (r == 0 && n)
		r = buf_append(b, "}", 1);
	return r;
}

/* name{labels} and the value text, one line, or nothing (b as before) on failure. */
static int put_sample(struct buf *b, const char *name, const struct prom_label *labels, size_t n,
		      const char *value)
{
	size_t start = b->len;
	int r;

	if (!prom_metric_name_valid(name) || n > PROM_LABELS_MAX || (n && !labels))
		return -EINVAL;
	r = buf_printf(b, "%s", name);
	if (r == 0)
		r = put_labels(b, labels, n);
	if (r == 0)
		r = buf_printf(b, " %s\n", value);
	if (r < 0)
		rewind_to(b, start);
	return r;
}

int prom_sample(struct buf *b, const char *name, const struct prom_label *labels, size_t n, double value)
{
	char text[32];

	if (isnan(value))
		strcpy(text, "NaN");
	else if (isinf(value))
		strcpy(text, value > 0 ? "+Inf" : "-Inf");
	else
		snprintf(text, sizeof(text), "%.15g", value);
	return put_sample(b, name, labels, n, text);
}

int prom_sample_u64(struct buf *b, const char *name, const struct prom_label *labels, size_t n,
		    uint64_t value)
{
	char text[24];

	snprintf(text, sizeof(text), "%llu", (unsigned long long)value);
	return put_sample(b, name, labels, n, text);
}
