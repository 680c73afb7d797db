// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./lib/TestBase.sol";
import {ClusterFixture} from "./lib/ClusterFixture.sol";
import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";
import {DstackSignatureChain as Chain} from "../src/DstackSignatureChain.sol";

/// @title Random sequences of mint / bind / register / burn / transfer / vote / elect / time, driven
///        by forge's invariant fuzzer. Every action is valid or skipped, so state keeps moving.
contract ClusterHandler is ClusterFixture {
    uint256 internal constant INSTANCES = 24;
    address[4] internal people = [address(0xA1), address(0xB0B), address(0xCA401), address(0xDA4E)];

    /// @notice Set if a tampered registration was ever accepted.
    bool public forgedAccepted;
    uint256[] public burned;
    uint256 public calls;

    constructor() {
        _deployCluster();
        vm.prank(admin);
        cluster.setClusterConfig(16, 3); // a small cap so the fuzzer hits it
        for (uint256 i = 0; i < 6; ++i) {
            _join(people[i % 4], _instance(i)); // start from a running cluster
        }
    }

    function target() external view returns (DstackClusterNFT) {
        return cluster;
    }

    function burnedCount() external view returns (uint256) {
        return burned.length;
    }

    /// @dev One of the live tokens, chosen by `seed`.
    function _live(uint256 seed) internal view returns (uint256 id, bool ok) {
        uint256 bits = cluster.liveTokenBitmap();
        uint256 n = cluster.totalSupply();
        if (n == 0) return (0, false);
        for (uint256 k = seed % n; k != 0; --k) {
            bits &= bits - 1;
        }
        for (id = 1; (bits >> id) & 1 == 0; ++id) {}
        ok = true;
    }

    function mint(uint256 who) external {
        ++calls;
        if (cluster.totalSupply() >= cluster.maxNodes()) return;
        vm.prank(admin);
        cluster.mintNodeAccess(people[who % 4], "fuzz");
    }

    function bind(uint256 tokenSeed, uint256 instSeed) external {
        ++calls;
        (uint256 id, bool ok) = _live(tokenSeed);
        address instanceId = _instance(instSeed % INSTANCES);
        if (!ok || cluster.tokenOfInstance(instanceId) != 0) return;
        if (cluster.instanceOfToken(id) != address(0) && tokenSeed % 4 != 1) return; // re-binding is destructive
        vm.prank(cluster.ownerOf(id));
        cluster.bindInstance(id, instanceId);
    }

    function register(uint256 tokenSeed, uint8 tlsMode) external {
        ++calls;
        (uint256 id, bool ok) = _live(tokenSeed);
        address instanceId = cluster.instanceOfToken(id);
        if (!ok || instanceId == address(0)) return;
        DstackClusterNFT.PeerRegistration memory r = _registration(instanceId, cluster.nonceOf(instanceId) + 1);
        if (tlsMode % 4 == 0) {
            r.mode = 0;
            r.wgPublicKey = bytes32(0);
            r.endpoint = "https://node-8080.dstack.example";
            _signRecord(r, _nodeKey(instanceId));
        }
        cluster.registerPeer(r);
    }

    function registerForged(uint256 instSeed, uint256 which, uint256 pos) external {
        ++calls;
        address instanceId = _instance(instSeed % INSTANCES);
        if (cluster.tokenOfInstance(instanceId) == 0) return;
        DstackClusterNFT.PeerRegistration memory r = _registration(instanceId, cluster.nonceOf(instanceId) + 1);
        which %= 4;
        if (which == 3) {
            r.instanceId = _instance((instSeed % INSTANCES + 1) % INSTANCES); // another node's slot, this node's signature
        } else {
            bytes memory f = which == 0 ? r.appSignature : which == 1 ? r.kmsSignature : r.nodeSignature;
            f[pos % 64] = bytes1(uint8(f[pos % 64]) ^ 0x01);
        }
        try cluster.registerPeer(r) {
            forgedAccepted = true;
        } catch {}
    }

    /// @dev Destructive actions act one time in four, so clusters grow large enough to be interesting.
    function burn(uint256 tokenSeed, bool byAdmin) external {
        ++calls;
        (uint256 id, bool ok) = _live(tokenSeed);
        if (!ok || tokenSeed % 4 != 1) return;
        vm.prank(byAdmin ? admin : cluster.ownerOf(id));
        cluster.burn(id);
        burned.push(id);
    }

    function transfer(uint256 tokenSeed, uint256 to) external {
        ++calls;
        (uint256 id, bool ok) = _live(tokenSeed);
        if (!ok || tokenSeed % 4 != 1) return;
        address from = cluster.ownerOf(id);
        vm.prank(from);
        cluster.transferFrom(from, people[to % 4], id);
    }

    function elect(uint256 tokenSeed) external {
        ++calls;
        (uint256 id, bool ok) = _live(tokenSeed);
        if (!ok || !cluster.instanceIsRegistered(cluster.instanceOfToken(id))) return;
        // forge-lint: disable-next-line(block-timestamp)
        if (cluster.currentLeaderTokenId() != 0 && block.timestamp <= cluster.leadershipExpiry()) return;
        vm.prank(cluster.ownerOf(id));
        cluster.electLeader(id);
    }

    function vote(uint256 tokenSeed, bool noConfidence) external {
        ++calls;
        (uint256 id, bool ok) = _live(tokenSeed);
        uint256 leader = cluster.currentLeaderTokenId();
        if (!ok || leader == 0 || !cluster.instanceIsRegistered(cluster.instanceOfToken(id))) return;
        vm.prank(_nodeAddress(cluster.instanceOfToken(id))); // as the node itself
        cluster.castVote(id, leader, noConfidence);
    }

    function heartbeat() external {
        ++calls;
        uint256 leader = cluster.currentLeaderTokenId();
        if (leader == 0) return;
        vm.prank(cluster.ownerOf(leader));
        cluster.leaderHeartbeat();
    }

    function passTime(uint256 secondsToPass) external {
        ++calls;
        vm.warp(block.timestamp + secondsToPass % 600);
    }
}

