/* SPDX-License-Identifier: MIT */
/*
 * HTTP POST/GET over libcurl, to a URL or through a unix socket, bounded in time and size,
 * on a kept connection (struct http_conn) or a fresh one per request.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "common/common.h"
#include "net/net.h"

#define HTTP_DEFAULT_TIMEOUT_MS 10000
#define HTTP_DEFAULT_CONNECT_MS 3000

/*
 * curl reads every reply into buffers of its own before handing it to on_body, GetKey's
 * key hex included, and frees them unwiped. Its allocator here wipes what it frees.
 */
static void curl_free_wiped(void *p)
{
	if (!p)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

static void *curl_realloc_wiped(void *p, size_t n)
{
	size_t old;
	void *q;

	if (!p)
		return malloc(n);
	if (!n) {
		curl_free_wiped(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	curl_free_wiped(p);
	return q;
}

static char *curl_strdup(const char *s)
{
	return strdup(s);
}

/*
 * curl_global_init initialises libssh2 (Debian's libcurl links it for scp/sftp), and
 * libssh2 then loads all of OpenSSL's algorithms and engines: 2-3 MB of OpenSSL pages
 * resident in the agent, for protocols it never enables (CURLOPT_PROTOCOLS_STR). When
 * libssh2 is in the process, initialise it first without its crypto; curl's own
 * libssh2_init then only counts.
 */
static void libssh2_init_without_crypto(void)
{
	int (*init)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "libssh2_init");

	if (init)
		init(0x0001);  /* LIBSSH2_INIT_NO_CRYPTO */
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_result;

/* curl_global_init is not thread-safe: run once, whichever thread asks first. */
static void global_init_once(void)
{
	libssh2_init_without_crypto();
	if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, curl_free_wiped, curl_realloc_wiped,
				 curl_strdup, calloc) != CURLE_OK)
		global_result = -EIO;
}

int http_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return global_result;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct buf *b = userdata;
	size_t n = size * nmemb;

	/* Returning less than n makes curl abort with CURLE_WRITE_ERROR. */
	return buf_append(b, data, n) < 0 ? 0 : n;
}

/* curl calls this at least once a second while it waits: nonzero aborts the request. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	const volatile sig_atomic_t *abort_flag = userdata;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return *abort_flag != 0;
}

static int curl_to_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		return -EMSGSIZE;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/*
 * A kept connection is one curl handle reused request after request: curl keeps the TCP
 * (and TLS) connection, the CA store and the TLS session in it. Its buffers hold the last
 * reply until the next one or http_conn_free, so requests whose replies hold keys use none.
 */
struct http_conn {
	CURL *curl;
};

int http_conn_new(struct http_conn **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void http_conn_free(struct http_conn *conn)
{
	if (!conn)
		return;
	if (conn->curl)
		curl_easy_cleanup(conn->curl);
	free(conn);
}

/* The URL of target + path; "http://host:8545/" + "/Info" without a double slash. */
static int request_url(const struct http_target *t, const char *path, char *url, size_t cap,
		       struct http_reply *reply)
{
	int r;

	if (t->unix_socket) {
		struct stat st;

		if (stat(t->unix_socket, &st) < 0) {
			int e = errno;  /* snprintf may change errno */

			snprintf(reply->error, sizeof(reply->error), "%s: %s", t->unix_socket, strerror(e));
			return -e;
		}
		r = snprintf(url, cap, "http://localhost%s", path);
	} else {
		size_t n = strlen(t->base_url);

		while (n && t->base_url[n - 1] == '/')
			n--;
		r = snprintf(url, cap, "%.*s%s", (int)n, t->base_url, path);
	}
	return r < 0 || (size_t)r >= cap ? -ENAMETOOLONG : 0;
}

static void set_options(CURL *curl, const struct http_target *t, const char *url,
			struct http_reply *reply)
{
	curl_easy_setopt(curl, CURLOPT_URL, url);
	if (t->unix_socket)
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, t->unix_socket);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, t->timeout_ms ? t->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
			 t->connect_timeout_ms ? t->connect_timeout_ms : HTTP_DEFAULT_CONNECT_MS);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply->body);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, reply->error);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "dstack-p2p");
	if (t->ca_file)
		curl_easy_setopt(curl, CURLOPT_CAINFO, t->ca_file);
	if (t->abort_flag) {
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)t->abort_flag);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	}
}

