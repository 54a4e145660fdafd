"""What scripts/chaos.py and scripts/soak.py share: a `confine serve` of their own on a temporary
database and a free port, a keep-alive HTTP client, and /proc readings (standard library only)."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FINAL = {"SUCCESS", "FAILED", "CANCELLED", "TIMED_OUT"}


class HarnessError(Exception):
    """The harness itself could not do its work (not a finding about Confine)."""


def runnable_binary(argv, log):
    """The confine binary named on the command line (default: the debug build), and None with
    the exit status when the scenario cannot run here: 2 without the binary, 0 (skipped, said
    so) without root, which the sandbox needs for namespaces and cgroups."""
    binary = os.path.abspath(argv[1]) if len(argv) > 1 else os.path.join(REPO, ".build/debug/confine")
    if not os.access(binary, os.X_OK):
        log(f"{binary} not found; build it first (swift build --product confine)")
        return None, 2
    if os.geteuid() != 0:
        log("skipped: the sandbox needs root here (namespaces, cgroups); run as root")
        return None, 0
    return binary, None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def parse_date(text):
    return None if text is None else datetime.fromisoformat(text).timestamp()


class Client:
    """One keep-alive connection to the current server; any failure closes it."""

    def __init__(self, server, timeout=10):
        self.server, self.timeout, self.conn = server, timeout, None

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.server.token:
            headers["Authorization"] = "Bearer " + self.server.token
        # A GET on a kept-alive connection the server closed while it was idle (idle_timeout)
        # is sent again once on a new one; anything else that fails is the caller's business
        # (a POST cut off may have been taken: sending it again would be a second submission).
        reused = self.conn is not None
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt or not reused or method != "GET":
                    raise
            except BaseException:
                self.close()
                raise
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return resp.status, payload

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Server:
    """`confine serve` on `folder`/confine.sqlite with a copy of the repository's policies (plus
    `extra_policies`: name -> YAML), its log appended to `folder`/server.log, its TMPDIR
    `folder`/server-tmp. The port stays the same across restarts unless it was taken."""

    def __init__(self, binary, folder, workers, extra_config="", extra_policies=None, database=None):
        """`database`: a postgres:// URL shared with other servers instead of `folder`/confine.sqlite
        (then the server runs in `folder`, its ./var holds its own files, and only the server that
        made the first token has one: the others' `token` must be set by the caller)."""
        self.binary, self.folder, self.workers, self.extra_config = binary, folder, workers, extra_config
        self.database = database
        self.port = free_port()
        self.tmpdir = os.path.join(folder, "server-tmp")
        os.makedirs(self.tmpdir)
        self.policies = os.path.join(folder, "policies")
        shutil.copytree(os.path.join(REPO, "policies"), self.policies)
        for name, text in (extra_policies or {}).items():
            with open(os.path.join(self.policies, name + ".yaml"), "w") as f:
                f.write(text)
        self.log_path = os.path.join(folder, "server.log")
        self.proc = None
        self.starts = 0
        # The admin token the server wrote beside its database on its first start.
        self.token = None

    def config(self):
        path = os.path.join(self.folder, "confine.yaml")
        with open(path, "w") as f:
            database = f'"{self.database}"' if self.database else f"{self.folder}/confine.sqlite"
            f.write(f"listen: 127.0.0.1:{self.port}\ndatabase: {database}\n"
                    f"policies: {self.policies}\nworkers: {self.workers}\nqueue_limit: 100000\n"
                    f"shutdown_grace: 2s\nlog_format: text\nlog_level: notice\n{self.extra_config}")
        return path

    def start(self):
        for _ in range(3):
            env = dict(os.environ, TMPDIR=self.tmpdir)
            with open(self.log_path, "a") as log_file:
                log_file.write(f"--- start {self.starts + 1} (port {self.port}) ---\n")
                log_file.flush()
                self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config()], stdout=log_file,
                                             stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=self.folder)
            self.starts += 1
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        c.close()
                        token_file = os.path.join(self.folder, "var/admin.token" if self.database else "admin.token")
                        if os.path.exists(token_file) or not self.database:
                            with open(token_file) as f:
                                self.token = f.read().strip()
                        return
                except OSError:
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.kill()
                raise HarnessError(f"the server did not answer /health within 60 s (log: {self.log_path})")
            self.port = free_port()  # it exited: the port may have been taken meanwhile
        raise HarnessError(f"the server exited at start three times (log: {self.log_path})")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM, then its exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
                raise HarnessError("the server did not stop within 30 s of SIGTERM")
        return self.proc.returncode

    def log_tail(self, lines=20):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def proc_stat(pid):
    """(state, ppid, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def proc_status(pid):
    """/proc/PID/status as a dict of its fields (strings)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
