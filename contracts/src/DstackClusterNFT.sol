// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {IAppAuth, IAppAuthBasicManagement} from "./IAppAuth.sol";
import {DstackSignatureChain as Chain} from "./DstackSignatureChain.sol";

/// @title DstackClusterNFT: one dstack-p2p cluster on chain.
/// @notice At once (1) the cluster's ERC721 membership token, one token per node, token t owning
///         overlay address 10.0.1.t; (2) the cluster's dstack app-auth contract, so its address is
///         the app id of every node; (3) the peer registry agents read, each record proven by a
///         dstack signature chain verified here up to the KMS root; (4) the leader-election state.
///         The record format and signatures are specified in docs/registry.md, operations in
///         docs/contracts.md.
/// @dev Token ids live in 1..254 and the set of live tokens and of registered peers are each one
///      uint256 bitmap, so no state-changing path loops over tokens: minting finds the lowest free
///      id, revocation and leader succession pick bits in O(1).
contract DstackClusterNFT is ERC721, Ownable2Step, IAppAuth, IAppAuthBasicManagement {
    // ------------------------------------------------------------------ types

    /// @notice A registration as submitted (docs/registry.md). Anyone may relay it.
    struct PeerRegistration {
        address instanceId;
        bytes32 wgPublicKey;
        string endpoint;
        uint8 mode;
        uint64 nonce;
        bytes nodePubkey; // 64 bytes x||y
        bytes appPubkey; // 64 bytes x||y
        bytes appSignature; // 65, chain[0]
        bytes kmsSignature; // 65, chain[1]
        bytes nodeSignature; // 65, over peerRecordDigest(...)
    }

    /// @notice A live peer as agents read it: everything needed to re-verify the record off chain.
    struct Peer {
        uint256 tokenId;
        address instanceId;
        bytes32 wgPublicKey;
        string endpoint;
        uint8 mode;
        uint64 nonce;
        bytes nodePubkey;
        bytes appPubkey;
        bytes appSignature;
        bytes kmsSignature;
        bytes nodeSignature;
    }

    /// @dev Stored form of a Peer: fixed-size fields, the first slot packs 20+8+1+2 bytes. The app
    ///      key and its KMS signature are the same for every node of the cluster, so they are stored
    ///      once (AppKeyCert) and referenced. Signature v bytes are kept as submitted so readers get
    ///      the exact bytes back.
    struct StoredPeer {
        address instanceId;
        uint64 nonce;
        uint8 mode;
        uint8 appSigV;
        uint8 nodeSigV;
        bytes32 wgPublicKey;
        bytes32 nodeX;
        bytes32 nodeY;
        bytes32 appCert;
        bytes32 appSigR;
        bytes32 appSigS;
        bytes32 nodeSigR;
        bytes32 nodeSigS;
        string endpoint;
    }

    /// @dev An app key with the KMS root's signature over it (chain[1]), verified when first seen.
    struct AppKeyCert {
        bytes32 x;
        bytes32 y;
        bytes32 kmsSigR;
        bytes32 kmsSigS;
        uint8 kmsSigV;
    }

    /// @dev A token's standing vote of no confidence: counted only while `term` is the current term.
    struct Vote {
        uint64 term;
        uint192 target;
    }

    // -------------------------------------------------------------- constants

    /// @notice The only GetKey purpose accepted for a node key.
    string public constant NODE_KEY_PURPOSE = "dstack-p2p:node";
    /// @notice Domain tag of the node's record signature.
    bytes32 public constant PEER_RECORD_TYPEHASH = keccak256("dstack-p2p.PeerRecord.v1");

    uint8 public constant MODE_TLS_GATEWAY = 0;
    uint8 public constant MODE_WIREGUARD = 1;

    uint8 public constant BOOT_STRICT = 0; // the booting instance must be bound to a live token
    uint8 public constant BOOT_PERMISSIVE = 1; // any allowed compose hash boots; registration gates membership

    uint8 public constant REMOVED_BURNED = 0;
    uint8 public constant REMOVED_TRANSFERRED = 1;
    uint8 public constant REMOVED_REBOUND = 2;

    uint8 public constant LEADER_ELECTED = 0; // elected into a vacant or expired leadership
    uint8 public constant LEADER_NO_CONFIDENCE = 1; // the previous leader lost a vote of no confidence
    uint8 public constant LEADER_LEFT = 2; // the previous leader's peer was removed

    /// @dev keccak256 of the only tcbStatus accepted while requireTcbUpToDate is set.
    bytes32 private constant TCB_UP_TO_DATE = keccak256("UpToDate");

    /// @notice Highest token id: the overlay 10.0.1.0/24 has hosts .1 to .254.
    uint256 public constant MAX_NODES_LIMIT = 254;
    uint256 public constant MAX_LABEL_LENGTH = 64;
    uint256 public constant MAX_ENDPOINT_LENGTH = 255;

    /// @dev Bits 1..254: the usable token ids.
    uint256 private constant ID_MASK = (uint256(1) << 255) - 2;

    // ------------------------------------------------------------------ state

    /// @notice Address of the dstack KMS root key every signature chain must end in.
    address public immutable kmsRoot;

    uint256 public maxNodes = MAX_NODES_LIMIT;
    /// @notice Bit (1 << mode) set for each allowed network mode.
    uint8 public networkModes = 0x03; // both modes
    uint8 public bootPolicy = BOOT_STRICT;
    bool public publicMinting;
    bool public allowAnyDevice = true;
    /// @notice When true (the default), a boot whose tcbStatus is not "UpToDate" is refused, as
    ///         dstack's own DstackApp does with requireTcbUpToDate.
    bool public requireTcbUpToDate = true;
    uint256 public mintPrice;

    mapping(bytes32 => bool) public allowedComposeHashes;
    mapping(bytes32 => bool) public allowedDeviceIds;

    /// @notice Bit t set while token t exists.
    uint256 public liveTokenBitmap;
    /// @notice Bit t set while token t has a registered peer.
    uint256 public peerBitmap;
    uint256 private _liveTokenCount;
    uint256 private _peerCount;

    mapping(uint256 => string) private _labels;
    mapping(uint256 => address) private _instanceOfToken;
    mapping(address => uint256) private _tokenOfInstance;
    /// @dev Never reset, not even when the instance is unbound: a record signed for an earlier
    ///      binding must stay unreplayable.
    mapping(address => uint64) private _nonceOf;
    mapping(uint256 => StoredPeer) private _peers;
    mapping(bytes32 => uint256) private _tokenOfWgKey;
    /// @dev keccak256(app x || app y || kms signature) => the verified certificate. Never deleted:
    ///      only the KMS root can make new ones, so there are a handful at most.
    mapping(bytes32 => AppKeyCert) private _appKeyCerts;

    uint256 public currentLeaderTokenId;
    uint64 public leadershipExpiry;
    /// @notice Incremented at every change of leader; votes of earlier terms no longer count.
    uint64 public leaderTerm;
    uint64 public leaderLease = 300;
    /// @notice Length in seconds of a pairwise-PSK epoch (docs/keys.md): every member uses the
    ///         PSKs of epoch floor(unix time / pskEpoch) and so rotates them at its multiples.
    uint64 public pskEpoch = 3600;
    /// @notice Standing no-confidence votes against the current leader in the current term.
    uint256 public noConfidenceVotes;
    mapping(uint256 => Vote) private _votes;

    // ----------------------------------------------------------------- events

    event NodeAccessMinted(uint256 indexed tokenId, address indexed to, string label);
    event InstanceBound(uint256 indexed tokenId, address indexed instanceId);
    event InstanceUnbound(uint256 indexed tokenId, address indexed instanceId);
    event PeerRegistered(
        uint256 indexed tokenId,
        address indexed instanceId,
        bytes32 wgPublicKey,
        string endpoint,
        uint8 mode,
        uint64 nonce
    );
    event PeerUpdated(
        uint256 indexed tokenId,
        address indexed instanceId,
        bytes32 wgPublicKey,
        string endpoint,
        uint8 mode,
        uint64 nonce
    );
    /// @param reason REMOVED_BURNED, REMOVED_TRANSFERRED or REMOVED_REBOUND
    event PeerRemoved(uint256 indexed tokenId, address indexed instanceId, uint8 reason);

    event ClusterConfigSet(uint256 maxNodes, uint8 networkModes);
    event MintingPolicySet(uint256 price, bool publicMinting);
    event BootPolicySet(uint8 policy);
    event AllowAnyDeviceSet(bool allowAny);
    event RequireTcbUpToDateSet(bool required);
    event LeaderLeaseSet(uint64 leaseSeconds);
    event PskEpochSet(uint64 epochSeconds);
    event Withdrawn(address indexed to, uint256 amount);

    event VoteCast(
        uint256 indexed voterTokenId, uint256 indexed targetTokenId, bool noConfidence, uint256 votes, uint256 required
    );
    /// @param cause LEADER_ELECTED, LEADER_NO_CONFIDENCE or LEADER_LEFT; newTokenId 0 = no leader
    event LeaderChanged(
        uint256 indexed previousTokenId, uint256 indexed newTokenId, uint64 term, uint64 expiry, uint8 cause
    );
    event LeaderHeartbeat(uint256 indexed tokenId, uint64 expiry);

    // ----------------------------------------------------------------- errors

    error ZeroKmsRoot();
    error ZeroAddress();
    error MintingNotPublic();
    error WrongMintPayment(uint256 sent, uint256 price);
    error LabelTooLong(uint256 length, uint256 max);
    error ClusterFull(uint256 maxNodes);
    error MaxNodesOutOfRange(uint256 maxNodes, uint256 limit);
    error MaxNodesBelowLiveTokens(uint256 maxNodes, uint256 liveTokens);
    error InvalidNetworkModes(uint8 networkModes);
    error UnknownBootPolicy(uint8 policy);
    error InvalidLeaderLease(uint64 leaseSeconds);
    error InvalidPskEpoch(uint64 epochSeconds);
    error WithdrawFailed(address to, uint256 amount);
    error NotTokenOwner(uint256 tokenId, address caller);
    error NotTokenOwnerOrAdmin(uint256 tokenId, address caller);
    error ZeroInstanceId();
    error InstanceAlreadyBound(address instanceId, uint256 tokenId);
    error TokenNotBound(uint256 tokenId);
    error TokenIdOutOfRange(uint256 tokenId);

    error InstanceNotBound(address instanceId);
    error UnknownNetworkMode(uint8 mode);
    error NetworkModeNotAllowed(uint8 mode, uint8 allowedModes);
    error MissingWireGuardKey();
    error UnexpectedWireGuardKey();
    error WireGuardKeyInUse(bytes32 wgPublicKey, uint256 tokenId);
    error BadEndpointLength(uint256 length);
    error EndpointNotHttps();
    error StaleNonce(uint64 nonce, uint64 storedNonce);
    error BadPublicKeyLength(uint256 length);
    error BadSignatureLength(uint256 length);
    error BadNodeSignature(address recovered, address nodeKey);
    error BadAppSignature(address recovered, address appKey);
    error BadKmsSignature(address recovered, address kmsRoot);
    error PeerNotFound(address instanceId);
    error TokenHasNoPeer(uint256 tokenId);

    error NotRegisteredNode(uint256 tokenId);
    error NotNodeController(uint256 tokenId, address caller);
    error NoLeader();
    error NotCurrentLeader(uint256 target, uint256 leader);
    error LeaderStillActive(uint256 leader, uint64 expiry);
    error NotLeader(address caller);

    // ----------------------------------------------------------- construction

    /// @param initialOwner cluster admin: minting (unless public), policies, allow lists, burning
    /// @param kmsRoot_ address of the dstack KMS root key (kmsInfo().k256Pubkey as an address)
    constructor(address initialOwner, address kmsRoot_)
        ERC721("dstack-p2p cluster node", "DSTACKNODE")
        Ownable(initialOwner)
    {
        if (kmsRoot_ == address(0)) revert ZeroKmsRoot();
        kmsRoot = kmsRoot_;
    }

    // ------------------------------------------------------------ app auth

    /// @inheritdoc IAppAuth
    function isAppAllowed(AppBootInfo calldata bootInfo)
        external
        view
        override
        returns (bool isAllowed, string memory reason)
    {
        if (bootInfo.appId != address(this)) return (false, "App id is not this cluster contract");
        // TCB before the lists, as DstackApp checks it: a boot refused for several reasons
        // gets the reason DstackApp would give (the verdict does not depend on the order).
        if (requireTcbUpToDate && keccak256(bytes(bootInfo.tcbStatus)) != TCB_UP_TO_DATE) {
            return (false, "TCB status is not up to date");
        }
        if (!allowedComposeHashes[bootInfo.composeHash]) return (false, "Compose hash not allowed");
        if (!allowAnyDevice && !allowedDeviceIds[bootInfo.deviceId]) return (false, "Device not allowed");
        if (bootPolicy == BOOT_STRICT && _tokenOfInstance[bootInfo.instanceId] == 0) {
            return (false, "Instance not bound to a live node token");
        }
        return (true, "");
    }

    /// @inheritdoc IAppAuthBasicManagement
    function addComposeHash(bytes32 composeHash) external onlyOwner {
        allowedComposeHashes[composeHash] = true;
        emit ComposeHashAdded(composeHash);
    }

    /// @inheritdoc IAppAuthBasicManagement
    function removeComposeHash(bytes32 composeHash) external onlyOwner {
        allowedComposeHashes[composeHash] = false;
        emit ComposeHashRemoved(composeHash);
    }

    /// @inheritdoc IAppAuthBasicManagement
    function addDevice(bytes32 deviceId) external onlyOwner {
        allowedDeviceIds[deviceId] = true;
        emit DeviceAdded(deviceId);
    }

    /// @inheritdoc IAppAuthBasicManagement
    function removeDevice(bytes32 deviceId) external onlyOwner {
        allowedDeviceIds[deviceId] = false;
        emit DeviceRemoved(deviceId);
    }

    /// @notice When true, the device allow list is ignored.
    function setAllowAnyDevice(bool allowAny) external onlyOwner {
        allowAnyDevice = allowAny;
        emit AllowAnyDeviceSet(allowAny);
    }

    /// @notice Refuse (true) or allow (false) a boot whose TCB is not up to date (tcbStatus other
    ///         than "UpToDate", e.g. "OutOfDate" after a microcode advisory).
    function setRequireTcbUpToDate(bool required) external onlyOwner {
        requireTcbUpToDate = required;
        emit RequireTcbUpToDateSet(required);
    }

    /// @notice BOOT_STRICT: only instances bound to a live token boot (mint, bind, then start the CVM);
    ///         BOOT_PERMISSIVE: any allowed compose hash boots and registration gates membership
    ///         (the startup-service pattern: the app waits for instanceIsRegistered).
    function setBootPolicy(uint8 policy) external onlyOwner {
        if (policy > BOOT_PERMISSIVE) revert UnknownBootPolicy(policy);
        bootPolicy = policy;
        emit BootPolicySet(policy);
    }

    /// @inheritdoc IERC165
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, IERC165) returns (bool) {
        return interfaceId == type(IAppAuth).interfaceId || interfaceId == type(IAppAuthBasicManagement).interfaceId
            || super.supportsInterface(interfaceId);
    }

    // ----------------------------------------------------------- membership

    /// @notice Mint the next node token (the lowest free id) to `to`. The owner mints for free at any
    ///         time; anyone else only under a public minting policy, paying exactly `mintPrice`.
    function mintNodeAccess(address to, string calldata label) external payable returns (uint256 tokenId) {
        if (msg.sender == owner()) {
            if (msg.value != 0) revert WrongMintPayment(msg.value, 0);
        } else {
            if (!publicMinting) revert MintingNotPublic();
            if (msg.value != mintPrice) revert WrongMintPayment(msg.value, mintPrice);
        }
        if (bytes(label).length > MAX_LABEL_LENGTH) revert LabelTooLong(bytes(label).length, MAX_LABEL_LENGTH);
        if (_liveTokenCount >= maxNodes) revert ClusterFull(maxNodes);

        tokenId = _lowestBit(~liveTokenBitmap & ID_MASK); // non-zero: live tokens < maxNodes <= 254
        _mint(to, tokenId); // no receiver callback: nothing runs in the middle of a mint
        _labels[tokenId] = label;
        emit NodeAccessMinted(tokenId, to, label);
    }

    /// @notice Burn a node token: by its holder or the cluster admin. Removes its peer and binding.
    function burn(uint256 tokenId) external {
        address holder = _requireOwned(tokenId);
        if (msg.sender != holder && msg.sender != owner()) revert NotTokenOwnerOrAdmin(tokenId, msg.sender);
        _burn(tokenId);
    }

    /// @notice Bind a dstack instance id to a token (token holder only). Re-binding a token to another
    ///         instance removes the old instance's peer record.
    function bindInstance(uint256 tokenId, address instanceId) external {
        _onlyHolder(tokenId);
        if (instanceId == address(0)) revert ZeroInstanceId();
        uint256 other = _tokenOfInstance[instanceId];
        if (other != 0) revert InstanceAlreadyBound(instanceId, other);

        _unbind(tokenId, REMOVED_REBOUND);
        _instanceOfToken[tokenId] = instanceId;
        _tokenOfInstance[instanceId] = tokenId;
        emit InstanceBound(tokenId, instanceId);
    }

    /// @notice Unbind a token's instance (token holder only), removing its peer record.
    function unbindInstance(uint256 tokenId) external {
        _onlyHolder(tokenId);
        if (_instanceOfToken[tokenId] == address(0)) revert TokenNotBound(tokenId);
        _unbind(tokenId, REMOVED_REBOUND);
    }

    /// @notice Cap on live tokens (1..254, not below the current count) and the allowed network modes
    ///         (bit 1 << mode). Records already stored keep their mode until their next update.
    function setClusterConfig(uint256 maxNodes_, uint8 networkModes_) external onlyOwner {
        if (maxNodes_ == 0 || maxNodes_ > MAX_NODES_LIMIT) revert MaxNodesOutOfRange(maxNodes_, MAX_NODES_LIMIT);
        if (maxNodes_ < _liveTokenCount) revert MaxNodesBelowLiveTokens(maxNodes_, _liveTokenCount);
        if (networkModes_ == 0 || networkModes_ > 3) revert InvalidNetworkModes(networkModes_);
        maxNodes = maxNodes_;
        networkModes = networkModes_;
        emit ClusterConfigSet(maxNodes_, networkModes_);
    }

    /// @notice Owner-only minting (publicMinting false) or public minting at `price` wei.
    function setMintingPolicy(uint256 price, bool publicMinting_) external onlyOwner {
        mintPrice = price;
        publicMinting = publicMinting_;
        emit MintingPolicySet(price, publicMinting_);
    }

    /// @notice Send the collected mint payments to `to`.
    function withdraw(address payable to) external onlyOwner {
        if (to == address(0)) revert ZeroAddress();
        uint256 amount = address(this).balance;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert WithdrawFailed(to, amount);
        emit Withdrawn(to, amount);
    }

    /// @notice Number of live tokens.
    function totalSupply() external view returns (uint256) {
        return _liveTokenCount;
    }

    function labelOf(uint256 tokenId) external view returns (string memory) {
        _requireOwned(tokenId);
        return _labels[tokenId];
    }

    /// @notice Instance bound to a token, address(0) if none.
    function instanceOfToken(uint256 tokenId) external view returns (address) {
        return _instanceOfToken[tokenId];
    }

    /// @notice Token an instance is bound to, 0 if unbound (bound tokens are always live).
    function tokenOfInstance(address instanceId) external view returns (uint256) {
        return _tokenOfInstance[instanceId];
    }

    /// @notice Overlay IPv4 address of a token: 10.0.1.t.
    function overlayAddressOf(uint256 tokenId) external pure returns (bytes4) {
        if (tokenId == 0 || tokenId > MAX_NODES_LIMIT) revert TokenIdOutOfRange(tokenId);
        // forge-lint: disable-next-line(unsafe-typecast)
        return bytes4(uint32(0x0a000100) | uint32(tokenId)); // tokenId <= 254 checked above
    }

    // --------------------------------------------------------- peer registry

    /// @notice Store or update the peer record of a bound instance. Anyone may submit: the record is
    ///         authenticated by the node key's signature, the node key by the app key, the app key by
    ///         the KMS root (whose message names this contract as the app). See docs/registry.md.
    function registerPeer(PeerRegistration calldata r) external {
        uint256 tokenId = _tokenOfInstance[r.instanceId];
        if (tokenId == 0) revert InstanceNotBound(r.instanceId);
        _checkRecordFields(r, tokenId);
        uint64 stored = _nonceOf[r.instanceId];
        if (r.nonce <= stored) revert StaleNonce(r.nonce, stored);
        bytes32 cert = _verifyChain(r);

        bool isUpdate = _hasPeer(tokenId);
        StoredPeer storage p = _peers[tokenId];
        if (isUpdate && p.wgPublicKey != r.wgPublicKey) delete _tokenOfWgKey[p.wgPublicKey];
        if (r.wgPublicKey != bytes32(0)) _tokenOfWgKey[r.wgPublicKey] = tokenId;
        _nonceOf[r.instanceId] = r.nonce;
        _store(p, r, cert);

        if (isUpdate) {
            emit PeerUpdated(tokenId, r.instanceId, r.wgPublicKey, r.endpoint, r.mode, r.nonce);
        } else {
            peerBitmap |= uint256(1) << tokenId;
            ++_peerCount;
            emit PeerRegistered(tokenId, r.instanceId, r.wgPublicKey, r.endpoint, r.mode, r.nonce);
        }
    }

    /// @notice The digest a node key signs for a record (raw keccak, no EIP-191 prefix).
    function peerRecordDigest(address instanceId, bytes32 wgPublicKey, string memory endpoint, uint8 mode, uint64 nonce)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(
                PEER_RECORD_TYPEHASH,
                block.chainid,
                address(this),
                instanceId,
                wgPublicKey,
                keccak256(bytes(endpoint)),
                mode,
                nonce
            )
        );
    }

    /// @notice Every live peer, in token id order. One eth_call, also at 254 peers.
    function getPeers() external view returns (Peer[] memory peers) {
        (peers,) = _page(0, MAX_NODES_LIMIT);
    }

    /// @notice Live peers `offset` .. `offset + limit - 1` in token id order, and the total count.
    function getPeersPaged(uint256 offset, uint256 limit) external view returns (Peer[] memory page, uint256 total) {
        return _page(offset, limit);
    }

    /// @notice The peer record of an instance; reverts PeerNotFound if it has none.
    function getPeer(address instanceId) external view returns (Peer memory) {
        uint256 tokenId = _tokenOfInstance[instanceId];
        if (!_hasPeer(tokenId)) revert PeerNotFound(instanceId);
        return _toPeer(tokenId);
    }

    /// @notice The peer record of a token; reverts TokenHasNoPeer if it has none.
    function getPeerByToken(uint256 tokenId) external view returns (Peer memory) {
        if (!_hasPeer(tokenId)) revert TokenHasNoPeer(tokenId);
        return _toPeer(tokenId);
    }

    /// @notice Endpoints of all live peers, in token id order.
    function getPeerEndpoints() external view returns (string[] memory endpoints) {
        endpoints = new string[](_peerCount);
        uint256 bits = peerBitmap;
        for (uint256 i = 0; bits != 0; ++i) {
            uint256 t = _lowestBit(bits);
            bits &= bits - 1;
            endpoints[i] = _peers[t].endpoint;
        }
    }

    /// @notice Whether the instance is bound to a live token and has a registered record.
    function instanceIsRegistered(address instanceId) external view returns (bool) {
        return _hasPeer(_tokenOfInstance[instanceId]);
    }

    function peerCount() external view returns (uint256) {
        return _peerCount;
    }

    /// @notice Highest nonce accepted for the instance (0 = never registered); the next record needs more.
    function nonceOf(address instanceId) external view returns (uint64) {
        return _nonceOf[instanceId];
    }

    // ------------------------------------------------------- leader election

    /// @notice f+1 for the live registered node count n = 2f+1 (f = floor((n-1)/2)); follows n.
    function requiredVotes() public view returns (uint256) {
        uint256 n = _peerCount;
        return n == 0 ? 1 : (n - 1) / 2 + 1;
    }

    /// @notice Instance id of the current leader, address(0) if none.
    function currentLeader() external view returns (address) {
        return _instanceOfToken[currentLeaderTokenId];
    }

    /// @notice A token's standing vote: the term it was cast in and its target (0, 0 if none).
    ///         It counts only while `term == leaderTerm`.
    function voteOf(uint256 voterTokenId) external view returns (uint64 term, uint256 target) {
        Vote memory v = _votes[voterTokenId];
        return (v.term, v.target);
    }

    /// @notice Take the leadership for `candidateTokenId` (a registered node the caller controls: its
    ///         holder or its node key) when there is no leader or the leader's lease expired.
    ///         An expired leader electing itself only renews its lease: it keeps the term, so the
    ///         votes standing against it are not wiped by a self re-election.
    function electLeader(uint256 candidateTokenId) external {
        _onlyController(candidateTokenId);
        _electLeader(candidateTokenId);
    }

    function _electLeader(uint256 candidateTokenId) private {
        uint256 leader = currentLeaderTokenId;
        // forge-lint: disable-next-line(block-timestamp)
        if (leader != 0 && block.timestamp <= leadershipExpiry) revert LeaderStillActive(leader, leadershipExpiry);
        if (candidateTokenId == leader) {
            _renewLease(leader);
        } else {
            _setLeader(candidateTokenId, LEADER_ELECTED);
        }
    }

    /// @notice The leader (its holder or node key) extends its lease.
    function leaderHeartbeat() external {
        uint256 leader = currentLeaderTokenId;
        if (leader == 0) revert NoLeader();
        if (!_controls(leader, msg.sender)) revert NotLeader(msg.sender);
        _renewLease(leader);
    }

    /// @notice Vote (noConfidence true) or withdraw a vote (false) of no confidence by `voterTokenId`,
    ///         a registered node the caller controls. Votes can only be cast against the current
    ///         leader; a withdrawal only removes a vote cast against `targetTokenId`, and subtracts it
    ///         only if it was cast in the current term. When the standing votes reach requiredVotes(),
    ///         the next registered node after the leader (by token id, wrapping) takes over.
    function castVote(uint256 voterTokenId, uint256 targetTokenId, bool noConfidence) external {
        _onlyController(voterTokenId);
        _castVote(voterTokenId, targetTokenId, noConfidence);
    }

    function _castVote(uint256 voterTokenId, uint256 targetTokenId, bool noConfidence) private {
        Vote memory v = _votes[voterTokenId];
        uint64 term = leaderTerm;
        if (noConfidence) {
            uint256 leader = currentLeaderTokenId;
            if (leader == 0) revert NoLeader();
            if (targetTokenId != leader) revert NotCurrentLeader(targetTokenId, leader);
            if (v.term != term) {
                // forge-lint: disable-next-line(unsafe-typecast)
                _votes[voterTokenId] = Vote(term, uint192(leader)); // token ids are <= 254
                ++noConfidenceVotes;
            }
        } else if (v.term != 0 && v.target == targetTokenId) {
            if (v.term == term) --noConfidenceVotes;
            delete _votes[voterTokenId];
        }
        emit VoteCast(voterTokenId, targetTokenId, noConfidence, noConfidenceVotes, requiredVotes());
        _maybeReplaceLeader();
    }

    /// @notice Lease a leader gets at election and at each heartbeat.
    function setLeaderLease(uint64 leaseSeconds) external onlyOwner {
        if (leaseSeconds == 0 || leaseSeconds > 30 days) revert InvalidLeaderLease(leaseSeconds);
        leaderLease = leaseSeconds;
        emit LeaderLeaseSet(leaseSeconds);
    }

    /// @notice Length of a pairwise-PSK epoch, 30 seconds to 30 days. Members pick the change up
    ///         at their next chain read; until they all have, pairs may disagree on the PSK and
    ///         a handshake between them is retried (docs/keys.md, rotation).
    function setPskEpoch(uint64 epochSeconds) external onlyOwner {
        if (epochSeconds < 30 || epochSeconds > 30 days) revert InvalidPskEpoch(epochSeconds);
        pskEpoch = epochSeconds;
        emit PskEpochSet(epochSeconds);
    }

    // ------------------------------------- leader election as a service (signed)
    //
    // The agent inside a CVM holds the node key but no gas. It signs a LeaderAction (EIP-712,
    // domain "DstackClusterNFT" version "1") and anyone relays it: the funded key of the
    // node's operator or a relayer. A per-token nonce makes each signature usable once, the
    // deadline bounds how long a relayer may sit on it. docs/contracts.md "Signed leader calls".

    uint8 public constant LEADER_ACTION_ELECT = 0;
    uint8 public constant LEADER_ACTION_HEARTBEAT = 1;
    uint8 public constant LEADER_ACTION_VOTE = 2;

    bytes32 public constant LEADER_ACTION_TYPEHASH = keccak256(
        "LeaderAction(uint8 action,uint256 tokenId,uint256 target,bool noConfidence,uint256 nonce,uint256 deadline)"
    );
    bytes32 private constant _EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");

    /// @notice The nonce the next signed leader action of a token must carry.
    mapping(uint256 => uint256) public leaderActionNonce;

    error LeaderActionExpired(uint256 deadline, uint256 nowTimestamp);
    error BadLeaderActionSignature(address recovered, address nodeKey);

    /// @notice The EIP-712 domain separator of this contract on this chain.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                _EIP712_DOMAIN_TYPEHASH, keccak256("DstackClusterNFT"), keccak256("1"), block.chainid, address(this)
            )
        );
    }

    /// @notice The digest the node key of `tokenId` signs for a leader action (EIP-712).
    function leaderActionDigest(
        uint8 action,
        uint256 tokenId,
        uint256 target,
        bool noConfidence,
        uint256 nonce,
        uint256 deadline
    ) public view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(LEADER_ACTION_TYPEHASH, action, tokenId, target, noConfidence, nonce, deadline));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @notice electLeader(candidateTokenId), authorised by the candidate's node key.
    function electLeaderSigned(uint256 candidateTokenId, uint256 deadline, bytes calldata signature) external {
        _useLeaderSignature(LEADER_ACTION_ELECT, candidateTokenId, 0, false, deadline, signature);
        _electLeader(candidateTokenId);
    }

    /// @notice leaderHeartbeat() for the leader `tokenId`, authorised by its node key.
    function leaderHeartbeatSigned(uint256 tokenId, uint256 deadline, bytes calldata signature) external {
        _useLeaderSignature(LEADER_ACTION_HEARTBEAT, tokenId, 0, false, deadline, signature);
        if (currentLeaderTokenId == 0) revert NoLeader();
        if (tokenId != currentLeaderTokenId) revert NotCurrentLeader(tokenId, currentLeaderTokenId);
        _renewLease(tokenId);
    }

    /// @notice castVote(voterTokenId, targetTokenId, noConfidence), authorised by the voter's node key.
    function castVoteSigned(
        uint256 voterTokenId,
        uint256 targetTokenId,
        bool noConfidence,
        uint256 deadline,
        bytes calldata signature
    ) external {
        _useLeaderSignature(LEADER_ACTION_VOTE, voterTokenId, targetTokenId, noConfidence, deadline, signature);
        _castVote(voterTokenId, targetTokenId, noConfidence);
    }

    /// @notice Everything an agent publishes about the leadership, in one call.
    function leaderState()
        external
        view
        returns (uint256 tokenId, address instanceId, uint64 term, uint64 expiry, uint256 votes, uint256 required)
    {
        tokenId = currentLeaderTokenId;
        return (tokenId, _instanceOfToken[tokenId], leaderTerm, leadershipExpiry, noConfidenceVotes, requiredVotes());
    }

    /// @dev The token must be a registered node and the signature its node key's over the action
    ///      with the token's current nonce, before the deadline. The nonce is spent here.
    function _useLeaderSignature(
        uint8 action,
        uint256 tokenId,
        uint256 target,
        bool noConfidence,
        uint256 deadline,
        bytes calldata signature
    ) private {
        // forge-lint: disable-next-line(block-timestamp)
        if (block.timestamp > deadline) revert LeaderActionExpired(deadline, block.timestamp);
        if (!_hasPeer(tokenId)) revert NotRegisteredNode(tokenId);
        uint256 nonce = leaderActionNonce[tokenId];
        bytes32 digest = leaderActionDigest(action, tokenId, target, noConfidence, nonce, deadline);
        StoredPeer storage p = _peers[tokenId];
        address nodeKey = Chain.addressOf(p.nodeX, p.nodeY);
        address signer = _recover(digest, signature);
        if (signer != nodeKey) revert BadLeaderActionSignature(signer, nodeKey);
        leaderActionNonce[tokenId] = nonce + 1;
    }

    // -------------------------------------------------------------- internal

    /// @dev Every mint, transfer and burn passes here: keeps the bitmap and count of live tokens and
    ///      revokes the peer record and binding of a token that is burned or changes hands.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        uint256 bit = uint256(1) << tokenId;
        if (from == address(0)) {
            liveTokenBitmap |= bit;
            ++_liveTokenCount;
        } else if (to == address(0)) {
            _unbind(tokenId, REMOVED_BURNED);
            liveTokenBitmap &= ~bit;
            --_liveTokenCount;
            delete _labels[tokenId];
        } else if (from != to) {
            _unbind(tokenId, REMOVED_TRANSFERRED);
        }
    }

    /// @dev Drop the token's peer record (if any) and its instance binding (if any).
    function _unbind(uint256 tokenId, uint8 reason) private {
        address instanceId = _instanceOfToken[tokenId];
        if (instanceId == address(0)) return;
        if (_hasPeer(tokenId)) _removePeer(tokenId, instanceId, reason);
        delete _instanceOfToken[tokenId];
        delete _tokenOfInstance[instanceId];
        emit InstanceUnbound(tokenId, instanceId);
    }

    function _removePeer(uint256 tokenId, address instanceId, uint8 reason) private {
        delete _tokenOfWgKey[_peers[tokenId].wgPublicKey];
        delete _peers[tokenId];
        peerBitmap &= ~(uint256(1) << tokenId);
        --_peerCount;
        emit PeerRemoved(tokenId, instanceId, reason);

        // The node no longer votes, and the threshold follows the smaller cluster.
        Vote memory v = _votes[tokenId];
        if (v.term != 0) {
            if (v.term == leaderTerm) --noConfidenceVotes;
            delete _votes[tokenId];
        }
        if (tokenId == currentLeaderTokenId) {
            _setLeader(_successor(tokenId), LEADER_LEFT);
        } else {
            _maybeReplaceLeader();
        }
    }

    function _maybeReplaceLeader() private {
        uint256 leader = currentLeaderTokenId;
        if (leader != 0 && noConfidenceVotes != 0 && noConfidenceVotes >= requiredVotes()) {
            _setLeader(_successor(leader), LEADER_NO_CONFIDENCE);
        }
    }

    function _renewLease(uint256 leader) private {
        uint64 expiry = uint64(block.timestamp) + leaderLease;
        leadershipExpiry = expiry;
        emit LeaderHeartbeat(leader, expiry);
    }

    /// @dev A new term: earlier votes stop counting without touching each voter's slot.
    function _setLeader(uint256 tokenId, uint8 cause) private {
        uint256 previous = currentLeaderTokenId;
        uint64 term = leaderTerm + 1;
        uint64 expiry = tokenId == 0 ? 0 : uint64(block.timestamp) + leaderLease;
        leaderTerm = term;
        currentLeaderTokenId = tokenId;
        leadershipExpiry = expiry;
        noConfidenceVotes = 0;
        emit LeaderChanged(previous, tokenId, term, expiry, cause);
    }

    /// @dev The registered node after `tokenId` in id order, wrapping around, never `tokenId`
    ///      itself; 0 if there is none. O(1) on the bitmap.
    function _successor(uint256 tokenId) private view returns (uint256) {
        uint256 others = peerBitmap & ~(uint256(1) << tokenId);
        uint256 above = others & ~((uint256(2) << tokenId) - 1);
        if (above != 0) return _lowestBit(above);
        return others == 0 ? 0 : _lowestBit(others);
    }

    function _onlyHolder(uint256 tokenId) private view {
        address holder = _requireOwned(tokenId);
        if (msg.sender != holder) revert NotTokenOwner(tokenId, msg.sender);
    }

    function _onlyController(uint256 tokenId) private view {
        if (!_hasPeer(tokenId)) revert NotRegisteredNode(tokenId);
        if (!_controls(tokenId, msg.sender)) revert NotNodeController(tokenId, msg.sender);
    }

    /// @dev A registered node is controlled by its token's holder and by its own node key (so the
    ///      agent inside the CVM can vote and heartbeat without the operator's wallet).
    function _controls(uint256 tokenId, address who) private view returns (bool) {
        if (_ownerOf(tokenId) == who) return true;
        StoredPeer storage p = _peers[tokenId];
        return Chain.addressOf(p.nodeX, p.nodeY) == who;
    }

    function _hasPeer(uint256 tokenId) private view returns (bool) {
        return tokenId != 0 && tokenId <= MAX_NODES_LIMIT && (peerBitmap >> tokenId) & 1 == 1;
    }

    /// @dev Index of the lowest set bit of a non-zero word.
    function _lowestBit(uint256 bits) private pure returns (uint256) {
        unchecked {
            return Math.log2(bits & (~bits + 1));
        }
    }

    function _checkRecordFields(PeerRegistration calldata r, uint256 tokenId) private view {
        if (r.mode > MODE_WIREGUARD) revert UnknownNetworkMode(r.mode);
        if ((networkModes >> r.mode) & 1 == 0) revert NetworkModeNotAllowed(r.mode, networkModes);
        uint256 len = bytes(r.endpoint).length;
        if (len == 0 || len > MAX_ENDPOINT_LENGTH) revert BadEndpointLength(len);
        if (r.mode == MODE_WIREGUARD) {
            if (r.wgPublicKey == bytes32(0)) revert MissingWireGuardKey();
            uint256 holder = _tokenOfWgKey[r.wgPublicKey];
            if (holder != 0 && holder != tokenId) revert WireGuardKeyInUse(r.wgPublicKey, holder);
        } else {
            if (r.wgPublicKey != bytes32(0)) revert UnexpectedWireGuardKey();
            // forge-lint: disable-next-line(unsafe-typecast)
            if (len < 8 || bytes8(bytes(r.endpoint)[:8]) != bytes8("https://")) revert EndpointNotHttps();
        }
    }

    /// @dev node key signs the record; app key signs the node key; KMS root signs the app key for
    ///      app id = this contract. The last step runs once per app key certificate, which is then
    ///      stored and shared by every record that carries it. Returns the certificate's id.
    function _verifyChain(PeerRegistration calldata r) private returns (bytes32 cert) {
        (bytes32 nx, bytes32 ny) = _pubkey(r.nodePubkey);
        (bytes32 ax, bytes32 ay) = _pubkey(r.appPubkey);

        address nodeKey = Chain.addressOf(nx, ny);
        bytes32 digest = peerRecordDigest(r.instanceId, r.wgPublicKey, r.endpoint, r.mode, r.nonce);
        address signer = _recover(digest, r.nodeSignature);
        if (signer != nodeKey) revert BadNodeSignature(signer, nodeKey);

        address appKey = Chain.addressOf(ax, ay);
        signer = _recover(Chain.appMessageDigest(NODE_KEY_PURPOSE, nx, ny), r.appSignature);
        if (signer != appKey) revert BadAppSignature(signer, appKey);

        cert = keccak256(abi.encodePacked(ax, ay, r.kmsSignature));
        if (_appKeyCerts[cert].kmsSigR != 0) return cert; // verified before (r is never 0 in a valid signature)
        signer = _recover(Chain.kmsMessageDigest(address(this), ax, ay), r.kmsSignature);
        if (signer != kmsRoot) revert BadKmsSignature(signer, kmsRoot);
        (bytes32 kr, bytes32 ks, uint8 kv) = _splitSig(r.kmsSignature);
        _appKeyCerts[cert] = AppKeyCert(ax, ay, kr, ks, kv);
    }

    function _pubkey(bytes calldata key) private pure returns (bytes32 x, bytes32 y) {
        if (key.length != 64) revert BadPublicKeyLength(key.length);
        x = bytes32(key[0:32]);
        y = bytes32(key[32:64]);
    }

    function _splitSig(bytes calldata sig) private pure returns (bytes32 r, bytes32 s, uint8 v) {
        if (sig.length != 65) revert BadSignatureLength(sig.length);
        r = bytes32(sig[0:32]);
        s = bytes32(sig[32:64]);
        v = uint8(sig[64]);
    }

    function _recover(bytes32 digest, bytes calldata sig) private pure returns (address) {
        (bytes32 r, bytes32 s, uint8 v) = _splitSig(sig);
        return Chain.recover(digest, r, s, v);
    }

    function _store(StoredPeer storage p, PeerRegistration calldata r, bytes32 cert) private {
        p.instanceId = r.instanceId;
        p.nonce = r.nonce;
        p.mode = r.mode;
        p.wgPublicKey = r.wgPublicKey;
        (p.nodeX, p.nodeY) = _pubkey(r.nodePubkey);
        p.appCert = cert;
        (p.appSigR, p.appSigS, p.appSigV) = _splitSig(r.appSignature);
        (p.nodeSigR, p.nodeSigS, p.nodeSigV) = _splitSig(r.nodeSignature);
        p.endpoint = r.endpoint;
    }

    function _toPeer(uint256 tokenId) private view returns (Peer memory out) {
        StoredPeer storage p = _peers[tokenId];
        out.tokenId = tokenId;
        out.instanceId = p.instanceId;
        out.wgPublicKey = p.wgPublicKey;
        out.endpoint = p.endpoint;
        out.mode = p.mode;
        out.nonce = p.nonce;
        out.nodePubkey = abi.encodePacked(p.nodeX, p.nodeY);
        AppKeyCert storage cert = _appKeyCerts[p.appCert];
        out.appPubkey = abi.encodePacked(cert.x, cert.y);
        out.appSignature = abi.encodePacked(p.appSigR, p.appSigS, p.appSigV);
        out.kmsSignature = abi.encodePacked(cert.kmsSigR, cert.kmsSigS, cert.kmsSigV);
        out.nodeSignature = abi.encodePacked(p.nodeSigR, p.nodeSigS, p.nodeSigV);
    }

    function _page(uint256 offset, uint256 limit) private view returns (Peer[] memory page, uint256 total) {
        total = _peerCount;
        uint256 n = offset >= total ? 0 : Math.min(limit, total - offset);
        page = new Peer[](n);
        uint256 bits = peerBitmap;
        for (uint256 skip = 0; skip < offset && bits != 0; ++skip) {
            bits &= bits - 1; // drop the lowest set bit
        }
        for (uint256 i = 0; i < n; ++i) {
            page[i] = _toPeer(_lowestBit(bits));
            bits &= bits - 1;
        }
    }
}
