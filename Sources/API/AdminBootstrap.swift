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
            guard unlink(file) == 0 else {
                throw SecretBoxError.file("cannot replace the stale \(file): \(String(cString: strerror(errno)))")
            }
        }
        try SecretFile.create(file, contents: text + "\n")
        do {
            let token = try await access.createToken(NewAccessToken(
                name: "admin", role: .admin, tenant: "admin", digest: TokenMint.digest(text), createdAt: Date()))
            try await access.appendAudit(AuditEntry(at: Date(), tokenID: nil, tokenName: nil, role: nil, action: "token.create",
                                                    targetType: "token", targetID: String(token.id), address: nil,
                                                    detail: "first admin token, written to \(file)"))
        } catch {
            unlink(file)
            throw error
        }
        return true
    }
}
