/* SPDX-License-Identifier: MIT */
/* A small reader over jsmn: bounded token arrays, lookups, escape decoding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STRICT
/*
 * Without parent links jsmn finds the enclosing container of every closing bracket by
 * scanning back over all tokens so far: quadratic, minutes for a few MB of small objects
 * from a hostile RPC. With them it follows the chain of parents.
 */
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "common.h"

#define JSON_DEFAULT_MAX_TOKENS 65536

_Static_assert(sizeof(struct json_token) == sizeof(jsmntok_t), "json_token mirrors jsmntok_t");

/* In strict mode jsmn leaves unquoted words; only JSON's literals and numbers pass. */
static bool primitive_valid(const char *text, const jsmntok_t *t)
{
	const char *s = text + t->start;
	int n = t->end - t->start;

	return n > 0 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9') ||
			 (n == 4 && !memcmp(s, "true", 4)) || (n == 5 && !memcmp(s, "false", 5)) ||
			 (n == 4 && !memcmp(s, "null", 4)));
}

/*
 * jsmn's strict mode still takes some broken documents: in {"a":1,:2} and [1,:2] the
 * ':' turns the 1 into a key. The token tree then disagrees with the sizes that
 * json_skip() and json_get() walk by, so check each token's place: members of an object
 * are string keys with exactly one value, every other string or primitive has no
 * children, and only containers and keys are parents.
 */
static bool token_valid(const char *text, const jsmntok_t *tok, int i)
{
	const jsmntok_t *t = &tok[i];
	bool is_key = false;

	if (i == 0) {
		if (t->parent != -1)
			return false;
	} else {
		const jsmntok_t *p;

		if (t->parent < 0 || t->parent >= i)
			return false;
		p = &tok[t->parent];
		if (p->type == JSMN_OBJECT)
			is_key = true;
		else if (p->type != JSMN_ARRAY &&
			 !(p->type == JSMN_STRING && p->parent >= 0 && tok[p->parent].type == JSMN_OBJECT))
			return false;
	}
	if (is_key)
		return t->type == JSMN_STRING && t->size == 1;
	if (t->type == JSMN_PRIMITIVE)
		return t->size == 0 && primitive_valid(text, t);
	if (t->type == JSMN_STRING)
		return t->size == 0;
	return t->type == JSMN_OBJECT || t->type == JSMN_ARRAY;
}

int json_parse(struct json *j, const char *text, size_t len, int max_tokens)
{
	jsmn_parser parser;
	jsmntok_t *tok;
	int n, cap = 64;

	memset(j, 0, sizeof(*j));
	if (max_tokens <= 0)
		max_tokens = JSON_DEFAULT_MAX_TOKENS;
	/* Skip trailing white space so "{...}\n" is a whole document. */
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\n' ||
		       text[len - 1] == '\r' || text[len - 1] == '\t'))
		len--;
	if (!len)
		return -EINVAL;
	for (;;) {
		if (cap > max_tokens)
			cap = max_tokens;
		tok = malloc(sizeof(*tok) * (size_t)cap);
		if (!tok)
			return -ENOMEM;
		jsmn_init(&parser);
		n = jsmn_parse(&parser, text, len, tok, (unsigned int)cap);
		if (n != JSMN_ERROR_NOMEM)
			break;
		free(tok);
		if (cap == max_tokens)
			return -E2BIG;
		cap *= 4;
	}
	if (n <= 0) {
		free(tok);
		return -EINVAL;
	}
	/* The first value must span the whole text: no trailing garbage, one document. */
	if (tok[0].end < 0 || (size_t)tok[0].end != len ||
	    (tok[0].start != 0 && strspn(text, " \t\r\n") != (size_t)tok[0].start)) {
		free(tok);
		return -EINVAL;
	}
	for (int i = 0; i < n; i++) {
		if (!token_valid(text, tok, i)) {
			free(tok);
			return -EINVAL;
		}
	}
	j->text = text;
	j->len = len;
	j->tok = (struct json_token *)tok;
	j->ntok = n;
	return 0;
}

void json_clear(struct json *j)
{
	if (!j)
		return;
	free(j->tok);
	j->tok = NULL;
	j->ntok = 0;
}

int json_skip(const struct json *j, int i)
{
	/* Iterative: a deeply nested hostile document must not exhaust the stack. */
	int pending = 1;

	while (pending > 0 && i < j->ntok) {
		const struct json_token *t = &j->tok[i];

		pending--;
		if (t->type == JSON_OBJECT)
			pending += 2 * t->size;
		else if (t->type == JSON_ARRAY)
			pending += t->size;
		i++;
	}
	return i;
}

