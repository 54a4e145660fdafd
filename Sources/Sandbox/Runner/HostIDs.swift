import Synchronization

/// The host uids (and, the same numbers, gids) that sandboxes' root maps to: one of its own
/// for every sandbox alive at once, taken when its init is made and given back when it is
/// reaped. The kernel counts some objects per user — pipe buffer pages
/// (`fs.pipe-user-pages-soft`), epoll watches (`fs.epoll.max_user_watches`), processes
/// (RLIMIT_NPROC) — so with one uid for every sandbox, one sandbox could take them all from
/// the others; with a uid each, each has the whole allowance to itself. Every `Sandbox` of a
/// process with the same range shares one allocator (`shared`); the search starts at a random
/// place so that two servers sharing a range rarely meet.
final class HostIDs: Sendable {
    private static let allocators = Mutex<[ClosedRange<UInt32>: HostIDs]>([:])

    /// The process's allocator of `range`.
    static func shared(_ range: ClosedRange<UInt32>) -> HostIDs {
        allocators.withLock { all in
            if let existing = all[range] { return existing }
            let made = HostIDs(range)
            all[range] = made
            return made
        }
    }

    let first: UInt32
    let count: UInt32
    private struct State {
        var inUse: Set<UInt32> = []
        var next: UInt32
    }
    private let state: Mutex<State>

    private init(_ range: ClosedRange<UInt32>) {
        first = range.lowerBound
        count = UInt32(range.count)
        state = Mutex(State(next: UInt32.random(in: 0..<UInt32(range.count))))
    }

    /// A free id, or nil when every id of the range is held by a live sandbox.
    func take() -> UInt32? {
        state.withLock { s in
            guard s.inUse.count < Int(count) else { return nil }
            while s.inUse.contains(first + s.next) { s.next = (s.next + 1) % count }
            let id = first + s.next
            s.inUse.insert(id)
            s.next = (s.next + 1) % count
            return id
        }
    }

    /// Gives `id` back (its sandbox is reaped and its descriptors closed).
    func give(_ id: UInt32) {
        _ = state.withLock { $0.inUse.remove(id) }
    }

    /// Whether a live sandbox holds `id` now.
    func isHeld(_ id: UInt32) -> Bool { state.withLock { $0.inUse.contains(id) } }
}
