// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ClusterFixture} from "./lib/ClusterFixture.sol";
import {DstackClusterNFT} from "../src/DstackClusterNFT.sol";
import {IAppAuth, IAppAuthBasicManagement} from "../src/IAppAuth.sol";
import {DstackSignatureChain as Chain} from "../src/DstackSignatureChain.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC721Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

contract RejectEther {
    receive() external payable {
        revert("no");
    }
}

/// @title Unit tests: every function and every refusal of DstackClusterNFT (election in its own file).
contract DstackClusterNFTTest is ClusterFixture {
    address internal inst1 = address(0x1111);
    address internal inst2 = address(0x2222);

    function setUp() public {
        _deployCluster();
    }

    function _mint(address to) internal returns (uint256 id) {
        vm.prank(admin);
        id = cluster.mintNodeAccess(to, "n");
    }

    function _mintBind(address holder, address instanceId) internal returns (uint256 id) {
        id = _mint(holder);
        vm.prank(holder);
        cluster.bindInstance(id, instanceId);
    }

    function _expectRegisterRevert(DstackClusterNFT.PeerRegistration memory r, bytes memory err) internal {
        vm.expectRevert(err);
        cluster.registerPeer(r);
    }

    // ------------------------------------------------------------ construction and interfaces

    function test_constructor_refusesZeroKmsRoot() public {
        vm.expectRevert(DstackClusterNFT.ZeroKmsRoot.selector);
        new DstackClusterNFT(admin, address(0));
    }

    function test_constructor_defaults() public view {
        assertEq(cluster.owner(), admin, "owner");
        assertEq(cluster.kmsRoot(), vm.addr(kmsRootKey), "kms root");
        assertEq(cluster.maxNodes(), 254, "max nodes");
        assertEq(uint256(cluster.networkModes()), 3, "modes");
        assertEq(uint256(cluster.bootPolicy()), 0, "strict boot");
        assertTrue(cluster.allowAnyDevice(), "any device");
        assertFalse(cluster.publicMinting(), "owner minting");
        assertEq(cluster.NODE_KEY_PURPOSE(), "dstack-p2p:node", "purpose");
        assertEq(cluster.PEER_RECORD_TYPEHASH(), keccak256("dstack-p2p.PeerRecord.v1"), "typehash");
        assertEq(cluster.leaderLease(), 300, "lease");
        assertTrue(cluster.requireTcbUpToDate(), "tcb up to date required");
        assertEq(cluster.pendingOwner(), address(0), "no pending owner");
    }

    function test_supportsInterface() public view {
        assertTrue(cluster.supportsInterface(0x1e079198), "IAppAuth");
        assertTrue(cluster.supportsInterface(0x8fd37527), "IAppAuthBasicManagement");
        assertTrue(cluster.supportsInterface(0x80ac58cd), "ERC721");
        assertTrue(cluster.supportsInterface(0x5b5e139f), "ERC721Metadata");
        assertTrue(cluster.supportsInterface(0x01ffc9a7), "ERC165");
        assertFalse(cluster.supportsInterface(0xffffffff), "ERC165 invalid id");
        assertEq(IAppAuth.isAppAllowed.selector, bytes4(0x1e079198), "selector");
    }

    // ------------------------------------------------------------ app auth management

    function test_composeHashes() public {
        bytes32 h = keccak256("compose");
        vm.expectEmit(address(cluster));
        emit IAppAuthBasicManagement.ComposeHashAdded(h);
        vm.prank(admin);
        cluster.addComposeHash(h);
        assertTrue(cluster.allowedComposeHashes(h), "added");
        vm.expectEmit(address(cluster));
        emit IAppAuthBasicManagement.ComposeHashRemoved(h);
        vm.prank(admin);
        cluster.removeComposeHash(h);
        assertFalse(cluster.allowedComposeHashes(h), "removed");
    }

    function test_devices() public {
        bytes32 d = keccak256("device");
        vm.expectEmit(address(cluster));
        emit IAppAuthBasicManagement.DeviceAdded(d);
        vm.prank(admin);
        cluster.addDevice(d);
        assertTrue(cluster.allowedDeviceIds(d), "added");
        vm.expectEmit(address(cluster));
        emit IAppAuthBasicManagement.DeviceRemoved(d);
        vm.prank(admin);
        cluster.removeDevice(d);
        assertFalse(cluster.allowedDeviceIds(d), "removed");
        vm.prank(admin);
        cluster.setAllowAnyDevice(false);
        assertFalse(cluster.allowAnyDevice(), "any device off");
    }

    function test_bootPolicy() public {
        vm.prank(admin);
        cluster.setBootPolicy(1);
        assertEq(uint256(cluster.bootPolicy()), 1, "permissive");
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.UnknownBootPolicy.selector, uint8(2)));
        cluster.setBootPolicy(2);
    }

    function test_adminFunctions_refuseNonOwner() public {
        bytes memory err = abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice);
        vm.startPrank(alice);
        vm.expectRevert(err);
        cluster.addComposeHash(bytes32(0));
        vm.expectRevert(err);
        cluster.removeComposeHash(bytes32(0));
        vm.expectRevert(err);
        cluster.addDevice(bytes32(0));
        vm.expectRevert(err);
        cluster.removeDevice(bytes32(0));
        vm.expectRevert(err);
        cluster.setAllowAnyDevice(false);
        vm.expectRevert(err);
        cluster.setBootPolicy(1);
        vm.expectRevert(err);
        cluster.setRequireTcbUpToDate(false);
        vm.expectRevert(err);
        cluster.transferOwnership(alice);
        vm.expectRevert(err);
        cluster.setClusterConfig(10, 3);
        vm.expectRevert(err);
        cluster.setMintingPolicy(1, true);
        vm.expectRevert(err);
        cluster.setLeaderLease(10);
        vm.expectRevert(err);
        cluster.withdraw(payable(alice));
        vm.stopPrank();
    }

    // ------------------------------------------------------------ ownership

    function test_ownership_twoStep() public {
        vm.expectEmit(address(cluster));
        emit Ownable2Step.OwnershipTransferStarted(admin, alice);
        vm.prank(admin);
        cluster.transferOwnership(alice);
        assertEq(cluster.owner(), admin, "owner unchanged until accepted");
        assertEq(cluster.pendingOwner(), alice, "pending");

        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        cluster.acceptOwnership();

        vm.expectEmit(address(cluster));
        emit Ownable.OwnershipTransferred(admin, alice);
        vm.prank(alice);
        cluster.acceptOwnership();
        assertEq(cluster.owner(), alice, "new owner");
        assertEq(cluster.pendingOwner(), address(0), "pending cleared");

        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, admin));
        cluster.setBootPolicy(1);
    }

    function test_ownership_wrongTargetCanBeReplaced() public {
        vm.startPrank(admin);
        cluster.transferOwnership(bob);
        cluster.transferOwnership(alice); // a typo is mended before anyone accepts
        vm.stopPrank();
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        cluster.acceptOwnership();
        vm.prank(alice);
        cluster.acceptOwnership();
        assertEq(cluster.owner(), alice, "intended owner");
    }

    // ------------------------------------------------------------ isAppAllowed

    function _boot(address instanceId) internal view returns (IAppAuth.AppBootInfo memory b) {
        b.appId = address(cluster);
        b.composeHash = keccak256("compose");
        b.instanceId = instanceId;
        b.deviceId = keccak256("device");
        b.tcbStatus = "UpToDate";
    }

    function _allowed(IAppAuth.AppBootInfo memory b, bool ok, string memory why) internal view {
        (bool isAllowed, string memory reason) = cluster.isAppAllowed(b);
        assertEq(isAllowed, ok, why);
        assertEq(reason, why, "reason");
    }

    function test_isAppAllowed_reasons() public {
        IAppAuth.AppBootInfo memory b = _boot(inst1);
        _allowed(b, false, "Compose hash not allowed");
        vm.prank(admin);
        cluster.addComposeHash(b.composeHash);
        _allowed(b, false, "Instance not bound to a live node token");

        uint256 id = _mintBind(alice, inst1);
        _allowed(b, true, "");

        b.appId = address(0xBEEF);
        _allowed(b, false, "App id is not this cluster contract");
        b.appId = address(cluster);

        vm.prank(admin);
        cluster.setAllowAnyDevice(false);
        _allowed(b, false, "Device not allowed");
        vm.prank(admin);
        cluster.addDevice(b.deviceId);
        _allowed(b, true, "");

        vm.prank(alice);
        cluster.burn(id);
        _allowed(b, false, "Instance not bound to a live node token");

        vm.prank(admin);
        cluster.setBootPolicy(1);
        _allowed(b, true, "");
        vm.prank(admin);
        cluster.removeComposeHash(b.composeHash);
        _allowed(b, false, "Compose hash not allowed");
    }

    function test_isAppAllowed_tcbPolicy() public {
        IAppAuth.AppBootInfo memory b = _boot(inst1);
        vm.prank(admin);
        cluster.addComposeHash(b.composeHash);
        _mintBind(alice, inst1);
        _allowed(b, true, "");

        string[3] memory stale = ["OutOfDate", "ConfigurationNeeded", ""];
        for (uint256 i = 0; i < stale.length; ++i) {
            b.tcbStatus = stale[i];
            _allowed(b, false, "TCB status is not up to date");
        }
        b.tcbStatus = "uptodate"; // the comparison is exact, as dstack's
        _allowed(b, false, "TCB status is not up to date");

        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.RequireTcbUpToDateSet(false);
        vm.prank(admin);
        cluster.setRequireTcbUpToDate(false);
        assertFalse(cluster.requireTcbUpToDate(), "policy off");
        _allowed(b, true, "");

        vm.prank(admin);
        cluster.setRequireTcbUpToDate(true);
        _allowed(b, false, "TCB status is not up to date");
        b.tcbStatus = "UpToDate";
        _allowed(b, true, "");
    }

    /// Every combination of the five conditions a boot can fail (app id, TCB, compose hash,
    /// device, binding) under both boot policies: refused exactly when one fails, and the
    /// reason is the first failing one in DstackApp's order (TCB before the lists).
    function test_isAppAllowed_reasonOrder() public {
        vm.prank(admin);
        cluster.setAllowAnyDevice(false);
        bytes32 goodCompose = keccak256("compose");
        bytes32 goodDevice = keccak256("device");
        vm.startPrank(admin);
        cluster.addComposeHash(goodCompose);
        cluster.addDevice(goodDevice);
        vm.stopPrank();
        _mintBind(alice, inst1);
        string[5] memory why = [
            "App id is not this cluster contract",
            "TCB status is not up to date",
            "Compose hash not allowed",
            "Device not allowed",
            "Instance not bound to a live node token"
        ];
        for (uint8 policy = 0; policy < 2; ++policy) {
            vm.prank(admin);
            cluster.setBootPolicy(policy);
            for (uint256 bad = 0; bad < 32; ++bad) {
                IAppAuth.AppBootInfo memory b = _boot(bad & 16 != 0 ? inst2 : inst1);
                if (bad & 1 != 0) b.appId = address(0xBEEF);
                if (bad & 2 != 0) b.tcbStatus = "OutOfDate";
                if (bad & 4 != 0) b.composeHash = keccak256("other compose");
                if (bad & 8 != 0) b.deviceId = keccak256("other device");
                uint256 fails = policy == 1 ? bad & 15 : bad;
                string memory want = "";
                for (uint256 k = 0; k < 5; ++k) {
                    if (fails & (1 << k) != 0) {
                        want = why[k];
                        break;
                    }
                }
                _allowed(b, fails == 0, want);
            }
        }
    }

    // ------------------------------------------------------------ minting

    function test_mint_ownerTakesLowestFreeIds() public {
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.NodeAccessMinted(1, alice, "first");
        vm.prank(admin);
        assertEq(cluster.mintNodeAccess(alice, "first"), 1, "id 1");
        assertEq(_mint(bob), 2, "id 2");
        assertEq(_mint(bob), 3, "id 3");
        assertEq(cluster.totalSupply(), 3, "supply");
        assertEq(cluster.labelOf(1), "first", "label");
        assertEq(cluster.liveTokenBitmap(), 14, "bitmap");

        vm.prank(bob);
        cluster.burn(2);
        assertEq(_mint(alice), 2, "reuses id 2");
        assertEq(_mint(alice), 4, "then id 4");
    }

    function test_mint_refusals() public {
        vm.prank(alice);
        vm.expectRevert(DstackClusterNFT.MintingNotPublic.selector);
        cluster.mintNodeAccess(alice, "x");

        vm.deal(admin, 1 ether);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.WrongMintPayment.selector, 1, 0));
        cluster.mintNodeAccess{value: 1}(alice, "x");

        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.LabelTooLong.selector, 65, 64));
        cluster.mintNodeAccess(alice, string(new bytes(65)));

        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721InvalidReceiver.selector, address(0)));
        cluster.mintNodeAccess(address(0), "x");
    }

    function test_mint_public() public {
        vm.prank(admin);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.MintingPolicySet(0.1 ether, true);
        cluster.setMintingPolicy(0.1 ether, true);
        vm.deal(alice, 1 ether);

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.WrongMintPayment.selector, 0.2 ether, 0.1 ether));
        cluster.mintNodeAccess{value: 0.2 ether}(alice, "x");

        vm.prank(alice);
        assertEq(cluster.mintNodeAccess{value: 0.1 ether}(alice, "x"), 1, "public mint");
        assertEq(cluster.ownerOf(1), alice, "owner");
        assertEq(address(cluster).balance, 0.1 ether, "paid");

        // The owner still mints for free.
        assertEq(_mint(bob), 2, "owner mint");

        vm.prank(admin);
        cluster.withdraw(payable(bob));
        assertEq(bob.balance, 0.1 ether, "withdrawn");
    }

    function test_withdraw_refusals() public {
        vm.prank(admin);
        vm.expectRevert(DstackClusterNFT.ZeroAddress.selector);
        cluster.withdraw(payable(address(0)));

        vm.prank(admin);
        cluster.setMintingPolicy(1, true);
        vm.deal(alice, 1);
        vm.prank(alice);
        cluster.mintNodeAccess{value: 1}(alice, "x");
        address sink = address(new RejectEther());
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.WithdrawFailed.selector, sink, 1));
        cluster.withdraw(payable(sink));
    }

    function test_mint_capAndClusterConfig() public {
        vm.prank(admin);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.ClusterConfigSet(2, 2);
        cluster.setClusterConfig(2, 2);
        assertEq(cluster.maxNodes(), 2, "max");
        assertEq(uint256(cluster.networkModes()), 2, "modes");
        _mint(alice);
        _mint(alice);
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.ClusterFull.selector, 2));
        cluster.mintNodeAccess(alice, "x");

        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.MaxNodesBelowLiveTokens.selector, 1, 2));
        cluster.setClusterConfig(1, 3);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.MaxNodesOutOfRange.selector, 0, 254));
        cluster.setClusterConfig(0, 3);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.MaxNodesOutOfRange.selector, 255, 254));
        cluster.setClusterConfig(255, 3);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InvalidNetworkModes.selector, uint8(0)));
        cluster.setClusterConfig(10, 0);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InvalidNetworkModes.selector, uint8(4)));
        cluster.setClusterConfig(10, 4);
        vm.stopPrank();
    }

    /// @dev The pairwise-PSK epoch: an hour by default, 30 s to 30 days, the owner's to set.
    function test_pskEpoch() public {
        assertEq(uint256(cluster.pskEpoch()), 3600, "default");
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InvalidPskEpoch.selector, uint64(29)));
        cluster.setPskEpoch(29);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InvalidPskEpoch.selector, uint64(30 days + 1)));
        cluster.setPskEpoch(30 days + 1);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.PskEpochSet(30);
        cluster.setPskEpoch(30);
        vm.stopPrank();
        assertEq(uint256(cluster.pskEpoch()), 30, "set");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice));
        cluster.setPskEpoch(60);
    }

    function test_mint_fullClusterOf254() public {
        for (uint256 i = 1; i <= 254; ++i) {
            assertEq(_mint(alice), i, "sequential ids");
        }
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.ClusterFull.selector, 254));
        cluster.mintNodeAccess(alice, "x");
        vm.prank(admin);
        cluster.burn(200);
        assertEq(_mint(bob), 200, "hole refilled");
    }

    function test_labelOf_nonexistent() public {
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 9));
        cluster.labelOf(9);
    }

    // ------------------------------------------------------------ binding

    function test_bind() public {
        uint256 id = _mint(alice);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.InstanceBound(id, inst1);
        vm.prank(alice);
        cluster.bindInstance(id, inst1);
        assertEq(cluster.tokenOfInstance(inst1), id, "token of instance");
        assertEq(cluster.instanceOfToken(id), inst1, "instance of token");
    }

    function test_bind_refusals() public {
        uint256 id = _mint(alice);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotTokenOwner.selector, id, bob));
        cluster.bindInstance(id, inst1);

        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, 7));
        cluster.bindInstance(7, inst1);

        vm.prank(alice);
        vm.expectRevert(DstackClusterNFT.ZeroInstanceId.selector);
        cluster.bindInstance(id, address(0));

        vm.prank(alice);
        cluster.bindInstance(id, inst1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InstanceAlreadyBound.selector, inst1, id));
        cluster.bindInstance(id, inst1);

        uint256 id2 = _mint(bob);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.InstanceAlreadyBound.selector, inst1, id));
        cluster.bindInstance(id2, inst1);
    }

    function test_rebind_removesPeer() public {
        uint256 id = _join(alice, inst1);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.PeerRemoved(id, inst1, 2);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.InstanceUnbound(id, inst1);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.InstanceBound(id, inst2);
        vm.prank(alice);
        cluster.bindInstance(id, inst2);
        assertFalse(cluster.instanceIsRegistered(inst1), "old gone");
        assertEq(cluster.tokenOfInstance(inst1), 0, "old unbound");
        assertEq(cluster.peerCount(), 0, "count");
        // The old instance's wg key is free again.
        assertEq(cluster.nonceOf(inst1), 1, "nonce kept");
    }

    function test_unbind() public {
        uint256 id = _join(alice, inst1);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotTokenOwner.selector, id, bob));
        cluster.unbindInstance(id);
        vm.prank(alice);
        cluster.unbindInstance(id);
        assertEq(cluster.instanceOfToken(id), address(0), "unbound");
        assertEq(cluster.peerCount(), 0, "peer removed");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.TokenNotBound.selector, id));
        cluster.unbindInstance(id);
    }

    // ------------------------------------------------------------ burn and transfer

    function test_burn_byHolderAndAdmin() public {
        uint256 a = _join(alice, inst1);
        uint256 b = _join(bob, inst2);
        vm.prank(bob);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.NotTokenOwnerOrAdmin.selector, a, bob));
        cluster.burn(a);

        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.PeerRemoved(a, inst1, 0);
        vm.prank(alice);
        cluster.burn(a);
        vm.prank(admin);
        cluster.burn(b);
        assertEq(cluster.totalSupply(), 0, "supply");
        assertEq(cluster.peerCount(), 0, "peers");
        assertEq(cluster.peerBitmap(), 0, "peer bitmap");
        assertEq(cluster.liveTokenBitmap(), 0, "token bitmap");
        assertEq(cluster.tokenOfInstance(inst1), 0, "unbound");
        assertEq(cluster.getPeers().length, 0, "no peers");

        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(IERC721Errors.ERC721NonexistentToken.selector, a));
        cluster.burn(a);
    }

    function test_transfer_revokesAndOldRecordCannotReplay() public {
        uint256 id = _join(alice, inst1);
        DstackClusterNFT.PeerRegistration memory old = _registration(inst1, 1);

        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.PeerRemoved(id, inst1, 1);
        vm.prank(alice);
        cluster.transferFrom(alice, bob, id);
        assertFalse(cluster.instanceIsRegistered(inst1), "revoked");
        assertEq(cluster.instanceOfToken(id), address(0), "unbound");

        vm.prank(bob);
        cluster.bindInstance(id, inst1);
        _expectRegisterRevert(old, abi.encodeWithSelector(DstackClusterNFT.StaleNonce.selector, 1, 1));
        cluster.registerPeer(_registration(inst1, 2));
        assertTrue(cluster.instanceIsRegistered(inst1), "re-registered");
    }

    function test_approvedSafeTransfer_revokes() public {
        uint256 id = _join(alice, inst1);
        vm.prank(alice);
        cluster.approve(relayer, id);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.PeerRemoved(id, inst1, 1);
        vm.prank(relayer);
        cluster.safeTransferFrom(alice, bob, id);
        assertEq(cluster.ownerOf(id), bob, "moved");
        assertEq(cluster.peerCount(), 0, "revoked");
        assertEq(cluster.tokenOfInstance(inst1), 0, "unbound");
    }

    function test_transferToSelf_keepsRecord() public {
        uint256 id = _join(alice, inst1);
        vm.prank(alice);
        cluster.transferFrom(alice, alice, id);
        assertTrue(cluster.instanceIsRegistered(inst1), "kept");
    }

    // ------------------------------------------------------------ registration

    function test_register_andReadBack() public {
        uint256 id = _mintBind(alice, inst1);
        DstackClusterNFT.PeerRegistration memory r = _registration(inst1, 1);
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.PeerRegistered(id, inst1, r.wgPublicKey, r.endpoint, r.mode, 1);
        vm.prank(relayer);
        cluster.registerPeer(r);

        DstackClusterNFT.Peer memory p = cluster.getPeer(inst1);
        assertEq(p.tokenId, id, "token");
        assertEq(p.instanceId, inst1, "instance");
        assertEq(p.wgPublicKey, r.wgPublicKey, "wg");
        assertEq(p.endpoint, r.endpoint, "endpoint");
        assertEq(uint256(p.mode), 1, "mode");
        assertEq(uint256(p.nonce), 1, "nonce");
        assertEq(p.nodePubkey, r.nodePubkey, "node pub");
        assertEq(p.appPubkey, r.appPubkey, "app pub");
        assertEq(p.appSignature, r.appSignature, "app sig");
        assertEq(p.kmsSignature, r.kmsSignature, "kms sig");
        assertEq(p.nodeSignature, r.nodeSignature, "node sig");
        assertEq(keccak256(abi.encode(cluster.getPeerByToken(id))), keccak256(abi.encode(p)), "by token");
        assertTrue(cluster.instanceIsRegistered(inst1), "registered");
        assertEq(cluster.peerCount(), 1, "count");
        assertEq(cluster.nonceOf(inst1), 1, "nonce");
        assertEq(cluster.peerBitmap(), 2, "bitmap");
    }

    function test_register_update() public {
        uint256 id = _join(alice, inst1);
        DstackClusterNFT.PeerRegistration memory r = _registration(inst1, 5);
        r.endpoint = "[2001:db8::1]:51820";
        r.wgPublicKey = keccak256("rotated wg key");
        _signRecord(r, _nodeKey(inst1));
        vm.expectEmit(address(cluster));
        emit DstackClusterNFT.PeerUpdated(id, inst1, r.wgPublicKey, r.endpoint, 1, 5);
        cluster.registerPeer(r);
        assertEq(cluster.getPeer(inst1).endpoint, "[2001:db8::1]:51820", "endpoint updated");
        assertEq(cluster.peerCount(), 1, "still one");

        // The old wg key was released: another node may use it now.
        address other = address(0x3333);
        _mintBind(bob, other);
        DstackClusterNFT.PeerRegistration memory r2 = _registration(other, 1);
        r2.wgPublicKey = _wgKey(inst1);
        _signRecord(r2, _nodeKey(other));
        cluster.registerPeer(r2);
    }

    function test_register_tlsMode() public {
        _mintBind(alice, inst1);
        DstackClusterNFT.PeerRegistration memory r = _registration(inst1, 1);
        r.mode = 0;
        r.wgPublicKey = bytes32(0);
        r.endpoint = "https://0000000000000000000000000000000000001111-8080.dstack.example";
        _signRecord(r, _nodeKey(inst1));
        cluster.registerPeer(r);
        assertEq(cluster.getPeerEndpoints()[0], r.endpoint, "tls endpoint");
    }

    function test_register_acceptsEthereumV() public {
        _mintBind(alice, inst1);
        DstackClusterNFT.PeerRegistration memory r = _registration(inst1, 1);
        r.appSignature[64] = bytes1(uint8(r.appSignature[64]) + 27);
        r.kmsSignature[64] = bytes1(uint8(r.kmsSignature[64]) + 27);
        r.nodeSignature[64] = bytes1(uint8(r.nodeSignature[64]) + 27);
        cluster.registerPeer(r);
        assertEq(cluster.getPeer(inst1).nodeSignature, r.nodeSignature, "stored as submitted");
    }

    function test_register_refusals_fields() public {
        DstackClusterNFT.PeerRegistration memory r = _registration(inst1, 1);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.InstanceNotBound.selector, inst1));
        _mintBind(alice, inst1);
        uint256 nodePk = _nodeKey(inst1);

        r.mode = 2;
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.UnknownNetworkMode.selector, uint8(2)));

        r = _registration(inst1, 1);
        vm.prank(admin);
        cluster.setClusterConfig(254, 1);
        _expectRegisterRevert(
            r, abi.encodeWithSelector(DstackClusterNFT.NetworkModeNotAllowed.selector, uint8(1), uint8(1))
        );
        vm.prank(admin);
        cluster.setClusterConfig(254, 3);

        r.endpoint = "";
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.BadEndpointLength.selector, 0));
        r.endpoint = string(new bytes(256));
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.BadEndpointLength.selector, 256));

        r = _registration(inst1, 1);
        r.wgPublicKey = bytes32(0);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.MissingWireGuardKey.selector));

        r = _registration(inst1, 1);
        r.mode = 0;
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.UnexpectedWireGuardKey.selector));
        r.wgPublicKey = bytes32(0);
        r.endpoint = "http://x";
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.EndpointNotHttps.selector));
        r.endpoint = "https:/";
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.EndpointNotHttps.selector));

        r = _registration(inst1, 0);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.StaleNonce.selector, 0, 0));

        // Someone else's WireGuard key.
        uint256 other = _join(bob, inst2);
        r = _registration(inst1, 1);
        r.wgPublicKey = _wgKey(inst2);
        _signRecord(r, nodePk);
        _expectRegisterRevert(
            r, abi.encodeWithSelector(DstackClusterNFT.WireGuardKeyInUse.selector, _wgKey(inst2), other)
        );

        // Replays and stale nonces once registered.
        r = _registration(inst1, 3);
        cluster.registerPeer(r);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.StaleNonce.selector, 3, 3));
        _expectRegisterRevert(
            _registration(inst1, 2), abi.encodeWithSelector(DstackClusterNFT.StaleNonce.selector, 2, 3)
        );
    }

    function test_register_refusals_chain() public {
        _mintBind(alice, inst1);
        uint256 nodePk = _nodeKey(inst1);
        address nodeAddr = vm.addr(nodePk);
        address appAddr = vm.addr(appKey);

        DstackClusterNFT.PeerRegistration memory r = _registration(inst1, 1);
        r.nodePubkey = new bytes(65);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.BadPublicKeyLength.selector, 65));
        r = _registration(inst1, 1);
        r.appPubkey = new bytes(33);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.BadPublicKeyLength.selector, 33));
        r = _registration(inst1, 1);
        r.nodeSignature = new bytes(64);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.BadSignatureLength.selector, 64));
        r = _registration(inst1, 1);
        r.appSignature = new bytes(66);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.BadSignatureLength.selector, 66));
        r = _registration(inst1, 1);
        r.kmsSignature = new bytes(0);
        _expectRegisterRevert(r, abi.encodeWithSelector(DstackClusterNFT.BadSignatureLength.selector, 0));

        // A tampered field no longer matches the node's signature.
        r = _registration(inst1, 1);
        r.endpoint = "10.6.6.6:51820";
        vm.expectPartialRevert(DstackClusterNFT.BadNodeSignature.selector);
        cluster.registerPeer(r);
        // Signed by a key other than the one in the record.
        r = _registration(inst1, 1);
        r.nodeSignature =
            _sign(nodePk + 1, cluster.peerRecordDigest(r.instanceId, r.wgPublicKey, r.endpoint, r.mode, 1));
        _expectRegisterRevert(
            r, abi.encodeWithSelector(DstackClusterNFT.BadNodeSignature.selector, vm.addr(nodePk + 1), nodeAddr)
        );
        // A v the contract does not know recovers nothing.
        r = _registration(inst1, 1);
        r.nodeSignature[64] = 0x05;
        _expectRegisterRevert(
            r, abi.encodeWithSelector(DstackClusterNFT.BadNodeSignature.selector, address(0), nodeAddr)
        );

        // Node key app-signed under another purpose.
        r = _registration(inst1, 1);
        r.appSignature = _appSignature(appKey, "dstack-p2p:wireguard", nodePk);
        vm.expectPartialRevert(DstackClusterNFT.BadAppSignature.selector);
        cluster.registerPeer(r);
        // Node key signed by another app key.
        r = _registration(inst1, 1);
        r.appSignature = _appSignature(appKey + 1, "dstack-p2p:node", nodePk);
        _expectRegisterRevert(
            r, abi.encodeWithSelector(DstackClusterNFT.BadAppSignature.selector, vm.addr(appKey + 1), appAddr)
        );

        // App key issued by another KMS root, or for another app id.
        r = _registration(inst1, 1);
        r.kmsSignature = _kmsSignature(kmsRootKey + 1, address(cluster), appKey);
        _expectRegisterRevert(
            r,
            abi.encodeWithSelector(
                DstackClusterNFT.BadKmsSignature.selector, vm.addr(kmsRootKey + 1), vm.addr(kmsRootKey)
            )
        );
        r = _registration(inst1, 1);
        r.kmsSignature = _kmsSignature(kmsRootKey, address(0xBEEF), appKey);
        vm.expectPartialRevert(DstackClusterNFT.BadKmsSignature.selector);
        cluster.registerPeer(r);

        // A record signed for another chain id or another contract.
        r = _registration(inst1, 1);
        vm.chainId(999);
        vm.expectPartialRevert(DstackClusterNFT.BadNodeSignature.selector);
        cluster.registerPeer(r);
    }

    /// @dev A known app key certificate skips the KMS check, but only for the exact same bytes.
    function test_register_appKeyCertificateReuse() public {
        _join(alice, inst1);
        _mintBind(bob, inst2);
        DstackClusterNFT.PeerRegistration memory r = _registration(inst2, 1);
        r.kmsSignature = _kmsSignature(kmsRootKey + 1, address(cluster), appKey);
        _expectRegisterRevert(
            r,
            abi.encodeWithSelector(
                DstackClusterNFT.BadKmsSignature.selector, vm.addr(kmsRootKey + 1), vm.addr(kmsRootKey)
            )
        );
        r = _registration(inst2, 1);
        cluster.registerPeer(r);
        assertEq(cluster.getPeer(inst2).kmsSignature, cluster.getPeer(inst1).kmsSignature, "shared certificate");
        assertEq(cluster.getPeer(inst2).appPubkey, _pub(appKey), "app key");
    }

    function test_register_afterBurnRefused() public {
        uint256 id = _join(alice, inst1);
        vm.prank(alice);
        cluster.burn(id);
        _expectRegisterRevert(
            _registration(inst1, 2), abi.encodeWithSelector(DstackClusterNFT.InstanceNotBound.selector, inst1)
        );
    }

    // ------------------------------------------------------------ views

    function test_views_orderAndPaging() public {
        address[5] memory ids;
        for (uint256 i = 0; i < 5; ++i) {
            ids[i] = _instance(i);
            _join(alice, ids[i]);
        }
        vm.prank(alice);
        cluster.burn(2);

        DstackClusterNFT.Peer[] memory all = cluster.getPeers();
        assertEq(all.length, 4, "four live");
        assertEq(all[0].tokenId, 1, "t1");
        assertEq(all[1].tokenId, 3, "t3");
        assertEq(all[3].tokenId, 5, "t5");
        assertEq(all[1].instanceId, ids[2], "instance order");

        (DstackClusterNFT.Peer[] memory page, uint256 total) = cluster.getPeersPaged(1, 2);
        assertEq(total, 4, "total");
        assertEq(page.length, 2, "page size");
        assertEq(page[0].tokenId, 3, "page[0]");
        assertEq(page[1].tokenId, 4, "page[1]");
        (page, total) = cluster.getPeersPaged(3, 10);
        assertEq(page.length, 1, "last page");
        assertEq(page[0].tokenId, 5, "last");
        (page,) = cluster.getPeersPaged(4, 10);
        assertEq(page.length, 0, "past the end");
        (page,) = cluster.getPeersPaged(0, 0);
        assertEq(page.length, 0, "zero limit");

        string[] memory eps = cluster.getPeerEndpoints();
        assertEq(eps.length, 4, "endpoints");
        assertEq(eps[2], _endpoint(ids[3]), "endpoint order");
    }

    function test_views_missing() public {
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.PeerNotFound.selector, inst1));
        cluster.getPeer(inst1);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.TokenHasNoPeer.selector, 3));
        cluster.getPeerByToken(3);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.TokenHasNoPeer.selector, 0));
        cluster.getPeerByToken(0);
        assertFalse(cluster.instanceIsRegistered(inst1), "not registered");
        assertEq(cluster.nonceOf(inst1), 0, "nonce");
        assertEq(cluster.tokenOfInstance(inst1), 0, "unbound");
        _mintBind(alice, inst1);
        assertFalse(cluster.instanceIsRegistered(inst1), "bound but not registered");
    }

    function test_overlayAddressOf() public {
        assertEq(bytes32(cluster.overlayAddressOf(1)), bytes32(bytes4(0x0a000101)), "10.0.1.1");
        assertEq(bytes32(cluster.overlayAddressOf(254)), bytes32(bytes4(0x0a0001fe)), "10.0.1.254");
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.TokenIdOutOfRange.selector, 0));
        cluster.overlayAddressOf(0);
        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.TokenIdOutOfRange.selector, 255));
        cluster.overlayAddressOf(255);
    }

    function test_peerRecordDigest_format() public view {
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("dstack-p2p.PeerRecord.v1"),
                block.chainid,
                address(cluster),
                inst1,
                bytes32(uint256(7)),
                keccak256("1.2.3.4:51820"),
                uint8(1),
                uint64(9)
            )
        );
        assertEq(cluster.peerRecordDigest(inst1, bytes32(uint256(7)), "1.2.3.4:51820", 1, 9), expected, "digest");
    }

    function test_signatureChain_compressAndHex() public pure {
        bytes32 x = bytes32(uint256(0xabcdef));
        assertEq(Chain.compress(x, bytes32(uint256(2))), abi.encodePacked(uint8(2), x), "even y");
        assertEq(Chain.compress(x, bytes32(uint256(3))), abi.encodePacked(uint8(3), x), "odd y");
        assertEq(string(Chain.toLowerHex(hex"00ff1a")), "00ff1a", "hex");
    }

    // ------------------------------------------------------------ fuzz

    /// @dev Registration works for any node key, instance id and nonce; the next nonce must be larger.
    function testFuzz_register_anyKeysAndIds(uint256 nodeSeed, address instanceId, uint64 nonce) public {
        vm.assume(instanceId != address(0));
        nonce = uint64(bound(nonce, 1, type(uint64).max - 1));
        uint256 nodePk = bound(nodeSeed, 1, 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140);
        _mintBind(alice, instanceId);

        DstackClusterNFT.PeerRegistration memory r = _registration(instanceId, nonce);
        r.nodePubkey = _pub(nodePk);
        r.appSignature = _appSignature(appKey, "dstack-p2p:node", nodePk);
        _signRecord(r, nodePk);
        cluster.registerPeer(r);
        assertEq(cluster.getPeer(instanceId).nodePubkey, r.nodePubkey, "stored key");

        vm.expectRevert(abi.encodeWithSelector(DstackClusterNFT.StaleNonce.selector, nonce, nonce));
        cluster.registerPeer(r);
    }

    /// @dev Flipping any bit of any signature or key is refused.
    function testFuzz_register_anyBitFlipRefused(uint256 which, uint256 pos, uint8 bit) public {
        _mintBind(alice, inst1);
        DstackClusterNFT.PeerRegistration memory r = _registration(inst1, 1);
        which = which % 5;
        bytes memory target = which == 0
            ? r.nodePubkey
            : which == 1 ? r.appPubkey : which == 2 ? r.appSignature : which == 3 ? r.kmsSignature : r.nodeSignature;
        pos = pos % target.length;
        target[pos] = bytes1(uint8(target[pos]) ^ (uint8(1) << (bit % 8)));
        vm.expectRevert();
        cluster.registerPeer(r);
    }

    /// @dev Any mint/burn sequence keeps ids in 1..254, the lowest free id first, and the count exact.
    function testFuzz_mintBurn_lowestFreeId(uint256 seed) public {
        uint256 live;
        for (uint256 step = 0; step < 60; ++step) {
            seed = uint256(keccak256(abi.encode(seed)));
            if (seed % 3 != 0 || live == 0) {
                uint256 bits = cluster.liveTokenBitmap();
                uint256 expected = 1;
                while ((bits >> expected) & 1 == 1) ++expected;
                assertEq(_mint(alice), expected, "lowest free id");
                ++live;
            } else {
                uint256 id = 1 + (seed >> 8) % 254;
                if ((cluster.liveTokenBitmap() >> id) & 1 == 1) {
                    vm.prank(admin);
                    cluster.burn(id);
                    --live;
                }
            }
            assertEq(cluster.totalSupply(), live, "count");
        }
    }
}
