#!/usr/bin/env python3
"""HTTP client side of scripts/bench-api.sh (Python standard library only).

Subcommands (BASE is http://127.0.0.1:PORT):
  wait-health BASE SECONDS          exit 0 once GET /health answers 200
  setup BASE                        create a job, run it once (wait=true); print the execution and job ids
  e2e BASE COUNT CONNECTIONS        submit COUNT `bash true` runs, wait for all; print the result line
  adhoc BASE COUNT CONNECTIONS TYPE CONTENT   COUNT ad-hoc runs (POST /executions) and COUNT runs of
                                    a stored job with the same script, in interleaved rounds; both rates
  burn BASE COUNT READY_FILE        keep COUNT CPU burners RUNNING until SIGTERM, then cancel them
  running BASE                      start a `sleep` run; print its id once it is RUNNING
  cancel-one BASE ID                cancel one execution and wait until it is final
  wrk LABEL [IDLE_P99_MS]           parse `wrk --latency` output on stdin; print one line (with
                                    BENCH_BASELINE_RPS: the ratio to it), then one line per target
                                    (BENCH_TARGET_RPS, BENCH_TARGET_RATIO, the p99 with IDLE_P99_MS):
                                    the target, the figure, PASS or MISS
  probe BASE PATH SECONDS RATE LABEL [IDLE_P99_MS]   paced GETs on one connection; print one line
  targets FILE                      print the PASS/MISS lines gathered in FILE (BENCH_TARGETS_FILE)
Prints measurements; asserts no timing. Exits non-zero only when something broke.
"""
import http.client
import json
import os
import re
import resource
import signal
import sys
import threading
import time
import urllib.parse

EARLIER_RATE = 30.0        # the earlier platform's end-to-end rate here: 25–35 executions/s
READ_P99_TARGET_MS = 10.0
# Every route but /health needs a token: the server's admin token (bench-api.sh exports it).
TOKEN = os.environ.get("CONFINE_TOKEN", "")


class Client:
    """One keep-alive connection; reconnects once when the server closed it."""

    def __init__(self, base, timeout=60):
        u = urllib.parse.urlsplit(base)
        self.host, self.port, self.timeout = u.hostname, u.port or 80, timeout
        self.conn = None

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if TOKEN:
            headers["Authorization"] = "Bearer " + TOKEN
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                try:
                    payload = json.loads(raw) if raw else None
                except ValueError:
                    payload = raw.decode(errors="replace")
                return resp.status, payload, resp
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()