static struct curl_slist *set_post(CURL *curl, const char *content_type, const void *body,
				   size_t body_len)
{
	struct curl_slist *headers = NULL, *h;
	char ctype[128];

	snprintf(ctype, sizeof(ctype), "Content-Type: %s",
		 content_type ? content_type : "application/json");
	headers = curl_slist_append(headers, ctype);
	/* No "Expect: 100-continue" round trip for larger bodies. */
	h = headers ? curl_slist_append(headers, "Expect:") : NULL;
	if (!h) {
		curl_slist_free_all(headers);
		return NULL;
	}
	headers = h;
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	return headers;
}

/*
 * The handle for one request: the kept one (or a new one kept from now on) with a
 * connection, a fresh one without.
 */
static CURL *request_handle(struct http_conn *conn)
{
	if (!conn)
		return curl_easy_init();
	if (!conn->curl)
		conn->curl = curl_easy_init();
	return conn->curl;
}

/*
 * After a request: a kept handle forgets this request's options (the reply, error buffer
 * and body pointers die with the caller's frame) but keeps its connection; after a
 * transport failure it is closed, so the next request connects anew. A fresh handle is
 * closed, and curl's allocator wipes its buffers.
 */
static void request_done(struct http_conn *conn, CURL *curl, int r)
{
	if (conn && r == 0) {
		curl_easy_reset(curl);
		return;
	}
	curl_easy_cleanup(curl);
	if (conn)
		conn->curl = NULL;
}

static int http_request(const struct http_target *t, const char *path, const char *content_type,
			const void *body, size_t body_len, bool post, struct http_reply *reply)
{
	struct curl_slist *headers = NULL;
	char url[2048];
	CURLcode c;
	CURL *curl;
	int r;

	memset(reply, 0, sizeof(*reply));
	buf_init(&reply->body, t->max_reply);
	r = http_global_init();
	if (r < 0)
		return r;
	r = request_url(t, path, url, sizeof(url), reply);
	if (r < 0)
		return r;
	if (t->abort_flag && *t->abort_flag) {
		snprintf(reply->error, sizeof(reply->error), "cancelled");
		return -ECANCELED;
	}
	curl = request_handle(t->conn);
	if (!curl)
		return -ENOMEM;
	set_options(curl, t, url, reply);
	if (post) {
		headers = set_post(curl, content_type, body, body_len);
		if (!headers) {
			request_done(t->conn, curl, -ENOMEM);
			return -ENOMEM;
		}
	}
	c = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
	if (c != CURLE_OK && !reply->error[0])
		snprintf(reply->error, sizeof(reply->error), "%s", curl_easy_strerror(c));
	if (c == CURLE_WRITE_ERROR)
		snprintf(reply->error, sizeof(reply->error), "reply larger than %zu bytes",
			 reply->body.max);
	r = curl_to_errno(c);
	request_done(t->conn, curl, r);
	curl_slist_free_all(headers);
	if (!r)
		r = buf_terminate(&reply->body);
	return r;
}

int http_post(const struct http_target *target, const char *path, const char *content_type,
	      const void *body, size_t body_len, struct http_reply *reply)
{
	return http_request(target, path, content_type, body, body_len, true, reply);
}

int http_get(const struct http_target *target, const char *path, struct http_reply *reply)
{
	return http_request(target, path, NULL, NULL, 0, false, reply);
}

void http_reply_clear(struct http_reply *reply)
{
	if (reply)
		buf_clear(&reply->body);
}
