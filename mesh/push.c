/* SPDX-License-Identifier: MIT */
/*
 * mesh: new heads by push. An eth_subscribe("newHeads") over a WebSocket wakes the agent
 * for an immediate turn; the turn still reads and checks everything through the HTTP
 * RPC, so the socket is a trigger and never a source of truth: a lying server can cause
 * extra reads (a burst of PUSH_BURST, then one per PUSH_GAP_MS), nothing else. While it is up the registry is
 * read every P2P_PUSH_POLL_MS as a safety net; while it is down, every P2P_POLL_MS as
 * before, and it is re-dialled with backoff.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "mesh/internal.h"
#include "net/net.h"

#define PUSH_GAP_MS 100                 /* triggered turns: one per this on average ... */
#define PUSH_BURST 4                    /* ... after a burst of this many (mint, bind, register) */
#define PUSH_CONNECT_MS 3000            /* TCP + TLS + Upgrade, on a helper thread */
#define PUSH_DIAL_CHECK_MS 20           /* while it dials, the loop looks this often */
#define PUSH_STABLE_MS 60000            /* a subscription up this long resets the back-off */
#define PUSH_HOLLOW_MAX 3               /* reads after heads the HTTP RPC never showed: then down */
#define PUSH_REPLY_MS 5000              /* eth_subscribe answered within this */
#define PUSH_IDLE_PING_MS 30000         /* silence this long: a ping ... */
#define PUSH_PONG_MS 10000              /* ... answered within this, or the socket is dead */
#define PUSH_RETRY_MIN_MS 1000
#define PUSH_RETRY_MAX_MS 60000
#define PUSH_REFUSED_MS 600000          /* the RPC refuses eth_subscribe: ask again this late */
#define PUSH_SUB_ID_MAX 66
#define PUSH_LAG_MS 150                 /* the HTTP RPC behind the head we were told of: again after this ... */
#define PUSH_LAG_TRIES 3                /* ... this many times per head */

enum push_state { PUSH_DOWN, PUSH_SUBSCRIBING, PUSH_ACTIVE };

/*
 * A dial in progress on its own thread (DNS, TCP, TLS and the Upgrade may each take up to
 * PUSH_CONNECT_MS, and a hostile server can make them): the loop keeps serving and
 * collects the result when done is set. cancel cuts it short (the agent stops).
 */
struct push_dial {
	pthread_t thread;
	char url[1024];
	volatile sig_atomic_t cancel;
	atomic_bool done;
	int result;
	struct ws_client *ws;
};

struct agent_push {
	char url[1024];
	struct ws_client *ws;
	struct push_dial *dial;             /* non-NULL while a dial runs */
	enum push_state state;
	char sub_id[PUSH_SUB_ID_MAX + 1];
	uint64_t since_ms;                  /* of the state */
	uint64_t next_connect_ms;
	unsigned retry_ms;
	bool said_down;                     /* the fallback to polling was logged */
	uint64_t last_rx_ms;
	uint64_t ping_ms;                   /* an unanswered ping went out then; 0: none */
	unsigned credit;                    /* triggered turns allowed now (token bucket) */
	uint64_t credit_ms;                 /* when the last credit was earned */
	bool pending;                       /* a head without credit: a turn when one is earned */
	uint64_t heads;                     /* notifications, in all */
	uint64_t head_number;               /* the highest head notified (a claim, never trusted) */
	unsigned lag_tries;                 /* reads since the last head that found the RPC behind it */
	uint64_t heads_at_read, block_at_read;  /* at the last safety-poll read */
	unsigned hollow;                    /* reads in a row after heads that brought no block */
};

/* P2P_RPC_WS_URL: "" (off), "auto" (from the first http(s) RPC URL), or ws(s)://. */
static int resolve_url(const struct mesh_config *cfg, char *out, size_t cap)
{
	if (strcmp(cfg->ws_url, "auto"))
		return snprintf(out, cap, "%s", cfg->ws_url) < (int)cap ? 0 : -ENAMETOOLONG;
	for (size_t i = 0; i < cfg->rpc.n; i++)
		if (cfg->rpc.url[i].transport == RPC_HTTP && ws_url_from_http(cfg->rpc.url[i].target, out, cap) == 0)
			return 0;
	return -EINVAL;
}

int agent_push_open(struct mesh_agent *a)
{
	struct agent_push *p;
	int r;

	if (!a->cfg->ws_url[0])
		return 0;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	r = resolve_url(a->cfg, p->url, sizeof(p->url));
	if (r < 0) {
		free(p);
		return r;
	}
	p->retry_ms = PUSH_RETRY_MIN_MS;
	a->push = p;
	log_info("push: following new heads at %s (eth_subscribe), polling the registry every %u ms "
		 "while it works, every %u ms while it does not", p->url, a->cfg->push_poll_ms, a->cfg->poll_ms);
	return 0;
}

