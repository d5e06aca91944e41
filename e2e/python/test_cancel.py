"""A Python client that leaves a request early cancels the upstream generation at once.

Each official client is stopped the way its users stop it (leaving the loop, closing the
stream, leaving a `with` block, cancelling a task, a client-side timeout); the mock upstream,
run with `--report-ends`, says when and how each of its responses ended.
"""

from __future__ import annotations

import asyncio
import time

import anthropic
import ollama
import openai
import pytest

from clients import CLIENT_TIMEOUT_S, anthropic_client, ollama_client, openai_client
from harness import Corral, poll_until, start_mock

MESSAGES = [{"role": "user", "content": "Tell me a long story."}]
# The mock streams an `endless*` model until its client goes away, and holds a `cold*` model's
# answer back for 1.5 s.
ENDLESS = "endless"
COLD = "cold"
# Generous for a loaded CI machine; the gate itself takes milliseconds.
CANCEL_WITHIN_S = 1.0
# Requests left early so far in this module, for the audit check at its end.
LEFT: list[str] = []


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A mock that reports how each response ended, and a gate of its own in front of it."""
    root = tmp_path_factory.mktemp("cancel")
    mock = start_mock(root, "--report-ends")
    try:
        gate = Corral(data_dir=root / "data").serve(mock.url, root / "audit.ndjson")
        try:
            yield mock, gate, gate.new_key("cancel-user", "user")
        finally:
            code = gate.stop()
            assert code == 0, f"corral serve exited {code} on SIGTERM\n{gate.server.stderr_text()}"
    finally:
        mock.server.terminate()


def upstream_end(mock, path: str, seen: int) -> dict:
    """The end of the next response on `path` after the `seen` ones already over."""
    found: list[dict] = []

    def more() -> bool:
        found[:] = [e for e in mock.ends() if e["path"] == path][seen:]
        return bool(found)

    poll_until(more, 5.0, what=f"the mock seeing the end of {path}")
    return found[0]


def assert_cancelled(stack, path: str, leave) -> None:
    """Runs `leave` (which starts a request on `path`, leaves it early and returns the
    time.time() at which it did) and checks that the upstream saw its client go promptly."""
    mock, _, _ = stack
    seen = len([e for e in mock.ends() if e["path"] == path])
    left_at = leave()
    LEFT.append(path)
    end = upstream_end(mock, path, seen)
    assert end["end"] == "disconnected", f"the upstream request was not cancelled: {end}"
    lag = end["unix_ms"] / 1000 - left_at
    assert lag < CANCEL_WITHIN_S, f"upstream noticed {lag:.3f}s after the client left"


# --- ollama ----------------------------------------------------------------------------------


def test_ollama_leaving_the_loop(stack):
    _, gate, key = stack

    def leave() -> float:
        with ollama_client(gate, key) as c:
            for i, _ in enumerate(c.generate(model=ENDLESS, prompt="count", stream=True)):
                if i == 2:
                    break
            # The generator, no longer referenced, was closed as the loop ended.
            return time.time()

    assert_cancelled(stack, "/api/generate", leave)


def test_ollama_closing_the_stream(stack):
    _, gate, key = stack

    def leave() -> float:
        with ollama_client(gate, key) as c:
            stream = c.chat(model=ENDLESS, messages=MESSAGES, stream=True)
            next(stream)
            next(stream)
            t = time.time()
            stream.close()
            return t

    assert_cancelled(stack, "/api/chat", leave)


def test_ollama_async_task_cancelled(stack):
    _, gate, key = stack

    async def leave() -> float:
        c = ollama.AsyncClient(
            host=gate.url, headers={"Authorization": f"Bearer {key}"}, timeout=CLIENT_TIMEOUT_S
        )
        parts = asyncio.Event()

        async def consume() -> None:
            async for _ in await c.chat(model=ENDLESS, messages=MESSAGES, stream=True):
                parts.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(parts.wait(), 10)
        t = time.time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return t

    assert_cancelled(stack, "/api/chat", lambda: asyncio.run(leave()))


def test_ollama_timeout_on_a_whole_answer(stack):
    """A `stream=False` request the client gives up on, while the model is still loading."""
    _, gate, key = stack

    def leave() -> float:
        c = ollama.Client(
            host=gate.url, headers={"Authorization": f"Bearer {key}"}, timeout=0.3
        )
        with pytest.raises(Exception) as e:  # httpx's timeout: ollama-python does not wrap it
            c.chat(model=COLD, messages=MESSAGES, stream=False)
        assert "timed out" in str(e.value)
        return time.time()

    assert_cancelled(stack, "/api/chat", leave)


# --- openai ----------------------------------------------------------------------------------


def test_openai_leaving_the_with_block(stack):
    _, gate, key = stack

    def leave() -> float:
        with openai_client(gate, key) as c:
            with c.chat.completions.create(model=ENDLESS, messages=MESSAGES, stream=True) as stream:
                for i, _ in enumerate(stream):
                    if i == 2:
                        break
                t = time.time()
            return t

    assert_cancelled(stack, "/v1/chat/completions", leave)


def test_openai_with_streaming_response(stack):
    _, gate, key = stack

    def leave() -> float:
        with openai_client(gate, key) as c:
            with c.completions.with_streaming_response.create(
                model=ENDLESS, prompt="count", stream=True
            ) as resp:
                assert resp.status_code == 200
                for i, _ in enumerate(resp.iter_lines()):
                    if i == 4:
                        break
                t = time.time()
            return t

    assert_cancelled(stack, "/v1/completions", leave)


def test_openai_responses_stream_closed(stack):
    _, gate, key = stack

    def leave() -> float:
        with openai_client(gate, key) as c:
            stream = c.responses.create(model=ENDLESS, input="count", stream=True)
            kinds = [next(iter(stream)).type for _ in range(3)]
            assert kinds[0] == "response.created", kinds
            t = time.time()
            stream.close()
            return t

    assert_cancelled(stack, "/v1/responses", leave)


def test_openai_async_stream_closed(stack):
    _, gate, key = stack

    async def leave() -> float:
        c = openai.AsyncOpenAI(
            base_url=gate.url + "/v1", api_key=key, max_retries=0, timeout=CLIENT_TIMEOUT_S
        )
        stream = await c.chat.completions.create(model=ENDLESS, messages=MESSAGES, stream=True)
        n = 0
        async for _ in stream:
            n += 1
            if n == 3:
                break
        t = time.time()
        await stream.close()
        await c.close()
        return t

    assert_cancelled(stack, "/v1/chat/completions", lambda: asyncio.run(leave()))


def test_openai_timeout_on_a_whole_answer(stack):
    _, gate, key = stack

    def leave() -> float:
        c = openai.OpenAI(base_url=gate.url + "/v1", api_key=key, max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            c.embeddings.create(model=COLD, input="a")
        return time.time()

    assert_cancelled(stack, "/v1/embeddings", leave)


# --- anthropic -------------------------------------------------------------------------------


def test_anthropic_leaving_messages_stream(stack):
    _, gate, key = stack

    def leave() -> float:
        with anthropic_client(gate, key) as c:
            with c.messages.stream(model=ENDLESS, max_tokens=64, messages=MESSAGES) as stream:
                for i, _ in enumerate(stream.text_stream):
                    if i == 2:
                        break
                t = time.time()
            return t

    assert_cancelled(stack, "/v1/messages", leave)


def test_anthropic_async_leaving_messages_stream(stack):
    _, gate, key = stack

    async def leave() -> float:
        c = anthropic.AsyncAnthropic(
            base_url=gate.url, api_key=key, max_retries=0, timeout=CLIENT_TIMEOUT_S
        )
        async with c.messages.stream(model=ENDLESS, max_tokens=64, messages=MESSAGES) as stream:
            n = 0
            async for _ in stream.text_stream:
                n += 1
                if n == 3:
                    break
            t = time.time()
        await c.close()
        return t

    assert_cancelled(stack, "/v1/messages", lambda: asyncio.run(leave()))


def test_the_audit_log_records_every_cancelled_request(stack):
    _, gate, _ = stack

    def cancelled() -> list[dict]:
        return [
            r
            for r in gate.audit_records()
            if r.get("corral", {}).get("model", "").startswith((ENDLESS, COLD))
        ]

    poll_until(
        lambda: len(cancelled()) >= len(LEFT), 3.0, what=f"{len(LEFT)} audit records"
    )
    assert [r["corral"].get("reason") for r in cancelled()] == ["client_disconnected"] * len(LEFT)
