import AsyncHTTPClient
import Credentials
import Domain
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Store

// The webhook sender: claims due deliveries from the store's durable queue, calls each
// destination once per attempt (resolved and checked first: no loopback, private, link-local
// or metadata address unless allowed; connected to the address checked), signs the body with
// the tenant's secret, and records every attempt with its next one.

extension Engine {
    /// Sends due deliveries until the engine drains; sleeps until the earliest next attempt
    /// (one second at most, so deliveries queued meanwhile go within a second or two).
    func runWebhooks() async {
        let batch = 16
        while !Task.isCancelled, !state.withLock({ $0.draining }) {
            var pause: Duration = .seconds(1)
            do {
                let now = Date()
                // A read first: the claim is a write, taken only when a delivery is due.
                let earliest = try await store.nextDeliveryDue()
                guard let earliest, earliest <= now else {
                    let wait = min(1, max(0.01, earliest?.timeIntervalSince(now) ?? 1))
                    try? await Task.sleep(for: .milliseconds(Int64(wait * 1000)))
                    continue
                }
                let lease = now.addingTimeInterval(configuration.webhooks.timeout.seconds + 30)
                let due = try await store.claimDueDeliveries(now: now, leaseUntil: lease, limit: batch)
                await withTaskGroup(of: Void.self) { group in
                    for delivery in due { group.addTask { await self.deliver(delivery) } }
                }
                if due.count == batch {
                    pause = .zero
                } else if let next = try await store.nextDeliveryDue() {
                    let wait = next.timeIntervalSinceNow
                    if wait < 1 { pause = .milliseconds(max(10, Int64(wait * 1000))) }
                }
            } catch {
                configuration.logger.warning("the webhook sender could not read or record deliveries: \(error)")
            }
            if pause > .zero { try? await Task.sleep(for: pause) }
        }
    }

