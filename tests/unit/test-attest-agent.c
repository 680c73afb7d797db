/* SPDX-License-Identifier: MIT */
/*
 * The guest agent client against build/dstack-sim on a temporary unix socket (own KMS root
 * and the public fixture), and against broken agents: early close, non-JSON, wrong key
 * length, HTTP errors, a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "attest/internal.h"
#include "chain/chain.h"
#include "common/common.h"
#include "net/net.h"
#include "netlink/netlink.h"

#define FIXTURE "attest/sim/dstack-simulator-chain.json"
#define FIXTURE_ROOT "a7f6043c29f9cc1d9d6acf554c53e0c6792aaeaf"
#define FIXTURE_APP_ID "5bb4ff9a3837357f19dc176407a5709c62eb6c56"
#define KMS_ROOT_KEY "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
#define APP_ID "00000000000000000000000000000000c0ffee01"
#define INSTANCE_A "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0"
#define INSTANCE_B "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"

struct sim {
	pid_t pid;
	char dir[64], socket[96], ready[96];
};

static const char *build_dir(void)
{
	const char *o = getenv("O");

	return o && *o ? o : "build";
}

/* Start dstack-sim (app_id: own KMS root; NULL: the fixture) and wait (bounded) until ready. */
static void sim_start_app(struct sim *s, const char *instance, const char *app_id)
{
	char bin[256];
	struct stat st;

	strcpy(s->dir, "/tmp/attest-test-XXXXXX");
	cr_assert_not_null(mkdtemp(s->dir));
	snprintf(s->socket, sizeof(s->socket), "%s/agent.sock", s->dir);
	snprintf(s->ready, sizeof(s->ready), "%s/ready", s->dir);
	snprintf(bin, sizeof(bin), "%s/dstack-sim", build_dir());
	s->pid = fork();
	cr_assert_geq(s->pid, 0);
	if (s->pid == 0) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

		dup2(devnull, 1);
		dup2(devnull, 2);
		if (!app_id)
			execl(bin, bin, "--socket", s->socket, "--ready-file", s->ready, "--fixture",
			      FIXTURE, "--instance-id", instance, (char *)NULL);
		else
			execl(bin, bin, "--socket", s->socket, "--ready-file", s->ready, "--kms-root-key",
			      KMS_ROOT_KEY, "--app-id", app_id, "--instance-id", instance, "--app-name",
			      "attest-test", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500 && stat(s->ready, &st) < 0; i++)
		usleep(10000);
	cr_assert_eq(stat(s->ready, &st), 0, "dstack-sim did not become ready (built? %s)", bin);
}

static void sim_start(struct sim *s, const char *instance, bool fixture)
{
	sim_start_app(s, instance, fixture ? NULL : APP_ID);
}

