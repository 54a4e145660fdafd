import Foundation
import Synchronization

/// The `⠋ execution 7 RUNNING 3.2s` line on stderr (a terminal) while `exec run --wait` waits,
/// redrawn every 100 ms and cleared at the end.
final class Spinner: Sendable {
    private static let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
    private let label: Mutex<String>
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)
    /// Held while a frame or a note is written, so that they never interleave.
    private let output = Mutex(())

    /// Whether the spinner is drawn (stderr is a terminal).
    let enabled: Bool

    init(enabled: Bool, label: String) {
        self.label = Mutex(label)
        self.enabled = enabled
        guard enabled else { return }
        let start = ContinuousClock.now
        task.withLock {
            $0 = Task { [self] in
                var frame = 0
                while !Task.isCancelled {
                    let elapsed = ContinuousClock.now - start
                    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                    let text = "\r\u{1B}[2K\(Self.frames[frame % Self.frames.count]) \(self.label.withLock { $0 }) \(String(format: "%.1f", seconds))s"
                    self.output.withLock { _ in writeAll(Data(text.utf8), to: 2) }
                    frame += 1
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    func update(_ label: String) { self.label.withLock { $0 = label } }

    /// Writes `confine: <message>` on a line of its own on stderr (the spinner, when it runs,
    /// is redrawn below it).
    func note(_ message: String) {
        let clear = enabled ? "\r\u{1B}[2K" : ""
        output.withLock { _ in writeAll(Data("\(clear)confine: \(message)\n".utf8), to: 2) }
    }

    /// Stops redrawing and clears the line.
    func stop() async {
        guard let task = task.withLock({ value -> Task<Void, Never>? in defer { value = nil }; return value }) else { return }
        task.cancel()
        await task.value
        writeAll(Data("\r\u{1B}[2K".utf8), to: 2)
    }
}
