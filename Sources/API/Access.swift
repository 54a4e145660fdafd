import Credentials
import Domain
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Store
import Synchronization

/// Who a request comes from: its token (never the token's text) and its address. Set for the
/// duration of a route's handler (`Caller.current`); nil on open routes.
struct Caller: Sendable {
    let token: AccessToken
    let address: String?

    @TaskLocal static var current: Caller?

    var role: Role { token.role }

    /// Whether this caller may see an object of `tenant` (nil: made before tokens existed,
    /// seen by operators and admins only). Tenants are compared byte for byte, as SQL compares
    /// them in listings (`ExactName`), never with `String`'s canonical equivalence.
    func sees(tenant: String?) -> Bool { role.seesAll || ExactName.same(tenant, token.tenant) }

    /// The tenant listings are limited to: nil (all) for operators and admins.
    var scope: String? { role.seesAll ? nil : token.tenant }
}

/// Who may call a route: anyone, or a token of at least a role. The routes an operator may
/// open to everyone through `public_routes` (`ready`, `metrics`) or close through
/// `private_routes` (`docs`, `openapi`, `ui`, open by default) name that switch, and need a
/// viewer token when closed.
enum AccessRule: Sendable, Equatable {
    case open
    case role(Role)
    case configurable(String)

    /// The switches of `public_routes` and `private_routes`.
    static let switches = ["ready", "metrics", "docs", "openapi", "ui"]
    /// The switches open unless `private_routes` names them: the document and its docs page
    /// (no secret), the dashboard's static files (they hold no data; every call they make
    /// needs a token).
    public static let openByDefault: Set<String> = ["docs", "openapi", "ui"]
}

/// Checks the bearer token of every request against the store: digest looked up, compared in
/// constant time, expiry and revocation checked at each request, role compared with the
/// route's. Verified tokens are kept in memory while the store's token-set version
/// (`AccessStore.tokensVersion`, one `stat`) stays the same; any token made or revoked, by this
/// server or by `confine token revoke --database` in another process, changes it, so a
/// revocation holds at the next request. Refusals are problems: 401 with `WWW-Authenticate` for a missing,
/// malformed, unknown, expired or revoked token (and for a token sent in the query string,
/// where it would be logged by proxies), 403 for a role too weak.
final class Authenticator: Sendable {
    let store: any AccessStore
    let publicRoutes: Set<String>
    let logger: Logger
    /// When each token's last-used time was last written: at most once a minute per token.
    private let touched = Mutex<[Int64: ContinuousClock.Instant]>([:])
    /// Tokens found by digest, valid for the token-set version they were read at.
    private let verified = Mutex<(version: String?, tokens: [Data: (token: AccessToken, digest: Data)])>((nil, [:]))
    static let verifiedLimit = 10_000
    static let touchInterval = Duration.seconds(60)

    /// Query parameters that carry a token in other services; refused, never read.
    static let queryNames: Set<String> = ["access_token", "token", "api_key", "apikey", "api-key", "auth", "bearer", "key"]

    init(store: any AccessStore, publicRoutes: Set<String>, logger: Logger) {
        self.store = store
        self.publicRoutes = publicRoutes
        self.logger = logger
    }

    /// The caller of `request` under `rule`, nil on an open route.
    func authorize(_ request: Request, address: String?, rule: AccessRule) async throws(Problem) -> Caller? {
        let required: Role
        switch rule {
        case .open: return nil
        case .configurable(let name):
            if publicRoutes.contains(name) { return nil }
            required = .viewer
        case .role(let role): required = role
        }
        for (name, value) in request.uri.queryParameters
        where Self.queryNames.contains(String(name).lowercased()) || value.hasPrefix(TokenMint.prefix) {
            throw Self.unauthorized("tokens are not accepted in the query string (\"\(name)\"): they end up in logs and "
                                    + "browser history; send the header Authorization: Bearer <token>, and revoke a token "
                                    + "that was sent this way", invalid: true)
        }
        guard let header = request.headers[.authorization] else {
            throw Self.unauthorized("this route needs a token: send the header Authorization: Bearer <token>", invalid: false)
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw Self.unauthorized("the Authorization header must be \"Bearer <token>\"", invalid: true)
        }
        // Blanks around the token trimmed by hand: Foundation's trimmingCharacters bridged
        // through NSString on every request (2 % of a GET's CPU).
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        var token = parts[1].drop(while: blank)
        while let last = token.last, blank(last) { token = token.dropLast() }
        let presented = String(token)
        let digest = TokenMint.digest(presented)
        let found = TokenMint.isWellFormed(presented) ? try await lookUp(digest) : nil
        guard let found, TokenMint.constantTimeEqual(found.digest, digest) else {
            throw Self.unauthorized("the token is not valid", invalid: true)
        }
        let now = Date()
        if let refusal = found.token.refusal(at: now) {
            throw Self.unauthorized(refusal, invalid: true)
        }
        if found.token.role < required {
            throw Problem("forbidden", .forbidden, "this route needs the role \(required.rawValue) or above; the token "
                          + "\"\(found.token.name)\" has the role \(found.token.role.rawValue)")
        }
        touch(found.token.id)
        return Caller(token: found.token, address: address)
    }

    /// The token with this digest: from memory while the token set has not changed, else from
    /// the store (and remembered, with the version read before the lookup).
    private func lookUp(_ digest: Data) async throws(Problem) -> (token: AccessToken, digest: Data)? {
        let version = store.tokensVersion()
        if let version {
            let cached = verified.withLock { state -> (token: AccessToken, digest: Data)? in
                if state.version != version { state = (version, [:]) }
                return state.tokens[digest]
            }
            if let cached { return cached }
        }
        let found: (token: AccessToken, digest: Data)?
        do {
            found = try await store.token(digest: digest)
        } catch let error as StoreError {
            throw Problem.from(error)
        } catch {
            throw Problem.from(StoreError.unavailable("\(error)"))
        }
        if let found, let version {
            verified.withLock { state in
                guard state.version == version else { return }
                if state.tokens.count >= Self.verifiedLimit { state.tokens.removeAll() }
                state.tokens[digest] = found
            }
        }
        return found
    }

    /// Records the last use, at most once per `touchInterval` per token, off the request's path.
    private func touch(_ id: Int64) {
        let now = ContinuousClock.now
        let due = touched.withLock { seen -> Bool in
            if let last = seen[id], now - last < Self.touchInterval { return false }
            seen[id] = now
            return true
        }
        guard due else { return }
        let store = self.store, logger = self.logger
        Task {
            do { try await store.touchToken(id: id, at: Date()) } catch {
                logger.warning("recording the last use of token \(id) failed: \(error)")
            }
        }
    }

    static func unauthorized(_ detail: String, invalid: Bool) -> Problem {
        var problem = Problem("unauthorized", .unauthorized, detail)
        problem.headers[.wwwAuthenticate] = invalid ? "Bearer realm=\"confine\", error=\"invalid_token\"" : "Bearer realm=\"confine\""
        return problem
    }
}
