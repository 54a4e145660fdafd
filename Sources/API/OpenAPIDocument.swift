import Foundation
import Yams

/// The OpenAPI document shipped with the server (`Resources/openapi.yaml`), as YAML and JSON,
/// with its `servers` written per request: the URL the client used, or `public_url`.
struct OpenAPIDocument: Sendable {
    /// The document as shipped.
    let yaml: String
    /// The document as JSON values, members in the file's order.
    let tree: JSON

    /// The `servers:` block of the shipped YAML, replaced per request.
    static let serversPattern = #"(?m)^servers:\n(  - url: .*\n)+"#

    private static let cache: Result<OpenAPIDocument, Problem> = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let yaml = try? String(contentsOf: url, encoding: .utf8) else {
            return .failure(Problem("internal", .internalServerError, "the OpenAPI document is missing from the server's resources"))
        }
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw YamlError.dataCouldNotBeDecoded(encoding: .utf8) }
            guard yaml.range(of: serversPattern, options: .regularExpression) != nil else {
                return .failure(Problem("internal", .internalServerError, "the OpenAPI document has no top-level servers: block to fill"))
            }
            return .success(OpenAPIDocument(yaml: yaml, tree: YAMLToJSON.convert(node)))
        } catch {
            return .failure(Problem("internal", .internalServerError, "the OpenAPI document does not parse: \(error)"))
        }
    }()

    static func shared() throws(Problem) -> OpenAPIDocument { try cache.get() }

    /// The document as JSON, `servers` naming `serverURL`.
    func json(serverURL: String) -> [UInt8] {
        guard case .object(var members) = tree else { return tree.encoded() }
        let servers = JSON.array([.object([("url", .string(serverURL)), ("description", .string("this server"))])])
        if let index = members.firstIndex(where: { $0.0 == "servers" }) {
            members[index].1 = servers
        } else {
            members.append(("servers", servers))
        }
        return JSON.object(members).encoded()
    }

    /// The document as YAML, `servers` naming `serverURL`.
    func yaml(serverURL: String) -> String {
        // A JSON string is a valid YAML double-quoted scalar.
        let quoted = String(decoding: JSON.string(serverURL).encoded(), as: UTF8.self)
        guard let range = yaml.range(of: Self.serversPattern, options: .regularExpression) else { return yaml }
        return yaml.replacingCharacters(in: range, with: "servers:\n  - url: \(quoted)\n    description: this server\n")
    }
}
