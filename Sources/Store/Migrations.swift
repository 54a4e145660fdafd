import Foundation
import GRDB

/// The schema's history: an explicit, ordered list of versions, each with the migration that
/// brings the previous version to it. They are applied in order when a store opens.
///
/// To change the schema, append the next version ("v2", …) to `all`; never edit a version
/// that has shipped (a database that already has it would never see the change). The tests
/// build a file at every earlier version (`SQLiteStore(path:migrateUpTo:)`), fill it through
/// that version's own SQL, and check that opening it migrates it to the latest with its data.
///
/// Dates are INTEGER milliseconds since 1970; output (in pieces, since v3) and stdin are BLOBs;
/// lists and maps are JSON text.
enum Migrations {
    /// One version of the schema.
    struct Version: Sendable {
        let name: String
        let migrate: @Sendable (Database) throws -> Void
    }

    /// Every version, oldest first.
    static let all: [Version] = [
        Version(name: "v1", migrate: v1),
        Version(name: "v2", migrate: v2),
        Version(name: "v3", migrate: v3),
        Version(name: "v4", migrate: v4),
        Version(name: "v5", migrate: v5),
        Version(name: "v6", migrate: v6),
        Version(name: "v7", migrate: v7),
        Version(name: "v8", migrate: v8),
        Version(name: "v9", migrate: v9),
        Version(name: "v10", migrate: v10),
        Version(name: "v11", migrate: v11),
        Version(name: "v12", migrate: v12),
        Version(name: "v13", migrate: v13),
        Version(name: "v14", migrate: v14),
        Version(name: "v15", migrate: v15),
        Version(name: "v16", migrate: v16),
    ]

    /// The versions' names, oldest first.
    static var versions: [String] { all.map(\.name) }

    /// The version a store opened by this build ends at.
    static var latest: String { all.last!.name }

