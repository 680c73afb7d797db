/* SPDX-License-Identifier: MIT */
/* The cluster contract's custom errors, by signature, for naming its reverts. */
#include "common/common.h"
#include "registry/registry.h"

/*
 * The custom errors of contracts/src/DstackClusterNFT.sol (with OpenZeppelin's ERC721 and
 * Ownable ones). Every argument is a static type, one word each. The unit tests check this
 * table against the compiled ABI in contracts/out, so it cannot drift unnoticed.
 */
static const char *const signatures[] = {
	"BadAppSignature(address,address)", "BadEndpointLength(uint256)",
	"BadKmsSignature(address,address)", "BadLeaderActionSignature(address,address)",
	"BadNodeSignature(address,address)",
	"BadPublicKeyLength(uint256)", "BadSignatureLength(uint256)", "ClusterFull(uint256)",
	"ERC721IncorrectOwner(address,uint256,address)", "ERC721InsufficientApproval(address,uint256)",
	"ERC721InvalidApprover(address)", "ERC721InvalidOperator(address)",
	"ERC721InvalidOwner(address)", "ERC721InvalidReceiver(address)",
	"ERC721InvalidSender(address)", "ERC721NonexistentToken(uint256)", "EndpointNotHttps()",
	"InstanceAlreadyBound(address,uint256)", "InstanceNotBound(address)",
	"InvalidLeaderLease(uint64)", "InvalidNetworkModes(uint8)", "LabelTooLong(uint256,uint256)",
	"LeaderActionExpired(uint256,uint256)", "LeaderStillActive(uint256,uint64)", "MaxNodesBelowLiveTokens(uint256,uint256)",
	"MaxNodesOutOfRange(uint256,uint256)", "MintingNotPublic()", "MissingWireGuardKey()",
	"NetworkModeNotAllowed(uint8,uint8)", "NoLeader()", "NotCurrentLeader(uint256,uint256)",
	"NotLeader(address)", "NotNodeController(uint256,address)", "NotRegisteredNode(uint256)",
	"NotTokenOwner(uint256,address)", "NotTokenOwnerOrAdmin(uint256,address)",
	"OwnableInvalidOwner(address)", "OwnableUnauthorizedAccount(address)",
	"PeerNotFound(address)", "StaleNonce(uint64,uint64)", "TokenHasNoPeer(uint256)",
	"TokenIdOutOfRange(uint256)", "TokenNotBound(uint256)", "UnexpectedWireGuardKey()",
	"UnknownBootPolicy(uint8)", "UnknownNetworkMode(uint8)", "WireGuardKeyInUse(bytes32,uint256)",
	"WithdrawFailed(address,uint256)", "WrongMintPayment(uint256,uint256)", "ZeroAddress()",
	"ZeroInstanceId()", "ZeroKmsRoot()",
};

const struct eth_error_table registry_contract_errors = {
	.signatures = signatures,
	.n = ARRAY_SIZE(signatures),
};