static void sim_stop(struct sim *s)
{
	int status;

	kill(s->pid, SIGTERM);
	cr_assert_eq(waitpid(s->pid, &status, 0), s->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dstack-sim exit status %d", status);
	/* A clean stop removes the socket and the ready file. */
	cr_assert_neq(access(s->socket, F_OK), 0);
	rmdir(s->dir);
}

static void hex_to(uint8_t *out, size_t n, const char *hex)
{
	cr_assert_eq(hex_decode_exact(out, n, hex, strlen(hex)), (int)n);
}

static void kms_root_address(uint8_t root[20])
{
	uint8_t sk[32], pub[64];

	hex_to(sk, 32, KMS_ROOT_KEY);
	cr_assert_eq(crypto_pubkey_from_secret(sk, pub), 0);
	crypto_address_from_pubkey(pub, root);
}

Test(attest_agent, info_key_and_quote_from_the_simulator)
{
	struct sim s;
	struct attest_client *c;
	struct attest_info info;
	struct attest_kms_signatures sigs;
	struct attest_quote q;
	uint8_t *key = secret_alloc(32), key_pub[64], root[20], app_id[20], instance[20];
	uint8_t report[40];

	sim_start(&s, INSTANCE_A, false);
	cr_assert_eq(attest_client_new(s.socket, &c), 0);

	cr_assert_eq(attest_get_info(c, &info), 0, "%s", attest_client_error(c));
	hex_to(app_id, 20, APP_ID);
	hex_to(instance, 20, INSTANCE_A);
	cr_assert_eq(memcmp(info.app_id, app_id, 20), 0);
	cr_assert_eq(memcmp(info.instance_id, instance, 20), 0);
	cr_assert_str_eq(info.app_name, "attest-test");
	cr_assert_not_null(strstr(info.key_provider_info, "SIMULATOR"), "says it is a simulator");
	cr_assert_eq(info.tcb_info[0], '{', "tcb_info is a JSON document in a string");
	attest_info_clear(&info);

	cr_assert_eq(attest_get_key(c, "some/path", "some-purpose", key, &sigs), 0, "%s",
		     attest_client_error(c));
	cr_assert_eq(crypto_pubkey_from_secret(key, key_pub), 0);
	kms_root_address(root);
	struct attest_key_claim chain = { key_pub, "some-purpose", app_id, NULL, &sigs };
	struct attest_expect expect = { "some-purpose", app_id, root };
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_VALID);

	for (size_t i = 0; i < sizeof(report); i++)
		report[i] = (uint8_t)(i * 3 + 1);
	cr_assert_eq(attest_get_quote(c, report, sizeof(report), &q), 0, "%s",
		     attest_client_error(c));
	cr_assert_eq(memcmp(q.report_data, report, sizeof(report)), 0);
	for (size_t i = sizeof(report); i < 64; i++)
		cr_assert_eq(q.report_data[i], 0, "zero padded");
	/* TDX quote v4: version 4, TEE type 0x81, report data at offset 568. */
	cr_assert_geq(q.quote_len, 632);
	cr_assert_eq(q.quote[0], 4);
	cr_assert_eq(q.quote[4], 0x81);
	cr_assert_eq(memcmp(q.quote + 568, report, sizeof(report)), 0);
	attest_quote_clear(&q);

	/* 64 bytes with a 0x prefix are 64 bytes; one more is refused, and the reply says so. */
	{
		struct http_target t = { .unix_socket = s.socket };
		struct http_reply reply;
		char body[256];

		snprintf(body, sizeof(body), "{\"report_data\":\"0x%0128d\"}", 0);
		cr_assert_eq(http_post(&t, "/GetQuote", NULL, body, strlen(body), &reply), 0);
		cr_assert_eq(reply.status, 200, "%s", (const char *)reply.body.data);
		http_reply_clear(&reply);
		snprintf(body, sizeof(body), "{\"report_data\":\"0x%0130d\"}", 0);
		cr_assert_eq(http_post(&t, "/GetQuote", NULL, body, strlen(body), &reply), 0);
		cr_assert_eq(reply.status, 400);
		cr_assert_not_null(strstr((const char *)reply.body.data, "longer than 64 bytes"));
		http_reply_clear(&reply);
	}
	uint8_t too_long[ATTEST_REPORT_DATA_MAX + 1] = { 0 };
	cr_assert_eq(attest_get_quote(c, too_long, sizeof(too_long), &q), -EMSGSIZE);
	cr_assert_not_null(strstr(attest_client_error(c), "at most 64"), "%s", attest_client_error(c));

	attest_client_free(c);
	secret_free(key, 32);
	sim_stop(&s);
}

Test(attest_agent, fixture_simulator_serves_the_public_chain)
{
	struct sim s;
	struct attest_client *c;
	struct attest_info info;
	struct attest_kms_signatures sigs;
	uint8_t *key = secret_alloc(32), key_pub[64], root[20], app_id[20], want[32];

	sim_start(&s, INSTANCE_A, true);
	cr_assert_eq(attest_client_new(s.socket, &c), 0);
	cr_assert_eq(attest_get_info(c, &info), 0, "%s", attest_client_error(c));
	hex_to(app_id, 20, FIXTURE_APP_ID);
	cr_assert_eq(memcmp(info.app_id, app_id, 20), 0);
	attest_info_clear(&info);

	/* The fixture's own derived key, from the simulator's HKDF. */
	cr_assert_eq(attest_get_key(c, "/test/path", "test-purpose", key, &sigs), 0);
	hex_to(want, 32, "b9fbb7171185c421c58610a2acba8ceae93623ae47815618cbad1e98fc042cb7");
	cr_assert_eq(memcmp(key, want, 32), 0);
	cr_assert_eq(crypto_pubkey_from_secret(key, key_pub), 0);
	hex_to(root, 20, FIXTURE_ROOT);
	struct attest_key_claim chain = { key_pub, "test-purpose", app_id, NULL, &sigs };
	struct attest_expect expect = { "test-purpose", app_id, root };
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_VALID);

	attest_client_free(c);
	secret_free(key, 32);
	sim_stop(&s);
}

