/* SPDX-License-Identifier: MIT */
/* Logging to stderr: one line per message, level-filtered, optional timestamps. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"

static enum log_level current_level = LOG_INFO;
static bool with_timestamps;

void log_set_level(enum log_level level) { current_level = level; }
void log_set_timestamps(bool on) { with_timestamps = on; }

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[2048];
	size_t off = 0;
	va_list ap;

	if (level > current_level)
		return;
	if (with_timestamps) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		off += strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		off += snprintf(line + off, sizeof(line) - off, ".%03ldZ ", ts.tv_nsec / 1000000);
	}
	if (level != LOG_INFO)
		off += snprintf(line + off, sizeof(line) - off, "%s: ", names[level]);
	va_start(ap, fmt);
	vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	va_end(ap);
	/* One write per line so lines from concurrent processes do not interleave. */
	fprintf(stderr, "%s\n", line);
}
