import Credentials
import Domain
import Foundation
import Store

/// Secure by default: on the first start with a database that has no token at all, the server
/// makes an admin token and writes it to a file only its owner can read, so that nobody has to
/// run a server open to all even for a minute. The token is never logged; only the file's path.
public enum AdminBootstrap {
    /// Makes the first admin token when the store has none, writing it to `file` (mode 0600,
    /// replacing a stale file left by a deleted database, never following a link). Returns
    /// whether it made one.
    public static func ensureAdmin(access: any AccessStore, file: String) async throws -> Bool {
        guard try await access.tokens().isEmpty else { return false }
        let text = TokenMint.make()
        var info = stat()
        if lstat(file, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG || (info.st_mode & S_IFMT) == S_IFLNK else {
                throw SecretBoxError.file("\(file) exists and is not a file; move it away or set admin_token_file")
            }
        }
        // Written beside its place first; it takes the file's name only once this server's
        // token is the first (several servers may start at once on one shared database).
        let partial = file + ".partial-\(getpid())"
        unlink(partial)
        try SecretFile.create(partial, contents: text + "\n")
        let token: AccessToken
        do {
            guard let first = try await access.createFirstToken(NewAccessToken(
                name: "admin", role: .admin, tenant: "admin", digest: TokenMint.digest(text), createdAt: Date())) else {
                unlink(partial)
                return false
            }
            token = first
        } catch {
            unlink(partial)
            throw error
        }
        guard rename(partial, file) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(partial)
            _ = try? await access.revokeToken(id: token.id, now: Date())
            throw SecretBoxError.file("cannot write \(file): \(reason); the token made for it was revoked; make an admin token with confine token create admin --role admin --database DATABASE")
        }
        try await access.appendAudit(AuditEntry(at: Date(), tokenID: nil, tokenName: nil, role: nil, action: "token.create",
                                                targetType: "token", targetID: String(token.id), address: nil,
                                                detail: "first admin token, written to \(file)"))
        return true
    }
}
