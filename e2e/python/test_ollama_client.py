"""The official `ollama` Python client through the gate, with only host and key changed."""

from __future__ import annotations

import asyncio
import base64
import time

import ollama
import pytest

import mockfacts as mf
from clients import ollama_client, unique

MESSAGES = [{"role": "user", "content": "Say hello."}]


# --- inference -------------------------------------------------------------------------------


def test_chat_whole_answer(ol):
    r = ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
    assert r.message.role == "assistant"
    assert r.message.content == mf.TEXT
    assert r.done is True
    assert r.prompt_eval_count == mf.PROMPT_TOKENS
    assert r.eval_count == mf.CHUNKS


def test_chat_streams_chunk_by_chunk(ol):
    parts = list(ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True))
    assert len(parts) == mf.CHUNKS + 1, "one object per content chunk plus the final done object"
    assert [p.done for p in parts] == [False] * mf.CHUNKS + [True]
    assert "".join(p.message.content for p in parts) == mf.TEXT
    assert parts[-1].eval_count == mf.CHUNKS


def test_stream_arrives_before_upstream_finishes(ol):
    """A slow upstream: the first chunk must reach the client long before the last is produced."""
    t0 = time.monotonic()
    arrivals = []
    for part in ol.generate(model=mf.SLOW_MODEL, prompt="count", stream=True):
        arrivals.append((time.monotonic() - t0, part))
    assert len(arrivals) == mf.SLOW_CHUNKS + 1
    first, last = arrivals[0][0], arrivals[-1][0]
    upstream_total = (mf.SLOW_CHUNKS - 1) * mf.SLOW_DELAY_S
    assert last >= upstream_total * 0.9, f"stream ended after {last:.2f}s, faster than upstream"
    assert first < upstream_total / 2, (
        f"first chunk after {first:.2f}s of a {upstream_total:.2f}s stream: the gate buffered it"
    )


def test_generate_whole_and_streamed(ol):
    whole = ol.generate(model=mf.CHAT_MODEL, prompt="Say hello.", stream=False)
    assert whole.response == mf.TEXT
    assert whole.done is True
    assert whole.prompt_eval_count == mf.PROMPT_TOKENS

    parts = list(ol.generate(model=mf.CHAT_MODEL, prompt="Say hello.", stream=True))
    assert "".join(p.response for p in parts) == mf.TEXT
    assert parts[-1].done is True
    assert parts[-1].eval_count == mf.CHUNKS


def test_embed(ol):
    r = ol.embed(model=mf.EMBED_MODEL, input=["first", "second", "third"])
    assert len(r.embeddings) == 3
    for i, e in enumerate(r.embeddings):
        assert mf.close(e, mf.embedding(i)), (i, e)
    assert r.prompt_eval_count == mf.PROMPT_TOKENS


def test_legacy_embeddings(ol):
    r = ol.embeddings(model=mf.EMBED_MODEL, prompt="one")
    assert mf.close(r.embedding, mf.embedding(0))


def test_tool_call_whole_answer(ol):
    r = ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, tools=[mf.WEATHER_TOOL], stream=False)
    calls = r.message.tool_calls
    assert calls and len(calls) == 1
    assert calls[0].function.name == "get_weather"
    assert dict(calls[0].function.arguments) == mf.WEATHER_ARGS


def test_tool_call_streamed_from_python_function(ol):
    def add_numbers(a: int, b: int) -> int:
        """Add two numbers.

        Args:
          a: The first number
          b: The second number

        Returns:
          int: The sum
        """
        return a + b

    calls = []
    for part in ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, tools=[add_numbers], stream=True):
        calls.extend(part.message.tool_calls or [])
    assert len(calls) == 1
    assert calls[0].function.name == "add_numbers"
    assert dict(calls[0].function.arguments) == {"a": 1, "b": 1}


def test_upstream_error_reaches_client_in_ollama_shape(ol):
    with pytest.raises(ollama.ResponseError) as e:
        ol.chat(model="error503", messages=MESSAGES, stream=False)
    assert e.value.status_code == 503


# --- discovery -------------------------------------------------------------------------------


def test_list_shows_local_models_only(ol):
    names = {m.model for m in ol.list().models}
    assert names == mf.LOCAL_MODELS, "a user key sees local models, never cloud ones"


def test_admin_lists_everything(gate, admin_key):
    with ollama_client(gate, admin_key) as c:
        assert {m.model for m in c.list().models} == mf.ALL_MODELS


def test_show(ol):
    r = ol.show(mf.CHAT_MODEL)
    assert "tools" in (r.capabilities or [])


# --- refusals by policy ----------------------------------------------------------------------


def test_pull_refused_for_user_key(ol):
    with pytest.raises(ollama.ResponseError) as e:
        ol.pull("attacker.example:8443/ns/leak_model_0", stream=False)
    assert e.value.status_code == 403
    # The refusal names the rule (the endpoint class), never a key.
    assert "admin" in e.value.error and "crl_" not in e.value.error