contract ClusterInvariantTest is TestBase {
    ClusterHandler internal handler;
    DstackClusterNFT internal cluster;

    function setUp() public {
        handler = new ClusterHandler();
        cluster = handler.target();
    }

    /// @dev forge fuzzes only the handler's functions.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function _popcount(uint256 x) internal pure returns (uint256 n) {
        for (; x != 0; x &= x - 1) {
            ++n;
        }
    }

    /// @notice Live peers have distinct tokens (so distinct overlay addresses), distinct instances and
    ///         WireGuard keys, live tokens, consistent bindings, and chains that verify to the KMS root.
    function invariant_livePeersAreUniqueLiveAndVerified() public view {
        DstackClusterNFT.Peer[] memory peers = cluster.getPeers();
        assertEq(peers.length, cluster.peerCount(), "count");
        uint256 liveTokens = cluster.liveTokenBitmap();
        for (uint256 i = 0; i < peers.length; ++i) {
            DstackClusterNFT.Peer memory p = peers[i];
            assertTrue(p.tokenId >= 1 && p.tokenId <= 254, "overlay range");
            if (i > 0) assertTrue(p.tokenId > peers[i - 1].tokenId, "one peer per overlay address");
            assertTrue((liveTokens >> p.tokenId) & 1 == 1, "live token");
            assertEq(cluster.tokenOfInstance(p.instanceId), p.tokenId, "instance bound to the token");
            assertEq(cluster.instanceOfToken(p.tokenId), p.instanceId, "token bound to the instance");
            assertEq(uint256(cluster.nonceOf(p.instanceId)), uint256(p.nonce), "nonce");
            for (uint256 j = 0; j < i; ++j) {
                if (p.wgPublicKey != bytes32(0)) assertTrue(p.wgPublicKey != peers[j].wgPublicKey, "wg key unique");
            }
            _verify(p);
        }
    }

    /// @dev Independent re-verification of a stored record, as an agent does off chain.
    function _verify(DstackClusterNFT.Peer memory p) internal view {
        (bytes32 nx, bytes32 ny) = abi.decode(p.nodePubkey, (bytes32, bytes32));
        (bytes32 ax, bytes32 ay) = abi.decode(p.appPubkey, (bytes32, bytes32));
        bytes32 digest = cluster.peerRecordDigest(p.instanceId, p.wgPublicKey, p.endpoint, p.mode, p.nonce);
        assertEq(_recover(digest, p.nodeSignature), Chain.addressOf(nx, ny), "node signature");
        assertEq(
            _recover(Chain.appMessageDigest("dstack-p2p:node", nx, ny), p.appSignature),
            Chain.addressOf(ax, ay),
            "app signature"
        );
        assertEq(_recover(Chain.kmsMessageDigest(address(cluster), ax, ay), p.kmsSignature), cluster.kmsRoot(), "kms");
    }

    function _recover(bytes32 digest, bytes memory sig) internal pure returns (address) {
        (bytes32 r, bytes32 s) = abi.decode(sig, (bytes32, bytes32));
        return Chain.recover(digest, r, s, uint8(sig[64]));
    }

    function invariant_liveTokensWithinCap() public view {
        uint256 live = cluster.liveTokenBitmap();
        assertEq(_popcount(live), cluster.totalSupply(), "count matches bitmap");
        assertTrue(cluster.totalSupply() <= cluster.maxNodes(), "cap");
        assertTrue(cluster.maxNodes() <= 254, "overlay cap");
        assertEq(live & 1, 0, "no token 0");
        assertEq(live >> 255, 0, "no token 255");
    }

    function invariant_burnedTokensLeaveNoPeer() public view {
        uint256 live = cluster.liveTokenBitmap();
        assertEq(cluster.peerBitmap() & ~live, 0, "every peer bit has a live token");
        assertEq(_popcount(cluster.peerBitmap()), cluster.peerCount(), "peer count");
        uint256 n = handler.burnedCount();
        for (uint256 i = 0; i < n; ++i) {
            uint256 id = handler.burned(i);
            if ((live >> id) & 1 == 1) continue; // re-minted since
            assertEq(cluster.instanceOfToken(id), address(0), "burned token unbound");
            assertEq((cluster.peerBitmap() >> id) & 1, 0, "burned token has no peer");
        }
    }

    function invariant_noForgedRecordAccepted() public view {
        assertFalse(handler.forgedAccepted(), "forged record accepted");
    }

    /// @notice The standing vote count is exactly the current-term votes of registered nodes, stays
    ///         below the threshold while a leader holds office, and the leader is a registered node.
    function invariant_electionConsistent() public view {
        uint256 leader = cluster.currentLeaderTokenId();
        uint64 term = cluster.leaderTerm();
        uint256 counted;
        uint256 peers = cluster.peerBitmap();
        for (uint256 t = 1; t <= 20; ++t) {
            (uint64 voteTerm,) = cluster.voteOf(t);
            if (voteTerm == term && term != 0) {
                assertTrue((peers >> t) & 1 == 1, "only registered nodes hold current votes");
                ++counted;
            }
        }
        assertEq(cluster.noConfidenceVotes(), counted, "vote count");
        if (leader == 0) {
            assertEq(counted, 0, "no votes without a leader");
        } else {
            assertTrue((peers >> leader) & 1 == 1, "leader is registered");
            assertTrue(counted < cluster.requiredVotes(), "threshold would have replaced the leader");
        }
    }
}
