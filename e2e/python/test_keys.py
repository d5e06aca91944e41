"""Keys made, revoked, rotated and expired with the CLI while the gate runs, seen by both clients."""

from __future__ import annotations

import time

import ollama
import openai
import pytest

import mockfacts as mf
from clients import ollama_client, openai_client, unique
from harness import KEY_RE, raw_request

MESSAGES = [{"role": "user", "content": "Say hello."}]
# The brief: a key created, revoked or rotated while `serve` runs takes effect within 1 second.
TAKES_EFFECT_S = 1.0
# A made-up key of the right shape: the gate must not tell it apart from a revoked one.
UNKNOWN_KEY = "crl_AAAAAAAAAAAA_" + "B" * 43


def ollama_ok(gate, key) -> bool:
    with ollama_client(gate, key) as c:
        try:
            c.list()
            return True
        except ollama.ResponseError as e:
            assert e.status_code == 401, f"expected 401 for a refused key, got {e.status_code}"
            return False


def openai_ok(gate, key) -> bool:
    with openai_client(gate, key) as c:
        try:
            c.models.list()
            return True
        except openai.AuthenticationError:
            return False


def wait_refused(check, gate, key, since: float) -> float:
    """Polls until `key` is refused. Fails if any request *started* more than TAKES_EFFECT_S
    after `since` still succeeds. Returns how long the refusal took."""
    while True:
        started = time.monotonic()
        if not check(gate, key):
            return started - since
        assert started - since <= TAKES_EFFECT_S, (
            f"key still accepted {started - since:.2f}s after the CLI changed it"
        )
        time.sleep(0.05)


def wait_accepted(check, gate, key, since: float) -> float:
    while True:
        started = time.monotonic()
        if check(gate, key):
            return started - since
        assert started - since <= TAKES_EFFECT_S, (
            f"new key still refused {started - since:.2f}s after the CLI created it"
        )
        time.sleep(0.05)


def test_create_json_shape(corral, gate):
    name = unique("json")
    obj = corral.create_key_json(name, "user", "--expires", "30d")
    for field in ("id", "name", "policy", "secret", "created_at", "expires_at"):
        assert field in obj, f"`keys create --json` lacks {field}: {obj}"
    assert obj["name"] == name and obj["policy"] == "user"
    assert KEY_RE.match(obj["secret"])
    assert obj["secret"].startswith(f"crl_{obj['id']}_")
    assert obj["expires_at"]
    listed = [k for k in corral.list_keys() if k["name"] == name]
    assert len(listed) == 1
    assert obj["secret"] not in repr(corral.list_keys()), "`keys list` must never show a secret"
    assert obj["secret"].split("_")[2] not in corral.cli("keys", "list").stdout


def test_new_key_works_at_once_with_both_clients(corral, gate):
    t = time.monotonic()
    key = corral.create_key(unique("fresh"))
    wait_accepted(ollama_ok, gate, key, t)
    assert openai_ok(gate, key)


def test_missing_key_ollama(gate):
    with ollama_client(gate, None) as c:
        with pytest.raises(ollama.ResponseError) as e:
            c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
    assert e.value.status_code == 401


def test_missing_key_raw_has_www_authenticate(gate):
    status, headers, body = raw_request(gate.url + "/v1/models")
    assert status == 401
    assert headers.get("www-authenticate", "").startswith("Bearer")
    assert b'"error"' in body


def test_unknown_key_ollama(gate):
    with ollama_client(gate, UNKNOWN_KEY) as c:
        with pytest.raises(ollama.ResponseError) as e:
            c.generate(model=mf.CHAT_MODEL, prompt="hi", stream=False)
    assert e.value.status_code == 401


def test_unknown_key_openai(gate):
    with openai_client(gate, UNKNOWN_KEY) as c:
        with pytest.raises(openai.AuthenticationError) as e:
            c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)
    assert e.value.status_code == 401
    assert e.value.response.headers.get("www-authenticate", "").startswith("Bearer")
    err = e.value.response.json()["error"]
    assert err["message"] and err["type"], err


def test_revoked_key_ollama(corral, gate):
    name = unique("revoke-ollama")
    key = corral.create_key(name)
    wait_accepted(ollama_ok, gate, key, time.monotonic())
    corral.revoke(name)
    wait_refused(ollama_ok, gate, key, time.monotonic())
    # A streamed request with the revoked key fails too, before any chunk.
    with ollama_client(gate, key) as c:
        with pytest.raises(ollama.ResponseError) as e:
            for _ in c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True):
                pass
    assert e.value.status_code == 401


def test_revoked_key_openai(corral, gate):
    name = unique("revoke-openai")
    key = corral.create_key(name)
    wait_accepted(openai_ok, gate, key, time.monotonic())
    corral.revoke(name)
    wait_refused(openai_ok, gate, key, time.monotonic())
    with openai_client(gate, key) as c:
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True)
    revoked = [k for k in corral.list_keys() if k["name"] == name]
    assert revoked and revoked[0]["revoked_at"], revoked


def test_rotated_key(corral, gate):
    name = unique("rotate")
    old = corral.create_key(name)
    wait_accepted(ollama_ok, gate, old, time.monotonic())
    new = corral.rotate(name)
    assert new != old
    t = time.monotonic()
    wait_refused(openai_ok, gate, old, t)
    wait_accepted(openai_ok, gate, new, t)
    assert ollama_ok(gate, new)


def test_expired_key(corral, gate):
    name = unique("expiring")
    lifetime_s = 3.0
    t = time.monotonic()
    key = corral.create_key_json(name, "user", "--expires", "3s")["secret"]
    wait_accepted(ollama_ok, gate, key, t)
    # Refused once the lifetime has passed (plus the reload interval), never much later.
    deadline = t + lifetime_s + TAKES_EFFECT_S + 1.0
    while ollama_ok(gate, key):
        assert time.monotonic() < deadline, "expired key still accepted"
        time.sleep(0.1)
    assert time.monotonic() - t >= lifetime_s - 0.5, "key refused before its expiry"
    assert not openai_ok(gate, key)


def test_running_streams_end_when_their_key_is_revoked(corral, gate):
    """Revocation also stops a generation already streaming (that is GPU time), within a
    second, with an API error each client raises."""
    name = unique("revoke-streaming")
    key = gate.new_key(name)
    with ollama_client(gate, key) as c:
        stream = c.chat(model="endless", messages=MESSAGES, stream=True)
        next(stream)
        corral.revoke(name)
        t = time.monotonic()
        with pytest.raises(ollama.ResponseError) as e:
            for _ in stream:
                assert time.monotonic() - t < 5, "the stream of a revoked key runs on"
        assert time.monotonic() - t <= TAKES_EFFECT_S + 0.5
        assert e.value.error == "the API key was revoked or expired while the request ran"

    name = unique("rotate-streaming")
    key = gate.new_key(name)
    with openai_client(gate, key) as c:
        stream = c.chat.completions.create(model="endless", messages=MESSAGES, stream=True)
        next(iter(stream))
        corral.rotate(name)
        t = time.monotonic()
        with pytest.raises(openai.APIError) as e:
            for _ in stream:
                assert time.monotonic() - t < 5, "the stream of a rotated key runs on"
        assert time.monotonic() - t <= TAKES_EFFECT_S + 0.5
        assert "revoked or expired" in str(e.value)
