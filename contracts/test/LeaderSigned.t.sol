// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClusterFixture} from "./lib/ClusterFixture.sol";
import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";

/// @title Signed leader calls: the node key signs (EIP-712), anyone relays; replay, expiry,
///        wrong signer and wrong token are refused.
contract LeaderSignedTest is ClusterFixture {
    address internal carol = address(0xCA401);
    address[3] internal holders;
    address[3] internal inst;

    function setUp() public {
        _deployCluster();
        holders = [alice, bob, carol];
        for (uint256 i = 0; i < 3; ++i) {
            inst[i] = _instance(i);
            assertEq(_join(holders[i], inst[i]), i + 1, "token id");
        }
        vm.warp(1_000_000);
    }

    function _actionSig(uint256 signerPk, uint8 action, uint256 token, uint256 target, bool nc, uint256 deadline)
        internal
        view
        returns (bytes memory)
    {
        uint256 nonce = cluster.leaderActionNonce(token);
        return _sign(signerPk, cluster.leaderActionDigest(action, token, target, nc, nonce, deadline));
    }

    function _nodePk(uint256 token) internal view returns (uint256) {
        return _nodeKey(inst[token - 1]);
    }

    function _electSigned(uint256 token) internal {
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _actionSig(_nodePk(token), 0, token, 0, false, deadline);
        vm.prank(relayer);
        cluster.electLeaderSigned(token, deadline, sig);
    }

    function test_digest_isEip712() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("DstackClusterNFT"),
                keccak256("1"),
                block.chainid,
                address(cluster)
            )
        );
        assertEq(cluster.domainSeparator(), domain, "domain separator");
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(
                    "LeaderAction(uint8 action,uint256 tokenId,uint256 target,bool noConfidence,uint256 nonce,uint256 deadline)"
                ),
                uint8(2),
                uint256(3),
                uint256(1),
                true,
                uint256(7),
                uint256(99)
            )
        );
        assertEq(
            cluster.leaderActionDigest(2, 3, 1, true, 7, 99),
            keccak256(abi.encodePacked("\x19\x01", domain, structHash)),
            "digest"
        );
    }

    function test_electHeartbeatVote_relayedByAnyone() public {
        _electSigned(1);
        assertEq(cluster.currentLeader(), inst[0], "elected by a relayed signature");
        assertEq(cluster.leaderActionNonce(1), 1, "nonce spent");

        vm.warp(block.timestamp + 100);
        uint256 deadline = block.timestamp + 600;
        bytes memory hb = _actionSig(_nodePk(1), 1, 1, 0, false, deadline);
        vm.prank(relayer);
        cluster.leaderHeartbeatSigned(1, deadline, hb);
        assertEq(cluster.leadershipExpiry(), block.timestamp + 300, "lease renewed");

        // n = 3: two votes replace the leader with the next token.
        for (uint256 voter = 2; voter <= 3; ++voter) {
            bytes memory v = _actionSig(_nodePk(voter), 2, voter, 1, true, deadline);
            vm.prank(relayer);
            cluster.castVoteSigned(voter, 1, true, deadline, v);
        }
        assertEq(cluster.currentLeaderTokenId(), 2, "no confidence moved the leader");
        assertEq(cluster.currentLeader(), inst[1], "leader instance");
    }

    function test_replay_isRefused() public {
        uint256 deadline = block.timestamp + 600;
        bytes memory sig = _actionSig(_nodePk(1), 0, 1, 0, false, deadline);
        cluster.electLeaderSigned(1, deadline, sig);
        vm.warp(block.timestamp + 400); // the lease expired: only the nonce stops a replay
        // The digest now carries nonce 1: another signer is recovered.
        vm.expectPartialRevert(DstackClusterNFT.BadLeaderActionSignature.selector);
        cluster.electLeaderSigned(1, deadline, sig);
        assertEq(cluster.leaderTerm(), 1, "no second election");
    }

    function test_expired_isRefused() public {
        uint256 deadline = block.timestamp + 10;
        bytes memory sig = _actionSig(_nodePk(1), 0, 1, 0, false, deadline);
        vm.warp(deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.LeaderActionExpired.selector, deadline, deadline + 1));
        cluster.electLeaderSigned(1, deadline, sig);
    }

    function test_wrongSigner_isRefused() public {
        uint256 deadline = block.timestamp + 600;
        // The token's holder is not its node key; nor is another node's key.
        uint256 strangerPk = 0xBAD;
        bytes memory sig = _actionSig(strangerPk, 0, 1, 0, false, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                DstackClusterNFT.BadLeaderActionSignature.selector, vm.addr(strangerPk), _nodeAddress(inst[0])
            )
        );
        cluster.electLeaderSigned(1, deadline, sig);
        sig = _actionSig(_nodePk(2), 0, 1, 0, false, deadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                DstackClusterNFT.BadLeaderActionSignature.selector, _nodeAddress(inst[1]), _nodeAddress(inst[0])
            )
        );
        cluster.electLeaderSigned(1, deadline, sig);
    }

    function test_wrongToken_isRefused() public {
        uint256 deadline = block.timestamp + 600;
        // Signed for token 1, submitted for token 2: the digest names token 2, so node 2's
        // key would have to have signed it.
        bytes memory sig = _actionSig(_nodePk(1), 0, 1, 0, false, deadline);
        vm.expectPartialRevert(DstackClusterNFT.BadLeaderActionSignature.selector);
        cluster.electLeaderSigned(2, deadline, sig);
        // A vote signed against token 1 cannot be replayed against another target.
        _electSigned(1);
        bytes memory v = _actionSig(_nodePk(2), 2, 2, 1, true, deadline);
        vm.expectPartialRevert(DstackClusterNFT.BadLeaderActionSignature.selector);
        cluster.castVoteSigned(2, 3, true, deadline, v);
        // Another action with the same fields: an election signature is no heartbeat.
        bytes memory e = _actionSig(_nodePk(1), 0, 1, 0, false, deadline);
        vm.expectPartialRevert(DstackClusterNFT.BadLeaderActionSignature.selector);
        cluster.leaderHeartbeatSigned(1, deadline, e);
        // A token without a registered peer cannot act at all.
        vm.prank(admin);
        uint256 bare = cluster.mintNodeAccess(carol, "bare");
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotRegisteredNode.selector, bare));
        cluster.electLeaderSigned(bare, deadline, sig);
    }

    function test_heartbeat_byNonLeader_isRefused() public {
        _electSigned(1);
        uint256 deadline = block.timestamp + 600;
        bytes memory hb = _actionSig(_nodePk(2), 1, 2, 0, false, deadline);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotCurrentLeader.selector, 2, 1));
        cluster.leaderHeartbeatSigned(2, deadline, hb);
        assertEq(cluster.leaderActionNonce(2), 0, "a refused call spends no nonce");
    }

    function test_leaderState() public {
        _electSigned(2);
        (uint256 token, address instance, uint64 term, uint64 expiry, uint256 votes, uint256 required) =
            cluster.leaderState();
        assertEq(token, 2, "token");
        assertEq(instance, inst[1], "instance");
        assertEq(term, 1, "term");
        assertEq(expiry, block.timestamp + 300, "expiry");
        assertEq(votes, 0, "votes");
        assertEq(required, 2, "required");
    }
}
