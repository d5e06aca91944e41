"""Stopping `corral serve` with requests in flight, as the official clients see it."""

from __future__ import annotations

import signal
import threading

import ollama
import openai

from clients import ollama_client, openai_client
from harness import Corral, poll_until

MESSAGES = [{"role": "user", "content": "Say hello."}]
# The mock streams an `endless*` model until its client goes away.
ENDLESS = "endless"


def test_a_second_signal_ends_running_streams_with_an_api_error(tmp_path_factory, mock):
    """SIGTERM lets running requests finish; a second one cuts them at once. A cut stream
    ends with an error event in its dialect, so each client raises its own API error rather
    than a transport error, and every request is on record in a log that verifies."""
    root = tmp_path_factory.mktemp("shutdown")
    gate = Corral(data_dir=root / "data").serve(mock.url, root / "audit.ndjson")
    key = gate.new_key("shutdown-user", "user")
    started = {"ollama": threading.Event(), "openai": threading.Event()}
    raised: dict[str, BaseException] = {}

    def ollama_stream() -> None:
        try:
            with ollama_client(gate, key) as c:
                for _ in c.chat(model=ENDLESS, messages=MESSAGES, stream=True):
                    started["ollama"].set()
        except BaseException as e:  # noqa: BLE001 - the test inspects what was raised
            raised["ollama"] = e

    def openai_stream() -> None:
        try:
            with openai_client(gate, key) as c:
                stream = c.chat.completions.create(model=ENDLESS, messages=MESSAGES, stream=True)
                for _ in stream:
                    started["openai"].set()
        except BaseException as e:  # noqa: BLE001
            raised["openai"] = e

    threads = [threading.Thread(target=f, daemon=True) for f in (ollama_stream, openai_stream)]
    for t in threads:
        t.start()
    try:
        poll_until(lambda: all(e.is_set() for e in started.values()), 10.0, what="both streams running")
        gate.server.proc.send_signal(signal.SIGTERM)
        # Two signals that arrive together are one (as Unix signals are): the second is sent
        # once the gate has said it took the first, and the streams still run meanwhile.
        poll_until(
            lambda: "signal again" in gate.server.stderr_text(), 5.0, what="first signal taken"
        )
        assert gate.server.proc.poll() is None
        assert all(t.is_alive() for t in threads), raised
    finally:
        code = gate.stop()  # the second SIGTERM
    for t in threads:
        t.join(10.0)
        assert not t.is_alive(), "a client still waits for a stream the gate cut"
    assert code == 0, f"corral serve exited {code}\n{gate.server.stderr_text()}"

    assert isinstance(raised.get("ollama"), ollama.ResponseError), repr(raised.get("ollama"))
    assert "shutting down" in str(raised["ollama"]), str(raised["ollama"])
    assert isinstance(raised.get("openai"), openai.APIError), repr(raised.get("openai"))
    assert not isinstance(raised["openai"], openai.APIConnectionError), repr(raised["openai"])
    assert "shutting down" in str(raised["openai"]), str(raised["openai"])

    verify = gate.verify_audit()
    assert verify.returncode == 0, verify.stdout + verify.stderr
    cut = [r for r in gate.audit_records() if r["corral"].get("reason") == "gate_shutdown"]
    assert len(cut) == 2, cut
