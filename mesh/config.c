/* SPDX-License-Identifier: MIT */
/* mesh: the agent's configuration from flags, environment and a config file, by one name each. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/chain.h"
#include "common/common.h"
#include "dns/dns.h"
#include "mesh/internal.h"
#include "net/net.h"
#include "registry/registry.h"

const char *const mesh_config_names[] = {
	"CLUSTER_CONTRACT", "P2P_MODE", "ETH_RPC_URL", "P2P_ENDPOINT", "P2P_INTERFACE",
	"P2P_LISTEN_PORT", "P2P_KEEPALIVE", "P2P_GATEWAY_PORT", "DSTACK_GATEWAY_DOMAIN",
	"P2P_TX_KEY_FILE", "P2P_RELAYER_URL", "P2P_PEERS_FILE", "P2P_HOSTS_FILE", "P2P_ON_CHANGE",
	"P2P_DNS", "P2P_DNS_ZONE",
	"DSTACK_P2P_CONTROL", "P2P_POLL_MS", "P2P_FULL_REREAD_MS", "P2P_REMOVE_ON_EXIT",
	"P2P_KMS_ROOT", "P2P_CHAIN_ID", "P2P_REGISTER_MAX_PER_HOUR",
	"P2P_METRICS_LISTEN",
	"P2P_TRANSPORT", "P2P_RELAY_PORT", "P2P_GATEWAY_CA", "P2P_FALLBACK_MS",
	"P2P_RPC_WS_URL", "P2P_PUSH_POLL_MS", "P2P_CONTROL_ACTION_UID", "P2P_CONTROL_ACTION_GID",
	"P2P_ACTION_SPACING_MS", "P2P_ACTION_MAX_PER_HOUR", "P2P_TX_MAX_FEE_PER_GAS",
	"P2P_TX_MAX_PRIORITY_FEE_PER_GAS", "P2P_TX_MAX_GAS", "P2P_TX_MAX_COST", "P2P_MTU", "P2P_PSK",
	NULL,
};

const char *mesh_mode_name(enum registry_mode mode)
{
	return mode == REGISTRY_MODE_WIREGUARD ? "wireguard" : "tls";
}

int mesh_mode_parse(const char *s, enum registry_mode *out)
{
	if (!strcmp(s, "wireguard") || !strcmp(s, "wg"))
		*out = REGISTRY_MODE_WIREGUARD;
	else if (!strcmp(s, "tls"))
		*out = REGISTRY_MODE_TLS_GATEWAY;
	else
		return -EINVAL;
	return 0;
}

int mesh_transport_parse(const char *s, enum mesh_transport *out)
{
	if (!strcmp(s, "udp"))
		*out = MESH_TRANSPORT_UDP;
	else if (!strcmp(s, "gateway"))
		*out = MESH_TRANSPORT_GATEWAY;
	else if (!strcmp(s, "auto"))
		*out = MESH_TRANSPORT_AUTO;
	else
		return -EINVAL;
	return 0;
}

static int set_rpc_urls(struct mesh_config *cfg, const char *value);

void mesh_config_init(struct mesh_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = REGISTRY_MODE_WIREGUARD;
	set_rpc_urls(cfg, "http://127.0.0.1:8545");
	snprintf(cfg->ifname, sizeof(cfg->ifname), "%s", MESH_DEFAULT_IFNAME);
	snprintf(cfg->control_path, sizeof(cfg->control_path), "%s", MESH_DEFAULT_CONTROL);
	snprintf(cfg->dns_zone, sizeof(cfg->dns_zone), "%s", DNS_ZONE_DEFAULT);
	cfg->listen_port = MESH_DEFAULT_PORT;
	cfg->keepalive = MESH_DEFAULT_KEEPALIVE;
	cfg->gateway_port = 443;
	cfg->poll_ms = 1000;
	cfg->full_reread_ms = 60000;
	cfg->psk = true;
	cfg->push_poll_ms = 10000;
	cfg->transport = MESH_TRANSPORT_AUTO;
	cfg->relay_port = MESH_DEFAULT_RELAY_PORT;
	cfg->fallback_ms = MESH_DEFAULT_FALLBACK_MS;
	cfg->register_max_per_hour = MESH_DEFAULT_REGISTER_MAX_PER_HOUR;
	cfg->action_uid = MESH_ID_NONE;
	cfg->action_gid = MESH_ID_NONE;
	cfg->action_spacing_ms = MESH_DEFAULT_ACTION_SPACING_MS;
	cfg->action_max_per_hour = MESH_DEFAULT_ACTION_MAX_PER_HOUR;
	cfg->tx_max_fee_per_gas = MESH_DEFAULT_TX_MAX_FEE_PER_GAS;
	cfg->tx_max_priority_fee_per_gas = MESH_DEFAULT_TX_MAX_PRIORITY_FEE_PER_GAS;
	cfg->tx_max_gas = MESH_DEFAULT_TX_MAX_GAS;
	cfg->tx_max_cost = MESH_DEFAULT_TX_MAX_COST;
}

static int set_string(char *dst, size_t cap, const char *value)
{
	size_t n = strlen(value);

	if (n >= cap)
		return -EINVAL;
	memcpy(dst, value, n + 1);
	return 0;
}

/* A decimal number in [min, max]. */
static int parse_range(const char *value, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)value[0]))
		return -EINVAL;
	errno = 0;
	*out = strtoul(value, &end, 10);
	if (errno || *end || *out < min || *out > max)
		return -EINVAL;
	return 0;
}

