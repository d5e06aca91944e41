"""The official clients, pointed at a gate exactly as the README tells a user to."""

from __future__ import annotations

import itertools

import anthropic
import ollama
import openai

from harness import Gate

CLIENT_TIMEOUT_S = 30.0

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}"


def ollama_client(gate: Gate, key: str | None) -> ollama.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else None
    return ollama.Client(host=gate.url, headers=headers, timeout=CLIENT_TIMEOUT_S)


def openai_client(gate: Gate, key: str) -> openai.OpenAI:
    # No retries: a refused request must surface at once, not be replayed.
    return openai.OpenAI(
        base_url=gate.url + "/v1", api_key=key, max_retries=0, timeout=CLIENT_TIMEOUT_S
    )



def anthropic_client(gate: Gate, key: str) -> anthropic.Anthropic:
    # As Anthropic's docs set it up: the key as api_key (sent in x-api-key), the gate as base_url.
    return anthropic.Anthropic(
        base_url=gate.url, api_key=key, max_retries=0, timeout=CLIENT_TIMEOUT_S
    )
