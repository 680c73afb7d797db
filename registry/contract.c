/* SPDX-License-Identifier: MIT */
/*
 * The cluster contract's interface in one table: the functions the project calls, every
 * event the contract emits (argument names, types, indexed flags; the bounds of their
 * data follow from those) and its custom errors. The ABI codec, the follower and the
 * operator's event printer read it; the unit tests check it against forge's ABI artifact
 * of contracts/src/DstackClusterNFT.sol.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "registry/registry.h"

const char *const registry_functions[REGISTRY_FN_COUNT] = {
	/* the agent's: records, reads, leader calls */
	[REGISTRY_FN_GET_PEERS] = "getPeers()",
	[REGISTRY_FN_GET_PEER_BY_TOKEN] = "getPeerByToken(uint256)",
	[REGISTRY_FN_REGISTER_PEER] = REGISTRY_REGISTER_SIG,
	[REGISTRY_FN_NONCE_OF] = "nonceOf(address)",
	[REGISTRY_FN_TOKEN_OF_INSTANCE] = "tokenOfInstance(address)",
	[REGISTRY_FN_INSTANCE_IS_REGISTERED] = "instanceIsRegistered(address)",
	[REGISTRY_FN_KMS_ROOT] = "kmsRoot()",
	[REGISTRY_FN_LABEL_OF] = "labelOf(uint256)",
	[REGISTRY_FN_LEADER_ACTION_NONCE] = "leaderActionNonce(uint256)",
	[REGISTRY_FN_LEADER_STATE] = "leaderState()",
	[REGISTRY_FN_PEER_RECORD_TYPEHASH] = "PEER_RECORD_TYPEHASH()",
	[REGISTRY_FN_ELECT_LEADER_SIGNED] = "electLeaderSigned(uint256,uint256,bytes)",
	[REGISTRY_FN_LEADER_HEARTBEAT_SIGNED] = "leaderHeartbeatSigned(uint256,uint256,bytes)",
	[REGISTRY_FN_CAST_VOTE_SIGNED] = "castVoteSigned(uint256,uint256,bool,uint256,bytes)",
	/* the operator's: tokens and instances */
	[REGISTRY_FN_MINT_NODE_ACCESS] = "mintNodeAccess(address,string)",
	[REGISTRY_FN_BIND_INSTANCE] = "bindInstance(uint256,address)",
	[REGISTRY_FN_UNBIND_INSTANCE] = "unbindInstance(uint256)",
	[REGISTRY_FN_BURN] = "burn(uint256)",
	[REGISTRY_FN_TRANSFER_FROM] = "transferFrom(address,address,uint256)",
	/* policy and ownership */
	[REGISTRY_FN_ADD_COMPOSE_HASH] = "addComposeHash(bytes32)",
	[REGISTRY_FN_REMOVE_COMPOSE_HASH] = "removeComposeHash(bytes32)",
	[REGISTRY_FN_ADD_DEVICE] = "addDevice(bytes32)",
	[REGISTRY_FN_REMOVE_DEVICE] = "removeDevice(bytes32)",
	[REGISTRY_FN_SET_ALLOW_ANY_DEVICE] = "setAllowAnyDevice(bool)",
	[REGISTRY_FN_SET_BOOT_POLICY] = "setBootPolicy(uint8)",
	[REGISTRY_FN_SET_CLUSTER_CONFIG] = "setClusterConfig(uint256,uint8)",
	[REGISTRY_FN_SET_LEADER_LEASE] = "setLeaderLease(uint64)",
	[REGISTRY_FN_SET_PSK_EPOCH] = "setPskEpoch(uint64)",
	[REGISTRY_FN_SET_MINTING_POLICY] = "setMintingPolicy(uint256,bool)",
	[REGISTRY_FN_SET_REQUIRE_TCB_UP_TO_DATE] = "setRequireTcbUpToDate(bool)",
	[REGISTRY_FN_TRANSFER_OWNERSHIP] = "transferOwnership(address)",
	[REGISTRY_FN_ACCEPT_OWNERSHIP] = "acceptOwnership()",
	[REGISTRY_FN_WITHDRAW] = "withdraw(address)",
	/* the operator's views */
	[REGISTRY_FN_OWNER] = "owner()",
	[REGISTRY_FN_PENDING_OWNER] = "pendingOwner()",
	[REGISTRY_FN_OWNER_OF] = "ownerOf(uint256)",
	[REGISTRY_FN_INSTANCE_OF_TOKEN] = "instanceOfToken(uint256)",
	[REGISTRY_FN_ALLOWED_COMPOSE_HASHES] = "allowedComposeHashes(bytes32)",
	[REGISTRY_FN_ALLOWED_DEVICE_IDS] = "allowedDeviceIds(bytes32)",
	[REGISTRY_FN_ALLOW_ANY_DEVICE] = "allowAnyDevice()",
	[REGISTRY_FN_BOOT_POLICY] = "bootPolicy()",
	[REGISTRY_FN_CURRENT_LEADER] = "currentLeader()",
	[REGISTRY_FN_CURRENT_LEADER_TOKEN_ID] = "currentLeaderTokenId()",
	[REGISTRY_FN_LEADER_LEASE] = "leaderLease()",
	[REGISTRY_FN_LEADER_TERM] = "leaderTerm()",
	[REGISTRY_FN_LEADERSHIP_EXPIRY] = "leadershipExpiry()",
	[REGISTRY_FN_LIVE_TOKEN_BITMAP] = "liveTokenBitmap()",
	[REGISTRY_FN_MAX_NODES] = "maxNodes()",
	[REGISTRY_FN_MINT_PRICE] = "mintPrice()",
	[REGISTRY_FN_NETWORK_MODES] = "networkModes()",
	[REGISTRY_FN_NO_CONFIDENCE_VOTES] = "noConfidenceVotes()",
	[REGISTRY_FN_PEER_COUNT] = "peerCount()",
	[REGISTRY_FN_PSK_EPOCH] = "pskEpoch()",
	[REGISTRY_FN_PUBLIC_MINTING] = "publicMinting()",
	[REGISTRY_FN_REQUIRE_TCB_UP_TO_DATE] = "requireTcbUpToDate()",
	[REGISTRY_FN_REQUIRED_VOTES] = "requiredVotes()",
	[REGISTRY_FN_TOTAL_SUPPLY] = "totalSupply()",
	[REGISTRY_FN_VOTE_OF] = "voteOf(uint256)",
};

