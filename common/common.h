/* SPDX-License-Identifier: MIT */
/*
 * common: the small pieces every module needs: logging, the one way to carry an error's
 * detail (struct err_detail), hex, secrets in locked memory and key files, bounded byte
 * buffers, unix sockets, a JSON reader over jsmn, host:port, a writer of Prometheus's text
 * exposition. The network clients and the HTTP servers are net/'s. Libraries stay quiet;
 * callers log once, with context.
 */
#ifndef DSTACK_P2P_COMMON_H
#define DSTACK_P2P_COMMON_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging ------------------------------------------------------------ */

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
/* Prefix every line with an ISO-8601 timestamp (daemons) or not (CLI). */
void log_set_timestamps(bool on);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* ---- errors ---------------------------------------------------------------- */

/*
 * How a failure carries its detail, one way per kind: a function returns a negative
 * errno; a handle (eth_rpc, attest_client, cluster, ...) says what went wrong last through
 * its <obj>_error(); any other function with more to say than its errno (a parser, a
 * validator, netlink's calls, the config loaders) fills a struct err_detail the caller
 * passes (may be NULL), one line for a log. No error state is kept per thread or
 * globally, and no out-parameter carries a description.
 */
struct err_detail {
	char text[256];
};

void err_detail_set(struct err_detail *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * The line to log for failure r: errstr(r), and ": " and e's detail when e (may be
 * NULL) holds one, rewritten into e->text (so call it once per failure).
 */
const char *err_detail_str(struct err_detail *e, int r);
/* Put the formatted text before e's detail (e may be NULL): "agent.conf:3: " + detail. */
void err_detail_prefix(struct err_detail *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- hex ------------------------------------------------------------------ */

/* The value of one hex digit (either case), or -1. */
int hex_digit(char c);

/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void hex_encode(char *out, const uint8_t *in, size_t n);

/*
 * Decode exactly len hex digits (an optional "0x"/"0X" prefix is skipped) into out.
 * Returns the number of bytes written, -EINVAL on a bad digit or odd length,
 * -EMSGSIZE when the result does not fit in outlen.
 */
int hex_decode(uint8_t *out, size_t outlen, const char *in, size_t len);

/* Like hex_decode, but the decoded length must be exactly n bytes. */
int hex_decode_exact(uint8_t *out, size_t n, const char *in, size_t len);

/* ---- host:port (hostport.c) ------------------------------------------------------ */

enum hostport_flags {
	HOSTPORT_PORT_OPTIONAL = 1 << 0,  /* "host" alone: out->port keeps the caller's default */
	HOSTPORT_PORT_ZERO = 1 << 1,      /* port 0 is a port (a listener's "pick one") */
	HOSTPORT_HOST_EMPTY = 1 << 2,     /* ":port" (a listener's wildcard address) */
	HOSTPORT_LAST_COLON = 1 << 3,     /* an unbracketed host may hold colons ("fd00::1:80") */
};

struct hostport {
	char host[256];   /* without the brackets */
	uint16_t port;    /* set only when a port is given */
	bool bracketed;
};

/*
 * Split s[0..len) into host and port: "host:port" or "[host]:port"; flags widen what is
 * accepted. An unbracketed host ends at its first colon (or its last with
 * HOSTPORT_LAST_COLON). No DNS and no check of the host's characters: what the host may
 * be is the caller's rule. 0, or -EINVAL (a '[' without its ']', something other than
 * ':' after the ']', a NUL byte in the host), -ENOENT (no port, and one is required),
 * -EDESTADDRREQ (empty host), -ENAMETOOLONG (host of 256 bytes or more), -ERANGE (port
 * empty, not 1 to 5 digits, above 65535, or 0 without HOSTPORT_PORT_ZERO).
 */
int hostport_split(const char *s, size_t len, unsigned flags, struct hostport *out);

/* ---- secrets -------------------------------------------------------------- */

/*
 * Memory for key material: page-locked where the system allows (so it is never
 * swapped), excluded from core dumps, and wiped before it is returned.
 * secret_free accepts NULL.
 */
void *secret_alloc(size_t size);
void secret_free(void *p, size_t size);
/*
 * Whether a file may hold a secret key: a regular file owned by the running (effective)
 * user that nobody else may read or write (mode 0600 or 0400). 0, or -ENOENT / -errno of
 * stat, -EINVAL (not a regular file), -EPERM (another owner, or group/other bits set); why
 * names the file and says what to change.
 */
int key_file_check(const char *path, struct err_detail *why);
/*
 * The 32-byte key a file holds as hex (an optional 0x, trailing white space), into key
 * (locked memory of the caller's), after key_file_check's rule applied to the opened
 * file itself. 0, or key_file_check's errors, -errno of open/read, -EINVAL (not one hex
 * key); why says which. The text read is wiped.
 */
int key_file_read32(const char *path, uint8_t key[static 32], struct err_detail *why);
/* Constant-time comparison; 0 when equal. */
int secret_cmp(const void *a, const void *b, size_t n);
void secret_wipe(void *p, size_t n);
/* Wipe n bytes at p, then free(p): for malloc'd memory that held secrets; accepts NULL. */
void wipe_free(void *p, size_t n);
/*
 * Overwrite the 4 KiB of stack below the caller's frame, where a function that just
 * returned left copies of a secret (nettle's X25519 scratch, compiler spills).
 */
void secret_wipe_stack(void);

/* ---- bounded byte buffer ------------------------------------------------------ */

/*
 * Growing wipes the block it leaves, so a buffer that may hold key material is clean
 * once its owner wipes data[0..cap) and frees it.
 */

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;  /* growth never exceeds this; 0 means 16 MiB */
};

