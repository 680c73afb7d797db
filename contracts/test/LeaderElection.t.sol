// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClusterFixture} from "./lib/ClusterFixture.sol";
import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title Leader election (seed 003, fixed): f+1 no-confidence votes of the live registered nodes,
///        votes scoped to a term, succession by token id, heartbeat and lease expiry.
contract LeaderElectionTest is ClusterFixture {
    address internal carol = address(0xCA401);
    address internal dave = address(0xDA4E);
    address internal erin = address(0xE41);
    address[5] internal holders;
    address[5] internal inst;

    function setUp() public {
        _deployCluster();
        holders = [alice, bob, carol, dave, erin];
        for (uint256 i = 0; i < 5; ++i) {
            inst[i] = _instance(i);
        }
        vm.warp(1_000_000);
    }

    /// @dev Join the first n nodes: token i+1 held by holders[i].
    function _cluster(uint256 n) internal {
        for (uint256 i = 0; i < n; ++i) {
            assertEq(_join(holders[i], inst[i]), i + 1, "token id");
        }
    }

    function _elect(uint256 tokenId) internal {
        vm.prank(holders[tokenId - 1]);
        cluster.electLeader(tokenId);
    }

    function _vote(uint256 voter, uint256 target, bool noConfidence) internal {
        vm.prank(holders[voter - 1]);
        cluster.castVote(voter, target, noConfidence);
    }

    function test_requiredVotes_isFPlusOne() public {
        assertEq(cluster.requiredVotes(), 1, "n=0");
        uint256[6] memory expected = [uint256(0), 1, 1, 2, 2, 3];
        for (uint256 n = 1; n <= 5; ++n) {
            _join(holders[n - 1], inst[n - 1]);
            assertEq(cluster.requiredVotes(), expected[n], "f+1 for n = 2f+1");
        }
    }

    function test_electLeader() public {
        _cluster(3);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.LeaderChanged(0, 2, 1, uint64(block.timestamp + 300), 0);
        _elect(2);
        assertEq(cluster.currentLeaderTokenId(), 2, "leader");
        assertEq(cluster.currentLeader(), inst[1], "leader instance");
        assertEq(cluster.leaderTerm(), 1, "term");
        assertEq(cluster.leadershipExpiry(), block.timestamp + 300, "expiry");

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.LeaderStillActive.selector, 2, block.timestamp + 300));
        cluster.electLeader(1);

        vm.warp(block.timestamp + 301);
        _elect(1);
        assertEq(cluster.currentLeaderTokenId(), 1, "expired leader replaced");
        assertEq(cluster.leaderTerm(), 2, "new term");
    }

    function test_electLeader_refusals() public {
        _cluster(2);
        vm.prank(admin);
        uint256 unregistered = cluster.mintNodeAccess(carol, "x");
        vm.prank(carol);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotRegisteredNode.selector, unregistered));
        cluster.electLeader(unregistered);

        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotNodeController.selector, 1, bob));
        cluster.electLeader(1);
    }

    function test_nodeKeyControlsItsToken() public {
        _cluster(2);
        address nodeKey = _nodeAddress(inst[0]);
        vm.prank(nodeKey);
        cluster.electLeader(1);
        vm.warp(block.timestamp + 100);
        vm.prank(nodeKey);
        cluster.leaderHeartbeat();
        assertEq(cluster.leadershipExpiry(), block.timestamp + 300, "renewed by node key");
        vm.prank(_nodeAddress(inst[1]));
        cluster.castVote(2, 1, true);
        assertEq(cluster.currentLeaderTokenId(), 2, "node key voted");
    }

    function test_heartbeat() public {
        _cluster(2);
        vm.expectRevert(DstackClusterNFT.NoLeader.selector);
        cluster.leaderHeartbeat();
        _elect(1);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotLeader.selector, bob));
        cluster.leaderHeartbeat();

        vm.warp(block.timestamp + 200);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.LeaderHeartbeat(1, uint64(block.timestamp + 300));
        vm.prank(alice);
        cluster.leaderHeartbeat();
        vm.warp(block.timestamp + 250); // still within the renewed lease
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.LeaderStillActive.selector, 1, block.timestamp + 50));
        cluster.electLeader(2);
    }

    function test_leaderLease() public {
        _cluster(1);
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InvalidLeaderLease.selector, 0));
        cluster.setLeaderLease(0);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InvalidLeaderLease.selector, 30 days + 1));
        cluster.setLeaderLease(30 days + 1);
        cluster.setLeaderLease(60);
        vm.stopPrank();
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        cluster.setLeaderLease(1);
        _elect(1);
        assertEq(cluster.leadershipExpiry(), block.timestamp + 60, "short lease");
    }

    function test_castVote_refusals() public {
        _cluster(3);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotRegisteredNode.selector, 9));
        cluster.castVote(9, 1, true);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotNodeController.selector, 1, bob));
        cluster.castVote(1, 2, true);
        vm.prank(alice);
        vm.expectRevert(DstackClusterNFT.NoLeader.selector);
        cluster.castVote(1, 2, true);
        _elect(2);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotCurrentLeader.selector, 3, 2));
        cluster.castVote(1, 3, true);
    }

    /// @dev 2f+1 = 3 nodes, f+1 = 2 votes: the seed's own test flow.
    function test_noConfidence_threshold() public {
        _cluster(3);
        _elect(1);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.VoteCast(2, 1, true, 1, 2);
        _vote(2, 1, true);
        _vote(2, 1, true); // repeating a vote does not count twice
        assertEq(cluster.noConfidenceVotes(), 1, "one vote");
        assertEq(cluster.currentLeaderTokenId(), 1, "still leader");

        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.LeaderChanged(1, 2, 2, uint64(block.timestamp + 300), 1);
        _vote(3, 1, true);
        assertEq(cluster.currentLeaderTokenId(), 2, "successor is the next token id");
        assertEq(cluster.noConfidenceVotes(), 0, "fresh term, no votes");
        (uint64 term, uint256 target) = cluster.voteOf(3);
        assertEq(term, 1, "vote kept its term");
        assertEq(target, 1, "vote kept its target");
    }

    function test_withdrawVote() public {
        _cluster(3);
        _elect(1);
        _vote(2, 1, true);
        _vote(2, 1, false);
        assertEq(cluster.noConfidenceVotes(), 0, "withdrawn");
        (uint64 term,) = cluster.voteOf(2);
        assertEq(term, 0, "cleared");
        _vote(2, 1, false); // nothing to withdraw: a no-op, not an underflow
        _vote(3, 1, true);
        assertEq(cluster.currentLeaderTokenId(), 1, "one vote short");
    }

    /// @dev Seed bug: a changed vote was subtracted from the NEW target. Here a vote cast against the old
    ///      leader is withdrawn after the leadership moved: the new leader's count must not change.
    function test_seedBug_changedVoteSubtractedFromItsOwnTarget() public {
        _cluster(5); // f+1 = 3
        _elect(1);
        _vote(2, 1, true); // against leader 1, term 1
        vm.warp(block.timestamp + 301);
        _elect(3); // leader 1 expired, 3 takes over: term 2
        _vote(4, 3, true); // one vote against 3
        assertEq(cluster.noConfidenceVotes(), 1, "only the current-term vote counts");

        _vote(2, 3, false); // voter 2 has no vote against 3: nothing to subtract
        assertEq(cluster.noConfidenceVotes(), 1, "new target untouched");
        _vote(2, 1, false); // withdrawing the old vote subtracts nothing from the current term
        assertEq(cluster.noConfidenceVotes(), 1, "still untouched");

        _vote(2, 3, true); // now 2 votes against 3 for real
        assertEq(cluster.noConfidenceVotes(), 2, "counted once");
    }

    /// @dev Seed bug: `noConfidenceCount[newLeader] = 0` left voters pointing at a zeroed counter, so
    ///      their later withdrawal underflowed and reverted. Votes here are term-scoped instead.
    function test_seedBug_noUnderflowAfterLeaderChange() public {
        _cluster(3);
        _elect(1);
        _vote(2, 2, false); // withdraw with nothing cast
        _vote(2, 1, true);
        _vote(3, 1, true); // leader 1 replaced by 2
        assertEq(cluster.currentLeaderTokenId(), 2, "replaced");
        _vote(3, 1, false);
        _vote(2, 1, false);
        assertEq(cluster.noConfidenceVotes(), 0, "no underflow");
        _vote(1, 2, true);
        assertEq(cluster.noConfidenceVotes(), 1, "fresh vote counts");
    }

    /// @dev Seed bug: requiredVotes came from a manual, looping updateClusterSize(). Here it follows the
    ///      live registered count, and a shrinking cluster can complete a pending vote.
    function test_countsFollowMembership_shrinkCompletesVote() public {
        _cluster(5); // required 3
        _elect(1);
        _vote(2, 1, true);
        _vote(3, 1, true);
        assertEq(cluster.currentLeaderTokenId(), 1, "2 of 3");
        vm.prank(erin);
        cluster.burn(5); // n = 4, required 2: the two standing votes now suffice
        assertEq(cluster.requiredVotes(), 2, "threshold follows n");
        assertEq(cluster.currentLeaderTokenId(), 2, "replaced on membership change");
    }

    function test_countsFollowMembership_leavingVoterTakesItsVote() public {
        _cluster(5);
        _elect(1);
        _vote(2, 1, true);
        _vote(3, 1, true);
        vm.prank(carol);
        cluster.transferFrom(carol, dave, 3); // voter 3 leaves the registered set
        assertEq(cluster.noConfidenceVotes(), 1, "its vote left with it");
        (uint64 term,) = cluster.voteOf(3);
        assertEq(term, 0, "vote deleted");
        assertEq(cluster.currentLeaderTokenId(), 1, "1 of 2 is not enough");
    }

    function test_leaderLeaves_successorWraps() public {
        _cluster(3);
        vm.warp(block.timestamp + 1);
        _elect(3);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.LeaderChanged(3, 1, 2, uint64(block.timestamp + 300), 2);
        vm.prank(admin);
        cluster.burn(3);
        assertEq(cluster.currentLeaderTokenId(), 1, "wrapped to the lowest id");
        vm.prank(bob);
        cluster.unbindInstance(2);
        vm.prank(alice);
        cluster.unbindInstance(1);
        assertEq(cluster.currentLeaderTokenId(), 0, "no one left");
        assertEq(cluster.leadershipExpiry(), 0, "no expiry");
    }

    /// @dev An expired leader cannot wipe the votes against it by electing itself again.
    function test_expiredLeaderReelectingItselfKeepsVotes() public {
        _cluster(5); // f+1 = 3
        _elect(1);
        _vote(2, 1, true);
        _vote(3, 1, true);
        vm.warp(block.timestamp + 301);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.LeaderHeartbeat(1, uint64(block.timestamp + 300));
        _elect(1);
        assertEq(cluster.leaderTerm(), 1, "same term");
        assertEq(cluster.noConfidenceVotes(), 2, "votes kept");
        _vote(4, 1, true);
        assertEq(cluster.currentLeaderTokenId(), 2, "third vote still topples it");
    }

    function test_singleNode_stepsDown() public {
        _cluster(1);
        _elect(1);
        _vote(1, 1, true); // n = 1, f+1 = 1, nobody else to take over
        assertEq(cluster.currentLeaderTokenId(), 0, "vacant");
        _elect(1);
        assertEq(cluster.currentLeaderTokenId(), 1, "re-elected");
    }
}
