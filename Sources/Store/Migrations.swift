import GRDB

/// The schema's history: each version a migration, applied in order at open. Never edit a
/// shipped migration; add the next version.
enum Migrations {
    /// Versions in order.
    static let versions = ["v1"]

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
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
                  cancel_requested INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX execution_queue ON execution(status, priority DESC, id);
                CREATE INDEX execution_job ON execution(job_id, id);
                CREATE INDEX execution_lease ON execution(status, lease_deadline);
                CREATE INDEX execution_created ON execution(created_at);
                CREATE INDEX execution_finished ON execution(finished_at);
                """)
        }
        return migrator
    }
}
