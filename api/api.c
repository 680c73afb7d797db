/* SPDX-License-Identifier: MIT */
/* api: the public C API for apps, a client of the local agent's control socket. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api/dstack-p2p.h"
#include "api/internal.h"
#include "common/common.h"

struct dstack_p2p {
	char contract[43];        /* empty: any */
	char mode[16];            /* empty: any */
	char control_path[PATH_MAX];

	pthread_mutex_t lock;     /* guards stop and watch_fd */
	pthread_t thread;
	bool monitoring;
	bool stop;
	int watch_fd;
	dstack_p2p_peers_fn fn;
	void *user;
};

void peers_doc_clear(struct peers_doc *d)
{
	dstack_p2p_free_peers(d->peers, d->n);
	memset(d, 0, sizeof(*d));
}

static void copy_field(const struct json *j, int obj, const char *key, char *out, size_t cap)
{
	size_t len;
	const char *s;
	int i = json_get(j, obj, key);

	out[0] = '\0';
	if (i < 0 || j->tok[i].type != JSON_STRING)
		return;
	s = json_raw(j, i, &len);
	if (len < cap) {
		memcpy(out, s, len);
		out[len] = '\0';
	}
}

int peers_doc_parse(const char *text, size_t len, struct peers_doc *d)
{
	struct json j;
	int arr, ver, reg, r;
	int64_t v;

	memset(d, 0, sizeof(*d));
	r = json_parse(&j, text, len, 4096);
	if (r < 0)
		return -EBADMSG;
	r = -EBADMSG;
	if (j.ntok < 1 || j.tok[0].type != JSON_OBJECT)
		goto out;
	/* A document of another protocol version may mean anything: refuse it. */
	ver = json_get(&j, 0, "version");
	if (ver >= 0 && (json_int64(&j, ver, &v) < 0 || v != 1)) {
		r = -EPROTO;
		goto out;
	}
	reg = json_get(&j, 0, "registered");
	if (reg < 0 || json_bool(&j, reg, &d->registered) < 0)
		goto out;
	copy_field(&j, 0, "contract", d->contract, sizeof(d->contract));
	copy_field(&j, 0, "mode", d->mode, sizeof(d->mode));
	arr = json_get(&j, 0, "peers");
	if (arr < 0 || j.tok[arr].type != JSON_ARRAY || j.tok[arr].size > API_MAX_PEERS)
		goto out;
	if (j.tok[arr].size > 0) {
		d->peers = calloc((size_t)j.tok[arr].size, sizeof(*d->peers));
		if (!d->peers) {
			r = -ENOMEM;
			goto out;
		}
	}
	/* One pass over the elements: json_array_at per element would be quadratic. */
	for (int k = 0, e = arr + 1; k < j.tok[arr].size; k++, e = json_skip(&j, e)) {
		if (e >= j.ntok || json_strdup(&j, e, &d->peers[k]) < 0)
			goto out;
		d->n++;
	}
	r = 0;
out:
	json_clear(&j);
	if (r < 0)
		peers_doc_clear(d);
	return r;
}

/* The handle asked for a contract or mode the agent does not serve. */
static int check_agent_matches(const struct dstack_p2p *p2p, const struct peers_doc *d)
{
	if (p2p->contract[0] && strcasecmp(p2p->contract, d->contract))
		return -EXDEV;
	if (p2p->mode[0] && strcmp(p2p->mode, d->mode))
		return -EXDEV;
	return 0;
}

static int query_peers(struct dstack_p2p *p2p, struct peers_doc *d)
{
	struct buf b;
	int r;

	buf_init(&b, 1 << 20);
	r = api_control_query(p2p->control_path, "peers", &b, 3000);
	if (r == 0)
		r = peers_doc_parse((const char *)b.data, b.len, d);
	buf_clear(&b);
	if (r == 0) {
		r = check_agent_matches(p2p, d);
		if (r < 0)
			peers_doc_clear(d);
	}
	return r;
}

