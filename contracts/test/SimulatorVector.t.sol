// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClusterFixture} from "./lib/ClusterFixture.sol";
import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";
import {DstackSignatureChain as Chain} from "../src/DstackSignatureChain.sol";

/// @title The public dstack simulator fixture verifies on chain (test/vectors/dstack-simulator-chain.json,
///        a copy of shared/vectors). Its KMS signature names app id 0x5bb4…6c56, so the cluster is
///        deployed AT that address; the app key's private half is in the fixture, so chain[0] is signed
///        here for a node key of our choosing, exactly as the guest agent would.
contract SimulatorVectorTest is ClusterFixture {
    string internal json;
    address internal appId;
    address internal vectorRoot;
    uint256 internal vectorAppKey;
    bytes internal vectorKmsSig;

    address internal constant INSTANCE = address(0x00000000000000000000000000000000C0FFEE01);
    uint256 internal constant NODE_KEY = 0x7e57c0ffee;

    function setUp() public {
        json = vm.readFile("test/vectors/dstack-simulator-chain.json");
        appId = vm.parseJsonAddress(json, ".app_id");
        vectorRoot = vm.parseJsonAddress(json, ".kms_root_address");
        vectorAppKey = uint256(vm.parseBytes32(_hex(".app_k256_private_key")));
        vectorKmsSig = vm.parseBytes(_hex(".kms_signature_chain1"));
    }

    function _hex(string memory key) internal view returns (string memory) {
        return string.concat("0x", vm.parseJsonString(json, key));
    }

    function _deployAt(address where, address root) internal {
        deployCodeTo(where, abi.encodePacked(type(DstackClusterNFT).creationCode, abi.encode(admin, root)));
        cluster = DstackClusterNFT(where);
        vm.prank(admin);
        uint256 id = cluster.mintNodeAccess(alice, "simulator");
        vm.prank(alice);
        cluster.bindInstance(id, INSTANCE);
    }

    /// @dev The registration a dstack-simulator node would send: chain[1] straight from the fixture.
    function _vectorRegistration(string memory purpose) internal returns (DstackClusterNFT.PeerRegistration memory r) {
        r.instanceId = INSTANCE;
        r.wgPublicKey = keccak256("simulator wg key");
        r.endpoint = "192.0.2.10:51820";
        r.mode = 1;
        r.nonce = 1;
        r.nodePubkey = _pub(NODE_KEY);
        r.appPubkey = _pub(vectorAppKey);
        r.appSignature = _appSignature(vectorAppKey, purpose, NODE_KEY);
        r.kmsSignature = vectorKmsSig;
        _signRecord(r, NODE_KEY);
    }

    function test_vector_selfConsistent() public {
        (bytes32 x, bytes32 y) = _xy(vectorAppKey);
        assertEq(Chain.compress(x, y), vm.parseBytes(_hex(".app_pub_compressed")), "compressed app key");
        assertEq(Chain.kmsMessageDigest(appId, x, y), vm.parseBytes32(_hex(".kms_digest")), "kms digest");
        assertEq(vm.addr(vectorAppKey), vm.parseJsonAddress(json, ".app_address"), "app address");

        // chain[0] message format, checked against the fixture's derived keys.
        uint256 derived = uint256(vm.parseBytes32(string.concat("0x", vm.parseJsonString(json, ".derived[0].key"))));
        (x, y) = _xy(derived);
        string memory message = vm.parseJsonString(json, ".derived[0].app_signed_message");
        assertEq(Chain.appMessageDigest("test-purpose", x, y), keccak256(bytes(message)), "app message");
    }

    function test_vector_accepted() public {
        _deployAt(appId, vectorRoot);
        DstackClusterNFT.PeerRegistration memory r = _vectorRegistration("dstack-p2p:node");
        vm.prank(relayer);
        cluster.registerPeer(r);
        assertTrue(cluster.instanceIsRegistered(INSTANCE), "registered");
        assertEq(cluster.getPeer(INSTANCE).kmsSignature, vectorKmsSig, "kms sig stored");
    }

    function test_vector_anyByteFlipRefused() public {
        _deployAt(appId, vectorRoot);
        DstackClusterNFT.PeerRegistration memory r = _vectorRegistration("dstack-p2p:node");
        uint256 refused;
        refused += _flipEach(r, r.kmsSignature);
        refused += _flipEach(r, r.appSignature);
        refused += _flipEach(r, r.nodeSignature);
        refused += _flipEach(r, r.appPubkey);
        refused += _flipEach(r, r.nodePubkey);
        assertEq(refused, 65 * 3 + 64 * 2, "every flip refused");
        cluster.registerPeer(r); // and the untouched record still verifies
    }

    /// @dev Flip each byte of `field` (which aliases a member of `r`) in turn and count refusals.
    function _flipEach(DstackClusterNFT.PeerRegistration memory r, bytes memory field) internal returns (uint256 n) {
        for (uint256 i = 0; i < field.length; ++i) {
            field[i] = bytes1(uint8(field[i]) ^ 0xff);
            try cluster.registerPeer(r) {}
                catch {
                ++n;
            }
            field[i] = bytes1(uint8(field[i]) ^ 0xff);
        }
    }

    function test_vector_wrongKmsRootRefused() public {
        _deployAt(appId, address(0xdead)); // same app id, other root
        DstackClusterNFT.PeerRegistration memory r = _vectorRegistration("dstack-p2p:node");
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.BadKmsSignature.selector, vectorRoot, address(0xdead)));
        cluster.registerPeer(r);
    }

    function test_vector_wrongAppIdRefused() public {
        // Right root, but the cluster lives elsewhere: the KMS message names another app.
        _deployAt(address(uint160(appId) ^ 1), vectorRoot);
        DstackClusterNFT.PeerRegistration memory r = _vectorRegistration("dstack-p2p:node");
        vm.expectPartialRevert(DstackClusterNFT.BadKmsSignature.selector);
        cluster.registerPeer(r);
    }

    function test_vector_wrongPurposeRefused() public {
        _deployAt(appId, vectorRoot);
        DstackClusterNFT.PeerRegistration memory r = _vectorRegistration("test-purpose");
        vm.expectPartialRevert(DstackClusterNFT.BadAppSignature.selector);
        cluster.registerPeer(r);
        r = _vectorRegistration("dstack-p2p:wireguard");
        vm.expectPartialRevert(DstackClusterNFT.BadAppSignature.selector);
        cluster.registerPeer(r);
    }

    /// @dev The general case: a KMS root made up here signs an app key for this cluster's address.
    function test_freshKmsRoot() public {
        _deployCluster(); // fixture root and app key, ordinary deployment address
        vm.prank(admin);
        uint256 id = cluster.mintNodeAccess(bob, "fresh");
        vm.prank(bob);
        cluster.bindInstance(id, INSTANCE);
        DstackClusterNFT.PeerRegistration memory r = _registration(INSTANCE, 1);
        cluster.registerPeer(r);
        assertTrue(cluster.instanceIsRegistered(INSTANCE), "registered under a fresh root");
        assertEq(cluster.getPeer(INSTANCE).appPubkey, _pub(appKey), "app key from the fresh root's chain");
    }
}
