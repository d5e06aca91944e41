"""`corral serve --metrics-listen`: Prometheus text exposition, read with the official parser."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from clients import ollama_client
from harness import Corral, poll_until, raw_request


def _metrics_url(gate) -> str:
    """The address `serve` announced on stderr (`corral: metrics on http://ADDR/metrics`)."""

    def announced():
        m = re.search(r"^corral: metrics on (http://\S+/metrics)$", gate.server.stderr_text(), re.M)
        return m and m.group(1)

    return poll_until(announced, 10, what="the metrics address on stderr")


def _scrape(url: str) -> tuple[dict, dict]:
    """Families by name (name -> type) and every sample ((name, sorted labels) -> value)."""
    status, headers, body = raw_request(url)
    assert status == 200, body
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode("utf-8")
    for name in re.findall(r"^# TYPE (\S+) ", text, re.M):
        assert f"# HELP {name} " in text, f"{name} has no HELP line"
    types, samples = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def test_metrics_parse_and_count_what_the_gate_did(tmp_path, mock):
    corral = Corral(data_dir=tmp_path / "data")
    gate = corral.serve(mock.url, tmp_path / "audit.ndjson", "--metrics-listen", "127.0.0.1:0")
    try:
        url = _metrics_url(gate)
        key = gate.new_key("metered", "user")
        types, before = _scrape(url)
        assert types["corral_requests"] == "counter"
        assert types["corral_tokens"] == "counter"
        assert types["corral_request_duration_seconds"] == "histogram"
        assert types["corral_audit_log_writable"] == "gauge"
        assert before[("corral_audit_log_writable", ())] == 1

        with ollama_client(gate, key) as ol:
            ol.chat(model="llama3.2", messages=[{"role": "user", "content": "hello"}])
        assert raw_request(gate.url + "/api/pull", "POST", b'{"model":"x"}',
                           {"Authorization": f"Bearer {key}"})[0] == 403

        chat = ("corral_requests_total", (("action", "proxy"), ("code", "200"),
                ("endpoint_class", "inference"), ("outcome", "success"), ("reason", ""),
                ("route", "api.chat")))
        denied = ("corral_requests_total", (("action", "deny"), ("code", "403"),
                  ("endpoint_class", "admin"), ("outcome", "failure"),
                  ("reason", "endpoint_class"), ("route", "api.pull")))
        prompt = ("corral_tokens_total", (("policy", "user"), ("type", "prompt")))
        _, after = _scrape(url)
        assert after[chat] == before.get(chat, 0) + 1
        assert after[denied] == before.get(denied, 0) + 1
        assert after[prompt] > before.get(prompt, 0)
        count = ("corral_request_duration_seconds_count", ())
        assert after[count] >= before[count] + 2
        # Every counter only grows between two scrapes.
        for series, value in before.items():
            if series[0].endswith(("_total", "_count", "_bucket", "_sum")):
                assert after[series] >= value, series
        # Nothing of the prompt and no key in the metrics.
        text = raw_request(url)[2].decode()
        assert "hello" not in text and key not in text and "crl_" not in text
    finally:
        assert gate.stop() == 0
