import Crypto
import Foundation

/// SHA-256 digests of bytes: what identifies a request body (idempotency keys) and a file.
public enum Digest {
    /// The 32 bytes of SHA-256 of `data`.
    public static func sha256(_ data: some DataProtocol) -> Data {
        Data(SHA256.hash(data: data))
    }

    /// SHA-256 of `data` as 64 lowercase hexadecimal digits.
    public static func sha256Hex(_ data: some DataProtocol) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