/*
 * Every event the contract emits (its own and what it inherits), declared as the
 * contract declares it: '!' marks an indexed argument, ":u" the unit the operator's tools
 * word it in (registry_put_worded). token_topic: the topic naming a token whose record
 * the event may change (the follower reads that record again), 0 for one that leaves
 * every record as it is.
 */
static const struct {
	const char *decl;
	uint8_t token_topic;
} event_decls[REGISTRY_EV_COUNT] = {
	/* the records: registered, updated, removed (burn, transfer, re-bind) */
	[REGISTRY_EV_PEER_REGISTERED] = { "PeerRegistered(uint256 !tokenId,address !instanceId,"
					  "bytes32 wgPublicKey,string endpoint,uint8 mode:r,uint64 nonce)",
					  1 },
	[REGISTRY_EV_PEER_UPDATED] = { "PeerUpdated(uint256 !tokenId,address !instanceId,"
				       "bytes32 wgPublicKey,string endpoint,uint8 mode:r,uint64 nonce)",
				       1 },
	[REGISTRY_EV_PEER_REMOVED] = { "PeerRemoved(uint256 !tokenId,address !instanceId,uint8 reason:R)",
				       1 },
	/* what comes with a removal, or leads to one: read too, a record is cheap to read */
	[REGISTRY_EV_INSTANCE_BOUND] = { "InstanceBound(uint256 !tokenId,address !instanceId)", 1 },
	[REGISTRY_EV_INSTANCE_UNBOUND] = { "InstanceUnbound(uint256 !tokenId,address !instanceId)", 1 },
	[REGISTRY_EV_TRANSFER] = { "Transfer(address !from,address !to,uint256 !tokenId)", 3 },
	/* no record changes */
	[REGISTRY_EV_NODE_ACCESS_MINTED] = { "NodeAccessMinted(uint256 !tokenId,address !to,string label)",
					     0 },
	[REGISTRY_EV_APPROVAL] = { "Approval(address !owner,address !approved,uint256 !tokenId)", 0 },
	[REGISTRY_EV_APPROVAL_FOR_ALL] = { "ApprovalForAll(address !owner,address !operator,bool approved)",
					   0 },
	[REGISTRY_EV_VOTE_CAST] = { "VoteCast(uint256 !voterTokenId,uint256 !targetTokenId,bool noConfidence,"
				    "uint256 votes,uint256 required)",
				    0 },
	[REGISTRY_EV_LEADER_CHANGED] = { "LeaderChanged(uint256 !previousTokenId,uint256 !newTokenId,"
					 "uint64 term,uint64 expiry:t,uint8 cause:C)",
					 0 },
	[REGISTRY_EV_LEADER_HEARTBEAT] = { "LeaderHeartbeat(uint256 !tokenId,uint64 expiry:t)", 0 },
	[REGISTRY_EV_LEADER_LEASE_SET] = { "LeaderLeaseSet(uint64 leaseSeconds:s)", 0 },
	[REGISTRY_EV_PSK_EPOCH_SET] = { "PskEpochSet(uint64 epochSeconds:s)", 0 },
	[REGISTRY_EV_CLUSTER_CONFIG_SET] = { "ClusterConfigSet(uint256 maxNodes,uint8 networkModes:m)", 0 },
	[REGISTRY_EV_MINTING_POLICY_SET] = { "MintingPolicySet(uint256 price:e,bool publicMinting)", 0 },
	[REGISTRY_EV_BOOT_POLICY_SET] = { "BootPolicySet(uint8 policy:p)", 0 },
	[REGISTRY_EV_ALLOW_ANY_DEVICE_SET] = { "AllowAnyDeviceSet(bool allowAny)", 0 },
	[REGISTRY_EV_REQUIRE_TCB_UP_TO_DATE_SET] = { "RequireTcbUpToDateSet(bool required)", 0 },
	[REGISTRY_EV_COMPOSE_HASH_ADDED] = { "ComposeHashAdded(bytes32 composeHash)", 0 },
	[REGISTRY_EV_COMPOSE_HASH_REMOVED] = { "ComposeHashRemoved(bytes32 composeHash)", 0 },
	[REGISTRY_EV_DEVICE_ADDED] = { "DeviceAdded(bytes32 deviceId)", 0 },
	[REGISTRY_EV_DEVICE_REMOVED] = { "DeviceRemoved(bytes32 deviceId)", 0 },
	[REGISTRY_EV_WITHDRAWN] = { "Withdrawn(address !to,uint256 amount:e)", 0 },
	[REGISTRY_EV_OWNERSHIP_TRANSFER_STARTED] = { "OwnershipTransferStarted(address !previousOwner,"
						     "address !newOwner)",
						     0 },
	[REGISTRY_EV_OWNERSHIP_TRANSFERRED] = { "OwnershipTransferred(address !previousOwner,"
						"address !newOwner)",
						0 },
};