/* Wait for the dial thread (bounded by PUSH_CONNECT_MS) and drop what it made. */
static void dial_abandon(struct agent_push *p)
{
	if (!p->dial)
		return;
	p->dial->cancel = 1;
	pthread_join(p->dial->thread, NULL);
	ws_client_free(p->dial->ws);
	free(p->dial);
	p->dial = NULL;
}

void agent_push_close(struct mesh_agent *a)
{
	if (!a->push)
		return;
	dial_abandon(a->push);
	ws_client_free(a->push->ws);
	free(a->push);
	a->push = NULL;
}

bool agent_push_active(const struct mesh_agent *a)
{
	return a->push && a->push->state == PUSH_ACTIVE;
}

int agent_push_fd(const struct mesh_agent *a)
{
	return a->push ? ws_client_fd(a->push->ws) : -1;
}

/* The socket failed or will not do: back to polling at once, dial again later. */
static void push_down(struct mesh_agent *a, const char *what, int err, unsigned retry_ms)
{
	struct agent_push *p = a->push;
	uint64_t now = now_ms();

	ws_client_free(p->ws);
	p->ws = NULL;
	if (p->state == PUSH_ACTIVE || !p->said_down)
		log_warn("push: %s: %s; polling the registry every %u ms, retrying the WebSocket in %u s",
			 what, errstr(err), a->cfg->poll_ms, retry_ms / 1000);
	else
		log_debug("push: %s: %s; retrying in %u s", what, errstr(err), retry_ms / 1000);
	p->said_down = true;
	p->state = PUSH_DOWN;
	p->since_ms = now;
	p->next_connect_ms = now + retry_ms;
	p->ping_ms = 0;
	p->pending = false;
	if (!a->rpc_down && a->next_rpc_ms > now)
		a->next_rpc_ms = now;  /* what push would have told us, the poll finds */
	if (!a->rpc_down && a->next_turn_ms > now)
		a->next_turn_ms = now;
}

static void backoff(struct agent_push *p)
{
	p->retry_ms = p->retry_ms >= PUSH_RETRY_MAX_MS / 2 ? PUSH_RETRY_MAX_MS : p->retry_ms * 2;
}

/* A token bucket: PUSH_BURST turns at once, then one per PUSH_GAP_MS. */
static bool take_credit(struct agent_push *p, uint64_t now)
{
	uint64_t earned = now > p->credit_ms ? (now - p->credit_ms) / PUSH_GAP_MS : 0;

	if (earned) {
		p->credit_ms += earned * PUSH_GAP_MS;
		if (earned >= PUSH_BURST || p->credit + earned >= PUSH_BURST) {
			p->credit = PUSH_BURST;
			p->credit_ms = now;
		} else {
			p->credit += (unsigned)earned;
		}
	}
	if (!p->credit)
		return false;
	p->credit--;
	return true;
}

/* A head: a turn now, or when the bucket has a credit again (heads meanwhile fold into it). */
static void trigger(struct mesh_agent *a, uint64_t now)
{
	struct agent_push *p = a->push;

	p->heads++;
	if (a->rpc_down)
		return;  /* the RPC backs off; a head says nothing about the HTTP endpoint */
	p->pending = !take_credit(p, now);
	if (p->pending)
		return;
	a->next_rpc_ms = now;
	a->next_turn_ms = now;
}

