import Domain
import Engine
import Foundation
import Hummingbird
import Store
import Wire

/// `GET /schedules` (viewer): the scheduled jobs the caller sees (its tenant's; every tenant's
/// for operators and admins), enabled ones by next run, then the disabled ones. A job's
/// schedule itself is set, changed and removed through the job (`schedule` of `POST /jobs` and
/// `PATCH /jobs/{id}`: `ScheduleReader`).
struct ScheduleRoutes {
    let server: APIServer

    func register(_ table: RouteTable) {
        table.on(.get, "/schedules", .role(.viewer)) { _, _ in
            let scope = try server.caller.scope
            let jobs = try await server.storeCall { try await server.store.scheduledJobs(tenant: scope) }
            let list = WireScheduleList(schedules: jobs.compactMap { job in
                job.schedule.map { WireScheduledJob(job_id: job.id, job_name: job.name, tenant: job.tenant,
                                                    schedule: Representations.schedule($0)) }
            })
            return try APIServer.respond(list)
        }
    }
}

/// Reads the `schedule` member of a job's body: an object (`WireJobScheduleBody`'s members,
/// unknown ones refused), merged over the job's current schedule on a PATCH, validated (the
/// cron expression, the zone, the enumerations: 422 naming `schedule.cron`, …), its next slot
/// computed; or `null`, which removes it.
struct ScheduleReader {
    /// The members a schedule body may have, as the wire type declares them.
    static let fields = WireJobScheduleBody.wireNames

    /// nil: the body has no `schedule`; `.some(nil)`: `null` (remove); else the schedule to store.
    static func read(_ body: BodyReader, current: JobSchedule?, now: Date = Date()) throws(Problem) -> JobSchedule?? {
        guard let value = body.members["schedule"] else { return nil }
        if value == .null { return .some(nil) }
        let reader = try BodyReader(value, path: "schedule", allowed: fields)
        var schedule: JobSchedule
        if let cron = try reader.string("cron") {
            schedule = current ?? JobSchedule(cron: cron)
            schedule.cron = cron
        } else if let current {
            schedule = current
        } else {
            throw .validation("schedule.cron", "schedule.cron is required (a 5-field cron expression such as \"*/15 * * * *\")")
        }
        if let zone = try reader.string("timezone") { schedule.timezone = zone }
        if let overlap = try reader.string("overlap") {
            guard let value = ScheduleOverlap(rawValue: overlap) else {
                throw .validation("schedule.overlap", "schedule.overlap: expected one of "
                                  + ScheduleOverlap.allCases.map(\.rawValue).joined(separator: ", ") + ", got \"\(overlap)\"")
            }
            schedule.overlap = value
        }
        if let catchUp = try reader.string("catch_up") {
            guard let value = ScheduleCatchUp(rawValue: catchUp) else {
                throw .validation("schedule.catch_up", "schedule.catch_up: expected one of "
                                  + ScheduleCatchUp.allCases.map(\.rawValue).joined(separator: ", ") + ", got \"\(catchUp)\"")
            }
            schedule.catchUp = value
        }
        if let enabled = try reader.bool("enabled") { schedule.enabled = enabled }
        let expression: CronExpression, zone: TimeZone
        do { (expression, zone) = try schedule.parsed() } catch {
            throw .validation(error.field, error.description)
        }
        guard let next = expression.nextRun(after: now, in: zone) else {
            throw .validation("schedule.cron", "schedule.cron: " + CronError.neverRuns(schedule.cron).description)
        }
        schedule.nextRunAt = next
        return .some(schedule)
    }
}