bool json_eq(const struct json *j, int i, const char *s)
{
	size_t n;
	const char *raw;

	if (i < 0 || i >= j->ntok)
		return false;
	raw = json_raw(j, i, &n);
	return strlen(s) == n && !memcmp(raw, s, n);
}

int json_get(const struct json *j, int obj, const char *key)
{
	int i;

	if (obj < 0 || obj >= j->ntok || j->tok[obj].type != JSON_OBJECT)
		return -EINVAL;
	i = obj + 1;
	for (int m = 0; m < j->tok[obj].size; m++) {
		if (i + 1 >= j->ntok)
			return -EINVAL;
		if (j->tok[i].type == JSON_STRING && json_eq(j, i, key))
			return i + 1;
		i = json_skip(j, i + 1);
	}
	return -ENOENT;
}

int json_array_at(const struct json *j, int arr, int n)
{
	int i;

	if (arr < 0 || arr >= j->ntok || j->tok[arr].type != JSON_ARRAY)
		return -EINVAL;
	if (n < 0 || n >= j->tok[arr].size)
		return -ENOENT;
	i = arr + 1;
	while (n-- > 0)
		i = json_skip(j, i);
	return i < j->ntok ? i : -EINVAL;
}

const char *json_raw(const struct json *j, int i, size_t *len)
{
	*len = (size_t)(j->tok[i].end - j->tok[i].start);
	return j->text + j->tok[i].start;
}

static int utf8_put(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		int d = hex_digit(s[k]);

		if (d < 0)
			return -EINVAL;
		v = v << 4 | (unsigned)d;
	}
	*out = v;
	return 0;
}

int json_strdup(const struct json *j, int i, char **out)
{
	const char *s;
	size_t n, o = 0;
	char *d;

	*out = NULL;
	if (i < 0 || i >= j->ntok || j->tok[i].type != JSON_STRING)
		return -EINVAL;
	s = json_raw(j, i, &n);
	d = malloc(n + 1);  /* decoding never makes a string longer */
	if (!d)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		unsigned cp;

		if (s[k] != '\\') {
			d[o++] = s[k];
			continue;
		}
		if (++k >= n)
			goto bad;
		switch (s[k]) {
		case '"': d[o++] = '"'; break;
		case '\\': d[o++] = '\\'; break;
		case '/': d[o++] = '/'; break;
		case 'b': d[o++] = '\b'; break;
		case 'f': d[o++] = '\f'; break;
		case 'n': d[o++] = '\n'; break;
		case 'r': d[o++] = '\r'; break;
		case 't': d[o++] = '\t'; break;
		case 'u':
			if (k + 4 >= n || hex4(s + k + 1, &cp) < 0)
				goto bad;
			k += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				unsigned lo;

				if (k + 6 >= n || s[k + 1] != '\\' || s[k + 2] != 'u' ||
				    hex4(s + k + 3, &lo) < 0 || lo < 0xdc00 || lo >= 0xe000)
					goto bad;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				k += 6;
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				goto bad;
			}
			if (!cp)
				goto bad;  /* an embedded NUL would truncate the C string */
			o += (size_t)utf8_put(d + o, cp);
			break;
		default:
			goto bad;
		}
	}
	d[o] = '\0';
	*out = d;
	return 0;
bad:
	free(d);
	return -EINVAL;
}

int json_int64(const struct json *j, int i, int64_t *out)
{
	const char *s;
	size_t n;
	int64_t v = 0;
	bool neg = false;

	if (i < 0 || i >= j->ntok ||
	    (j->tok[i].type != JSON_PRIMITIVE && j->tok[i].type != JSON_STRING))
		return -EINVAL;
	s = json_raw(j, i, &n);
	if (n && s[0] == '-') {
		neg = true;
		s++;
		n--;
	}
	if (!n || n > 19)
		return -ERANGE;
	for (size_t k = 0; k < n; k++) {
		if (s[k] < '0' || s[k] > '9')
			return -EINVAL;
		if (v > (INT64_MAX - (s[k] - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (s[k] - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

int json_bool(const struct json *j, int i, bool *out)
{
	if (json_eq(j, i, "true") && j->tok[i].type == JSON_PRIMITIVE)
		*out = true;
	else if (json_eq(j, i, "false") && j->tok[i].type == JSON_PRIMITIVE)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

bool json_is_null(const struct json *j, int i)
{
	return i >= 0 && i < j->ntok && j->tok[i].type == JSON_PRIMITIVE && json_eq(j, i, "null");
}

int json_append_string(struct buf *b, const char *s)
{
	int r = buf_append(b, "\"", 1);

	for (; !r && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			r = buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			r = buf_printf(b, "\\u%04x", c);
		else
			r = buf_append(b, s, 1);
	}
	return r ? r : buf_append(b, "\"", 1);
}
