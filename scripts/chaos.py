#!/usr/bin/env python3
"""`make chaos`: kill -9 of `confine serve` under a steady submission load (standard library only).

    scripts/chaos.py BIN        BIN: the confine binary (.build/debug/confine by default in make)

Starts BIN on a database and a port of its own, creates a few jobs (a quick `true`, a Python
print, a sleep, an output writer), and keeps submitting runs of them from CHAOS_CLIENTS (2)
threads. CHAOS_CYCLES (20) times, at a random point while executions are pending and running, it
kills the server with SIGKILL, notes what the dead server left (its sandbox processes, its run
cgroups `<pid>-<n>` under the `confine` parent of every hierarchy, mounts of its runs on the host,
entries in the server's TMPDIR), restarts it, and checks after the restart's cleanup that

  - every execution a client was given an id for exists, final or PENDING/RUNNING;
  - none of what the dead server left survives.

After the last cycle the server runs until every accepted execution is final, and each must be
final with a true reason: SUCCESS with exactly its script's output, or FAILED with verdict
`interrupted` when a kill fell while it ran (started before that kill, ended at a restart, with
the output it had written so far). Anything else is lost.

Prints executions submitted, accepted, finished and lost (must be 0), and the orphans found
after the kills and removed by the restarts (none may survive). Exits 1 when an execution was
lost or something survived; 2 when the harness itself failed.

Environment: CHAOS_CYCLES (20), CHAOS_CLIENTS (2), CHAOS_WORKERS (2), CHAOS_SEED (random),
CHAOS_KEEP=1 keeps the working folder (server log, database) for a look afterwards.

PostgreSQL mode (CHAOS_POSTGRES=1, `make chaos-postgres`, inside scripts/with-postgres.sh, which
gives CONFINE_TEST_POSTGRES_URL): three nodes (node_timeout 3s) on one new database share the
load (each client submits to a node at random); each cycle kills one node at random and starts it
again under the same node name. The same checks hold; an execution interrupted by a kill ends
either at its node's restart or, when another node saw it dead first, by that node's takeover.
"""
import glob
import http.client
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the repository
from confine_harness import runnable_binary, FINAL, REPO, Client, HarnessError, Server, parse_date, proc_stat
CYCLES = int(os.environ.get("CHAOS_CYCLES", "20"))
CLIENTS = int(os.environ.get("CHAOS_CLIENTS", "2"))
WORKERS = int(os.environ.get("CHAOS_WORKERS", "2"))
SEED = int(os.environ.get("CHAOS_SEED", str(random.randrange(1 << 30))))
KEEP = os.environ.get("CHAOS_KEEP") == "1"
SLACK_S = 0.05  # the server's dates have millisecond precision; the driver's clock is the same

WRITER_LINES = 20
JOBS = [  # name, script type, script, expected stdout of a complete run, weight
    ("chaos-quick", "bash", "true", "", 4),
    ("chaos-python", "python", "print('ok')", "ok\n", 2),
    ("chaos-sleep", "bash", "sleep 0.5", "", 2),
    ("chaos-writer", "bash", f'for i in $(seq 1 {WRITER_LINES}); do echo "line $i"; sleep 0.025; done',
     "".join(f"line {i}\n" for i in range(1, WRITER_LINES + 1)), 2),
]


def log(message):
    print(f"chaos: {message}", flush=True)


# --- What a server leaves behind --------------------------------------------------------------

def descendants(root):
    """Every process under `root`, as {pid: starttime}."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st:
                children.setdefault(st[1], []).append((int(entry), st[2]))
    found, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            found[pid] = start
            todo.append(pid)
    return found


def cgroup_parents():
    return [d for d in glob.glob("/sys/fs/cgroup/*/confine") + ["/sys/fs/cgroup/confine"] if os.path.isdir(d)]


def run_cgroups_of(pid):
    """Run cgroup directories named after `pid` (`<pid>-<n>`), in every hierarchy."""
    return sorted(d for parent in cgroup_parents() for d in glob.glob(f"{parent}/{pid}-*") if os.path.isdir(d))


def cgroup_processes(dirs):
    pids = set()
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return pids


def sandbox_mounts():
    """Host mount points that belong to a sandbox's construction (they must never show)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted(p for p in points if "/newroot" in p or "/oldroot" in p)


