"""`GET /metrics`: the Prometheus exposition, parsed with the Prometheus
client's own text parser, moves as requests go through the replay upstream;
only a management key (or the master key) may read it on the main address,
`--metrics-listen` serves it without a key, and no secret is in it."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import servers
import transcripts
from conftest import free_port

PROVIDER_KEYS = ("sk-provider-openai", "sk-provider-anthropic", "sk-provider-gemini")


@pytest.fixture(scope="module")
def metrics_gateway(tmp_path_factory, replay_upstream, master_key):
    """A gateway on the replay upstream with `--metrics-listen` (through its
    environment variable): yields (base URL, metrics URL without a key)."""
    url, _ = replay_upstream
    metrics_addr = f"127.0.0.1:{free_port()}"
    env = {
        "OPENAI_API_KEY": PROVIDER_KEYS[0],
        "OPENAI_BASE_URL": f"{url}/v1",
        "ANTHROPIC_API_KEY": PROVIDER_KEYS[1],
        "ANTHROPIC_BASE_URL": url,
        "GEMINI_API_KEY": PROVIDER_KEYS[2],
        "GEMINI_BASE_URL": url,
        "AROUTER_METRICS_LISTEN": metrics_addr,
    }
    with servers.gateway(tmp_path_factory.mktemp("metrics"), env, None, master_key) as base:
        yield base, f"http://{metrics_addr}/metrics"


def scrape(base: str, key: str) -> str:
    r = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


def settled(base: str, key: str, ready) -> dict[str, list]:
    """Scrapes until `ready(samples)` holds (3 s at most): a request's
    access record, which moves its counters, is taken on its serving thread
    just after its last bytes are written, so the client may have read them
    a moment before."""
    deadline = time.monotonic() + 3
    while True:
        samples = parse(scrape(base, key))
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def parse(text: str) -> dict[str, list]:
    """Every sample by name, through prometheus_client's parser (which
    raises on anything that is not the text format)."""
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def total(samples: dict[str, list], name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(
        s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())
    )


def chat_body(name: str) -> dict:
    body = dict(transcripts.load(name)["request"]["body"])
    body["model"] = "openai/" + body["model"]
    return body


def catalog_label(base: str, key: str, model_id: str) -> str:
    """The model label a served `provider/model` gets: its name when the
    catalog lists it, else `other`."""
    r = requests.get(base + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    ids = {m["id"] for m in r.json()["data"]}
    return model_id.split("/", 1)[1] if model_id in ids else "other"


def test_counters_and_histograms_move_as_requests_are_made(metrics_gateway, replay_control, master_key):
    base, _ = metrics_gateway
    bearer = {"Authorization": f"Bearer {master_key}"}
    before = parse(scrape(base, master_key))

    plain = chat_body("openai/chat_nonstream_instructions.json")
    r = requests.post(base + "/v1/chat/completions", headers=bearer, json=plain, timeout=30)
    assert r.status_code == 200, r.text
    streamed = chat_body("openai/chat_stream_text_after_tool_include_usage.json")
    with requests.post(base + "/v1/chat/completions", headers=bearer, json=streamed, stream=True, timeout=30) as r:
        assert r.status_code == 200 and b"[DONE]" in r.content
    # A provider failure: the replay upstream answers 503 once.
    url, control = replay_control
    control.post(
        url + "/_replay/faults",
        json={"match": {"path": "/v1/chat/completions"}, "fault": {"status": 503}, "times": 1},
    ).raise_for_status()
    r = requests.post(base + "/v1/chat/completions", headers=bearer, json=plain, timeout=30)
    assert r.status_code >= 500, r.text

    after = settled(
        base,
        master_key,
        lambda now: total(now, "arouter_request_duration_seconds_count", provider="openai")
        - total(before, "arouter_request_duration_seconds_count", provider="openai")
        >= 3,
    )
    label = catalog_label(base, master_key, plain["model"])
    ok = dict(route="chat_completions", dialect="openai", provider="openai", status="200")
    moved = lambda name, **labels: total(after, name, **labels) - total(before, name, **labels)  # noqa: E731
    assert moved("arouter_requests_total", **ok) == 2
    assert moved("arouter_requests_total", model=label, **ok) >= 1
    assert moved("arouter_requests_total", route="chat_completions", status="200") == 2
    failed = [s for s in after["arouter_requests_total"] if s.labels["route"] == "chat_completions" and s.labels["status"] >= "500"]
    assert failed, after["arouter_requests_total"]
    assert moved("arouter_upstream_attempts_total", provider="openai") == 3
    assert moved("arouter_upstream_failures_total", provider="openai", cause="status_5xx") == 1
    assert moved("arouter_input_tokens_total", provider="openai") > 0
    assert moved("arouter_output_tokens_total", provider="openai") > 0
    assert moved("arouter_cost_usd_total", provider="openai") > 0
    for histogram in ("arouter_request_duration_seconds", "arouter_upstream_duration_seconds",
                      "arouter_time_to_first_token_seconds", "arouter_gateway_added_seconds"):
        assert moved(histogram + "_count", provider="openai") == 3, histogram
        inf = total(after, histogram + "_bucket", provider="openai", le="+Inf")
        assert inf == total(after, histogram + "_count", provider="openai"), histogram
    # The scrape before this one was answered, and counted, on its route.
    assert moved("arouter_requests_total", route="metrics", provider="none", status="200") >= 1
    assert total(after, "arouter_connections") >= 1
    assert total(after, "arouter_in_flight_requests") >= 1, "the scrape itself is in flight"
    assert total(after, "arouter_store_queue_depth") >= 0
    assert total(after, "arouter_upstream_pool_idle_connections", provider="openai") >= 1


def test_unknown_models_fold_into_one_label(metrics_gateway, master_key):
    base, _ = metrics_gateway
    bearer = {"Authorization": f"Bearer {master_key}"}
    for name in ("no-such-model-a1", "no-such-model-b2"):
        requests.post(
            base + "/v1/chat/completions",
            headers=bearer,
            json={"model": f"openai/{name}", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
    text = scrape(base, master_key)
    assert "no-such-model" not in text
    models = {s.labels["model"] for s in parse(text)["arouter_requests_total"]}
    assert "other" in models


def test_only_a_management_key_reads_metrics_on_the_main_address(metrics_gateway, master_key):
    import sdk_cases

    base, _ = metrics_gateway
    assert requests.get(base + "/metrics", timeout=10).status_code == 401
    inference = sdk_cases.create_key(base, master_key, name="inference")["key"]
    r = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {inference}"}, timeout=10)
    assert r.status_code == 403, r.text
    management = sdk_cases.create_key(base, master_key, name="ops", management=True)["key"]
    text = scrape(base, management)
    parse(text)
    for secret in (master_key, inference, management, *PROVIDER_KEYS):
        assert secret not in text


def test_metrics_listen_serves_without_a_key(metrics_gateway, master_key):
    base, open_url = metrics_gateway
    r = requests.get(open_url, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(r.text)
    assert "arouter_requests_total" in samples
    assert master_key not in r.text
    assert requests.get(open_url.replace("/metrics", "/other"), timeout=10).status_code == 404
    r = requests.post(open_url, timeout=10)
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert requests.head(open_url, timeout=10).status_code == 200
    # The separate address serves metrics only.
    assert requests.get(open_url.replace("/metrics", "/healthz"), timeout=10).status_code == 404


def test_rate_limited_answers_are_counted(metrics_gateway, master_key):
    import sdk_cases

    base, _ = metrics_gateway
    before = parse(scrape(base, master_key))
    key = sdk_cases.create_key(base, master_key, name="one-a-minute", rate_limit={"requests": 1, "interval": "1m"})["key"]
    statuses = [
        requests.get(base + "/api/v1/key", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code
        for _ in range(2)
    ]
    assert statuses == [200, 429]
    after = settled(base, master_key, lambda now: total(now, "arouter_rate_limited_total") > total(before, "arouter_rate_limited_total"))
    assert total(after, "arouter_rate_limited_total") - total(before, "arouter_rate_limited_total") == 1
    assert total(after, "arouter_requests_total", route="current_key", status="429") == 1
    assert "arouter_insufficient_credit_total" in after


def test_gauges_count_a_stream_while_it_is_relayed(metrics_gateway, replay_control, master_key):
    base, _ = metrics_gateway
    url, control = replay_control
    # The provider sends two events, then nothing for 1.5 s: the stream is
    # open, and its answer begun, while the metrics are read.
    control.post(
        url + "/_replay/faults",
        json={"match": {"path": "/v1/chat/completions"}, "fault": {"stall_after_events": 2, "stall_ms": 1500}},
    ).raise_for_status()
    body = chat_body("openai/chat_stream_text_after_tool_include_usage.json")
    with requests.post(
        base + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {master_key}"},
        json=body,
        stream=True,
        timeout=30,
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith(b"data:"))
        during = parse(scrape(base, master_key))
        rest = b"\n".join(lines)
    assert b"[DONE]" in rest
    after = settled(base, master_key, lambda now: total(now, "arouter_in_flight_streams") == 0)
    assert total(during, "arouter_in_flight_streams") == 1
    assert total(during, "arouter_in_flight_requests") == 2, "the stream and the scrape"
    assert total(during, "arouter_upstream_pool_busy_connections", provider="openai") == 1
    assert total(after, "arouter_in_flight_streams") == 0
    assert total(after, "arouter_in_flight_requests") == 1, "the scrape"
    assert total(after, "arouter_upstream_pool_busy_connections", provider="openai") == 0
