/* SPDX-License-Identifier: MIT */
/* Unit tests of key_file_check: only a 0600/0400 regular file of the running user holds a key. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/common.h"

Test(key_file, mode_and_owner)
{
	char dir[] = "/tmp/keyfile-XXXXXX", path[64];
	struct err_detail why = { "" };
	FILE *f;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("00\n", f);
	fclose(f);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(key_file_check(path, &why), 0, "%s", why.text);
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(key_file_check(path, &why), 0, "%s", why.text);
	static const mode_t bad[] = { 0644, 0640, 0604, 0660, 0700, 0200, 04600 };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(chmod(path, bad[i]), 0);
		cr_assert_eq(key_file_check(path, &why), -EPERM, "mode %o accepted", bad[i]);
		cr_assert(strstr(why.text, "0600 or 0400"), "%s", why.text);
		cr_assert(strstr(why.text, path), "names the file: %s", why.text);
	}
	cr_assert_eq(key_file_check(dir, &why), -EINVAL, "a directory");
	unlink(path);
	cr_assert_eq(key_file_check(path, &why), -ENOENT);
	rmdir(dir);
	/* Another owner: a root-owned file, when we are not root. */
	if (geteuid() != 0 && access("/etc/passwd", R_OK) == 0) {
		cr_assert_eq(key_file_check("/etc/passwd", &why), -EPERM);
		cr_assert(strstr(why.text, "owned by uid 0"), "%s", why.text);
	}
}
