import Foundation
import Testing

/// Schedules over real HTTP: set with the job, validated (422 naming `schedule.cron`, …),
/// changed and removed by PATCH, listed by `GET /schedules` per tenant; executions say what
/// started them.
@Suite("Schedules: routes")
struct ScheduleRouteTests {
    @Test("A job's schedule: defaults, next_run_at with the zone's offset, PATCH merges, null removes, GET /schedules lists by next run")
    func lifecycle() async throws {
        try await LiveServer.with { s in
            let created = try await s.post("/jobs", #"""
                {"name": "nightly", "script_type": "bash", "script_content": "true",
                 "schedule": {"cron": "30 2 * * *", "timezone": "Europe/Paris"}}
                """#)
            #expect(created.status == 200, "\(created)")
            let id = try #require(created.object["id"] as? Int)
            let schedule = try #require(created.object["schedule"] as? [String: Any])
            #expect(schedule["cron"] as? String == "30 2 * * *" && schedule["timezone"] as? String == "Europe/Paris")
            #expect(schedule["overlap"] as? String == "skip" && schedule["catch_up"] as? String == "none")
            #expect(schedule["enabled"] as? Bool == true)
            let next = try #require(schedule["next_run_at"] as? String)
            // 02:30 in Paris is 01:30 UTC in winter, 00:30 in summer (00:00+02:00 → 01:00 on the change day).
            #expect(next.hasSuffix("+00:00") && (next.contains("T01:30:00.000") || next.contains("T00:30:00.000")
                    || next.contains("T01:00:00.000")), "next_run_at: \(next)")
            #expect(schedule.keys.contains("last_skipped_at"))

            // PATCH: the members given replace the schedule's; the rest is kept.
            let paused = try await s.call("PATCH", "/jobs/\(id)", json: #"{"schedule": {"enabled": false, "overlap": "queue"}}"#)
            #expect(paused.status == 200, "\(paused)")
            let pausedSchedule = try #require(paused.object["schedule"] as? [String: Any])
            #expect(pausedSchedule["enabled"] as? Bool == false && pausedSchedule["overlap"] as? String == "queue")
            #expect(pausedSchedule["cron"] as? String == "30 2 * * *")
            #expect(pausedSchedule["next_run_at"] is NSNull, "a disabled schedule has no next run")

            let hourly = try await s.post("/jobs", #"""
                {"name": "hourly", "script_type": "bash", "script_content": "true", "schedule": {"cron": "@hourly"}}
                """#)
            let hourlyID = try #require(hourly.object["id"] as? Int)
            #expect((hourly.object["schedule"] as? [String: Any])?["timezone"] as? String == "UTC")
            let list = try await s.get("/schedules")
            #expect(list.status == 200, "\(list)")
            let listed = try #require(list.object["schedules"] as? [[String: Any]])
            #expect(listed.map { $0["job_id"] as? Int } == [hourlyID, id], "enabled by next run, then disabled")
            #expect(listed.first?["job_name"] as? String == "hourly")

            let removed = try await s.call("PATCH", "/jobs/\(id)", json: #"{"schedule": null}"#)
            #expect(removed.status == 200 && removed.object["schedule"] is NSNull, "\(removed)")
            let after = try await s.get("/schedules").object["schedules"] as? [[String: Any]]
            #expect(after?.map { $0["job_id"] as? Int } == [hourlyID])
            #expect(try await s.get("/jobs/\(id)").object["schedule"] is NSNull)
        }
    }

    @Test("Invalid schedules are 422 naming the member and the reason")
    func validation() async throws {
        try await LiveServer.with { s in
            func create(_ schedule: String) async throws -> HTTPAnswer {
                try await s.post("/jobs", #"{"name": "bad-\#(UUID().uuidString.prefix(6))", "script_type": "bash", "script_content": "true", "schedule": \#(schedule)}"#)
            }
            try await create(#"{"cron": "61 * * * *"}"#).expectProblem(422, field: "schedule.cron", "minute", "61 is out of range 0-59")
            try await create(#"{"cron": "* * * *"}"#).expectProblem(422, field: "schedule.cron", "expected 5 fields")
            try await create(#"{"cron": "0 0 * * funday"}"#).expectProblem(422, field: "schedule.cron", "day-of-week")
            try await create(#"{"cron": "0 0 30 2 *"}"#).expectProblem(422, field: "schedule.cron", "matches no date")
            try await create(#"{"cron": "@reboot"}"#).expectProblem(422, field: "schedule.cron", "@reboot")
            try await create(#"{"cron": "@daily", "timezone": "Europe/Atlantis"}"#).expectProblem(422, field: "schedule.timezone", "Europe/Atlantis")
            try await create(#"{"cron": "@daily", "timezone": "../../etc/passwd"}"#).expectProblem(422, field: "schedule.timezone")
            try await create(#"{"cron": "@daily", "overlap": "sometimes"}"#).expectProblem(422, field: "schedule.overlap", "skip, queue, allow")
            try await create(#"{"cron": "@daily", "catch_up": "all"}"#).expectProblem(422, field: "schedule.catch_up", "none, last")
            try await create(#"{"cron": "@daily", "enabled": "yes"}"#).expectProblem(422, field: "schedule.enabled")
            try await create(#"{"cron": "@daily", "cronn": "x"}"#).expectProblem(422, field: "schedule.cronn")
            try await create(#"{"timezone": "UTC"}"#).expectProblem(422, field: "schedule.cron", "required")
            try await create(#""@daily""#).expectProblem(422, field: "schedule")
        }
    }

    @Test("Another tenant's schedules are not listed, and its job is 404; executions say what started them")
    func tenantsAndTriggers() async throws {
        try await LiveServer.with { s in
            let alice = try await s.token("alice-cron", role: "submitter", extra: #", "tenant": "data""#).token
            let bob = try await s.token("bob-cron", role: "submitter", extra: #", "tenant": "web""#).token
            let job = try await s.job("alice-cron-job", "bash", "true", extra: #", "schedule": {"cron": "@daily"}"#, as: .token(alice))
            #expect((try await s.get("/schedules", as: .token(alice)).object["schedules"] as? [[String: Any]])?.count == 1)
            #expect((try await s.get("/schedules", as: .token(bob)).object["schedules"] as? [[String: Any]])?.isEmpty == true)
            try await s.call("PATCH", "/jobs/\(job)", json: #"{"schedule": null}"#, as: .token(bob)).expectProblem(404)

            let run = try await s.post("/executions/\(job)/run", "{}", as: .token(alice))
            let executionID = try #require(run.object["execution_id"] as? Int, "\(run)")
            let execution = try await s.get("/executions/\(executionID)", as: .token(alice)).object
            #expect(execution["trigger"] as? String == "api")
            #expect(execution["scheduled_for"] is NSNull)
            let adHoc = try await s.post("/executions", #"{"script_type": "bash", "script_content": "true"}"#, as: .token(alice))
            let adHocID = try #require(adHoc.object["execution_id"] as? Int, "\(adHoc)")
            #expect(try await s.get("/executions/\(adHocID)", as: .token(alice)).object["trigger"] as? String == "ad_hoc")
        }
    }
}
