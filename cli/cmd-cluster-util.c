/* SPDX-License-Identifier: MIT */
/* Helpers of the operator commands: the paying key, amounts, addresses, batched views. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cluster.h"
#include "crypto/crypto.h"

#define KEYSTORE_MAX (16 << 10)
#define PASSWORD_MAX 1024
/* eth_calls per JSON-RPC batch: providers cap batches at 100 or so. */
#define VIEWS_PER_BATCH 50

int cluster_read_file(const char *path, struct buf *b, size_t max)
{
	char chunk[4096];
	FILE *f = fopen(path, "re");
	size_t n;
	int r = 0;

	buf_init(b, max);
	if (!f)
		return -errno;
	while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		r = buf_append(b, chunk, n);
	if (r == 0 && ferror(f))
		r = -EIO;
	fclose(f);
	secret_wipe(chunk, sizeof(chunk));
	if (r == 0)
		r = buf_terminate(b);
	return r;
}

/* Length of s without trailing whitespace. */
static size_t trimmed_len(const char *s, size_t n)
{
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n;
}

static int key_from_file(const char *path, uint8_t sk[static 32])
{
	struct buf text;
	const char *s;
	size_t n;
	int r = cluster_read_file(path, &text, 256);

	if (r < 0) {
		cli_error("reading the key file %s: %s", path, errstr(r));
		return -EINVAL;
	}
	s = (const char *)text.data;
	n = trimmed_len(s, text.len);
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2, n -= 2;
	r = hex_decode_exact(sk, 32, s, n) < 0 ? -EINVAL : 0;
	if (r < 0)
		cli_error("the key file %s does not hold a 32-byte hex key", path);
	buf_wipe_clear(&text);
	return r;
}

/* The password from a file (first line) or typed on the terminal without echo. */
static int read_password(const char *password_file, char *pw, size_t max, size_t *len)
{
	struct termios old, quiet;
	FILE *tty;
	int r = 0;

	if (password_file) {
		struct buf text;

		r = cluster_read_file(password_file, &text, max);
		if (r < 0) {
			cli_error("reading the password file %s: %s", password_file, errstr(r));
			return -EINVAL;
		}
		*len = strcspn((const char *)text.data, "\r\n");
		memcpy(pw, text.data, *len);
		buf_wipe_clear(&text);
		return 0;
	}
	tty = fopen("/dev/tty", "r+e");
	if (!tty) {
		cli_error("the keystore needs a password: --password-file, or run on a terminal");
		return -EINVAL;
	}
	fprintf(tty, "keystore password: ");
	fflush(tty);
	tcgetattr(fileno(tty), &old);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
	if (!fgets(pw, (int)max, tty))
		r = -EIO;
	tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fprintf(tty, "\n");
	fclose(tty);
	*len = r == 0 ? strcspn(pw, "\r\n") : 0;
	return r;
}

static int key_from_keystore(const struct cluster_key_opts *o, uint8_t sk[static 32])
{
	char *pw = secret_alloc(PASSWORD_MAX + 1);
	struct buf text;
	size_t pw_len = 0;
	int r;

	buf_init(&text, 0);
	if (!pw)
		return -ENOMEM;
	r = cluster_read_file(o->keystore, &text, KEYSTORE_MAX);
	if (r < 0) {
		cli_error("reading the keystore %s: %s", o->keystore, errstr(r));
		r = -EINVAL;
		goto out;
	}
	memset(pw, 0, PASSWORD_MAX + 1);
	r = read_password(o->password_file, pw, PASSWORD_MAX, &pw_len);
	if (r < 0)
		goto out;
	r = eth_keystore_decrypt((const char *)text.data, text.len, pw, pw_len, sk);
	if (r == -EACCES)
		cli_error("the keystore %s does not open with this password", o->keystore);
	else if (r < 0)
		cli_error("%s is not a keystore v3 file this tool reads (aes-128-ctr, scrypt up to "
			  "n=2^18 or pbkdf2-sha256): %s", o->keystore, errstr(r));
	if (r < 0)
		r = -EINVAL;
out:
	secret_free(pw, PASSWORD_MAX + 1);
	buf_clear(&text);
	return r;
}

int cluster_load_key(const struct cluster_key_opts *o, uint8_t **sk, uint8_t addr[static 20])
{
	uint8_t pub[64];
	int r;

	*sk = NULL;
	if (!o->key_file && !o->keystore) {
		cli_error("this sends a transaction: give the paying key with --key-file FILE or "
			  "--keystore FILE");
		return -EINVAL;
	}
	if (o->key_file && o->keystore) {
		cli_error("give --key-file or --keystore, not both");
		return -EINVAL;
	}
	*sk = secret_alloc(32);
	if (!*sk)
		return -ENOMEM;
	r = o->key_file ? key_from_file(o->key_file, *sk) : key_from_keystore(o, *sk);
	if (r == 0 && eth_pubkey_from_secret(*sk, pub) < 0) {
		cli_error("the key is not a valid secp256k1 secret");
		r = -EINVAL;
	}
	if (r < 0) {
		secret_free(*sk, 32);
		*sk = NULL;
		return r;
	}
	eth_address_from_pubkey(pub, addr);
	return 0;
}

int cluster_parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	return errno || *end ? -EINVAL : 0;
}

/* Units as exponents of ten. */
static const struct {
	const char *name;
	unsigned exp;
} wei_units[] = {
	{ "wei", 0 }, { "gwei", 9 }, { "ether", 18 }, { "eth", 18 },
};