def test_streamed_pull_refused_for_user_key(ol):
    with pytest.raises(ollama.ResponseError) as e:
        for _ in ol.pull(mf.CHAT_MODEL, stream=True):
            pass
    assert e.value.status_code == 403


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.delete(mf.CHAT_MODEL), id="delete"),
        pytest.param(lambda c: c.copy(mf.CHAT_MODEL, "llama-copy"), id="copy"),
        pytest.param(lambda c: c.push("me/llama3.2", stream=False), id="push"),
        pytest.param(lambda c: c.create("evil", from_=mf.CHAT_MODEL, stream=False), id="create"),
        pytest.param(lambda c: c.ps(), id="ps"),
    ],
)
def test_admin_and_ops_calls_refused_for_user_key(ol, call, request):
    with pytest.raises(ollama.ResponseError) as e:
        call(ol)
    assert e.value.status_code == 403
    # The message names the rule: the policy and the endpoint class it does not allow.
    cls = "ops" if request.node.callspec.id == "ps" else "admin"
    assert e.value.error == f'policy "user" does not allow {cls} endpoints'


def test_pull_allowed_for_admin_key(gate, admin_key):
    with ollama_client(gate, admin_key) as c:
        assert c.pull(mf.CHAT_MODEL, stream=False).status == "success"
        statuses = [p.status for p in c.pull(mf.CHAT_MODEL, stream=True)]
        assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
        assert {m.model for m in c.ps().models} >= {"llama3.2:latest"}


@pytest.mark.parametrize("model", [mf.CLOUD_MODEL, mf.HIDDEN_CLOUD_MODEL])
def test_cloud_model_refused_for_user_key(ol, model):
    with pytest.raises(ollama.ResponseError) as e:
        ol.chat(model=model, messages=MESSAGES, stream=False)
    assert e.value.status_code == 403


def test_model_allowlist(gate, corral):
    key = gate.new_key(unique("llama-only"), "llama-only")
    with ollama_client(gate, key) as c:
        assert c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False).message.content == mf.TEXT
        assert {m.model for m in c.list().models} == {"llama3.2:latest"}
        with pytest.raises(ollama.ResponseError) as e:
            c.chat(model="secret-model", messages=MESSAGES, stream=False)
        assert e.value.status_code == 403
        assert "secret-model" not in {m.model for m in c.list().models}


def test_tools_denied_by_policy(gate, corral):
    key = gate.new_key(unique("no-tools"), "no-tools")
    with ollama_client(gate, key) as c:
        with pytest.raises(ollama.ResponseError) as e:
            c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, tools=[mf.WEATHER_TOOL], stream=False)
        assert e.value.status_code == 403
        assert c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False).message.content == mf.TEXT


# --- images ----------------------------------------------------------------------------------

# A PNG signature and a few bytes: the gate looks for image input, not at the picture.
IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(24)).decode()
VISION_MODEL = "llava:7b"


def test_images_allowed_for_user_key(ol):
    r = ol.chat(
        model=VISION_MODEL,
        messages=[{"role": "user", "content": "What is this?", "images": [IMAGE]}],
        stream=False,
    )
    assert r.done is True
    assert ol.generate(model=VISION_MODEL, prompt="What is this?", images=[IMAGE]).done is True


def test_images_denied_by_policy(gate, corral):
    key = gate.new_key(unique("no-images"), "no-images")
    with ollama_client(gate, key) as c:
        for call in (
            lambda: c.chat(
                model=VISION_MODEL,
                messages=[{"role": "user", "content": "What is this?", "images": [IMAGE]}],
                stream=False,
            ),
            lambda: list(
                c.chat(
                    model=VISION_MODEL,
                    messages=[{"role": "user", "content": "What is this?", "images": [IMAGE]}],
                    stream=True,
                )
            ),
            lambda: c.generate(model=VISION_MODEL, prompt="What is this?", images=[IMAGE]),
        ):
            with pytest.raises(ollama.ResponseError) as e:
                call()
            assert e.value.status_code == 403
            assert e.value.error == 'policy "no-images" does not allow image input'
        # The same key without an image is served.
        assert c.chat(model=VISION_MODEL, messages=MESSAGES, stream=False).done is True


# --- AsyncClient -----------------------------------------------------------------------------


def test_async_client(gate, user_key):
    async def run():
        c = ollama.AsyncClient(
            host=gate.url, headers={"Authorization": f"Bearer {user_key}"}, timeout=30
        )
        whole = await c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
        assert whole.message.content == mf.TEXT
        parts = [p async for p in await c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True)]
        assert "".join(p.message.content for p in parts) == mf.TEXT
        assert parts[-1].done and parts[-1].eval_count == mf.CHUNKS
        gen = [p async for p in await c.generate(model=mf.CHAT_MODEL, prompt="hi", stream=True)]
        assert "".join(p.response for p in gen) == mf.TEXT
        emb = await c.embed(model=mf.EMBED_MODEL, input=["a"])
        assert mf.close(emb.embeddings[0], mf.embedding(0))
        assert {m.model for m in (await c.list()).models} == mf.LOCAL_MODELS
        assert "tools" in ((await c.show(mf.CHAT_MODEL)).capabilities or [])
        with pytest.raises(ollama.ResponseError) as e:
            await c.pull(mf.CHAT_MODEL, stream=False)
        assert e.value.status_code == 403
        with pytest.raises(ollama.ResponseError) as e:
            await c.ps()
        assert e.value.status_code == 403

        # A slow stream arrives chunk by chunk on the async client too.
        t0 = time.monotonic()
        arrivals = [
            time.monotonic() - t0
            async for _ in await c.generate(model=mf.SLOW_MODEL, prompt="count", stream=True)
        ]
        upstream_total = (mf.SLOW_CHUNKS - 1) * mf.SLOW_DELAY_S
        assert len(arrivals) == mf.SLOW_CHUNKS + 1
        assert arrivals[0] < upstream_total / 2, f"first chunk after {arrivals[0]:.2f}s"

    asyncio.run(run())
