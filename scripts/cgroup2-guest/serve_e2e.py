"""The guest's `confine serve` end-to-end check on real cgroup v2 (run by guest.sh).

The server starts as the only process of /sys/fs/cgroup/system.slice/confine.service, as
systemd starts a unit with Delegate=yes, with its configuration and database in a tmpfs. It must
move itself into the leaf `server` and put the runs in `confine.service/confine/<run>` with the
job's limits; a job is created through the REST API with the admin token and run with wait; a
memory hog ends as memory_limit with an OOM kill counted; SIGTERM stops the server and no run
cgroup is left. Standard library only; every wait is bounded.

    python3 serve_e2e.py CONFINE POLICIES
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

CGROOT = "/sys/fs/cgroup"
UNIT = CGROOT + "/system.slice/confine.service"


def fail(message):
    print("serve-e2e: FAILED: " + message, flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
    print("serve-e2e: ok: " + message, flush=True)


def read(path):
    with open(path) as f:
        return f.read().strip()


def main():
    confine, policies = sys.argv[1], sys.argv[2]
    work = "/tmp/serve-e2e"
    os.makedirs(work, exist_ok=True)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with open(work + "/confine.yaml", "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\ndatabase: {work}/confine.sqlite\npolicies: {policies}\n"
                "workers: 2\nlog_format: text\nshutdown_grace: 5s\n")
    os.makedirs(UNIT, exist_ok=True)

    def into_unit():
        with open(UNIT + "/cgroup.procs", "w") as f:
            f.write(str(os.getpid()))

    log = open(work + "/server.log", "w")
    server = subprocess.Popen([confine, "serve", "--config", work + "/confine.yaml"], cwd=work,
                              stdout=log, stderr=subprocess.STDOUT, preexec_fn=into_unit)
    try:
        run_checks(server, work, port)
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
        print("---- server log ----")
        print(open(work + "/server.log").read()[-4000:])
    base = UNIT + "/confine"
    leftovers = [d for d in os.listdir(base) if os.path.isdir(base + "/" + d)] if os.path.isdir(base) else []
    check(leftovers == [], f"no run cgroup left under {UNIT}/confine after the stop ({leftovers})")


def run_checks(server, work, port):
    token_file = work + "/admin.token"  # beside the database
    deadline = time.time() + 30
    while not os.path.exists(token_file) or os.path.getsize(token_file) == 0:
        if server.poll() is not None:
            fail(f"the server exited with status {server.returncode} before writing {token_file}")
        if time.time() > deadline:
            fail(f"no {token_file} within 30 s")
        time.sleep(0.1)
    token = read(token_file)

    def request(method, path, body=None, timeout=60):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Authorization": "Bearer " + token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    while True:
        try:
            status, _ = request("GET", "/health", timeout=2)
            if status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            fail("/health did not answer 200 within 30 s")
        time.sleep(0.1)

    own = read(f"/proc/{server.pid}/cgroup")
    check(own == "0::/system.slice/confine.service/server",
          f"the server moved itself into the leaf confine.service/server (it is in {own!r})")
    enabled = read(UNIT + "/cgroup.subtree_control").split()
    check({"cpu", "memory", "pids"} <= set(enabled), f"confine.service delegates cpu, memory, pids ({enabled})")
    status, ready = request("GET", "/ready")
    check(status == 200, f"/ready answers 200 ({status}: {ready})")

    status, job = request("POST", "/jobs", {"name": "v2-hello", "script_type": "python",
                                            "script_content": "import os\nprint('hello from cgroup v2')\n"})
    check(status == 200, f"POST /jobs answers 200 ({status}: {job})")
    status, done = request("POST", f"/executions/{job['id']}/run?wait=true&wait_timeout=60")
    check(status == 200 and done["status"] == "SUCCESS" and done["verdict"] == "exited" and done["exit_code"] == 0,
          f"the job ran with wait: SUCCESS, exited 0 ({status}: {done})")
    check("hello from cgroup v2" in done["stdout"], "its stdout came back")
    peak = (done.get("usage") or {}).get("memory_peak_bytes")
    check(isinstance(peak, int) and peak > 0, f"its peak memory is reported ({peak})")

    # A run in progress: its cgroup sits under the unit with the job's limits.
    status, sleeper = request("POST", "/jobs", {"name": "v2-sleeper", "script_type": "bash",
                                                "script_content": "sleep 3\n",
                                                "limits": {"memory": "48MiB", "processes": 12}})
    check(status == 200, f"POST /jobs (sleeper) answers 200 ({status}: {sleeper})")
    status, queued = request("POST", f"/executions/{sleeper['id']}/run")
    check(status in (200, 201, 202), f"the sleeper was queued ({status}: {queued})")
    # Warm sandboxes wait in run cgroups of their own: the sleeper's is the one holding `sleep 3`.
    def runs_with_sleep():
        base = UNIT + "/confine"
        found = []
        for d in (os.listdir(base) if os.path.isdir(base) else []):
            try:
                pids = read(f"{base}/{d}/cgroup.procs").split()
                if any(open(f"/proc/{p}/cmdline", "rb").read().startswith(b"sleep\0" + b"3") for p in pids):
                    found.append(f"{base}/{d}")
            except OSError:
                pass
        return found
    runs, deadline = [], time.time() + 20
    while not runs and time.time() < deadline:
        runs = runs_with_sleep()
        time.sleep(0.05)
    check(len(runs) == 1, f"one run cgroup holds the sleeper's processes ({runs})")
    run = runs[0]
    check(read(run + "/memory.max") == str(48 << 20), f"{run}/memory.max is 48 MiB ({read(run + '/memory.max')})")
    check(read(run + "/memory.swap.max") == "0", "swap is off for the run")
    check(read(run + "/pids.max") == "12", f"pids.max is 12 ({read(run + '/pids.max')})")
    check(read(run + "/cpu.max") == "100000 100000", f"cpu.max is one core ({read(run + '/cpu.max')})")
    status, ended = request("GET", f"/executions/{queued['execution_id']}")
    deadline = time.time() + 30
    while ended.get("status") in ("PENDING", "RUNNING") and time.time() < deadline:
        time.sleep(0.2)
        status, ended = request("GET", f"/executions/{queued['execution_id']}")
    check(ended.get("status") == "SUCCESS", f"the sleeper finished ({ended.get('status')}, {ended.get('verdict')})")

    status, hog = request("POST", "/jobs", {"name": "v2-hog", "script_type": "python",
                                            "script_content": "b = []\nwhile True:\n    b.append(bytearray(8 << 20))\n",
                                            "limits": {"memory": "64MiB"}})
    check(status == 200, f"POST /jobs (memory hog) answers 200 ({status}: {hog})")
    status, done = request("POST", f"/executions/{hog['id']}/run?wait=true&wait_timeout=60")
    check(status == 200 and done["verdict"] == "memory_limit",
          f"the memory hog ended as memory_limit ({status}: {done.get('status')}, {done.get('verdict')}, {done.get('reason')})")
    status, metrics = request("GET", "/metrics")
    oom = [l for l in str(metrics).splitlines() if l.startswith("confine_oom_kills_total")]
    check(oom and float(oom[0].split()[-1]) >= 1, f"the OOM kill is counted ({oom})")


if __name__ == "__main__":
    main()
