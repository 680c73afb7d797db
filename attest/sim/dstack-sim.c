/* SPDX-License-Identifier: MIT */
/* dstack-sim: a dstack guest agent simulator for tests and demos (options, keys, sockets). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "attest/attest.h"
#include "attest/sim/sim.h"
#include "chain/chain.h"
#include "common/common.h"
#include "net/net.h"

#define FIXTURE_MAX (64 * 1024)

/*
 * What Info.tcb_info.app_compose shows; real CVMs carry their app-compose.json here.
 * Keys sorted and no spaces, as the dstack SDKs' getComposeHash serializes it: then the
 * sha256 of these bytes (what dstack reports) equals the SDK's hash of the parsed JSON.
 */
static const char simulated_app_compose[] =
	"{\"docker_compose_file\":\"\",\"gateway_enabled\":false,\"kms_enabled\":true,"
	"\"local_key_provider_enabled\":false,\"manifest_version\":2,\"name\":\"dstack-sim\","
	"\"no_instance_id\":false,\"runner\":\"docker-compose\"}";

struct options {
	const char *socket_path;
	const char *listen;            /* 127.0.0.1:PORT, port 0 = any */
	char *kms_root_key_hex;        /* in argv: wiped once decoded */
	const char *kms_root_key_file;
	const char *app_id_hex;
	const char *instance_id_hex;
	const char *app_name;
	const char *compose_hash_hex;
	const char *fixture;
	const char *ready_file;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: dstack-sim --socket PATH [--listen 127.0.0.1:PORT]\n"
		"                  (--kms-root-key-file FILE | --kms-root-key HEX | --fixture FILE)\n"
		"                  [--app-id HEX] --instance-id HEX [--app-name NAME]\n"
		"                  [--compose-hash HEX] [--ready-file FILE]\n\n"
		"A SIMULATED dstack guest agent (Info, GetKey, GetQuote) for tests and demos.\n"
		"It is not a TEE: its keys protect nothing. Never use it in production.\n\n"
		"  --socket PATH            serve the agent API on this unix socket\n"
		"  --listen ADDR:PORT       also serve on TCP; loopback only (port 0: any free port)\n"
		"  --kms-root-key-file FILE the KMS root secp256k1 key, hex (preferred: not in ps)\n"
		"  --kms-root-key HEX       the same, on the command line\n"
		"  --fixture FILE           use the app key and KMS signature of the public dstack\n"
		"                           simulator fixture (attest/sim/dstack-simulator-chain.json)\n"
		"  --app-id HEX             the app id: the cluster contract's address (20 bytes)\n"
		"  --instance-id HEX        this node's instance id (20 bytes)\n"
		"  --app-name NAME          Info.app_name (default dstack-sim)\n"
		"  --compose-hash HEX       Info.compose_hash (32 bytes; default: sha256 of the\n"
		"                           simulated app-compose.json, as dstack computes it)\n"
		"  --ready-file FILE        write the endpoints here once listening\n"
		"  --version                print the version\n"
		"  -h, --help               this text\n");
}

static void banner(void)
{
	fprintf(stderr,
		"dstack-sim: ****************************************************************\n"
		"dstack-sim: * SIMULATED dstack guest agent: this is NOT a TEE.              *\n"
		"dstack-sim: * Keys come from a key given on the command line and protect    *\n"
		"dstack-sim: * nothing; quotes are fake. For tests and demos only.           *\n"
		"dstack-sim: ****************************************************************\n");
}

static int parse_hex_option(const char *name, const char *hex, uint8_t *out, size_t n)
{
	if (!hex || hex_decode_exact(out, n, hex, strlen(hex)) < 0) {
		fprintf(stderr, "dstack-sim: --%s needs %zu bytes of hex\n", name, n);
		return -EINVAL;
	}
	return 0;
}

/* Read a whole small file into buf; says what went wrong. -EFBIG when it does not fit. */
static ssize_t read_small_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n = 0;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	while (len < size && (n = read(fd, buf + len, size - len)) > 0)
		len += (size_t)n;
	e = errno;
	close(fd);
	errno = e;
	if (n < 0)
		goto fail;
	if (len == size) {
		fprintf(stderr, "dstack-sim: %s: larger than %zu bytes\n", path, size - 1);
		return -EFBIG;
	}
	return (ssize_t)len;
