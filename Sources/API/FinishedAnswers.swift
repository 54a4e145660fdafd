import NIOCore
import Synchronization

/// The answers of `GET /executions/{id}` for finished executions, kept in memory: a finished
/// execution never changes — it can only be deleted (retention, its job deleted) — so its
/// answer, once written, is answered again without reading the store or encoding anything.
///
/// Valid for the store's `finishedExecutionsVersion` they were read at (one `stat` of a file
/// every deletion rewrites, by this server or any other process on the database): when it
/// changes, everything kept is dropped, so a deleted execution is "not found" at the next
/// request. A store without such a version (nil: PostgreSQL, where other nodes delete) gets
/// nothing kept. The version is read before the store is, so an answer read while a deletion
/// commits is tagged with the version before it, and dropped.
///
/// Only answers written whole (at most `StreamedAnswers.inlineOutput` of output) are kept,
/// at most `maximumCount` and `maximumBytes` in all; the oldest kept go first. The tenant is
/// kept beside each answer: the caller is checked at every request as for a read.
final class FinishedAnswers: Sendable {
    /// One answer kept: its body and the execution's tenant.
    struct Answer: Sendable {
        let tenant: String?
        let body: ByteBuffer
    }

    private struct Key: Hashable {
        let id: Int64
        let encoding: Representations.OutputEncoding
    }

    private struct State {
        var version: String?
        var answers: [Key: Answer] = [:]
        /// Keys in the order they were kept (the oldest first); `first` is where it starts.
        var order: [Key] = []
        var first = 0
        var bytes = 0

        mutating func reset(_ version: String?) {
            self = State(version: version)
        }
    }

    static let maximumCount = 4096
    static let maximumBytes = 32 << 20

    private let state = Mutex(State())

    /// The kept answer of execution `id` in `encoding`, when kept at `version`; a changed
    /// version drops everything kept.
    func answer(_ id: Int64, _ encoding: Representations.OutputEncoding, version: String) -> Answer? {
        state.withLock { state in
            if state.version != version {
                state.reset(version)
                return nil
            }
            return state.answers[Key(id: id, encoding: encoding)]
        }
    }

    /// Keeps the answer of a finished execution read at `version` (the version read before the
    /// store was); nothing when the version changed meanwhile.
    func keep(_ id: Int64, _ encoding: Representations.OutputEncoding, version: String, tenant: String?, body: ByteBuffer) {
        let size = body.readableBytes
        guard size <= Self.maximumBytes / 64 else { return }
        state.withLock { state in
            guard state.version == version else { return }
            let key = Key(id: id, encoding: encoding)
            guard state.answers[key] == nil else { return }
            while state.answers.count >= Self.maximumCount || state.bytes + size > Self.maximumBytes {
                let oldest = state.order[state.first]
                state.first += 1
                if let dropped = state.answers.removeValue(forKey: oldest) { state.bytes -= dropped.body.readableBytes }
            }
            // The consumed front of the order is cut once it is half of it.
            if state.first > 0, state.first * 2 >= state.order.count {
                state.order.removeFirst(state.first)
                state.first = 0
            }
            state.answers[key] = Answer(tenant: tenant, body: body)
            state.order.append(key)
            state.bytes += size
        }
    }

    /// How many answers are kept now.
    var count: Int { state.withLock { $0.answers.count } }
}
