/* SPDX-License-Identifier: MIT */
/*
 * Key files: a key that others may read, or that someone else owns (and may swap), is
 * refused. One check for the agent's funded key and the relayer's paying key.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

/* The rule, on what stat/fstat said of path. */
static int key_file_stat_check(const struct stat *st, const char *path, struct err_detail *why)
{
	mode_t perm = st->st_mode & 07777;

	if (!S_ISREG(st->st_mode)) {
		err_detail_set(why, "the key file %s is not a regular file", path);
		return -EINVAL;
	}
	if (st->st_uid != geteuid()) {
		err_detail_set(why, "the key file %s is not owned by the user running this (uid %u; its "
			       "owner is uid %u): chown it", path, (unsigned)geteuid(), (unsigned)st->st_uid);
		return -EPERM;
	}
	if (perm & ~(mode_t)0600 || !(perm & 0400)) {
		err_detail_set(why, "the key file %s has mode %04o; it must be 0600 or 0400 (others "
			       "must not read it): chmod 600 %s", path, (unsigned)perm, path);
		return -EPERM;
	}
	return 0;
}

int key_file_check(const char *path, struct err_detail *why)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int r = -errno;

		err_detail_set(why, "the key file %s: %s", path, strerror(-r));
		return r;
	}
	return key_file_stat_check(&st, path, why);
}

int key_file_read32(const char *path, uint8_t key[static 32], struct err_detail *why)
{
	char text[80] = { 0 };
	struct stat st;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		err_detail_set(why, "the key file %s: %s", path, strerror(-r));
		return r;
	}
	/* Checked on the descriptor read from, so the file cannot be swapped in between. */
	r = fstat(fd, &st) < 0 ? -errno : key_file_stat_check(&st, path, why);
	if (r == 0) {
		n = read(fd, text, sizeof(text) - 1);
		r = n < 0 ? -errno : 0;
	}
	close(fd);
	if (r == 0 && hex_decode_exact(key, 32, text, strcspn(text, " \t\r\n")) < 0) {
		err_detail_set(why, "the key file %s does not hold one 32-byte hex key", path);
		r = -EINVAL;
	} else if (r < 0 && why && !why->text[0]) {
		err_detail_set(why, "the key file %s: %s", path, strerror(-r));
	}
	secret_wipe(text, sizeof(text));
	return r;
}
