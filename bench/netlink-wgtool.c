/* SPDX-License-Identifier: MIT */
/*
 * netlink-wgtool: drives netlink/ from shell scripts, for the VM and host tests and
 * the benchmark. It reads wg(8) configuration files, so the same file can be fed to
 * `wg setconf` and to our code, and generates large deterministic ones.
 *
 *   netlink-wgtool [-b kernel|uapi|auto] [-m MSG_BYTES] [-v] COMMAND ...
 *     gen-conf PEERS IPS_PER_PEER [SEED]   print a wg config (keys derived from SEED)
 *     setconf IF FILE      replace the whole configuration (like wg setconf)
 *     addconf IF FILE      add/update the file's peers, touch nothing else
 *     syncconf IF FILE     dump, diff, apply only the differences (like wg syncconf)
 *     up IF                the interface through wg_backend_open_auto (creating the kernel
 *                          link or starting wireguard-go); prints the backend's kind
 *     dump IF              print IF like `wg show IF dump` (keys hidden)
 *     remove IF KEYFILE    remove the peers whose base64 keys KEYFILE lists
 *     endpoint IF KEY HOST:PORT   change one peer's endpoint
 *     genkey | pubkey      like wg genkey / wg pubkey
 *     timed PROG ARGS...   run PROG, print "ms=T" (wall clock, 0.01 ms) on stderr
 *     link-add IF | link-del IF | link-up IF | link-down IF | link-mtu IF MTU
 *     link-get-mtu IF | route-mtu ADDR[:PORT] (prints the MTU; [v6]:port for IPv6)
 *     addr-add IF PREFIX | addr-del IF PREFIX | route-add IF PREFIX
 *   -v prints "messages=N ms=T" for the operation on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <spawn.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>

#include "common/common.h"
#include "crypto/crypto.h"
#include "netlink/internal.h"

/* What the last failing netlink call said: the one command this tool runs logs it. */
static struct err_detail why;

/* A fresh, clamped X25519 private key, as wg genkey makes it. */
static int generate_private_key(uint8_t key[static WG_KEY_LEN])
{
	if (getrandom(key, WG_KEY_LEN, 0) != WG_KEY_LEN)
		return -EIO;
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
	return 0;
}

struct conf {
	struct wg_device dev;
	uint8_t *private_key; /* locked memory */
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int add_allowedips(struct wg_peer *peer, size_t *cap, char *list)
{
	for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int r;

		if (peer->n_allowedips == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			void *p = realloc(peer->allowedips, ncap * sizeof(*peer->allowedips));

			if (!p)
				return -ENOMEM;
			peer->allowedips = p;
			*cap = ncap;
		}
		r = ip_prefix_parse(&peer->allowedips[peer->n_allowedips], trim(tok), &why);
		if (r < 0)
			return r;
		peer->n_allowedips++;
	}
	return 0;
}

