"""Mutual TLS: the official `openai` and `ollama` Python clients reach a gate that requires client
certificates (`server.tls_client_ca`) by giving their httpx client the CA and the application's
certificate, as the README shows; without the certificate nothing is served, and a key bound to
other certificate names (`client_cert_names`) is refused in the client's dialect.

The CA and the certificates are made with the `openssl` command line, as the README's example does.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import ollama
import openai
import pytest

import mockfacts as mf
from harness import STARTUP_DEADLINE_S, Corral, Server, parse_port, poll_until

MESSAGES = [{"role": "user", "content": "Say hello."}]

CONFIG = """\
[server]
tls_cert = "server.pem"
tls_key = "server.key"
tls_client_ca = "ca.pem"

[policies.apps]
models = ["*"]
client_cert_names = ["app-*"]
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(d: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "30", "-subj", f"/CN={name}",
        cwd=d,
    )


def issue(d: Path, ca: str, name: str, subject: str, ext: str) -> None:
    """A certificate `name.pem` (key `name.key`) for `subject`, signed by `ca`."""
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
        cwd=d,
    )
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "30", "-extfile", f"{name}.ext",
        cwd=d,
    )


def der_sha256(pem: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(pem.read_text())
    return hashlib.sha256(der).hexdigest().upper()


@dataclass
class MtlsGate:
    dir: Path
    server: Server
    port: int
    audit_log: Path
    app_key: str
    user_key: str

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def tls(self, client: str | None) -> ssl.SSLContext:
        """What the httpx client is given: trust the gate's CA, present `client`'s certificate."""
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca.pem"))
        if client is not None:
            ctx.load_cert_chain(str(self.dir / f"{client}.pem"), str(self.dir / f"{client}.key"))
        return ctx

    def records(self, path: str) -> list[dict]:
        import json

        lines = self.audit_log.read_text("utf-8").splitlines() if self.audit_log.exists() else []
        return [r for r in map(json.loads, filter(None, lines)) if r["url"]["path"] == path]


@pytest.fixture(scope="module")
def mtls(tmp_path_factory, mock):
    d = tmp_path_factory.mktemp("mtls")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    # The gate's own certificate; the clients trust the same CA for it.
    issue(d, "ca", "server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    client_ext = "extendedKeyUsage=clientAuth"
    issue(d, "ca", "app", "/CN=app-billing", client_ext)
    issue(d, "ca", "web", "/CN=web-frontend", client_ext)
    issue(d, "other-ca", "stranger", "/CN=app-billing", client_ext)
    (d / "corral.toml").write_text(CONFIG)
    corral = Corral(data_dir=d / "data", config=d / "corral.toml")
    app_key = corral.create_key("billing", "apps")
    user_key = corral.create_key("someone", "user")
    audit_log = d / "audit.ndjson"
    argv = corral.base_argv() + [
        "serve", "--listen", "127.0.0.1:0", "--upstream", mock.url, "--audit-log", str(audit_log),
    ]
    server = Server(argv, d / "corral.stderr", corral.env())
    port = parse_port(server.first_line(), r"listening on https://127\.0\.0\.1:(\d+)")
    g = MtlsGate(d, server, port, audit_log, app_key, user_key)
    # Ready once a handshake with the application's certificate completes.
    ready = g.tls("app")

    def handshake() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                with ready.wrap_socket(s, server_hostname="localhost"):
                    return True
        except OSError:
            return False

    poll_until(handshake, STARTUP_DEADLINE_S, what="the mTLS gate accepting handshakes")
    yield g
    assert server.terminate() == 0, server.stderr_text()
    verify = corral.cli("audit", "verify", str(audit_log), check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def oa(g: MtlsGate, key: str, client: str | None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=g.url + "/v1",
        api_key=key,
        max_retries=0,
        timeout=30,
        http_client=httpx.Client(verify=g.tls(client)),
    )


def ol(g: MtlsGate, key: str, client: str | None) -> ollama.Client:
    # ollama.Client hands its extra keyword arguments to httpx.Client.
    return ollama.Client(
        host=g.url, headers={"Authorization": f"Bearer {key}"}, timeout=30, verify=g.tls(client)
    )


def test_openai_sdk_over_mtls(mtls):
    with oa(mtls, mtls.app_key, "app") as c:
        r = c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES)
        assert r.choices[0].message.content == mf.TEXT
        chunks = list(c.chat.completions.create(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True))
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == mf.TEXT
    records = poll_until(lambda: mtls.records("/v1/chat/completions"), 5, what="audit records")
    tls = records[0]["tls"]["client"]
    assert tls["x509"]["subject"]["common_name"] == ["app-billing"]
    assert tls["hash"]["sha256"] == der_sha256(mtls.dir / "app.pem")


def test_ollama_client_over_mtls(mtls):
    c = ol(mtls, mtls.app_key, "app")
    r = c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=False)
    assert r.message.content == mf.TEXT
    parts = list(c.chat(model=mf.CHAT_MODEL, messages=MESSAGES, stream=True))
    assert "".join(p.message.content for p in parts) == mf.TEXT


def test_without_the_client_certificate_nothing_is_served(mtls, mock):
    before = len(mtls.records("/v1/models")) + len(mtls.records("/api/tags"))
    with oa(mtls, mtls.app_key, None) as c:
        with pytest.raises(openai.APIConnectionError):
            c.models.list()
    with pytest.raises((httpx.HTTPError, ConnectionError, ssl.SSLError)):
        ol(mtls, mtls.app_key, None).list()
    # Nor with a certificate of the right name from another CA.
    with oa(mtls, mtls.app_key, "stranger") as c:
        with pytest.raises(openai.APIConnectionError):
            c.models.list()
    time.sleep(0.3)
    # No HTTP exchange happened: nothing to audit.
    assert len(mtls.records("/v1/models")) + len(mtls.records("/api/tags")) == before


def test_a_key_bound_to_other_names_is_refused_in_each_dialect(mtls):
    with oa(mtls, mtls.app_key, "web") as c:
        with pytest.raises(openai.PermissionDeniedError) as e:
            c.models.list()
    assert e.value.status_code == 403
    assert e.value.code == "client_certificate"
    with pytest.raises(ollama.ResponseError) as e:
        ol(mtls, mtls.app_key, "web").list()
    assert e.value.status_code == 403
    assert "client certificate" in e.value.error
    # A key of a policy without a binding works with any certificate of the CA.
    with oa(mtls, mtls.user_key, "web") as c:
        assert c.models.list().data
