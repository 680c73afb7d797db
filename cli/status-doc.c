/* SPDX-License-Identifier: MIT */
/* The status document rewritten for output: 0x ids, unknown fields as null, health (status-doc.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/status-doc.h"

#define MAX_TOKENS (1 << 14)
#define ZERO_WG_KEY "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

/* Which object a member belongs to: the document itself, a peer, a rejected record. */
enum scope { TOP, PEER, REJECTED };

struct ctx {
	const struct json *j;
	struct buf *out;
	bool never_read;      /* last_sync_ms_ago < 0: no registry read yet */
};

/* A raw token back out: strings keep their escapes and get their quotes back. */
static int put_raw(struct ctx *c, int i)
{
	size_t len;
	const char *s = json_raw(c->j, i, &len);

	if (c->j->tok[i].type == JSON_STRING)
		return buf_printf(c->out, "\"%.*s\"", (int)len, s);
	return buf_append(c->out, s, len);
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A 20-byte id with or without 0x as "0x" + 40 lowercase digits; all zeros or malformed: null. */
static int put_id(struct ctx *c, int i)
{
	char hex[41];
	size_t len;
	const char *s = json_raw(c->j, i, &len);
	bool zero = true;

	if (c->j->tok[i].type == JSON_STRING && len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		len -= 2;
	}
	if (c->j->tok[i].type != JSON_STRING || len != 40)
		return buf_printf(c->out, "null");
	for (size_t k = 0; k < 40; k++) {
		if (!is_hex(s[k]))
			return buf_printf(c->out, "null");
		hex[k] = (char)(s[k] >= 'A' && s[k] <= 'F' ? s[k] - 'A' + 'a' : s[k]);
		zero &= s[k] == '0';
	}
	hex[40] = '\0';
	return zero ? buf_printf(c->out, "null") : buf_printf(c->out, "\"0x%s\"", hex);
}

/* A value that means "not known" when it is 0, "" or the all-zero key: null then. */
static int put_known(struct ctx *c, int i)
{
	if (json_eq(c->j, i, "0") || json_eq(c->j, i, ZERO_WG_KEY) ||
	    (c->j->tok[i].type == JSON_STRING && c->j->tok[i].end == c->j->tok[i].start))
		return buf_printf(c->out, "null");
	return put_raw(c, i);
}

static bool key_in(const struct json *j, int k, const char *const *keys)
{
	for (; *keys; keys++)
		if (json_eq(j, k, *keys))
			return true;
	return false;
}

static int put_object(struct ctx *c, int obj, enum scope scope, int *members);

/* The peers and rejected arrays: each object element normalized, anything else copied. */
static int put_array(struct ctx *c, int arr, enum scope scope)
{
	int r = buf_printf(c->out, "[");

	for (int k = 0, e = arr + 1; r == 0 && k < c->j->tok[arr].size && e < c->j->ntok;
	     k++, e = json_skip(c->j, e)) {
		r = buf_printf(c->out, "%s", k ? "," : "");
		if (r == 0)
			r = c->j->tok[e].type == JSON_OBJECT ? put_object(c, e, scope, NULL) : put_raw(c, e);
	}
	return r ? r : buf_printf(c->out, "]");
}

static int put_value(struct ctx *c, int key, int v, enum scope scope)
{
	static const char *const ids[] = { "instance_id", "app_id", "contract", NULL };
	static const char *const top_known[] = { "chain_id", "token", "address", "endpoint", "interface",
						 "public_key", "listen_port", NULL };
	static const char *const peer_known[] = { "address", "public_key", NULL };
	static const char *const before_read[] = { "block", "last_sync_ms_ago", NULL };

	if (key_in(c->j, key, ids))
		return put_id(c, v);
	if (scope == TOP && c->never_read && key_in(c->j, key, before_read))
		return buf_printf(c->out, "null");
	if (scope == TOP && c->never_read && json_eq(c->j, key, "rpc_ok") && json_eq(c->j, v, "true"))
		return buf_printf(c->out, "null");
	if (key_in(c->j, key, scope == TOP ? top_known : peer_known))
		return put_known(c, v);
	if (scope == TOP && c->j->tok[v].type == JSON_ARRAY &&
	    (json_eq(c->j, key, "peers") || json_eq(c->j, key, "rejected")))
		return put_array(c, v, json_eq(c->j, key, "peers") ? PEER : REJECTED);
	return put_raw(c, v);
}

/* The members of obj, closed with "}"; left open when members is given (the caller adds more). */
static int put_object(struct ctx *c, int obj, enum scope scope, int *members)
{
	int r = buf_printf(c->out, "{"), written = 0;

	for (int k = 0, key = obj + 1; r == 0 && k < c->j->tok[obj].size && key + 1 < c->j->ntok;
	     k++, key = json_skip(c->j, key + 1)) {
		/* Ours to add: an agent's own copies would make the keys ambiguous. */
		if (scope == TOP && (json_eq(c->j, key, "healthy") || json_eq(c->j, key, "problems")))
			continue;
		r = buf_printf(c->out, "%s", written++ ? "," : "");
		if (r == 0)
			r = put_raw(c, key);
		if (r == 0)
			r = buf_printf(c->out, ":");
		if (r == 0)
			r = put_value(c, key, key + 1, scope);
	}
	if (members)
		*members = written;
	else if (r == 0)
		r = buf_printf(c->out, "}");
	return r;
}

static void add_problem(struct status_health *h, const char *what)
{
	size_t n = strlen(h->problems);

	snprintf(h->problems + n, sizeof(h->problems) - n, "%s%s", n ? "; " : "", what);
	h->healthy = false;
}

/*
 * what, and why when the agent says why its RPC fails ("RPC failing: <rpc_error>"), with
 * the list's separator and anything unprintable taken out of the agent's text.
 */
static void add_rpc_problem(struct status_health *h, const struct json *j, const char *what)
{
	int i = json_get(j, 0, "rpc_error");
	char text[200], *err = NULL;

	if (i >= 0 && j->tok[i].type == JSON_STRING && json_strdup(j, i, &err) == 0 && *err) {
		snprintf(text, sizeof(text), "%s: %s", what, err);
		for (char *p = text + strlen(what); *p; p++)
			if (*p == ';')
				*p = ',';
			else if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
	} else {
		snprintf(text, sizeof(text), "%s", what);
	}
	free(err);
	add_problem(h, text);
}

static void judge(const struct json *j, bool standalone, bool never_read, struct status_health *h)
{
	int rejected = json_get(j, 0, "rejected");
	char text[48];

	h->healthy = true;
	h->problems[0] = '\0';
	if (standalone)
		add_problem(h, "no agent running");
	if (!json_eq(j, json_get(j, 0, "registered"), "true"))
		add_problem(h, "not registered");
	if (never_read)
		add_rpc_problem(h, j, "registry not read yet");
	else if (!json_eq(j, json_get(j, 0, "rpc_ok"), "true"))
		add_rpc_problem(h, j, "RPC failing");
	if (rejected >= 0 && j->tok[rejected].type == JSON_ARRAY && j->tok[rejected].size > 0) {
		snprintf(text, sizeof(text), "%d record%s rejected", j->tok[rejected].size,
			 j->tok[rejected].size == 1 ? "" : "s");
		add_problem(h, text);
	}
}

/* The problems as a JSON array of strings. */
static int put_problems(struct buf *out, const char *problems)
{
	int r = buf_printf(out, ",\"problems\":[");

	for (const char *p = problems; r == 0 && *p;) {
		size_t n = strcspn(p, ";");
		char one[sizeof(((struct status_health *)0)->problems)];

		snprintf(one, sizeof(one), "%.*s", (int)n, p);
		r = buf_printf(out, "%s", p == problems ? "" : ",");
		if (r == 0)
			r = json_append_string(out, one);
		p += n;
		p += strspn(p, "; ");
	}
	return r ? r : buf_printf(out, "]");
}

int status_doc_normalize(const char *text, size_t len, bool standalone, struct buf *out,
			 struct status_health *health)
{
	struct json j;
	struct ctx c = { .j = &j, .out = out };
	int64_t ago = -1;
	int r, i, members = 0;

	r = json_parse(&j, text, len, MAX_TOKENS);
	if (r < 0)
		return r == -EINVAL ? -EBADMSG : r;
	if (j.ntok < 1 || j.tok[0].type != JSON_OBJECT) {
		json_clear(&j);
		return -EBADMSG;
	}
	i = json_get(&j, 0, "last_sync_ms_ago");
	c.never_read = i < 0 || json_int64(&j, i, &ago) < 0 || ago < 0;
	judge(&j, standalone, c.never_read, health);
	r = put_object(&c, 0, TOP, &members);
	if (r == 0)
		r = buf_printf(out, "%s\"healthy\":%s", members ? "," : "", health->healthy ? "true" : "false");
	if (r == 0)
		r = put_problems(out, health->problems);
	if (r == 0)
		r = buf_printf(out, "}");
	if (r == 0)
		r = buf_terminate(out);
	json_clear(&j);
	return r;
}
