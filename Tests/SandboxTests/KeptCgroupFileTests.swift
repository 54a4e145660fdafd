import Foundation
import Glibc
import Testing
@testable import Sandbox

/// A cgroup file kept open: each read sees the file as it is now, writes go in at offset 0,
/// and a file that cannot be opened says which and why (tested on plain files).
@Suite("Kept cgroup files")
struct KeptCgroupFileTests {
    static func temporaryFile(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "confine-kept-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    @Test func eachReadSeesTheFileAsItIsNow() throws {
        let path = try Self.temporaryFile("1234\n")
        defer { unlink(path) }
        let file = KeptCgroupFile(path)
        #expect(file.readUInt() == 1234)
        try "56789\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(file.readUInt() == 56789)
        try "total 9\noom_kill 3\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(file.readKey("oom_kill") == 3)
        #expect(file.readKey("absent") == nil)
        try "10\n11\n\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(file.pids() == [10, 11])
    }

    @Test func writesGoInAtTheStart() throws {
        let path = try Self.temporaryFile("")
        defer { unlink(path) }
        let file = KeptCgroupFile(path, writable: true)
        try file.write("42")
        try file.write("7")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "72")
        file.close()
        try file.write("9")  // reopened on use
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "92")
    }

    @Test func aFileThatCannotBeOpenedSaysWhichAndWhy() {
        let file = KeptCgroupFile("/nonexistent-confine/cpuacct.usage", writable: true)
        #expect(file.readUInt() == nil)
        #expect(throws: CgroupError.self) { try file.write("0") }
        do { try file.write("0") } catch {
            #expect(error.path == "/nonexistent-confine/cpuacct.usage")
            #expect(error.errno == ENOENT)
        }
    }
}
