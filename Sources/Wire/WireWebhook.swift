/// A callback as the server answers it (`Callback`): where an execution's end is POSTed.
public struct WireCallback: Codable, Sendable, Equatable {
    public var url: String
    /// The events it is called for: `finished`.
    public var events: [String]

    public init(url: String, events: [String]) {
        self.url = url
        self.events = events
    }
}

/// The `callback` member of a job's or a run's body (`CallbackBody`); `callback_url` is the
/// same with the `finished` event.
public struct WireCallbackBody: Codable, Sendable, Equatable {
    public var url: String?
    public var events: [String]?

    public init(url: String? = nil, events: [String]? = nil) {
        self.url = url
        self.events = events
    }
}

/// One attempt of a delivery (`DeliveryAttempt`).
public struct WireDeliveryAttempt: Codable, Sendable, Equatable {
    public var at: String
    public var status_code: Int?
    public var error: String?
    public var duration_ms: Int64

    public init(at: String, status_code: Int?, error: String?, duration_ms: Int64) {
        self.at = at
        self.status_code = status_code
        self.error = error
        self.duration_ms = duration_ms
    }
}

/// One delivery of an execution's event (`Delivery`): its id is `X-Confine-Delivery` on every
/// attempt.
public struct WireDelivery: Codable, Sendable, Equatable {
    public var id: String
    public var event: String
    public var url: String
    /// `pending`, `delivered`, `failed` or `refused`.
    public var status: String
    public var created_at: String
    public var next_attempt_at: String?
    public var attempts: [WireDeliveryAttempt]

    public init(id: String, event: String, url: String, status: String, created_at: String, next_attempt_at: String?,
                attempts: [WireDeliveryAttempt]) {
        self.id = id
        self.event = event
        self.url = url
        self.status = status
        self.created_at = created_at
        self.next_attempt_at = next_attempt_at
        self.attempts = attempts
    }
}

/// `GET /executions/{id}/deliveries` (`DeliveryList`).
public struct WireDeliveryList: Codable, Sendable, Equatable {
    public var execution_id: Int64
    public var deliveries: [WireDelivery]

    public init(execution_id: Int64, deliveries: [WireDelivery]) {
        self.execution_id = execution_id
        self.deliveries = deliveries
    }
}

/// `GET /webhook-secret` and `POST /webhook-secret` (`WebhookSecret`): the tenant's secret's
/// date; `secret` only in the answer to the POST that made it (shown once).
public struct WireWebhookSecret: Codable, Sendable, Equatable {
    public var tenant: String
    public var exists: Bool
    public var created_at: String?
    public var secret: String?

    public init(tenant: String, exists: Bool, created_at: String?, secret: String? = nil) {
        self.tenant = tenant
        self.exists = exists
        self.created_at = created_at
        self.secret = secret
    }
}

/// What a callback receives (`WebhookPayload`): the event and the execution as
/// `GET /executions/{id}` answers it without its output (byte counts, and `output_url`).
public struct WireWebhookPayload: Codable, Sendable, Equatable {
    public var event: String
    public var execution: WireExecution
    /// The path of the execution's output (`GET /executions/{id}/output`).
    public var output_url: String

    public init(event: String, execution: WireExecution, output_url: String) {
        self.event = event
        self.execution = execution
        self.output_url = output_url
    }
}

extension WireDeliveryList: WireAnswer {
    public static let absentWhenNil: Set<String> = []
}

extension WireWebhookSecret: WireAnswer {
    /// The secret's text is only in the answer of the POST that made it.
    public static let absentWhenNil: Set<String> = ["secret"]
}

extension WireWebhookPayload: WireAnswer {
    public static let absentWhenNil: Set<String> = []
}
