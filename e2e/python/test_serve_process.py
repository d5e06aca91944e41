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
