/* SPDX-License-Identifier: MIT */
/*
 * netem-queue: loss and delay for the benchmarks on a kernel without sch_netem. It takes
 * the packets an iptables NFQUEUE rule hands it (netfilter queue over libmnl, metadata
 * only), drops each with probability LOSS_PERCENT and lets the rest go DELAY_MS after
 * they arrived, in order (a fixed delay keeps FIFO, so one batch verdict releases all
 * that are due). At most 4096 packets wait, as netem's default limit is 1000: more are
 * dropped by the kernel. Runs until SIGTERM/SIGINT; prints what it did on stderr then.
 *
 *   iptables -A OUTPUT -o eth0 -j NFQUEUE --queue-num 7 --queue-bypass
 *   netem-queue 7 10 1.0        # 10 ms, 1 % loss
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAXLEN 4096

struct held {
	uint32_t id;
	uint64_t due_us;
};

static volatile sig_atomic_t stop;
static struct held ring[MAXLEN];
static size_t head, count;
static uint64_t passed, dropped, overflow;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct nlmsghdr *queue_header(void *buf, int type, uint16_t queue)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfg;

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_UNSPEC;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = htons(queue);
	return nlh;
}

static int send_msg(struct mnl_socket *nl, struct nlmsghdr *nlh)
{
	return mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

static int bind_queue(struct mnl_socket *nl, uint16_t queue)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh = queue_header(buf, NFQNL_MSG_CONFIG, queue);
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET) };
	struct nfqnl_msg_config_params params = { .copy_range = 0, .copy_mode = NFQNL_COPY_META };
	int r;

	mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
	if ((r = send_msg(nl, nlh)) < 0)
		return r;
	nlh = queue_header(buf, NFQNL_MSG_CONFIG, queue);
	mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);
	mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(MAXLEN));
	return send_msg(nl, nlh);
}

static int verdict(struct mnl_socket *nl, uint16_t queue, int type, uint32_t id, uint32_t what)
{
	uint8_t buf[128];
	struct nlmsghdr *nlh = queue_header(buf, type, queue);
	struct nfqnl_msg_verdict_hdr vh = { .verdict = htonl(what), .id = htonl(id) };

	mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(vh), &vh);
	return send_msg(nl, nlh);
}

/* Everything due: one batch verdict for the newest of them (ids grow in arrival order). */
static int release_due(struct mnl_socket *nl, uint16_t queue)
{
	uint64_t now = now_us();
	uint32_t last = 0;
	size_t n = 0;

	while (count && ring[head].due_us <= now) {
		last = ring[head].id;
		head = (head + 1) % MAXLEN;
		count--;
		n++;
	}
	if (!n)
		return 0;
	passed += n;
	return verdict(nl, queue, NFQNL_MSG_VERDICT_BATCH, last, NF_ACCEPT);
}

static double random_unit(void)
{
	uint32_t x = 0;

	if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
		x = (uint32_t)rand();
	return x / 4294967296.0;
}

struct ctx {
	struct mnl_socket *nl;
	uint16_t queue;
	uint64_t delay_us;
	double loss;
};

static int packet_cb(const struct nlmsghdr *nlh, void *data)
{
	struct ctx *c = data;
	const struct nlattr *a;

	if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET)
		return MNL_CB_OK;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
		const struct nfqnl_msg_packet_hdr *ph;
		uint32_t id;

		if (mnl_attr_get_type(a) != NFQA_PACKET_HDR || mnl_attr_get_payload_len(a) < sizeof(*ph))
			continue;
		ph = mnl_attr_get_payload(a);
		id = ntohl(ph->packet_id);
		if (c->loss > 0 && random_unit() * 100.0 < c->loss) {
			dropped++;
			return verdict(c->nl, c->queue, NFQNL_MSG_VERDICT, id, NF_DROP) < 0 ? MNL_CB_ERROR
											    : MNL_CB_OK;
		}
		if (count == MAXLEN) {
			overflow++;
			return verdict(c->nl, c->queue, NFQNL_MSG_VERDICT, id, NF_DROP) < 0 ? MNL_CB_ERROR
											    : MNL_CB_OK;
		}
		ring[(head + count) % MAXLEN] = (struct held){ id, now_us() + c->delay_us };
		count++;
	}
	return MNL_CB_OK;
}

int main(int argc, char **argv)
{
	static uint8_t buf[65536];
	struct ctx c = { 0 };
	int bufsize = 8 << 20;

	if (argc != 4) {
		fprintf(stderr, "usage: netem-queue QUEUE_NUM DELAY_MS LOSS_PERCENT\n");
		return 2;
	}
	c.queue = (uint16_t)atoi(argv[1]);
	c.delay_us = (uint64_t)(atof(argv[2]) * 1000.0);
	c.loss = atof(argv[3]);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	c.nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!c.nl || mnl_socket_bind(c.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("netem-queue: netlink socket");
		return 1;
	}
	/* A busy link queues thousands of packets' metadata: room, so ENOBUFS stays rare. */
	setsockopt(mnl_socket_get_fd(c.nl), SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize));
	if (bind_queue(c.nl, c.queue) < 0) {
		perror("netem-queue: binding the queue");
		return 1;
	}
	while (!stop) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(c.nl), .events = POLLIN };
		int timeout = -1;

		if (count) {
			uint64_t now = now_us(), due = ring[head].due_us;

			timeout = due > now ? (int)((due - now + 999) / 1000) : 0;
		}
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
			break;
		if (pfd.revents & POLLIN) {
			ssize_t n = recv(mnl_socket_get_fd(c.nl), buf, sizeof(buf), MSG_DONTWAIT);

			if (n > 0 && mnl_cb_run(buf, (size_t)n, 0, 0, packet_cb, &c) < 0)
				break;
			if (n < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
				break;
		}
		if (release_due(c.nl, c.queue) < 0)
			break;
	}
	/* Whatever still waits goes now, so nothing stays queued after we exit. */
	if (count)
		verdict(c.nl, c.queue, NFQNL_MSG_VERDICT_BATCH, ring[(head + count - 1) % MAXLEN].id,
			NF_ACCEPT);
	fprintf(stderr, "netem-queue %u: %llu passed, %llu dropped (loss), %llu dropped (queue full)\n",
		c.queue, (unsigned long long)passed, (unsigned long long)dropped,
		(unsigned long long)overflow);
	mnl_socket_close(c.nl);
	return 0;
}
