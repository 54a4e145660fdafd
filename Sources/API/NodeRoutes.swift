import Domain
import Engine
import Foundation
import Hummingbird
import Store
import Wire

/// `GET /nodes` (operator): every node sharing the database, alive, dead or stopped.
struct NodeRoutes {
    let server: APIServer

    func register(_ table: RouteTable) {
        table.on(.get, "/nodes", .role(.operator)) { _, _ in
            let nodes = try await server.storeCall { try await server.store.nodes(timeout: server.engine.configuration.nodeTimeout) }
            return try APIServer.respond(nodes.map { node in
                WireNode(name: node.name, state: node.state.rawValue, version: node.version,
                         started_at: Representations.format(node.startedAt), last_heartbeat_at: Representations.format(node.lastHeartbeatAt),
                         workers: node.workers, running: node.running)
            })
        }
    }
}
