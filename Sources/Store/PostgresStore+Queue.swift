import Domain
import Foundation
import PostgresNIO

// The persistent queue on PostgreSQL, shared by every node: enqueued under the submission lock
// (so forbid, quotas and the bound are exact across nodes), claimed with FOR UPDATE SKIP
// LOCKED, renewed, finished, cancelled, interrupted.

extension PostgresStore {
    public func enqueue(_ new: NewExecution, queueLimit: Int) async throws -> Execution {
        let logger = self.logger
        return try await transaction { connection in
            try await PostgresLocks.take(.enqueue, connection, logger)
            // Every node's workers look for work once this commits (NOTIFY sent by the insert).
            return try await Self.insertExecution(connection, new, queueLimit: queueLimit, notify: true, logger)
        }
    }

    /// Stores a new PENDING execution inside the caller's transaction, which holds the
    /// `.enqueue` lock: the job's concurrency rule, the submitter's quota and the queue bound
    /// checked first (as SQLite's `insertExecution`), all read by one statement; then the row,
    /// its audit entry and (with `notify`) the `queued` NOTIFY written by another.
    static func insertExecution(_ connection: PostgresConnection, _ new: NewExecution, queueLimit: Int, notify: Bool = false,
                                _ logger: Logger) async throws -> Execution {
        var checks = SQL()
        let job = checks.bind(new.jobID)
        checks.append("""
            SELECT (SELECT tenant FROM job WHERE id = \(job)), (SELECT name FROM job WHERE id = \(job)),
                   (SELECT id FROM execution WHERE job_id = \(job) AND status IN ('PENDING', 'RUNNING') LIMIT 1),
                   (SELECT COUNT(*) FROM execution WHERE status IN ('PENDING', 'RUNNING')
                      AND submitted_by = \(checks.bind(new.submittedBy))),
                   (SELECT COUNT(*) FROM execution WHERE status = 'PENDING')
            """)
        let (jobTenant, jobName, active, mine, pending) = try await connection.first(checks.query, logger)!
            .decode((String?, String?, Int64?, Int64, Int64).self)
        var tenant = new.tenant
        if let jobID = new.jobID {
            guard let jobTenant, let jobName else { throw StoreError.notFound("job \(jobID)") }
            if new.concurrency == .forbid, let active {
                throw StoreError.conflict("""
                    job \(jobName) (\(jobID)) already has execution \(active) pending or running, and its concurrency \
                    rule is forbid
                    """)
            }
            tenant = jobTenant
        }
        if new.submittedBy != nil, let maxActive = new.maxActive, mine >= maxActive {
            throw StoreError.quotaExceeded(limit: maxActive)
        }
        if pending >= queueLimit { throw StoreError.queueFull(limit: queueLimit) }
        var q = SQL()
        q.append("""
            WITH made AS (
            INSERT INTO execution (job_id, status, script_type, script_snapshot, policy_name, policy_snapshot, concurrency,
                                   arguments, environment, stdin, priority, created_at, secret_environment, tenant,
                                   submitted_by, weaker_isolation, files, outputs, run_trigger, scheduled_for, callback)
            VALUES (\(q.bind(new.jobID)), 'PENDING', \(q.bind(new.scriptType.rawValue)), \(q.bind(new.scriptSnapshot)),
                    \(q.bind(new.policyName)), \(q.bind(new.policySnapshot)), \(q.bind(new.concurrency.rawValue)),
                    \(q.bind(JSONText.encode(new.arguments))), \(q.bind(JSONText.encode(new.environment))), \(q.bind(new.stdin)),
                    \(q.bind(Int64(new.priority))), \(q.bind(Millis.of(new.createdAt))), \(q.bind(JSONText.encode(new.secretEnvironment))),
                    \(q.bind(tenant ?? "")), \(q.bind(new.submittedBy)), \(q.bind(JSONText.encode(new.weakerIsolation))),
                    \(q.bind(FileColumn.encode(new.files))), \(q.bind(JSONText.encode(new.outputs))),
                    \(q.bind(new.trigger.rawValue)), \(q.bind(new.scheduledFor.map(Millis.of))),
                    \(q.bind(new.callback.map { JSONText.encode($0) })))
            RETURNING \(Records.executionColumns))
            """)
        if let audit = new.audit {
            // Its target is the new execution's id.
            q.append("""
                , audited AS (INSERT INTO audit (at, token_id, token_name, role, action, target_type, target_id, address, detail)
                  SELECT \(q.bind(Millis.of(audit.at))), \(q.bind(audit.tokenID)), \(q.bind(audit.tokenName)),
                         \(q.bind(audit.role?.rawValue)), \(q.bind(audit.action)), \(q.bind(audit.targetType)), id::text,
                         \(q.bind(audit.address)), \(q.bind(audit.detail)) FROM made)
                """)
        }
        q.append(" SELECT made.*")
        if notify { q.append(", pg_notify(\(q.bind(PostgresChannel.name)), \(q.bind(PostgresChannel.queued)))") }
        q.append(" FROM made")
        return try PostgresRecords.execution(try await connection.first(q.query, logger)!)
    }

