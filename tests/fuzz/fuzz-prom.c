/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for common/prom.c, the Prometheus text exposition: arbitrary bytes as a
 * label value (up to the first NUL) and, after it, as the HELP text. The output must be
 * exactly the family's two lines and one sample line, the value inside its quotes with
 * only the three escapes, no control byte left raw, and printable ASCII read back as given.
 */
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "dstack_p2p_fuzz_total"

/* The escaped value from p up to its closing quote into out; the byte after the quote. */
static const char *unescape(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	for (; *p != '"'; p++) {
		if (!*p || *p == '\n' || (unsigned char)*p < 0x20 || *p == 0x7f || n + 1 >= cap)
			abort();
		if (*p == '\\') {
			p++;
			if (*p != '\\' && *p != '"' && *p != 'n')
				abort();
			out[n++] = *p == 'n' ? '\n' : *p;
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
	return p + 1;
}

static bool printable(const char *s)
{
	for (; *s; s++)
		if (*s != '\n' && ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e))
			return false;
	return true;
}

static void check(const struct buf *b, const char *value)
{
	const char *s = (const char *)b->data, *help_end, *type, *sample;
	char got[2 * PROM_VALUE_MAX + 1];

	if (strncmp(s, "# HELP " NAME " ", sizeof("# HELP " NAME " ") - 1))
		abort();
	help_end = strchr(s, '\n');
	type = help_end + 1;
	if (strncmp(type, "# TYPE " NAME " counter\n", sizeof("# TYPE " NAME " counter\n") - 1))
		abort();
	sample = type + sizeof("# TYPE " NAME " counter\n") - 1;
	if (strncmp(sample, NAME "{token=\"1\",label=\"", sizeof(NAME "{token=\"1\",label=\"") - 1))
		abort();
	s = unescape(sample + sizeof(NAME "{token=\"1\",label=\"") - 1, got, sizeof(got));
	if (strcmp(s, "} 42\n"))
		abort();
	if (strlen(got) > strlen(value) || (printable(value) && strcmp(got, value)))
		abort();
	for (const char *p = (const char *)b->data; p < help_end; p++)
		if (*p == '\0' || (unsigned char)*p < 0x20)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct prom_label l[2] = { { "token", "1" }, { "label", NULL } };
	char *value, *help;
	size_t vlen;
	struct buf b;

	if (size > 4096)
		return 0;
	value = malloc(size + 1);
	if (!value)
		return 0;
	memcpy(value, data, size);
	value[size] = '\0';
	vlen = strlen(value);
	help = vlen < size ? value + vlen + 1 : value + size;
	l[1].value = value;
	buf_init(&b, 0);
	if (prom_family(&b, NAME, PROM_COUNTER, help) < 0)
		abort();
	if (prom_sample_u64(&b, NAME, l, 2, 42) == 0)
		check(&b, value);
	else if (vlen <= PROM_VALUE_MAX)
		abort();
	buf_clear(&b);
	free(value);
	return 0;
}
