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
		cr_assert(strstr(why.text, "not owned by the user"), "%s", why.text);
	}
}

/* key_file_read32: the same rule on the opened file, then one 32-byte hex key. */
Test(key_file, read32)
{
	char dir[] = "/tmp/keyfile-XXXXXX", path[64];
	struct err_detail why = { "" };
	uint8_t key[32], want[32];
	FILE *f;

	for (size_t i = 0; i < 32; i++)
		want[i] = (uint8_t)(0xa0 + i);
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("0xa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n", f);
	fclose(f);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(key_file_read32(path, key, &why), -EPERM, "a readable key was read");
	cr_assert(strstr(why.text, "0600 or 0400"), "%s", why.text);
	cr_assert_eq(chmod(path, 0600), 0);
	why.text[0] = '\0';
	cr_assert_eq(key_file_read32(path, key, &why), 0, "%s", why.text);
	cr_assert_eq(memcmp(key, want, 32), 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("a0a1a2\n", f);
	fclose(f);
	cr_assert_eq(key_file_read32(path, key, &why), -EINVAL);
	cr_assert(strstr(why.text, "one 32-byte hex key"), "%s", why.text);
	unlink(path);
	cr_assert_eq(key_file_read32(path, key, &why), -ENOENT);
	cr_assert(strstr(why.text, path), "%s", why.text);
	rmdir(dir);
}
