"""What `corral serve` sets up in its own process before it takes connections."""

from __future__ import annotations

from pathlib import Path

RESERVED = 16 * 1024  # corral_gate::fdtable::DEFAULT_RESERVE


def _status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def _soft_nofile(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft = line.split()[3]
            return 1 << 62 if soft == "unlimited" else int(soft)
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


def test_descriptor_table_is_grown_before_the_threads_start(gate):
    """Growing the table later stalls the accepting thread for an RCU grace period at every
    doubling (tens of ms in a multi-threaded process); serve reserves it up front."""
    pid = gate.server.proc.pid
    want = min(RESERVED, _soft_nofile(pid))
    assert int(_status_field(pid, "FDSize")) >= want
    # Reserved, not held: the gate's own descriptors stay few.
    open_fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    assert open_fds < 256, f"{open_fds} descriptors open in an idle gate"


def _serve_with_an_orphaned_key(tmp_path, mock, *extra: str):
    """A gate whose store holds a key bound to a policy its configuration does not define,
    which `serve` warns about at start-up. Returns the stopped gate's exit code and stderr."""
    from harness import Corral

    defines = tmp_path / "defines.toml"
    defines.write_text("[policies.team]\nmodels = [\"llama3.2\"]\n")
    lacks = tmp_path / "lacks.toml"
    lacks.write_text("[policies.other]\nmodels = [\"llama3.2\"]\n")
    Corral(data_dir=tmp_path / "data", config=defines).create_key("orphan", "team")
    g = Corral(data_dir=tmp_path / "data", config=lacks).serve(
        mock.url, tmp_path / "audit.ndjson", *extra
    )
    g.wait_ready()
    code = g.stop()
    return code, g.server.log_path.read_text("utf-8", "replace")


def test_text_log_says_each_warning_once(tmp_path, mock):
    code, stderr = _serve_with_an_orphaned_key(tmp_path, mock)
    assert code == 0, stderr
    warnings = [line for line in stderr.splitlines() if '"orphan"' in line]
    assert len(warnings) == 1, stderr
    assert warnings[0].startswith("corral: WARNING: key \"orphan\" uses policy \"team\"")
    assert "corral: shutting down" in stderr


def test_json_log_keeps_every_stderr_line_json(tmp_path, mock):
    """`--log-format json` is for log shippers: no plain-text line may break the stream."""
    import json

    code, stderr = _serve_with_an_orphaned_key(tmp_path, mock, "--log-format", "json")
    assert code == 0, stderr
    events = []
    for line in stderr.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not JSON on stderr: {line!r}\n{stderr}") from None
    messages = [(e.get("level"), e.get("fields", {}).get("message", "")) for e in events]
    orphan = [m for m in messages if '"orphan"' in m[1]]
    assert len(orphan) == 1 and orphan[0][0] == "WARN", messages
    assert any(level == "INFO" and msg.startswith("gate on http://127.0.0.1:") for level, msg in messages)
    assert any(msg.startswith("shutting down") for _, msg in messages), messages


def test_json_log_says_why_serve_stops_in_json(tmp_path):
    """A start-up refusal is the last line a log shipper sees: it must be JSON too."""
    import json
    import subprocess

    from harness import Corral

    notes = tmp_path / "notes.txt"
    notes.write_text("not an audit log\n")
    c = Corral(data_dir=tmp_path / "data")
    proc = subprocess.run(
        c.base_argv()
        + ["serve", "--listen", "127.0.0.1:0", "--audit-log", str(notes), "--log-format", "json"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        env=c.env(),
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines, "no reason given"
    events = [json.loads(line) for line in lines]
    last = events[-1]
    assert last["level"] == "ERROR", last
    assert "not a corral audit log" in last["fields"]["message"], last
    assert notes.read_text() == "not an audit log\n"
