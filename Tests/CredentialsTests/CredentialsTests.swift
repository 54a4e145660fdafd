import Credentials
import Foundation
import Testing

@Suite("Tokens and secrets")
struct CredentialsTests {
    @Test("tokens are random, 256 bits, recognisable and only their digest is compared")
    func tokens() {
        let tokens = (0..<200).map { _ in TokenMint.make() }
        #expect(Set(tokens).count == 200)
        for token in tokens {
            #expect(TokenMint.isWellFormed(token), "\(token)")
            #expect(token.hasPrefix("cfn_"))
        }
        let token = tokens[0]
        #expect(TokenMint.digest(token).count == 32)
        #expect(TokenMint.digest(token) == TokenMint.digest(token))
        #expect(TokenMint.digest(token) != TokenMint.digest(tokens[1]))
        #expect(!TokenMint.isWellFormed("cfn_short"))
        #expect(!TokenMint.isWellFormed(String(token.dropFirst(4))))
        #expect(!TokenMint.isWellFormed(String(token.dropLast()) + "!"))
        #expect(TokenMint.constantTimeEqual(TokenMint.digest(token), TokenMint.digest(token)))
        #expect(!TokenMint.constantTimeEqual(TokenMint.digest(token), TokenMint.digest(tokens[1])))
        #expect(!TokenMint.constantTimeEqual(Data([1, 2]), Data([1, 2, 3])))
    }

    @Test("secrets seal with a random nonce, open only with the same key, and detect tampering")
    func secrets() throws {
        let key = Data((0..<32).map { UInt8($0) })
        let box = try SecretBox(key: key)
        let a = try box.seal("hunter2"), b = try box.seal("hunter2")
        #expect(a != b, "a fresh nonce per value")
        #expect(!a.contains("hunter2"))
        #expect(try box.open(a) == "hunter2")
        let other = try SecretBox(key: Data(repeating: 7, count: 32))
        #expect(throws: SecretBoxError.self) { try other.open(a) }
        var bytes = Data(base64Encoded: String(a.dropFirst(3)))!
        bytes[bytes.count - 1] ^= 1
        #expect(throws: SecretBoxError.self) { try box.open("v1:" + bytes.base64EncodedString()) }
        #expect(throws: SecretBoxError.self) { try SecretBox(key: Data(count: 16)) }
    }

    @Test("the key file is created 0600 once, reused, and refused when others can read it")
    func keyFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("confine-key-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("sub/secrets.key").path
        let first = try SecretBox.load(base64: nil, file: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let sealed = try first.seal("value")
        let again = try SecretBox.load(base64: nil, file: path)
        #expect(try again.open(sealed) == "value")
        chmod(path, 0o644)
        #expect(throws: SecretBoxError.self) { try SecretBox.load(base64: nil, file: path) }
        // A link planted where the file should be is not followed.
        let link = folder.appendingPathComponent("link.key").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        #expect(throws: SecretBoxError.self) { try SecretFile.read(link) }
        #expect(throws: SecretBoxError.self) { try SecretFile.create(link, contents: "x") }
    }
}