    /// The next runnable PENDING execution: highest priority, then oldest; a `queue` job's
    /// execution waits while another of the same job runs; rows another node is claiming
    /// (locked) are skipped, and so are retries whose not-before is after `now`. `excluded` ids
    /// were tried already in this claim.
    static func nextPendingSQL(_ q: inout SQL, now: Int64, priority: Int64? = nil, excludedTenants: [String] = [],
                               excludedIDs: [Int64]) {
        q.append("""
            SELECT e.id, e.priority, e.tenant, e.concurrency, e.job_id FROM execution e
            WHERE e.status = 'PENDING' AND (e.not_before IS NULL OR e.not_before <= \(q.bind(now)))
              AND (e.concurrency != 'queue' OR NOT EXISTS
                   (SELECT 1 FROM execution r WHERE r.job_id = e.job_id AND r.status = 'RUNNING'))
            """)
        if let priority { q.append(" AND e.priority = \(q.bind(priority))") }
        if !excludedTenants.isEmpty { q.append(" AND e.tenant <> ALL(\(q.bind(excludedTenants)))") }
        if !excludedIDs.isEmpty { q.append(" AND e.id <> ALL(\(q.bind(excludedIDs)))") }
        q.append(" ORDER BY e.priority DESC, e.id LIMIT 1 FOR UPDATE OF e SKIP LOCKED")
    }

    /// The execution to claim, locked (as SQLite's `nextFairPending`): the first runnable one,
    /// unless a tenant with fewer RUNNING executions has one runnable at the same priority —
    /// then the oldest of the tenant with the fewest.
    static func nextFairPending(_ connection: PostgresConnection, now: Int64, excluded: [Int64], _ logger: Logger) async throws
        -> (id: Int64, priority: Int64, concurrency: String, jobID: Int64?)? {
        func pick(priority: Int64?, excludedTenants: [String]) async throws -> (Int64, Int64, String, String, Int64?)? {
            var q = SQL()
            nextPendingSQL(&q, now: now, priority: priority, excludedTenants: excludedTenants, excludedIDs: excluded)
            return try await connection.first(q.query, logger)?.decode((Int64, Int64, String, String, Int64?).self)
        }
        guard let first = try await pick(priority: nil, excludedTenants: []) else { return nil }
        let (id, priority, tenant, concurrency, jobID) = first
        var running: [String: Int64] = [:]
        for row in try await connection.all("SELECT tenant, COUNT(*) FROM execution WHERE status = 'RUNNING' GROUP BY tenant", logger) {
            let (t, n) = try row.decode((String, Int64).self)
            running[t] = n
        }
        let mine = running[tenant, default: 0]
        guard mine > 0 else { return (id, priority, concurrency, jobID) }
        for level in Set(running.values.filter { $0 < mine } + [0]).sorted() {
            let excludedTenants = running.filter { $0.value > level }.map(\.key) + [tenant]
            if let other = try await pick(priority: priority, excludedTenants: excludedTenants) {
                // The first one's lock goes with the transaction; it stays PENDING.
                return (other.0, other.1, other.3, other.4)
            }
        }
        return (id, priority, concurrency, jobID)
    }

    /// The execution columns of the table `alias`, in `Records.ExecutionColumn`'s order (for
    /// `RETURNING`).
    static func executionColumns(of alias: String) -> String {
        Records.ExecutionColumn.allCases.map { "\(alias).\($0.name)" }.joined(separator: ", ")
    }

