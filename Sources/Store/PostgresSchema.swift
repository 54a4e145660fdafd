import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL schema's history, under the version names of SQLite's (`Migrations`): a
/// database at "v10" has the tables and values of a SQLite file at "v10". A fresh database
/// gets the baseline (every version SQLite reached in steps, at once); each later version is
/// one step, appended here when it is appended to `Migrations` (a test holds the two lists
/// equal).
///
/// Hot queries use partial indexes on live states (`status = 'PENDING'`, `'RUNNING'`), which
/// stay small however many finished executions the table holds.
enum PostgresSchema {
    /// One step: the versions it brings the database to, and its statements (one each).
    struct Step: Sendable {
        let versions: [String]
        let statements: [String]
    }

    /// The advisory lock key a migrating node holds (other nodes wait for it).
    static let migrationLock: Int64 = 0x636f_6e66_0001

    /// Every step, oldest first.
    static let steps: [Step] = [
        Step(versions: ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10"], statements: baseline),
        // The calls an execution's policy refused (JSON text), NULL when not reported.
        Step(versions: ["v11"], statements: ["ALTER TABLE execution ADD COLUMN denied TEXT"]),
        // Nodes: a heartbeat row per node (times in the database's clock).
        Step(versions: ["v12"], statements: ["""
            CREATE TABLE node (
              name TEXT PRIMARY KEY,
              version TEXT NOT NULL,
              started_at BIGINT NOT NULL,
              last_heartbeat_at BIGINT NOT NULL,
              stopped_at BIGINT,
              workers BIGINT NOT NULL DEFAULT 0
            )
            """]),
        // Issue 16's tables, as SQLite's v13–v15 (the store's methods for them: PostgresStore+Schedules.swift,
        // PostgresStore+Webhooks.swift, the retry columns in PostgresStore+Queue.swift).
        Step(versions: ["v13"], statements: [
            "ALTER TABLE job ADD COLUMN schedule_cron TEXT",
            "ALTER TABLE job ADD COLUMN schedule_timezone TEXT",
            "ALTER TABLE job ADD COLUMN schedule_overlap TEXT",
            "ALTER TABLE job ADD COLUMN schedule_catch_up TEXT",
            "ALTER TABLE job ADD COLUMN schedule_enabled BOOLEAN NOT NULL DEFAULT FALSE",
            "ALTER TABLE job ADD COLUMN next_run_at BIGINT",
            "ALTER TABLE job ADD COLUMN last_slot_at BIGINT",
            "ALTER TABLE job ADD COLUMN last_skipped_at BIGINT",
            "ALTER TABLE job ADD COLUMN last_skip_reason TEXT",
            "CREATE INDEX job_next_run ON job(next_run_at) WHERE next_run_at IS NOT NULL",
            """
            CREATE TABLE schedule_slot (
              job_id BIGINT NOT NULL REFERENCES job(id) ON DELETE CASCADE,
              slot_at BIGINT NOT NULL,
              claimed_at BIGINT NOT NULL,
              outcome TEXT NOT NULL,
              execution_id BIGINT,
              reason TEXT,
              PRIMARY KEY (job_id, slot_at)
            )
            """,
            "ALTER TABLE execution ADD COLUMN run_trigger TEXT NOT NULL DEFAULT 'api'",
            "ALTER TABLE execution ADD COLUMN scheduled_for BIGINT",
        ]),
        Step(versions: ["v14"], statements: [
            "ALTER TABLE job ADD COLUMN retry TEXT",
            "ALTER TABLE execution ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1",
            "ALTER TABLE execution ADD COLUMN retry_of BIGINT",
            "ALTER TABLE execution ADD COLUMN not_before BIGINT",
            "CREATE INDEX execution_not_before ON execution(not_before) WHERE status = 'PENDING' AND not_before IS NOT NULL",
        ]),
        Step(versions: ["v15"], statements: [
            "ALTER TABLE job ADD COLUMN callback TEXT",
            "ALTER TABLE execution ADD COLUMN callback TEXT",
            "CREATE TABLE webhook_secret (tenant TEXT PRIMARY KEY, sealed TEXT NOT NULL, created_at BIGINT NOT NULL)",
            """
            CREATE TABLE webhook_delivery (
              id TEXT PRIMARY KEY,
              execution_id BIGINT NOT NULL REFERENCES execution(id) ON DELETE CASCADE,
              tenant TEXT NOT NULL DEFAULT '',
              url TEXT NOT NULL,
              event TEXT NOT NULL,
              status TEXT NOT NULL,
              created_at BIGINT NOT NULL,
              next_attempt_at BIGINT
            )
            """,
            "CREATE INDEX webhook_delivery_due ON webhook_delivery(next_attempt_at) WHERE status = 'pending'",
            "CREATE INDEX webhook_delivery_execution ON webhook_delivery(execution_id)",
            """
            CREATE TABLE webhook_attempt (
              delivery_id TEXT NOT NULL REFERENCES webhook_delivery(id) ON DELETE CASCADE,
              number BIGINT NOT NULL,
              at BIGINT NOT NULL,
              status_code BIGINT,
              error TEXT,
              duration_ms BIGINT NOT NULL,
              PRIMARY KEY (delivery_id, number)
            )
            """,
        ]),
        Step(versions: ["v16"], statements: [
            "CREATE INDEX execution_pending_tenant ON execution(priority, tenant, id) WHERE status = 'PENDING'",
        ]),
    ]

    /// The version names, oldest first (equal to `Migrations.versions`).
    static var versions: [String] { steps.flatMap(\.versions) }

    /// The schema as of v10.
    static let baseline: [String] = [
        """
        CREATE TABLE job (
          id BIGSERIAL PRIMARY KEY,
          name TEXT NOT NULL,
          script_type TEXT NOT NULL,
          script_content TEXT NOT NULL,
          policy TEXT NOT NULL,
          limits TEXT NOT NULL DEFAULT '[]',
          concurrency TEXT NOT NULL DEFAULT 'forbid',
          arguments TEXT NOT NULL DEFAULT '[]',
          environment TEXT NOT NULL DEFAULT '{}',
          created_at BIGINT NOT NULL,
          updated_at BIGINT NOT NULL,
          secret_environment TEXT NOT NULL DEFAULT '{}',
          tenant TEXT NOT NULL DEFAULT '',
          created_by BIGINT,
          files_index TEXT NOT NULL DEFAULT '[]',
          files BYTEA,
          outputs TEXT NOT NULL DEFAULT '[]',
          UNIQUE (tenant, name)
        )
        """,
        "CREATE INDEX job_script_type ON job(script_type, id)",
        "CREATE INDEX job_name ON job(name)",
        """
        CREATE TABLE execution (
          id BIGSERIAL PRIMARY KEY,
          job_id BIGINT REFERENCES job(id) ON DELETE CASCADE,
          status TEXT NOT NULL,
          verdict TEXT,
          exit_code BIGINT,
          signal BIGINT,
          reason TEXT,
          script_type TEXT NOT NULL,
          script_snapshot TEXT NOT NULL,
          policy_name TEXT NOT NULL,
          policy_snapshot TEXT NOT NULL,
          concurrency TEXT NOT NULL,
          arguments TEXT NOT NULL DEFAULT '[]',
          environment TEXT NOT NULL DEFAULT '{}',
          stdin BYTEA,
          priority BIGINT NOT NULL DEFAULT 0,
          stdout_bytes BIGINT NOT NULL DEFAULT 0,
          stderr_bytes BIGINT NOT NULL DEFAULT 0,
          stdout_truncated BOOLEAN NOT NULL DEFAULT false,
          stderr_truncated BOOLEAN NOT NULL DEFAULT false,
          wall_ms BIGINT NOT NULL DEFAULT 0,
          cpu_ms BIGINT NOT NULL DEFAULT 0,
          memory_peak_bytes BIGINT,
          created_at BIGINT NOT NULL,
          started_at BIGINT,
          finished_at BIGINT,
          worker TEXT,
          lease_deadline BIGINT,
          cancel_requested BOOLEAN NOT NULL DEFAULT false,
          takeovers BIGINT NOT NULL DEFAULT 0,
          secret_environment TEXT NOT NULL DEFAULT '{}',
          tenant TEXT NOT NULL DEFAULT '',
          submitted_by BIGINT,
          weaker_isolation TEXT NOT NULL DEFAULT '[]',
          files BYTEA,
          outputs TEXT NOT NULL DEFAULT '[]',
          artifacts_skipped TEXT NOT NULL DEFAULT '[]'
        )
        """,
        // claimNext: the pending queue, highest priority then oldest (live rows only).
        "CREATE INDEX execution_pending ON execution(priority DESC, id) WHERE status = 'PENDING'",
        // claimNext: expired leases; interruptRunning; the queue rule's running check.
        "CREATE INDEX execution_running ON execution(lease_deadline, id) WHERE status = 'RUNNING'",
        "CREATE INDEX execution_running_job ON execution(job_id) WHERE status = 'RUNNING'",
        // forbid and deleteJob: a job's pending or running executions; quotas per submitter.
        "CREATE INDEX execution_active_job ON execution(job_id) WHERE status IN ('PENDING', 'RUNNING')",
        "CREATE INDEX execution_active_submitter ON execution(submitted_by) WHERE status IN ('PENDING', 'RUNNING')",
        // Listings, newest first.
        "CREATE INDEX execution_job ON execution(job_id, id DESC)",
        "CREATE INDEX execution_status ON execution(status, id)",
        "CREATE INDEX execution_verdict ON execution(verdict, id)",
        "CREATE INDEX execution_tenant ON execution(tenant, id)",
        "CREATE INDEX execution_created ON execution(created_at)",
        // Retention by age: finished rows only.
        "CREATE INDEX execution_finished ON execution(finished_at) WHERE status NOT IN ('PENDING', 'RUNNING')",
        """
        CREATE TABLE execution_output (
          execution_id BIGINT NOT NULL REFERENCES execution(id) ON DELETE CASCADE,
          stream BIGINT NOT NULL,
          start BIGINT NOT NULL,
          data BYTEA NOT NULL,
          PRIMARY KEY (execution_id, stream, start)
        )
        """,
        """
        CREATE TABLE execution_artifact (
          execution_id BIGINT NOT NULL REFERENCES execution(id) ON DELETE CASCADE,
          path TEXT NOT NULL,
          size BIGINT NOT NULL,
          sha256 TEXT NOT NULL,
          data BYTEA NOT NULL,
          PRIMARY KEY (execution_id, path)
        )
        """,
        """
        CREATE TABLE access_token (
          id BIGSERIAL PRIMARY KEY,
          name TEXT NOT NULL,
          role TEXT NOT NULL,
          tenant TEXT NOT NULL,
          digest BYTEA NOT NULL UNIQUE,
          policies TEXT,
          max_policy TEXT,
          max_active BIGINT,
          created_at BIGINT NOT NULL,
          expires_at BIGINT,
          last_used_at BIGINT,
          revoked_at BIGINT,
          created_by BIGINT,
          max_priority BIGINT
        )
        """,
        """
        CREATE TABLE audit (
          id BIGSERIAL PRIMARY KEY,
          at BIGINT NOT NULL,
          token_id BIGINT,
          token_name TEXT,
          role TEXT,
          action TEXT NOT NULL,
          target_type TEXT NOT NULL,
          target_id TEXT,
          address TEXT,
          detail TEXT
        )
        """,
        "CREATE INDEX audit_action ON audit(action, id)",
        "CREATE INDEX audit_token ON audit(token_id, id)",
        "CREATE INDEX audit_target ON audit(target_type, target_id, id)",
        """
        CREATE TABLE idempotency_key (
          tenant TEXT NOT NULL,
          key TEXT NOT NULL,
          request_digest BYTEA NOT NULL,
          created_at BIGINT NOT NULL,
          status BIGINT,
          kind TEXT,
          resource_id BIGINT,
          location TEXT,
          PRIMARY KEY (tenant, key)
        )
        """,
        "CREATE INDEX idempotency_created ON idempotency_key(created_at)",
    ]

    /// The versions the database has, oldest first as this build knows them; unknown ones last.
    static func applied(_ connection: PostgresConnection, logger: Logger) async throws -> [String] {
        let exists = try await connection.query("SELECT to_regclass('confine_schema') IS NOT NULL", logger: logger).collect()
        guard try exists.first?.decode(Bool.self) == true else { return [] }
        return try await connection.query("SELECT version FROM confine_schema ORDER BY applied_at, version", logger: logger)
            .collect().map { try $0.decode(String.self) }
    }

    /// Brings the database to `version` (nil: the latest) under the migration advisory lock:
    /// the first node migrates, the others wait and then find nothing left to do. A database
    /// at a version this build does not know (a newer Confine's) is refused, both named.
    static func migrate(_ store: PostgresStore, upTo version: String?) async throws {
        let target = version ?? versions.last!
        guard let targetIndex = versions.firstIndex(of: target) else {
            throw StoreError.invalid("unknown schema version \"\(target)\" (known: \(versions.joined(separator: ", ")))")
        }
        let address = store.address, logger = store.logger
        // Not under the operation deadline: waiting for another node's migration is expected.
        do {
            try await store.client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(migrationLock))", logger: logger)
                do {
                    try await migrate(connection, address: address, targetIndex: targetIndex, logger: logger)
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
                    throw error
                }
                try await connection.query("SELECT pg_advisory_unlock(\(migrationLock))", logger: logger)
            }
        } catch {
            throw store.storeError(error)
        }
    }

    private static func migrate(_ connection: PostgresConnection, address: PostgresAddress, targetIndex: Int,
                                logger: Logger) async throws {
        let applied = try await applied(connection, logger: logger)
        let unknown = applied.filter { !versions.contains($0) }
        if !unknown.isEmpty {
            throw StoreError.unavailable("""
                the database \(address) has schema version \(unknown.last!), written by a newer Confine; \
                this one knows up to \(versions.last!)
                """)
        }
        if let beyond = versions.indices.last(where: { applied.contains(versions[$0]) }), beyond > targetIndex {
            throw StoreError.invalid("the database \(address) is already at schema version \(versions[beyond]), beyond \(versions[targetIndex])")
        }
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS confine_schema (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)
            """, logger: logger)
        var index = 0
        for step in steps {
            defer { index += step.versions.count }
            guard index <= targetIndex else { break }
            if step.versions.allSatisfy(applied.contains) { continue }
            guard index + step.versions.count - 1 <= targetIndex else {
                throw StoreError.invalid("schema version \(versions[targetIndex]) is inside a PostgreSQL step; migrate to \(step.versions.last!)")
            }
            try await connection.query("BEGIN", logger: logger)
            do {
                for statement in step.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                for name in step.versions {
                    try await connection.query("""
                        INSERT INTO confine_schema (version, applied_at) VALUES (\(name), \(Millis.now))
                        """, logger: logger)
                }
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }
}
