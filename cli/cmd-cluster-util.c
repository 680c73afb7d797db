/* SPDX-License-Identifier: MIT */
/* Helpers of the operator commands: the paying key's options and password, the data files. */
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

int cluster_ask_password(char *pw, size_t max, size_t *len)
{
	struct termios old, quiet;
	FILE *tty = fopen("/dev/tty", "r+e");
	int r = 0;

	if (!tty)
		return -ENOTTY;
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

int cluster_load_key(const struct ops_key_source *src, uint8_t **sk, uint8_t addr[static 20])
{
	struct err_detail why = { 0 };
	int r = ops_key_load(src, cluster_ask_password, sk, addr, &why);

	if (r < 0)
		cli_error("%s", why.text[0] ? why.text : errstr(r));
	return r;
}

void cluster_key_opt_set(struct cluster_key_opts *o, bool keystore, const char *path)
{
	if (!o->from_cli)
		o->src.key_file = o->src.keystore = NULL;
	o->from_cli = true;
	*(keystore ? &o->src.keystore : &o->src.key_file) = path;
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
