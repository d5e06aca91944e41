"""Processes under test: the real `corral` binary and the `mock-ollama` upstream.

Everything binds 127.0.0.1 port 0; the port is read from the first stdout line, which both
binaries print as part of their contract. Every wait is a poll with a deadline.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEY_RE = re.compile(r"^crl_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}$")

STARTUP_DEADLINE_S = 20.0
SHUTDOWN_DEADLINE_S = 15.0
CLI_DEADLINE_S = 30.0


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def binary(env_var: str, name: str) -> Path:
    """The binary to test: `$env_var` if set, else target/debug/NAME (built by scripts/test.sh)."""
    path = Path(os.environ.get(env_var) or target_dir() / "debug" / name)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"{path} is missing: build it first (`cargo build --workspace --bins`) "
            f"or point {env_var} at it"
        )
    return path


class Server:
    """A child process whose stdout lines are collected by a thread so the pipe never fills."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self.lines.put(None)

    def first_line(self, deadline_s: float = STARTUP_DEADLINE_S) -> str:
        try:
            line = self.lines.get(timeout=deadline_s)
        except queue.Empty:
            self.kill()
            raise RuntimeError(
                f"{self.argv[0]} printed nothing within {deadline_s}s\n{self.stderr_text()}"
            ) from None
        if line is None:
            code = self.proc.wait(timeout=5)
            raise RuntimeError(
                f"{self.argv[0]} exited with {code} before announcing its port\n{self.stderr_text()}"
            )
        return line

    def stderr_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def terminate(self, deadline_s: float = SHUTDOWN_DEADLINE_S) -> int:
        """SIGTERM, then wait with a deadline; returns the exit code. Kills on timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"{self.argv[0]} ignored SIGTERM for {deadline_s}s\n{self.stderr_text()}"
            ) from None
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def parse_port(line: str, pattern: str) -> int:
    m = re.fullmatch(pattern, line.strip())
    if not m:
        raise RuntimeError(f"unexpected first stdout line {line!r} (wanted {pattern})")
    return int(m.group(1))


@dataclass
class Mock:
    server: Server
    port: int
    _ends: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ends(self) -> list[dict]:
        """With `--report-ends`: every response the mock saw end so far, in order, as
        `{"end": "completed"|"disconnected"|"aborted", "method", "path", "unix_ms"}`."""
        while True:
            try:
                line = self.server.lines.get_nowait()
            except queue.Empty:
                break
            if line is None:  # the mock exited; keep the marker for later calls
                self.server.lines.put(None)
                break
            self._ends.append(json.loads(line))
        return list(self._ends)


def start_mock(workdir: Path, *extra: str) -> Mock:
    exe = binary("MOCK_OLLAMA_BIN", "mock-ollama")
    server = Server([str(exe), "--listen", "127.0.0.1:0", *extra], workdir / "mock-ollama.stderr")
    port = parse_port(server.first_line(), r"listening on (?:http://)?127\.0\.0\.1:(\d+)")
    return Mock(server, port)


@dataclass
class Corral:
    """One data dir (keys + audit log), optionally a config, and the CLI over them."""

    data_dir: Path
    config: Path | None = None
    exe: Path = field(default_factory=lambda: binary("CORRAL_BIN", "corral"))

    def base_argv(self) -> list[str]:
        argv = [str(self.exe), "--data-dir", str(self.data_dir)]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        return argv

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("CORRAL_DATA_DIR", None)
        env.pop("CORRAL_CONFIG", None)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.base_argv() + list(args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_DEADLINE_S,
            env=self.env(),
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"corral {' '.join(args)} exited {proc.returncode}\n"
                f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def create_key(self, name: str, policy: str = "user") -> str:
        out = self.cli("keys", "create", name, "--policy", policy)
        secret = out.stdout.strip()
        if not KEY_RE.match(secret):
            raise AssertionError(f"`keys create` printed {out.stdout!r}, not a key alone")
        return secret

    def create_key_json(self, name: str, policy: str = "user", *extra: str) -> dict:
        out = self.cli("keys", "create", name, "--policy", policy, "--json", *extra)
        return json.loads(out.stdout)

    def revoke(self, name: str) -> None:
        self.cli("keys", "revoke", name)

    def rotate(self, name: str) -> str:
        out = self.cli("keys", "rotate", name)
        secret = out.stdout.strip()
        if not KEY_RE.match(secret):
            raise AssertionError(f"`keys rotate` printed {out.stdout!r}, not a key alone")
        return secret

    def list_keys(self) -> list[dict]:
        return json.loads(self.cli("keys", "list", "--json").stdout)

    def serve(self, upstream: str, audit_log: Path, *extra: str) -> "Gate":
        argv = self.base_argv() + [
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--audit-log",
            str(audit_log),
            *extra,
        ]
        server = Server(argv, self.data_dir.parent / f"{self.data_dir.name}.corral.stderr", self.env())
        port = parse_port(server.first_line(), r"listening on http://127\.0\.0\.1:(\d+)")
        gate = Gate(self, server, port, audit_log)
        gate.wait_ready()
        return gate


@dataclass
class Gate:
    corral: Corral
    server: Server
    port: int
    audit_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, deadline_s: float = STARTUP_DEADLINE_S) -> None:
        """The port is announced after bind, but poll once so a slow accept loop cannot flake."""
        end = time.monotonic() + deadline_s
        last: Exception | None = None
        while time.monotonic() < end:
            if self.server.proc.poll() is not None:
                raise RuntimeError(f"corral serve exited early\n{self.server.stderr_text()}")
            try:
                # No key: any HTTP answer (401) proves the listener serves requests.
                urllib.request.urlopen(self.url + "/api/version", timeout=2)
                return
            except urllib.error.HTTPError:
                return
            except OSError as e:  # connection refused while starting
                last = e
                time.sleep(0.05)
        raise RuntimeError(f"corral serve not answering on {self.url}: {last}")

    def new_key(self, name: str, policy: str = "user", deadline_s: float = 1.0) -> str:
        """Creates a key with the CLI and waits (bounded: the gate promises 1 s) until the
        running gate accepts it."""
        key = self.corral.create_key(name, policy)
        auth = {"Authorization": f"Bearer {key}"}
        poll_until(
            lambda: raw_request(self.url + "/api/version", headers=auth)[0] != 401,
            deadline_s,
            what=f"key {name!r} accepted by the running gate",
        )
        return key

    def stop(self) -> int:
        return self.server.terminate()

    def verify_audit(self) -> subprocess.CompletedProcess[str]:
        return self.corral.cli("audit", "verify", str(self.audit_log), check=False)

    def audit_records(self) -> list[dict]:
        return [json.loads(line) for line in self.audit_log.read_text("utf-8").splitlines() if line]


def raw_request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP exchange for the few checks no official client can express."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def poll_until(predicate, deadline_s: float, interval_s: float = 0.05, what: str = "condition"):
    """Call `predicate` until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + deadline_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"{what} not reached within {deadline_s}s")
        time.sleep(interval_s)
