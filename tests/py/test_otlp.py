"""OTLP export (`--otlp-endpoint`): a gateway on the replay upstream posts one span per request,
as OTLP/HTTP JSON, to a small receiver on loopback. The client's `traceparent` sets the span's
trace and parent; without one the span starts a trace of its own. No key secret is ever sent."""

import http.server
import json
import threading
import time

import openai
import pytest
import requests

import servers
import sdk_cases as cases
import transcripts
from conftest import routed_setup

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class Receiver(http.server.ThreadingHTTPServer):
    """Keeps every posted request: (path, content type, raw body)."""

    def __init__(self):
        self.posts: list[tuple[str, str, bytes]] = []
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture()
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def spans(receiver: Receiver) -> list[dict]:
    found = []
    for _, _, body in receiver.posts:
        for resource in json.loads(body)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                found.extend(scope["spans"])
    return found


def wait_for(receiver: Receiver, request_ids: list[str], timeout: float = 10) -> dict[str, dict]:
    """The spans of `request_ids`, by request id, once all have arrived (batches go out every second)."""
    deadline = time.monotonic() + timeout
    while True:
        by_id = {attributes(s).get("arouter.request_id"): s for s in spans(receiver)}
        if all(r in by_id for r in request_ids) or time.monotonic() > deadline:
            return by_id
        time.sleep(0.1)


def attributes(span: dict) -> dict:
    out = {}
    for a in span["attributes"]:
        (value,) = a["value"].values()
        out[a["key"]] = value
    return out


def test_requests_are_exported_as_spans(tmp_path, replay_upstream, master_key, receiver):
    env, config = routed_setup(replay_upstream[0])
    env["AROUTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{receiver.server_address[1]}"
    with servers.gateway(tmp_path, env, config, master_key) as base:
        secret = cases.create_key(base, master_key, name="otlp")["key"]
        client = openai.OpenAI(base_url=base + "/v1", api_key=secret, max_retries=0, timeout=30)
        t = transcripts.load("openai/chat_nonstream_instructions.json")
        body = {**t["request"]["body"], "model": "openai/" + t["request"]["body"]["model"]}
        traced = client.chat.completions.with_raw_response.create(**body, extra_headers={"traceparent": TRACEPARENT})
        plain = client.chat.completions.with_raw_response.create(**body)
        bad = client.chat.completions.with_raw_response.create(**body, extra_headers={"traceparent": "00-zz-01"})
        usage = traced.parse().usage
        # Without a key: refused before any provider is called.
        missing = requests.get(base + "/v1/models/x", headers={"traceparent": TRACEPARENT}, timeout=10)
        ids = [r.headers["x-request-id"] for r in (traced, plain, bad)] + [missing.headers["x-request-id"]]
        by_id = wait_for(receiver, ids)
    assert all(r in by_id for r in ids), sorted(by_id)
    for path, content_type, _ in receiver.posts:
        assert path == "/v1/traces" and content_type == "application/json"
    raw = b"".join(body for _, _, body in receiver.posts)
    for credential in (secret, master_key, "sk-provider-openai"):
        assert credential.encode() not in raw

    span = by_id[ids[0]]
    assert span["traceId"] == TRACE_ID
    assert span["parentSpanId"] == PARENT_ID
    assert len(span["spanId"]) == 16 and span["spanId"] != PARENT_ID
    assert span["name"] == "chat_completions" and span["kind"] == 2
    assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"]) > 0
    a = attributes(span)
    assert a["http.request.method"] == "POST"
    assert a["url.path"] == "/v1/chat/completions"
    assert a["http.response.status_code"] == "200"
    assert a["gen_ai.request.model"] == body["model"]
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.response.model"] == t["request"]["body"]["model"]
    assert a["gen_ai.usage.input_tokens"] == str(usage.prompt_tokens)
    assert a["gen_ai.usage.output_tokens"] == str(usage.completion_tokens)
    assert a["arouter.cost_usd"] == pytest.approx(usage.cost, abs=1e-12) and usage.cost > 0
    assert a["arouter.attempts"] == "1"

    # Without a (valid) traceparent: a new trace each, no parent.
    for request_id in ids[1:3]:
        other = by_id[request_id]
        assert len(other["traceId"]) == 32 and other["traceId"] not in (TRACE_ID, "0" * 32)
        assert other["parentSpanId"] == ""
    assert by_id[ids[1]]["traceId"] != by_id[ids[2]]["traceId"]

    # A request that reaches no provider is a span too.
    lost = by_id[ids[3]]
    assert lost["traceId"] == TRACE_ID and lost["parentSpanId"] == PARENT_ID
    assert attributes(lost)["http.response.status_code"] == "401"
    assert "gen_ai.request.model" not in attributes(lost)


def test_an_https_endpoint_is_refused_at_start(tmp_path, replay_upstream, master_key):
    env, config = routed_setup(replay_upstream[0])
    env["AROUTER_OTLP_ENDPOINT"] = "https://127.0.0.1:4318"
    with pytest.raises(RuntimeError) as refused:
        with servers.gateway(tmp_path, env, config, master_key):
            pass
    assert "https is not supported" in str(refused.value)