/* What an independent implementation says the address of a secret key is. */
static void cast_address(const uint8_t sk[32], uint8_t addr[20])
{
	char hex[65], cmd[256], out[128] = "";
	FILE *f;

	hex_encode(hex, sk, 32);
	snprintf(cmd, sizeof(cmd), "node_modules/.bin/cast wallet address --private-key 0x%s", hex);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(out, sizeof(out), f), "cast printed nothing");
	pclose(f);
	out[strcspn(out, "\n")] = '\0';
	hex_to(addr, 20, out);
}

Test(attest_agent, identity_is_deterministic_per_instance_and_matches_cast)
{
	struct attest_node_secrets *sa = attest_node_secrets_new(), *sa2 = attest_node_secrets_new();
	struct attest_node_secrets *sb = attest_node_secrets_new();
	struct attest_identity a, a2, b;
	struct attest_client *c;
	uint8_t root[20], cast_addr[20], wg_pub[32];
	struct sim s;

	sim_start(&s, INSTANCE_A, false);
	cr_assert_eq(attest_client_new(s.socket, &c), 0);
	cr_assert_eq(attest_load_identity(c, &a, sa), 0, "%s", attest_client_error(c));
	attest_client_free(c);
	sim_stop(&s);

	/* A restart of the same instance. */
	sim_start(&s, INSTANCE_A, false);
	cr_assert_eq(attest_client_new(s.socket, &c), 0);
	cr_assert_eq(attest_load_identity(c, &a2, sa2), 0, "%s", attest_client_error(c));
	attest_client_free(c);
	sim_stop(&s);

	sim_start(&s, INSTANCE_B, false);
	cr_assert_eq(attest_client_new(s.socket, &c), 0);
	cr_assert_eq(attest_load_identity(c, &b, sb), 0, "%s", attest_client_error(c));
	attest_client_free(c);
	sim_stop(&s);

	cr_assert_eq(memcmp(&a, &a2, sizeof(a)), 0, "same instance, same identity");
	cr_assert_eq(memcmp(sa, sa2, sizeof(*sa)), 0);
	cr_assert_eq(memcmp(a.app_id, b.app_id, 20), 0, "one app");
	cr_assert_neq(memcmp(a.node_pubkey, b.node_pubkey, 64), 0, "two instances, two node keys");
	cr_assert_neq(memcmp(a.wg_public_key, b.wg_public_key, 32), 0);
	cr_assert_eq(memcmp(a.app_pubkey, b.app_pubkey, 64), 0, "one app key");

	cast_address(sa->node_key, cast_addr);
	cr_assert_eq(memcmp(cast_addr, a.node_address, 20), 0, "node address as cast computes it");
	cr_assert_eq(x25519_public_from_private(wg_pub, sa->wg_private_key), 0);
	cr_assert_eq(memcmp(wg_pub, a.wg_public_key, 32), 0);

	kms_root_address(root);
	struct attest_key_claim chain = { a.node_pubkey, ATTEST_NODE_KEY_PURPOSE, a.app_id, a.app_pubkey,
				      &a.chain };
	struct attest_expect expect = { ATTEST_NODE_KEY_PURPOSE, a.app_id, root };
	cr_assert_eq(attest_verify_kms_chain(&chain, &expect, NULL), ATTEST_VALID);

	attest_node_secrets_free(sa);
	attest_node_secrets_free(sa2);
	attest_node_secrets_free(sb);
}

/* The cluster secret of an instance of app_id, from a fresh simulator, as hex. */
static void cluster_secret_of(const char *instance, const char *app_id, char hex[65])
{
	struct attest_cluster_secret *secret = attest_cluster_secret_new();
	struct attest_client *c;
	struct sim s;

	cr_assert_not_null(secret);
	sim_start_app(&s, instance, app_id);
	cr_assert_eq(attest_client_new(s.socket, &c), 0);
	cr_assert_eq(attest_load_cluster_secret(c, secret), 0, "%s", attest_client_error(c));
	attest_client_free(c);
	sim_stop(&s);
	hex_encode(hex, secret->key, 32);
	attest_cluster_secret_free(secret);
}

/*
 * dstack-sim derives as the real KMS does (docs/keys.md, written again here in Python):
 * app_sk = HKDF(salt "RATLS", root, app_id || "app-key"), key = HKDF(salt "RATLS", app_sk,
 * path). So the cluster secret is one per app: the same on every instance, another for
 * another app id.
 */