/* A JSON-RPC message: the subscription's answer, or a notification of it. */
static int on_json(struct mesh_agent *a, const char *text, size_t len)
{
	struct agent_push *p = a->push;
	struct json j;
	int r, i, params;

	/* Not JSON, or not an object: not ours to act on, and only a trigger was at stake. */
	if (json_parse(&j, text, len, 4096) < 0)
		return 0;
	r = 0;
	if (j.ntok < 1 || j.tok[0].type != JSON_OBJECT) {
		r = 0;
	} else if (p->state == PUSH_SUBSCRIBING && (i = json_get(&j, 0, "id")) > 0 && json_eq(&j, i, "1")) {
		int res = json_get(&j, 0, "result");
		size_t n = 0;
		const char *id = res > 0 && j.tok[res].type == JSON_STRING ? json_raw(&j, res, &n) : NULL;

		if (!id || !n || n > PUSH_SUB_ID_MAX) {
			r = -EOPNOTSUPP;  /* an error, or no usable subscription id */
		} else {
			memcpy(p->sub_id, id, n);
			p->sub_id[n] = '\0';
			p->state = PUSH_ACTIVE;
			p->since_ms = now_ms();
			p->hollow = 0;
			p->heads_at_read = p->heads;
			p->block_at_read = a->block;
			log_info("push: subscribed to new heads at %s; the registry is read on each head, "
				 "and every %u ms as a safety net", p->url, a->cfg->push_poll_ms);
			p->said_down = false;
		}
	} else if (p->state == PUSH_ACTIVE && json_eq(&j, json_get(&j, 0, "method"), "eth_subscription") &&
		   (params = json_get(&j, 0, "params")) > 0 &&
		   json_eq(&j, json_get(&j, params, "subscription"), p->sub_id)) {
		int res = json_get(&j, params, "result"), num = json_get(&j, res, "number");
		size_t n = 0;
		const char *hex = num > 0 && j.tok[num].type == JSON_STRING ? json_raw(&j, num, &n) : NULL;
		uint8_t be[8] = { 0 };

		/* "0x" and at most 16 hex digits, or the number is left out (and not waited for) */
		if (hex && n > 2 && n <= 18 && hex[0] == '0' && hex[1] == 'x') {
			char digits[17] = "0000000000000000";

			memcpy(digits + 16 - (n - 2), hex + 2, n - 2);
			if (hex_decode(be, 8, digits, 16) == 8) {
				uint64_t v = 0;

				for (int k = 0; k < 8; k++)
					v = v << 8 | be[k];
				if (v > p->head_number)
					p->head_number = v;
			}
		}
		p->lag_tries = 0;
		trigger(a, now_ms());
	}
	/* Anything else (another id, an unknown method) is not ours to act on. */
	json_clear(&j);
	return r;
}

static int on_message(void *ctx, int opcode, const uint8_t *data, size_t len)
{
	struct mesh_agent *a = ctx;

	if (opcode == 10) {  /* pong */
		a->push->ping_ms = 0;
		return 0;
	}
	if (opcode != 1)
		return 0;  /* JSON-RPC is text: anything else is ignored */
	return on_json(a, (const char *)data, len);
}

void agent_push_serve(struct mesh_agent *a)
{
	struct agent_push *p = a->push;
	int r;

	if (!p || !p->ws)
		return;
	p->last_rx_ms = now_ms();
	r = ws_client_read(p->ws, on_message, a);
	if (r == -EOPNOTSUPP) {
		log_warn("push: %s does not serve eth_subscribe(newHeads); polling the registry every %u ms, "
			 "asking again in %u s", p->url, a->cfg->poll_ms, PUSH_REFUSED_MS / 1000);
		p->said_down = true;
		push_down(a, "subscription refused", r, PUSH_REFUSED_MS);
	} else if (r < 0) {
		push_down(a, r == -ECONNRESET ? "the server closed the WebSocket" : "reading the WebSocket", r,
			  p->retry_ms);
		backoff(p);
	}
}

static void *dial_thread(void *arg)
{
	struct push_dial *d = arg;

	d->result = ws_client_connect(&d->ws, d->url, PUSH_CONNECT_MS, &d->cancel);
	atomic_store(&d->done, true);
	return NULL;
}

/* Start a dial on a helper thread, signals blocked there (they are the loop's). */
static int dial_start(struct agent_push *p)
{
	struct push_dial *d = calloc(1, sizeof(*d));
	sigset_t all, old;
	int r;

	if (!d)
		return -ENOMEM;
	snprintf(d->url, sizeof(d->url), "%s", p->url);
	atomic_init(&d->done, false);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&d->thread, NULL, dial_thread, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0) {
		free(d);
		return r;
	}
	p->dial = d;
	return 0;
}

/* The dial thread finished: subscribe on the new socket, or go down and back off. */
static void dial_finish(struct mesh_agent *a, uint64_t now)
{
	static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_subscribe\",\"params\":[\"newHeads\"]}";
	struct agent_push *p = a->push;
	int r;

	pthread_join(p->dial->thread, NULL);
	r = p->dial->result;
	p->ws = p->dial->ws;
	free(p->dial);
	p->dial = NULL;
	if (r == 0)
		r = ws_client_send(p->ws, 1, req, sizeof(req) - 1);
	if (r < 0) {
		char what[sizeof(p->url) + 64];

		snprintf(what, sizeof(what), "%s%s", p->url, r == -EPERM ? " (its TLS certificate does not verify)" :
			 r == -EACCES || r == -EPROTO ? " (not a WebSocket upgrade)" : "");
		push_down(a, what, r, p->retry_ms);
		backoff(p);
		return;
	}
	p->state = PUSH_SUBSCRIBING;
	p->since_ms = now;
	p->last_rx_ms = now;
	p->ping_ms = 0;
	/* bytes that came with the Upgrade reply wait in the parser; a read finds them */
	agent_push_serve(a);
}

