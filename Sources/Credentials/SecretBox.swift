import Crypto
import Foundation

/// Encrypts secret values (jobs' secret environment) for storage: AES-256-GCM with a random
/// 96-bit nonce per value, so the database alone reveals nothing and any tampering is detected
/// when the value is opened. A sealed value is `v1:` and the base64 of nonce ‖ ciphertext ‖ tag.
public struct SecretBox: Sendable {
    private let key: SymmetricKey

    /// A box with a 32-byte key.
    public init(key: Data) throws(SecretBoxError) {
        guard key.count == 32 else { throw .badKey("the key must be 32 bytes, got \(key.count)") }
        self.key = SymmetricKey(data: key)
    }

    /// Loads the key from `base64` (config `secrets_key`), or from the file at `path`,
    /// creating the file with a new random key (mode 0600, refusing to follow a planted link)
    /// when it does not exist. A key file readable by others is refused.
    public static func load(base64: String?, file path: String) throws(SecretBoxError) -> SecretBox {
        if let base64 {
            guard let key = Data(base64Encoded: base64.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw .badKey("secrets_key is not base64 (make one with: head -c 32 /dev/urandom | base64)")
            }
            return try SecretBox(key: key)
        }
        if let existing = try SecretFile.read(path) {
            guard let key = Data(base64Encoded: existing.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw .badKey("\(path) does not hold a base64 key")
            }
            do { return try SecretBox(key: key) } catch { throw .badKey("\(path): \(error.description)") }
        }
        var generator = SystemRandomNumberGenerator()
        let key = Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        try SecretFile.create(path, contents: key.base64EncodedString() + "\n")
        return try SecretBox(key: key)
    }

    /// The stored form of `plaintext`.
    public func seal(_ plaintext: String) throws(SecretBoxError) -> String {
        do {
            let box = try AES.GCM.seal(Data(plaintext.utf8), using: key)
            guard let combined = box.combined else { throw SecretBoxError.corrupt("no combined form") }
            return "v1:" + combined.base64EncodedString()
        } catch let error as SecretBoxError {
            throw error
        } catch {
            throw .corrupt("encryption failed: \(error)")
        }
    }

    /// The plaintext of a sealed value; refuses one sealed with another key or altered.
    public func open(_ sealed: String) throws(SecretBoxError) -> String {
        guard sealed.hasPrefix("v1:"), let data = Data(base64Encoded: String(sealed.dropFirst(3))) else {
            throw .corrupt("not a sealed value")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: data)
            let plain = try AES.GCM.open(box, using: key)
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw .corrupt("it cannot be decrypted with this server's key (was the key changed?)")
        }
    }
}

/// Why a secret could not be sealed or opened, or the key not loaded.
public enum SecretBoxError: Error, CustomStringConvertible, Equatable {
    case badKey(String)
    case file(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .badKey(let why): return "secrets key: \(why)"
        case .file(let why): return why
        case .corrupt(let why): return "a secret value: \(why)"
        }
    }
}
