import Credentials
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The dashboard: `GET /` redirects to `/ui/`, which answers the page, and `/ui/{asset}` its
/// script, stylesheet and icon — files of `ui/` compiled into the binary (`DashboardAssets`,
/// written by scripts/embed-ui.py). They hold no data: every call the page makes needs a token.
/// Open by default (`private_routes: [ui]` closes them); every answer carries the strict
/// Content-Security-Policy of `SecurityHeaders`, an ETag (the SHA-256) and `no-cache`.
struct DashboardRoutes {
    let server: APIServer

    /// An asset ready to answer: its bytes, type and ETag.
    struct Asset: Sendable {
        let type: String
        let bytes: [UInt8]
        let etag: String
    }

    static let assets: [String: Asset] = DashboardAssets.files.mapValues { file in
        let bytes = Array(file.text.utf8)
        return Asset(type: file.type, bytes: bytes, etag: "\"\(Digest.sha256Hex(bytes))\"")
    }

    func register(_ table: RouteTable) {
        table.on(.get, "/", .open) { _, _ in
            Response(status: .found, headers: [.location: "/ui/", .contentLength: "0"])
        }
        table.on(.get, "/ui", .configurable("ui")) { request, _ in
            Self.answer(request, "index.html")
        }
        table.on(.get, "/ui/{asset}", .configurable("ui")) { request, path in
            let name = path.get("asset") ?? ""
            guard name != "index.html", Self.assets[name] != nil else {
                throw Problem.notFound("no dashboard file \"\(name)\"; the dashboard is at /ui/", field: "asset")
            }
            return Self.answer(request, name)
        }
    }

    static func answer(_ request: Request, _ name: String) -> Response {
        let asset = assets[name]!
        var headers: HTTPFields = [.contentType: asset.type, .eTag: asset.etag, .cacheControl: "no-cache"]
        SecurityHeaders.add(to: &headers)
        if let match = request.headers[.ifNoneMatch], match.split(separator: ",").contains(where: {
            $0.trimmingCharacters(in: .whitespaces) == asset.etag || $0.trimmingCharacters(in: .whitespaces) == "*"
        }) {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }
}
