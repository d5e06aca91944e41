"""The audit log of a gate that served both clients: complete, hash-chained, free of secrets and
prompts, flushed by a graceful stop, and `corral audit verify` catches an edit."""

from __future__ import annotations

import json
import shutil

import ollama
import openai
import pytest

import mockfacts as mf
from clients import ollama_client, openai_client
from harness import Corral

PROMPT_MARKER = "zebra-umbrella-7731"  # must never appear in the log
MESSAGES = [{"role": "user", "content": f"Say hello. {PROMPT_MARKER}"}]


def field(rec: dict, dotted: str):
    """An ECS field, whether written nested ({"event":{"outcome":..}}) or flat ("event.outcome")."""
    if dotted in rec:
        return rec[dotted]
    cur = rec
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            # A prefix may itself be a flat key, e.g. {"corral": {"chain.seq": 1}}.
            return _flat_tail(rec, dotted)
        cur = cur[part]
    return cur


def _flat_tail(rec: dict, dotted: str):
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        head, tail = ".".join(parts[:i]), ".".join(parts[i:])
        sub = rec.get(head)
        if isinstance(sub, dict):
            v = field(sub, tail)
            if v is not None:
                return v
    return None


@pytest.fixture(scope="module")
def audited(tmp_path_factory, mock):
    """A gate of its own, driven through a known set of requests, then stopped with SIGTERM."""
    root = tmp_path_factory.mktemp("audit")
    corral = Corral(data_dir=root / "data")
    gate = corral.serve(mock.url, root / "audit.ndjson")
    user = gate.new_key("audit-user", "user")
    secret_part = user.split("_")[2]
    try:
        with ollama_client(gate, user) as c:
            list(c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True))  # 200, streamed
            with pytest.raises(ollama.ResponseError):
                c.pull(mf.CHAT_MODEL, stream=False)  # 403
        with ollama_client(gate, None) as c:
            with pytest.raises(ollama.ResponseError):
                c.list()  # 401
        with openai_client(gate, user) as c:
            c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)  # 200
            # Streamed without stream_options.include_usage: tokens are recorded all the same.
            list(c.completions.create(model=mf.CHAT_MODEL, prompt=MESSAGES[0]["content"], stream=True))
            with pytest.raises(openai.PermissionDeniedError):
                c.chat.completions.create(model=mf.CLOUD_MODEL, messages=MESSAGES)  # 403
    finally:
        code = gate.stop()
    assert code == 0, f"corral serve exited {code} on SIGTERM\n{gate.server.stderr_text()}"
    return gate, corral, secret_part


def requests_by(records, method, path):
    return [
        r
        for r in records
        if field(r, "http.request.method") == method and field(r, "url.path") == path
    ]


def test_every_request_recorded_with_ecs_fields(audited):
    gate, _, _ = audited
    records = gate.audit_records()
    for r in records:
        for f in ("@timestamp", "event.outcome", "http.request.method", "url.path", "http.response.status_code"):
            assert field(r, f) is not None, f"record lacks {f}: {r}"

    chats = requests_by(records, "POST", "/api/chat")
    assert len(chats) == 1
    chat = chats[0]
    assert field(chat, "http.response.status_code") == 200
    assert field(chat, "event.outcome") == "success"
    assert field(chat, "user.name") == "audit-user"
    assert field(chat, "corral.policy") == "user"
    assert field(chat, "corral.streamed") is True
    assert field(chat, "corral.prompt_tokens") == mf.PROMPT_TOKENS
    assert field(chat, "corral.completion_tokens") == mf.CHUNKS
    assert field(chat, "corral.model") in ("llama3.2", "llama3.2:latest")

    v1 = requests_by(records, "POST", "/v1/chat/completions")
    assert [field(r, "http.response.status_code") for r in v1] == [200, 403]
    assert field(v1[0], "corral.completion_tokens") == mf.CHUNKS
    assert field(v1[1], "event.outcome") == "failure"
    assert field(v1[1], "corral.reason"), "a refusal records its rule"

    completions = requests_by(records, "POST", "/v1/completions")
    assert len(completions) == 1
    assert field(completions[0], "corral.streamed") is True
    assert field(completions[0], "corral.prompt_tokens") == mf.PROMPT_TOKENS
    assert field(completions[0], "corral.completion_tokens") == mf.CHUNKS

    pulls = requests_by(records, "POST", "/api/pull")
    assert [field(r, "http.response.status_code") for r in pulls] == [403]
    assert field(pulls[0], "corral.decision") not in (None, "allow", "allowed")

    tags = requests_by(records, "GET", "/api/tags")
    assert [field(r, "http.response.status_code") for r in tags] == [401]
    assert field(tags[0], "user.name") in (None, "")


def test_log_holds_no_secret_or_prompt(audited):
    gate, _, secret_part = audited
    text = gate.audit_log.read_text("utf-8")
    assert secret_part not in text
    assert PROMPT_MARKER not in text
    assert "Hello from the mock" not in text, "completion content must not be logged"


def test_chain_verifies(audited):
    gate, _, _ = audited
    out = gate.verify_audit()
    assert out.returncode == 0, out.stdout + out.stderr
    seqs = [field(r, "corral.chain.seq") for r in gate.audit_records()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


@pytest.mark.parametrize("tamper", ["edit", "drop", "swap"])
def test_verify_reports_tampering(audited, tmp_path, tamper):
    gate, corral, _ = audited
    lines = gate.audit_log.read_text("utf-8").splitlines()
    assert len(lines) >= 4
    if tamper == "edit":
        rec = json.loads(lines[2])
        rec["@timestamp"] = "2000-01-01T00:00:00Z"
        lines[2] = json.dumps(rec, separators=(",", ":"))
    elif tamper == "drop":
        del lines[2]
    else:
        lines[1], lines[2] = lines[2], lines[1]
    bad = tmp_path / "tampered.ndjson"
    bad.write_text("\n".join(lines) + "\n")
    out = corral.cli("audit", "verify", str(bad), check=False)
    assert out.returncode != 0, f"tampering ({tamper}) not detected:\n{out.stdout}"
    # The untouched original still verifies (nothing was written to it).
    good = tmp_path / "copy.ndjson"
    shutil.copy(gate.audit_log, good)
    assert corral.cli("audit", "verify", str(good), check=False).returncode == 0
