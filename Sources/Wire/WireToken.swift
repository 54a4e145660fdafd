/// The body of `POST /tokens` (`TokenCreate`): members left nil are not sent.
public struct WireTokenBody: Codable, Sendable, Equatable {
    public var name: String
    public var role: String
    public var tenant: String?
    public var policies: [String]?
    public var max_policy: String?
    public var max_active: Int?
    public var max_priority: Int?
    public var expires_in: String?
    public var expires_at: String?

    public init(name: String, role: String, tenant: String? = nil, policies: [String]? = nil, max_policy: String? = nil,
                max_active: Int? = nil, max_priority: Int? = nil, expires_in: String? = nil, expires_at: String? = nil) {
        self.max_priority = max_priority
        self.name = name
        self.role = role
        self.tenant = tenant
        self.policies = policies
        self.max_policy = max_policy
        self.max_active = max_active
        self.expires_in = expires_in
        self.expires_at = expires_at
    }
}

/// A token as the server answers it (`Token`; `TokenCreated` adds `token`, its text, once).
public struct WireToken: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var role: String
    public var tenant: String
    public var policies: [String]?
    public var max_policy: String?
    public var max_active: Int?
    public var max_priority: Int?
    public var priority_ceiling: Int?
    public var created_at: String?
    public var expires_at: String?
    public var last_used_at: String?
    public var revoked_at: String?
    public var created_by: Int64?
    public var token: String?

    public init(id: Int64, name: String, role: String, tenant: String, policies: [String]? = nil, max_policy: String? = nil,
                max_active: Int? = nil, created_at: String? = nil, expires_at: String? = nil, last_used_at: String? = nil,
                revoked_at: String? = nil, created_by: Int64? = nil, token: String? = nil, max_priority: Int? = nil,
                priority_ceiling: Int? = nil) {
        self.max_priority = max_priority
        self.priority_ceiling = priority_ceiling
        self.id = id
        self.name = name
        self.role = role
        self.tenant = tenant
        self.policies = policies
        self.max_policy = max_policy
        self.max_active = max_active
        self.created_at = created_at
        self.expires_at = expires_at
        self.last_used_at = last_used_at
        self.revoked_at = revoked_at
        self.created_by = created_by
        self.token = token
    }
}

extension WireToken: WireAnswer {
    /// The token's text is answered once, when it is made (`TokenCreated`).
    public static let absentWhenNil: Set<String> = ["token"]
}

/// One entry of the audit log (`AuditEntry`).
public struct WireAuditEntry: Codable, Sendable, Equatable {
    public var id: Int64
    public var at: String
    public var token_id: Int64?
    public var token_name: String?
    public var role: String?
    public var action: String
    public var target_type: String
    public var target_id: String?
    public var address: String?
    public var detail: String?

    public init(id: Int64, at: String, token_id: Int64?, token_name: String?, role: String?, action: String,
                target_type: String, target_id: String?, address: String?, detail: String?) {
        self.id = id
        self.at = at
        self.token_id = token_id
        self.token_name = token_name
        self.role = role
        self.action = action
        self.target_type = target_type
        self.target_id = target_id
        self.address = address
        self.detail = detail
    }
}

/// One page of `GET /audit` (`AuditPage`).
public struct WireAuditPage: Codable, Sendable, Equatable {
    public var entries: [WireAuditEntry]
    public var next_cursor: String?

    public init(entries: [WireAuditEntry], next_cursor: String?) {
        self.entries = entries
        self.next_cursor = next_cursor
    }
}