/* 0x and 40 hex digits, lowercased into out. */
static int parse_contract(const char *s, char out[static 43])
{
	if (strlen(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return -EINVAL;
	for (size_t i = 2; i < 42; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
	for (size_t i = 0; i < 42; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[42] = '\0';
	return 0;
}

int dstack_p2p_open(struct dstack_p2p **out, const char *contract, const char *mode)
{
	struct dstack_p2p *p2p;
	char want[43] = "";

	*out = NULL;
	if (contract && parse_contract(contract, want) < 0)
		return -EINVAL;
	if (mode && !strcmp(mode, "wg"))
		mode = "wireguard";  /* the agent's P2P_MODE accepts it too */
	if (mode && strcmp(mode, "wireguard") && strcmp(mode, "tls"))
		return -EINVAL;
	p2p = calloc(1, sizeof(*p2p));
	if (!p2p)
		return -ENOMEM;
	memcpy(p2p->contract, want, sizeof(p2p->contract));
	if (mode)
		snprintf(p2p->mode, sizeof(p2p->mode), "%s", mode);
	snprintf(p2p->control_path, sizeof(p2p->control_path), "%s", api_control_path(NULL));
	pthread_mutex_init(&p2p->lock, NULL);
	p2p->watch_fd = -1;
	*out = p2p;
	return 0;
}

int dstack_p2p_register(struct dstack_p2p *p2p, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	int r;

	for (;;) {
		struct timespec ts = { .tv_nsec = 200 * 1000000L };
		struct peers_doc d;

		r = query_peers(p2p, &d);
		if (r == 0) {
			bool registered = d.registered;

			peers_doc_clear(&d);
			if (registered)
				return 0;
			r = -ETIMEDOUT;
		}
		if (r == -EXDEV || r == -EBADMSG || r == -EPROTO || now_ms() >= deadline)
			return r;
		/* The agent may still be starting or waiting for its transaction. */
		nanosleep(&ts, NULL);
	}
}

int dstack_p2p_get_peers(struct dstack_p2p *p2p, char ***peers, size_t *n)
{
	struct peers_doc d;
	int r;

	*peers = NULL;
	*n = 0;
	r = query_peers(p2p, &d);
	if (r < 0)
		return r;
	*peers = d.peers;
	*n = d.n;
	return 0;
}

void dstack_p2p_free_peers(char **peers, size_t n)
{
	if (!peers)
		return;
	for (size_t i = 0; i < n; i++)
		free(peers[i]);
	free(peers);
}

/* A leader action's error code as -errno (dstack_p2p_strerror explains each). */
static int action_error(const char *code, size_t n)
{
	static const struct { const char *code; int err; } map[] = {
		{ "forbidden", -EACCES }, { "rate_limited", -EAGAIN }, { "over_cap", -EDQUOT },
		{ "refused", -EPERM }, { "not_registered", -ENOLINK }, { "no_sender", -ENOKEY },
		{ "chain", -EIO },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].code) == n && !memcmp(map[i].code, code, n))
			return map[i].err;
	return -EBADMSG;
}

int api_action_reply(const char *text, size_t len, char tx[static 67])
{
	struct json j;
	const char *s;
	size_t n;
	int i, r = -EBADMSG;

	if (json_parse(&j, text, len, 512) < 0)
		return -EBADMSG;
	if (j.ntok < 1 || j.tok[0].type != JSON_OBJECT)
		goto out;
	i = json_get(&j, 0, "error");
	if (i >= 0) {
		i = j.tok[i].type == JSON_OBJECT ? json_get(&j, i, "code") : -1;
		if (i >= 0 && j.tok[i].type == JSON_STRING) {
			s = json_raw(&j, i, &n);
			r = action_error(s, n);
		}
		goto out;
	}
	i = json_get(&j, 0, "tx");
	if (i < 0)
		goto out;
	tx[0] = '\0';
	r = 0;
	if (j.tok[i].type == JSON_STRING) {
		s = json_raw(&j, i, &n);
		if (n != 66) {
			r = -EBADMSG;
			goto out;
		}
		memcpy(tx, s, n);
		tx[n] = '\0';
	}
out:
	json_clear(&j);
	return r;
}

int dstack_p2p_leader_action(struct dstack_p2p *p2p, const char *action, int target, int withdraw,
			     char tx[static 67])
{
	char req[160];
	struct buf b;
	int r;

	tx[0] = '\0';
	if (!action || (strcmp(action, "elect") && strcmp(action, "heartbeat") && strcmp(action, "vote")) ||
	    target < 0 || target > API_MAX_PEERS)
		return -EINVAL;
	if (!strcmp(action, "vote") && target)
		snprintf(req, sizeof(req), "{\"version\":1,\"request\":\"leader.vote\",\"target\":%d,"
			 "\"no_confidence\":%s}", target, withdraw ? "false" : "true");
	else if (!strcmp(action, "vote"))
		snprintf(req, sizeof(req), "{\"version\":1,\"request\":\"leader.vote\",\"no_confidence\":%s}",
			 withdraw ? "false" : "true");
	else
		snprintf(req, sizeof(req), "{\"version\":1,\"request\":\"leader.%s\"}", action);
	buf_init(&b, 1 << 20);
	r = api_control_query(p2p->control_path, req, &b, 15000);
	if (r == 0)
		r = api_action_reply((const char *)b.data, b.len, tx);
	buf_clear(&b);
	return r;
}

static bool same_list(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return false;
	return true;
}

static bool monitor_should_stop(struct dstack_p2p *p2p)
{
	bool stop;

	pthread_mutex_lock(&p2p->lock);
	stop = p2p->stop;
	pthread_mutex_unlock(&p2p->lock);
	return stop;
}

/* One connection's worth of the agent's stream: a peers document per line. */
static void monitor_stream(struct dstack_p2p *p2p, int fd, struct peers_doc *last, bool *have_last)
{
	struct buf line;
	char chunk[4096];

	buf_init(&line, 1 << 20);
	for (;;) {
		ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
		char *nl;

		if (got <= 0 || buf_append(&line, chunk, (size_t)got) < 0)
			break;
		while ((nl = memchr(line.data, '\n', line.len))) {
			size_t doc_len = (size_t)((uint8_t *)nl - line.data);
			struct peers_doc d;

			if (peers_doc_parse((const char *)line.data, doc_len, &d) == 0 &&
			    check_agent_matches(p2p, &d) == 0) {
				if (!*have_last || !same_list(d.peers, d.n, last->peers, last->n)) {
					p2p->fn((const char *const *)d.peers, d.n, p2p->user);
					peers_doc_clear(last);
					*last = d;
					*have_last = true;
				} else {
					peers_doc_clear(&d);
				}
			}
			memmove(line.data, nl + 1, line.len - doc_len - 1);
			line.len -= doc_len + 1;
		}
	}
	buf_clear(&line);
}

static void *monitor_thread(void *arg)
{
	struct dstack_p2p *p2p = arg;
	struct peers_doc last = { 0 };
	bool have_last = false;

	while (!monitor_should_stop(p2p)) {
		int fd = api_control_watch(p2p->control_path);

		if (fd >= 0) {
			pthread_mutex_lock(&p2p->lock);
			if (p2p->stop) {
				pthread_mutex_unlock(&p2p->lock);
				close(fd);
				break;
			}
			p2p->watch_fd = fd;
			pthread_mutex_unlock(&p2p->lock);

			monitor_stream(p2p, fd, &last, &have_last);

			pthread_mutex_lock(&p2p->lock);
			p2p->watch_fd = -1;
			pthread_mutex_unlock(&p2p->lock);
			close(fd);
		}
		/* The agent restarts or is not up yet: try again shortly, stop promptly. */
		for (int i = 0; i < 10 && !monitor_should_stop(p2p); i++) {
			struct timespec ts = { .tv_nsec = 100 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	peers_doc_clear(&last);
	return NULL;
}

int dstack_p2p_monitor_peers(struct dstack_p2p *p2p, dstack_p2p_peers_fn fn, void *user)
{
	int r;

	if (!fn)
		return -EINVAL;
	if (p2p->monitoring)
		return -EBUSY;
	p2p->fn = fn;
	p2p->user = user;
	r = -pthread_create(&p2p->thread, NULL, monitor_thread, p2p);
	if (r == 0)
		p2p->monitoring = true;
	return r;
}

void dstack_p2p_close(struct dstack_p2p *p2p)
{
	if (!p2p)
		return;
	if (p2p->monitoring) {
		pthread_mutex_lock(&p2p->lock);
		p2p->stop = true;
		/* Wakes the thread from its blocking recv. */
		if (p2p->watch_fd >= 0)
			shutdown(p2p->watch_fd, SHUT_RDWR);
		pthread_mutex_unlock(&p2p->lock);
		pthread_join(p2p->thread, NULL);
	}
	pthread_mutex_destroy(&p2p->lock);
	free(p2p);
}

const char *dstack_p2p_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -ENOENT:
	case -ECONNREFUSED:
		return "no dstack-p2p agent answers on the control socket (is the agent running?)";
	case -EXDEV:
		return "the local agent serves another cluster contract or mode";
	case -ETIMEDOUT:
		return "timed out waiting for the agent (not registered yet?)";
	case -EBADMSG:
		return "the agent's reply was malformed";
	case -EPROTO:
		return "the agent speaks another version of the control protocol";
	case -EACCES:
		return "the agent takes leader actions only from root, its own user, or the uid or gid "
		       "its operator allows (P2P_CONTROL_ACTION_UID, P2P_CONTROL_ACTION_GID)";
	case -EAGAIN:
		return "the agent's leader actions are spaced and capped per hour (P2P_ACTION_SPACING_MS, "
		       "P2P_ACTION_MAX_PER_HOUR); try again later";
	case -EDQUOT:
		return "the transaction would exceed one of the agent's caps (P2P_TX_MAX_FEE_PER_GAS, "
		       "P2P_TX_MAX_GAS, P2P_TX_MAX_COST); nothing was sent";
	case -EPERM:
		return "the contract (or the relayer) refused the leader action";
	case -ENOLINK:
		return "this node is not registered yet, so it cannot act";
	case -ENOKEY:
		return "the agent has no funded key or relayer to send the action";
	case -EIO:
		return "the agent could not reach the chain or the relayer";
	default:
		return errstr(err);
	}
}
