"""A key's request rate (`max_requests_per_minute`) as the official clients see it: a 429 with
`Retry-After`, raised as each library's own rate-limit error."""

from __future__ import annotations

import anthropic
import ollama
import openai
import pytest

import mockfacts as mf
from clients import anthropic_client, ollama_client, openai_client, unique
from harness import poll_until

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
