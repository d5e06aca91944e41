"""The official `openai` Python SDK through the gate's /v1 routes: only base_url and api_key change."""

from __future__ import annotations

import json
import time

import openai
import pytest

import mockfacts as mf
from clients import openai_client, unique

MESSAGES = [{"role": "user", "content": "Say hello."}]


def test_chat_completion(oa):
    r = oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)
    assert r.choices[0].message.content == mf.TEXT
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == mf.PROMPT_TOKENS
    assert r.usage.completion_tokens == mf.CHUNKS


def test_chat_completion_streamed_with_usage(oa):
    stream = oa.chat.completions.create(
        model=mf.CHAT_MODEL,
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == mf.TEXT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == mf.PROMPT_TOKENS
    assert chunks[-1].usage.completion_tokens == mf.CHUNKS


def test_chat_completion_streamed_without_usage_has_no_usage_chunk(oa):
    # The gate asks the upstream for usage (for its audit log) but the client did not ask:
    # it gets the stream it asked for, every chunk with a choice.
    chunks = list(oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True))
    assert chunks and all(c.choices for c in chunks), chunks[-1]
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == mf.TEXT
    texts = [c.choices[0].text for c in oa.completions.create(model=mf.CHAT_MODEL, prompt="x", stream=True)]
    assert "".join(texts) == mf.TEXT


def test_sse_arrives_before_upstream_finishes(oa):
    t0 = time.monotonic()
    arrivals = [
        time.monotonic() - t0
        for c in oa.chat.completions.create(model=mf.SLOW_MODEL, messages=MESSAGES, stream=True)
        if c.choices and c.choices[0].delta.content
    ]
    assert len(arrivals) == mf.SLOW_CHUNKS
    upstream_total = (mf.SLOW_CHUNKS - 1) * mf.SLOW_DELAY_S
    assert arrivals[-1] >= upstream_total * 0.9
    assert arrivals[0] < upstream_total / 2, f"first SSE event after {arrivals[0]:.2f}s: buffered"


def test_tool_calls(oa):
    r = oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES, tools=[mf.WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == mf.WEATHER_ARGS


def test_tool_calls_streamed(oa):
    names, args, finish = [], "", None
    for c in oa.chat.completions.create(
        model=mf.CHAT_MODEL, messages=MESSAGES, tools=[mf.WEATHER_TOOL], stream=True
    ):
        if not c.choices:
            continue
        for tc in c.choices[0].delta.tool_calls or []:
            if tc.function and tc.function.name:
                names.append(tc.function.name)
            if tc.function and tc.function.arguments:
                args += tc.function.arguments
        finish = c.choices[0].finish_reason or finish
    assert names == ["get_weather"]
    assert json.loads(args) == mf.WEATHER_ARGS
    assert finish == "tool_calls"


def test_legacy_completion(oa):
    r = oa.completions.create(model=mf.CHAT_MODEL, prompt="Say hello.")
    assert r.choices[0].text == mf.TEXT
    streamed = "".join(
        c.choices[0].text for c in oa.completions.create(model=mf.CHAT_MODEL, prompt="x", stream=True) if c.choices
    )
    assert streamed == mf.TEXT


def test_embeddings_sdk_default_base64(oa):
    # The SDK asks for base64 and decodes it itself.
    r = oa.embeddings.create(model=mf.EMBED_MODEL, input=["a", "b"])
    assert [d.index for d in r.data] == [0, 1]
    for d in r.data:
        assert mf.close(d.embedding, mf.embedding(d.index)), d.embedding
    assert r.usage.prompt_tokens == mf.PROMPT_TOKENS


def test_embeddings_float(oa):
    r = oa.embeddings.create(model=mf.EMBED_MODEL, input="a", encoding_format="float")
    assert len(r.data) == 1
    assert mf.close(r.data[0].embedding, mf.embedding(0))


def test_responses_api(oa):
    r = oa.responses.create(model=mf.CHAT_MODEL, input="Say hello.")
    assert r.output_text == mf.TEXT
    assert r.usage.input_tokens == mf.PROMPT_TOKENS


def test_responses_api_streamed(oa):
    events = list(oa.responses.create(model=mf.CHAT_MODEL, input="Say hello.", stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == mf.TEXT
    assert events[-1].type == "response.completed"
    assert events[-1].response.usage.input_tokens == mf.PROMPT_TOKENS


def test_models_list_filtered(oa):
    ids = {m.id for m in oa.models.list()}
    assert ids == mf.LOCAL_MODELS, "cloud models are hidden from a user key"


def test_models_retrieve(oa):
    assert oa.models.retrieve("llama3.2:latest").id == "llama3.2:latest"


@pytest.mark.parametrize("model", [mf.CLOUD_MODEL, mf.HIDDEN_CLOUD_MODEL])
def test_models_retrieve_cloud_refused(oa, model):
    with pytest.raises(openai.PermissionDeniedError) as e:
        oa.models.retrieve(model)
    assert assert_openai_error_shape(e.value, 403)["code"] == "cloud_denied"


def test_upstream_errors_keep_their_status(oa):
    with pytest.raises(openai.RateLimitError) as e:
        oa.chat.completions.create(model="error429", messages=MESSAGES)
    assert e.value.status_code == 429
    with pytest.raises(openai.InternalServerError) as e:
        oa.chat.completions.create(model="error500", messages=MESSAGES)
    assert e.value.status_code == 500


# --- refusals by policy, in the OpenAI error shape -----------------------------------------


def assert_openai_error_shape(e: openai.APIStatusError, status: int) -> dict:
    assert e.status_code == status
    body = e.response.json()
    err = body.get("error")
    assert isinstance(err, dict), f"not the OpenAI error shape: {body}"
    assert err.get("message") and err.get("type"), err
    assert "code" in err, err
    assert "crl_" not in json.dumps(body)
    return err


def test_model_not_allowed(gate, corral):
    key = gate.new_key(unique("llama-only-oa"), "llama-only")
    with openai_client(gate, key) as c:
        assert c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES).choices[0].message.content == mf.TEXT
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.chat.completions.create(model="qwen3:8b", messages=MESSAGES)
        assert assert_openai_error_shape(e.value, 403)["code"] == "model_not_allowed"
        with pytest.raises(openai.PermissionDeniedError):
            c.embeddings.create(model=mf.EMBED_MODEL, input="a")
        with pytest.raises(openai.PermissionDeniedError):
            c.chat.completions.create(model="secret-model", messages=MESSAGES, stream=True)
        assert {m.id for m in c.models.list()} == {"llama3.2:latest"}


@pytest.mark.parametrize("model", [mf.CLOUD_MODEL, mf.HIDDEN_CLOUD_MODEL])
def test_cloud_model_refused(oa, model):
    with pytest.raises(openai.PermissionDeniedError) as e:
        oa.chat.completions.create(model=model, messages=MESSAGES)
    assert assert_openai_error_shape(e.value, 403)["code"] == "cloud_denied"


def test_tools_denied(gate, corral):
    key = gate.new_key(unique("no-tools-oa"), "no-tools")
    with openai_client(gate, key) as c:
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES, tools=[mf.WEATHER_TOOL])
        assert assert_openai_error_shape(e.value, 403)["code"] == "tools_denied"
        assert c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES).choices[0].message.content == mf.TEXT


