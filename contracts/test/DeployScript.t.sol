// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase} from "./lib/TestBase.sol";
import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";
import {DeployDstackClusterNFT} from "../script/DeployDstackClusterNFT.s.sol";

/// @title The deployment script applies the policy it is given through the environment.
contract DeployScriptTest is TestBase {
    function test_deployScript_appliesEnvPolicy() public {
        address root = address(0x5157);
        address newOwner = address(0x0E4E4);
        vm.setEnv("KMS_ROOT_ADDRESS", vm.toString(root));
        vm.setEnv("OWNER", vm.toString(newOwner));
        vm.setEnv("COMPOSE_HASH", "0x1111111111111111111111111111111111111111111111111111111111111111");
        vm.setEnv("BOOT_POLICY", "1");
        vm.setEnv("MAX_NODES", "10");
        vm.setEnv("NETWORK_MODES", "2");
        vm.setEnv("ALLOW_ANY_DEVICE", "false");
        vm.setEnv("MINT_PRICE", "5");
        vm.setEnv("PUBLIC_MINTING", "true");
        vm.setEnv("REQUIRE_TCB_UP_TO_DATE", "false");

        DstackClusterNFT c = new DeployDstackClusterNFT().run();
        assertEq(c.kmsRoot(), root, "kms root");
        assertEq(c.pendingOwner(), newOwner, "ownership offered (two-step: the owner accepts)");
        vm.prank(newOwner);
        c.acceptOwnership();
        assertEq(c.owner(), newOwner, "ownership handed over");
        assertTrue(
            c.allowedComposeHashes(bytes32(0x1111111111111111111111111111111111111111111111111111111111111111)),
            "compose"
        );
        assertEq(uint256(c.bootPolicy()), 1, "permissive");
        assertEq(c.maxNodes(), 10, "max nodes");
        assertEq(uint256(c.networkModes()), 2, "modes");
        assertFalse(c.allowAnyDevice(), "device list on");
        assertEq(c.mintPrice(), 5, "price");
        assertTrue(c.publicMinting(), "public");
        assertFalse(c.requireTcbUpToDate(), "tcb policy relaxed");
    }
}