    /// The claim in one statement (one round trip, no transaction of its own): the runnable
    /// PENDING execution in the priority/FIFO order with the tenants' fairness — at the top
    /// priority, the tenant with the fewest RUNNING first (`nextFairPending`'s choice, as one
    /// ORDER BY) — locked with SKIP LOCKED and made RUNNING, its row returned. A `queue` job's
    /// run is not claimed here (its rule needs the per-job lock): its id comes back alone, and
    /// the caller claims in a transaction.
    static let claimStatement = """
        WITH running AS (SELECT tenant, COUNT(*) AS n FROM execution WHERE status = 'RUNNING' GROUP BY tenant),
        candidate AS (
          SELECT e.id, e.concurrency FROM execution e LEFT JOIN running r ON r.tenant = e.tenant
          WHERE e.status = 'PENDING' AND (e.not_before IS NULL OR e.not_before <= $1)
            AND (e.concurrency != 'queue' OR NOT EXISTS
                 (SELECT 1 FROM execution q WHERE q.job_id = e.job_id AND q.status = 'RUNNING'))
          ORDER BY e.priority DESC, COALESCE(r.n, 0), e.id
          LIMIT 1 FOR UPDATE OF e SKIP LOCKED),
        claimed AS (
          UPDATE execution x SET status = 'RUNNING', started_at = $1, worker = $2, lease_deadline = $3
          FROM candidate c WHERE x.id = c.id AND c.concurrency != 'queue' AND x.status = 'PENDING'
          RETURNING \(executionColumns(of: "x")))
        SELECT claimed.*, candidate.id, candidate.concurrency FROM candidate LEFT JOIN claimed ON true
        """

    public func claimNext(worker: String, leaseUntil: Date, now: Date) async throws -> Execution? {
        let logger = self.logger
        let nowMs = Millis.of(now), leaseMs = Millis.of(leaseUntil)
        var binds = PostgresBindings()
        binds.append(nowMs)
        binds.append(worker)
        binds.append(leaseMs)
        guard let row = try await rows(PostgresStatements.Claim.self, binds).first else { return nil }
        let r = row.makeRandomAccess()
        let columns = Records.ExecutionColumn.allCases.count
        if try r[columns + 1].decode(String.self) != "queue" {
            return try PostgresRecords.execution(r)
        }
        // A `queue` job's run comes first: claimed under its job's lock.
        return try await transaction { connection in
            // No take-over of expired leases here: a dead node's RUNNING executions end
            // `interrupted` once its heartbeat is older than node_timeout (`interruptDeadNodes`),
            // never run a second time by another node.
            var tried: [Int64] = []
            while tried.count < 16 {
                guard let candidate = try await Self.nextFairPending(connection, now: nowMs, excluded: tried, logger) else { return nil }
                if candidate.concurrency == "queue", let jobID = candidate.jobID {
                    // One claimer per queue job at a time; once held, a run of it committed
                    // RUNNING by another node is visible to the check below.
                    guard try await PostgresLocks.tryTake(.queueJob(jobID), connection, logger) else {
                        tried.append(candidate.id)
                        continue
                    }
                    // Nothing of the job runs, and no run of it comes before this one (another
                    // claimer may hold the earlier one's row lock, which made us skip it); a retry
                    // not due yet holds nothing back.
                    var blocked = SQL()
                    let job = blocked.bind(jobID), p = blocked.bind(candidate.priority)
                    blocked.append("""
                        SELECT 1 FROM execution WHERE job_id = \(job) AND (status = 'RUNNING' OR (status = 'PENDING'
                          AND (not_before IS NULL OR not_before <= \(blocked.bind(nowMs)))
                          AND (priority > \(p) OR (priority = \(p) AND id < \(blocked.bind(candidate.id)))))) LIMIT 1
                        """)
                    if try await connection.first(blocked.query, logger) != nil {
                        tried.append(candidate.id)
                        continue
                    }
                }
                var q = SQL()
                q.append("""
                    UPDATE execution x SET status = 'RUNNING', started_at = \(q.bind(nowMs)), worker = \(q.bind(worker)),
                      lease_deadline = \(q.bind(leaseMs))
                    WHERE id = \(q.bind(candidate.id)) AND status = 'PENDING' RETURNING \(Self.executionColumns(of: "x"))
                    """)
                // A claimed execution has no output yet.
                guard let claimed = try await connection.first(q.query, logger) else {
                    throw StoreError.unavailable("execution \(candidate.id) changed while it was claimed")
                }
                return try PostgresRecords.execution(claimed)
            }
            return nil
        }
    }

    public func renewLease(executionID: Int64, worker: String, until: Date) async throws {
        var q = SQL()
        q.append("""
            UPDATE execution SET lease_deadline = \(q.bind(Millis.of(until)))
            WHERE id = \(q.bind(executionID)) AND status = 'RUNNING' AND worker = \(q.bind(worker)) RETURNING id
            """)
        if try await rows(q.query).isEmpty {
            throw StoreError.notFound("running execution \(executionID) of worker \(worker)")
        }
    }

