import Crypto
import Foundation

/// The signature of a webhook call: `X-Confine-Signature: t=<unix seconds>,v1=<hex>`, the hex
/// being HMAC-SHA256 of `"<t>.<body>"` keyed with the tenant's webhook secret. A receiver
/// recomputes it, compares in constant time, and refuses a `t` too far from its clock (replays).
public enum WebhookSignature {
    /// A new webhook secret: `whsec_` and 43 URL-safe base64 characters (256 random bits).
    public static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = UInt8.random(in: .min ... .max, using: &generator) }
        return "whsec_" + Base64URL.encode(bytes)
    }

    /// The hex HMAC-SHA256 of `"<timestamp>.<body>"`.
    public static func hex(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        var message = Array("\(timestamp).".utf8)
        message.append(contentsOf: body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    /// The header's value: `t=<timestamp>,v1=<hex>`.
    public static func header(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        "t=\(timestamp),v1=\(hex(secret: secret, timestamp: timestamp, body: body))"
    }
}
