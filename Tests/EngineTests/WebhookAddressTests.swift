@testable import Engine
import Testing

/// What a webhook may call (no root needed): the address ranges refused without
/// `webhooks.allow_private`, and the retry schedule (5 s, 10 s, 20 s… 10 min at most).
@Suite("Webhook addresses and delays")
struct WebhookAddressTests {
    @Test("Loopback, private, shared, link-local, metadata, unspecified, multicast and mapped addresses are refused; public ones pass")
    func ranges() {
        let refused: [(String, String)] = [
            ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"), ("0.0.0.0", "unspecified"), ("::", "unspecified"),
            ("10.0.0.1", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (carrier-grade NAT)"), ("169.254.169.254", "the cloud metadata address"),
            ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("fd00::1", "private (unique local)"),
            ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.1", "private"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
            ("255.255.255.255", "reserved"),
        ]
        for (address, kind) in refused {
            #expect(WebhookAddress.forbiddenKind(address) == kind, "\(address)")
        }
        for address in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111", "100.128.0.1"] {
            #expect(WebhookAddress.forbiddenKind(address) == nil, "\(address)")
        }
        #expect(WebhookAddress.forbiddenKind("example.com") == "not an IP address")
    }

    @Test("Attempts are retried after 5 s, 10 s, 20 s… doubling, 10 min at most")
    func delays() {
        let delays = (1...10).map { Engine.webhookDelay(afterAttempt: $0, first: 5, max: 600) }
        #expect(delays == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600])
        // With the defaults, an hour of retries makes at least 9 attempts.
        var elapsed = 0.0, attempts = 1
        while elapsed + Engine.webhookDelay(afterAttempt: attempts, first: 5, max: 600) <= 3600 {
            elapsed += Engine.webhookDelay(afterAttempt: attempts, first: 5, max: 600)
            attempts += 1
        }
        #expect(attempts >= 9 && elapsed >= 3000, "\(attempts) attempts over \(elapsed) s")
    }
}
