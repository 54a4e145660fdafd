#!/usr/bin/env python3
"""`make soak`: a steady mix of hostile and ordinary scripts against `confine serve` for a set time
(standard library only).

    scripts/soak.py BIN         BIN: the confine binary

SOAK_CLIENTS (4) clients each run one execution after another (`wait=true`), half of them
ordinary scripts (bash true, a Python sum, a bash writer) and half hostile ones under tighter job
limits (a fork bomb, a memory hog, a CPU spinner, an output flood, a sleeper past its deadline,
a network probe, writes to the read-only root, a read of /etc/shadow), for SOAK_SECONDS (180).
Every SOAK_INTERVAL (15) seconds it samples the server: resident memory, open descriptors,
threads, and the executions finished per second since the last sample.

Bounds (stated before the run, checked after it):
  - memory: the resident size at the end is at most MEMORY_BOUND_MIB (32) above its size at the
    first sample (after the warm-up of the first interval), i.e. no growth with the work done;
  - descriptors and threads: at the end at most FD_BOUND (16) and THREAD_BOUND (8) above the
    first sample;
  - zero lost executions: every execution a client was given an id for is final at the end.
Exits 1 when a bound is broken or an execution was lost, 2 when the harness itself failed.
"""
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the repository
from confine_harness import runnable_binary, FINAL, REPO, Client, HarnessError, Server, open_fds, proc_status  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))
INTERVAL = float(os.environ.get("SOAK_INTERVAL", "15"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "4"))
WORKERS = int(os.environ.get("SOAK_WORKERS", str(os.cpu_count() or 2)))
MEMORY_BOUND_MIB = 32
FD_BOUND = 16
THREAD_BOUND = 8

TIGHT = {"wall_time": "2s", "cpu_time": "1s", "memory": "64MiB", "processes": "32", "stdout": "64KiB", "stderr": "64KiB"}
JOBS = [  # name, script type, script, hostile
    ("soak-true", "bash", "true", False),
    ("soak-python", "python", "print(sum(range(100000)))", False),
    ("soak-writer", "bash", 'for i in $(seq 1 200); do echo "line $i"; done', False),
    ("soak-fork-bomb", "bash", "f() { f | f & }; f; wait", True),
    ("soak-memory-hog", "python", "b = []\nwhile True:\n    b.append(bytearray(1 << 20))", True),
    ("soak-cpu-spin", "bash", "while :; do :; done", True),
    ("soak-output-flood", "bash", "yes 'flood flood flood flood'", True),
    ("soak-sleeper", "bash", "sleep 60", True),
    ("soak-network", "python", "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=1)", True),
    ("soak-write-root", "bash", "echo x > /usr/confine-was-here", True),
    ("soak-read-shadow", "bash", "cat /etc/shadow", True),
]


def log(message):
    print(f"soak: {message}", flush=True)


def sample(pid):
    status = proc_status(pid)
    return {"rss_mib": int(status["VmRSS"].split()[0]) / 1024, "fds": open_fds(pid), "threads": int(status["Threads"])}


