import HumanText
import Synchronization

/// How inits get into their run's cgroup: born there (cgroup v2, clone3 with
/// CLONE_INTO_CGROUP, once the backend has placed the spawner where it may do that) or moved
/// in after clone: on cgroup v1 by init itself (`RunCgroup.selfJoinFiles`), elsewhere — where
/// the kernel or the delegation refuses — by the server, by pid.
final class CgroupPlacement: Sendable {
    private struct State {
        var intoCgroup = false
        var why: String? = "no spawner placed yet"
    }
    private let state = Mutex(State())
    private let born = Atomic<Int>(0)

    /// Whether launches should hand the spawner the run's cgroup directory.
    var intoCgroup: Bool { state.withLock { $0.intoCgroup } }

    /// Words for /ready and the doctor: how inits get into their cgroup.
    var description: String {
        state.withLock { s in
            s.intoCgroup ? "born in their cgroup (clone3 CLONE_INTO_CGROUP)"
                : "moved into their cgroup after clone (\(s.why ?? "the kernel refused"))"
        }
    }

    /// Inits born in their cgroup so far.
    var bornCount: Int { born.load(ordering: .relaxed) }

    /// The backend's answer for a (re)started spawner: nil when placed.
    func spawnerPlaced(refusal: String?) {
        state.withLock { $0 = State(intoCgroup: refusal == nil, why: refusal) }
    }

    /// One launch's outcome. A kernel refusal (errno) stops handing cgroups out, said once.
    func launched(bornInCgroup: Bool, refusal: Int32) {
        if bornInCgroup {
            born.add(1, ordering: .relaxed)
            return
        }
        guard refusal != 0 else { return }
        let first = state.withLock { s in
            defer { s = State(intoCgroup: false, why: "clone3 into the run's cgroup refused: \(ErrnoName.describe(refusal))") }
            return s.intoCgroup
        }
        if first { FileWriter.warn("confine: clone3 into the run's cgroup refused (\(ErrnoName.describe(refusal))); inits are moved in after clone") }
    }
}
