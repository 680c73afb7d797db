// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title A stand-in for dstack's KMS contract, for a local cluster (anvil and dstack-sim) and the
///        tests: the same kmsInfo() getter, gatewayAppId(), registeredApps(address) and
///        registerApp(address) as the real one exposes to operators. `dstack-p2p cluster
///        deploy-kms` deploys it; `make install` ships its artifact.
/// @dev Only what `dstack-p2p cluster kms-info` and `register-app` use; no boot checks, no
///      keys: the root's secret stays with whoever runs dstack-sim.
contract LocalDstackKms {
    struct KmsInfo {
        bytes k256Pubkey;
        bytes caPubkey;
        bytes quote;
        bytes eventlog;
    }

    KmsInfo public kmsInfo;
    string public gatewayAppId;
    address public owner;
    mapping(address => bool) public registeredApps;

    event AppRegistered(address appId);

    constructor(bytes memory k256Pubkey, string memory gatewayAppId_) {
        owner = msg.sender;
        kmsInfo.k256Pubkey = k256Pubkey;
        gatewayAppId = gatewayAppId_;
    }

    /// @notice Permissionless, as in dstack: the KMS then consults the app's own isAppAllowed.
    function registerApp(address appId) external {
        require(appId != address(0), "Invalid app ID");
        registeredApps[appId] = true;
        emit AppRegistered(appId);
    }
}