/*
 * The custom errors of the contract (with OpenZeppelin's ERC721 and Ownable ones). Every
 * argument is a static type, one word each.
 */
const char *const registry_error_sigs[REGISTRY_ERROR_COUNT] = {
	"BadAppSignature(address,address)",
	"BadEndpointLength(uint256)",
	"BadKmsSignature(address,address)",
	"BadLeaderActionSignature(address,address)",
	"BadNodeSignature(address,address)",
	"BadPublicKeyLength(uint256)",
	"BadSignatureLength(uint256)",
	"ClusterFull(uint256)",
	"ERC721IncorrectOwner(address,uint256,address)",
	"ERC721InsufficientApproval(address,uint256)",
	"ERC721InvalidApprover(address)",
	"ERC721InvalidOperator(address)",
	"ERC721InvalidOwner(address)",
	"ERC721InvalidReceiver(address)",
	"ERC721InvalidSender(address)",
	"ERC721NonexistentToken(uint256)",
	"EndpointNotHttps()",
	"InstanceAlreadyBound(address,uint256)",
	"InstanceNotBound(address)",
	"InvalidLeaderLease(uint64)",
	"InvalidNetworkModes(uint8)",
	"InvalidPskEpoch(uint64)",
	"LabelTooLong(uint256,uint256)",
	"LeaderActionExpired(uint256,uint256)",
	"LeaderStillActive(uint256,uint64)",
	"MaxNodesBelowLiveTokens(uint256,uint256)",
	"MaxNodesOutOfRange(uint256,uint256)",
	"MintingNotPublic()",
	"MissingWireGuardKey()",
	"NetworkModeNotAllowed(uint8,uint8)",
	"NoLeader()",
	"NotCurrentLeader(uint256,uint256)",
	"NotLeader(address)",
	"NotNodeController(uint256,address)",
	"NotRegisteredNode(uint256)",
	"NotTokenOwner(uint256,address)",
	"NotTokenOwnerOrAdmin(uint256,address)",
	"OwnableInvalidOwner(address)",
	"OwnableUnauthorizedAccount(address)",
	"PeerNotFound(address)",
	"StaleNonce(uint64,uint64)",
	"TokenHasNoPeer(uint256)",
	"TokenIdOutOfRange(uint256)",
	"TokenNotBound(uint256)",
	"UnexpectedWireGuardKey()",
	"UnknownBootPolicy(uint8)",
	"UnknownNetworkMode(uint8)",
	"WireGuardKeyInUse(bytes32,uint256)",
	"WithdrawFailed(address,uint256)",
	"WrongMintPayment(uint256,uint256)",
	"ZeroAddress()",
	"ZeroInstanceId()",
	"ZeroKmsRoot()",
};