Test(attest_agent, cluster_secret_is_per_app_as_the_kms_derives_it)
{
	static const char other_app[] = "00000000000000000000000000000000c0ffee02";
	char a[65], b[65], other[65], cmd[2048], *want;
	FILE *f;

	cluster_secret_of(INSTANCE_A, APP_ID, a);
	cluster_secret_of(INSTANCE_B, APP_ID, b);
	cluster_secret_of(INSTANCE_A, other_app, other);
	cr_assert_str_eq(a, b, "two instances of one app");
	cr_assert_str_neq(a, other, "another app id");

	const char *apps[] = { APP_ID, other_app }, *got[] = { a, other };
	for (int i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/python3 -c 'import hmac,hashlib,sys\n"
			 "def hkdf(ikm, info):\n"
			 "    prk = hmac.new(b\"RATLS\", ikm, hashlib.sha256).digest()\n"
			 "    return hmac.new(prk, info + bytes([1]), hashlib.sha256).digest()\n"
			 "app_sk = hkdf(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]) + "
			 "b\"app-key\")\n"
			 "print(hkdf(app_sk, sys.argv[3].encode()).hex())' %s %s %s",
			 KMS_ROOT_KEY, apps[i], ATTEST_CLUSTER_PSK_PATH);
		f = popen(cmd, "r");
		cr_assert_not_null(f);
		want = calloc(1, 80);
		cr_assert_not_null(fgets(want, 80, f), "python printed nothing");
		cr_assert_eq(pclose(f), 0);
		want[strcspn(want, "\n")] = '\0';
		cr_assert_str_eq(got[i], want, "app %s: GetKey differs from the documented HKDF", apps[i]);
		free(want);
	}
}

/* ---- broken agents ----------------------------------------------------------------------- */

enum broken_mode { CLOSE_EARLY, NOT_JSON, SHORT_KEY, HTTP_ERROR, HANG, NO_CHAIN };

struct broken_agent {
	enum broken_mode mode;
	int listen_fd;
	char dir[64], socket[96];
	pthread_t thread;
};

/* The broken agent's reply body, and its HTTP status line. */
static const char *canned_body(enum broken_mode mode, const char **status)
{
	*status = "200 OK";
	switch (mode) {
	case NOT_JSON:
		return "<html>hi</html>";
	case SHORT_KEY:
		return "{\"key\":\"abcd\",\"signature_chain\":[\"00\",\"00\"]}";
	case HTTP_ERROR:
		*status = "400 Bad Request";
		return "{\"error\":\"unknown \\u001b[31mthing\"}";
	case NO_CHAIN:
		return "{\"key\":\"0101010101010101010101010101010101010101010101010101010101010101\"}";
	default:
		return "";
	}
}

/* Serves each connection once, the broken way, until the test process ends. */
static void *broken_agent_run(void *arg)
{
	struct broken_agent *b = arg;
	char req[4096];

	for (int n = 0; n < 16; n++) {
		int fd = accept(b->listen_fd, NULL, NULL);
		const char *status, *body = canned_body(b->mode, &status);
		char reply[1024];
		int len;

		if (fd < 0)
			break;
		/* Take the request first, so every mode fails after connecting. */
		(void)!read(fd, req, sizeof(req));
		len = snprintf(reply, sizeof(reply), "HTTP/1.1 %s\r\nContent-Length: %zu\r\n"
			       "Connection: close\r\n\r\n%s", status, strlen(body), body);
		if (b->mode == HANG)
			sleep(3);
		else if (b->mode != CLOSE_EARLY)
			(void)!write(fd, reply, (size_t)len);
		close(fd);
	}
	return NULL;
}

