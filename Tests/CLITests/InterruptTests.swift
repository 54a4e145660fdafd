import ConfineTestSupport
import Foundation
import Glibc
import Testing

/// Ctrl-C on the terminal that started `confine run`: the terminal signals its foreground
/// process group; that reaches Confine, which cancels the run, and never the sandboxed program.
@Suite("confine run and Ctrl-C")
struct InterruptTests {
    @Test("SIGINT to confine run's process group cancels the run (exit 120); the program never receives it",
          .enabled(if: CLITests.canSandbox))
    func interruptCancels() throws {
        let process = Process()
        // confine run leads a process group of its own (same pid), as a shell's foreground job does.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        let program = """
            import signal, sys, time
            signal.signal(signal.SIGINT, lambda *a: print("program got SIGINT", flush=True))
            print("ready", flush=True)
            time.sleep(20)
            print("slept", flush=True)
            """
        let launcher = "import os, sys; os.setpgid(0, 0); os.execv(sys.argv[1], sys.argv[1:])"
        process.arguments = ["-c", launcher, CLITests.binary, "run", "--", "/usr/bin/python3", "-c", program]
        process.currentDirectoryURL = URL(fileURLWithPath: CLITests.repoRoot)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try ProcessLaunch.run(process)
        let group = process.processIdentifier
        // Wait for the program's "ready", then do what the terminal does on Ctrl-C.
        var seen = Data()
        let deadline = Date().addingTimeInterval(30)
        while !String(decoding: seen, as: UTF8.self).contains("ready") && Date() < deadline && process.isRunning {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            seen.append(chunk)
        }
        try #require(String(decoding: seen, as: UTF8.self).contains("ready"), "the program never started: \(String(decoding: seen, as: UTF8.self))")
        #expect(kill(-group, SIGINT) == 0)
        seen.append(out.fileHandleForReading.readDataToEndOfFile())
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let output = String(decoding: seen, as: UTF8.self)
        #expect(process.terminationStatus == 120, "status \(process.terminationStatus): \(output) \(errors)")
        #expect(!output.contains("program got SIGINT"), "the program received the terminal's SIGINT: \(output)")
        #expect(!output.contains("slept"), "the run was not cancelled: \(output)")
        #expect(errors.contains("cancelled"), "\(errors)")
    }
}