/* wg(8) configuration: [Interface] PrivateKey/ListenPort/FwMark, [Peer] sections. */
static int conf_read(const char *path, struct conf *c)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t linecap = 0, peers_cap = 0, ips_cap = 0;
	bool in_peer = false;
	int r = 0, lineno = 0;

	memset(c, 0, sizeof(*c));
	if (!f)
		return -errno;
	c->private_key = secret_alloc(WG_KEY_LEN);
	if (!c->private_key) {
		fclose(f);
		return -ENOMEM;
	}
	while (r == 0 && getline(&line, &linecap, f) > 0) {
		char *s = trim(line), *eq, *key, *value;
		struct wg_peer *peer = in_peer ? &c->dev.peers[c->dev.n_peers - 1] : NULL;

		lineno++;
		if (strchr(s, '#'))
			*strchr(s, '#') = '\0';
		s = trim(s);
		if (!*s)
			continue;
		if (!strcasecmp(s, "[Interface]")) {
			in_peer = false;
			continue;
		}
		if (!strcasecmp(s, "[Peer]")) {
			if (c->dev.n_peers == peers_cap) {
				size_t ncap = peers_cap ? peers_cap * 2 : 64;
				void *p = realloc(c->dev.peers, ncap * sizeof(*c->dev.peers));

				if (!p) {
					r = -ENOMEM;
					break;
				}
				c->dev.peers = p;
				peers_cap = ncap;
			}
			memset(&c->dev.peers[c->dev.n_peers++], 0, sizeof(struct wg_peer));
			ips_cap = 0;
			in_peer = true;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "%s:%d: expected Key = Value\n", path, lineno);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(s);
		value = trim(eq + 1);
		if (!peer && !strcasecmp(key, "PrivateKey")) {
			r = wg_key_from_base64(c->private_key, value, &why);
			c->dev.private_key = c->private_key;
			c->dev.flags |= WG_DEVICE_HAS_PRIVATE_KEY;
		} else if (!peer && !strcasecmp(key, "ListenPort")) {
			c->dev.listen_port = (uint16_t)strtoul(value, NULL, 10);
			c->dev.flags |= WG_DEVICE_HAS_LISTEN_PORT;
		} else if (!peer && !strcasecmp(key, "FwMark")) {
			c->dev.fwmark = (uint32_t)strtoul(value, NULL, 0);
			c->dev.flags |= WG_DEVICE_HAS_FWMARK;
		} else if (peer && !strcasecmp(key, "PublicKey")) {
			r = wg_key_from_base64(peer->public_key, value, &why);
		} else if (peer && !strcasecmp(key, "PresharedKey")) {
			r = wg_key_from_base64(peer->preshared_key, value, &why);
			peer->flags |= WG_PEER_HAS_PRESHARED_KEY;
		} else if (peer && !strcasecmp(key, "Endpoint")) {
			r = wg_endpoint_parse(&peer->endpoint, value, &why);
			peer->flags |= WG_PEER_HAS_ENDPOINT;
		} else if (peer && !strcasecmp(key, "PersistentKeepalive")) {
			peer->persistent_keepalive =
				!strcmp(value, "off") ? 0 : (uint16_t)strtoul(value, NULL, 10);
			peer->flags |= WG_PEER_HAS_KEEPALIVE;
		} else if (peer && !strcasecmp(key, "AllowedIPs")) {
			peer->flags |= WG_PEER_REPLACE_ALLOWEDIPS;
			r = add_allowedips(peer, &ips_cap, value);
		} else {
			fprintf(stderr, "%s:%d: unknown key '%s'\n", path, lineno, key);
			r = -EINVAL;
		}
		if (r < 0)
			fprintf(stderr, "%s:%d: %s\n", path, lineno, err_detail_str(&why, r));
	}
	wipe_free(line, linecap);
	fclose(f);
	return r;
}

static void conf_free(struct conf *c)
{
	for (size_t i = 0; i < c->dev.n_peers; i++)
		free(c->dev.peers[i].allowedips);
	wipe_free(c->dev.peers, c->dev.n_peers * sizeof(*c->dev.peers));
	secret_free(c->private_key, WG_KEY_LEN);
}

/* splitmix64: deterministic test keys, the same on every run for a seed. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void random_key(uint8_t key[static WG_KEY_LEN], uint64_t *state)
{
	for (int i = 0; i < WG_KEY_LEN; i += 8) {
		uint64_t v = next_random(state);

		memcpy(key + i, &v, 8);
	}
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
}

/*
 * Peer i gets IPS allowed IPs: 10.0.0.0/8 host addresses and every fourth one an
 * IPv6 /128, all distinct; endpoints 198.18.x.y:51820 (every 7th IPv6); keepalive on
 * every 3rd peer, a preshared key on every 5th.
 */
