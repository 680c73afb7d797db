// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title DstackSignatureChain: rebuilds and checks the messages of dstack's key signature chain.
/// @notice dstack's GetKey returns a derived secp256k1 key plus two signatures (docs/dstack-facts.md, signature chain):
///         chain[0]: the app key signs keccak256(purpose ":" lowercase_hex(compressed derived pub));
///         chain[1]: the KMS root signs keccak256("dstack-kms-issued:" app_id[20] compressed_app_pub[33]).
///         Both are raw keccak digests (no EIP-191 prefix) and 65-byte r||s||v signatures with v 0/1.
///         ecrecover yields addresses, so callers pass full public keys (x, y) and we derive the
///         compressed form and the address ourselves.
library DstackSignatureChain {
    bytes16 private constant HEX_DIGITS = "0123456789abcdef";

    /// @notice Ethereum address of an uncompressed public key.
    function addressOf(bytes32 x, bytes32 y) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked(x, y)))));
    }

    /// @notice 33-byte SEC1 compressed encoding: 0x02 for even y, 0x03 for odd y, then x.
    function compress(bytes32 x, bytes32 y) internal pure returns (bytes memory) {
        return abi.encodePacked(uint8(uint256(y) & 1 == 0 ? 0x02 : 0x03), x);
    }

    /// @notice Lowercase hex without 0x, as dstack formats the derived key in chain[0].
    function toLowerHex(bytes memory data) internal pure returns (bytes memory out) {
        out = new bytes(data.length * 2);
        for (uint256 i = 0; i < data.length; ++i) {
            uint8 b = uint8(data[i]);
            out[2 * i] = HEX_DIGITS[b >> 4];
            out[2 * i + 1] = HEX_DIGITS[b & 0x0f];
        }
    }

    /// @notice Digest the app key signs for a derived key (chain[0]).
    function appMessageDigest(string memory purpose, bytes32 x, bytes32 y) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(purpose, ":", toLowerHex(compress(x, y))));
    }

    /// @notice Digest the KMS root signs for an app key (chain[1]).
    function kmsMessageDigest(address appId, bytes32 x, bytes32 y) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("dstack-kms-issued:", appId, compress(x, y)));
    }

    /// @notice Signer of a raw digest, or address(0) for an invalid signature or a v outside 0/1/27/28.
    /// @dev dstack emits v = 0/1, Ethereum tooling 27/28; ecrecover wants the latter.
    function recover(bytes32 digest, bytes32 r, bytes32 s, uint8 v) internal pure returns (address) {
        if (v < 27) v += 27;
        if (v != 27 && v != 28) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