static int set_u16(uint16_t *dst, const char *value, unsigned long min)
{
	unsigned long u;
	int r = parse_range(value, min, 65535, &u);

	if (r == 0)
		*dst = (uint16_t)u;
	return r;
}

/* A port of ours: never 9182, dstack's own WireGuard port. */
static int set_port_not_dstack(uint16_t *dst, const char *value)
{
	uint16_t port = 0;

	if (set_u16(&port, value, 1) < 0 || port == 9182)
		return -EINVAL;
	*dst = port;
	return 0;
}

static int set_ms(unsigned *dst, const char *value, unsigned long min, unsigned long max)
{
	unsigned long u;
	int r = parse_range(value, min, max, &u);

	if (r == 0)
		*dst = (unsigned)u;
	return r;
}

static int parse_bool(const char *value, bool *out)
{
	if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes"))
		*out = true;
	else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no") || !*value)
		*out = false;
	else
		return -EINVAL;
	return 0;
}

/* "on" / "off", or a boolean as parse_bool takes it. */
static int set_on_off(bool *out, const char *value)
{
	if (!strcasecmp(value, "on") || !strcasecmp(value, "off")) {
		*out = !strcasecmp(value, "on");
		return 0;
	}
	return parse_bool(value, out);
}

/* A DNS zone as dns_zone_set takes it, kept in lower case without the trailing dot. */
static int set_dns_zone(struct mesh_config *cfg, const char *value)
{
	struct dns_zone z;

	if (dns_zone_set(&z, value, 0, NULL) < 0)
		return -EINVAL;
	return set_string(cfg->dns_zone, sizeof(cfg->dns_zone), z.text);
}

/* A uid or gid (decimal, below 2^31), or "" / "none" for none. */
static int set_id(long *dst, const char *value)
{
	unsigned long u;

	if (!*value || !strcmp(value, "none")) {
		*dst = MESH_ID_NONE;
		return 0;
	}
	if (parse_range(value, 0, 0x7fffffffUL, &u) < 0)
		return -EINVAL;
	*dst = (long)u;
	return 0;
}

