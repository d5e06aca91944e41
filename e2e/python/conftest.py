"""Session fixtures: one mock Ollama, one real `corral serve` in front of it, keys made by the CLI.

The official clients (`ollama`, `openai`, `anthropic`) are pointed at the gate exactly as the README tells a
user to: only the base URL and the key change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clients import ollama_client, openai_client
from harness import Corral, start_mock

# Client libraries read these; a developer's shell must not change what the tests send.
for _var in (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OLLAMA_API_KEY",
    "OLLAMA_HOST",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = "127.0.0.1,localhost"

# Extra policies beside the built-in `user` and `admin`. A new policy starts from `user`.
CONFIG_TOML = """\
[policies.llama-only]
models = ["llama3.2"]

[policies.no-tools]
tools = false

[policies.no-images]
images = false

[policies.limited]
max_requests_per_minute = 3

[policies.quota]
max_tokens_per_day = 10
"""


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corral-e2e")


@pytest.fixture(scope="session")
def mock(workdir):
    m = start_mock(workdir)
    yield m
    m.server.terminate()


@pytest.fixture(scope="session")
def corral(workdir) -> Corral:
    config = workdir / "corral.toml"
    config.write_text(CONFIG_TOML)
    return Corral(data_dir=workdir / "data", config=config)


@pytest.fixture(scope="session")
def gate(corral, mock, workdir):
    g = corral.serve(mock.url, workdir / "audit" / "audit.ndjson")
    yield g
    code = g.stop()
    # Everything the session sent must be on record, intact, after a graceful stop.
    verify = g.verify_audit()
    assert code == 0, f"corral serve exited {code} on SIGTERM\n{g.server.stderr_text()}"
    assert verify.returncode == 0, f"audit verify failed:\n{verify.stdout}{verify.stderr}"


@pytest.fixture(scope="session")
def user_key(corral, gate) -> str:
    return gate.new_key("e2e-user", "user")


@pytest.fixture(scope="session")
def admin_key(corral, gate) -> str:
    return gate.new_key("e2e-admin", "admin")


@pytest.fixture
def ol(gate, user_key):
    with ollama_client(gate, user_key) as c:
        yield c


@pytest.fixture
def oa(gate, user_key):
    with openai_client(gate, user_key) as c:
        yield c
