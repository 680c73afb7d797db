// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClusterFixture} from "./lib/ClusterFixture.sol";

/// @title isAppAllowed called the way the dstack KMS calls it: raw ABI with selector 0x1e079198 and the
///        AppBootInfo layout of docs/dstack-facts.md, declared here independently of src/IAppAuth.sol so a drift
///        in our interface file would fail this test.
contract AppAuthRawCallTest is ClusterFixture {
    /// @dev dstack kms/auth-eth field order; do not reorder.
    struct KmsBootInfo {
        address appId;
        bytes32 composeHash;
        address instanceId;
        bytes32 deviceId;
        bytes32 mrAggregated;
        bytes32 mrSystem;
        bytes32 osImageHash;
        string tcbStatus;
        string[] advisoryIds;
    }

    bytes32 internal constant COMPOSE = keccak256("app-compose.json");
    address internal constant INSTANCE = address(0x1D1D1D);

    function setUp() public {
        _deployCluster();
        vm.prank(admin);
        cluster.addComposeHash(COMPOSE);
    }

    function _info(address instanceId) internal view returns (KmsBootInfo memory b) {
        string[] memory advisories = new string[](2);
        advisories[0] = "INTEL-SA-00837";
        advisories[1] = "INTEL-SA-00615";
        b = KmsBootInfo({
            appId: address(cluster),
            composeHash: COMPOSE,
            instanceId: instanceId,
            deviceId: keccak256("device"),
            mrAggregated: keccak256("mr aggregated"),
            mrSystem: keccak256("mr system"),
            osImageHash: keccak256("os image"),
            tcbStatus: "UpToDate",
            advisoryIds: advisories
        });
    }

    /// @dev What DstackKms does: IAppAuth(bootInfo.appId).isAppAllowed(bootInfo), decoded as (bool, string).
    function _kmsAsks(KmsBootInfo memory b) internal view returns (bool allowed, string memory reason) {
        (bool ok, bytes memory ret) = b.appId.staticcall(abi.encodeWithSelector(bytes4(0x1e079198), b));
        assertTrue(ok, "isAppAllowed must not revert");
        (allowed, reason) = abi.decode(ret, (bool, string));
    }

    function test_rawCall_strictPolicy() public {
        (bool allowed, string memory reason) = _kmsAsks(_info(INSTANCE));
        assertFalse(allowed, "unbound instance refused");
        assertEq(reason, "Instance not bound to a live node token", "reason");

        vm.prank(admin);
        uint256 id = cluster.mintNodeAccess(alice, "n1");
        vm.prank(alice);
        cluster.bindInstance(id, INSTANCE);
        (allowed, reason) = _kmsAsks(_info(INSTANCE));
        assertTrue(allowed, "bound instance boots");
        assertEq(reason, "", "no reason");

        KmsBootInfo memory b = _info(INSTANCE);
        b.composeHash = keccak256("other compose");
        (allowed, reason) = _kmsAsks(b);
        assertFalse(allowed, "unknown compose refused");
        assertEq(reason, "Compose hash not allowed", "reason");
    }

    function test_rawCall_permissivePolicy() public {
        vm.prank(admin);
        cluster.setBootPolicy(1);
        (bool allowed, string memory reason) = _kmsAsks(_info(INSTANCE));
        assertTrue(allowed, "any instance with an allowed compose boots");
        assertEq(reason, "", "no reason");

        vm.prank(admin);
        cluster.setAllowAnyDevice(false);
        (allowed, reason) = _kmsAsks(_info(INSTANCE));
        assertFalse(allowed, "device refused");
        assertEq(reason, "Device not allowed", "reason");
    }

    function test_rawCall_supportsInterface() public view {
        (bool ok, bytes memory ret) =
            address(cluster).staticcall(abi.encodeWithSelector(bytes4(0x01ffc9a7), bytes4(0x1e079198)));
        assertTrue(ok && abi.decode(ret, (bool)), "ERC-165 IAppAuth");
        (ok, ret) = address(cluster).staticcall(abi.encodeWithSelector(bytes4(0x01ffc9a7), bytes4(0x8fd37527)));
        assertTrue(ok && abi.decode(ret, (bool)), "ERC-165 management");
    }
}
