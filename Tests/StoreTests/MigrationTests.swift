import Domain
import Foundation
import GRDB
@testable import Store
import Testing

/// The schema: created from an empty file, and reached from every earlier version with the
/// data kept.
@Suite("Store migrations")
struct MigrationTests {
    /// Rows written into a file at one version with that version's own SQL (never through the
    /// store's current code, which follows the latest schema), and how they must read once the
    /// file is migrated to the latest. When adding "v2", add `"v2": …` here: the test below
    /// requires a fixture for every version.
    struct Fixture: Sendable {
        let fill: @Sendable (Database) throws -> Void
        let check: @Sendable (SQLiteStore) async throws -> Void
    }

    static let fixtures: [String: Fixture] = [
        "v1": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, limits, concurrency, arguments, environment,
                                     created_at, updated_at)
                    VALUES (7, 'nightly', 'python', 'print(1)', 'strict', '["memory=64MiB"]', 'queue', '["-v"]', '{"K":"v"}',
                            1700000000000, 1700000001000);
                    INSERT INTO execution (id, job_id, status, verdict, exit_code, script_type, script_snapshot, policy_name,
                                           policy_snapshot, concurrency, stdout, stdout_bytes, created_at, started_at, finished_at,
                                           worker)
                    VALUES (11, 7, 'SUCCESS', 'exited', 0, 'python', 'print(0)', 'strict', 'name: strict', 'queue', x'00ff0a', 3,
                            1700000002000, 1700000003000, 1700000004000, 'host:1');
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, priority, created_at)
                    VALUES (12, 7, 'PENDING', 'python', 'print(1)', 'strict', 'name: strict', 'queue', 3, 1700000005000);
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at)
                    VALUES (9, 'gone', 'bash', 'x', 'default', 1700000000000, 1700000000000);
                    DELETE FROM job WHERE id = 9;
                    """)
            },
            check: { store in
                let job = try #require(try await store.job(named: "nightly"))
                #expect(job.id == 7 && job.scriptType == .python && job.limits == ["memory=64MiB"] && job.concurrency == .queue)
                #expect(job.arguments == ["-v"] && job.environment == ["K": "v"])
                #expect(job.createdAt == Date(timeIntervalSince1970: 1_700_000_000))
                let done = try #require(try await store.execution(id: 11))
                #expect(done.status == .success && done.stdout == Data([0x00, 0xff, 0x0a]) && done.scriptSnapshot == "print(0)")
                let legacy = try await store.pool.read { db in
                    try Int.fetchOne(db, sql: "SELECT length(stdout) + length(stderr) FROM execution WHERE id = 11")
                }
                #expect(legacy == 0, "v3 moved the output into pieces and emptied the old columns")
                #expect(done.finishedAt == Date(timeIntervalSince1970: 1_700_000_004) && done.worker == "host:1")
                let pending = try #require(try await store.execution(id: 12))
                #expect(pending.status == .pending && pending.priority == 3)
                // The migrated file keeps working: its pending execution is claimed, new ids follow.
                #expect(try await store.claim()?.id == 12)
                let next = try await store.enqueue(job)
                #expect(next.id == 13)
                // v3: jobs made before tokens belong to no tenant; a deleted job's id is never given again.
                #expect(job.tenant == nil && pending.tenant == nil && job.secretEnvironment.isEmpty)
                let fresh = try await store.createJob(NewJob(name: "after", scriptType: .bash, scriptContent: "true"))
                #expect(fresh.id == 10)
            }),
        "v5": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at)
                    VALUES (5, 'chatty', 'bash', 'x', 'default', 1700000000000, 1700000000000);
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, stdout_bytes, created_at, started_at, worker)
                    VALUES (31, 5, 'RUNNING', 'bash', 'x', 'default', 'name: default', 'forbid', 4, 1700000001000,
                            1700000001000, 'host:1');
                    INSERT INTO execution_output (execution_id, stream, start, data) VALUES (31, 1, 0, x'61626364');
                    """)
            },
            check: { store in
                let e = try #require(try await store.execution(id: 31))
                #expect(e.stdout == Data("abcd".utf8) && e.status == .running)
            }),
        "v6": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO access_token (id, name, role, tenant, digest, created_at, max_priority)
                    VALUES (7, 'urgent', 'submitter', 'ops', x'0707', 1700000000000, 25),
                           (8, 'plain', 'submitter', 'ops', x'0808', 1700000000000, NULL);
                    """)
            },
            check: { store in
                let urgent = try #require(try await store.token(id: 7)), plain = try #require(try await store.token(id: 8))
                #expect(urgent.maxPriority == 25 && urgent.priorityCeiling == 25)
                #expect(plain.maxPriority == nil && plain.priorityCeiling == 0)
            }),
        "v7": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO execution (id, job_id, status, verdict, exit_code, script_type, script_snapshot, policy_name,
                                           policy_snapshot, concurrency, created_at, finished_at, tenant, submitted_by)
                    VALUES (41, NULL, 'SUCCESS', 'exited', 0, 'python', 'print(1)', 'default', 'name: default', 'allow',
                            1700000001000, 1700000002000, 'data', 3);
                    """)
            },
            check: { store in
                let e = try #require(try await store.execution(id: 41))
                #expect(e.jobID == nil && e.tenant == "data" && e.status == .success && e.scriptSnapshot == "print(1)")
            }),
        "v8": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO idempotency_key (tenant, key, request_digest, created_at, status, kind, resource_id, location)
                    VALUES ('data', 'retry-1', x'0102', 1700000000000, 201, 'run-accepted', 41, '/executions/41');
                    """)
            },
            check: { store in
                let record = try #require(try await store.idempotencyRecord(tenant: "data", key: "retry-1"))
                #expect(record.digest == Data([1, 2]) && record.answer?.resourceID == 41 && record.answer?.status == 201)
            }),
        "v9": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at, files_index, files)
                    VALUES (12, 'with-files', 'bash', 'cat a', 'default', 1700000000000, 1700000000000,
                            '[{"executable":false,"path":"a","size":2}]', CAST('[{"path":"a","content":"aGkK","executable":false}]' AS BLOB));
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, created_at, files)
                    VALUES (51, 12, 'PENDING', 'bash', 'cat a', 'default', 'name: default', 'forbid', 1700000001000,
                            CAST('[{"path":"a","content":"aGkK","executable":true}]' AS BLOB));
                    """)
            },
            check: { store in
                let job = try #require(try await store.job(id: 12))
                #expect(job.files == [InputFileEntry(path: "a", size: 2, executable: false)])
                #expect(try await store.jobFiles(id: 12) == [InputFile(path: "a", content: Data("hi\n".utf8))])
                #expect(try await store.executionFiles(id: 51) == [InputFile(path: "a", content: Data("hi\n".utf8), executable: true)])
            }),
        "v10": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at, outputs)
                    VALUES (13, 'plots', 'python', 'x', 'default', 1700000000000, 1700000000000, '["plots/*.png"]');
                    INSERT INTO execution (id, job_id, status, verdict, exit_code, script_type, script_snapshot, policy_name,
                                           policy_snapshot, concurrency, created_at, finished_at, outputs, artifacts_skipped)
                    VALUES (61, 13, 'SUCCESS', 'exited', 0, 'python', 'x', 'default', 'name: default', 'forbid', 1700000001000,
                            1700000002000, '["plots/*.png"]', '[{"path":"plots/big.png","reason":"too large"}]');
                    INSERT INTO execution_artifact (execution_id, path, size, sha256, data)
                    VALUES (61, 'plots/a.png', 2, 'ab', x'0102');
                    """)
            },
            check: { store in
                #expect(try await store.job(id: 13)?.outputs == ["plots/*.png"])
                let listed = try #require(try await store.artifacts(executionID: 61))
                #expect(listed.execution.outputs == ["plots/*.png"] && listed.files == [Artifact(path: "plots/a.png", size: 2, sha256: "ab")])
                #expect(listed.skipped == [SkippedArtifact(path: "plots/big.png", reason: "too large")])
                #expect(try await store.artifact(executionID: 61, path: "plots/a.png")?.content == Data([1, 2]))
            }),
        "v11": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at)
                    VALUES (14, 'mounter', 'python', 'x', 'default', 1700000000000, 1700000000000);
                    INSERT INTO execution (id, job_id, status, verdict, exit_code, script_type, script_snapshot, policy_name,
                                           policy_snapshot, concurrency, created_at, finished_at, denied)
                    VALUES (71, 14, 'SUCCESS', 'exited', 0, 'python', 'x', 'default', 'name: default', 'forbid', 1700000001000,
                            1700000002000, '[{"action":"errno","count":3,"first_at_ms":12,"syscall":"mount"}]');
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name,
                                           policy_snapshot, concurrency, created_at)
                    VALUES (72, 14, 'PENDING', 'python', 'x', 'default', 'name: default', 'forbid', 1700000003000);
                    """)
            },
            check: { store in
                let finished = try #require(try await store.execution(id: 71))
                #expect(finished.denied == [DeniedSyscall(syscall: "mount", count: 3, action: "errno", firstAtMs: 12)])
                let pending = try #require(try await store.execution(id: 72))
                #expect(pending.denied == nil, "not known: NULL, not []")
            }),
        "v12": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO node (name, version, started_at, last_heartbeat_at, stopped_at, workers)
                    VALUES ('old-host:8000', 'confine (schema v12)', 1700000000000, 1700000005000, 1700000006000, 4);
                    """)
            },
            check: { store in
                let nodes = try await store.nodes(timeout: .seconds(30))
                #expect(nodes.count == 1 && nodes[0].name == "old-host:8000" && nodes[0].state == .stopped && nodes[0].workers == 4)
                #expect(nodes[0].lastHeartbeatAt == Date(timeIntervalSince1970: 1700000005))
            }),
        "v13": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at, schedule_cron,
                                     schedule_timezone, schedule_overlap, schedule_catch_up, schedule_enabled, next_run_at,
                                     last_skipped_at, last_skip_reason)
                    VALUES (24, 'nightly-report', 'bash', 'x', 'default', 1700000000000, 1700000000000, '30 2 * * *',
                            'Europe/Paris', 'queue', 'last', 1, 1700003000000, 1700001000000, 'busy');
                    INSERT INTO schedule_slot (job_id, slot_at, claimed_at, outcome, execution_id)
                    VALUES (24, 1700002000000, 1700002000100, 'queued', 171);
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, created_at, run_trigger, scheduled_for)
                    VALUES (171, 24, 'PENDING', 'bash', 'x', 'default', 'name: default', 'queue', 1700002000100, 'schedule',
                            1700002000000);
                    """)
            },
            check: { store in
                let schedule = try #require(try await store.job(id: 24)?.schedule)
                #expect(schedule == JobSchedule(cron: "30 2 * * *", timezone: "Europe/Paris", overlap: .queue, catchUp: .last,
                                                nextRunAt: Date(timeIntervalSince1970: 1_700_003_000),
                                                lastSkippedAt: Date(timeIntervalSince1970: 1_700_001_000), lastSkipReason: "busy"))
                let execution = try #require(try await store.execution(id: 171))
                #expect(execution.trigger == .schedule && execution.scheduledFor == Date(timeIntervalSince1970: 1_700_002_000))
            }),
        "v14": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at, retry)
                    VALUES (15, 'flaky', 'bash', 'x', 'default', 1700000000000, 1700000000000,
                            '{"initialDelayMs":10000,"jitter":true,"maxAttempts":3,"maxDelayMs":600000,"multiplier":2,"on":["FAILED"]}');
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, created_at, run_trigger, attempt, retry_of, not_before)
                    VALUES (81, 15, 'PENDING', 'bash', 'x', 'default', 'name: default', 'queue', 1700002000100, 'retry', 2, 80,
                            1700002010000);
                    """)
            },
            check: { store in
                #expect(try await store.job(id: 15)?.retry == RetryPolicy(maxAttempts: 3, on: ["FAILED"]))
                let execution = try #require(try await store.execution(id: 81))
                #expect(execution.attempt == 2 && execution.retryOf == 80 && execution.trigger == .retry)
                #expect(execution.notBefore == Date(timeIntervalSince1970: 1_700_002_010))
            }),
        "v15": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at, callback)
                    VALUES (16, 'notify', 'bash', 'x', 'default', 1700000000000, 1700000000000,
                            '{"events":["finished"],"url":"https://example.com/hook"}');
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, created_at, finished_at, callback, tenant)
                    VALUES (91, 16, 'SUCCESS', 'bash', 'x', 'default', 'name: default', 'forbid', 1700000000000, 1700000001000,
                            '{"events":["finished"],"url":"https://example.com/hook"}', 'data');
                    INSERT INTO webhook_secret (tenant, sealed, created_at) VALUES ('data', 'sealed-text', 1700000000000);
                    INSERT INTO webhook_delivery (id, execution_id, tenant, url, event, status, created_at, next_attempt_at)
                    VALUES ('d-1', 91, 'data', 'https://example.com/hook', 'finished', 'pending', 1700000001000, 1700000006000);
                    INSERT INTO webhook_attempt (delivery_id, number, at, status_code, error, duration_ms)
                    VALUES ('d-1', 1, 1700000001000, 500, 'answered 500', 12);
                    """)
            },
            check: { store in
                #expect(try await store.job(id: 16)?.callback == WebhookCallback(url: "https://example.com/hook"))
                #expect(try await store.execution(id: 91)?.callback?.url == "https://example.com/hook")
                #expect(try await store.webhookSecret(tenant: "data")?.sealed == "sealed-text")
                let delivery = try #require(try await store.deliveries(executionID: 91).first)
                #expect(delivery.id == "d-1" && delivery.status == .pending
                        && delivery.attempts == [WebhookAttempt(at: Date(timeIntervalSince1970: 1_700_000_001), statusCode: 500,
                                                                error: "answered 500", durationMs: 12)])
            }),
        "v16": Fixture(
            fill: { db in
                // Tenant "ops" has one running and two queued; tenant "data" one queued, newer.
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at, tenant)
                    VALUES (17, 'shared', 'bash', 'x', 'default', 1700000000000, 1700000000000, 'ops');
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, created_at, tenant, started_at, worker, lease_deadline)
                    VALUES (101, 17, 'RUNNING', 'bash', 'x', 'default', 'name: default', 'allow', 1700000000000, 'ops',
                            1700000000100, 'w', 4102444800000);
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, created_at, tenant)
                    VALUES (102, 17, 'PENDING', 'bash', 'x', 'default', 'name: default', 'allow', 1700000000200, 'ops'),
                           (103, 17, 'PENDING', 'bash', 'x', 'default', 'name: default', 'allow', 1700000000300, 'ops'),
                           (104, 17, 'PENDING', 'bash', 'x', 'default', 'name: default', 'allow', 1700000000400, 'data');
                    """)
            },
            check: { store in
                // The tenant with none running goes first, through the v16 index; then the oldest.
                var claimed: [Int64?] = []
                for _ in 0..<3 {
                    claimed.append(try await store.claimNext(worker: "w2", leaseUntil: Date(timeIntervalSince1970: 4_102_444_800),
                                                             now: Date())?.id)
                }
                #expect(claimed == [104, 102, 103])
            }),
        "v2": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at)
                    VALUES (3, 'hog', 'bash', 'x', 'default', 1700000000000, 1700000000000);
                    INSERT INTO execution (id, job_id, status, verdict, script_type, script_snapshot, policy_name,
                                           policy_snapshot, concurrency, created_at, finished_at, memory_peak_bytes)
                    VALUES (21, 3, 'FAILED', 'memory_limit', 'bash', 'x', 'default', 'name: default', 'forbid',
                            1700000001000, 1700000002000, 67108864);
                    """)
            },
            check: { store in
                let page = try await store.executions(ExecutionQuery(verdicts: [.memoryLimit]))
                #expect(page.executions.map(\.id) == [21] && page.executions.first?.usage.memoryPeakBytes == 67_108_864)
                // Executions from before v4 ran with full isolation.
                #expect(page.executions.first?.weakerIsolation == [])
            }),
        "v3": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at, tenant, created_by,
                                     secret_environment)
                    VALUES (1, 'report', 'bash', 'x', 'default', 1700000000000, 1700000000000, 'data', 2, '{"KEY":"v1:abc"}'),
                           (2, 'report', 'bash', 'y', 'default', 1700000000000, 1700000000000, 'ops', 3, '{}');
                    INSERT INTO execution (id, job_id, status, script_type, script_snapshot, policy_name, policy_snapshot,
                                           concurrency, created_at, tenant, submitted_by, secret_environment)
                    VALUES (31, 1, 'PENDING', 'bash', 'x', 'default', 'name: default', 'forbid', 1700000001000, 'data', 2,
                            '{"KEY":"v1:abc"}');
                    INSERT INTO access_token (id, name, role, tenant, digest, policies, max_policy, max_active, created_at,
                                              expires_at, revoked_at, created_by)
                    VALUES (2, 'alice', 'submitter', 'data', x'0102', '["default"]', 'default', 4, 1700000000000, NULL, NULL, 1);
                    INSERT INTO audit (id, at, token_id, token_name, role, action, target_type, target_id, address, detail)
                    VALUES (5, 1700000002000, 2, 'alice', 'submitter', 'job.create', 'job', '1', '127.0.0.1', 'name report');
                    """)
            },
            check: { store in
                let named = try await store.jobs(named: "report")
                #expect(named.map(\.id) == [1, 2] && named.map(\.tenant) == ["data", "ops"])
                #expect(named[0].secretEnvironment == ["KEY": "v1:abc"] && named[0].createdBy == 2)
                #expect(try await store.jobs(scriptType: nil, tenant: "ops").map(\.id) == [2])
                let e = try #require(try await store.execution(id: 31))
                #expect(e.tenant == "data" && e.submittedBy == 2 && e.secretEnvironment == ["KEY": "v1:abc"])
                #expect(try await store.executions(ExecutionQuery(tenant: "ops")).executions.isEmpty)
                let token = try #require(try await store.token(digest: Data([1, 2])))
                #expect(token.token.name == "alice" && token.token.role == .submitter && token.token.policies == ["default"])
                #expect(token.token.maxPolicy == "default" && token.token.maxActive == 4 && token.token.revokedAt == nil)
                #expect(try await store.audit(AuditQuery(tokenID: 2)).entries.map(\.action) == ["job.create"])
            }),
        "v4": Fixture(
            fill: { db in
                try db.execute(sql: """
                    INSERT INTO job (id, name, script_type, script_content, policy, created_at, updated_at)
                    VALUES (4, 'weak', 'bash', 'x', 'default', 1700000000000, 1700000000000);
                    INSERT INTO execution (id, job_id, status, verdict, exit_code, script_type, script_snapshot, policy_name,
                                           policy_snapshot, concurrency, created_at, finished_at, weaker_isolation)
                    VALUES (41, 4, 'SUCCESS', 'exited', 0, 'bash', 'x', 'default', 'name: default', 'forbid',
                            1700000001000, 1700000002000, '["cgroups","seccomp"]');
                    """)
            },
            check: { store in
                let weak = try #require(try await store.execution(id: 41))
                #expect(weak.weakerIsolation == ["cgroups", "seccomp"] && weak.status == .success)
            }),
    ]

    @Test("From an empty file: the folder and file are created, every table, column and index exists, WAL and foreign keys on")
    func fromEmpty() async throws {
        try await withTemporaryFolder { folder in
            let path = folder.appendingPathComponent("nested/deeper/confine.sqlite").path
            #expect(!FileManager.default.fileExists(atPath: path))
            let store = try SQLiteStore(path: path)
            #expect(FileManager.default.fileExists(atPath: path))
            let (tables, indexes, applied, columns) = try await store.pool.read { db in
                (try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
                 try String.fetchAll(db, sql: """
                     SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name
                     """),
                 try Migrations.migrator.appliedMigrations(db),
                 try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info('execution') ORDER BY cid"))
            }
            #expect(Set(tables).isSuperset(of: ["job", "execution", "execution_output", "grdb_migrations"]))
            #expect(Set(tables).isSuperset(of: ["access_token", "audit"]))
            #expect(indexes == ["audit_action", "audit_target", "audit_token", "execution_created", "execution_finished",
                                "execution_job", "execution_job_status", "execution_lease", "execution_not_before", "execution_pending_tenant", "execution_queue", "execution_status",
                                "execution_submitter", "execution_tenant", "execution_verdict", "idempotency_created", "job_name",
                                "job_next_run", "job_script_type", "webhook_delivery_due", "webhook_delivery_execution"])
            #expect(applied == Migrations.versions && applied.last == Migrations.latest)
            #expect(columns == ["id", "job_id", "status", "verdict", "exit_code", "signal", "reason", "script_type",
                                "script_snapshot", "policy_name", "policy_snapshot", "concurrency", "arguments", "environment",
                                "stdin", "priority", "stdout", "stderr", "stdout_bytes", "stderr_bytes", "stdout_truncated",
                                "stderr_truncated", "wall_ms", "cpu_ms", "memory_peak_bytes", "created_at", "started_at",
                                "finished_at", "worker", "lease_deadline", "cancel_requested", "takeovers", "secret_environment",
                                "tenant", "submitted_by", "weaker_isolation", "files", "outputs",
                                "artifacts_skipped", "denied", "run_trigger", "scheduled_for", "attempt", "retry_of", "not_before", "callback"])
            let schema = try await store.pool.read(schemaDescription)
            #expect(schema.contains("table execution foreign key job_id -> job on delete CASCADE"))
            #expect(schema.contains("table execution_output foreign key execution_id -> execution on delete CASCADE"))
            #expect(schema.contains("index execution_queue on execution(status, priority DESC, id) unique=false partial=false"))
            #expect(schema.contains("index execution_job on execution(job_id, id DESC) unique=false partial=false"))
            // Job names are unique per tenant, not across tenants (a conflict must not leak another tenant's names).
            #expect(schema.contains { $0.hasPrefix("index sqlite_autoindex_job_1 on job(tenant, name) unique=true") })
            // Every connection: the writer and the readers.
            let writer = try await store.pool.write { db in
                (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA foreign_keys"),
                 try Int.fetchOne(db, sql: "PRAGMA busy_timeout"))
            }
            let reader = try await store.pool.read { db in
                (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try Int.fetchOne(db, sql: "PRAGMA foreign_keys"),
                 try Int.fetchOne(db, sql: "PRAGMA busy_timeout"))
            }
            #expect(writer.0 == "wal" && writer.1 == 1 && (writer.2 ?? 0) >= 1000)
            #expect(reader.0 == "wal" && reader.1 == 1)
            // Reopening migrates nothing twice and changes nothing.
            let reopened = try SQLiteStore(path: path)
            #expect(try await reopened.pool.read(schemaDescription) == schema)
        }
    }

    @Test("From every earlier schema version: a file built and filled at that version migrates to the latest with its data")
    func fromEveryEarlierVersion() async throws {
        #expect(Set(Self.fixtures.keys) == Set(Migrations.versions), "every schema version needs a fixture")
        let latestSchema = try await withTemporaryFolder { folder in
            try await SQLiteStore(path: folder.appendingPathComponent("latest.sqlite").path).pool.read(schemaDescription)
        }
        for version in Migrations.versions {
            try await withTemporaryFolder { folder in
                let path = folder.appendingPathComponent("\(version).sqlite").path
                do {
                    let old = try SQLiteStore(path: path, migrateUpTo: version)
                    let applied = try await old.pool.read { db in try Migrations.migrator.appliedMigrations(db) }
                    #expect(applied.last == version, "the file was built at \(version)")
                    let fixture = try #require(Self.fixtures[version])
                    try await old.pool.write { db in try fixture.fill(db) }
                }
                let migrated = try SQLiteStore(path: path)
                let applied = try await migrated.pool.read { db in try Migrations.migrator.appliedMigrations(db) }
                #expect(applied == Migrations.versions, "\(version) migrated to the latest")
                #expect(try await migrated.pool.read(schemaDescription) == latestSchema,
                        "migrating from \(version) gives the same schema as creating from empty")
                try await Self.fixtures[version]?.check(migrated)
            }
        }
    }

    @Test("A file written by a newer Confine, or a version this build does not know, is refused with words")
    func refusesUnknownVersions() async throws {
        try await withTemporaryFolder { folder in
            let path = folder.appendingPathComponent("newer.sqlite").path
            do {
                let store = try SQLiteStore(path: path)
                try await store.pool.write { db in try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('v999')") }
            }
            let error = #expect(throws: StoreError.self) { _ = try SQLiteStore(path: path) }
            guard case .unavailable(let why) = error else {
                Issue.record("expected unavailable, got \(String(describing: error))")
                return
            }
            #expect(why.contains("v999") && why.contains("newer Confine") && why.contains(path))
            #expect(throws: StoreError.invalid("unknown schema version \"v0\" (known: \(Migrations.versions.joined(separator: ", ")))")) {
                _ = try SQLiteStore(path: folder.appendingPathComponent("other.sqlite").path, migrateUpTo: "v0")
            }
            // Asking for an older version than the file has is refused rather than crashing.
            if Migrations.versions.count > 1 {
                let current = folder.appendingPathComponent("current.sqlite").path
                _ = try SQLiteStore(path: current)
                #expect(throws: StoreError.self) { _ = try SQLiteStore(path: current, migrateUpTo: Migrations.versions[0]) }
            }
        }
    }
}
