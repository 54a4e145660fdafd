import Domain
import Foundation
import Logging
import Sandbox
import Store

// This node among the nodes sharing the store: its heartbeat, the take-over of dead nodes'
// executions, and the other nodes' events (queued work, cancellations) acted on at once.

extension Engine {
    /// Every sixth of node_timeout (at least 1 s apart): this node's heartbeat, then the
    /// RUNNING executions of nodes silent for longer than node_timeout end `interrupted`.
    func nodeWatch() -> Task<Void, Never> {
        Task { [self] in
            let interval = max(.seconds(1), configuration.nodeTimeout / 6)
            var failing = false
            while !Task.isCancelled {
                do {
                    try await store.heartbeat(node: configuration.workerName)
                    let ended = try await store.interruptDeadNodes(
                        timeout: configuration.nodeTimeout,
                        reason: "its node stopped sending heartbeats for longer than node_timeout (\(configuration.nodeTimeout)); taken over by node \(configuration.workerName)")
                    if !ended.isEmpty {
                        let nodes = Set(ended.compactMap(\.worker)).sorted().joined(separator: ", ")
                        configuration.logger.warning("""
                            took over \(ended.count) execution(s) of dead node(s) \(nodes): ended as FAILED (interrupted) \
                            with their partial output
                            """)
                        wakeWorkers()
                    }
                    if failing { configuration.logger.notice("heartbeats stored again") }
                    failing = false
                } catch {
                    if !failing { configuration.logger.warning("heartbeat of node \(configuration.workerName) failed: \(error)") }
                    failing = true
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Other nodes' events: queued work wakes the workers; a cancellation of an execution
    /// running here kills its sandbox at once (the run's own check would see it within
    /// `outputFlushInterval` anyway).
    func storeEvents() -> Task<Void, Never> {
        let events = store.events()
        return Task { [self] in
            for await event in events {
                if Task.isCancelled { break }
                switch event {
                case .queued:
                    wakeWorkers()
                case .cancelRequested(let id):
                    let handle = state.withLock { s -> RunHandle? in
                        if let handle = s.handles[id] { return handle }
                        // Claimed here, its sandbox not started yet; another node's: nothing to do.
                        if s.live[id] != nil { s.cancelled.insert(id) }
                        return nil
                    }
                    handle?.cancel()
                }
            }
        }
    }
}
