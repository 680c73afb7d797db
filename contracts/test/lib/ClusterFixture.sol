// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TestBase, Vm} from "./TestBase.sol";
import {DstackClusterNFT} from "../../src/DstackClusterNFT.sol";
import {DstackSignatureChain as Chain} from "../../src/DstackSignatureChain.sol";

/// @title Shared fixture: a cluster with a test KMS root, and builders for signed registrations.
/// @dev Plays the dstack KMS (root key signs the app key for app id = cluster address) and the
///      guest agent (app key signs node keys) with keys generated here.
abstract contract ClusterFixture is TestBase {
    DstackClusterNFT internal cluster;

    address internal admin = address(0xA11CE);
    address internal alice = address(0xA1);
    address internal bob = address(0xB0B);
    address internal relayer = address(0x5E1A7);

    uint256 internal kmsRootKey = uint256(keccak256("test kms root"));
    uint256 internal appKey = uint256(keccak256("test app key"));

    /// @dev KMS signature over the app key for the current `cluster` address (cached per address).
    bytes internal kmsSig;
    address private kmsSigFor;

    function _deployCluster() internal {
        cluster = new DstackClusterNFT(admin, vm.addr(kmsRootKey));
        kmsSigFor = address(0);
    }

    // ---------------------------------------------------------------- keys and signatures

    function _pub(uint256 pk) internal returns (bytes memory) {
        Vm.Wallet memory w = vm.createWallet(pk);
        return abi.encodePacked(bytes32(w.publicKeyX), bytes32(w.publicKeyY));
    }

    function _xy(uint256 pk) internal returns (bytes32 x, bytes32 y) {
        Vm.Wallet memory w = vm.createWallet(pk);
        return (bytes32(w.publicKeyX), bytes32(w.publicKeyY));
    }

    /// @dev r || s || v with dstack's v in {0, 1}.
    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v - 27);
    }

    function _kmsSignature(uint256 rootPk, address appId, uint256 appPk) internal returns (bytes memory) {
        (bytes32 x, bytes32 y) = _xy(appPk);
        return _sign(rootPk, Chain.kmsMessageDigest(appId, x, y));
    }

    function _appSignature(uint256 appPk, string memory purpose, uint256 nodePk) internal returns (bytes memory) {
        (bytes32 x, bytes32 y) = _xy(nodePk);
        return _sign(appPk, Chain.appMessageDigest(purpose, x, y));
    }

    // ---------------------------------------------------------------- records

    function _nodeKey(address instanceId) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode("node key", instanceId)));
    }

    function _wgKey(address instanceId) internal pure returns (bytes32) {
        return keccak256(abi.encode("wg key", instanceId));
    }

    function _endpoint(address instanceId) internal pure returns (string memory) {
        return string.concat("10.200.0.", vm.toString(uint256(uint160(instanceId)) % 250), ":51820");
    }

    /// @dev Sign (as the node) a registration already filled with its record fields and keys.
    function _signRecord(DstackClusterNFT.PeerRegistration memory r, uint256 nodePk) internal view {
        bytes32 digest = cluster.peerRecordDigest(r.instanceId, r.wgPublicKey, r.endpoint, r.mode, r.nonce);
        r.nodeSignature = _sign(nodePk, digest);
    }

    /// @dev A complete WireGuard registration for `instanceId`, signed through this fixture's chain.
    function _registration(address instanceId, uint64 nonce)
        internal
        returns (DstackClusterNFT.PeerRegistration memory r)
    {
        uint256 nodePk = _nodeKey(instanceId);
        if (kmsSigFor != address(cluster)) {
            kmsSig = _kmsSignature(kmsRootKey, address(cluster), appKey);
            kmsSigFor = address(cluster);
        }
        r.instanceId = instanceId;
        r.wgPublicKey = _wgKey(instanceId);
        r.endpoint = _endpoint(instanceId);
        r.mode = cluster.MODE_WIREGUARD();
        r.nonce = nonce;
        r.nodePubkey = _pub(nodePk);
        r.appPubkey = _pub(appKey);
        r.appSignature = _appSignature(appKey, cluster.NODE_KEY_PURPOSE(), nodePk);
        r.kmsSignature = kmsSig;
        _signRecord(r, nodePk);
    }

    /// @dev Admin mints a token to `holder`, the holder binds `instanceId`, a relayer registers it.
    function _join(address holder, address instanceId) internal returns (uint256 tokenId) {
        vm.prank(admin);
        tokenId = cluster.mintNodeAccess(holder, "node");
        vm.prank(holder);
        cluster.bindInstance(tokenId, instanceId);
        DstackClusterNFT.PeerRegistration memory r = _registration(instanceId, cluster.nonceOf(instanceId) + 1);
        vm.prank(relayer);
        cluster.registerPeer(r);
    }

    function _instance(uint256 i) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("instance", i)))));
    }

    function _nodeAddress(address instanceId) internal pure returns (address) {
        return vm.addr(_nodeKey(instanceId));
    }
}
