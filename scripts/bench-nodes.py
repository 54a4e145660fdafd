#!/usr/bin/env python3
"""Many nodes, one PostgreSQL (issue 13), measured (run by `make bench` inside
scripts/with-postgres.sh, which gives CONFINE_TEST_POSTGRES_URL; standard library only).

    python3 scripts/bench-nodes.py [BIN]      BIN: the confine binary (default: the debug build)

1. Scaling: 1, 2 and 3 `confine serve` nodes on one new database each time, BENCH_NODE_WORKERS (4)
   workers per node, BENCH_SLEEP_RUNS (24) `sleep 0.5` executions per node submitted round-robin
   to the nodes; executions/s from the first submission until all are final, and the ratio to one
   node (target: at least 0.8·N).
2. Cost per trivial execution on one node: BENCH_TRIVIAL (300) `true` executions on PostgreSQL,
   then on SQLite, in one sitting: executions/s and the server's CPU (user+system from /proc) per
   execution, side by side.
Prints measurements and ratios; asserts no timing. Exits non-zero only when something broke.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from confine_harness import FINAL, Client, HarnessError, Server, runnable_binary  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"bench-nodes: {message}", flush=True)


def admin_sql(url, statement):
    """One statement on the cluster's own database with psql (the URL's socket folder or host)."""
    parts = urllib.parse.urlparse(url)
    query = urllib.parse.parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = urllib.parse.unquote(parts.password)
    subprocess.run(["psql", "-h", host, "-p", str(parts.port or 5432), "-U", urllib.parse.unquote(parts.username or ""),
                    "-d", parts.path.lstrip("/"), "-qAt", "-c", statement], check=True, env=env, stdout=subprocess.DEVNULL)


def new_database(url):
    name = "confine_bench_" + uuid.uuid4().hex[:12]
    admin_sql(url, f"CREATE DATABASE {name}")
    parts = urllib.parse.urlparse(url)
    return name, urllib.parse.urlunparse(parts._replace(path="/" + name))


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def run_batch(servers, script, count):
    """Makes a job, submits `count` runs round-robin over the servers, waits for all; returns
    (seconds from the first submission to the last end, the executions' final statuses)."""
    clients = [Client(s, timeout=60) for s in servers]
    status, job = clients[0].request("POST", "/jobs", {"name": "bench-" + uuid.uuid4().hex[:8], "script_type": "bash",
                                                       "script_content": script, "concurrency": "allow"})
    if status != 200:
        raise HarnessError(f"POST /jobs: {status} {job}")
    started = time.monotonic()
    ids = []
    for i in range(count):
        status, run = clients[i % len(clients)].request("POST", f"/jobs/{job['id']}/run")
        if status != 200:
            raise HarnessError(f"POST /jobs/{job['id']}/run: {status} {run}")
        ids.append(run["execution_id"])
    # Waiting asks only whether one is left (a one-row page of the live ones, on the partial
    # indexes of live states): the server's CPU measured is the runs', not a growing listing's.
    while True:
        status, page = clients[0].request("GET", f"/executions?job_id={job['id']}&status=PENDING,RUNNING&limit=1")
        if status != 200:
            raise HarnessError(f"GET /executions: {status} {page}")
        if not page["executions"]:
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    statuses = {}
    status, page = clients[0].request("GET", f"/executions?job_id={job['id']}&limit=1000")
    if status != 200:
        raise HarnessError(f"GET /executions: {status} {page}")
    for e in page["executions"]:
        if e["id"] in ids and e["status"] in FINAL:
            statuses[e["id"]] = e["status"]
    if len(statuses) != len(ids):
        raise HarnessError(f"{len(ids) - len(statuses)} executions are not final or missing")
    for c in clients:
        c.close()
    return elapsed, statuses


def start_nodes(binary, root, url, count, workers):
    servers = []
    for n in range(count):
        folder = os.path.join(root, f"node{n}")
        os.makedirs(folder)
        server = Server(binary, folder, workers, extra_config=f"node_name: bench-node-{n}\n", database=url)
        server.start()
        servers.append(server)
    token = next((s.token for s in servers if s.token), None)
    if token is None:
        raise HarnessError("no node wrote admin.token")
    for s in servers:
        s.token = token
    return servers


def main():
    binary, status = runnable_binary(sys.argv, log)
    if binary is None:
        return status
    url = os.environ.get("CONFINE_TEST_POSTGRES_URL")
    if not url:
        log("skipped: no PostgreSQL (CONFINE_TEST_POSTGRES_URL; make bench runs this inside scripts/with-postgres.sh)")
        return 0
    workers = int(os.environ.get("BENCH_NODE_WORKERS", "4"))
    per_node = int(os.environ.get("BENCH_SLEEP_RUNS", "24"))
    trivial = int(os.environ.get("BENCH_TRIVIAL", "300"))
    root = tempfile.mkdtemp(prefix="confine-bench-nodes.")
    made = []
    try:
        rates = {}
        for count in (1, 2, 3):
            name, database = new_database(url)
            made.append(name)
            servers = start_nodes(binary, os.path.join(root, f"scale{count}"), database, count, workers)
            try:
                run_batch(servers, "true", 2 * count)  # warm: first sandboxes, connections
                elapsed, statuses = run_batch(servers, "sleep 0.5", per_node * count)
            finally:
                for s in servers:
                    s.stop()
            bad = [s for s in statuses.values() if s != "SUCCESS"]
            if bad:
                raise HarnessError(f"{len(bad)} sleep runs did not succeed: {sorted(set(bad))}")
            rates[count] = per_node * count / elapsed
            ideal = count * workers / 0.5
            log(f"{count} node(s) × {workers} workers: {per_node * count} × sleep 0.5 in {elapsed:.2f} s = "
                f"{rates[count]:.2f} executions/s (ideal {ideal:.0f}/s); scaling ×{rates[count] / rates[1]:.2f} "
                f"(target ≥ {0.8 * count:.1f})")

        results = {}
        for kind in ("postgresql", "sqlite"):
            folder = os.path.join(root, "trivial-" + kind)
            os.makedirs(folder)
            database = None
            if kind == "postgresql":
                name, database = new_database(url)
                made.append(name)
            server = Server(binary, folder, workers, extra_config="node_name: bench-trivial\n", database=database)
            server.start()
            try:
                run_batch([server], "true", 10)
                before = cpu_ticks(server.proc.pid)
                elapsed, statuses = run_batch([server], "true", trivial)
                cpu = (cpu_ticks(server.proc.pid) - before) / TICKS
            finally:
                server.stop()
            bad = [s for s in statuses.values() if s != "SUCCESS"]
            if bad:
                raise HarnessError(f"{len(bad)} trivial runs on {kind} did not succeed")
            results[kind] = (trivial / elapsed, cpu / trivial * 1000)
        pg, lite = results["postgresql"], results["sqlite"]
        log(f"trivial `true` on one node: PostgreSQL {pg[0]:.1f} executions/s, {pg[1]:.2f} ms server CPU each; "
            f"SQLite {lite[0]:.1f} executions/s, {lite[1]:.2f} ms server CPU each; PostgreSQL/SQLite: "
            f"rate ×{pg[0] / lite[0]:.2f}, CPU ×{pg[1] / lite[1]:.2f}")
        return 0
    except HarnessError as e:
        log(f"failed: {e}")
        return 1
    finally:
        for name in made:
            try:
                admin_sql(url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