static void dial(struct mesh_agent *a, uint64_t now)
{
	struct agent_push *p = a->push;
	int r = dial_start(p);

	if (r < 0) {
		push_down(a, "starting the WebSocket dial", r, p->retry_ms);
		backoff(p);
		return;
	}
	p->next_connect_ms = now + PUSH_CONNECT_MS;  /* not before this one is done */
}

void agent_push_tick(struct mesh_agent *a)
{
	struct agent_push *p = a->push;
	uint64_t now;

	if (!p)
		return;
	now = now_ms();
	if (p->dial) {
		if (atomic_load(&p->dial->done))
			dial_finish(a, now);
		return;
	}
	if (p->state == PUSH_DOWN) {
		if (now >= p->next_connect_ms)
			dial(a, now);
		return;
	}
	/* A subscription that stays up earns a short back-off again; one that dies soon does not. */
	if (p->state == PUSH_ACTIVE && p->retry_ms > PUSH_RETRY_MIN_MS && now >= p->since_ms + PUSH_STABLE_MS)
		p->retry_ms = PUSH_RETRY_MIN_MS;
	if (p->state == PUSH_SUBSCRIBING && now >= p->since_ms + PUSH_REPLY_MS) {
		push_down(a, "no answer to eth_subscribe", -ETIMEDOUT, p->retry_ms);
		backoff(p);
		return;
	}
	if (p->ping_ms && now >= p->ping_ms + PUSH_PONG_MS) {
		push_down(a, "no answer to a ping", -ETIMEDOUT, p->retry_ms);
		backoff(p);
		return;
	}
	if (!p->ping_ms && now >= p->last_rx_ms + PUSH_IDLE_PING_MS) {
		if (ws_client_send(p->ws, 9, "", 0) < 0) {
			push_down(a, "sending a ping", -EPIPE, p->retry_ms);
			backoff(p);
			return;
		}
		p->ping_ms = now;
	}
	if (p->pending && take_credit(p, now)) {
		p->pending = false;
		if (!a->rpc_down) {
			a->next_rpc_ms = now;
			a->next_turn_ms = now;
		}
	}
}

/*
 * After a registry read: the next one at the safety poll while push works. A safety read
 * that finds the chain moved while no head came means the subscription went quiet: dial
 * again rather than trust it.
 */
void agent_push_after_read(struct mesh_agent *a, uint64_t now)
{
	struct agent_push *p = a->push;

	if (!agent_push_active(a))
		return;
	if (p->heads == p->heads_at_read && a->block > p->block_at_read + 1 && p->block_at_read) {
		push_down(a, "new blocks came without a notification", -ENODATA, p->retry_ms);
		backoff(p);
		return;
	}
	/*
	 * Heads that the HTTP RPC never shows (no new block since the read before them) count
	 * against the socket, PUSH_HOLLOW_MAX reads in a row: a flood of invented heads must
	 * not pass for a working subscription. (The lag reads between heads do not count.)
	 */
	if (p->heads > p->heads_at_read && a->block <= p->block_at_read && p->block_at_read)
		p->hollow++;
	else if (a->block > p->block_at_read)
		p->hollow = 0;
	if (p->hollow >= PUSH_HOLLOW_MAX) {
		push_down(a, "heads that the HTTP RPC never shows", -EPROTO, p->retry_ms);
		backoff(p);
		return;
	}
	p->heads_at_read = p->heads;
	p->block_at_read = a->block;
	/*
	 * A provider may serve the WebSocket and HTTP from different nodes: a read that finds
	 * the HTTP side behind the head we were told of is tried again shortly, a few times
	 * per head (a lying head number costs those reads, no more).
	 */
	if (p->head_number > a->block && p->lag_tries < PUSH_LAG_TRIES) {
		p->lag_tries++;
		a->next_rpc_ms = now + PUSH_LAG_MS;
		return;
	}
	a->next_rpc_ms = now + a->cfg->push_poll_ms;
}

/* When the loop must call again for push's own sake (a dial, a ping, a deferred turn). */
uint64_t agent_push_deadline_ms(const struct mesh_agent *a)
{
	const struct agent_push *p = a->push;
	uint64_t t;

	if (!p)
		return UINT64_MAX;
	if (p->dial)
		return now_ms() + PUSH_DIAL_CHECK_MS;
	if (p->state == PUSH_DOWN)
		return p->next_connect_ms;
	if (p->state == PUSH_SUBSCRIBING)
		return p->since_ms + PUSH_REPLY_MS;
	t = p->ping_ms ? p->ping_ms + PUSH_PONG_MS : p->last_rx_ms + PUSH_IDLE_PING_MS;
	if (p->pending && p->credit_ms + PUSH_GAP_MS < t)
		t = p->credit_ms + PUSH_GAP_MS;
	return t;
}
