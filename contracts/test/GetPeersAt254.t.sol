// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClusterFixture} from "./lib/ClusterFixture.sol";
import {console} from "./lib/TestBase.sol";
import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";

/// @title A full cluster: 254 registered peers, getPeers() within an eth_call's gas, per-call gas logged
///        (-vv). Figures from real receipts: gas-report.sh.
contract GetPeersAt254Test is ClusterFixture {
    uint256 internal constant ETH_CALL_GAS_CAP = 30_000_000; // anvil's block limit; geth's RPC cap is 50M

    function setUp() public {
        _deployCluster();
        for (uint256 i = 0; i < 254; ++i) {
            _join(alice, _instance(i));
        }
    }

    function test_getPeers_fullClusterFitsEthCall() public view {
        uint256 before = gasleft();
        DstackClusterNFT.Peer[] memory peers = cluster.getPeers{gas: ETH_CALL_GAS_CAP}();
        uint256 used = before - gasleft();
        console.log("getPeers() gas at 254 peers", used);
        assertEq(peers.length, 254, "all peers");
        assertEq(peers[253].tokenId, 254, "last overlay address 10.0.1.254");
        vm.assertLt(used, ETH_CALL_GAS_CAP, "getPeers() fits an eth_call");

        before = gasleft();
        cluster.getPeerEndpoints{gas: ETH_CALL_GAS_CAP}();
        console.log("getPeerEndpoints() gas at 254 peers", before - gasleft());
    }

    function test_fullCluster_refusesMoreAndRecovers() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.ClusterFull.selector, 254));
        cluster.mintNodeAccess(bob, "255th");
        vm.prank(admin);
        cluster.burn(128);
        assertEq(cluster.peerCount(), 253, "one gone");
        assertEq(_join(bob, address(0xFEED)), 128, "the freed address is reused");
    }
}