    public func finish(executionID: Int64, _ outcome: ExecutionOutcome) async throws -> Execution {
        if let finished = try await finishAtOnce(executionID: executionID, outcome) { return finished }
        let logger = self.logger
        return try await transaction { connection in
            var q = SQL()
            q.append("""
                UPDATE execution SET \(Self.endAssignments(&q, outcome))
                WHERE id = \(q.bind(executionID)) AND status = 'RUNNING' RETURNING id
                """)
            if try await connection.changed(q.query, logger) == 0 {
                try await Self.requireStatus(connection, executionID, .running, to: outcome.status.rawValue, logger)
            }
            if outcome.keepsStoredOutput {
                for (stream, column, written) in [(OutputPieces.Stream.stdout, "stdout_truncated", outcome.stdoutBytes),
                                                  (.stderr, "stderr_truncated", outcome.stderrBytes)]
                where try await PostgresOutputPieces.end(connection, executionID, stream, logger) < written {
                    var mark = SQL("UPDATE execution SET \(column) = true WHERE id = ")
                    mark.append(mark.bind(executionID))
                    try await connection.query(mark.query, logger: logger)
                }
            } else {
                try await PostgresOutputPieces.replace(connection, executionID, .stdout, from: outcome.stdoutOffset,
                                                       with: outcome.stdout, logger)
                try await PostgresOutputPieces.replace(connection, executionID, .stderr, from: outcome.stderrOffset,
                                                       with: outcome.stderr, logger)
                try await Self.storeArtifacts(connection, executionID, outcome, logger)
            }
            if let retry = outcome.retry {
                _ = try await Self.insertRetry(connection, of: executionID, retry, logger)
                try await Self.notify(connection, PostgresChannel.queued, logger)
            }
            try await Self.queueDeliveries(connection, executionID: executionID, now: Millis.of(outcome.finishedAt), logger)
            return try await Self.fetchExecution(connection, id: executionID, withOutput: false, logger)!
        }
    }

    /// What every finish sets from its outcome: the `SET` list, its values bound in `q`.
    static func endAssignments(_ q: inout SQL, _ outcome: ExecutionOutcome) -> String {
        """
        status = \(q.bind(outcome.status.rawValue)), verdict = \(q.bind(outcome.verdict.rawValue)),
          exit_code = \(q.bind(outcome.exitCode.map(Int64.init))), signal = \(q.bind(outcome.signal.map(Int64.init))),
          reason = \(q.bind(outcome.reason)), stdout_bytes = \(q.bind(outcome.stdoutBytes)),
          stderr_bytes = \(q.bind(outcome.stderrBytes)), stdout_truncated = \(q.bind(outcome.stdoutTruncated)),
          stderr_truncated = \(q.bind(outcome.stderrTruncated)), wall_ms = \(q.bind(outcome.usage.wallMs)),
          cpu_ms = \(q.bind(outcome.usage.cpuMs)), memory_peak_bytes = \(q.bind(outcome.usage.memoryPeakBytes)),
          finished_at = \(q.bind(Millis.of(outcome.finishedAt))), lease_deadline = NULL,
          weaker_isolation = \(q.bind(JSONText.encode(outcome.weakerIsolation))),
          denied = \(q.bind(outcome.denied.map { JSONText.encode($0) }))
        """
    }

