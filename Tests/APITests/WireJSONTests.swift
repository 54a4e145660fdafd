@testable import API
import Domain
import Foundation
import Testing
import Wire

/// The wire types' JSON writer (`WireJSON`): members in the order the types declare them, nil
/// members as `null` save those a type leaves out, maps sorted, strings escaped, and what it
/// writes reads back (with `JSONDecoder`) as the value written.
@Suite("Wire JSON")
struct WireJSONTests {
    static let created = Date(timeIntervalSince1970: 1_764_000_000.123)

    static func execution(status: ExecutionStatus = .success) -> Execution {
        Execution(id: 7, jobID: 3, status: status, verdict: .exited, exitCode: 0, scriptType: ScriptType("bash"),
                  scriptSnapshot: "echo hi", policyName: "default", policySnapshot: "name: default", arguments: ["a \"b\""],
                  stdout: Data("hi\n\u{1}".utf8), stdoutBytes: 4, usage: ResourceUsage(wallMs: 5, cpuMs: 2), createdAt: created,
                  startedAt: created, finishedAt: created, worker: "w1", tenant: nil, submittedBy: 2)
    }

    /// The top-level keys in the order written (JSONSerialization forgets the order): each
    /// string at depth 1 that follows `{` or `,` is a key.
    static func keys(_ bytes: [UInt8]) throws -> [String] {
        var keys: [String] = []
        var depth = 0, i = 0
        var previous: UInt8 = 0
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "\"") {
                var end = i + 1
                while bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
                if depth == 1, previous == UInt8(ascii: "{") || previous == UInt8(ascii: ",") {
                    keys.append(String(decoding: bytes[(i + 1)..<end], as: UTF8.self))
                }
                i = end
            } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                depth += 1
            } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                depth -= 1
            }
            previous = bytes[i]
            i += 1
        }
        return keys
    }

    @Test("An execution: every member in declaration order, nulls written, output members only with the output")
    func executionMembers() throws {
        let full = Representations.execution(Self.execution(status: .running), executionID: true)
        var running = full
        running.finished_at = nil
        running.exit_code = nil
        let bytes = try WireJSON.encode(running)
        #expect(try Self.keys(bytes) == WireExecution.wireNames, "\(String(decoding: bytes, as: UTF8.self))")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["finished_at"] is NSNull && object["exit_code"] is NSNull && object["tenant"] is NSNull)
        #expect(object["stdout"] as? String == "hi\n\u{1}")
        #expect(try JSONDecoder().decode(WireExecution.self, from: Data(bytes)) == running)

        let summary = Representations.execution(Self.execution(), withOutput: false)
        let summaryBytes = try WireJSON.encode(summary)
        let absent = WireExecution.absentWhenNil
        #expect(try Self.keys(summaryBytes) == WireExecution.wireNames.filter { !absent.contains($0) })
        #expect(try JSONDecoder().decode(WireExecution.self, from: Data(summaryBytes)) == summary)
    }

    @Test("A job: maps with sorted keys, secret_environment_cleared only when secrets were cleared")
    func jobMembers() throws {
        let job = Job(id: 1, name: "j\u{e9}", scriptType: ScriptType("python"), scriptContent: "print('\\\\')\n", policy: "default",
                      limits: ["wall_time=2s", "memory=64MiB"], environment: ["Z": "1", "A": "2", "M": "\u{7f}"],
                      secretEnvironment: ["S": "sealed"], createdAt: Self.created, updatedAt: Self.created)
        let bytes = try WireJSON.encode(Representations.job(job))
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains(#""limits":{"memory":"64MiB","wall_time":"2s"}"#), "\(text)")
        #expect(text.contains(#""environment":{"A":"2","M":"\u007f","Z":"1"}"#), "\(text)")
        #expect(text.contains(#""secret_environment":["S"]"#) && text.contains(#""tenant":null"#), "\(text)")
        #expect(!text.contains("secret_environment_cleared"))
        #expect(try Self.keys(bytes) == WireJob.wireNames.filter { $0 != "secret_environment_cleared" })
        let cleared = try WireJSON.encode(Representations.job(job, secretsCleared: ["S"]))
        #expect(try Self.keys(cleared).last == "secret_environment_cleared")
        #expect(try JSONDecoder().decode(WireJob.self, from: Data(bytes)) == Representations.job(job))
    }

    @Test("Integers at their limits, numbers, strings with every kind of escape, and nested optionals")
    func scalars() throws {
        struct Sample: Codable, Equatable {
            var small: Int64 = .min
            var large: Int64 = .max
            var unsigned: UInt64 = .max
            var zero: Int32 = 0
            var fraction: Double = 1.5
            var whole: Double = -42
            var text: String = "plain \"quoted\" back\\slash\nnew\rret\ttab \u{01}\u{1f}\u{7f} é 日本 🙂"
            var none: String? = nil
            var list: [Int?] = [1, nil]
            var map: [String: String?] = ["b": nil, "a": "x"]
        }
        let bytes = try WireJSON.encode(Sample())
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"small":-9223372036854775808,"large":9223372036854775807,"unsigned":18446744073709551615,"zero":0,"fraction":1.5,"whole":-42,"#), "\(text)")
        #expect(text.contains(#""text":"plain \"quoted\" back\\slash\nnew\rret\ttab \u0001\u001f\u007f é 日本 🙂""#), "\(text)")
        #expect(text.hasSuffix(#""none":null,"list":[1,null],"map":{"a":"x","b":null}}"#), "\(text)")
        #expect(try JSONDecoder().decode(Sample.self, from: Data(bytes)) == Sample())
    }

    @Test("Marked members: the byte ranges of their values, in order")
    func marks() throws {
        var wire = Representations.execution(Self.execution())
        wire.stderr = "e"
        let (bytes, marks) = try WireJSON.encode(wire, marking: ["stdout", "stderr", "stderr_invalid_utf8"])
        #expect(marks.map(\.name) == ["stdout", "stderr", "stderr_invalid_utf8"])
        let values = marks.map { String(decoding: bytes[$0.range], as: UTF8.self) }
        #expect(values == [#""hi\n\u0001""#, #""e""#, "false"])
    }

    @Test("The API's JSON value writes through the same string and number writer")
    func jsonValueAgrees() throws {
        let tricky = "q\"\\\u{0}\u{7f}é"
        var direct: [UInt8] = []
        WireJSON.appendString(tricky, to: &direct)
        #expect(JSON.string(tricky).encoded() == direct)
        #expect(JSON.number(3).encoded() == Array("3".utf8))
        #expect(JSON.number(0.25).encoded() == Array("0.25".utf8))
        #expect(JSON.number(.infinity).encoded() == Array("null".utf8))
    }

    @Test("Dates: RFC 3339 UTC with milliseconds, before 1970 too, and years past 9999")
    func timestamps() {
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_764_000_000.1239)) == "2025-11-24T16:00:00.123+00:00")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000+00:00")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: -0.25)) == "1969-12-31T23:59:59.750+00:00")
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 253_402_300_800)) == "10000-01-01T00:00:00.000+00:00")
    }
}