static int gen_conf(unsigned long peers, unsigned long ips, uint64_t seed)
{
	uint64_t state = seed, n = 0;
	uint8_t key[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN];

	random_key(key, &state);
	wg_key_to_base64(b64, key);
	printf("[Interface]\nPrivateKey = %s\nListenPort = %u\n", b64, 51820u);
	for (unsigned long i = 0; i < peers; i++) {
		random_key(key, &state);
		wg_key_to_base64(b64, key);
		printf("\n[Peer]\nPublicKey = %s\n", b64);
		if (i % 5 == 0) {
			random_key(key, &state);
			wg_key_to_base64(b64, key);
			printf("PresharedKey = %s\n", b64);
		}
		if (i % 7 == 3)
			printf("Endpoint = [2001:db8::%lx]:%lu\n", i + 1, 1024 + i % 60000);
		else
			printf("Endpoint = 198.18.%lu.%lu:%lu\n", (i >> 8) & 255, i & 255, 1024 + i % 60000);
		if (i % 3 == 0)
			printf("PersistentKeepalive = 25\n");
		for (unsigned long j = 0; j < ips; j++, n++) {
			struct ip_prefix ip = { .family = AF_INET, .len = 32 };
			char text[INET6_ADDRSTRLEN + 8];

			printf(j % 64 == 0 ? "AllowedIPs = " : ", ");
			/* Printed in canonical form, the way wg(8) prints the kernel's list. */
			if (n % 4 == 3) {
				ip.family = AF_INET6;
				ip.len = 128;
				ip.ip6.s6_addr[0] = 0xfd;
				for (int b = 0; b < 4; b++)
					ip.ip6.s6_addr[15 - b] = (uint8_t)(n >> (8 * b));
			} else {
				ip.ip4.s_addr = htonl(0x0a000000u | (uint32_t)(n & 0xffffff));
			}
			ip_prefix_format(text, sizeof(text), &ip);
			printf("%s", text);
			if (j % 64 == 63 || j + 1 == ips)
				printf("\n");
		}
	}
	secret_wipe(key, sizeof(key));
	return 0;
}

static int read_keys(const char *path, struct wg_peer **out, size_t *n)
{
	FILE *f = fopen(path, "re");
	char line[128];
	size_t cap = 0;
	int r = 0;

	*out = NULL;
	*n = 0;
	if (!f)
		return -errno;
	while (r == 0 && fgets(line, sizeof(line), f)) {
		char *s = trim(line);

		if (!*s)
			continue;
		if (*n == cap) {
			void *p = realloc(*out, (cap = cap ? cap * 2 : 64) * sizeof(**out));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			*out = p;
		}
		memset(&(*out)[*n], 0, sizeof(**out));
		(*out)[*n].flags = WG_PEER_REMOVE;
		r = wg_key_from_base64((*out)[(*n)++].public_key, s, &why);
	}
	fclose(f);
	return r;
}