    /// The common end in one statement (one round trip, atomic by itself): an execution
    /// without a callback, retry or collected file, whose streams' rest is empty or, with
    /// nothing stored of that stream yet, one piece at most. Its row is updated (guarded on
    /// RUNNING and on the stored ends being where the outcome's rest starts) and its rest
    /// inserted in the same statement. nil when the end is not of that kind or the guard did
    /// not hold: `finish` then stores it in a transaction, which also says precisely why a
    /// guard failed.
    func finishAtOnce(executionID: Int64, _ outcome: ExecutionOutcome) async throws -> Execution? {
        func fits(_ bytes: Data, at offset: Int64) -> Bool { bytes.isEmpty || (offset == 0 && bytes.count <= OutputPieces.pieceBytes) }
        guard !outcome.keepsStoredOutput, outcome.retry == nil, outcome.artifacts.isEmpty,
              fits(outcome.stdout, at: outcome.stdoutOffset), fits(outcome.stderr, at: outcome.stderrOffset) else { return nil }
        var q = SQL()
        let id = q.bind(executionID)
        q.append("""
            WITH done AS (
              UPDATE execution x SET \(Self.endAssignments(&q, outcome)),
                artifacts_skipped = \(q.bind(JSONText.encode(outcome.skippedArtifacts)))
              WHERE x.id = \(id) AND x.status = 'RUNNING' AND x.callback IS NULL
                AND \(PostgresOutputPieces.endColumn(.stdout, of: "x")) = \(q.bind(outcome.stdoutOffset))
                AND \(PostgresOutputPieces.endColumn(.stderr, of: "x")) = \(q.bind(outcome.stderrOffset))
              RETURNING \(Self.executionColumns(of: "x")))
            """)
        for (stream, bytes) in [(OutputPieces.Stream.stdout, outcome.stdout), (.stderr, outcome.stderr)] where !bytes.isEmpty {
            q.append("""
                , \(stream)_rest AS (INSERT INTO execution_output (execution_id, stream, start, data)
                  SELECT id, \(stream.rawValue), 0, \(q.bind(bytes)) FROM done)
                """)
        }
        q.append(" SELECT * FROM done")
        guard let row = try await rows(q.query).first else { return nil }
        return try PostgresRecords.execution(row)
    }

    public func cancel(executionID: Int64, now: Date) async throws -> Execution {
        let logger = self.logger
        return try await transaction { connection in
            var lock = SQL("SELECT status FROM execution WHERE id = ")
            lock.append("\(lock.bind(executionID)) FOR UPDATE")
            guard let status = try await connection.first(lock.query, logger)?.decode(String.self) else {
                throw StoreError.notFound("execution \(executionID)")
            }
            switch ExecutionStatus(rawValue: status) ?? .failed {
            case .pending:
                var q = SQL()
                q.append("""
                    UPDATE execution SET status = 'CANCELLED', verdict = 'cancelled', reason = 'cancelled before it started',
                      finished_at = \(q.bind(Millis.of(now)))
                    WHERE id = \(q.bind(executionID)) AND status = 'PENDING'
                    """)
                try await connection.query(q.query, logger: logger)
                try await Self.queueDeliveries(connection, executionID: executionID, now: Millis.of(now), logger)
            case .running:
                var q = SQL("UPDATE execution SET cancel_requested = true WHERE status = 'RUNNING' AND id = ")
                q.append(q.bind(executionID))
                try await connection.query(q.query, logger: logger)
                // The node running it kills its sandbox as soon as this commits.
                try await Self.notify(connection, PostgresChannel.cancelPrefix + String(executionID), logger)
            case let final:
                // Cancelling an attempt that ended stops its chain: its queued retry is cancelled.
                var find = SQL("SELECT id FROM execution WHERE status = 'PENDING' AND retry_of = ")
                find.append("\(find.bind(executionID)) LIMIT 1 FOR UPDATE")
                if let retry = try await connection.first(find.query, logger)?.decode(Int64.self) {
                    var q = SQL()
                    q.append("""
                        UPDATE execution SET status = 'CANCELLED', verdict = 'cancelled',
                          reason = 'cancelled before it started (its chain was cancelled)', finished_at = \(q.bind(Millis.of(now)))
                        WHERE id = \(q.bind(retry)) AND status = 'PENDING'
                        """)
                    try await connection.query(q.query, logger: logger)
                    try await Self.queueDeliveries(connection, executionID: retry, now: Millis.of(now), logger)
                    return try await Self.fetchExecution(connection, id: retry, logger)!
                }
                throw StoreError.invalidTransition(executionID: executionID, from: final, to: ExecutionStatus.cancelled.rawValue)
            }
            return try await Self.fetchExecution(connection, id: executionID, logger)!
        }
    }

    public func isCancelRequested(executionID: Int64) async throws -> Bool {
        var q = SQL("SELECT cancel_requested FROM execution WHERE id = ")
        q.append(q.bind(executionID))
        return try await rows(q.query).first?.decode(Bool.self) ?? false
    }