/* An amount of wei: digits with an optional fraction and unit (wei, gwei, ether), non-zero. */
static int set_wei(uint64_t *dst, const char *value)
{
	static const struct { const char *name; int exp; } units[] = {
		{ "", 0 }, { "wei", 0 }, { "gwei", 9 }, { "ether", 18 }, { "eth", 18 },
	};
	uint64_t v = 0;
	const char *p = value;
	int frac = -1, exp = -1;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p) || (*p == '.' && frac < 0); p++) {
		if (*p == '.') {
			frac = 0;
			continue;
		}
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
			return -EINVAL;
		if (frac >= 0)
			frac++;
	}
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (!strcmp(p, units[i].name))
			exp = units[i].exp;
	if (exp < 0 || (frac > exp))
		return -EINVAL;
	for (int i = frac > 0 ? frac : 0; i < exp; i++)
		if (__builtin_mul_overflow(v, 10, &v))
			return -EINVAL;
	if (!v)
		return -EINVAL;
	*dst = v;
	return 0;
}

/* An address as "0x" + 40 lowercase hex into out and, when raw is not NULL, its bytes. */
static int parse_contract(const char *value, char out[static 43], uint8_t *raw)
{
	uint8_t addr[20];

	if (strlen(value) != 42 || hex_decode_exact(addr, sizeof(addr), value, 42) < 0)
		return -EINVAL;
	out[0] = '0';
	out[1] = 'x';
	hex_encode(out + 2, addr, sizeof(addr));
	if (raw)
		memcpy(raw, addr, sizeof(addr));
	return 0;
}

