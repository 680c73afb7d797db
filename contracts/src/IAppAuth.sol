// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";

/// @title IAppAuth: the hook the dstack KMS calls before it releases keys to a booting CVM.
/// @notice Field order and types follow dstack's kms/auth-eth contracts exactly: the KMS ABI-encodes
///         this struct itself, so any change here silently breaks boot authorisation.
///         ERC-165 interface id (= the selector of isAppAllowed): 0x1e079198.
interface IAppAuth is IERC165 {
    struct AppBootInfo {
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

    /// @return isAllowed whether the CVM may boot and receive its keys
    /// @return reason why not (empty when allowed)
    function isAppAllowed(AppBootInfo calldata bootInfo) external view returns (bool isAllowed, string memory reason);
}

/// @title IAppAuthBasicManagement: dstack's allow-list management interface (ERC-165 id 0x8fd37527).
/// @notice Admin UIs (phala-cli, dashboards) detect it through supportsInterface.
interface IAppAuthBasicManagement is IERC165 {
    event ComposeHashAdded(bytes32 composeHash);
    event ComposeHashRemoved(bytes32 composeHash);
    event DeviceAdded(bytes32 deviceId);
    event DeviceRemoved(bytes32 deviceId);

    function addComposeHash(bytes32 composeHash) external;
    function removeComposeHash(bytes32 composeHash) external;
    function addDevice(bytes32 deviceId) external;
    function removeDevice(bytes32 deviceId) external;
}
