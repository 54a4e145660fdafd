import Foundation

/// Where to call when an execution ends: a job's or a run's `callback` (`callback_url` is the
/// same with `events: ["finished"]`, Judge0's spelling).
public struct WebhookCallback: Sendable, Equatable, Codable {
    /// An `http` or `https` URL.
    public var url: String
    /// The events it is called for (`finished`: the execution reached a final status).
    public var events: [String]

    public init(url: String, events: [String] = ["finished"]) {
        self.url = url
        self.events = events
    }

    /// The events a callback may ask for.
    public static let knownEvents = ["finished"]
}

/// One delivery of one event of one execution to its callback: its id is sent as
/// `X-Confine-Delivery` on every attempt; attempts are retried until one succeeds, one is
/// refused for good, or the retry window ends.
public struct WebhookDelivery: Sendable, Equatable {
    public var id: String
    public var executionID: Int64
    public var tenant: String?
    public var url: String
    public var event: String
    public var status: WebhookDeliveryStatus
    public var createdAt: Date
    /// When the next attempt is due (nil once it is delivered or failed).
    public var nextAttemptAt: Date?
    public var attempts: [WebhookAttempt]

    public init(id: String, executionID: Int64, tenant: String?, url: String, event: String, status: WebhookDeliveryStatus,
                createdAt: Date, nextAttemptAt: Date?, attempts: [WebhookAttempt] = []) {
        self.id = id
        self.executionID = executionID
        self.tenant = tenant
        self.url = url
        self.event = event
        self.status = status
        self.createdAt = createdAt
        self.nextAttemptAt = nextAttemptAt
        self.attempts = attempts
    }
}

/// Where a delivery is.
public enum WebhookDeliveryStatus: String, Sendable, Codable, CaseIterable {
    /// Waiting for its first or next attempt.
    case pending
    /// A 2xx answer.
    case delivered
    /// Given up: a 4xx answer (other than 408, 429), or the retry window ended.
    case failed
    /// Not called: the destination resolves to a loopback, private, link-local or metadata
    /// address (`webhooks.allow_private` is false).
    case refused
}

/// One attempt of a delivery.
public struct WebhookAttempt: Sendable, Equatable, Codable {
    public var at: Date
    /// The HTTP status answered, nil when none was (an error).
    public var statusCode: Int?
    /// What went wrong, in words (a timeout, a refused connection, a refused address).
    public var error: String?
    public var durationMs: Int64

    public init(at: Date, statusCode: Int?, error: String?, durationMs: Int64) {
        self.at = at
        self.statusCode = statusCode
        self.error = error
        self.durationMs = durationMs
    }
}
