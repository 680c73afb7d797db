/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/prom.c, the Prometheus text exposition: names, escaping, bounds, and
 * Debian's python3-prometheus-client parser reading a hostile label back exactly.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/common.h"
#include "test-prom-parse.h"

/* 31 bytes that try to close the quotes, the braces and the line, and start a sample. */
static const char hostile[] = "a\"} 1\nx{y=\"\\\"\\\\n\"\n\\\"\\z\"}\\\\\"\n# x";

Test(prom, hostile_label_is_escaped)
{
	struct prom_label l[] = { { "token", "3" }, { "label", hostile } };
	struct buf b;

	cr_assert_eq(strlen(hostile), 31);
	buf_init(&b, 0);
	cr_assert_eq(prom_family(&b, "dstack_p2p_test_rx_bytes_total", PROM_COUNTER, "bytes\\in\n"), 0);
	cr_assert_eq(prom_sample_u64(&b, "dstack_p2p_test_rx_bytes_total", l, 2, 1234), 0);
	cr_assert_str_eq(
		(char *)b.data,
		"# HELP dstack_p2p_test_rx_bytes_total bytes\\\\in\\n\n"
		"# TYPE dstack_p2p_test_rx_bytes_total counter\n"
		"dstack_p2p_test_rx_bytes_total{token=\"3\",label=\"a\\\"} 1\\nx{y=\\\"\\\\\\\"\\\\\\\\n"
		"\\\"\\n\\\\\\\"\\\\z\\\"}\\\\\\\\\\\"\\n# x\"} 1234\n");
	buf_clear(&b);
}

Test(prom, control_bytes_and_bad_utf8_become_question_marks)
{
	struct prom_label l = { "label", "\x01\tok\xc3\xa9\xff\xc0\xaf\xed\xa0\x80\x7f" };
	struct buf b;

	buf_init(&b, 0);
	cr_assert_eq(prom_sample(&b, "m", &l, 1, 0.25), 0);
	/* é is kept; 0xff, the overlong "/" and the surrogate are not UTF-8. */
	cr_assert_str_eq((char *)b.data, "m{label=\"??ok\xc3\xa9???????\"} 0.25\n");
	buf_clear(&b);
}

Test(prom, values)
{
	struct buf b;

	buf_init(&b, 0);
	cr_assert_eq(prom_sample(&b, "a", NULL, 0, NAN), 0);
	cr_assert_eq(prom_sample(&b, "b", NULL, 0, INFINITY), 0);
	cr_assert_eq(prom_sample(&b, "c", NULL, 0, -INFINITY), 0);
	cr_assert_eq(prom_sample(&b, "d", NULL, 0, 1.5), 0);
	cr_assert_eq(prom_sample_u64(&b, "e", NULL, 0, UINT64_MAX), 0);
	cr_assert_str_eq((char *)b.data, "a NaN\nb +Inf\nc -Inf\nd 1.5\ne 18446744073709551615\n");
	buf_clear(&b);
}

Test(prom, names_are_checked)
{
	struct prom_label bad[] = { { "__name__", "x" } }, digit[] = { { "1a", "x" } };
	struct prom_label many[PROM_LABELS_MAX + 1];
	char longv[PROM_VALUE_MAX + 2];
	struct prom_label toolong = { "l", longv };
	struct buf b;

	cr_assert(prom_metric_name_valid("dstack_p2p:x_total"));
	cr_assert_not(prom_metric_name_valid("9x"));
	cr_assert_not(prom_metric_name_valid("a-b"));
	cr_assert_not(prom_metric_name_valid(""));
	cr_assert_not(prom_label_name_valid("a:b"));
	buf_init(&b, 0);
	cr_assert_eq(prom_family(&b, "x_count", PROM_COUNTER, ""), -EINVAL);
	cr_assert_eq(prom_family(&b, "a b", PROM_GAUGE, ""), -EINVAL);
	cr_assert_eq(prom_sample(&b, "x", bad, 1, 1), -EINVAL);
	cr_assert_eq(prom_sample(&b, "x", digit, 1, 1), -EINVAL);
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = (struct prom_label){ "l", "v" };
	cr_assert_eq(prom_sample(&b, "x", many, ARRAY_SIZE(many), 1), -EINVAL);
	memset(longv, 'v', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	cr_assert_eq(prom_sample(&b, "x", &toolong, 1, 1), -EINVAL);
	longv[PROM_VALUE_MAX] = '\0';
	cr_assert_eq(prom_sample(&b, "x", &toolong, 1, 1), 0);
	buf_clear(&b);
}

Test(prom, a_line_that_does_not_fit_is_not_written)
{
	struct prom_label l = { "label", "\"\"\"\"\"\"\"\"" };
	struct buf b;

	buf_init(&b, 24);
	cr_assert_eq(prom_sample(&b, "a", NULL, 0, 1), 0);
	cr_assert_eq(prom_sample(&b, "m", &l, 1, 1), -EMSGSIZE);
	cr_assert_eq(prom_family(&b, "a_long_name_total", PROM_COUNTER, "x"), -EMSGSIZE);
	cr_assert_eq(b.len, 4);
	cr_assert_str_eq((char *)b.data, "a 1\n");
	buf_clear(&b);
}

/* What Debian's python3-prometheus-client reads: "type name labelhex value" a sample. */
static const char parse_py[] =
	"import sys\n"
	"from prometheus_client.parser import text_string_to_metric_families as f\n"
	"for fam in f(open(sys.argv[1], encoding=\"utf-8\").read()):\n"
	" for s in fam.samples:\n"
	"  print(fam.type, s.name, s.labels.get(\"label\", \"\").encode().hex(), s.value)\n";

Test(prom, python_prometheus_client_reads_the_hostile_label_back)
{
	struct prom_label l[] = { { "token", "7" }, { "label", hostile } };
	char want[2 * sizeof(hostile) + 1], *out, *line, *save = NULL;
	struct buf b;
	int lines = 0;

	buf_init(&b, 0);
	cr_assert_eq(prom_family(&b, "dstack_p2p_test_rx_bytes_total", PROM_COUNTER, "a \"help\"\\\n"), 0);
	cr_assert_eq(prom_sample_u64(&b, "dstack_p2p_test_rx_bytes_total", l, 2, 1234), 0);
	cr_assert_eq(prom_family(&b, "dstack_p2p_test_age_seconds", PROM_GAUGE, "age"), 0);
	cr_assert_eq(prom_sample(&b, "dstack_p2p_test_age_seconds", l, 2, 1.5), 0);
	out = python_on_page(&b, parse_py);
	hex_encode(want, (const uint8_t *)hostile, strlen(hostile));
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char type[16], name[64], hex[128];
		double v;

		cr_assert_eq(sscanf(line, "%15s %63s %127s %lf", type, name, hex, &v), 4, "%s", line);
		cr_assert_str_eq(hex, want);
		if (lines++ == 0) {
			cr_assert_str_eq(type, "counter");
			cr_assert_str_eq(name, "dstack_p2p_test_rx_bytes_total");
			cr_assert_eq(v, 1234);
		} else {
			cr_assert_str_eq(type, "gauge");
			cr_assert_str_eq(name, "dstack_p2p_test_age_seconds");
			cr_assert_eq(v, 1.5);
		}
	}
	free(out);
	cr_assert_eq(lines, 2);
	buf_clear(&b);
}
