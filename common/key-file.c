/* SPDX-License-Identifier: MIT */
/* key_file_check: a key file that others may read, or that someone else owns, is refused. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"

int key_file_check(const char *path, struct err_detail *why)
{
	struct stat st;
	mode_t perm;

	if (stat(path, &st) < 0) {
		int r = -errno;

		err_detail_set(why, "the key file %s: %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		err_detail_set(why, "the key file %s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_uid != geteuid()) {
		err_detail_set(why, "the key file %s is owned by uid %u, not by the user running this "
			       "(uid %u): chown it", path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	perm = st.st_mode & 07777;
	if (perm & ~(mode_t)0600 || !(perm & 0400)) {
		err_detail_set(why, "the key file %s has mode %04o; it must be 0600 or 0400 (others "
			       "must not read it): chmod 600 %s", path, (unsigned)perm, path);
		return -EPERM;
	}
	return 0;
}