static int wg_command(const char *backend, size_t msg_size, const char *cmd, int argc, char **argv,
		      bool verbose)
{
	struct wg_backend *b = NULL;
	struct conf c = { 0 };
	struct wg_device *cur = NULL;
	struct wg_peer *changes = NULL;
	size_t n_changes = 0;
	const char *ifname = argv[0];
	uint64_t t0, msgs0;
	int r;

	if (argc < 2 && strcmp(cmd, "dump") && strcmp(cmd, "up"))
		return -EINVAL;
	if (!strcmp(cmd, "up")) {
		r = wg_backend_open_auto(&b, ifname, WG_AUTO_CREATE | WG_AUTO_START_USERSPACE, &why);
		if (r == 0)
			printf("%s\n", wg_backend_kind(b) == WG_BACKEND_KERNEL ? "kernel" : "userspace");
		wg_backend_close(b);
		return r;
	}
	if (!strcmp(cmd, "setconf") || !strcmp(cmd, "addconf") || !strcmp(cmd, "syncconf")) {
		r = conf_read(argv[1], &c);
		if (r < 0)
			goto out;
		snprintf(c.dev.name, sizeof(c.dev.name), "%s", ifname);
	}
	r = wg_backend_open_named(&b, backend, ifname, &why);
	if (r == 0 && msg_size)
		r = wg_backend_set_message_size(b, msg_size, &why);
	if (r < 0)
		goto out;
	t0 = now_ms();
	msgs0 = wg_backend_messages(b);
	if (!strcmp(cmd, "setconf")) {
		c.dev.flags |= WG_DEVICE_REPLACE_PEERS;
		r = wg_set_device(b, &c.dev, &why);
	} else if (!strcmp(cmd, "addconf")) {
		r = wg_set_device(b, &c.dev, &why);
	} else if (!strcmp(cmd, "syncconf")) {
		r = wg_get_device(b, ifname, &cur, &why);
		if (r == 0)
			r = wg_device_diff(cur, &c.dev, &changes, &n_changes);
		if (r == 0)
			r = wg_apply_peers(b, ifname, changes, n_changes, &why);
		if (verbose)
			fprintf(stderr, "changes=%zu ", n_changes);
	} else if (!strcmp(cmd, "dump")) {
		r = wg_get_device(b, ifname, &cur, &why);
		if (r == 0)
			wg_device_print_dump(stdout, cur);
	} else if (!strcmp(cmd, "remove")) {
		r = read_keys(argv[1], &changes, &n_changes);
		if (r == 0)
			r = wg_apply_peers(b, ifname, changes, n_changes, &why);
	} else if (!strcmp(cmd, "endpoint") && argc >= 3) {
		struct wg_peer p = { .flags = WG_PEER_UPDATE_ONLY | WG_PEER_HAS_ENDPOINT };

		r = wg_key_from_base64(p.public_key, argv[1], &why);
		if (r == 0)
			r = wg_endpoint_parse(&p.endpoint, argv[2], &why);
		if (r == 0)
			r = wg_apply_peers(b, ifname, &p, 1, &why);
	} else {
		r = -EINVAL;
	}
	if (verbose && r == 0)
		fprintf(stderr, "messages=%" PRIu64 " ms=%" PRIu64 "\n", wg_backend_messages(b) - msgs0,
			now_ms() - t0);
out:
	wg_changes_free(changes, n_changes);
	wg_device_free(cur);
	wg_backend_close(b);
	conf_free(&c);
	return r;
}

/* Prints the MTU of a link, or of the route towards an address ("ADDR" or "ADDR:PORT"). */
static int mtu_command(const char *cmd, const char *arg)
{
	union wg_endpoint ep;
	char text[INET6_ADDRSTRLEN + 8];
	uint32_t mtu = 0;
	int r;

	if (!strcmp(cmd, "link-get-mtu")) {
		r = rtnl_link_mtu(arg, &mtu, &why);
	} else {
		/* A bare address gets a port so that wg_endpoint_parse reads it. */
		snprintf(text, sizeof(text), strchr(arg, ':') ? "%s" : "%s:1", arg);
		r = wg_endpoint_parse(&ep, text, &why);
		if (r == 0)
			r = rtnl_route_mtu(&ep, &mtu, &why);
	}
	if (r == 0)
		printf("%u\n", mtu);
	return r;
}

