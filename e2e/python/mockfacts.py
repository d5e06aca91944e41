"""What the mock upstream answers (crates/corral-testsupport/src/shapes.rs), as the tests expect it."""

LOCAL_MODELS = {
    "llama3.2:latest",
    "qwen3:8b",
    "llava:7b",
    "nomic-embed-text:latest",
    "secret-model:latest",
}
# Run on ollama.com under the owner's account; `kimi-k2:1t` is remote only by its `remote_host`.
CLOUD_MODELS = {"gpt-oss:120b-cloud", "glm-4.6:cloud", "kimi-k2:1t"}
ALL_MODELS = LOCAL_MODELS | CLOUD_MODELS

CHAT_MODEL = "llama3.2"
EMBED_MODEL = "nomic-embed-text"
CLOUD_MODEL = "gpt-oss:120b-cloud"
HIDDEN_CLOUD_MODEL = "kimi-k2:1t"

# Four content chunks by default, one completion token each.
TEXT = "Hello from the mock"
CHUNKS = 4
PROMPT_TOKENS = 26
EMBED_DIM = 8

# `slow*` models: 10 chunks, 150 ms apart.
SLOW_MODEL = "slow"
SLOW_CHUNKS = 10
SLOW_DELAY_S = 0.150


def embedding(seed: int) -> list[float]:
    return [((seed * 31 + i * 7) % 100) / 100.0 - 0.5 for i in range(EMBED_DIM)]


def close(a, b, tol=1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "days": {"type": "integer", "description": "Forecast days"},
            },
            "required": ["city"],
        },
    },
}
# The mock fills every declared property with a value of its type.
WEATHER_ARGS = {"city": "Paris", "days": 1}
