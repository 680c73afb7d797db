/* SPDX-License-Identifier: MIT */
/*
 * mesh: the agent's start-up and stop: identity from the guest agent, the KMS root, the
 * cluster secret, the registry handle, the sender, push, the interface lock, the transport
 * and the device, the control socket and the loop's sources; then, in reverse, the stop.
 */
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "attest/attest.h"
#include "chain/chain.h"
#include "common/common.h"
#include "mesh/internal.h"
#include "mesh/mesh.h"
#include "net/net.h"
#include "registry/registry.h"

#define TX_RETRY_MS 15000  /* a registration not seen on chain by then is sent again */

/*
 * One agent per interface: an abstract unix socket named after it, bound for the
 * agent's life. Interface names and abstract sockets are both per network namespace,
 * and the kernel releases the name when the process dies, however it dies.
 */
static int lock_interface(const char *ifname, int *fd_out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd, n;

	n = snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "dstack-p2p/interface/%s", ifname);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, len) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*fd_out = fd;
	return 0;
}

/* The funded key's address (for its nonce on chain); the key itself is wiped at once. */
static int fill_self(struct mesh_agent *a)
{
	struct mesh_self *self = &a->self;

	self->mode = a->cfg->mode;
	memcpy(self->instance_id, a->id.instance_id, 20);
	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD)
		memcpy(self->wg_public_key, a->id.wg_public_key, 32);
	self->listen_port = a->cfg->listen_port;
	self->keepalive = a->cfg->keepalive;
	self->reg_spacing_ms = TX_RETRY_MS;
	self->reg_max_per_hour = a->cfg->register_max_per_hour;
	self->chain_id = a->cfg->chain_id;
	return 0;
}

/* The KMS root from our own GetKey reply, checked against the P2P_KMS_ROOT pin. */
static int kms_root_from_identity(struct mesh_agent *a)
{
	uint8_t pin[20];
	char root[41];
	int r = attest_identity_kms_root(&a->id, a->self.kms_root);

	if (r < 0) {
		log_error("recovering the KMS root from our own key's signature chain: %s", r == -ENOKEY ?
			  "no KMS signature (a local key provider): no KMS vouches for this node" : errstr(r));
		return r == -ENOKEY ? -EBADR : r;
	}
	hex_encode(root, a->self.kms_root, 20);
	if (a->cfg->kms_root[0]) {
		hex_decode_exact(pin, 20, a->cfg->kms_root, strlen(a->cfg->kms_root));
		if (memcmp(pin, a->self.kms_root, 20)) {
			log_error("P2P_KMS_ROOT is %s, but our own key was issued by the KMS root 0x%s: "
				  "this CVM does not belong to the KMS you pinned", a->cfg->kms_root, root);
			return -EBADR;
		}
	}
	log_info("KMS root 0x%s (from our own key%s)", root, a->cfg->kms_root[0] ? ", as pinned" : "");
	return 0;
}