static int link_command(const char *cmd, int argc, char **argv)
{
	struct ip_prefix p;
	int r;

	if (!strcmp(cmd, "link-add"))
		return rtnl_link_ensure_wireguard(argv[0], NULL, &why);
	if (!strcmp(cmd, "link-del"))
		return rtnl_link_delete(argv[0], &why);
	if (!strcmp(cmd, "link-up") || !strcmp(cmd, "link-down"))
		return rtnl_link_set_up(argv[0], !strcmp(cmd, "link-up"), &why);
	if (!strcmp(cmd, "link-get-mtu") || !strcmp(cmd, "route-mtu"))
		return mtu_command(cmd, argv[0]);
	if (argc < 2)
		return -EINVAL;
	if (!strcmp(cmd, "link-mtu"))
		return rtnl_link_set_mtu(argv[0], (uint32_t)strtoul(argv[1], NULL, 10), &why);
	r = ip_prefix_parse(&p, argv[1], &why);
	if (r < 0)
		return r;
	if (!strcmp(cmd, "addr-add"))
		return rtnl_addr_add(argv[0], &p, &why);
	if (!strcmp(cmd, "addr-del"))
		return rtnl_addr_del(argv[0], &p, &why);
	if (!strcmp(cmd, "route-add"))
		return rtnl_route_add(argv[0], &p, &why);
	return -EINVAL;
}

static int key_command(const char *cmd)
{
	uint8_t *key = secret_alloc(WG_KEY_LEN), pub[WG_KEY_LEN];
	char line[128], b64[WG_KEY_B64_LEN];
	int r;

	if (!key)
		return -ENOMEM;
	if (!strcmp(cmd, "genkey")) {
		r = generate_private_key(key);
	} else {
		r = fgets(line, sizeof(line), stdin) ? wg_key_from_base64(key, trim(line), &why) : -EINVAL;
		if (r == 0)
			r = x25519_public_from_private(pub, key);
		if (r == 0)
			memcpy(key, pub, WG_KEY_LEN);
		secret_wipe(line, sizeof(line));
	}
	if (r == 0) {
		wg_key_to_base64(b64, key);
		printf("%s\n", b64);
		secret_wipe(b64, sizeof(b64));
	}
	secret_free(key, WG_KEY_LEN);
	return r;
}

extern char **environ;

/* Busybox in the test VM has no sub-millisecond clock: time commands for the benchmark. */
static int timed(char **argv)
{
	struct timespec t0, t1;
	pid_t pid;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ) != 0) {
		fprintf(stderr, "timed: cannot run %s\n", argv[0]);
		return 127;
	}
	if (waitpid(pid, &status, 0) < 0)
		return 127;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "ms=%.2f\n", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int main(int argc, char **argv)
{
	const char *backend = "auto", *cmd;
	bool verbose = false;
	size_t msg_size = 0;
	int i = 1, r;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v"))
			verbose = true;
		else if (!strcmp(argv[i], "-b") && i + 1 < argc)
			backend = argv[++i];
		else if (!strcmp(argv[i], "-m") && i + 1 < argc)
			msg_size = strtoul(argv[++i], NULL, 10);
		else
			goto usage;
	}
	if (i >= argc)
		goto usage;
	cmd = argv[i++];
	if (!strcmp(cmd, "timed") && i < argc)
		return timed(argv + i);
	if (!strcmp(cmd, "gen-conf") && argc - i >= 2)
		return gen_conf(strtoul(argv[i], NULL, 10), strtoul(argv[i + 1], NULL, 10),
				argc - i > 2 ? strtoull(argv[i + 2], NULL, 10) : 1) ? 1 : 0;
	if (!strcmp(cmd, "genkey") || !strcmp(cmd, "pubkey"))
		r = key_command(cmd);
	else if (argc - i < 1)
		goto usage;
	else if (!strncmp(cmd, "link-", 5) || !strncmp(cmd, "addr-", 5) || !strncmp(cmd, "route-", 6))
		r = link_command(cmd, argc - i, argv + i);
	else
		r = wg_command(backend, msg_size, cmd, argc - i, argv + i, verbose);
	if (r == -EINVAL && !why.text[0])
		goto usage;
	if (r < 0) {
		fprintf(stderr, "netlink-wgtool %s: %s\n", cmd, err_detail_str(&why, r));
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: netlink-wgtool [-b kernel|uapi|auto] [-m MSG_BYTES] [-v] COMMAND ... (see the source)\n");
	return 2;
}