    /// One attempt of a delivery, recorded with what follows: delivered, failed for good,
    /// refused, or the next attempt's time.
    func deliver(_ delivery: WebhookDelivery) async {
        let settings = configuration.webhooks
        let at = Date(), began = ContinuousClock.now
        var statusCode: Int? = nil
        var failure: String? = nil
        var final: WebhookDeliveryStatus? = nil
        do {
            statusCode = try await call(delivery)
            switch statusCode! {
            case 200..<300: final = .delivered
            case 300..<400: final = .failed; failure = "answered \(statusCode!): redirects are not followed"
            case 408, 429: failure = "answered \(statusCode!)"
            case 400..<500: final = .failed; failure = "answered \(statusCode!): not retried"
            default: failure = "answered \(statusCode!)"
            }
        } catch let error as WebhookError {
            failure = error.description
            if case .refusedAddress = error { final = .refused }
            if case .badURL = error { final = .failed }
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            failure = "no answer within \(Int(settings.timeout.seconds)) s (timeout)"
        } catch {
            failure = "\(error)"
        }
        let elapsed = ContinuousClock.now - began
        let attempt = WebhookAttempt(at: at, statusCode: statusCode, error: failure,
                                     durationMs: elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        var next: Date? = nil
        if final == nil {
            let number = delivery.attempts.count + 1
            let delay = Self.webhookDelay(afterAttempt: number, first: settings.firstRetryDelay.seconds, max: settings.maxRetryDelay.seconds)
            let candidate = at.addingTimeInterval(delay)
            if candidate.timeIntervalSince(delivery.createdAt) > settings.retryFor.seconds {
                final = .failed
                failure = (failure ?? "") + "; given up after \(number) attempts over \(Int(settings.retryFor.seconds)) s"
            } else {
                next = candidate
            }
        }
        let recorded = WebhookAttempt(at: attempt.at, statusCode: attempt.statusCode, error: failure, durationMs: attempt.durationMs)
        do {
            try await store.recordDeliveryAttempt(id: delivery.id, recorded, status: final ?? .pending, nextAttemptAt: next)
        } catch {
            configuration.logger.warning("recording webhook delivery \(delivery.id) failed: \(error)")
        }
        var details: Logger.Metadata = ["execution_id": "\(delivery.executionID)", "delivery": "\(delivery.id)"]
        if let statusCode { details["status_code"] = "\(statusCode)" }
        if let failure { details["error"] = "\(failure)" }
        configuration.logger.info("webhook attempt: \((final ?? .pending).rawValue)", metadata: details)
    }

    /// The delay before the attempt after `attempt` (1-based): `first`, doubling, at most `max`.
    static func webhookDelay(afterAttempt attempt: Int, first: Double, max maximum: Double) -> Double {
        min(maximum, first * pow(2, Double(min(attempt, 40) - 1)))
    }

    /// Calls the destination once; returns the status it answered.
    func call(_ delivery: WebhookDelivery) async throws -> Int {
        let settings = configuration.webhooks
        guard let components = URLComponents(string: delivery.url), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else {
            throw WebhookError.badURL(delivery.url)
        }
        guard let execution = try await store.execution(id: delivery.executionID) else {
            throw WebhookError.badURL("execution \(delivery.executionID) no longer exists; \(delivery.url)")
        }
        let tenant = delivery.tenant ?? ""
        guard let sealed = try await store.webhookSecret(tenant: tenant) else { throw WebhookError.noSecret(tenant: tenant) }
        let secret = try configuration.openSecret.map { try $0(sealed.sealed) } ?? sealed.sealed
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let addresses = try await WebhookAddress.resolve(bare)
        var chosen: String? = nil
        for address in addresses {
            if !settings.allowPrivate, let kind = WebhookAddress.forbiddenKind(address) {
                throw WebhookError.refusedAddress(host: bare, address: address, kind: kind)
            }
            if chosen == nil { chosen = address }
        }
        guard let address = chosen else { throw WebhookError.resolution(host: bare, reason: "no address") }

        var client = HTTPClient.Configuration(redirectConfiguration: .disallow,
                                              timeout: .init(connect: .seconds(Int64(settings.timeout.seconds)),
                                                             read: .seconds(Int64(settings.timeout.seconds))))
        // Connect to the address checked, not to a second resolution (DNS rebinding); TLS
        // still verifies the host's name.
        if address != bare { client.dnsOverride = [bare: address] }
        client.connectionPool = .init(idleTimeout: .seconds(1))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
        do {
            let body = settings.body(execution)
            let timestamp = Int64(Date().timeIntervalSince1970)
            var request = HTTPClientRequest(url: delivery.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "Confine-Webhook/1")
            request.headers.add(name: "X-Confine-Event", value: delivery.event)
            request.headers.add(name: "X-Confine-Delivery", value: delivery.id)
            request.headers.add(name: "X-Confine-Signature", value: WebhookSignature.header(secret: secret, timestamp: timestamp, body: body))
            request.body = .bytes(body)
            let response = try await http.execute(request, timeout: .seconds(Int64(settings.timeout.seconds)))
            _ = try? await response.body.collect(upTo: 64 << 10)
            try? await http.shutdown()
            return Int(response.status.code)
        } catch {
            try? await http.shutdown()
            throw error
        }
    }
}

/// How webhooks are delivered (`webhooks.*` of the server's configuration).
public struct WebhookSettings: Sendable {
    /// Whether destinations resolving to loopback, private, link-local or metadata addresses
    /// may be called (`webhooks.allow_private`; false by default).
    public var allowPrivate = false
    /// How long a delivery is retried, from the execution's end (`webhooks.retry_for`, 1h).
    public var retryFor: Duration = .seconds(3600)
    /// The delay before the second attempt, doubling after (5 s), at most `maxRetryDelay` (10 min).
    public var firstRetryDelay: Duration = .seconds(5)
    public var maxRetryDelay: Duration = .seconds(600)
    /// Each attempt's timeout (10 s).
    public var timeout: Duration = .seconds(10)
    /// The body sent for an execution: the API sets it to the execution as `GET /executions/{id}`
    /// answers it, without its output.
    public var body: @Sendable (Execution) -> [UInt8] = { e in
        Array(#"{"event":"finished","execution":{"id":\#(e.id),"status":"\#(e.status.rawValue)"}}"#.utf8)
    }

    public init() {}
}
