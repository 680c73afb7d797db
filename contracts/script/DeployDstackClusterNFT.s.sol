// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";

/// @dev The cheatcodes a deployment needs (no forge-std here: no internet).
interface ScriptVm {
    function envAddress(string calldata name) external view returns (address);
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256);
    function envOr(string calldata name, address defaultValue) external view returns (address);
    function envOr(string calldata name, bytes32 defaultValue) external view returns (bytes32);
    function envOr(string calldata name, bool defaultValue) external view returns (bool);
    function addr(uint256 privateKey) external pure returns (address);
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
}

/// @title Deploy a cluster contract and apply its initial policy from the environment.
/// @notice Env: KMS_ROOT_ADDRESS (required); PRIVATE_KEY (anvil's first key by default); OWNER
///         (default: the deployer); optional COMPOSE_HASH, BOOT_POLICY (0 strict, 1 permissive),
///         MAX_NODES, NETWORK_MODES (bit mask, 1 TLS, 2 WireGuard, 3 both), ALLOW_ANY_DEVICE,
///         MINT_PRICE + PUBLIC_MINTING, REQUIRE_TCB_UP_TO_DATE (default true). OWNER other than the
///         deployer is offered the ownership and becomes owner once it calls acceptOwnership(). Logs "DstackClusterNFT deployed at: <address>".
contract DeployDstackClusterNFT {
    ScriptVm internal constant vm = ScriptVm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant ANVIL_KEY_0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;

    function run() external returns (DstackClusterNFT cluster) {
        address kmsRoot = vm.envAddress("KMS_ROOT_ADDRESS");
        uint256 key = vm.envOr("PRIVATE_KEY", ANVIL_KEY_0);
        address deployer = vm.addr(key);
        address owner = vm.envOr("OWNER", deployer);

        vm.startBroadcast(key);
        cluster = new DstackClusterNFT(deployer, kmsRoot);
        bytes32 compose = vm.envOr("COMPOSE_HASH", bytes32(0));
        if (compose != bytes32(0)) cluster.addComposeHash(compose);
        uint8 policy = _small("BOOT_POLICY", 0);
        if (policy != 0) cluster.setBootPolicy(policy);
        uint256 maxNodes = vm.envOr("MAX_NODES", uint256(254));
        uint8 modes = _small("NETWORK_MODES", 3);
        if (maxNodes != 254 || modes != 3) cluster.setClusterConfig(maxNodes, modes);
        if (!vm.envOr("ALLOW_ANY_DEVICE", true)) cluster.setAllowAnyDevice(false);
        if (!vm.envOr("REQUIRE_TCB_UP_TO_DATE", true)) cluster.setRequireTcbUpToDate(false);
        uint256 price = vm.envOr("MINT_PRICE", uint256(0));
        bool publicMinting = vm.envOr("PUBLIC_MINTING", false);
        if (price != 0 || publicMinting) cluster.setMintingPolicy(price, publicMinting);
        if (owner != deployer) cluster.transferOwnership(owner); // two-step: OWNER calls acceptOwnership()
        vm.stopBroadcast();

        _log("DstackClusterNFT deployed at:", address(cluster));
    }

    function _small(string memory name, uint8 defaultValue) internal view returns (uint8) {
        uint256 v = vm.envOr(name, uint256(defaultValue));
        require(v <= type(uint8).max, string.concat(name, " must fit in a uint8"));
        // forge-lint: disable-next-line(unsafe-typecast)
        return uint8(v); // checked above
    }

    function _log(string memory s, address a) internal view {
        (bool ok,) = address(0x000000000000000000636F6e736F6c652e6c6f67)
            .staticcall(abi.encodeWithSignature("log(string,address)", s, a));
        ok;
    }
}