class Leftovers:
    """What a dead server left: found right after the kill, checked again after the restart."""

    def __init__(self, dead_pid, tree, tmpdir):
        self.dead_pid, self.tree, self.tmpdir = dead_pid, tree, tmpdir

    def scan(self):
        alive = set()
        for pid, start in self.tree.items():
            st = proc_stat(pid)
            if st and st[2] == start and st[0] != "Z":
                alive.add(pid)
        groups = run_cgroups_of(self.dead_pid)
        alive |= {p for p in cgroup_processes(groups) if (proc_stat(p) or ("Z",))[0] != "Z"}
        names = sorted({os.path.basename(g) for g in groups})
        temps = sorted(os.listdir(self.tmpdir))
        return {"processes": sorted(alive), "cgroups": names, "mounts": sandbox_mounts(), "temp": temps}


def count(found):
    return sum(len(v) for v in found.values())


# --- The load ---------------------------------------------------------------------------------

class Load:
    """Client threads submitting runs of the jobs, at random, until stopped (to one server, or to
    one of several at random)."""

    def __init__(self, server, jobs, rng):
        self.servers = server if isinstance(server, list) else [server]
        self.server, self.jobs, self.rng = self.servers[0], jobs, rng
        self.lock = threading.Lock()
        self.accepted = {}      # execution id -> job name
        self.submitted = 0      # requests sent to a listening server
        self.unanswered = 0     # sent, but the connection died before an answer (a kill)
        self.refused = {}       # answered without an id: status -> count
        self.problems = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(random.Random(rng.random()),), daemon=True)
                        for _ in range(CLIENTS)]

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()

    def client(self, rng):
        weights = [j["weight"] for j in self.jobs]
        c = Client(self.server, timeout=10)
        while not self.stopping.is_set():
            job = rng.choices(self.jobs, weights)[0]
            c = Client(rng.choice(self.servers), timeout=10)
            try:
                # A connection per request: a request refused while the server is down is known
                # never to have been sent; one cut off was sent, and may or may not have been taken.
                status, payload = c.request("POST", f"/executions/{job['id']}/run", {})
                c.close()
            except ConnectionRefusedError:
                time.sleep(0.05)    # the server is down: nothing was sent
                continue
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.submitted += 1
                    self.unanswered += 1
                time.sleep(0.05)
                continue
            with self.lock:
                self.submitted += 1
                if status in (200, 202) and isinstance(payload, dict) and "execution_id" in payload:
                    self.accepted[payload["execution_id"]] = job["name"]
                else:
                    self.refused[status] = self.refused.get(status, 0) + 1
                    if len(self.problems) < 5:
                        self.problems.append(f"POST run -> {status} {payload}")
            time.sleep(rng.uniform(0.1, 0.4))
        c.close()

    def snapshot(self):
        with self.lock:
            return dict(self.accepted)


# --- Checks -----------------------------------------------------------------------------------

def fetch(client, ids):
    """GET every execution; {id: execution or None when 404}."""
    out = {}
    for i in ids:
        status, payload = client.request("GET", f"/executions/{i}")
        if status == 404:
            out[i] = None
        elif status == 200:
            out[i] = payload
        else:
            raise HarnessError(f"GET /executions/{i} -> {status} {payload}")
    return out