fail:
	e = errno;
	fprintf(stderr, "dstack-sim: %s: %s\n", path, strerror(e));
	return -e;
}

/* A key file holds hex, maybe 0x-prefixed, maybe with a trailing newline. */
static int read_key_file(const char *path, uint8_t key[static 32])
{
	char text[160];
	ssize_t n;
	int r = -EINVAL;

	n = read_small_file(path, text, sizeof(text));
	if (n < 0) {
		/* Too long or a failed read: what was read may still be (part of) the key. */
		secret_wipe(text, sizeof(text));
		return (int)n;
	}
	while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' '))
		n--;
	if (hex_decode_exact(key, 32, text, (size_t)n) == 32)
		r = 0;
	secret_wipe(text, sizeof(text));
	if (r < 0)
		fprintf(stderr, "dstack-sim: %s: expected a 32-byte hex key\n", path);
	return r;
}

static int fixture_hex(const struct json *j, const char *name, uint8_t *out, size_t n)
{
	const char *s;
	size_t len;
	int i = json_get(j, 0, name);

	if (i < 0 || j->tok[i].type != JSON_STRING)
		return -EINVAL;
	s = json_raw(j, i, &len);
	return hex_decode_exact(out, n, s, len) < 0 ? -EINVAL : 0;
}

/* The public fixture: app key and KMS signature; check that they recover its root. */
static int load_fixture(const char *path, struct sim_agent *a)
{
	uint8_t digest[32], root[20], want_root[20], app_pub[64];
	char *text = NULL;
	struct json j = { 0 };
	ssize_t n;
	int r = -EINVAL;

	text = malloc(FIXTURE_MAX);
	if (!text)
		return -ENOMEM;
	n = read_small_file(path, text, FIXTURE_MAX);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	if (json_parse(&j, text, (size_t)n, 0) < 0 ||
	    j.tok[0].type != JSON_OBJECT ||
	    fixture_hex(&j, "app_id", a->app_id, 20) < 0 ||
	    fixture_hex(&j, "app_k256_private_key", a->app_sk, 32) < 0 ||
	    fixture_hex(&j, "kms_signature_chain1", a->kms_signature, 65) < 0 ||
	    fixture_hex(&j, "kms_root_address", want_root, 20) < 0) {
		fprintf(stderr, "dstack-sim: %s: not a fixture with app_id, app_k256_private_key, "
			"kms_signature_chain1 and kms_root_address\n", path);
		goto out;
	}
	if (crypto_pubkey_from_secret(a->app_sk, app_pub) < 0)
		goto out;
	attest_kms_message_digest(a->app_id, app_pub, digest);
	if (crypto_recover_pubkey(digest, a->kms_signature, a->kms_root_pub) < 0)
		goto bad_root;
	crypto_address_from_pubkey(a->kms_root_pub, root);
	if (memcmp(root, want_root, 20))
		goto bad_root;
	a->from_fixture = true;
	r = 0;
	goto out;
bad_root:
	fprintf(stderr, "dstack-sim: %s: the KMS signature does not recover kms_root_address\n", path);
out:
	json_clear(&j);
	wipe_free(text, FIXTURE_MAX);
	return r;
}

