/* SPDX-License-Identifier: MIT */
/*
 * Solidity ABI: an encoder that writes heads and tails into one buffer, and a zero-copy
 * decoder whose every read is checked against the length of the data it was given.
 */
#include <errno.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"

#define WORD 32

static const uint8_t zero_word[WORD];

void abi_selector(const char *signature, uint8_t out[static 4])
{
	uint8_t h[32];

	keccak256(h, signature, strlen(signature));
	memcpy(out, h, 4);
}

void abi_event_topic(const char *signature, uint8_t out[static 32])
{
	keccak256(out, signature, strlen(signature));
}

/* ---- encoding ------------------------------------------------------------------------ */

int abi_enc_begin(struct abi_encoder *e, struct buf *out, size_t nslots)
{
	int r;

	e->out = out;
	e->start = out->len;
	e->nslots = nslots;
	e->next = 0;
	for (size_t i = 0; i < nslots; i++) {
		r = buf_append(out, zero_word, WORD);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The head slot the next value goes to, or NULL when every slot is used. */
static uint8_t *next_slot(struct abi_encoder *e)
{
	if (e->next >= e->nslots)
		return NULL;
	return e->out->data + e->start + WORD * e->next++;
}

static void store_uint64(uint8_t w[static WORD], uint64_t v)
{
	memset(w, 0, WORD);
	for (int i = 0; i < 8; i++)
		w[WORD - 1 - i] = (uint8_t)(v >> (8 * i));
}

int abi_put_uint64(struct abi_encoder *e, uint64_t v)
{
	uint8_t *w = next_slot(e);

	if (!w)
		return -ENOSPC;
	store_uint64(w, v);
	return 0;
}

int abi_put_word(struct abi_encoder *e, const uint8_t word[static 32])
{
	uint8_t *w = next_slot(e);

	if (!w)
		return -ENOSPC;
	memcpy(w, word, WORD);
	return 0;
}

int abi_put_address(struct abi_encoder *e, const uint8_t addr[static 20])
{
	uint8_t *w = next_slot(e);

	if (!w)
		return -ENOSPC;
	memset(w, 0, WORD - 20);
	memcpy(w + WORD - 20, addr, 20);
	return 0;
}

int abi_put_bool(struct abi_encoder *e, bool v)
{
	return abi_put_uint64(e, v ? 1 : 0);
}

int abi_put_fixed_bytes(struct abi_encoder *e, const void *p, size_t n)
{
	uint8_t *w;

	if (n > WORD)
		return -EINVAL;
	w = next_slot(e);
	if (!w)
		return -ENOSPC;
	memset(w, 0, WORD);
	memcpy(w, p, n);
	return 0;
}

/* Point the next head slot at the end of the buffer, where the dynamic value will go. */
static int put_offset_here(struct abi_encoder *e)
{
	uint8_t *w = next_slot(e);

	if (!w)
		return -ENOSPC;
	store_uint64(w, e->out->len - e->start);
	return 0;
}

static int append_uint64_word(struct buf *b, uint64_t v)
{
	uint8_t w[WORD];

	store_uint64(w, v);
	return buf_append(b, w, WORD);
}

int abi_put_bytes(struct abi_encoder *e, const void *p, size_t n)
{
	size_t pad = (WORD - n % WORD) % WORD;
	int r;

	r = put_offset_here(e);
	if (r < 0)
		return r;
	r = append_uint64_word(e->out, n);
	if (r < 0)
		return r;
	r = buf_append(e->out, p, n);
	if (r < 0)
		return r;
	return buf_append(e->out, zero_word, pad);
}

int abi_put_string(struct abi_encoder *e, const char *s)
{
	return abi_put_bytes(e, s, strlen(s));
}

int abi_put_tuple_begin(struct abi_encoder *e, struct abi_encoder *child, size_t nslots)
{
	int r = put_offset_here(e);

	if (r < 0)
		return r;
	return abi_enc_begin(child, e->out, nslots);
}

int abi_put_array_begin(struct abi_encoder *e, struct abi_encoder *child, size_t count,
			size_t words_per_element)
{
	int r;

	if (words_per_element && count > SIZE_MAX / WORD / words_per_element)
		return -EOVERFLOW;
	r = put_offset_here(e);
	if (r < 0)
		return r;
	r = append_uint64_word(e->out, count);
	if (r < 0)
		return r;
	return abi_enc_begin(child, e->out, count * words_per_element);
}

int abi_enc_end(const struct abi_encoder *e)
{
	return e->next == e->nslots ? 0 : -EINVAL;
}

/* ---- decoding ------------------------------------------------------------------------ */

void abi_tuple_init(struct abi_tuple *t, const uint8_t *data, size_t len)
{
	t->data = data;
	t->len = len;
}

int abi_get_word(const struct abi_tuple *t, size_t slot, const uint8_t **word)
{
	if (slot >= t->len / WORD)
		return -EBADMSG;
	*word = t->data + WORD * slot;
	return 0;
}

/* True when the first n bytes of a word are zero. */
static bool zero_prefix(const uint8_t *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (w[i])
			return false;
	return true;
}

int abi_get_uint(const struct abi_tuple *t, size_t slot, unsigned bits, uint64_t *out)
{
	const uint8_t *w;
	uint64_t v = 0;
	int r;

	if (bits == 0 || bits > 64 || bits % 8)
		return -EINVAL;
	r = abi_get_word(t, slot, &w);
	if (r < 0)
		return r;
	/* Strict like Solidity's decoder: a uint8 with bits above 8 set is malformed. */
	if (!zero_prefix(w, WORD - bits / 8))
		return -ERANGE;
	for (size_t i = WORD - 8; i < WORD; i++)
		v = (v << 8) | w[i];
	*out = v;
	return 0;
}

int abi_get_uint64(const struct abi_tuple *t, size_t slot, uint64_t *out)
{
	return abi_get_uint(t, slot, 64, out);
}

int abi_get_address(const struct abi_tuple *t, size_t slot, uint8_t out[static 20])
{
	const uint8_t *w;
	int r = abi_get_word(t, slot, &w);

	if (r < 0)
		return r;
	if (!zero_prefix(w, WORD - 20))
		return -EBADMSG;
	memcpy(out, w + WORD - 20, 20);
	return 0;
}

int abi_get_bool(const struct abi_tuple *t, size_t slot, bool *out)
{
	uint64_t v;
	int r = abi_get_uint(t, slot, 8, &v);

	if (r < 0)
		return r == -ERANGE ? -EBADMSG : r;
	if (v > 1)
		return -EBADMSG;
	*out = v;
	return 0;
}

int abi_get_fixed_bytes(const struct abi_tuple *t, size_t slot, size_t n, uint8_t *out)
{
	const uint8_t *w;
	int r;

	if (n == 0 || n > WORD)
		return -EINVAL;
	r = abi_get_word(t, slot, &w);
	if (r < 0)
		return r;
	for (size_t i = n; i < WORD; i++)
		if (w[i])
			return -EBADMSG;
	memcpy(out, w, n);
	return 0;
}

/*
 * Follow the offset in a head slot: the returned position is inside the tuple and leaves
 * room for at least one word (a length, or the first head word).
 */
static int follow_offset(const struct abi_tuple *t, size_t slot, size_t *pos)
{
	uint64_t off;
	int r = abi_get_uint64(t, slot, &off);

	if (r < 0)
		return -EBADMSG;
	if (off > t->len || t->len - off < WORD)
		return -EBADMSG;
	*pos = off;
	return 0;
}

static int read_length_word(const struct abi_tuple *t, size_t pos, uint64_t *n)
{
	struct abi_tuple at = { t->data + pos, t->len - pos };

	return abi_get_uint64(&at, 0, n) < 0 ? -EBADMSG : 0;
}

int abi_get_bytes(const struct abi_tuple *t, size_t slot, const uint8_t **p, size_t *n)
{
	size_t pos;
	uint64_t len;
	int r;

	r = follow_offset(t, slot, &pos);
	if (r < 0)
		return r;
	r = read_length_word(t, pos, &len);
	if (r < 0)
		return r;
	pos += WORD;
	if (len > t->len - pos)
		return -EBADMSG;
	*p = t->data + pos;
	*n = len;
	return 0;
}

int abi_get_tuple(const struct abi_tuple *t, size_t slot, struct abi_tuple *sub)
{
	size_t pos;
	int r = follow_offset(t, slot, &pos);

	if (r < 0)
		return r;
	abi_tuple_init(sub, t->data + pos, t->len - pos);
	return 0;
}

int abi_get_array(const struct abi_tuple *t, size_t slot, size_t words_per_element,
		  struct abi_tuple *elements, size_t *count)
{
	size_t pos, room;
	uint64_t n;
	int r;

	if (words_per_element == 0)
		return -EINVAL;
	r = follow_offset(t, slot, &pos);
	if (r < 0)
		return r;
	r = read_length_word(t, pos, &n);
	if (r < 0)
		return r;
	pos += WORD;
	/* Every element needs its head words in the reply: this caps what a count can claim. */
	room = (t->len - pos) / WORD / words_per_element;
	if (n > room)
		return -EBADMSG;
	abi_tuple_init(elements, t->data + pos, t->len - pos);
	*count = n;
	return 0;
}
