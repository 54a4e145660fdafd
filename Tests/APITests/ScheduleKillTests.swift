import Foundation
import Glibc
import Testing

/// A schedule firing exactly once per slot across kill -9 of a real `confine serve`: the
/// server is killed with SIGKILL at points around its slots (once a fraction of a second after
/// a slot began, while the scheduler claims it) and started again on the same database; every
/// minute slot in the window must have exactly one execution.
@Suite("Schedules: exactly once across kill -9", .enabled(if: ServerProcess.available))
struct ScheduleKillTests {
    @Test("Every slot of a * * * * * schedule fires exactly once while the server is killed with SIGKILL and restarted")
    func exactlyOnceAcrossKills() async throws {
        let server = try await ServerProcess(policies: LiveServer.repository.appendingPathComponent("policies").path)
        defer { server.stop() }
        let created = try await server.call("POST", "/jobs", json: #"""
            {"name": "every-minute", "script_type": "bash", "script_content": "true", "concurrency": "allow",
             "schedule": {"cron": "* * * * *", "overlap": "allow"}}
            """#)
        let job = try #require(created.object["id"] as? Int, "\(created)")
        let minute = 60.0
        // The job's first two slots: its next_run_at as the server computed it, and the minute after.
        let next = try #require((created.object["schedule"] as? [String: Any])?["next_run_at"] as? String, "\(created)")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let firstSlot = try #require(formatter.date(from: next), "next_run_at \(next)").timeIntervalSince1970
        let slots = [firstSlot, firstSlot + minute]
        var kills = 0
        // When the server was down: from each kill to the end of its restart.
        var downtimes: [(from: TimeInterval, to: TimeInterval)] = []
        func killAndRestart() async throws {
            let from = Date().timeIntervalSince1970
            #expect(kill(server.pid, SIGKILL) == 0, "kill -9 of the server: errno \(errno)")
            kills += 1
            try await server.server.restart()
            downtimes.append((from, Date().timeIntervalSince1970))
        }
        for slot in slots {
            // Killed a few seconds before the slot, then 0.2 s after it began (the scheduler's
            // claim in flight or just committed), then once more after it fired.
            try await sleep(until: slot - 4)
            try await killAndRestart()
            try await sleep(until: slot + 0.2)
            try await killAndRestart()
            try await sleep(until: slot + 3)
            try await killAndRestart()
        }
        // The last slot has fired (a restart takes seconds, well inside the 60 s grace).
        try await sleep(until: slots.last! + 8)
        let page = try await server.call("GET", "/executions?job_id=\(job)&limit=100")
        let executions = try #require(page.object["executions"] as? [[String: Any]], "\(page)")
        var bySlot: [String: Int] = [:]
        for execution in executions {
            #expect(execution["trigger"] as? String == "schedule", "\(execution)")
            bySlot[execution["scheduled_for"] as? String ?? "none", default: 0] += 1
        }
        // Exactly once: no slot fired twice, and every slot fired is a whole minute from the first.
        for (slot, count) in bySlot {
            #expect(count == 1, "slot \(slot) fired \(count) times; all: \(bySlot)")
        }
        let fired = Set(bySlot.keys)
        let possible = Set((0..<30).map { Self.utc(Date(timeIntervalSince1970: firstSlot + Double($0) * minute)) })
        #expect(fired.isSubset(of: possible), "slots that are not the schedule's: \(fired.subtracting(possible))")
        // A slot must have fired when the server was up for 5 s on end within its grace period
        // (60 s from the slot): on a loaded machine a restart can take longer than that, and then
        // catch_up none skips the slot, as it should.
        func upFiveSeconds(within start: TimeInterval, _ end: TimeInterval) -> Bool {
            var cursor = start
            for down in downtimes.sorted(by: { $0.from < $1.from }) where down.to > start && down.from < end {
                if down.from - cursor >= 5 { return true }
                cursor = max(cursor, down.to)
            }
            return end - cursor >= 5
        }
        for slot in slots {
            if upFiveSeconds(within: slot, slot + 60) {
                #expect(bySlot[Self.utc(Date(timeIntervalSince1970: slot))] == 1,
                        "slot \(Self.utc(Date(timeIntervalSince1970: slot))) did not fire; all: \(bySlot); downtimes \(downtimes)")
            }
        }
        #expect(kills == 6)
    }

    /// `2026-12-06T10:01:00.000+00:00`, as the server writes dates.
    static func utc(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'+00:00'"
        return formatter.string(from: date)
    }

    func sleep(until time: TimeInterval) async throws {
        let wait = time - Date().timeIntervalSince1970
        if wait > 0 { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
    }
}
