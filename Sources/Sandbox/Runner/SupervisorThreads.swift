import Foundation

/// The threads runs are supervised on: each watches one run at a time and then waits for the
/// next, so that a launch wakes a parked thread instead of creating one (clone, stack, TLS)
/// and tearing it down afterwards — about a tenth of a warm launch of `/bin/true` here. A
/// thread idle for `idleSeconds` ends; at most `maxIdle` wait. A launch never waits for a
/// thread: with none idle, it gets a new one.
final class SupervisorThreads: @unchecked Sendable {
    /// One thread's mailbox: the work handed to it, under its condition.
    private final class Worker: @unchecked Sendable {
        let condition = NSCondition()
        var work: (@Sendable () -> Void)?
    }

    /// Shared by every `Sandbox` of the process.
    static let shared = SupervisorThreads()

    private let lock = NSLock()
    private var idle: [Worker] = []
    private let maxIdle: Int
    private let idleSeconds: Double
    private let stackSize: Int

    init(maxIdle: Int = 16, idleSeconds: Double = 30, stackSize: Int = 1 << 20) {
        self.maxIdle = maxIdle
        self.idleSeconds = idleSeconds
        self.stackSize = stackSize
    }

    /// Runs `body` on a supervisor thread: an idle one, or a new one.
    func run(_ body: @escaping @Sendable () -> Void) {
        lock.lock()
        let parked = idle.popLast()
        lock.unlock()
        if let parked {
            parked.condition.lock()
            parked.work = body
            parked.condition.signal()
            parked.condition.unlock()
            return
        }
        let worker = Worker()
        worker.work = body
        let thread = Thread { [self] in serve(worker) }
        thread.name = "confine-run"
        thread.stackSize = stackSize
        thread.start()
    }

    private func serve(_ worker: Worker) {
        while true {
            worker.condition.lock()
            while worker.work == nil {
                if worker.condition.wait(until: Date(timeIntervalSinceNow: idleSeconds)) || worker.work != nil { continue }
                // Idle too long: retire, unless a launch has just taken this thread (then its
                // work is on the way).
                lock.lock()
                let retired = idle.firstIndex { $0 === worker }.map { idle.remove(at: $0) } != nil
                lock.unlock()
                if retired {
                    worker.condition.unlock()
                    return
                }
            }
            let work = worker.work!
            worker.work = nil
            worker.condition.unlock()
            work()
            lock.lock()
            let keep = idle.count < maxIdle
            if keep { idle.append(worker) }
            lock.unlock()
            if !keep { return }
        }
    }
}
