import Domain
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Wire

/// `GET /executions/{id}/files` lists the files collected from an execution's working
/// directory after it ended (`outputs`) with their size and SHA-256, and those skipped with
/// why; `GET /executions/{id}/files/{path}` answers one file's bytes (`ETag` its SHA-256).
/// Another tenant's execution is not found, as one that does not exist.
struct ArtifactRoutes {
    let server: APIServer

    func register(_ table: RouteTable) {
        table.on(.get, "/executions/{id}/files", .role(.viewer)) { _, path in
            let id = try server.id(path, "id")
            let caller = try server.caller
            guard let listed = try await server.storeCall({ try await server.store.artifacts(executionID: id) }),
                  caller.sees(tenant: listed.execution.tenant) else {
                throw Problem.notFound("execution \(id) not found", field: "id")
            }
            return try APIServer.respond(WireArtifactList(
                files: listed.files.map { WireArtifact(path: $0.path, size: $0.size, sha256: $0.sha256) },
                skipped: listed.skipped.map { WireSkippedArtifact(path: $0.path, reason: $0.reason) }))
        }
        table.on(.get, "/executions/{id}/files/{path}", .role(.viewer), restOfPath: true) { request, path in
            let id = try server.id(path, "id")
            let name = path.get("path") ?? ""
            let caller = try server.caller
            guard let found = try await server.storeCall({ try await server.store.artifacts(executionID: id) }),
                  caller.sees(tenant: found.execution.tenant) else {
                throw Problem.notFound("execution \(id) not found", field: "id")
            }
            guard let file = try await server.storeCall({ try await server.store.artifact(executionID: id, path: name) }) else {
                let known = found.files.map(\.path)
                throw Problem.notFound("execution \(id) has no collected file \"\(name)\""
                                       + (known.isEmpty ? " (it has none)" : "; it has \(known.prefix(20).joined(separator: ", "))"),
                                       field: "path")
            }
            let etag = "\"\(file.artifact.sha256)\""
            if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: {
                let tag = $0.trimmingCharacters(in: .whitespaces)
                return tag == etag || tag == "*"
            }) {
                return Response(status: .notModified, headers: [.eTag: etag])
            }
            var headers: HTTPFields = [.contentType: "application/octet-stream", .eTag: etag]
            let disposition = (file.artifact.path.split(separator: "/").last.map(String.init) ?? "file")
                .replacingOccurrences(of: "\"", with: "")
            headers[.contentDisposition] = "attachment; filename=\"\(disposition)\""
            headers[.contentLength] = String(file.content.count)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.content)))
        }
    }
}
