"""OIDC access tokens through the gate with the official clients: the `openai` SDK with a
token as its api_key, the `ollama` client with `Authorization: Bearer <token>`, Anthropic's
SDK with the token in x-api-key. Tokens come from `mock-idp` (a mock Keycloak realm that mints
them); the gate runs with an `[oidc]` section of its own, in front of the session's mock Ollama.
"""

from __future__ import annotations

import urllib.request

import anthropic
import ollama
import openai
import pytest

import mockfacts as mf
from clients import CLIENT_TIMEOUT_S, anthropic_client
from harness import Corral, Server, binary, parse_port, poll_until, raw_request

MESSAGES = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def idp(workdir):
    exe = binary("MOCK_IDP_BIN", "mock-idp")
    server = Server([str(exe), "--listen", "127.0.0.1:0"], workdir / "mock-idp.stderr")
    line = server.first_line()
    port = parse_port(line, r"mock-idp listening on http://127\.0\.0\.1:(\d+)/realms/ml")
    yield f"http://127.0.0.1:{port}"
    server.terminate()


def mint(idp: str, user: str, *groups: str) -> str:
    url = f"{idp}/mint?user={user}&groups={','.join(groups)}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def oidc_gate(idp, mock, workdir):
    config = workdir / "oidc.toml"
    config.write_text(
        f"""\
[oidc]
issuer = "{idp}/realms/ml"
audience = "corral"
user_claim = "preferred_username"
roles_claim = "realm_access.roles"

[oidc.policies]
"ml-admins" = "admin"
"ml-users" = "user"
"""
    )
    corral = Corral(data_dir=workdir / "oidc-data", config=config)
    g = corral.serve(mock.url, workdir / "oidc-audit" / "audit.ndjson")
    yield g
    code = g.stop()
    verify = g.verify_audit()
    assert code == 0, f"corral serve exited {code} on SIGTERM\n{g.server.stderr_text()}"
    assert verify.returncode == 0, f"audit verify failed:\n{verify.stdout}{verify.stderr}"


def openai_with(gate, token: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gate.url + "/v1", api_key=token, max_retries=0, timeout=CLIENT_TIMEOUT_S
    )


def records_of(gate, user: str, count: int = 1) -> list[dict]:
    """The audit records of `user`, once there are at least `count` (records are written
    as responses end, by the gate's writer)."""

    def found():
        recs = [r for r in gate.audit_records() if r.get("user", {}).get("name") == user]
        return recs if len(recs) >= count else None

    return poll_until(found, 5.0, what=f"{count} audit records of {user}")


def test_openai_sdk_with_a_token_as_api_key(oidc_gate, idp):
    token = mint(idp, "alice", "ml-users")
    with openai_with(oidc_gate, token) as oa:
        r = oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)
        assert r.choices[0].message.content == mf.TEXT
        chunks = list(oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == mf.TEXT
    recs = records_of(oidc_gate, "oidc:alice", 2)
    assert len(recs) == 2, recs
    assert all(r["corral"]["policy"] == "user" and r["corral"]["decision"] == "allow" for r in recs)
    log = oidc_gate.audit_log.read_text("utf-8")
    assert token.rsplit(".", 1)[1] not in log, "the token is in the audit log"


def test_openai_sdk_with_a_forged_token_is_an_authentication_error(oidc_gate, idp):
    token = mint(idp, "mallory", "ml-admins")
    header, claims, sig = token.split(".")
    forged = f"{header}.{claims}.{sig[:-4]}AAAA"
    with openai_with(oidc_gate, forged) as oa, pytest.raises(openai.AuthenticationError):
        oa.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)
    poll_until(
        lambda: any(r["corral"].get("reason") == "token_bad_signature" for r in oidc_gate.audit_records()),
        5.0,
        what="the forged token audited as token_bad_signature",
    )


def test_ollama_client_with_a_bearer_token(oidc_gate, idp):
    token = mint(idp, "bob", "ml-users")
    with ollama.Client(
        host=oidc_gate.url, headers={"Authorization": f"Bearer {token}"}, timeout=CLIENT_TIMEOUT_S
    ) as ol:
        r = ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
        assert r.message.content == mf.TEXT
        parts = list(ol.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True))
        assert "".join(p.message.content for p in parts) == mf.TEXT
        # The mapped `user` policy has no admin endpoints.
        with pytest.raises(ollama.ResponseError) as e:
            ol.pull(mf.CHAT_MODEL, stream=False)
        assert e.value.status_code == 403
    admin = mint(idp, "root", "ml-users", "ml-admins")
    with ollama.Client(
        host=oidc_gate.url, headers={"Authorization": f"Bearer {admin}"}, timeout=CLIENT_TIMEOUT_S
    ) as ol:
        assert ol.pull(mf.CHAT_MODEL, stream=False).status == "success"
    assert {r["corral"]["policy"] for r in records_of(oidc_gate, "oidc:bob", 3)} == {"user"}
    assert {r["corral"]["policy"] for r in records_of(oidc_gate, "oidc:root")} == {"admin"}


def test_anthropic_sdk_sends_the_token_in_x_api_key(oidc_gate, idp):
    token = mint(idp, "carol", "ml-users")
    with anthropic_client(oidc_gate, token) as an:
        m = an.messages.create(model=mf.CHAT_MODEL, max_tokens=64, messages=MESSAGES)
        assert m.content[0].text == mf.TEXT
    assert records_of(oidc_gate, "oidc:carol")


def test_a_token_no_group_maps_is_refused_403(oidc_gate, idp):
    token = mint(idp, "eve", "other-team")
    status, _, body = raw_request(oidc_gate.url + "/api/tags", headers={"Authorization": f"Bearer {token}"})
    assert status == 403, body
    assert [r["corral"]["reason"] for r in records_of(oidc_gate, "oidc:eve")] == ["oidc_no_policy"]


def test_a_user_claim_with_a_bidi_override_is_refused(oidc_gate, idp):
    # "alice<U+202E>gnp.exe" would read as "aliceexe.png" in a log viewer.
    token = mint(idp, "alice%E2%80%AEgnp.exe", "ml-users")
    with openai_with(oidc_gate, token) as oa, pytest.raises(openai.AuthenticationError):
        oa.models.list()
    poll_until(
        lambda: any(r["corral"].get("reason") == "token_no_user" for r in oidc_gate.audit_records()),
        5.0,
        what="a token_no_user record",
    )
    assert "\u202e" not in oidc_gate.audit_log.read_text("utf-8")


def test_an_oversized_token_is_audited_as_too_large(oidc_gate):
    part = "a" * 6000
    huge = f"{part}.{part}.sig"
    with anthropic_client(oidc_gate, huge) as an, pytest.raises(anthropic.AuthenticationError):
        an.messages.create(model=mf.CHAT_MODEL, max_tokens=8, messages=MESSAGES)
    poll_until(
        lambda: any(r["corral"].get("reason") == "token_too_large" for r in oidc_gate.audit_records()),
        5.0,
        what="a token_too_large record",
    )
