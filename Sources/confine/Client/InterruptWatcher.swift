import Dispatch
import Foundation
import Synchronization

/// SIGINT and SIGTERM, caught (instead of ending the process) while `exec run --wait` waits.
final class InterruptWatcher: @unchecked Sendable {
    private let flag = Atomic<Bool>(false)
    // Set once in init; only cancelled in deinit.
    private var sources: [DispatchSourceSignal] = []

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.flag.store(true, ordering: .relaxed) }
            source.resume()
            sources.append(source)
        }
    }

    deinit { sources.forEach { $0.cancel() } }

    /// Whether a signal came.
    var fired: Bool { flag.load(ordering: .relaxed) }
}
