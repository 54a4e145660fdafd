import Domain
import Foundation
import GRDB

// The persistent queue and the lifecycle of executions: enqueued (quotas and concurrency rules
// checked in the same transaction), claimed with a lease, renewed, finished, cancelled,
// interrupted after a crash; and the queue's depth.

extension SQLiteStore {
    public func enqueue(_ new: NewExecution, queueLimit: Int) async throws -> Execution {
        try await write { db in
            try self.admitNewData()
            return try Self.insertExecution(db, new, queueLimit: queueLimit)
        }
    }

    /// Stores a new PENDING execution inside the caller's transaction: the job's concurrency
    /// rule, the submitter's quota and the queue bound checked first (see `enqueue`).
    static func insertExecution(_ db: Database, _ new: NewExecution, queueLimit: Int) throws -> Execution {
        // A job's run takes the job's tenant; an ad-hoc run (no job) its submitter's.
        var tenant = new.tenant
        if let jobID = new.jobID {
            guard let job = try fetchJob(db, id: jobID) else { throw StoreError.notFound("job \(jobID)") }
            if new.concurrency == .forbid, let active = try activeExecution(db, jobID: jobID) {
                throw StoreError.conflict("""
                    job \(job.name) (\(job.id)) already has execution \(active) pending or running, and its concurrency \
                    rule is forbid
                    """)
            }
            tenant = job.tenant
        }
        if let submitter = new.submittedBy, let maxActive = new.maxActive {
            let active = try Int.fetchOne(db.cached("""
                SELECT COUNT(*) FROM execution WHERE submitted_by = ? AND status IN ('PENDING', 'RUNNING')
                """), arguments: [submitter]) ?? 0
            if active >= maxActive { throw StoreError.quotaExceeded(limit: maxActive) }
        }
        let pending = try Int.fetchOne(db.cached("SELECT COUNT(*) FROM execution WHERE status = 'PENDING'")) ?? 0
        if pending >= queueLimit { throw StoreError.queueFull(limit: queueLimit) }
        try db.cached("""
            INSERT INTO execution (job_id, status, script_type, script_snapshot, policy_name, policy_snapshot, concurrency,
                                   arguments, environment, stdin, priority, created_at, secret_environment, tenant,
                                   submitted_by, weaker_isolation, files, outputs, run_trigger, scheduled_for, callback)
            VALUES (?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [new.jobID, new.scriptType.rawValue, new.scriptSnapshot, new.policyName, new.policySnapshot,
                             new.concurrency.rawValue, JSONText.encode(new.arguments), JSONText.encode(new.environment), new.stdin,
                             new.priority, Millis.of(new.createdAt), JSONText.encode(new.secretEnvironment), tenant ?? "",
                             new.submittedBy, JSONText.encode(new.weakerIsolation), FileColumn.encode(new.files),
                             JSONText.encode(new.outputs), new.trigger.rawValue, new.scheduledFor.map(Millis.of),
                             new.callback.map(JSONText.encode)])
        let id = db.lastInsertedRowID
        if var audit = new.audit {
            audit.targetID = String(id)
            _ = try insertAudit(db, audit)
        }
        return try fetchExecution(db, id: id, withOutput: false)!
    }

    /// The RUNNING execution whose lease expired first (before the argument).
    static let expiredLeaseSQL = """
        SELECT id FROM execution WHERE status = 'RUNNING' AND lease_deadline < ? ORDER BY lease_deadline, id LIMIT 1
        """

    /// The next runnable PENDING execution due at the argument (its not-before passed): highest
    /// priority, then oldest; a `queue` job's execution waits while another execution of the
    /// same job runs.
    static let nextPendingSQL = """
        SELECT e.id FROM execution e
        WHERE e.status = 'PENDING' AND (e.not_before IS NULL OR e.not_before <= ?)
          AND (e.concurrency != 'queue' OR NOT EXISTS
               (SELECT 1 FROM execution r WHERE r.job_id = e.job_id AND r.status = 'RUNNING'))
        ORDER BY e.priority DESC, e.id LIMIT 1
        """

    /// The oldest runnable PENDING execution of one tenant at one priority (arguments: the
    /// priority, the tenant, the time it must be due by): a walk of that tenant's part of the
    /// partial index `execution_pending_tenant`.
    static let nextPendingOfTenantSQL = """
        SELECT e.id FROM execution e
        WHERE e.status = 'PENDING' AND e.priority = ? AND e.tenant = ? AND (e.not_before IS NULL OR e.not_before <= ?)
          AND (e.concurrency != 'queue' OR NOT EXISTS
               (SELECT 1 FROM execution r WHERE r.job_id = e.job_id AND r.status = 'RUNNING'))
        ORDER BY e.id LIMIT 1
        """

    /// The tenants with PENDING executions at one priority, each with its oldest runnable one,
    /// but for `tenant`: one index seek per tenant (`execution_pending_tenant`), however many
    /// executions are queued.
    static func nextPendingOfOtherTenants(_ db: Database, now: Int64, priority: Int, except tenant: String) throws -> [(tenant: String, id: Int64)] {
        var found: [(tenant: String, id: Int64)] = []
        var next = try String.fetchOne(db.cached("""
            SELECT MIN(tenant) FROM execution WHERE status = 'PENDING' AND priority = ?
            """), arguments: [priority])
        while let current = next {
            if current != tenant,
               let id = try Int64.fetchOne(db.cached(nextPendingOfTenantSQL), arguments: [priority, current, now]) {
                found.append((current, id))
            }
            next = try String.fetchOne(db.cached("""
                SELECT MIN(tenant) FROM execution WHERE status = 'PENDING' AND priority = ? AND tenant > ?
                """), arguments: [priority, current])
        }
        return found
    }

    /// The execution to claim: the first runnable one (highest priority, then oldest), unless
    /// a tenant with fewer RUNNING executions has one runnable at the same priority — then the
    /// oldest of the tenant with the fewest. One tenant with a thousand queued executions thus
    /// does not stall another tenant's single one: the workers are shared fairly. The other
    /// tenants are found through an index of PENDING executions by priority and tenant, so a
    /// claim costs the same with ten or a hundred thousand queued (a scan of every PENDING row
    /// of the priority, as before v16, took 0.4 ms per claim with 1,500 queued).
    static func nextFairPending(_ db: Database, now: Int64) throws -> Int64? {
        guard let first = try Row.fetchOne(db.cached("""
            SELECT id, priority, tenant FROM execution WHERE id = (\(nextPendingSQL))
            """), arguments: [now]) else { return nil }
        let id: Int64 = first[0], priority: Int = first[1], tenant: String = first[2]
        var running: [String: Int] = [:]
        for row in try Row.fetchAll(db.cached("SELECT tenant, COUNT(*) FROM execution WHERE status = 'RUNNING' GROUP BY tenant")) {
            running[row[0]] = row[1]
        }
        let mine = running[tenant, default: 0]
        guard mine > 0 else { return id }
        let others = try nextPendingOfOtherTenants(db, now: now, priority: priority, except: tenant)
        // The tenants with the fewest running first: at each level, the oldest of those with
        // no more running than the level.
        for level in Set(running.values.filter { $0 < mine } + [0]).sorted() {
            if let other = others.filter({ running[$0.tenant, default: 0] <= level }).min(by: { $0.id < $1.id }) {
                return other.id
            }
        }
        return id
    }

    public func claimNext(worker: String, leaseUntil: Date, now: Date) async throws -> Execution? {
        try await write { db in try self.claim(db, ClaimRequest(worker: worker, leaseUntil: leaseUntil, now: now)) }
    }

    /// `claimNext` inside a transaction.
    private func claim(_ db: Database, _ request: ClaimRequest) throws -> Execution? {
        let worker = request.worker
        // No new work while the disk is full: its output would have nowhere to go.
        guard self.reserve.admits() else { return nil }
        let nowMs = Millis.of(request.now), leaseMs = Millis.of(request.leaseUntil)
        // A lease that expired: its worker is gone. Take the execution over; the new worker
        // runs the script from its start, so the dead run's partial output goes.
        if let expired = try Int64.fetchOne(db.cached(Self.expiredLeaseSQL), arguments: [nowMs]) {
            try db.cached("""
                UPDATE execution SET worker = ?, lease_deadline = ?, takeovers = takeovers + 1,
                  stdout_bytes = 0, stderr_bytes = 0, stdout_truncated = 0, stderr_truncated = 0
                WHERE id = ? AND status = 'RUNNING' AND lease_deadline < ?
                """).execute(arguments: [worker, leaseMs, expired, nowMs])
            guard db.changesCount == 1 else { throw StoreError.unavailable("execution \(expired) changed during its take-over") }
            try OutputPieces.clear(db, expired)
            // A claimed execution has no output: its take-over cleared it, and a PENDING one has none.
            return try Self.fetchExecution(db, id: expired, withOutput: false)
        }
        guard let id = try Self.nextFairPending(db, now: nowMs) else { return nil }
        try db.cached("""
            UPDATE execution SET status = 'RUNNING', started_at = ?, worker = ?, lease_deadline = ?
            WHERE id = ? AND status = 'PENDING'
            """).execute(arguments: [nowMs, worker, leaseMs, id])
        guard db.changesCount == 1 else { throw StoreError.unavailable("execution \(id) changed while it was claimed") }
        return try Self.fetchExecution(db, id: id, withOutput: false)
    }

    public func renewLease(executionID: Int64, worker: String, until: Date) async throws {
        try await write { db in
            try db.cached("UPDATE execution SET lease_deadline = ? WHERE id = ? AND status = 'RUNNING' AND worker = ?").execute(arguments: [Millis.of(until), executionID, worker])
            if db.changesCount == 0 { throw StoreError.notFound("running execution \(executionID) of worker \(worker)") }
        }
    }

    public func finish(executionID: Int64, _ outcome: ExecutionOutcome) async throws -> Execution {
        try await write { db in try Self.finish(db, executionID: executionID, outcome) }
    }

    /// The finish and the worker's next claim in one transaction; the claim in a savepoint of
    /// its own (statements cached: GRDB's `inSavepoint` compiles its own each time), so that
    /// its failure leaves the finish stored.
    public func finish(executionID: Int64, _ outcome: ExecutionOutcome,
                       thenClaim claim: ClaimRequest?) async throws -> (finished: Execution, next: Execution?) {
        try await write { db in
            let finished = try Self.finish(db, executionID: executionID, outcome)
            guard let claim else { return (finished, nil) }
            try db.cached("SAVEPOINT claim").execute()
            do {
                let next = try self.claim(db, claim)
                try db.cached("RELEASE claim").execute()
                return (finished, next)
            } catch {
                // The worker claims again on its own, and hears why.
                try db.cached("ROLLBACK TO claim").execute()
                try db.cached("RELEASE claim").execute()
                return (finished, nil)
            }
        }
    }

    /// `finish` inside a transaction.
    static func finish(_ db: Database, executionID: Int64, _ outcome: ExecutionOutcome) throws -> Execution {
        try db.cached("""
            UPDATE execution SET status = ?, verdict = ?, exit_code = ?, signal = ?, reason = ?,
              stdout_bytes = ?, stderr_bytes = ?, stdout_truncated = ?, stderr_truncated = ?, wall_ms = ?, cpu_ms = ?,
              memory_peak_bytes = ?, finished_at = ?, lease_deadline = NULL, weaker_isolation = ?, denied = ?
            WHERE id = ? AND status = 'RUNNING'
            """).execute(arguments: [outcome.status.rawValue, outcome.verdict.rawValue, outcome.exitCode, outcome.signal,
                             outcome.reason, outcome.stdoutBytes, outcome.stderrBytes,
                             outcome.stdoutTruncated, outcome.stderrTruncated, outcome.usage.wallMs, outcome.usage.cpuMs,
                             outcome.usage.memoryPeakBytes, Millis.of(outcome.finishedAt),
                             JSONText.encode(outcome.weakerIsolation), outcome.denied.map(JSONText.encode), executionID])
        if db.changesCount == 0 { try Self.requireStatus(db, executionID, .running, to: outcome.status.rawValue) }
        if outcome.keepsStoredOutput {
            // The disk had no room for the rest: the output stored while it ran stays, and a
            // stream is marked truncated when less was kept than was written.
            for (stream, column, written) in [(OutputPieces.Stream.stdout, "stdout_truncated", outcome.stdoutBytes),
                                              (.stderr, "stderr_truncated", outcome.stderrBytes)]
            where try OutputPieces.end(db, executionID, stream) < written {
                try db.cached("UPDATE execution SET \(column) = 1 WHERE id = ?").execute(arguments: [executionID])
            }
        } else {
            try OutputPieces.replace(db, executionID, .stdout, from: outcome.stdoutOffset, with: outcome.stdout)
            try OutputPieces.replace(db, executionID, .stderr, from: outcome.stderrOffset, with: outcome.stderr)
            try Self.storeArtifacts(db, executionID, outcome)
        }
        if let retry = outcome.retry { _ = try Self.insertRetry(db, of: executionID, retry) }
        try Self.queueDeliveries(db, executionID: executionID, now: Millis.of(outcome.finishedAt))
        return try Self.fetchExecution(db, id: executionID, withOutput: false)!
    }

    public func cancel(executionID: Int64, now: Date) async throws -> Execution {
        try await write { db in
            guard let current = try Self.fetchExecution(db, id: executionID) else {
                throw StoreError.notFound("execution \(executionID)")
            }
            switch current.status {
            case .pending:
                try db.cached("""
                    UPDATE execution SET status = 'CANCELLED', verdict = 'cancelled', reason = 'cancelled before it started',
                      finished_at = ?
                    WHERE id = ? AND status = 'PENDING'
                    """).execute(arguments: [Millis.of(now), executionID])
                try Self.queueDeliveries(db, executionID: executionID, now: Millis.of(now))
            case .running:
                try db.cached("UPDATE execution SET cancel_requested = 1 WHERE id = ? AND status = 'RUNNING'").execute(arguments: [executionID])
            case .success, .failed, .cancelled, .timedOut:
                // Cancelling an attempt that ended stops its chain: its queued retry is cancelled.
                if let retry = try Int64.fetchOne(db.cached("""
                    SELECT id FROM execution WHERE retry_of = ? AND status = 'PENDING'
                    """), arguments: [executionID]) {
                    try db.cached("""
                        UPDATE execution SET status = 'CANCELLED', verdict = 'cancelled',
                          reason = 'cancelled before it started (its chain was cancelled)', finished_at = ?
                        WHERE id = ? AND status = 'PENDING'
                        """).execute(arguments: [Millis.of(now), retry])
                    try Self.queueDeliveries(db, executionID: retry, now: Millis.of(now))
                    return try Self.fetchExecution(db, id: retry)!
                }
                throw StoreError.invalidTransition(executionID: executionID, from: current.status,
                                                   to: ExecutionStatus.cancelled.rawValue)
            }
            return try Self.fetchExecution(db, id: executionID)!
        }
    }

    public func isCancelRequested(executionID: Int64) async throws -> Bool {
        try await read { db in
            try Bool.fetchOne(db.cached("SELECT cancel_requested FROM execution WHERE id = ?"), arguments: [executionID]) ?? false
        }
    }

    public func interruptRunning(worker: String?, reason: String, now: Date) async throws -> [Execution] {
        try await write { db in
            let ids: [Int64]
            if let worker {
                ids = try Int64.fetchAll(db.cached("SELECT id FROM execution WHERE status = 'RUNNING' AND worker = ? ORDER BY id"),
                                         arguments: [worker])
            } else {
                ids = try Int64.fetchAll(db.cached("SELECT id FROM execution WHERE status = 'RUNNING' ORDER BY id"))
            }
            for id in ids {
                try db.cached("""
                    UPDATE execution SET status = 'FAILED', verdict = 'interrupted', reason = ?, finished_at = ?,
                      lease_deadline = NULL
                    WHERE id = ? AND status = 'RUNNING'
                    """).execute(arguments: [reason, Millis.of(now), id])
                try Self.queueDeliveries(db, executionID: id, now: Millis.of(now))
            }
            return try ids.compactMap { try Self.fetchExecution(db, id: $0) }
        }
    }

    /// Queues a retry of an execution inside the caller's transaction: a copy of it (its
    /// snapshots, arguments, environment, stdin, files, secrets, submitter, priority), PENDING,
    /// trigger `retry`, `retry_of` it, with the attempt and not-before given. A job that runs
    /// one at a time (`forbid`, `queue`) has its retry wait while another of its runs runs.
    static func insertRetry(_ db: Database, of executionID: Int64, _ retry: RetryRequest) throws -> Execution {
        try db.cached("""
            INSERT INTO execution (job_id, status, script_type, script_snapshot, policy_name, policy_snapshot, concurrency,
                                   arguments, environment, stdin, priority, created_at, secret_environment, tenant,
                                   submitted_by, weaker_isolation, files, outputs, run_trigger, scheduled_for, attempt,
                                   retry_of, not_before, callback)
            SELECT job_id, 'PENDING', script_type, script_snapshot, policy_name, policy_snapshot,
                   CASE concurrency WHEN 'allow' THEN 'allow' ELSE 'queue' END, arguments, environment, stdin, priority, ?,
                   secret_environment, tenant, submitted_by, weaker_isolation, files, outputs, 'retry', scheduled_for, ?, id, ?,
                   callback
            FROM execution WHERE id = ?
            """).execute(arguments: [Millis.now, retry.attempt, Millis.of(retry.notBefore), executionID])
        guard db.changesCount == 1 else { throw StoreError.notFound("execution \(executionID)") }
        return try Self.fetchExecution(db, id: db.lastInsertedRowID, withOutput: false)!
    }

    public func enqueueRetry(of executionID: Int64, _ retry: RetryRequest) async throws -> Execution {
        try await write { db in
            try self.admitNewData()
            return try Self.insertRetry(db, of: executionID, retry)
        }
    }

    public func nextNotBefore(after now: Date) async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db.cached("""
                SELECT MIN(not_before) FROM execution WHERE status = 'PENDING' AND not_before IS NOT NULL AND not_before > ?
                """), arguments: [Millis.of(now)]).map(Millis.date)
        }
    }

    public func pendingCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db.cached("SELECT COUNT(*) FROM execution WHERE status = 'PENDING'")) ?? 0 }
    }
}