def judge(execution, expected_stdout, kills):
    """None when the execution's final state is true, else why not."""
    status, verdict, reason = execution["status"], execution.get("verdict"), execution.get("reason") or ""
    stdout = execution.get("stdout") or ""
    if status == "SUCCESS":
        if verdict != "exited" or execution.get("exit_code") != 0:
            return f"SUCCESS with verdict {verdict}, exit code {execution.get('exit_code')}"
        if stdout != expected_stdout:
            return f"SUCCESS with stdout {stdout[-80:]!r}, expected {expected_stdout[-80:]!r}"
        return None
    if status == "FAILED" and verdict == "interrupted":
        started, finished = parse_date(execution.get("started_at")), parse_date(execution.get("finished_at"))
        if started is None or finished is None:
            return f"interrupted without started_at/finished_at ({execution.get('started_at')}, {execution.get('finished_at')})"
        if not any(started - SLACK_S <= k <= finished + SLACK_S for k in kills):
            return f"interrupted, but no kill fell between its start and its end ({execution['started_at']} .. {execution['finished_at']})"
        if "server stopped" not in reason and "node_timeout" not in reason:
            return f"interrupted with reason {reason!r}"
        if not expected_stdout.startswith(stdout):
            return f"interrupted with stdout {stdout[-80:]!r}, which is not what its script wrote"
        return None
    return f"{status} (verdict {verdict}, reason {reason!r})"


def tally(executions, accepted, expected, kills):
    """The executions a client was given ids for, judged: those lost (missing or never final),
    those final without a true reason, and the counts by status/verdict and by node."""
    lost, untrue, statuses, nodes = [], [], {}, {}
    for i, e in sorted(executions.items()):
        if e is None or e["status"] not in FINAL:
            lost.append(f"{i}: {'missing' if e is None else e['status']}")
            continue
        why = judge(e, expected[accepted[i]], kills)
        if why:
            untrue.append(f"{i} ({accepted[i]}): {why}")
        key = e["status"] + ("/" + e["verdict"] if e["status"] != "SUCCESS" else "")
        statuses[key] = statuses.get(key, 0) + 1
        nodes[e.get("node")] = nodes.get(e.get("node"), 0) + 1
    return lost, untrue, statuses, nodes