const struct eth_error_table registry_contract_errors = {
	.signatures = registry_error_sigs,
	.n = REGISTRY_ERROR_COUNT,
};

void registry_fn_selector(enum registry_fn fn, uint8_t out[static 4])
{
	abi_selector(registry_functions[fn], out);
}

static bool is_dynamic(const char *type)
{
	return !strcmp(type, "string") || !strcmp(type, "bytes");
}

/* One "type [!]name[:u]" of a declaration at *p, which moves past it and its comma. */
static int parse_param(const char **p, struct registry_event_param *q)
{
	size_t tl = strcspn(*p, " ,)"), nl;

	if (!tl || tl >= sizeof(q->type) || (*p)[tl] != ' ')
		return -EINVAL;
	memcpy(q->type, *p, tl);
	q->type[tl] = '\0';
	*p += tl + 1;
	q->indexed = **p == '!';
	*p += q->indexed;
	nl = strcspn(*p, ":,)");
	if (!nl || nl >= sizeof(q->name))
		return -EINVAL;
	memcpy(q->name, *p, nl);
	q->name[nl] = '\0';
	*p += nl;
	q->unit = **p == ':' ? (*p)[1] : 0;
	*p += **p == ':' ? 2 : 0;
	if (**p == ',')
		(*p)++;
	else if (**p != ')')
		return -EINVAL;
	return 0;
}

/* The canonical signature, the topics, and the bounds of the data from e's parameters. */
static int event_derive(struct registry_event *e)
{
	size_t at = strlen(e->name), head = 0, dyn = 0;
	int n;

	if (at + 1 >= sizeof(e->sig))
		return -EINVAL;
	memcpy(e->sig, e->name, at);
	e->sig[at++] = '(';
	e->ntopics = 1;
	for (size_t i = 0; i < e->nparams; i++) {
		const struct registry_event_param *q = &e->params[i];

		n = snprintf(e->sig + at, sizeof(e->sig) - at, "%s%s", i ? "," : "", q->type);
		if (n < 0 || (size_t)n >= sizeof(e->sig) - at)
			return -EINVAL;
		at += (size_t)n;
		if (q->indexed)
			e->ntopics++;
		else
			head++, dyn += is_dynamic(q->type);
	}
	if (at + 1 >= sizeof(e->sig) || e->ntopics > 4 || e->token_topic >= e->ntopics)
		return -EINVAL;
	e->sig[at++] = ')';
	e->sig[at] = '\0';
	/* A head word per argument; a dynamic one adds at least its length word and has no
	 * upper bound but the reply's. */
	e->min_data = (uint16_t)(32 * (head + dyn));
	e->max_data = dyn ? UINT16_MAX : (uint16_t)(32 * head);
	abi_event_topic(e->sig, e->topic0);
	return 0;
}

int registry_event_parse(const char *decl, uint8_t token_topic, struct registry_event *e)
{
	const char *open = strchr(decl, '('), *p;

	memset(e, 0, sizeof(*e));
	if (!open || open == decl || (size_t)(open - decl) >= sizeof(e->name))
		return -EINVAL;
	memcpy(e->name, decl, (size_t)(open - decl));
	e->token_topic = token_topic;
	for (p = open + 1; *p != ')'; e->nparams++)
		if (e->nparams == REGISTRY_EVENT_PARAMS_MAX || parse_param(&p, &e->params[e->nparams]) < 0)
			return -EINVAL;
	if (p[1])
		return -EINVAL;
	return event_derive(e);
}

static struct registry_event events[REGISTRY_EV_COUNT];
static pthread_once_t events_once = PTHREAD_ONCE_INIT;

static void events_init(void)
{
	/* The table is constant and the unit tests parse every entry: this cannot fail. */
	for (size_t i = 0; i < REGISTRY_EV_COUNT; i++)
		(void)registry_event_parse(event_decls[i].decl, event_decls[i].token_topic, &events[i]);
}

const struct registry_event *registry_event_get(enum registry_event_id id)
{
	pthread_once(&events_once, events_init);
	return &events[id];
}

const struct registry_event *registry_event_by_topic(const uint8_t topic0[static 32])
{
	pthread_once(&events_once, events_init);
	for (size_t i = 0; i < REGISTRY_EV_COUNT; i++)
		if (!memcmp(events[i].topic0, topic0, 32))
			return &events[i];
	return NULL;
}