static int agent_start(struct mesh_agent *a)
{
	struct err_detail why = { "" };
	int r;

	if (!a->cfg->contract[0])
		return -EINVAL;
	memcpy(a->self.contract, a->cfg->contract_addr, 20);
	r = attest_client_new(NULL, &a->attest);
	if (r < 0)
		return r;
	a->secrets = attest_node_secrets_new();
	if (!a->secrets)
		return -ENOMEM;
	r = attest_load_identity(a->attest, &a->id, a->secrets);
	if (r < 0) {
		log_error("reading our identity from the guest agent: %s", attest_client_error(a->attest));
		return r;
	}
	hex_encode(a->instance_hex, a->id.instance_id, 20);
	if (memcmp(a->id.app_id, a->self.contract, 20)) {
		char app[41];

		hex_encode(app, a->id.app_id, 20);
		log_error("the guest agent says app id 0x%s, but the cluster contract is %s: this CVM was "
			  "not deployed as an app of this cluster, so no peer would accept it", app,
			  a->cfg->contract);
		return -EPERM;
	}
	fill_self(a);
	r = kms_root_from_identity(a);
	if (r < 0)
		return r;
	r = mesh_psk_open(&a->psk, a->cfg->psk && a->cfg->mode == REGISTRY_MODE_WIREGUARD, a->attest,
			  a->id.wg_public_key);
	if (r < 0) {
		log_error("reading the cluster secret (P2P_PSK=on) from the guest agent: %s",
			  r == -ENOMEM ? errstr(r) : attest_client_error(a->attest));
		return r;
	}
	a->self.features = mesh_psk_features(a->psk);
	log_info("instance 0x%s of cluster %s, %s mode", a->instance_hex, a->cfg->contract,
		 mesh_mode_name(a->cfg->mode));

	r = a->cfg->rpc_error < 0
		    ? a->cfg->rpc_error
		    : registry_handle_open(&a->reg, &a->cfg->rpc, a->self.contract, a->abort_flag);
	if (r < 0) {
		if (r == -EINVAL || r == -E2BIG)
			log_error("ETH_RPC_URL '%s' is not a comma-separated list of RPC URLs (http://, "
				  "https://, http+unix://, ipc:// or a socket path)%s", a->cfg->rpc_urls,
				  r == -E2BIG ? ", or it lists too many" : "");
		else
			log_error("RPC URL list '%s': %s", a->cfg->rpc_urls, errstr(r));
		return r == -EINVAL || r == -E2BIG ? -EBADR : r;
	}
	r = mesh_sender_open(&a->sender, a->reg, a->cfg, &why);
	if (r < 0) {
		log_error("reading the funded key: %s", why.text[0] ? why.text : errstr(r));
		return r == -ENOMEM ? r : -EBADR;
	}
	if (a->cfg->chain_id) {
		a->chain_confirmed = true;
		registry_handle_expect_chain_id(a->reg, a->cfg->chain_id);
	}
	r = agent_push_open(a);
	if (r < 0) {
		log_error("P2P_RPC_WS_URL '%s': %s", a->cfg->ws_url, r == -EINVAL ?
			  "auto needs an http:// or https:// URL in ETH_RPC_URL to derive ws(s):// from" : errstr(r));
		return r == -ENOMEM ? r : -EBADR;
	}

	if (a->cfg->mode == REGISTRY_MODE_WIREGUARD) {
		r = lock_interface(a->cfg->ifname, &a->iface_lock);
		if (r < 0) {
			log_error("interface %s: %s", a->cfg->ifname, r == -EADDRINUSE ?
				  "another agent manages it already (one agent per interface)" : errstr(r));
			return r == -EADDRINUSE ? -EBADR : r;
		}
		a->self.transport = a->cfg->transport;
		/* our UDP endpoint and/or gateway name */
		r = mesh_transport_open(&a->transport, a->cfg, a->id.instance_id, a->self.contract,
					a->secrets, &why);
		if (r < 0)
			log_error("%s", why.text[0] ? why.text : errstr(r));
		a->self.gateway = mesh_transport_gateway(a->transport);
		snprintf(a->self.endpoint, sizeof(a->self.endpoint), "%s",
			 mesh_transport_endpoint(a->transport));
		if (r == 0)
			r = mesh_device_open(&a->device, a->cfg, a->id.wg_public_key,
					     a->secrets->wg_private_key);
		if (r < 0)
			return r;
	} else {
		r = agent_gateway_url(a->cfg, a->instance_hex, a->self.endpoint, sizeof(a->self.endpoint));
		if (r < 0) {
			log_error("cannot tell our gateway URL (set DSTACK_GATEWAY_DOMAIN): %s", errstr(r));
			return r;
		}
	}
	log_info("our endpoint: %s", a->self.endpoint);

	r = control_listen(&a->control, a->cfg->control_path);
	if (r < 0) {
		log_error("control socket %s: %s", a->cfg->control_path,
			  r == -EADDRINUSE ? "another agent is running" : errstr(r));
		return r;
	}
	/* The loop's sources: a DNS server or a metrics listener is one more line here. */
	r = agent_add_control_sources(a);
	if (r == 0)
		r = agent_names_open(a);
	return r < 0 ? r : agent_metrics_open(a);
}

int mesh_agent_new(const struct mesh_config *cfg, const volatile sig_atomic_t *abort_flag,
		   struct mesh_agent **out)
{
	struct mesh_agent *a = calloc(1, sizeof(*a));
	int r;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	a->abort_flag = abort_flag;
	/*
	 * A fixed mmap threshold: an RPC reply of megabytes (an oversized or hostile one) is
	 * mapped and unmapped, not left in the heap; glibc's sliding threshold would otherwise
	 * rise after the first such free and keep the next ones for good.
	 */
	mallopt(M_MMAP_THRESHOLD, AGENT_MMAP_THRESHOLD);
	a->control.fd = -1;
	a->iface_lock = -1;
	mesh_state_init(&a->st);
	buf_init(&a->log, 1 << 20);
	http_global_init();
	r = agent_start(a);
	if (r < 0) {
		mesh_agent_free(a);
		return r;
	}
	*out = a;
	return 0;
}

void mesh_agent_free(struct mesh_agent *a)
{
	if (!a)
		return;
	control_close(&a->control);
	agent_names_close(a);
	mesh_device_close(a->device);
	mesh_psk_close(a->psk);
	if (a->iface_lock >= 0)
		close(a->iface_lock);
	agent_metrics_close(a);
	mesh_transport_close(a->transport); /* the relay thread signs with the node key: stop it first */
	agent_push_close(a);
	mesh_sender_close(a->sender);
	registry_handle_close(a->reg);
	attest_node_secrets_free(a->secrets);
	attest_client_free(a->attest);
	mesh_state_clear(&a->st);
	buf_clear(&a->log);
	free(a->published);
	free(a->before);
	free(a);
}