def main():
    binary, status = runnable_binary(sys.argv, log)
    if binary is None:
        return status
    folder = tempfile.mkdtemp(prefix="confine-soak.")
    server = Server(binary, folder, WORKERS)
    stopping = threading.Event()
    lock = threading.Lock()
    accepted, finished, verdicts, problems = {}, [0], {}, []
    try:
        server.start()
        admin = Client(server)
        jobs = []
        for name, script_type, script, hostile in JOBS:
            body = {"name": name, "script_type": script_type, "script_content": script, "concurrency": "allow"}
            if hostile:
                body["limits"] = TIGHT
            status, payload = admin.request("POST", "/jobs", body)
            if status != 200:
                raise HarnessError(f"POST /jobs {name} -> {status} {payload}")
            jobs.append((payload["id"], name, hostile))
        ordinary = [j for j in jobs if not j[2]]
        hostile = [j for j in jobs if j[2]]

        def client(seed):
            rng = random.Random(seed)
            c = Client(server, timeout=60)
            while not stopping.is_set():
                job_id, name, _ = rng.choice(hostile if rng.random() < 0.5 else ordinary)
                try:
                    status, payload = c.request("POST", f"/executions/{job_id}/run?wait=true&wait_timeout=30", {})
                except OSError as e:
                    with lock:
                        problems.append(f"POST run {name}: {e}")
                    time.sleep(0.5)
                    continue
                with lock:
                    if status in (200, 202) and isinstance(payload, dict) and "id" in payload:
                        accepted[payload["id"]] = name
                        if payload["status"] in FINAL:
                            finished[0] += 1
                            key = f"{payload['status']}/{payload['verdict']}"
                            verdicts[key] = verdicts.get(key, 0) + 1
                    elif len(problems) < 20:
                        problems.append(f"POST run {name} -> {status} {payload}")
            c.close()

        log(f"{SECONDS:.0f} s of half hostile, half ordinary scripts: {CLIENTS} clients, {WORKERS} workers, "
            f"a sample every {INTERVAL:.0f} s; {binary}")
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        samples = []
        last_finished, last_t = 0, t0
        while True:
            now = time.monotonic()
            if now - t0 >= SECONDS:
                break
            time.sleep(min(INTERVAL, SECONDS - (now - t0)))
            now = time.monotonic()
            s = sample(server.proc.pid)
            with lock:
                done = finished[0]
            s["t"] = now - t0
            s["rate"] = (done - last_finished) / (now - last_t)
            last_finished, last_t = done, now
            samples.append(s)
            log(f"t={s['t']:6.0f} s  rss {s['rss_mib']:7.1f} MiB  fds {s['fds']:4}  threads {s['threads']:3}  "
                f"{s['rate']:6.1f} executions/s")
        stopping.set()
        for t in threads:
            t.join()

        # Every id handed out must be final.
        ids = list(accepted)
        deadline = time.monotonic() + 120
        open_ids = ids
        while open_ids and time.monotonic() < deadline:
            still = []
            for i in open_ids:
                status, payload = admin.request("GET", f"/executions/{i}")
                if status != 200 or payload["status"] not in FINAL:
                    still.append(i)
            open_ids = still
            if open_ids:
                time.sleep(0.5)
        lost = len(open_ids)
        rc = server.stop()

        first, last = samples[0], samples[-1]
        growth = last["rss_mib"] - first["rss_mib"]
        rates = [s["rate"] for s in samples]
        failures = []
        if growth > MEMORY_BOUND_MIB:
            failures.append(f"memory grew {growth:.1f} MiB (bound {MEMORY_BOUND_MIB} MiB)")
        if last["fds"] - first["fds"] > FD_BOUND:
            failures.append(f"descriptors grew {last['fds'] - first['fds']} (bound {FD_BOUND})")
        if last["threads"] - first["threads"] > THREAD_BOUND:
            failures.append(f"threads grew {last['threads'] - first['threads']} (bound {THREAD_BOUND})")
        if lost:
            failures.append(f"{lost} executions lost: {open_ids[:10]}")
        if rc != 0:
            failures.append(f"the server exited with status {rc} on SIGTERM")
        failures += problems[:10]

        print()
        print(f"Confine soak — {SECONDS:.0f} s, half hostile and half ordinary scripts, {CLIENTS} clients, {WORKERS} workers")
        print(f"  executions   {len(accepted)} accepted, {finished[0]} answered final, {lost} lost (must be 0)")
        print(f"  outcomes     {', '.join(f'{k} {v}' for k, v in sorted(verdicts.items()))}")
        print(f"  memory       {first['rss_mib']:.1f} MiB at t={first['t']:.0f} s -> {last['rss_mib']:.1f} MiB at the end "
              f"({growth:+.1f} MiB; bound +{MEMORY_BOUND_MIB} MiB)")
        print(f"  descriptors  {first['fds']} -> {last['fds']} (bound +{FD_BOUND});  "
              f"threads {first['threads']} -> {last['threads']} (bound +{THREAD_BOUND})")
        print(f"  executions/s per interval: {' '.join(f'{r:.1f}' for r in rates)} "
              f"(min {min(rates):.1f}, max {max(rates):.1f})")
        for line in failures:
            print(f"  FAIL {line}")
        return 1 if failures else 0
    except HarnessError as e:
        log(f"ERROR {e}")
        sys.stderr.write(server.log_tail())
        return 2
    finally:
        stopping.set()
        if server.proc and server.proc.poll() is None:
            server.kill()
        if os.environ.get("SOAK_KEEP") == "1":
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