def test_unknown_v1_route_is_refused(oa):
    # The SDK can reach arbitrary paths; default deny refuses one Ollama does not have.
    with pytest.raises(openai.NotFoundError) as e:
        oa.get("/fine_tuning/jobs", cast_to=object)
    assert_openai_error_shape(e.value, 404)


def test_admin_calls_refused(oa, gate, admin_key):
    # The SDK's one administrative call: Ollama has no such route, so no key may make it.
    for key in (oa.api_key, admin_key):
        with openai_client(gate, key) as c:
            with pytest.raises(openai.APIStatusError) as e:
                c.models.delete(mf.CHAT_MODEL)
            err = assert_openai_error_shape(e.value, 405)
            assert e.value.response.headers.get("allow") == "GET"
            assert err["message"] in str(e.value)
    # Ollama's admin routes, reached through the SDK's own request methods: a user key is refused
    # by its policy, with a typed error whose body (in the dialect of /api/*) names the rule.
    for call in (oa.post, oa.delete):
        path = "/api/pull" if call == oa.post else "/api/delete"
        with pytest.raises(openai.PermissionDeniedError) as e:
            call(gate.url + path, cast_to=object, body={"model": mf.CHAT_MODEL})
        assert e.value.response.json() == {
            "error": 'policy "user" does not allow admin endpoints'
        }
    # The model is still there.
    assert "llama3.2:latest" in {m.id for m in oa.models.list()}


def test_images_denied(gate, corral):
    key = gate.new_key(unique("no-images-oa"), "no-images")
    picture = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]
    with openai_client(gate, key) as c:
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.chat.completions.create(model="llava:7b", messages=picture)
        err = assert_openai_error_shape(e.value, 403)
        assert err["code"] == "images_denied"
        assert err["message"] == 'policy "no-images" does not allow image input'
        assert err["message"] in str(e.value)
        with pytest.raises(openai.PermissionDeniedError):
            c.chat.completions.create(model="llava:7b", messages=picture, stream=True)
        assert c.chat.completions.create(model="llava:7b", messages=MESSAGES).choices[0].message.content == mf.TEXT


def test_refusals_are_typed_with_the_gates_message(oa, gate):
    with pytest.raises(openai.PermissionDeniedError) as e:
        oa.responses.create(model=mf.CLOUD_MODEL, input="hi")
    assert 'policy "user" does not allow cloud models' in str(e.value)
    with pytest.raises(openai.NotFoundError) as e:
        oa.post("/fine_tuning/jobs", cast_to=object, body={})
    assert_openai_error_shape(e.value, 404)
    with pytest.raises(openai.BadRequestError) as e:
        oa.post("/chat/completions", cast_to=object, body=[{"model": mf.CHAT_MODEL}])
    err = assert_openai_error_shape(e.value, 400)
    assert err["message"] in str(e.value)
    with openai_client(gate, "crl_AAAAAAAAAAAA_" + "B" * 43) as bad:
        with pytest.raises(openai.AuthenticationError) as e:
            bad.responses.create(model=mf.CHAT_MODEL, input="hi", stream=True)
        assert_openai_error_shape(e.value, 401)


def test_responses_web_search_tool_needs_the_account_class(oa):
    # Ollama runs this tool itself, from ollama.com with the server's account.
    with pytest.raises(openai.PermissionDeniedError) as e:
        oa.responses.create(model=mf.CHAT_MODEL, input="news?", tools=[{"type": "web_search"}])
    assert e.value.status_code == 403
    assert e.value.code == "endpoint_class"
    assert "account" in e.value.message
