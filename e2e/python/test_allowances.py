"""A key's request rate (`max_requests_per_minute`) and token quota as the official clients see
them: a 429 with `Retry-After`, raised as each library's own rate-limit error."""

from __future__ import annotations

import signal
import sqlite3
import time

import anthropic
import ollama
import openai
import pytest

import mockfacts as mf
from clients import anthropic_client, ollama_client, openai_client, unique
from harness import Corral, poll_until

MESSAGES = [{"role": "user", "content": "Say hello."}]


def test_a_key_past_its_rate_gets_each_clients_rate_limit_error(gate):
    # The `limited` policy: 3 requests a minute. `new_key` spends one to see the key work.
    name = unique("limited")
    key = gate.new_key(name, "limited")
    with ollama_client(gate, key) as ol:
        assert ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False).message.content
    with openai_client(gate, key) as oa:
        r = oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)
        assert r.choices[0].message.content

    # The minute's allowance is spent.
    with ollama_client(gate, key) as ol:
        with pytest.raises(ollama.ResponseError) as e:
            ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
        assert e.value.status_code == 429
        assert "3 requests per minute" in e.value.error
    with openai_client(gate, key) as oa:
        with pytest.raises(openai.RateLimitError) as e:
            oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)
        assert e.value.status_code == 429
        assert e.value.code == "rate_limited"
        retry_after = int(e.value.response.headers["retry-after"])
        assert 1 <= retry_after <= 20
    with anthropic_client(gate, key) as an:
        with pytest.raises(anthropic.RateLimitError) as e:
            an.messages.create(model=mf.CHAT_MODEL, max_tokens=16, messages=MESSAGES)
        assert e.value.status_code == 429

    # Another key, even of the same policy, has its own allowance.
    other = gate.new_key(unique("limited"), "limited")
    with ollama_client(gate, other) as ol:
        assert ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False).message.content

    def refused():
        return [
            r
            for r in gate.audit_records()
            if r.get("corral", {}).get("reason") == "rate_limited"
            and r.get("user", {}).get("name") == name
        ]

    poll_until(lambda: len(refused()) == 3, 5.0, what="three rate_limited records")
    refused = refused()
    assert all(r["http"]["response"]["status_code"] == 429 for r in refused)
    assert all(r["event"]["action"] == "deny" for r in refused)


def test_a_spent_token_quota_is_raised_at_once_by_sdks_with_their_default_retries(gate):
    # The `quota` policy: 10 tokens a day; one chat (the mock's prompt and answer) spends more.
    name = unique("quota")
    key = gate.new_key(name, "quota")
    with ollama_client(gate, key) as ol:
        assert ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False).message.content

    # Hours until the quota has room again: an SDK that slept through `Retry-After` before each
    # retry (Anthropic's does, for any length) would hold its caller that long.
    clients = [
        (
            openai.OpenAI(base_url=gate.url + "/v1", api_key=key, timeout=10),
            lambda c: c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES),
        ),
        (
            anthropic.Anthropic(base_url=gate.url, api_key=key, timeout=10),
            lambda c: c.messages.create(model=mf.CHAT_MODEL, max_tokens=16, messages=MESSAGES),
        ),
    ]
    for client, call in clients:
        started = time.monotonic()
        with client:
            with pytest.raises((openai.RateLimitError, anthropic.RateLimitError)) as e:
                call(client)
        assert time.monotonic() - started < 5, type(client).__name__
        assert e.value.status_code == 429
        assert int(e.value.response.headers["retry-after"]) > 3600
        assert e.value.response.headers["x-should-retry"] == "false"

    def refused():
        return [
            r
            for r in gate.audit_records()
            if r.get("corral", {}).get("reason") == "token_quota_exhausted"
            and r.get("user", {}).get("name") == name
        ]

    # One request each: told not to, neither SDK retried.
    poll_until(lambda: len(refused()) == 2, 5.0, what="two token_quota_exhausted records")
    time.sleep(0.3)
    assert len(refused()) == 2


def test_a_spent_token_quota_survives_a_gate_that_is_killed(tmp_path, mock):
    # The gate writes its keys' allowance state to keys.db every 5 s while it runs, not only when
    # it stops: a gate killed without warning (SIGKILL, OOM, power) loses at most those 5 s.
    config = tmp_path / "corral.toml"
    config.write_text("[policies.quota]\nmax_tokens_per_day = 10\n")
    corral = Corral(data_dir=tmp_path / "data", config=config)
    gate = corral.serve(mock.url, tmp_path / "audit.ndjson")
    try:
        key = gate.new_key("spender", "quota")
        with ollama_client(gate, key) as ol:
            assert ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False).message.content
            with pytest.raises(ollama.ResponseError) as e:
                ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
            assert e.value.status_code == 429

        def saved() -> list[str]:
            db = sqlite3.connect(f"file:{corral.data_dir / 'keys.db'}?mode=ro", uri=True, timeout=5)
            try:
                return [row[0] for row in db.execute("SELECT name FROM allowance_state")]
            finally:
                db.close()

        # Bounded: one save period (5 s) and a margin.
        poll_until(lambda: saved() == ["spender"], 8.0, interval_s=0.2, what="the state saved")
    finally:
        gate.server.kill()
    assert gate.server.proc.returncode == -signal.SIGKILL

    again = corral.serve(mock.url, tmp_path / "audit-2.ndjson")
    try:
        with ollama_client(again, key) as ol:
            with pytest.raises(ollama.ResponseError) as e:
                ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
        assert e.value.status_code == 429
        assert "10 tokens per day" in e.value.error
        poll_until(
            lambda: any(
                r.get("corral", {}).get("reason") == "token_quota_exhausted"
                for r in again.audit_records()
            ),
            5.0,
            what="the refusal on record",
        )
    finally:
        assert again.stop() == 0