    public func interruptRunning(worker: String?, reason: String, now: Date) async throws -> [Execution] {
        let logger = self.logger
        return try await transaction { connection in
            var q = SQL()
            q.append("""
                UPDATE execution SET status = 'FAILED', verdict = 'interrupted', reason = \(q.bind(reason)),
                  finished_at = \(q.bind(Millis.of(now))), lease_deadline = NULL
                WHERE status = 'RUNNING'
                """)
            if let worker { q.append(" AND worker = \(q.bind(worker))") }
            q.append(" RETURNING id")
            let ids = try await connection.all(q.query, logger).map { try $0.decode(Int64.self) }.sorted()
            var executions: [Execution] = []
            for id in ids {
                try await Self.queueDeliveries(connection, executionID: id, now: Millis.of(now), logger)
                if let execution = try await Self.fetchExecution(connection, id: id, logger) { executions.append(execution) }
            }
            return executions
        }
    }

    /// Queues a retry of an execution inside the caller's transaction, as SQLite's
    /// `insertRetry`: a copy of it, PENDING, trigger `retry`, `retry_of` it, with the attempt and
    /// not-before given; a job that runs one at a time (`forbid`, `queue`) has its retry wait
    /// while another of its runs runs.
    static func insertRetry(_ connection: PostgresConnection, of executionID: Int64, _ retry: RetryRequest,
                            _ logger: Logger) async throws -> Execution {
        var q = SQL()
        q.append("""
            INSERT INTO execution (job_id, status, script_type, script_snapshot, policy_name, policy_snapshot, concurrency,
                                   arguments, environment, stdin, priority, created_at, secret_environment, tenant,
                                   submitted_by, weaker_isolation, files, outputs, run_trigger, scheduled_for, attempt,
                                   retry_of, not_before, callback)
            SELECT job_id, 'PENDING', script_type, script_snapshot, policy_name, policy_snapshot,
                   CASE concurrency WHEN 'allow' THEN 'allow' ELSE 'queue' END, arguments, environment, stdin, priority,
                   \(q.bind(Millis.now)), secret_environment, tenant, submitted_by, weaker_isolation, files, outputs, 'retry',
                   scheduled_for, \(q.bind(Int64(retry.attempt))), id, \(q.bind(Millis.of(retry.notBefore))), callback
            FROM execution WHERE id = \(q.bind(executionID))
            RETURNING id
            """)
        guard let id = try await connection.first(q.query, logger)?.decode(Int64.self) else {
            throw StoreError.notFound("execution \(executionID)")
        }
        return try await Self.fetchExecution(connection, id: id, withOutput: false, logger)!
    }

    public func enqueueRetry(of executionID: Int64, _ retry: RetryRequest) async throws -> Execution {
        let logger = self.logger
        return try await transaction { connection in
            let execution = try await Self.insertRetry(connection, of: executionID, retry, logger)
            try await Self.notify(connection, PostgresChannel.queued, logger)
            return execution
        }
    }

    public func nextNotBefore(after now: Date) async throws -> Date? {
        var q = SQL("SELECT MIN(not_before) FROM execution WHERE status = 'PENDING' AND not_before IS NOT NULL AND not_before > ")
        q.append(q.bind(Millis.of(now)))
        return try await rows(q.query).first?.decode(Int64?.self).map(Millis.date)
    }

    public func pendingCount() async throws -> Int {
        Int(try await rows("SELECT COUNT(*) FROM execution WHERE status = 'PENDING'").first?.decode(Int64.self) ?? 0)
    }

    // MARK: Rows

    /// An execution, with its output unless `withOutput` is false.
    static func fetchExecution(_ connection: PostgresConnection, id: Int64, withOutput: Bool = true,
                               _ logger: Logger) async throws -> Execution? {
        var q = SQL(Records.executionSelect)
        q.append(" WHERE id = \(q.bind(id))")
        guard let row = try await connection.first(q.query, logger) else { return nil }
        var execution = try PostgresRecords.execution(row)
        if withOutput, let both = try await PostgresOutputPieces.all(connection, [id], logger)[id] {
            (execution.stdout, execution.stderr) = both
        }
        return execution
    }

    /// Throws the precise reason an update guarded on `status` changed nothing.
    static func requireStatus(_ connection: PostgresConnection, _ id: Int64, _ status: ExecutionStatus, to target: String,
                              _ logger: Logger) async throws {
        var q = SQL("SELECT status FROM execution WHERE id = ")
        q.append(q.bind(id))
        guard let current = try await connection.first(q.query, logger)?.decode(String.self) else {
            throw StoreError.notFound("execution \(id)")
        }
        guard let from = ExecutionStatus(rawValue: current) else {
            throw StoreError.invalid("execution \(id) has an unknown status \"\(current)\"")
        }
        if from != status { throw StoreError.invalidTransition(executionID: id, from: from, to: target) }
    }
}
