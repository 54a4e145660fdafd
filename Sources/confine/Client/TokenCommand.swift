import ArgumentParser
import Credentials
import Domain
import Foundation
import HumanText
import Store
import Wire

/// `confine token …`: API tokens, made, listed and revoked through the server (an admin token)
/// or, for recovery (every admin token lost or revoked), directly on the database with
/// `--database`, which needs the right to write the file and nothing else.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make, list and revoke API tokens.",
        discussion: """
            Through the server with an admin token (--token, CONFINE_TOKEN or the config file), \
            or with --database PATH|URL directly on the server's SQLite file or the PostgreSQL \
            database its nodes share (recovery; the servers may run meanwhile: a revocation \
            holds at their next request). A new token's text is \
            printed once, on standard output alone (`TOKEN=$(confine token create …)`); only its \
            digest is kept.

            Exit status: 0 done; 1 the server or the database refused (the reason is printed); \
            64 bad usage; 69 the server cannot be reached; 74 the database cannot be opened.
            """,
        subcommands: [Create.self, List.self, Revoke.self]
    )

    /// Where tokens live: the server (default) or a database file.
    struct Target: ParsableArguments {
        @OptionGroup var client: ClientOptions

        @Option(name: .long, help: ArgumentHelp("Work on this database directly instead of through the server: the SQLite file, or the postgres:// URL the nodes share.", valueName: "PATH|URL"))
        var database: String?

        /// `--database` as a location (shown with its password hidden).
        var location: String { (try? DatabaseLocation.parse(database ?? ""))?.description ?? PostgresAddress.redact(database ?? "") }

        func store() async throws -> any AccessStore {
            let location: DatabaseLocation
            do { location = try DatabaseLocation.parse(database!) } catch {
                printClientError(error.description)
                throw ExitCode(64)
            }
            do {
                switch location {
                case .sqlite(let path): return try SQLiteStore(path: path)
                case .postgres(let address): return try await PostgresStore.open(address, connectTimeout: .seconds(10))
                }
            } catch {
                printClientError("database \(location): \(PostgresAddress.redact("\(error)"))")
                throw ExitCode(74)
            }
        }
    }

    enum RoleName: String, ExpressibleByArgument, CaseIterable {
        case viewer, submitter, `operator`, admin
    }

    /// `confine token create NAME --role ROLE [--tenant T] [--policy P]… [--max-policy P] [--max-active N] [--expires 90d]`
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a token; its text is printed once.")

        @OptionGroup var target: Target

        @Argument(help: "A name for people (\"ci-deploy\", \"alice laptop\").")
        var name: String

        @Option(help: "viewer, submitter, operator or admin.")
        var role: RoleName

        @Option(help: "The scope it shares jobs and executions with (default: its name).")
        var tenant: String?

        @Option(name: .customLong("policy"), help: ArgumentHelp("A policy it may use (repeat; default any).", valueName: "NAME"))
        var policies: [String] = []

        @Option(name: .customLong("max-policy"), help: ArgumentHelp("The loosest policy it may run under.", valueName: "NAME"))
        var maxPolicy: String?

        @Option(name: .customLong("max-active"), help: ArgumentHelp("Its executions pending or running at once, at most.", valueName: "N"))
        var maxActive: Int?

        @Option(name: .customLong("max-priority"), help: ArgumentHelp("The highest run priority it may ask, -100…100 (default: 0 for submitters and viewers, 100 for operators and admins).", valueName: "N"))
        var maxPriority: Int?

        @Option(help: ArgumentHelp("How long it lasts (90d, 12h; default forever).", valueName: "DURATION"))
        var expires: String?

        func run() async throws {
            if target.database != nil {
                try await createDirectly()
                return
            }
            let client = try target.client.makeClient()
            try await runClientVerb {
                let body = WireTokenBody(name: name, role: role.rawValue, tenant: tenant, policies: policies.isEmpty ? nil : policies,
                                         max_policy: maxPolicy, max_active: maxActive, max_priority: maxPriority, expires_in: expires)
                let response = try await client.send("POST", "/tokens", json: encodeBody(body))
                if target.client.json { printJSON(response); return }
                let token = try client.decode(WireToken.self, response, url: client.base + "/tokens")
                print(token.token ?? "")
                printClientNote("token \(token.id) \"\(token.name)\" (\(token.role), tenant \(token.tenant)) made; it is shown this once")
            }
        }

        private func createDirectly() async throws {
            let store = try await target.store()
            var expiresAt: Date?
            if let expires {
                guard let ms = try? HumanUnitsText.milliseconds(expires), ms > 0 else {
                    printClientError("--expires \(expires): expected a duration such as 90d or 12h")
                    throw ExitCode(64)
                }
                expiresAt = Date().addingTimeInterval(Double(ms) / 1000)
            }
            if let maxPriority, !(-100...100).contains(maxPriority) {
                printClientError("--max-priority \(maxPriority): expected -100 to 100")
                throw ExitCode(64)
            }
            for (field, value) in [("name", name), ("--tenant", tenant ?? name)] {
                if let problem = ExactName.problem(value, field: field, characters: 100, bytes: 400) {
                    printClientError(problem)
                    throw ExitCode(64)
                }
            }
            let text = TokenMint.make()
            do {
                let token = try await store.createToken(NewAccessToken(
                    name: name, role: Role(rawValue: role.rawValue)!, tenant: tenant ?? name, digest: TokenMint.digest(text),
                    policies: policies.isEmpty ? nil : policies, maxPolicy: maxPolicy, maxActive: maxActive, expiresAt: expiresAt,
                    createdAt: Date(), maxPriority: maxPriority))
                try await store.appendAudit(AuditEntry(at: Date(), tokenID: nil, tokenName: nil, role: nil, action: "token.create",
                                                       targetType: "token", targetID: String(token.id), address: nil,
                                                       detail: "name \(token.name), role \(token.role.rawValue), by confine token --database"))
                print(text)
                printClientNote("token \(token.id) \"\(token.name)\" (\(token.role.rawValue), tenant \(token.tenant)) made in \(target.location); it is shown this once")
            } catch {
                printClientError("\(error)")
                throw ExitCode(1)
            }
        }
    }

    /// `confine token list`
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every token (never their text).")

        @OptionGroup var target: Target

        func run() async throws {
            if target.database != nil {
                let store = try await target.store()
                let tokens: [AccessToken]
                do { tokens = try await store.tokens() } catch {
                    printClientError("\(error)")
                    throw ExitCode(1)
                }
                print(Self.table(tokens.map {
                    WireToken(id: $0.id, name: $0.name, role: $0.role.rawValue, tenant: $0.tenant, max_policy: $0.maxPolicy,
                              max_active: $0.maxActive, expires_at: $0.expiresAt.map(Timestamp.rfc3339),
                              last_used_at: $0.lastUsedAt.map(Timestamp.rfc3339), revoked_at: $0.revokedAt.map(Timestamp.rfc3339))
                }), terminator: "")
                return
            }
            let client = try target.client.makeClient()
            try await runClientVerb {
                let (tokens, response) = try await client.fetch([WireToken].self, "GET", "/tokens")
                if target.client.json { printJSON(response) } else { print(Self.table(tokens), terminator: "") }
            }
        }

        static func table(_ tokens: [WireToken]) -> String {
            var table = Table("ID", "NAME", "ROLE", "TENANT", "QUOTAS", "EXPIRES", "LAST USED", "STATE")
            for t in tokens {
                let quotas = [t.max_policy.map { "max_policy=\($0)" }, t.max_active.map { "max_active=\($0)" }].compactMap { $0 }
                // Both dates in the server's one form (UTC, +00:00): their text orders as their time.
                let expired = t.expires_at.map { $0 <= Timestamp.rfc3339(Date()) } ?? false
                table.add([String(t.id), t.name, t.role, t.tenant, quotas.isEmpty ? "-" : quotas.joined(separator: " "),
                           Display.date(t.expires_at), Display.date(t.last_used_at),
                           t.revoked_at != nil ? "revoked" : expired ? "expired" : "active"])
            }
            return table.render()
        }
    }

    /// `confine token revoke ID`
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token, at once.")

        @OptionGroup var target: Target

        @Argument(help: "The token's id (see `confine token list`).")
        var id: Int64

        func run() async throws {
            if target.database != nil {
                let store = try await target.store()
                do {
                    let token = try await store.revokeToken(id: id, now: Date())
                    try await store.appendAudit(AuditEntry(at: Date(), tokenID: nil, tokenName: nil, role: nil, action: "token.revoke",
                                                           targetType: "token", targetID: String(id), address: nil,
                                                           detail: "name \(token.name), by confine token --database"))
                    print("token \(id) \"\(token.name)\" revoked")
                } catch {
                    printClientError("\(error)")
                    throw ExitCode(1)
                }
                return
            }
            let client = try target.client.makeClient()
            try await runClientVerb {
                let (token, response) = try await client.fetch(WireToken.self, "DELETE", "/tokens/\(id)")
                if target.client.json { printJSON(response) } else { print("token \(id) \"\(token.name)\" revoked") }
            }
        }
    }
}

/// Prints a note for people on stderr (stdout stays for what scripts capture).
func printClientNote(_ message: String) {
    FileHandle.standardError.write(Data("confine: \(message)\n".utf8))
}