int cluster_parse_wei(const char *s, uint64_t *wei)
{
	const char *p = s;
	uint64_t v = 0;
	unsigned exp = 0, frac = 0;
	bool dot = false, digits = false;

	for (; *p && ((*p >= '0' && *p <= '9') || (*p == '.' && !dot)); p++) {
		if (*p == '.') {
			dot = true;
			continue;
		}
		digits = true;
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -ERANGE;
		frac += dot;
	}
	if (!digits)
		return -EINVAL;
	if (*p) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(wei_units) && strcmp(p, wei_units[i].name); i++)
			;
		if (i == ARRAY_SIZE(wei_units))
			return -EINVAL;
		exp = wei_units[i].exp;
	}
	if (frac > exp)
		return -EINVAL;  /* a fraction of a wei */
	for (unsigned k = frac; k < exp; k++)
		if (__builtin_mul_overflow(v, 10, &v))
			return -ERANGE;
	*wei = v;
	return 0;
}

int cluster_parse_address(const char *s, uint8_t out[static 20])
{
	return s && hex_decode_exact(out, 20, s, strlen(s)) > 0 ? 0 : -EINVAL;
}

int cluster_parse_bytes32(const char *s, uint8_t out[static 32])
{
	return s && hex_decode_exact(out, 32, s, strlen(s)) > 0 ? 0 : -EINVAL;
}

void cluster_views_init(struct cluster_view *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_init(&v[i].data, 0);
		buf_init(&v[i].out, 0);
		v[i].ok = false;
	}
}

void cluster_views_free(struct cluster_view *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		buf_clear(&v[i].data);
		buf_clear(&v[i].out);
	}
}

int cluster_calldata_word(struct buf *b, const char *sig, const uint8_t *word)
{
	uint8_t sel[4];
	int r;

	abi_selector(sig, sel);
	r = buf_append(b, sel, 4);
	return r == 0 && word ? buf_append(b, word, 32) : r;
}

/* Params of one eth_call: [{"to":..,"data":..},tag]. */
static char *view_params(const uint8_t to[static 20], const struct buf *data, const char *tag)
{
	size_t n = 2 * data->len + 128 + strlen(tag);
	char *p = malloc(n), to_hex[41];
	int off;

	if (!p)
		return NULL;
	hex_encode(to_hex, to, 20);
	off = snprintf(p, n, "[{\"to\":\"0x%s\",\"data\":\"0x", to_hex);
	hex_encode(p + off, data->data, data->len);
	snprintf(p + off + 2 * data->len, n - (size_t)off - 2 * data->len, "\"},\"%s\"]", tag);
	return p;
}

static int run_batch(struct eth_rpc *rpc, const uint8_t to[static 20], const char *tag,
		     struct cluster_view *v, size_t n)
{
	struct eth_rpc_call calls[VIEWS_PER_BATCH] = { 0 };
	char *params[VIEWS_PER_BATCH] = { 0 };
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		params[i] = view_params(to, &v[i].data, tag);
		calls[i].method = "eth_call";
		calls[i].params = params[i];
		if (!params[i])
			r = -ENOMEM;
	}
	if (r == 0)
		r = eth_rpc_batch(rpc, calls, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t *bytes;
		size_t len;

		if (r == 0 && !calls[i].error && calls[i].result_type == JSON_STRING &&
		    eth_parse_data(calls[i].result, calls[i].result_len, calls[i].result_len, &bytes,
				   &len) == 0) {
			v[i].ok = buf_append(&v[i].out, bytes, len) == 0;
			free(bytes);
		}
		eth_rpc_call_clear(&calls[i]);
		free(params[i]);
	}
	return r;
}

int cluster_views_run(struct eth_rpc *rpc, const uint8_t to[static 20], const char *tag,
		      struct cluster_view *v, size_t n)
{
	for (size_t at = 0; at < n; at += VIEWS_PER_BATCH) {
		size_t k = n - at < VIEWS_PER_BATCH ? n - at : VIEWS_PER_BATCH;
		int r = run_batch(rpc, to, tag, v + at, k);

		if (r < 0)
			return r;
	}
	return 0;
}

void cluster_key_opt_set(struct cluster_key_opts *o, bool keystore, const char *path)
{
	if (!o->from_cli)
		o->key_file = o->keystore = NULL;
	o->from_cli = true;
	*(keystore ? &o->keystore : &o->key_file) = path;
}

/* The folder of the running binary: "/usr/bin" for /usr/bin/dstack-p2p, a checkout's
 * "build" for build/dstack-p2p. -errno when /proc does not say. */
static int exe_dir(char *out, size_t max)
{
	ssize_t n = readlink("/proc/self/exe", out, max - 1);
	char *slash;

	if (n < 0)
		return -errno;
	if ((size_t)n >= max - 1)
		return -ENAMETOOLONG;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

static bool readable(const char *dir, const char *file)
{
	char path[4096];

	return (size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) < sizeof(path) &&
	       access(path, R_OK) == 0;
}

int cluster_find_data(const char *installed, const char *in_share, const char *in_checkout,
		      const char *probe, char *out, size_t max)
{
	char dir[4096];

	/* A binary in a checkout (build/dstack-p2p) uses that checkout's files, even where an
	 * older release is installed; then an installed tree where it lies (a DESTDIR, a moved
	 * prefix: bin/../share/dstack-p2p); then where make install was told to put them. */
	if (exe_dir(dir, sizeof(dir)) == 0) {
		if ((size_t)snprintf(out, max, "%s/../%s", dir, in_checkout) < max && readable(out, probe))
			return 0;
		if ((size_t)snprintf(out, max, "%s/../share/dstack-p2p/%s", dir, in_share) < max &&
		    readable(out, probe))
			return 0;
	}
	if ((size_t)snprintf(out, max, "%s", installed) >= max)
		return -ENAMETOOLONG;
	return readable(out, probe) ? 0 : -ENOENT;
}
