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
3. Reads (issue 21) on the same two servers: wrk -t2 -c16 for BENCH_SECONDS (5) on GET /health,
   GET /executions/{id} (3 bytes of output) and GET /jobs/{id}, PostgreSQL beside SQLite.
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


def wrk(server, path, seconds):
    """wrk -t2 -c16 on one route of the server (the admin token sent): (requests/s, mean latency ms)."""
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {server.token}",
                          f"http://127.0.0.1:{server.port}{path}"], capture_output=True, text=True, check=True).stdout
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec:")))
    mean = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("Latency"))
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    unit = next(u for u in ("us", "ms", "s") if mean.endswith(u))
    return rps, float(mean[:-len(unit)]) * scale[unit]


def read_figures(server, seconds):
    """Issue 21's point reads on this server beside GET /health: a job and its one execution
    (3 bytes of output), then wrk on each route. {route: (requests/s, mean ms)}."""
    client = Client(server, timeout=60)
    status, job = client.request("POST", "/jobs", {"name": "read-" + uuid.uuid4().hex[:8], "script_type": "bash",
                                                   "script_content": "echo hi"})
    if status != 200:
        raise HarnessError(f"POST /jobs: {status} {job}")
    status, run = client.request("POST", f"/jobs/{job['id']}/run")
    execution = run.get("execution_id", run.get("id"))
    for _ in range(600):
        status, e = client.request("GET", f"/executions/{execution}")
        if e.get("status") in FINAL:
            break
        time.sleep(0.05)
    client.close()
    return {route: wrk(server, route, seconds)
            for route in ("/health", f"/executions/{execution}", f"/jobs/{job['id']}")}


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

        results, reads = {}, {}
        read_seconds = int(os.environ.get("BENCH_SECONDS", "5"))
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
                if shutil.which("wrk"):
                    reads[kind] = read_figures(server, read_seconds)
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
        if reads:
            for index, name in enumerate(("GET /health", "GET /executions/{id}", "GET /jobs/{id}")):
                (p_rps, p_ms), (l_rps, l_ms) = (list(reads[k].values())[index] for k in ("postgresql", "sqlite"))
                p_base, l_base = reads["postgresql"]["/health"][0], reads["sqlite"]["/health"][0]
                log(f"wrk -t2 -c16 -d{read_seconds}s {name}: PostgreSQL {p_rps:,.0f} requests/s ({p_ms:.2f} ms, "
                    f"×{p_rps / p_base:.2f} of /health); SQLite {l_rps:,.0f} requests/s ({l_ms:.2f} ms, ×{l_rps / l_base:.2f})")
        else:
            log("reads: wrk is not installed (apt-get install wrk); no read figures")
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