void buf_init(struct buf *b, size_t max);
/* Append n bytes; -EMSGSIZE past the limit, -ENOMEM on allocation failure. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keeps the bytes NUL-terminated without counting the NUL (for text replies). */
int buf_terminate(struct buf *b);
void buf_reset(struct buf *b);
/* Frees the data of an embedded buffer and empties it; accepts NULL. */
void buf_clear(struct buf *b);
/* The same, after wiping data[0..cap): for a buffer that held key material. */
void buf_wipe_clear(struct buf *b);

/* ---- Unix sockets (unix.c) --------------------------------------------------------- */

struct sockaddr_un;
/* path into sun; -ENAMETOOLONG when it does not fit. */
int unix_sockaddr(const char *path, struct sockaddr_un *sun);
/* Send all of data by deadline (now_ms clock): 0, -ETIMEDOUT, or the send error. */
int unix_send_all(int fd, const void *data, size_t len, uint64_t deadline);

/* ---- JSON (jsmn) ---------------------------------------------------------------- */

struct json_token {
	int type;    /* JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_PRIMITIVE */
	int start;
	int end;
	int size;    /* members (object) or elements (array) */
	int parent;  /* index of the enclosing token, -1 for the top-level value */
};

enum { JSON_OBJECT = 1, JSON_ARRAY = 2, JSON_STRING = 3, JSON_PRIMITIVE = 4 };

struct json {
	const char *text;
	size_t len;
	struct json_token *tok;
	int ntok;
};

/*
 * Parse text (not necessarily NUL-terminated) into tokens. At most max_tokens are
 * allocated (0 = a default of 65536), so a hostile document cannot make us allocate
 * without limit. Returns 0, -EINVAL (not JSON, or trailing garbage), -E2BIG (too many
 * tokens) or -ENOMEM.
 */
int json_parse(struct json *j, const char *text, size_t len, int max_tokens);
void json_clear(struct json *j);

/* Index of the token after the whole value at index i (skips nested values). */
int json_skip(const struct json *j, int i);
/* Index of the value of key in the object at index obj, or -ENOENT / -EINVAL. */
int json_get(const struct json *j, int obj, const char *key);
/* Index of the n-th element of the array at index arr, or -ENOENT / -EINVAL. */
int json_array_at(const struct json *j, int arr, int n);
/* True when token i is a string/primitive equal to s. */
bool json_eq(const struct json *j, int i, const char *s);
/* Length and pointer of token i's raw text (strings without quotes, escapes kept). */
const char *json_raw(const struct json *j, int i, size_t *len);
/*
 * Copy string token i, with JSON escapes decoded, into a malloc'd NUL-terminated
 * string. -EINVAL if i is not a string or has a bad escape.
 */
int json_strdup(const struct json *j, int i, char **out);
/* Integer primitive (decimal) or string holding one. */
int json_int64(const struct json *j, int i, int64_t *out);
int json_bool(const struct json *j, int i, bool *out);
bool json_is_null(const struct json *j, int i);

/* Append s as a JSON string literal (quoted, escaped). */
int json_append_string(struct buf *b, const char *s);

/* ---- Prometheus text exposition, format 0.0.4 (prom.c) --------------------------------- */

/*
 * A writer of what a Prometheus server scrapes: a family's HELP and TYPE lines, then its
 * samples, one a line, "name{label=\"value\",...} value". Label values are escaped (\\,
 * \", \n); their other control bytes and bytes that are not UTF-8 become '?', so any value
 * stays inside its quotes and its line. Each call writes its lines whole or, on failure,
 * nothing (b as it was). The caller keeps a family's samples together, after its
 * prom_family.
 */
#define PROM_NAME_MAX 128  /* bytes of a metric or label name */
#define PROM_VALUE_MAX 256 /* bytes of a label value */
#define PROM_LABELS_MAX 8  /* labels of one sample */

enum prom_type { PROM_COUNTER, PROM_GAUGE };

struct prom_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not beginning with "__" */
	const char *value; /* any bytes up to the NUL, at most PROM_VALUE_MAX of them */
};

/* [a-zA-Z_:][a-zA-Z0-9_:]*, 1 to PROM_NAME_MAX bytes. */
bool prom_metric_name_valid(const char *name);
bool prom_label_name_valid(const char *name);
/*
 * "# HELP name help" (help escaped) and "# TYPE name counter|gauge". 0, -EINVAL (a name
 * that is not valid, a counter's not ending in _total), -EMSGSIZE (past b's limit), -ENOMEM.
 */
int prom_family(struct buf *b, const char *name, enum prom_type type, const char *help);
/*
 * One sample of name with n labels (at most PROM_LABELS_MAX): value as a float ("NaN",
 * "+Inf", "-Inf" included) or as an unsigned integer. 0, -EINVAL (a name not valid, too
 * many labels, a value longer than PROM_VALUE_MAX), -EMSGSIZE, -ENOMEM.
 */
int prom_sample(struct buf *b, const char *name, const struct prom_label *labels, size_t n, double value);
int prom_sample_u64(struct buf *b, const char *name, const struct prom_label *labels, size_t n,
		    uint64_t value);

/* ---- misc ------------------------------------------------------------------------ */

/* Monotonic clock in milliseconds. */
uint64_t now_ms(void);
/* Sleep ms milliseconds, the whole of them (resumed after a signal's handler). */
void sleep_ms(long ms);
/* strerror for negative errno values. */
const char *errstr(int negative_errno);

#endif