/* Interface names that dstack itself owns, or that the kernel would refuse. */
static int parse_ifname(const char *value, char out[static IFNAMSIZ])
{
	if (!*value || strlen(value) >= IFNAMSIZ || !strcmp(value, "wg0") || !strcmp(value, "dstack-wg0"))
		return -EINVAL;
	for (const char *p = value; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			return -EINVAL;
	return set_string(out, IFNAMSIZ, value);
}

/* The list is taken apart here, once; a list that does not parse is refused by validate. */
static int set_rpc_urls(struct mesh_config *cfg, const char *value)
{
	int r;

	if (!*value)
		return -EINVAL;
	r = set_string(cfg->rpc_urls, sizeof(cfg->rpc_urls), value);
	if (r < 0)
		return r;
	cfg->rpc_error = rpc_url_list_parse(cfg->rpc_urls, &cfg->rpc);
	return 0;
}

int mesh_config_set(struct mesh_config *cfg, const char *name, const char *value)
{
	if (!strcmp(name, "CLUSTER_CONTRACT"))
		return parse_contract(value, cfg->contract, cfg->contract_addr);
	if (!strcmp(name, "P2P_MODE"))
		return mesh_mode_parse(value, &cfg->mode);
	if (!strcmp(name, "ETH_RPC_URL"))
		return set_rpc_urls(cfg, value);
	if (!strcmp(name, "P2P_ENDPOINT"))
		return set_string(cfg->endpoint, sizeof(cfg->endpoint), value);
	if (!strcmp(name, "P2P_INTERFACE"))
		return parse_ifname(value, cfg->ifname);
	if (!strcmp(name, "P2P_LISTEN_PORT"))
		return set_port_not_dstack(&cfg->listen_port, value);
	if (!strcmp(name, "P2P_KEEPALIVE"))
		return set_u16(&cfg->keepalive, value, 0);
	if (!strcmp(name, "P2P_MTU")) /* "" or "auto": the rule */
		return !*value || !strcmp(value, "auto") ? (cfg->mtu = 0, 0)
							  : set_ms(&cfg->mtu, value, MESH_MTU_MIN, MESH_MTU_MAX);
	if (!strcmp(name, "P2P_GATEWAY_PORT"))
		return set_u16(&cfg->gateway_port, value, 1);
	if (!strcmp(name, "DSTACK_GATEWAY_DOMAIN"))
		return set_string(cfg->gateway_domain, sizeof(cfg->gateway_domain), value);
	if (!strcmp(name, "P2P_TX_KEY_FILE"))
		return set_string(cfg->tx_key_file, sizeof(cfg->tx_key_file), value);
	if (!strcmp(name, "P2P_RELAYER_URL"))
		return set_string(cfg->relayer_url, sizeof(cfg->relayer_url), value);
	if (!strcmp(name, "P2P_PEERS_FILE"))
		return set_string(cfg->peers_file, sizeof(cfg->peers_file), value);
	if (!strcmp(name, "P2P_HOSTS_FILE"))
		return set_string(cfg->hosts_file, sizeof(cfg->hosts_file), value);
	if (!strcmp(name, "P2P_ON_CHANGE"))
		return set_string(cfg->on_change, sizeof(cfg->on_change), value);
	if (!strcmp(name, "P2P_DNS"))
		return set_on_off(&cfg->dns, value);
	if (!strcmp(name, "P2P_DNS_ZONE"))
		return set_dns_zone(cfg, value);
	if (!strcmp(name, "DSTACK_P2P_CONTROL"))
		return *value ? set_string(cfg->control_path, sizeof(cfg->control_path), value) : -EINVAL;
	if (!strcmp(name, "P2P_POLL_MS"))
		return set_ms(&cfg->poll_ms, value, 50, 3600000);
	if (!strcmp(name, "P2P_RPC_WS_URL")) {
		struct ws_url u;

		if (!strcmp(value, "off") || !strcmp(value, "none"))
			value = "";
		if (*value && strcmp(value, "auto") && ws_url_parse(value, &u) < 0)
			return -EINVAL;
		return set_string(cfg->ws_url, sizeof(cfg->ws_url), value);
	}
	if (!strcmp(name, "P2P_PUSH_POLL_MS"))
		return set_ms(&cfg->push_poll_ms, value, 50, 3600000);
	if (!strcmp(name, "P2P_FULL_REREAD_MS"))
		return set_ms(&cfg->full_reread_ms, value, 100, 86400000);
	if (!strcmp(name, "P2P_REMOVE_ON_EXIT"))
		return parse_bool(value, &cfg->remove_on_exit);
	if (!strcmp(name, "P2P_TRANSPORT"))
		return mesh_transport_parse(value, &cfg->transport);
	if (!strcmp(name, "P2P_RELAY_PORT"))
		return set_port_not_dstack(&cfg->relay_port, value);
	if (!strcmp(name, "P2P_GATEWAY_CA"))
		return set_string(cfg->gateway_ca, sizeof(cfg->gateway_ca), value);
	if (!strcmp(name, "P2P_FALLBACK_MS"))
		return set_ms(&cfg->fallback_ms, value, 1000, 600000);
	if (!strcmp(name, "P2P_KMS_ROOT"))
		return *value ? parse_contract(value, cfg->kms_root, NULL) : (cfg->kms_root[0] = '\0', 0);
	if (!strcmp(name, "P2P_CHAIN_ID")) {
		unsigned long long id;
		char *end;

		if (!*value) {
			cfg->chain_id = 0;
			return 0;
		}
		if (!isdigit((unsigned char)value[0]))
			return -EINVAL;
		errno = 0;
		id = strtoull(value, &end, 10);
		if (errno || *end || !id)
			return -EINVAL;
		cfg->chain_id = id;
		return 0;
	}
	if (!strcmp(name, "P2P_METRICS_LISTEN")) {
		/* Kept with its error, which validation words (as ETH_RPC_URL's). */
		cfg->metrics_listen.error = mesh_metrics_listen_parse(value, &cfg->metrics_listen);
		return 0;
	}
	if (!strcmp(name, "P2P_REGISTER_MAX_PER_HOUR"))
		return set_ms(&cfg->register_max_per_hour, value, 1, MESH_MAX_REGISTER_PER_HOUR);
	if (!strcmp(name, "P2P_CONTROL_ACTION_UID"))
		return set_id(&cfg->action_uid, value);
	if (!strcmp(name, "P2P_CONTROL_ACTION_GID"))
		return set_id(&cfg->action_gid, value);
	if (!strcmp(name, "P2P_ACTION_SPACING_MS"))
		return set_ms(&cfg->action_spacing_ms, value, 0, 3600000);
	if (!strcmp(name, "P2P_ACTION_MAX_PER_HOUR"))
		return set_ms(&cfg->action_max_per_hour, value, 0, MESH_MAX_ACTION_PER_HOUR);
	if (!strcmp(name, "P2P_TX_MAX_FEE_PER_GAS"))
		return set_wei(&cfg->tx_max_fee_per_gas, value);
	if (!strcmp(name, "P2P_TX_MAX_PRIORITY_FEE_PER_GAS"))
		return set_wei(&cfg->tx_max_priority_fee_per_gas, value);
	if (!strcmp(name, "P2P_TX_MAX_GAS"))
		return set_wei(&cfg->tx_max_gas, value);
	if (!strcmp(name, "P2P_TX_MAX_COST"))
		return set_wei(&cfg->tx_max_cost, value);
	if (!strcmp(name, "P2P_PSK"))
		return set_on_off(&cfg->psk, value);
	return -ENOENT;
}

int mesh_config_load_env(struct mesh_config *cfg, struct err_detail *why)
{
	for (const char *const *name = mesh_config_names; *name; name++) {
		const char *value = getenv(*name);

		if (!value)
			continue;
		if (mesh_config_set(cfg, *name, value) < 0) {
			err_detail_set(why, "bad value in the environment variable %s", *name);
			return -EINVAL;
		}
	}
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* One line into text (cap bytes with its NUL): 1, 0 at the end, -EMSGSIZE, -EILSEQ (a NUL). */
static int read_line(FILE *f, char *text, size_t cap)
{
	size_t n = 0;
	int c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0')
			return -EILSEQ;
		if (n + 1 >= cap)
			return -EMSGSIZE;
		text[n++] = (char)c;
	}
	text[n] = '\0';
	return c == EOF && n == 0 ? 0 : 1;
}

/* Edits (insert, delete, replace) from a to b, stopping past 2: typos only. */
static unsigned near_miss(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned d[64][64];

	if (la > lb + 2 || lb > la + 2 || la >= 64 || lb >= 64)
		return 3;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t k = 0; k <= lb; k++)
		d[0][k] = (unsigned)k;
	for (size_t i = 1; i <= la; i++)
		for (size_t k = 1; k <= lb; k++) {
			unsigned sub = d[i - 1][k - 1] + (toupper((unsigned char)a[i - 1]) != b[k - 1]);
			unsigned del = d[i - 1][k] + 1, ins = d[i][k - 1] + 1;

			d[i][k] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
	return d[la][lb];
}

/* The known name name is a typo of (at most 2 edits, case aside), or NULL. */
static const char *closest_name(const char *name)
{
	const char *best = NULL;
	unsigned best_d = 3;

	for (size_t i = 0; mesh_config_names[i]; i++) {
		unsigned d = near_miss(name, mesh_config_names[i]);

		if (d < best_d) {
			best_d = d;
			best = mesh_config_names[i];
		}
	}
	return best;
}

/* What is wrong with line NAME=VALUE (set failed with r), naming the key. */
static void explain_set(struct err_detail *why, int r, const char *name, const char *value)
{
	const char *near = r == -ENOENT ? closest_name(name) : NULL;

	if (r == -ENOENT && near)
		err_detail_set(why, "unknown option '%.64s' (did you mean %s?)", name, near);
	else if (r == -ENOENT)
		err_detail_set(why, "unknown option '%.64s' (see dstack-p2p-agent(1))", name);
	else
		err_detail_set(why, "bad value for %.64s: '%.80s' (see dstack-p2p-agent(1))", name, value);
}

/* The lines of f, until the first that is wrong (*line its number). */
static int load_lines(struct mesh_config *cfg, FILE *f, int *line, struct err_detail *why)
{
	char text[2048];
	int r;

	while ((r = read_line(f, text, sizeof(text))) != 0) {
		char *name, *value, *eq;
		size_t n;

		++*line;
		if (r == -EMSGSIZE)
			err_detail_set(why, "line longer than %zu bytes", sizeof(text) - 2);
		else if (r < 0)
			err_detail_set(why, "holds a NUL byte (is this a text file?)");
		if (r < 0)
			return r;
		name = trim(text);
		if (!*name || *name == '#')
			continue;
		eq = strchr(name, '=');
		if (!eq) {
			err_detail_set(why, "'%.64s' is not NAME=VALUE", name);
			return -EINVAL;
		}
		*eq = '\0';
		name = trim(name);
		value = trim(eq + 1);
		/* Accept shell-style quoting, as in an env file. */
		n = strlen(value);
		if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
			value[n - 1] = '\0';
			value++;
		}
		r = mesh_config_set(cfg, name, value);
		if (r < 0) {
			explain_set(why, r, name, value);
			return r;
		}
	}
	if (ferror(f)) {
		err_detail_set(why, "%s", errstr(-EIO));
		return -EIO;
	}
	return 0;
}