def main_postgres(binary, url):
    """Three nodes on one PostgreSQL database; each cycle kills one at random and restarts it."""
    import subprocess
    import urllib.parse
    import uuid
    rng = random.Random(SEED)
    folder = tempfile.mkdtemp(prefix="confine-chaos-pg.")
    parts = urllib.parse.urlparse(url)
    host = urllib.parse.parse_qs(parts.query).get("host", [parts.hostname or "localhost"])[0]
    name = "confine_chaos_" + uuid.uuid4().hex[:12]

    def psql(statement):
        subprocess.run(["psql", "-h", host, "-p", str(parts.port or 5432), "-U", urllib.parse.unquote(parts.username or ""),
                        "-d", parts.path.lstrip("/"), "-qAt", "-c", statement], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, PGPASSWORD=urllib.parse.unquote(parts.password or "")))

    psql(f"CREATE DATABASE {name}")
    database = urllib.parse.urlunparse(parts._replace(path="/" + name))
    servers = []
    load = None
    try:
        log(f"PostgreSQL mode: 3 nodes, {CYCLES} kill -9 cycles, {CLIENTS} clients, {WORKERS} workers each, seed {SEED}")
        for n in range(3):
            node_folder = os.path.join(folder, f"node{n}")
            os.makedirs(node_folder)
            server = Server(binary, node_folder, WORKERS, extra_config=f"node_name: chaos-node-{n}\nnode_timeout: 3s\n",
                            database=database)
            server.start()
            servers.append(server)
        token = next(s.token for s in servers if s.token)
        for s in servers:
            s.token = token

        def admin():
            return Client(rng.choice([s for s in servers if s.proc.poll() is None]), timeout=10)

        jobs = []
        c = admin()
        for job_name, script_type, script, expected_out, weight in JOBS:
            status, payload = c.request("POST", "/jobs", {"name": job_name, "script_type": script_type,
                                                          "script_content": script, "concurrency": "allow"})
            if status != 200:
                raise HarnessError(f"POST /jobs {job_name} -> {status} {payload}")
            jobs.append({"id": payload["id"], "name": job_name, "expected": expected_out, "weight": weight})
        c.close()
        expected = {j["name"]: j["expected"] for j in jobs}
        load = Load(servers, jobs, rng)
        load.start()
        kills, survived = [], []
        t0 = time.monotonic()
        for cycle in range(1, CYCLES + 1):
            time.sleep(rng.uniform(0.5, 3.0))
            victim = rng.choice(servers)
            pid = victim.proc.pid
            tree = descendants(pid)
            kills.append(time.time())
            victim.kill()
            leftovers = Leftovers(pid, tree, victim.tmpdir)
            time.sleep(rng.uniform(0, 4))  # sometimes past node_timeout: the other nodes take over
            victim.start()
            victim.token = token
            left = leftovers.scan()
            if count(left):
                survived.append(f"cycle {cycle}: {left}")
            accepted = load.snapshot()
            c = admin()
            executions = fetch(c, accepted)
            c.close()
            missing = sorted(i for i, e in executions.items() if e is None)
            if missing:
                raise HarnessError(f"after cycle {cycle}: executions missing {missing[:10]}")
            log(f"cycle {cycle:2}: killed node {os.path.basename(victim.folder)} (pid {pid}), restarted; "
                f"{len(accepted)} ids accepted so far, all found")
        load.stop()
        accepted = load.snapshot()
        deadline = time.monotonic() + 300
        c = admin()
        while True:
            executions = fetch(c, accepted)
            open_ = [i for i, e in executions.items() if e is None or e["status"] not in FINAL]
            if not open_ or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lost, untrue, statuses, nodes = tally(executions, accepted, expected, kills)
        finished = sum(statuses.values())
        print()
        print(f"Confine chaos, PostgreSQL mode — {CYCLES} kill -9 of one of 3 nodes under load (seed {SEED})")
        print(f"  accepted             {len(accepted):6}   ({load.unanswered} cut off by a kill before any answer)")
        print(f"  finished             {finished:6}   ({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))})")
        print(f"  ran on               {', '.join(f'{k} {v}' for k, v in sorted(nodes.items(), key=str))}")
        print(f"  lost                 {len(lost) + len(untrue):6}   (must be 0); {time.monotonic() - t0:.0f} s in all")
        failures = lost + untrue + survived + load.problems
        for line in failures[:20]:
            print(f"  FAIL {line}")
        return 1 if failures else 0
    except HarnessError as e:
        log(f"ERROR {e}")
        for s in servers:
            sys.stderr.write(s.log_tail())
        return 2
    finally:
        if load:
            load.stopping.set()
        for s in servers:
            if s.proc and s.proc.poll() is None:
                s.stop()
        try:
            psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except subprocess.CalledProcessError:
            pass
        if KEEP:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main():
    binary, status = runnable_binary(sys.argv, log)
    if binary is None:
        return status
    if os.environ.get("CHAOS_POSTGRES") == "1":
        url = os.environ.get("CONFINE_TEST_POSTGRES_URL")
        if not url:
            log("CHAOS_POSTGRES=1 needs CONFINE_TEST_POSTGRES_URL (make chaos-postgres runs it inside scripts/with-postgres.sh)")
            return 2
        return main_postgres(binary, url)
    rng = random.Random(SEED)
    folder = tempfile.mkdtemp(prefix="confine-chaos.")
    server = Server(binary, folder, WORKERS)
    load = None
    try:
        baseline_mounts = sandbox_mounts()
        if baseline_mounts:
            raise HarnessError(f"sandbox mounts are visible on the host before the run: {baseline_mounts}")
        log(f"{CYCLES} kill -9 cycles, {CLIENTS} submitting clients, {WORKERS} workers, seed {SEED}; {binary}")
        server.start()
        admin = Client(server)
        jobs = []
        for name, script_type, script, expected, weight in JOBS:
            status, payload = admin.request("POST", "/jobs", {
                "name": name, "script_type": script_type, "script_content": script, "concurrency": "allow"})
            if status != 200:
                raise HarnessError(f"POST /jobs {name} -> {status} {payload}")
            jobs.append({"id": payload["id"], "name": name, "expected": expected, "weight": weight})
        expected = {j["name"]: j["expected"] for j in jobs}
        load = Load(server, jobs, rng)
        load.start()

        kills, found_total, removed_total, survived = [], {}, 0, []
        at_kill = {"PENDING": [], "RUNNING": []}
        t0 = time.monotonic()
        for cycle in range(1, CYCLES + 1):
            time.sleep(rng.uniform(0.5, 3.0))
            # What the server is doing at the kill: the store's view, then the process tree.
            for state in at_kill:
                status, payload = admin.request("GET", f"/executions?status={state}&limit=1000")
                if status == 200:
                    at_kill[state].append(len(payload["executions"]))
            pid = server.proc.pid
            tree = descendants(pid)
            kills.append(time.time())
            server.kill()
            admin.close()
            leftovers = Leftovers(pid, tree, server.tmpdir)
            found = leftovers.scan()
            server.start()
            left = leftovers.scan()
            left["mounts"] = [m for m in left["mounts"] if m not in baseline_mounts]
            for kind, items in found.items():
                found_total[kind] = found_total.get(kind, 0) + len(items)
            removed_total += count(found) - count(left)
            if count(left):
                survived.append(f"cycle {cycle}: {left}")
            # Every id handed out so far is there, final or runnable.
            accepted = load.snapshot()
            executions = fetch(admin, accepted)
            missing = sorted(i for i, e in executions.items() if e is None)
            odd = sorted(i for i, e in executions.items() if e and e["status"] not in FINAL | {"PENDING", "RUNNING"})
            if missing or odd:
                raise HarnessError(f"after restart {cycle}: executions missing {missing[:10]}, in no known state {odd[:10]}")
            log(f"cycle {cycle:2}: killed pid {pid} ({len(tree)} sandbox processes), left {count(found)} "
                f"(processes {len(found['processes'])}, cgroups {len(found['cgroups'])}), after restart {count(left)}; "
                f"{len(accepted)} ids accepted so far, all found")
        load.stop()

        # Let the last server finish everything, then judge every execution.
        accepted = load.snapshot()
        deadline = time.monotonic() + 300
        while True:
            executions = fetch(admin, accepted)
            open_ = [i for i, e in executions.items() if e is None or e["status"] not in FINAL]
            if not open_ or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lost, untrue, statuses, _ = tally(executions, accepted, expected, kills)
        rc = server.stop()
        stopped_clean = rc == 0

        finished = sum(statuses.values())
        print()
        print(f"Confine chaos — {CYCLES} kill -9 of confine serve under load ({CLIENTS} clients, {WORKERS} workers, seed {SEED})")
        refused = sum(load.refused.values())
        print(f"  executions submitted {load.submitted:6}   (sent to a listening server)")
        print(f"  accepted             {len(accepted):6}   (given an id; {load.unanswered} sent but cut off by a kill "
              f"before any answer, {refused} refused{': ' + str(load.refused) if refused else ''})")
        print(f"  finished             {finished:6}   ({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))})")
        print(f"  lost                 {len(lost) + len(untrue):6}   (must be 0: missing, never final, or final without a true reason)")
        pending, running = at_kill["PENDING"] or [0], at_kill["RUNNING"] or [0]
        print(f"  at the kills         PENDING {sum(pending) / len(pending):.0f} on average (at most {max(pending)}), "
              f"RUNNING {sum(running) / len(running):.1f} (at most {max(running)}); {time.monotonic() - t0:.0f} s in all")
        print(f"  orphans found        {sum(found_total.values()):6}   "
              f"({', '.join(f'{k} {v}' for k, v in found_total.items())}: what the killed servers left, "
              f"seen right after each kill)")
        print(f"  orphans removed      {removed_total:6}   (gone once the restarted server answered: sandbox processes end "
              f"by their parent-death signal, run cgroups by the restart's cleanup; survived: {len(survived)})")
        failures = lost + untrue + survived + load.problems
        if not stopped_clean:
            failures.append(f"the last server exited with status {rc} on SIGTERM")
        for line in failures[:20]:
            print(f"  FAIL {line}")
        return 1 if failures else 0
    except HarnessError as e:
        log(f"ERROR {e}")
        sys.stderr.write(server.log_tail())
        return 2
    finally:
        if load:
            load.stopping.set()
        if server.proc and server.proc.poll() is None:
            server.kill()
        if KEEP:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