    /// A migrator that knows every version.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for version in all { migrator.registerMigration(version.name, migrate: version.migrate) }
        return migrator
    }

    // MARK: Versions

    /// Jobs and executions.
    @Sendable
    static func v1(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE job (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              name TEXT NOT NULL UNIQUE,
              script_type TEXT NOT NULL,
              script_content TEXT NOT NULL,
              policy TEXT NOT NULL,
              limits TEXT NOT NULL DEFAULT '[]',
              concurrency TEXT NOT NULL DEFAULT 'forbid',
              arguments TEXT NOT NULL DEFAULT '[]',
              environment TEXT NOT NULL DEFAULT '{}',
              created_at INTEGER NOT NULL,
              updated_at INTEGER NOT NULL
            );
            -- jobs(scriptType:)
            CREATE INDEX job_script_type ON job(script_type, id);

            CREATE TABLE execution (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              job_id INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
              status TEXT NOT NULL,
              verdict TEXT,
              exit_code INTEGER,
              signal INTEGER,
              reason TEXT,
              script_type TEXT NOT NULL,
              script_snapshot TEXT NOT NULL,
              policy_name TEXT NOT NULL,
              policy_snapshot TEXT NOT NULL,
              concurrency TEXT NOT NULL,
              arguments TEXT NOT NULL DEFAULT '[]',
              environment TEXT NOT NULL DEFAULT '{}',
              stdin BLOB,
              priority INTEGER NOT NULL DEFAULT 0,
              stdout BLOB NOT NULL DEFAULT x'',
              stderr BLOB NOT NULL DEFAULT x'',
              stdout_bytes INTEGER NOT NULL DEFAULT 0,
              stderr_bytes INTEGER NOT NULL DEFAULT 0,
              stdout_truncated INTEGER NOT NULL DEFAULT 0,
              stderr_truncated INTEGER NOT NULL DEFAULT 0,
              wall_ms INTEGER NOT NULL DEFAULT 0,
              cpu_ms INTEGER NOT NULL DEFAULT 0,
              memory_peak_bytes INTEGER,
              created_at INTEGER NOT NULL,
              started_at INTEGER,
              finished_at INTEGER,
              worker TEXT,
              lease_deadline INTEGER,
              cancel_requested INTEGER NOT NULL DEFAULT 0,
              takeovers INTEGER NOT NULL DEFAULT 0
            );
            -- claimNext: the pending queue, highest priority then oldest.
            CREATE INDEX execution_queue ON execution(status, priority DESC, id);
            -- executions(jobID:), newest first; prune per job.
            CREATE INDEX execution_job ON execution(job_id, id DESC);
            -- the concurrency rules and deleteJob: a job's pending or running executions.
            CREATE INDEX execution_job_status ON execution(job_id, status);
            -- executions(statuses: [one]), newest first; pendingCount.
            CREATE INDEX execution_status ON execution(status, id);
            -- claimNext: expired leases.
            CREATE INDEX execution_lease ON execution(status, lease_deadline);
            -- executions(createdAfter:createdBefore:).
            CREATE INDEX execution_created ON execution(created_at);
            -- prune(olderThan:).
            CREATE INDEX execution_finished ON execution(finished_at);
            """)
    }

    /// Listing by verdict without a status (`GET /executions?verdict=memory_limit`): without
    /// this index a verdict that matches nothing walked every row (133 ms with a million).
    @Sendable
    static func v2(_ db: Database) throws {
        try db.execute(sql: "CREATE INDEX execution_verdict ON execution(verdict, id)")
    }

    /// Tokens, tenants, secrets and the audit trail. Job names become unique per tenant (not
    /// across tenants, whose names must not leak through a conflict): the job table is rebuilt,
    /// with foreign-key checks deferred by the migrator so executions keep their jobs.
    @Sendable
    static func v3(_ db: Database) throws {
        let sequence = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'job'")
        try db.execute(sql: """
            CREATE TABLE job_v3 (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              name TEXT NOT NULL,
              script_type TEXT NOT NULL,
              script_content TEXT NOT NULL,
              policy TEXT NOT NULL,
              limits TEXT NOT NULL DEFAULT '[]',
              concurrency TEXT NOT NULL DEFAULT 'forbid',
              arguments TEXT NOT NULL DEFAULT '[]',
              environment TEXT NOT NULL DEFAULT '{}',
              created_at INTEGER NOT NULL,
              updated_at INTEGER NOT NULL,
              -- name -> value sealed with the server's key
              secret_environment TEXT NOT NULL DEFAULT '{}',
              -- '' for jobs made before tokens (seen by operators and admins only)
              tenant TEXT NOT NULL DEFAULT '',
              created_by INTEGER,
              UNIQUE (tenant, name)
            );
            INSERT INTO job_v3 (id, name, script_type, script_content, policy, limits, concurrency, arguments, environment,
                                created_at, updated_at)
              SELECT id, name, script_type, script_content, policy, limits, concurrency, arguments, environment,
                     created_at, updated_at FROM job;
            DROP TABLE job;
            ALTER TABLE job_v3 RENAME TO job;
            CREATE INDEX job_script_type ON job(script_type, id);
            -- jobs(named:), in any tenant.
            CREATE INDEX job_name ON job(name);

            ALTER TABLE execution ADD COLUMN secret_environment TEXT NOT NULL DEFAULT '{}';
            ALTER TABLE execution ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
            ALTER TABLE execution ADD COLUMN submitted_by INTEGER;
            -- a tenant's executions, newest first.
            CREATE INDEX execution_tenant ON execution(tenant, id);
            -- quotas: a token's pending and running executions.
            CREATE INDEX execution_submitter ON execution(submitted_by, status);

            CREATE TABLE access_token (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              name TEXT NOT NULL,
              role TEXT NOT NULL,
              tenant TEXT NOT NULL,
              digest BLOB NOT NULL UNIQUE,
              policies TEXT,
              max_policy TEXT,
              max_active INTEGER,
              created_at INTEGER NOT NULL,
              expires_at INTEGER,
              last_used_at INTEGER,
              revoked_at INTEGER,
              created_by INTEGER
            );

            CREATE TABLE audit (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              at INTEGER NOT NULL,
              token_id INTEGER,
              token_name TEXT,
              role TEXT,
              action TEXT NOT NULL,
              target_type TEXT NOT NULL,
              target_id TEXT,
              address TEXT,
              detail TEXT
            );
            CREATE INDEX audit_action ON audit(action, id);
            CREATE INDEX audit_token ON audit(token_id, id);
            CREATE INDEX audit_target ON audit(target_type, target_id, id);
            """)
        // Ids of deleted jobs are never given again (AUTOINCREMENT's promise survives the rebuild).
        if let sequence {
            let current = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'job'") ?? 0
            try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = 'job'")
            try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('job', ?)", arguments: [max(sequence, current)])
        }
    }

    /// The isolation an execution ran without, where the operator allowed a weaker mode
    /// (`allow_weaker`): a JSON list such as `["cgroups"]`; `[]` for full isolation.
    @Sendable
    static func v4(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE execution ADD COLUMN weaker_isolation TEXT NOT NULL DEFAULT '[]'")
    }

    /// Output in pieces (`OutputPieces`): the `execution_output` table, filled from the
    /// `stdout` and `stderr` BLOBs of `execution`, which are emptied and no longer used (kept,
    /// empty, because SQLite before 3.35 cannot drop a column). A stream kept as one BLOB was
    /// rewritten whole on every append and read whole for any part of it.
    @Sendable
    static func v5(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE execution_output (
              execution_id INTEGER NOT NULL REFERENCES execution(id) ON DELETE CASCADE,
              stream INTEGER NOT NULL,  -- 1: stdout, 2: stderr
              start INTEGER NOT NULL,   -- the offset of the piece's first byte in its stream
              data BLOB NOT NULL,
              PRIMARY KEY (execution_id, stream, start)
            )
            """)
        let ids = try Int64.fetchAll(db, sql: "SELECT id FROM execution WHERE length(stdout) > 0 OR length(stderr) > 0")
        for id in ids {
            // One execution at a time: a stream may be up to a cap (1 GiB) long.
            guard let row = try Row.fetchOne(db, sql: "SELECT stdout, stderr FROM execution WHERE id = ?", arguments: [id]) else {
                continue
            }
            let stdout: Data? = row[0], stderr: Data? = row[1]
            try OutputPieces.append(db, id, .stdout, stdout ?? Data(), at: 0)
            try OutputPieces.append(db, id, .stderr, stderr ?? Data(), at: 0)
            try db.execute(sql: "UPDATE execution SET stdout = x'', stderr = x'' WHERE id = ?", arguments: [id])
        }
    }

    /// A token's priority ceiling (`max_priority`): the highest priority its runs may ask; NULL
    /// for the role's default (0 for submitters, 100 for operators and admins).
    @Sendable
    static func v6(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE access_token ADD COLUMN max_priority INTEGER")
    }

    /// Ad-hoc runs (`POST /executions`): an execution's `job_id` may be NULL (the script came
    /// with the request). SQLite cannot drop a NOT NULL constraint, so the table is rebuilt with
    /// every row, index and its id sequence (foreign-key checks are deferred by the migrator, so
    /// the output pieces keep their execution).
    @Sendable
    static func v7(_ db: Database) throws {
        let sequence = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'execution'")
        let columns = """
            id, job_id, status, verdict, exit_code, signal, reason, script_type, script_snapshot, policy_name, policy_snapshot,
            concurrency, arguments, environment, stdin, priority, stdout, stderr, stdout_bytes, stderr_bytes, stdout_truncated,
            stderr_truncated, wall_ms, cpu_ms, memory_peak_bytes, created_at, started_at, finished_at, worker, lease_deadline,
            cancel_requested, takeovers, secret_environment, tenant, submitted_by, weaker_isolation
            """
        try db.execute(sql: """
            CREATE TABLE execution_v7 (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              -- NULL: an ad-hoc run
              job_id INTEGER REFERENCES job(id) ON DELETE CASCADE,
              status TEXT NOT NULL,
              verdict TEXT,
              exit_code INTEGER,
              signal INTEGER,
              reason TEXT,
              script_type TEXT NOT NULL,
              script_snapshot TEXT NOT NULL,
              policy_name TEXT NOT NULL,
              policy_snapshot TEXT NOT NULL,
              concurrency TEXT NOT NULL,
              arguments TEXT NOT NULL DEFAULT '[]',
              environment TEXT NOT NULL DEFAULT '{}',
              stdin BLOB,
              priority INTEGER NOT NULL DEFAULT 0,
              stdout BLOB NOT NULL DEFAULT x'',
              stderr BLOB NOT NULL DEFAULT x'',
              stdout_bytes INTEGER NOT NULL DEFAULT 0,
              stderr_bytes INTEGER NOT NULL DEFAULT 0,
              stdout_truncated INTEGER NOT NULL DEFAULT 0,
              stderr_truncated INTEGER NOT NULL DEFAULT 0,
              wall_ms INTEGER NOT NULL DEFAULT 0,
              cpu_ms INTEGER NOT NULL DEFAULT 0,
              memory_peak_bytes INTEGER,
              created_at INTEGER NOT NULL,
              started_at INTEGER,
              finished_at INTEGER,
              worker TEXT,
              lease_deadline INTEGER,
              cancel_requested INTEGER NOT NULL DEFAULT 0,
              takeovers INTEGER NOT NULL DEFAULT 0,
              secret_environment TEXT NOT NULL DEFAULT '{}',
              tenant TEXT NOT NULL DEFAULT '',
              submitted_by INTEGER,
              weaker_isolation TEXT NOT NULL DEFAULT '[]'
            );
            INSERT INTO execution_v7 (\(columns)) SELECT \(columns) FROM execution;
            DROP TABLE execution;
            ALTER TABLE execution_v7 RENAME TO execution;
            CREATE INDEX execution_queue ON execution(status, priority DESC, id);
            CREATE INDEX execution_job ON execution(job_id, id DESC);
            CREATE INDEX execution_job_status ON execution(job_id, status);
            CREATE INDEX execution_status ON execution(status, id);
            CREATE INDEX execution_lease ON execution(status, lease_deadline);
            CREATE INDEX execution_created ON execution(created_at);
            CREATE INDEX execution_finished ON execution(finished_at);
            CREATE INDEX execution_verdict ON execution(verdict, id);
            CREATE INDEX execution_tenant ON execution(tenant, id);
            CREATE INDEX execution_submitter ON execution(submitted_by, status);
            """)
        // Ids of deleted executions are never given again (AUTOINCREMENT's promise survives the rebuild).
        if let sequence {
            let current = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'execution'") ?? 0
            try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = 'execution'")
            try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('execution', ?)", arguments: [max(sequence, current)])
        }
    }

    /// Idempotency keys (`Idempotency-Key` on the POSTs that create): per tenant, the digest of
    /// the first request, and once it is answered, the status and what it created, so that a
    /// repeat is answered the same without doing anything again. `status` NULL: the first
    /// request is still being answered.
    @Sendable
    static func v8(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE idempotency_key (
              tenant TEXT NOT NULL,
              key TEXT NOT NULL,
              request_digest BLOB NOT NULL,
              created_at INTEGER NOT NULL,
              status INTEGER,
              kind TEXT,
              resource_id INTEGER,
              location TEXT,
              PRIMARY KEY (tenant, key)
            );
            -- expiry (idempotency_ttl)
            CREATE INDEX idempotency_created ON idempotency_key(created_at);
            """)
    }

    /// Input files: a job's (its index — paths, sizes, executable — read with the job; the
    /// bytes, JSON of path, base64 content and executable, read only to run it) and an
    /// execution's (the job's and the run's merged when it was submitted).
    @Sendable
    static func v9(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE job ADD COLUMN files_index TEXT NOT NULL DEFAULT '[]';
            ALTER TABLE job ADD COLUMN files BLOB;
            ALTER TABLE execution ADD COLUMN files BLOB;
            """)
    }

    /// Output files: the patterns of a job and of an execution (JSON lists), the files
    /// collected from an execution's working directory after it ended (deleted with it), and
    /// those that matched but were skipped, with why.
    @Sendable
    static func v10(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE job ADD COLUMN outputs TEXT NOT NULL DEFAULT '[]';
            ALTER TABLE execution ADD COLUMN outputs TEXT NOT NULL DEFAULT '[]';
            ALTER TABLE execution ADD COLUMN artifacts_skipped TEXT NOT NULL DEFAULT '[]';
            CREATE TABLE execution_artifact (
              execution_id INTEGER NOT NULL REFERENCES execution(id) ON DELETE CASCADE,
              path TEXT NOT NULL,
              size INTEGER NOT NULL,
              sha256 TEXT NOT NULL,
              data BLOB NOT NULL,
              PRIMARY KEY (execution_id, path)
            );
            """)
    }

    /// The calls an execution's policy refused (JSON list of syscall, count, action,
    /// first_at_ms); NULL when not reported.
    @Sendable
    static func v11(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE execution ADD COLUMN denied TEXT")
    }

    /// Nodes (issue 13): a heartbeat row per `confine serve` process sharing the database —
    /// on SQLite the one server; on PostgreSQL every node (`GET /nodes`).
    @Sendable
    static func v12(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE node (
              name TEXT PRIMARY KEY,
              version TEXT NOT NULL,
              started_at INTEGER NOT NULL,
              last_heartbeat_at INTEGER NOT NULL,
              stopped_at INTEGER,
              workers INTEGER NOT NULL DEFAULT 0
            );
            """)
    }

    /// Schedules: a job's schedule in its row (NULL cron: none), its next slot indexed for the
    /// scheduler; the slots claimed, one row per (job, slot time) — the unique key that makes a
    /// slot fire once whatever restarts or nodes — with the execution queued or why it was
    /// skipped; and what started each execution (`run_trigger`) with the slot it was for.
    @Sendable
    static func v13(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE job ADD COLUMN schedule_cron TEXT;
            ALTER TABLE job ADD COLUMN schedule_timezone TEXT;
            ALTER TABLE job ADD COLUMN schedule_overlap TEXT;
            ALTER TABLE job ADD COLUMN schedule_catch_up TEXT;
            ALTER TABLE job ADD COLUMN schedule_enabled INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE job ADD COLUMN next_run_at INTEGER;
            ALTER TABLE job ADD COLUMN last_slot_at INTEGER;
            ALTER TABLE job ADD COLUMN last_skipped_at INTEGER;
            ALTER TABLE job ADD COLUMN last_skip_reason TEXT;
            -- the scheduler: enabled schedules by next slot.
            CREATE INDEX job_next_run ON job(next_run_at) WHERE next_run_at IS NOT NULL;
            CREATE TABLE schedule_slot (
              job_id INTEGER NOT NULL REFERENCES job(id) ON DELETE CASCADE,
              slot_at INTEGER NOT NULL,
              claimed_at INTEGER NOT NULL,
              -- 'queued' (execution_id set) or 'skipped' (reason set)
              outcome TEXT NOT NULL,
              execution_id INTEGER,
              reason TEXT,
              PRIMARY KEY (job_id, slot_at)
            );
            ALTER TABLE execution ADD COLUMN run_trigger TEXT NOT NULL DEFAULT 'api';
            ALTER TABLE execution ADD COLUMN scheduled_for INTEGER;
            """)
    }

    /// Retries: a job's retry policy (JSON), and an execution's attempt, the execution it
    /// retries and the earliest it may start — the durable not-before the queue's claim skips
    /// until it is due.
    @Sendable
    static func v14(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE job ADD COLUMN retry TEXT;
            ALTER TABLE execution ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
            ALTER TABLE execution ADD COLUMN retry_of INTEGER;
            ALTER TABLE execution ADD COLUMN not_before INTEGER;
            -- the workers' next wake-up: queued retries not due yet.
            CREATE INDEX execution_not_before ON execution(not_before) WHERE status = 'PENDING' AND not_before IS NOT NULL;
            """)
    }

    /// Webhooks: a job's and an execution's callback (JSON), the tenants' secrets (sealed), the
    /// durable delivery queue (one row per delivery, its id sent on every attempt) and every
    /// attempt (time, status code or error, duration).
    @Sendable
    static func v15(_ db: Database) throws {
        try db.execute(sql: """
            ALTER TABLE job ADD COLUMN callback TEXT;
            ALTER TABLE execution ADD COLUMN callback TEXT;
            CREATE TABLE webhook_secret (
              tenant TEXT PRIMARY KEY,
              sealed TEXT NOT NULL,
              created_at INTEGER NOT NULL
            );
            CREATE TABLE webhook_delivery (
              id TEXT PRIMARY KEY,
              execution_id INTEGER NOT NULL REFERENCES execution(id) ON DELETE CASCADE,
              tenant TEXT NOT NULL DEFAULT '',
              url TEXT NOT NULL,
              event TEXT NOT NULL,
              -- pending, delivered, failed, refused
              status TEXT NOT NULL,
              created_at INTEGER NOT NULL,
              next_attempt_at INTEGER
            );
            CREATE INDEX webhook_delivery_due ON webhook_delivery(next_attempt_at) WHERE status = 'pending';
            CREATE INDEX webhook_delivery_execution ON webhook_delivery(execution_id);
            CREATE TABLE webhook_attempt (
              delivery_id TEXT NOT NULL REFERENCES webhook_delivery(id) ON DELETE CASCADE,
              number INTEGER NOT NULL,
              at INTEGER NOT NULL,
              status_code INTEGER,
              error TEXT,
              duration_ms INTEGER NOT NULL,
              PRIMARY KEY (delivery_id, number)
            );
            """)
    }

    /// The queue's fairness between tenants by index: the PENDING executions by priority and
    /// tenant, so that a claim finds the other tenants' oldest runnable executions with one
    /// seek each (`SQLiteStore.nextFairPending`) instead of scanning every queued one.
    @Sendable
    static func v16(_ db: Database) throws {
        try db.execute(sql: """
            CREATE INDEX execution_pending_tenant ON execution(priority, tenant, id) WHERE status = 'PENDING';
            """)
    }
}

