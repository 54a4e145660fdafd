import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A webhook destination's addresses, resolved once, and whether each may be called: loopback,
/// private, shared (CGNAT), link-local (the cloud metadata address 169.254.169.254 among them),
/// unspecified, multicast and reserved ranges are refused unless private destinations are
/// allowed. The sender connects to the address checked here, never to a second resolution.
enum WebhookAddress {
    /// Resolves `host` (getaddrinfo, on a thread of its own: it blocks) to its numeric addresses.
    static func resolve(_ host: String) async throws(WebhookError) -> [String] {
        let result: Result<[String], WebhookError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: resolveBlocking(host))
            }
            thread.name = "confine-webhook-resolve"
            thread.start()
        }
        return try result.get()
    }

    static func resolveBlocking(_ host: String) -> Result<[String], WebhookError> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let first = list else {
            return .failure(.resolution(host: host, reason: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(cString: buffer)
                if !addresses.contains(text) { addresses.append(text) }
            }
            cursor = entry.pointee.ai_next
        }
        return addresses.isEmpty ? .failure(.resolution(host: host, reason: "no address")) : .success(addresses)
    }

    /// Why an address may not be called (nil: it may): `loopback`, `private`, `link-local`…
    static func forbiddenKind(_ address: String) -> String? {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return forbiddenKind(ipv4: [UInt8](withUnsafeBytes(of: &v4) { Array($0) }))
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return "not an IP address" }
        let b = [UInt8](withUnsafeBytes(of: &v6) { Array($0) })
        if b.allSatisfy({ $0 == 0 }) { return "unspecified" }
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "loopback" }
        // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible addresses: the IPv4 address decides.
        if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return forbiddenKind(ipv4: Array(b[12..<16])) }
        if b[0] & 0xfe == 0xfc { return "private (unique local)" }
        if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return "link-local" }
        if b[0] == 0xff { return "multicast" }
        if b[0] == 0x20, b[1] == 0x01, b[2] == 0x0d, b[3] == 0xb8 { return "reserved (documentation)" }
        if b[0] == 0x00, b[1] == 0x64, b[2] == 0xff, b[3] == 0x9b { return forbiddenKind(ipv4: Array(b[12..<16])) }  // NAT64
        return nil
    }

    static func forbiddenKind(ipv4 a: [UInt8]) -> String? {
        switch (a[0], a[1]) {
        case (0, _): return "unspecified"
        case (127, _): return "loopback"
        case (10, _), (192, 168): return "private"
        case (172, 16...31): return "private"
        case (100, 64...127): return "shared (carrier-grade NAT)"
        case (169, 254): return a[2] == 169 && a[3] == 254 ? "the cloud metadata address" : "link-local"
        case (192, 0) where a[2] == 0: return "reserved (IETF)"
        case (198, 18...19): return "reserved (benchmarking)"
        case (224...239, _): return "multicast"
        case (240...255, _): return "reserved"
        default: return nil
        }
    }
}

/// Why a webhook attempt failed before or instead of an answer.
enum WebhookError: Error, CustomStringConvertible {
    case resolution(host: String, reason: String)
    case refusedAddress(host: String, address: String, kind: String)
    case badURL(String)
    case noSecret(tenant: String)

    var description: String {
        switch self {
        case .resolution(let host, let reason): return "resolving \(host) failed: \(reason)"
        case .refusedAddress(let host, let address, let kind):
            return "\(host) resolves to \(address), a \(kind) address: refused (webhooks.allow_private is false)"
        case .badURL(let url): return "\(url) is not an http or https URL"
        case .noSecret(let tenant):
            return "tenant \(tenant.isEmpty ? "(none)" : tenant) has no webhook secret: an admin makes one with POST /webhook-secret"
        }
    }
}
