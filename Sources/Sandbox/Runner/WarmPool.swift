import Foundation
import Glibc
import Synchronization

/// Sandboxes built ahead of time, off the critical path: for each recently used
/// `SandboxImage`, a few init processes that already have their namespaces, their cgroup
/// (the slow cgroup v1 move included) and the policy's root, waiting for a run.
///
/// One long-lived thread spawns them, so that their parent-death signal is tied to a thread
/// that lives as long as the process. Idle sandboxes die with the process (`Sandbox` removes
/// them at exit); leftovers of a crash are removed by the next `Sandbox` (`removeStaleRuns`).
final class WarmPool: @unchecked Sendable {
    private struct Entry {
        var plan: LaunchPlan
        var limits: Limits
        var ready: [SandboxProcess] = []
        var lastUsed: UInt64
    }

    private let condition = NSCondition()
    private var entries: [SandboxImage: Entry] = [:]
    private var clock: UInt64 = 0
    /// Sandboxes to kill and reap, on the pool's own thread (never on a shared executor).
    private var discards: [SandboxProcess] = []
    private var stopped = false
    private let size: Int
    private let maxImages: Int
    private let spawn: @Sendable (LaunchPlan, Limits) throws(LaunchError) -> SandboxProcess

    init(size: Int, maxImages: Int, spawn: @escaping @Sendable (LaunchPlan, Limits) throws(LaunchError) -> SandboxProcess) {
        self.size = size
        self.maxImages = maxImages
        self.spawn = spawn
        let thread = Thread { [weak self] in self?.refillLoop() }
        thread.name = "confine-warm-pool"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// A ready sandbox for `image`, or nil (the caller then builds one itself). Either way the
    /// image is kept warm from now on: refilled once the caller says its run has ended
    /// (`refill()`), so that building the next sandbox does not compete with this run's launch
    /// — unless the take leaves fewer than half of `size` ready: then the refill starts at once,
    /// or an image taken from faster than runs end finds its pool empty (with a pool of 2 and a
    /// worker a core, a quarter of the runs end to end were built on their own launch path).
    func take(_ image: SandboxImage, plan: LaunchPlan, limits: Limits) -> SandboxProcess? {
        condition.lock()
        clock += 1
        var taken: SandboxProcess?
        var dead: [SandboxProcess] = []
        if var entry = entries[image] {
            while taken == nil, let candidate = entry.ready.popLast() {
                if candidate.isAlive { taken = candidate } else { dead.append(candidate) }
            }
            entry.lastUsed = clock
            entries[image] = entry
            if taken != nil && entry.ready.count < size / 2 { condition.signal() }  // running low
        } else {
            entries[image] = Entry(plan: plan, limits: limits, lastUsed: clock)
            evictIfNeeded()
        }
        condition.unlock()
        dead.forEach { $0.discard() }
        return taken
    }

    /// Ready sandboxes, every image together.
    var readyCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return entries.values.reduce(0) { $0 + $1.ready.count }
    }

    /// Wakes the refilling thread: a run has ended (its result is out), so the images it
    /// drew from are topped up while nothing waits on the launch path.
    func refill() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    /// Forgets the least recently used images beyond `maxImages`, killing their sandboxes.
    private func evictIfNeeded() {
        while entries.count > maxImages, let oldest = entries.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
            entries[oldest.key] = nil
            discards += oldest.value.ready
        }
    }

    private func refillLoop() {
        while true {
            condition.lock()
            var job: (SandboxImage, LaunchPlan, Limits)?
            while job == nil {
                if !discards.isEmpty {
                    let victims = discards
                    discards = []
                    condition.unlock()
                    victims.forEach { $0.discard() }
                    condition.lock()
                } else if !stopped, let (image, entry) = entries.first(where: { $0.value.ready.count < size }) {
                    job = (image, entry.plan, entry.limits)
                } else {
                    // Once stopped, the thread stays parked: a run whose sandbox it spawned may
                    // still be going, and that sandbox dies when its spawning thread exits.
                    condition.wait()
                }
            }
            condition.unlock()
            guard let (image, plan, limits) = job else { continue }
            let process: SandboxProcess
            do { process = try spawn(plan, limits) } catch {
                // This image cannot be built ahead: forget it; the run path reports why.
                condition.lock()
                entries[image] = nil
                condition.unlock()
                continue
            }
            condition.lock()
            if !stopped, entries[image] != nil {
                entries[image]!.ready.append(process)
                condition.unlock()
            } else {
                condition.unlock()
                process.discard()
            }
        }
    }

    /// Kills every idle sandbox and stops refilling.
    func shutdown() {
        condition.lock()
        stopped = true
        let all = entries.values.flatMap(\.ready)
        entries = [:]
        condition.broadcast()
        condition.unlock()
        all.forEach { $0.discard() }
    }

    deinit { shutdown() }
}
