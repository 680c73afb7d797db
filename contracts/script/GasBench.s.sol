// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";
import {DstackSignatureChain as Chain} from "../src/DstackSignatureChain.sol";

interface BenchVm {
    struct Wallet {
        address addr;
        uint256 publicKeyX;
        uint256 publicKeyY;
        uint256 privateKey;
    }

    function envUint(string calldata name) external view returns (uint256);
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256);
    function envOr(string calldata name, address defaultValue) external view returns (address);
    function addr(uint256 privateKey) external pure returns (address);
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    function createWallet(uint256 privateKey) external returns (Wallet memory);
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
}

/// @title Grows a cluster on a live chain to TARGET peers with real transactions, ending with the
///        transactions gas-report.sh measures: [.., registerPeer (the TARGET-th peer), registerPeer
///        (update of token 1), burn (the TARGET-th token), then mint + bind + registerPeer to restore].
/// @notice Env: TARGET, CLUSTER (continue growing an earlier run's cluster), PRIVATE_KEY.
///         Test keys only: the KMS root and app key are made up here.
contract GasBench {
    BenchVm internal constant vm = BenchVm(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant ANVIL_KEY_0 = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 internal constant ROOT_KEY = uint256(keccak256("bench kms root"));
    uint256 internal constant APP_KEY = uint256(keccak256("bench app key"));

    DstackClusterNFT internal c;
    address internal operator;
    bytes internal appPub;
    bytes internal kmsSig;

    function run() external {
        uint256 key = vm.envOr("PRIVATE_KEY", ANVIL_KEY_0);
        uint256 target = vm.envUint("TARGET");
        require(target >= 2 && target <= 254, "TARGET must be 2..254");
        operator = vm.addr(key);
        address existing = vm.envOr("CLUSTER", address(0));

        vm.startBroadcast(key);
        c = existing == address(0) ? new DstackClusterNFT(operator, vm.addr(ROOT_KEY)) : DstackClusterNFT(existing);
        (bytes32 ax, bytes32 ay) = _xy(APP_KEY);
        appPub = abi.encodePacked(ax, ay);
        kmsSig = _sign(ROOT_KEY, Chain.kmsMessageDigest(address(c), ax, ay));

        while (c.peerCount() < target) _join();
        _register(c.instanceOfToken(1)); // update
        uint256 last = c.totalSupply();
        c.burn(last);
        _join();
        vm.stopBroadcast();

        (bool ok,) = address(0x000000000000000000636F6e736F6c652e6c6f67)
            .staticcall(abi.encodeWithSignature("log(string,address)", "bench cluster at:", address(c)));
        ok;
    }

    function _join() internal {
        uint256 id = c.mintNodeAccess(operator, "bench");
        // forge-lint: disable-next-line(unsafe-typecast)
        address instanceId = address(uint160(0xb0000 + id)); // id <= 254
        c.bindInstance(id, instanceId);
        _register(instanceId);
    }

    function _register(address instanceId) internal {
        uint256 nodeKey = uint256(keccak256(abi.encode("bench node", instanceId)));
        (bytes32 nx, bytes32 ny) = _xy(nodeKey);
        DstackClusterNFT.PeerRegistration memory r;
        r.instanceId = instanceId;
        r.wgPublicKey = keccak256(abi.encode("bench wg", instanceId));
        r.endpoint = "203.0.113.200:51820";
        r.mode = 1;
        r.nonce = c.nonceOf(instanceId) + 1;
        r.nodePubkey = abi.encodePacked(nx, ny);
        r.appPubkey = appPub;
        r.appSignature = _sign(APP_KEY, Chain.appMessageDigest(c.NODE_KEY_PURPOSE(), nx, ny));
        r.kmsSignature = kmsSig;
        r.nodeSignature = _sign(nodeKey, c.peerRecordDigest(r.instanceId, r.wgPublicKey, r.endpoint, r.mode, r.nonce));
        c.registerPeer(r);
    }

    function _xy(uint256 pk) internal returns (bytes32, bytes32) {
        BenchVm.Wallet memory w = vm.createWallet(pk);
        return (bytes32(w.publicKeyX), bytes32(w.publicKeyY));
    }

    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v - 27);
    }
}