static struct attest_client *broken_agent_start(struct broken_agent *b, enum broken_mode mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct attest_client *c;

	b->mode = mode;
	strcpy(b->dir, "/tmp/attest-broken-XXXXXX");
	cr_assert_not_null(mkdtemp(b->dir));
	snprintf(b->socket, sizeof(b->socket), "%s/agent.sock", b->dir);
	strcpy(sa.sun_path, b->socket);
	b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(b->listen_fd, 0);
	cr_assert_eq(bind(b->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(b->listen_fd, 8), 0);
	cr_assert_eq(pthread_create(&b->thread, NULL, broken_agent_run, b), 0);
	pthread_detach(b->thread);
	cr_assert_eq(attest_client_new(b->socket, &c), 0);
	attest_client_set_timeout(c, 500);
	return c;
}

static void broken_agent_cleanup(struct broken_agent *b)
{
	unlink(b->socket);
	rmdir(b->dir);
}

/* The call fails with r and one message that contains every given fragment. */
static void expect_key_failure(enum broken_mode mode, int want_r, const char *fragment)
{
	struct broken_agent b;
	struct attest_client *c = broken_agent_start(&b, mode);
	struct attest_kms_signatures sigs;
	uint8_t key[32];
	uint64_t t0 = now_ms();
	int r;

	memset(key, 0xee, sizeof(key));
	r = attest_get_key(c, "p", "q", key, &sigs);
	cr_assert_eq(r, want_r, "mode %d: got %d (%s)", mode, r, attest_client_error(c));
	cr_assert_not_null(strstr(attest_client_error(c), fragment), "mode %d: '%s' lacks '%s'",
			   mode, attest_client_error(c), fragment);
	cr_assert_not_null(strstr(attest_client_error(c), b.socket), "names the agent");
	cr_assert_lt(now_ms() - t0, 2500, "bounded by the client timeout");
	for (int i = 0; i < 32; i++)
		cr_assert(key[i] == 0 || key[i] == 0xee, "no half key left behind");
	attest_client_free(c);
	broken_agent_cleanup(&b);
}

Test(attest_agent_broken, closes_early)
{
	expect_key_failure(CLOSE_EARLY, -EIO, "Empty reply");
}

Test(attest_agent_broken, not_json)
{
	expect_key_failure(NOT_JSON, -EBADMSG, "reply is not JSON");
}

Test(attest_agent_broken, key_of_wrong_length)
{
	expect_key_failure(SHORT_KEY, -EBADMSG, "'key': 4 hex digits, expected 64");
}

Test(attest_agent_broken, key_without_chain)
{
	expect_key_failure(NO_CHAIN, -EBADMSG, "signature_chain");
}

Test(attest_agent_broken, http_error_body_is_shown_safely)
{
	/* The agent's text is repeated, its control characters are not. */
	expect_key_failure(HTTP_ERROR, -EINVAL, "HTTP 400: unknown ?[31mthing");
}

Test(attest_agent_broken, hang_is_bounded)
{
	expect_key_failure(HANG, -ETIMEDOUT, "no reply within 500 ms");
}

Test(attest_agent_broken, missing_socket_says_what_to_do)
{
	struct attest_client *c;
	struct attest_info info;

	cr_assert_eq(attest_client_new("/nonexistent/dstack.sock", &c), 0);
	cr_assert_eq(attest_get_info(c, &info), -ENOENT);
	cr_assert_not_null(strstr(attest_client_error(c), "DSTACK_SIMULATOR_ENDPOINT"));
	attest_client_free(c);
}

Test(attest_agent_broken, endpoint_resolution_follows_the_sdks)
{
	struct attest_client *c;

	setenv(ATTEST_AGENT_ENV, "http://127.0.0.1:8090", 1);
	cr_assert_eq(attest_client_new(NULL, &c), 0);
	cr_assert_str_eq(attest_client_endpoint(c), "http://127.0.0.1:8090");
	attest_client_free(c);
	cr_assert_eq(attest_client_new("/tmp/x.sock", &c), 0, "explicit beats the env");
	cr_assert_str_eq(attest_client_endpoint(c), "unix:/tmp/x.sock");
	attest_client_free(c);
	setenv(ATTEST_AGENT_ENV, "/run/sim.sock", 1);
	cr_assert_eq(attest_client_new(NULL, &c), 0);
	cr_assert_str_eq(attest_client_endpoint(c), "unix:/run/sim.sock");
	attest_client_free(c);
	/* As dstack-sim prints it: the scheme is not part of the path. */
	setenv(ATTEST_AGENT_ENV, "unix:/run/sim.sock", 1);
	cr_assert_eq(attest_client_new(NULL, &c), 0);
	cr_assert_str_eq(attest_client_endpoint(c), "unix:/run/sim.sock");
	attest_client_free(c);
	cr_assert_eq(attest_client_new("unix:///run/x.sock", &c), 0);
	cr_assert_str_eq(attest_client_endpoint(c), "unix:/run/x.sock");
	attest_client_free(c);
	unsetenv(ATTEST_AGENT_ENV);
}