/* Own KMS root: derive the app key as the KMS does and sign it, then forget the root. */
static int derive_from_root(const struct options *o, struct sim_agent *a)
{
	uint8_t *root_sk, app_pub[64], digest[32];
	int r;

	root_sk = secret_alloc(32);
	if (!root_sk)
		return -ENOMEM;
	if (o->kms_root_key_file)
		r = read_key_file(o->kms_root_key_file, root_sk);
	else
		r = parse_hex_option("kms-root-key", o->kms_root_key_hex, root_sk, 32);
	/* From now on /proc/<pid>/cmdline and a core dump no longer show the root key. */
	if (o->kms_root_key_hex)
		secret_wipe(o->kms_root_key_hex, strlen(o->kms_root_key_hex));
	if (r < 0)
		goto out;
	if ((r = crypto_pubkey_from_secret(root_sk, a->kms_root_pub)) < 0) {
		fprintf(stderr, "dstack-sim: the KMS root key is not a valid secp256k1 key\n");
		goto out;
	}
	if ((r = attest_derive_app_key(root_sk, a->app_id, a->app_sk)) < 0 ||
	    (r = crypto_pubkey_from_secret(a->app_sk, app_pub)) < 0)
		goto out;
	attest_kms_message_digest(a->app_id, app_pub, digest);
	r = crypto_sign_digest(root_sk, digest, a->kms_signature);
out:
	secret_free(root_sk, 32);
	return r;
}

/*
 * Bound and listening under a temporary name, then renamed into place: a script that
 * waits for the socket to exist never connects before listen(). A stale socket from an
 * earlier run is replaced; anything that is not a socket is left alone.
 */
static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, n, e;

	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "dstack-sim: %s exists and is not a socket\n", path);
		return -EEXIST;
	}
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d", path, (int)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		fprintf(stderr, "dstack-sim: socket path too long: %s\n", path);
		return -ENAMETOOLONG;
	}
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail_close;
	if (listen(fd, 64) < 0 || rename(sa.sun_path, path) < 0)
		goto fail_unlink;
	return fd;
fail_unlink:
	e = errno;
	unlink(sa.sun_path);
	errno = e;
fail_close:
	e = errno;
	close(fd);
	errno = e;
fail:
	e = errno;
	fprintf(stderr, "dstack-sim: listening on %s: %s\n", path, strerror(e));
	return -e;
}

/* Loopback only: anyone who can connect gets every key of the app. */
static int listen_tcp(const char *spec, unsigned *port_out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct hostport hp;
	int fd, one = 1;

	if (hostport_split(spec, strlen(spec), HOSTPORT_PORT_ZERO | HOSTPORT_LAST_COLON, &hp) < 0 ||
	    hp.bracketed || inet_pton(AF_INET, hp.host, &sa.sin_addr) != 1)
		goto bad;
	if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "dstack-sim: --listen %s: only loopback addresses (127.0.0.0/8)\n", spec);
		return -EINVAL;
	}
	sa.sin_port = htons(hp.port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		int e = errno;

		fprintf(stderr, "dstack-sim: listening on %s: %s\n", spec, strerror(e));
		close(fd);
		return -e;
	}
	*port_out = ntohs(sa.sin_port);
	return fd;
bad:
	fprintf(stderr, "dstack-sim: --listen wants IPv4:PORT, e.g. 127.0.0.1:8090\n");
	return -EINVAL;
}

