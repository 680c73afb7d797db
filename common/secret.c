/* SPDX-License-Identifier: MIT */
/* Key material in locked, non-dumpable memory, wiped before release. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common.h"

void *secret_alloc(size_t size)
{
	void *p;

	if (!size)
		return NULL;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Best effort: unprivileged processes may exceed RLIMIT_MEMLOCK. */
	(void)mlock(p, size);
	(void)madvise(p, size, MADV_DONTDUMP);
	return p;
}

void secret_free(void *p, size_t size)
{
	if (!p)
		return;
	explicit_bzero(p, size);
	munlock(p, size);
	munmap(p, size);
}

void secret_wipe(void *p, size_t n)
{
	if (p)
		explicit_bzero(p, n);
}

void wipe_free(void *p, size_t n)
{
	if (!p)
		return;
	explicit_bzero(p, n);
	free(p);
}

int secret_cmp(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= x[i] ^ y[i];
	return acc;
}

__attribute__((noinline)) void secret_wipe_stack(void)
{
	uint8_t scratch[4096];

	explicit_bzero(scratch, sizeof(scratch));
	__asm__ volatile("" : : "r"(scratch) : "memory");
}