int mesh_config_load_stream(struct mesh_config *cfg, FILE *f, const char *name, struct err_detail *why)
{
	int line = 0, r = load_lines(cfg, f, &line, why);

	if (r < 0)
		err_detail_prefix(why, "%s:%d: ", name, line);
	return r;
}

int mesh_config_load_file(struct mesh_config *cfg, const char *path, struct err_detail *why)
{
	FILE *f;
	int r;

	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		err_detail_set(why, "%s: %s", path, errstr(r));
		return r;
	}
	r = mesh_config_load_stream(cfg, f, path, why);
	fclose(f);
	return r;
}

int mesh_config_validate(const struct mesh_config *cfg, struct err_detail *why)
{
	if (cfg->metrics_listen.error < 0) {
		err_detail_set(
			why,
			"P2P_METRICS_LISTEN '%.60s': metrics are served only on loopback "
			"(127.0.0.1:PORT, [::1]:PORT) or on this node's overlay address (overlay:PORT)",
			cfg->metrics_listen.spec);
		return -EINVAL;
	}
	if (!cfg->contract[0]) {
		err_detail_set(why, "no cluster contract: set CLUSTER_CONTRACT or --contract");
		return -EINVAL;
	}
	if (cfg->mode == REGISTRY_MODE_WIREGUARD && cfg->endpoint[0]) {
		struct sockaddr_storage ss;

		if (mesh_endpoint_parse(cfg->endpoint, &ss) < 0) {
			err_detail_set(why, "endpoint '%s' is not host:port", cfg->endpoint);
			return -EINVAL;
		}
	}
	if (cfg->rpc_error < 0) {
		err_detail_set(why, "ETH_RPC_URL '%.200s' is not a comma-separated list of RPC URLs "
			 "(http://, https://, http+unix://, ipc:// or a socket path)", cfg->rpc_urls);
		return -EINVAL;
	}
	if (cfg->tx_key_file[0] && cfg->relayer_url[0]) {
		err_detail_set(why, "give a funded key or a relayer URL, not both");
		return -EINVAL;
	}
	if (!strcmp(cfg->ws_url, "auto") && !strstr(cfg->rpc_urls, "http://") && !strstr(cfg->rpc_urls, "https://")) {
		err_detail_set(why, "P2P_RPC_WS_URL=auto derives ws(s):// from an http(s):// ETH_RPC_URL, "
			 "and '%.200s' has none: give the WebSocket URL itself", cfg->rpc_urls);
		return -EINVAL;
	}
	if (cfg->push_poll_ms < cfg->poll_ms) {
		err_detail_set(why, "the safety poll with push (P2P_PUSH_POLL_MS) is shorter than the poll interval");
		return -EINVAL;
	}
	if (cfg->full_reread_ms < cfg->poll_ms) {
		err_detail_set(why, "the full re-read interval is shorter than the poll interval");
		return -EINVAL;
	}
	if (cfg->dns && cfg->mode != REGISTRY_MODE_WIREGUARD) {
		err_detail_set(why,
			       "P2P_DNS=on answers with overlay addresses, which only wireguard mode has");
		return -EINVAL;
	}
	return 0;
}