/* Written whole then renamed, so a waiting script never reads half of it. */
static int write_ready_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "kms-root-key", required_argument, NULL, 'k' },
		{ "kms-root-key-file", required_argument, NULL, 'K' },
		{ "app-id", required_argument, NULL, 'a' },
		{ "instance-id", required_argument, NULL, 'i' },
		{ "app-name", required_argument, NULL, 'n' },
		{ "compose-hash", required_argument, NULL, 'c' },
		{ "fixture", required_argument, NULL, 'f' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket_path = optarg; break;
		case 'l': o->listen = optarg; break;
		case 'k': o->kms_root_key_hex = optarg; break;
		case 'K': o->kms_root_key_file = optarg; break;
		case 'a': o->app_id_hex = optarg; break;
		case 'i': o->instance_id_hex = optarg; break;
		case 'n': o->app_name = optarg; break;
		case 'c': o->compose_hash_hex = optarg; break;
		case 'f': o->fixture = optarg; break;
		case 'r': o->ready_file = optarg; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("dstack-sim %s\n", DSTACK_P2P_VERSION); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind != argc || !o->socket_path || !o->instance_id_hex ||
	    !!o->fixture + !!o->kms_root_key_hex + !!o->kms_root_key_file != 1 ||
	    (!o->fixture && !o->app_id_hex)) {
		fprintf(stderr, "dstack-sim: need --socket, --instance-id, --app-id and exactly one of "
			"--kms-root-key-file, --kms-root-key, --fixture\n\n");
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int setup_agent(const struct options *o, struct sim_agent *a)
{
	uint8_t app_id[20];

	a->app_name = o->app_name ? o->app_name : "dstack-sim";
	a->app_compose = simulated_app_compose;
	{
		struct sha256_ctx h;

		sha256_init(&h);
		sha256_update(&h, strlen(simulated_app_compose), (const uint8_t *)simulated_app_compose);
		sha256_digest(&h, SHA256_DIGEST_SIZE, a->compose_hash);
	}
	if (parse_hex_option("instance-id", o->instance_id_hex, a->instance_id, 20) < 0 ||
	    (o->app_id_hex && parse_hex_option("app-id", o->app_id_hex, app_id, 20) < 0) ||
	    (o->compose_hash_hex &&
	     parse_hex_option("compose-hash", o->compose_hash_hex, a->compose_hash, 32) < 0))
		return -EINVAL;
	a->app_sk = secret_alloc(32);
	if (!a->app_sk)
		return -ENOMEM;
	if (!o->fixture) {
		memcpy(a->app_id, app_id, 20);
		return derive_from_root(o, a);
	}
	if (load_fixture(o->fixture, a) < 0)
		return -EINVAL;
	if (o->app_id_hex && memcmp(app_id, a->app_id, 20)) {
		fprintf(stderr, "dstack-sim: --app-id differs from the fixture's app id, whose KMS "
			"signature is only valid for its own app id\n");
		return -EINVAL;
	}
	return 0;
}

/* The simulated agent API behind the shared HTTP server. */
static int serve_request(void *ctx, const struct http_request *req, struct buf *reply)
{
	return sim_handle_request(ctx, req->path, req->content_type[0] ? req->content_type : NULL,
				  req->body, req->content_length, reply);
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct sim_agent agent = { 0 };
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigset_t block, wait_mask;
	int fds[2], nfds = 0, r;
	unsigned port = 0;
	char ready[4096], root_addr[41];
	uint8_t root[20];

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	banner();
	if (setup_agent(&o, &agent) < 0) {
		r = 1;
		goto out;
	}

	/* Block the stop signals except inside ppoll, so none is lost between checks. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGINT);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = listen_unix(o.socket_path);
	if (r < 0) {
		r = 1;
		goto out;
	}
	fds[nfds++] = r;
	if (o.listen) {
		r = listen_tcp(o.listen, &port);
		if (r < 0) {
			r = 1;
			goto out;
		}
		fds[nfds++] = r;
	}

	crypto_address_from_pubkey(agent.kms_root_pub, root);
	hex_encode(root_addr, root, 20);
	if (port)
		snprintf(ready, sizeof(ready), "unix:%s\nhttp://127.0.0.1:%u\n", o.socket_path, port);
	else
		snprintf(ready, sizeof(ready), "unix:%s\n", o.socket_path);
	printf("dstack-sim: KMS root 0x%s%s; listening on\n%s", root_addr,
	       agent.from_fixture ? " (public fixture)" : "", ready);
	fflush(stdout);
	if (o.ready_file && (r = write_ready_file(o.ready_file, ready)) < 0) {
		fprintf(stderr, "dstack-sim: %s: %s\n", o.ready_file, strerror(-r));
		r = 1;
		goto out;
	}

	r = http_serve(&(struct http_server){ .max_header = SIM_MAX_HEADER, .max_body = SIM_MAX_BODY,
					      .handler = serve_request, .ctx = &agent },
		       fds, nfds, &wait_mask, &stop_requested);
	if (r < 0)
		fprintf(stderr, "dstack-sim: %s\n", strerror(-r));
	r = r < 0 ? 1 : 0;
	fprintf(stderr, "dstack-sim: stopped\n");
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (nfds)
		unlink(o.socket_path);
	if (o.ready_file)
		unlink(o.ready_file);
	secret_free(agent.app_sk, 32);
	return r;
}
