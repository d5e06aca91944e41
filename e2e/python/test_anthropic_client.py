"""The official `anthropic` Python SDK through the gate's /v1/messages: only base_url and
api_key change. The SDK sends the key in `x-api-key`."""

from __future__ import annotations

import anthropic
import pytest

import mockfacts as mf
from clients import anthropic_client, unique

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture
def an(gate, user_key):
    with anthropic_client(gate, user_key) as c:
        yield c


def test_message(an):
    r = an.messages.create(model=mf.CHAT_MODEL, max_tokens=64, messages=MESSAGES)
    assert r.content[0].type == "text"
    assert r.content[0].text == mf.TEXT
    assert r.stop_reason == "end_turn"
    assert r.usage.input_tokens == mf.PROMPT_TOKENS
    assert r.usage.output_tokens == mf.CHUNKS


def test_message_streamed(an):
    with an.messages.stream(model=mf.CHAT_MODEL, max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == mf.TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == mf.CHUNKS


def test_wrong_key_is_an_authentication_error(gate):
    with anthropic_client(gate, "crl_" + "A" * 12 + "_" + "B" * 43) as c:
        with pytest.raises(anthropic.AuthenticationError) as e:
            c.messages.create(model=mf.CHAT_MODEL, max_tokens=64, messages=MESSAGES)
    assert e.value.status_code == 401
    assert "API key" in e.value.message


def test_refused_model_is_a_permission_error(gate):
    key = gate.new_key(unique("llama-only-an"), "llama-only")
    with anthropic_client(gate, key) as c:
        with pytest.raises(anthropic.PermissionDeniedError) as e:
            c.messages.create(model=mf.EMBED_MODEL, max_tokens=64, messages=MESSAGES)
    assert e.value.status_code == 403
    assert e.value.body["error"]["type"] == "permission_error"


def test_cloud_model_is_refused(an):
    with pytest.raises(anthropic.PermissionDeniedError):
        an.messages.create(model=mf.CLOUD_MODEL, max_tokens=64, messages=MESSAGES)


def test_tools_refused_by_policy(gate):
    key = gate.new_key(unique("no-tools-an"), "no-tools")
    tool = {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with anthropic_client(gate, key) as c:
        with pytest.raises(anthropic.PermissionDeniedError) as e:
            c.messages.create(model=mf.CHAT_MODEL, max_tokens=64, messages=MESSAGES, tools=[tool])
    assert "tool" in e.value.message.lower()


def test_web_search_tool_needs_the_account_class(an, gate, admin_key):
    # Ollama runs this tool itself, from ollama.com with the server's account.
    web_search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        an.messages.create(
            model=mf.CHAT_MODEL, max_tokens=64, messages=MESSAGES, tools=[web_search]
        )
    assert e.value.status_code == 403
    assert "account" in e.value.message
    with anthropic_client(gate, admin_key) as admin:
        r = admin.messages.create(
            model=mf.CHAT_MODEL, max_tokens=64, messages=MESSAGES, tools=[web_search]
        )
    assert r.content[0].text == mf.TEXT