def target(label, wanted, figure, passed):
    """One target's line: what is wanted, what was measured, PASS or MISS; also appended to
    BENCH_TARGETS_FILE for the summary at the end of the run."""
    line = f"api:   target {label}: {wanted} — measured {figure} — {'PASS' if passed else 'MISS'}"
    print(line)
    path = os.environ.get("BENCH_TARGETS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(line.replace("api:   target ", "", 1) + "\n")


def cmd_targets(path):
    lines = open(path).read().splitlines() if os.path.exists(path) else []
    passed = sum(line.endswith("PASS") for line in lines)
    print(f"\nTargets: {passed} of {len(lines)} PASS")
    for line in lines:
        print(f"  {line}")
    return 0


def fail(message):
    print(f"api: ERROR {message}", file=sys.stderr)
    sys.exit(1)


def create_job(client, body):
    status, payload, _ = client.request("POST", "/jobs", body)
    if status != 200:
        fail(f"POST /jobs {body.get('name')} -> {status} {payload}")
    return payload["id"]


def unique(name):
    return f"{name}-{os.getpid()}-{int(time.time() * 1000)}"


# ---------------------------------------------------------------------------------------------

def cmd_wait_health(base, seconds):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        try:
            c = Client(base, timeout=2)
            status, _, _ = c.request("GET", "/health")
            c.close()
            if status == 200:
                return 0
        except OSError:
            pass
        time.sleep(0.1)
    return 1


def cmd_setup(base):
    c = Client(base)
    job = create_job(c, {"name": unique("bench-read"), "script_type": "bash",
                         "script_content": "echo hello from the read benchmark"})
    status, payload, _ = c.request("POST", f"/executions/{job}/run?wait=true&wait_timeout=30", {})
    if status != 200 or payload.get("status") != "SUCCESS":
        fail(f"setup run of job {job} -> {status} {payload}")
    print(payload["execution_id"], job)
    return 0


def list_all(c, job):
    """Every execution summary of `job` (paged with the cursor)."""
    out, cursor = [], None
    while True:
        path = f"/executions?job_id={job}&limit=1000" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, payload, _ = c.request("GET", path)
        if status != 200:
            fail(f"GET {path} -> {status} {payload}")
        out += payload["executions"]
        cursor = payload["next_cursor"]
        if not cursor:
            return out


def process_cpu(pid):
    """(own, waited-for children's) CPU seconds of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) / tick for x in fields[11:15])
    return utime + stime, cutime + cstime


def client_cpu():
    """CPU seconds this driver has used (every thread): it shares the cores with the server."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def spawner_pids(server):
    """The server's spawner(s): its children in the host's pid namespace (inits have two NSpids)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        except OSError:
            continue
        if status.get("PPid", "").strip() == str(server) and len(status.get("NSpid", "").split()) == 1:
            found.append(int(entry))
    return found


def cmd_e2e(base, count, connections, script_type="bash", content="true", bare_rate="", bare_cpu_ms="",
            target_ratio=""):
    count, connections = int(count), int(connections)
    label = f"{script_type} {content}"
    server = int(os.environ.get("BENCH_SERVER_PID", "0"))
    setup = Client(base)
    job = create_job(setup, {"name": unique(f"bench-{script_type}"), "script_type": script_type,
                             "script_content": content, "concurrency": "allow"})
    # Warm up: the first run of a policy builds its warm sandboxes.
    status, payload, _ = setup.request("POST", f"/executions/{job}/run?wait=true")
    if status != 200 or payload.get("status") != "SUCCESS":
        fail(f"warm-up run -> {status} {payload}")
    cpu_before = process_cpu(server) if server else None
    client_before = client_cpu()
    spawners = spawner_pids(server) if server else []
    spawner_before = sum(process_cpu(p)[0] for p in spawners)
    errors, accepted, retried = [], [0] * connections, [0] * connections
    post_ms = [[] for _ in range(connections)]
    next_index = [0]
    lock = threading.Lock()

    def submitter(slot):
        c = Client(base)
        while True:
            with lock:
                if next_index[0] >= count or len(errors) > 10:
                    break
                next_index[0] += 1
            while True:
                try:
                    t = time.perf_counter()
                    status, payload, resp = c.request("POST", f"/executions/{job}/run")
                    post_ms[slot].append((time.perf_counter() - t) * 1000)
                except OSError as e:
                    with lock:
                        errors.append(f"POST run: {e}")
                    break
                if status == 200:
                    accepted[slot] += 1
                    break
                if status == 503 and payload and payload.get("retry_after") is not None:
                    retried[slot] += 1            # queue full: honour Retry-After
                    time.sleep(min(float(resp.getheader("Retry-After") or 1), 1.0))
                    continue
                with lock:
                    errors.append(f"POST run -> {status} {payload}")
                break
        c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_submitted = time.monotonic()
    if errors:
        fail(f"{len(errors)} submissions failed, first: {errors[0]}")

    poll = Client(base)
    deadline = t0 + max(120.0, count / 5.0)
    polls = 0
    while True:
        status, payload, _ = poll.request("GET", f"/executions?job_id={job}&status=PENDING,RUNNING&limit=1")
        polls += 1
        if status != 200:
            fail(f"GET /executions (poll) -> {status} {payload}")
        if not payload["executions"]:
            break
        if time.monotonic() > deadline:
            fail(f"executions still unfinished after {deadline - t0:.0f} s")
        time.sleep(0.02)
    t_done = time.monotonic()

    cpu_after = process_cpu(server) if server else None
    client_used = client_cpu() - client_before
    spawner_after = sum(process_cpu(p)[0] for p in spawners if os.path.exists(f"/proc/{p}"))
    executions = list_all(poll, job)
    by_status = {}
    for e in executions:
        by_status[e["status"]] = by_status.get(e["status"], 0) + 1
    elapsed = t_done - t0
    rate = count / elapsed
    submit_rate = count / (t_submitted - t0)
    print(f"api: end-to-end {label:<14} {count} in {elapsed:.2f} s = {rate:.0f} executions/s  "
          f"(×{rate / EARLIER_RATE:.1f} of the earlier platform's {EARLIER_RATE:.0f}/s)")
    if bare_rate:
        ratio = rate / float(bare_rate)
        print(f"api:   against bare fork+exec of the same program, 2 at a time, measured just before: "
              f"{float(bare_rate):.0f}/s → ×{ratio:.2f}")
        if target_ratio:
            target(f"end-to-end {label} ratio to bare fork+exec", f"≥ ×{float(target_ratio):.2f}", f"×{ratio:.2f}",
                   ratio >= float(target_ratio))
    if cpu_before and cpu_after:
        own = (cpu_after[0] - cpu_before[0]) * 1000 / count
        children = (cpu_after[1] - cpu_before[1]) * 1000 / count
        spawner = (spawner_after - spawner_before) * 1000 / count
        program = f" (the program alone, bare: {float(bare_cpu_ms):.2f} ms → inits ≈ {children - float(bare_cpu_ms):.2f} ms)" if bare_cpu_ms else ""
        print(f"api:   CPU per execution (/proc/PID/stat): server {own:.2f} ms, spawner {spawner:.2f} ms, "
              f"inits + programs {children:.2f} ms{program}; this Python client {client_used * 1000 / count:.2f} ms")
    extra = f"; {sum(retried)} queue-full retries" if sum(retried) else ""
    posts = sorted(x for per in post_ms for x in per)
    print(f"api:   submissions accepted at {submit_rate:.0f}/s over {connections} keep-alive connections "
          f"({t_submitted - t0:.2f} s{extra}; POST p50 {posts[len(posts) // 2]:.1f} ms, "
          f"p99 {posts[int(len(posts) * 0.99)]:.1f} ms); {polls} polls until none PENDING/RUNNING")
    usage = [e["usage"]["wall_ms"] for e in executions if e.get("usage")]
    queue = []
    for e in executions:
        if e.get("started_at") and e.get("created_at"):
            from datetime import datetime
            queue.append((datetime.fromisoformat(e["started_at"]) - datetime.fromisoformat(e["created_at"])).total_seconds())
    if usage:
        usage.sort()
        print(f"api:   per execution: sandbox wall median {usage[len(usage) // 2]} ms, max {usage[-1]} ms"
              + (f"; waited in queue up to {max(queue):.2f} s" if queue else ""))
    if len(executions) != count + 1 or by_status.get("SUCCESS", 0) != count + 1:  # + the warm-up run
        bad = [e for e in executions if e["status"] != "SUCCESS"][:5]
        print(f"api: FAILED end-to-end: {len(executions)} executions listed, by status {by_status}", file=sys.stderr)
        for e in bad:
            print(f"api:   execution {e['id']}: {e['status']} verdict={e.get('verdict')} reason={e.get('reason')}",
                  file=sys.stderr)
        return 1
    print(f"api:   all {count} ended SUCCESS (and the warm-up run)")
    return 0


def cmd_burn(base, count, ready_file):
    """Keeps `count` burners RUNNING (resubmitting any that end) until SIGTERM, then cancels."""
    count = int(count)
    c = Client(base)
    # BURNER_SCRIPT (python) replaces the CPU loop: the denied loop calls mount(2) without end.
    script = os.environ.get("BURNER_SCRIPT")
    job = create_job(c, {"name": unique("bench-burner"), "script_type": "python" if script else "bash",
                         "script_content": script or "while :; do :; done",
                         "policy": os.environ.get("BURNER_POLICY", "default"), "concurrency": "allow"})
    # A flag, not a threading.Event: Event.set() from a signal handler can deadlock with the
    # Event.wait() it interrupts (seen: the driver hung in a futex after SIGTERM).
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    live, submitted, ready_at = {}, 0, None
    min_running = None

    def submit():
        nonlocal submitted
        status, payload, _ = c.request("POST", f"/executions/{job}/run", {})
        if status != 200:
            fail(f"burner run -> {status} {payload}")
        live[payload["execution_id"]] = "PENDING"
        submitted += 1

    for _ in range(count):
        submit()
    deadline = time.monotonic() + 30
    while not stopping:
        for eid in list(live):
            status, payload, _ = c.request("GET", f"/executions/{eid}")
            if status != 200:
                fail(f"GET /executions/{eid} -> {status} {payload}")
            live[eid] = payload["status"]
            if payload["status"] not in ("PENDING", "RUNNING"):
                del live[eid]
                submit()                 # ended (a policy limit?): keep the CPUs busy
        running = sum(1 for s in live.values() if s == "RUNNING")
        if ready_at is None:
            if running == count:
                ready_at = time.monotonic()
                with open(ready_file, "w") as f:
                    f.write(" ".join(map(str, live)) + "\n")
            elif time.monotonic() > deadline:
                fail(f"burners not all RUNNING after 30 s: {live}")
        else:
            min_running = running if min_running is None else min(min_running, running)
        time.sleep(0.25)

    statuses = {}
    for eid in list(live):
        status, payload, _ = c.request("POST", f"/executions/{eid}/cancel")
        final = payload.get("status") if isinstance(payload, dict) else payload
        statuses[final] = statuses.get(final, 0) + 1
        if status not in (200, 202, 409):
            print(f"api: cancel {eid} -> {status} {payload}", file=sys.stderr)
    print(f"api:   burners: {submitted} submitted ({submitted - count} resubmitted after ending), "
          f"fewest RUNNING while measured {min_running if min_running is not None else '?'} of {count}; "
          f"cancelled -> {', '.join(f'{v} {k}' for k, v in statuses.items())}")
    return 0


def cmd_probe(base, path, seconds, rate, label, idle_p99=None):
    """GET `path` at a steady `rate`/s on one keep-alive connection for `seconds`: the latency a
    client sees at a light load (wrk -c16 saturates the cores it shares with the server)."""
    seconds, rate = float(seconds), float(rate)
    c = Client(base)
    c.request("GET", path)
    samples, errors = [], 0
    start = time.monotonic()
    n = int(seconds * rate)
    for i in range(n):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = time.perf_counter()
        status, _, _ = c.request("GET", path)
        samples.append((time.perf_counter() - t) * 1000)
        errors += status != 200
    samples.sort()
    q = lambda f: samples[min(len(samples) - 1, int(f * len(samples)))]
    line = (f"api: {label:<27} {rate:>5.0f} req/s paced  p50 {q(0.5):.2f} ms  p90 {q(0.9):.2f} ms  "
            f"p99 {q(0.99):.2f} ms  max {samples[-1]:.2f} ms")
    if idle_p99:
        line += f"  (p99 ×{q(0.99) / float(idle_p99):.1f} of idle)"
    print(line)
    if idle_p99:
        target(f"{label.strip()} p99 (paced)", f"< {READ_P99_TARGET_MS:.0f} ms", f"{q(0.99):.2f} ms",
               q(0.99) < READ_P99_TARGET_MS)
    with open(os.environ.get("BENCH_P99_FILE", "/dev/null"), "w") as f:
        f.write(f"{q(0.99)}\n")
    if errors:
        fail(f"{errors} of {n} GET {path} did not answer 200")
    return 0


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def cmd_wrk(label, idle_p99=None):
    text = sys.stdin.read()
    rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
    pct = {m.group(1): float(m.group(2)) * UNIT_MS[m.group(3)]
           for m in re.finditer(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)}
    if not rps or "99" not in pct:
        print(text, file=sys.stderr)
        fail(f"could not read wrk's output for {label}")
    rate = float(rps.group(1))
    line = (f"api: {label:<27} {rate:>8.0f} req/s  p50 {pct['50']:.2f} ms  "
            f"p90 {pct['90']:.2f} ms  p99 {pct['99']:.2f} ms")
    baseline = float(os.environ.get("BENCH_BASELINE_RPS") or 0)
    target_rps = float(os.environ.get("BENCH_TARGET_RPS") or 0)
    target_ratio = float(os.environ.get("BENCH_TARGET_RATIO") or 0)
    if baseline:
        line += f"  (×{rate / baseline:.3f} of GET /health)"
    with open(os.environ.get("BENCH_RPS_FILE", "/dev/null"), "w") as f:
        f.write(f"{rate}\n")
    if idle_p99:
        line += f"  (p99 ×{pct['99'] / float(idle_p99):.1f} of idle)"
    print(line)
    if target_rps:
        target(f"{label} requests/s", f"≥ {target_rps:,.0f}/s", f"{rate:,.0f}/s", rate >= target_rps)
    if target_ratio and baseline:
        target(f"{label} ratio to GET /health", f"≥ ×{target_ratio:g}",
               f"×{rate / baseline:.3f} ({rate:,.0f} / {baseline:,.0f})", rate / baseline >= target_ratio)
    if idle_p99:
        target(f"{label} p99", f"< {READ_P99_TARGET_MS:.0f} ms", f"{pct['99']:.2f} ms", pct['99'] < READ_P99_TARGET_MS)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    sock = re.search(r"Socket errors:\s*(.*)", text)
    if non2xx:
        print(f"api:   {label}: {non2xx.group(1)} non-2xx responses", file=sys.stderr)
    if sock:
        print(f"api:   {label}: socket errors: {sock.group(1)}", file=sys.stderr)
    with open(os.environ.get("BENCH_P99_FILE", "/dev/null"), "w") as f:
        f.write(f"{pct['99']}\n")
    return 2 if non2xx else 0


def cmd_fill(database, count):
    """Fills a database the server created (and stopped) with `count` finished executions over
    100 jobs, in one transaction: the listing benchmark's million rows."""
    import sqlite3
    count = int(count)
    started = time.monotonic()
    db = sqlite3.connect(database)
    now = int(time.time() * 1000) - count
    with db:
        jobs = []
        for j in range(100):
            cur = db.execute("INSERT INTO job (name, script_type, script_content, policy, created_at, updated_at) "
                             "VALUES (?, 'bash', 'true', 'default', ?, ?)", (unique(f"bench-list-{j}"), now, now))
            jobs.append(cur.lastrowid)
        outcomes = [("SUCCESS", "exited", 0)] * 90 + [("FAILED", "exited", 1)] * 8 + [("TIMED_OUT", "wall_timeout", None),
                                                                                       ("FAILED", "memory_limit", None)]
        def rows():
            for i in range(count):
                status, verdict, code = outcomes[i % len(outcomes)]
                t = now + i
                yield (jobs[i % len(jobs)], status, verdict, code, t, t, t + 5)
        db.executemany("INSERT INTO execution (job_id, status, verdict, exit_code, script_type, script_snapshot, "
                       "policy_name, policy_snapshot, concurrency, stdout, created_at, started_at, finished_at) "
                       "VALUES (?, ?, ?, ?, 'bash', 'true', 'default', 'limits: {}', 'allow', x'6f6b0a', ?, ?, ?)", rows())
    db.close()
    size = os.path.getsize(database) / (1 << 20)
    print(f"api: listing with {count} executions ({size:.0f} MiB database, filled in {time.monotonic() - started:.1f} s),"
          " paced GETs of 100-row pages:")
    return 0


def cmd_cancel(base, rounds):
    """Cancellation latency of a RUNNING execution: from POST /cancel to the execution being
    final (the route answers 200 once it is, 202 if not yet; then we poll)."""
    c = Client(base)
    job = create_job(c, {"name": unique("bench-cancel"), "script_type": "bash", "script_content": "sleep 60",
                         "concurrency": "allow"})
    latencies = []
    for _ in range(int(rounds)):
        eid = run_until_running(c, job, poll=0.005)
        time.sleep(0.05)
        start = time.monotonic()
        status, e, _ = c.request("POST", f"/executions/{eid}/cancel")
        while e["status"] in ("PENDING", "RUNNING"):
            time.sleep(0.002)
            e = c.request("GET", f"/executions/{eid}")[1]
        latencies.append((time.monotonic() - start) * 1000)
        if e["status"] != "CANCELLED":
            fail(f"execution {eid} ended {e['status']}, not CANCELLED")
    latencies.sort()
    median = latencies[len(latencies) // 2]
    print(f"api: cancel a RUNNING execution  {len(latencies)} rounds  median {median:.1f} ms  max {latencies[-1]:.1f} ms")
    target("cancel a RUNNING execution, slowest round", "< 100 ms", f"{latencies[-1]:.1f} ms", latencies[-1] < 100)
    return 0


def cmd_running(base):
    """Starts a run of a `sleep` job (policy BURNER_POLICY: one whose wall time outlasts the
    measurement) and prints its id once it is RUNNING: an execution whose row still changes
    (lease renewals), so every read of it goes to the store."""
    c = Client(base)
    job = create_job(c, {"name": unique("bench-running"), "script_type": "bash", "script_content": "sleep 600",
                         "policy": os.environ.get("BURNER_POLICY", "default"), "concurrency": "allow"})
    print(run_until_running(c, job, poll=0.01))
    return 0


def run_until_running(c, job, poll):
    """Submits a run of `job` and returns its execution's id once it is RUNNING (30 s at most)."""
    status, run, _ = c.request("POST", f"/executions/{job}/run")
    if status != 200:
        fail(f"run of job {job} -> {status} {run}")
    eid = run["execution_id"]
    deadline = time.monotonic() + 30
    while c.request("GET", f"/executions/{eid}")[1]["status"] != "RUNNING":
        if time.monotonic() > deadline:
            fail(f"execution {eid} never RUNNING")
        time.sleep(poll)
    return eid


def cmd_cancel_one(base, eid):
    c = Client(base)
    status, e, _ = c.request("POST", f"/executions/{eid}/cancel")
    deadline = time.monotonic() + 30
    while e["status"] in ("PENDING", "RUNNING"):
        if time.monotonic() > deadline:
            fail(f"execution {eid} still {e['status']} 30 s after its cancel")
        time.sleep(0.01)
        e = c.request("GET", f"/executions/{eid}")[1]
    return 0


def submit_and_finish(base, connections, count, path, body, accepted_status):
    """Submits COUNT runs (POST PATH BODY) on CONNECTIONS keep-alive connections, waits until
    none is PENDING or RUNNING; returns (seconds, ids)."""
    ids, errors, next_index, lock = [], [], [0], threading.Lock()

    def submitter():
        c = Client(base)
        while True:
            with lock:
                if next_index[0] >= count or errors:
                    break
                next_index[0] += 1
            while True:
                status, payload, resp = c.request("POST", path, body)
                if status == accepted_status:
                    with lock:
                        ids.append(payload["execution_id"])
                    break
                if status == 503 and payload and payload.get("retry_after") is not None:
                    time.sleep(min(float(resp.getheader("Retry-After") or 1), 1.0))
                    continue
                with lock:
                    errors.append(f"POST {path} -> {status} {payload}")
                break
        c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=submitter) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail(f"{len(errors)} submissions failed, first: {errors[0]}")
    poll = Client(base)
    deadline = t0 + max(120.0, count / 5.0)
    while True:
        status, payload, _ = poll.request("GET", "/executions?status=PENDING,RUNNING&limit=1")
        if status != 200:
            fail(f"GET /executions (poll) -> {status} {payload}")
        if not payload["executions"]:
            break
        if time.monotonic() > deadline:
            fail(f"executions still unfinished after {deadline - t0:.0f} s")
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    for eid in ids:
        status, e, _ = poll.request("GET", f"/executions/{eid}")
        if status != 200 or e.get("status") != "SUCCESS":
            fail(f"execution {eid}: {status} {e.get('status') if e else ''} {e.get('reason') if e else ''}")
    poll.close()
    return elapsed, ids


def cmd_adhoc(base, count, connections, script_type="bash", content="true", rounds="4"):
    """Ad-hoc runs against runs of a stored job with the same script, side by side: interleaved
    rounds of each, so that both see the same machine; the difference is the script's storage."""
    count, connections, rounds = int(count), int(connections), int(rounds)
    setup = Client(base)
    job = create_job(setup, {"name": unique(f"bench-adhoc-{script_type}"), "script_type": script_type,
                             "script_content": content, "concurrency": "allow"})
    adhoc_body = {"script_type": script_type, "script_content": content}
    for path, body in ((f"/executions/{job}/run?wait=true", {}), ("/executions?wait=true", adhoc_body)):
        status, payload, _ = setup.request("POST", path, body)   # warm-up: warm sandboxes, cached statements
        if status != 200 or payload.get("status") != "SUCCESS":
            fail(f"warm-up {path} -> {status} {payload}")
    per_round = max(1, count // rounds)
    stored_s = adhoc_s = 0.0
    for _ in range(rounds):
        stored_s += submit_and_finish(base, connections, per_round, f"/executions/{job}/run", {}, 200)[0]
        adhoc_s += submit_and_finish(base, connections, per_round, "/executions", adhoc_body, 201)[0]
    total = per_round * rounds
    stored_rate, adhoc_rate = total / stored_s, total / adhoc_s
    label = f"{script_type} {content}"
    print(f"api: ad-hoc runs {label:<14} {total} in {adhoc_s:.2f} s = {adhoc_rate:.0f} executions/s (POST /executions); "
          f"runs of a stored job {total} in {stored_s:.2f} s = {stored_rate:.0f}/s "
          f"({rounds} interleaved rounds each) → ad-hoc ×{adhoc_rate / stored_rate:.2f}")
    return 0


if __name__ == "__main__":
    commands = {"wait-health": cmd_wait_health, "setup": cmd_setup, "e2e": cmd_e2e, "adhoc": cmd_adhoc, "burn": cmd_burn, "wrk": cmd_wrk,
                "probe": cmd_probe, "cancel": cmd_cancel, "fill": cmd_fill, "running": cmd_running,
                "cancel-one": cmd_cancel_one, "targets": cmd_targets}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    sys.exit(commands[sys.argv[1]](*sys.argv[2:]))
