"""Message batches (`/v1/messages/batches`) through the official `anthropic` SDK, against
gateways whose providers are played by the replay upstream.

One batch mixes providers: each request routes like `/v1/messages` (`provider/model`),
runs through the gateway's own worker, and its answer is the recorded one. Each request
that reached a provider is billed as a transaction carrying the batch id and its
`custom_id`. Also: list paging, cancel, results before the end, delete, a 402 at
create time, invalid input, a provider's 429 retried, the key's rate limit, the
configured limits, and a `kill -9` mid-batch after which the batch resumes without
re-running a finished request or charging one twice.
"""

from __future__ import annotations

import json
import signal
import time

import anthropic
import pytest
import requests

import contract
import sdk_cases as cases
import servers
from conftest import routed_setup
from sdk_cases import upstream_log

ANTHROPIC = "anthropic/messages_nonstream_opus46_basic.json"
OPENAI = "openai/chat_nonstream_instructions.json"
GEMINI = "gemini/generate_content_instructions.json"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def params(model: str) -> dict:
    """A request matching one of the three recordings above, by model."""
    if model.startswith("anthropic/"):
        body = {k: v for k, v in cases.request_body(ANTHROPIC).items() if k != "stream"}
        return {**body, "model": model}
    return {"model": model, "max_tokens": 1024, "system": "You are a helpful assistant.", "messages": QUESTION}


def recorded_text(model: str) -> str:
    if model.startswith("anthropic/"):
        return cases.response(ANTHROPIC)["body"]["content"][0]["text"]
    if model.startswith("openai/"):
        return cases.openai_message(OPENAI)["content"]
    return cases.response(GEMINI)["body"]["candidates"][0]["content"]["parts"][0]["text"]


def client(base: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)


def wait_ended(c: anthropic.Anthropic, batch_id: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        batch = c.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.processing_status}: {batch.request_counts}"
        time.sleep(0.1)


def batch_transactions(base: str, master_key: str, key_hash: str, count: int, timeout: float = 10) -> list[dict]:
    """The key's transactions, once `count` are stored."""
    deadline = time.monotonic() + timeout
    while True:
        rows = requests.get(
            base + "/api/v1/transactions",
            params={"key_id": key_hash, "limit": 100},
            headers={"Authorization": f"Bearer {master_key}"},
            timeout=10,
        ).json()["data"]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@pytest.fixture()
def key(routed_gateway, replay_control, master_key):
    created = cases.create_key(routed_gateway, master_key, name="batches")
    return created["key"], created["data"]["hash"]


def test_a_mixed_batch_runs_each_request_on_its_provider_and_bills_it(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    c = client(routed_gateway, secret)
    models = {"a-1": "anthropic/claude-opus-4-6", "o-1": "openai/gpt-4o", "g-1": "gemini/gemini-2.0-flash"}
    requests_ = [{"custom_id": cid, "params": params(m)} for cid, m in models.items()]
    requests_.append({"custom_id": "bad-model", "params": params("nowhere/model-x")})
    created = c.messages.batches.create(requests=requests_)
    assert created.id.startswith("msgbatch_")
    assert created.type == "message_batch"
    assert created.processing_status == "in_progress"
    assert created.results_url is None and created.ended_at is None
    assert created.expires_at > created.created_at

    ended = wait_ended(c, created.id)
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 3, 1, 0, 0)
    assert ended.ended_at is not None
    assert ended.results_url == f"{routed_gateway}/v1/messages/batches/{created.id}/results"

    results = {r.custom_id: r.result for r in c.messages.batches.results(created.id)}
    assert list(results) == ["a-1", "o-1", "g-1", "bad-model"]  # the batch's order
    for cid, model in models.items():
        assert results[cid].type == "succeeded", results[cid]
        message = results[cid].message
        assert "".join(b.text for b in message.content if b.type == "text") == recorded_text(model)
        assert message.stop_reason == "end_turn"
    assert results["bad-model"].type == "errored"
    assert results["bad-model"].error.error.type in ("not_found_error", "invalid_request_error")

    sent = {r["path"] for r in upstream_log(replay_control)}
    assert sent == {"/v1/messages", "/v1/chat/completions", "/v1beta/models/gemini-2.0-flash:generateContent"}

    # One transaction per request that reached a provider, naming the batch and request.
    rows = batch_transactions(routed_gateway, master_key, key_hash, 3)
    assert sorted((r["batch_id"], r["custom_id"]) for r in rows) == sorted((created.id, cid) for cid in models)
    assert {r["model"] for r in rows} == {"anthropic/claude-opus-4-6", "openai/gpt-4o", "gemini/gemini-2.0-flash"}
    assert all(r["cost"] > 0 and r["prompt_tokens"] > 0 for r in rows)
    usage = requests.get(
        routed_gateway + "/api/v1/key", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    ).json()["data"]["usage"]
    assert usage == pytest.approx(sum(r["cost"] for r in rows))

    # Deleted once ended; then gone.
    deleted = c.messages.batches.delete(created.id)
    assert (deleted.id, deleted.type) == (created.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        c.messages.batches.retrieve(created.id)


def test_list_pages_newest_first_and_shows_only_the_keys_own(routed_gateway, replay_control, master_key, key):
    secret, _ = key
    c = client(routed_gateway, secret)
    made = [c.messages.batches.create(requests=[{"custom_id": "x", "params": params("openai/gpt-4o")}]).id for _ in range(3)]
    page = c.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == made[::-1][:2]
    assert page.has_more and page.first_id == made[2] and page.last_id == made[1]
    # The SDK's auto-paging follows after_id to the end.
    assert [b.id for b in c.messages.batches.list(limit=2)] == made[::-1]
    newer = c.messages.batches.list(before_id=made[0], limit=1)
    assert [b.id for b in newer.data] == [made[1]]
    other = cases.create_key(routed_gateway, master_key, name="other")["key"]
    assert client(routed_gateway, other).messages.batches.list().data == []
    with pytest.raises(anthropic.NotFoundError):
        client(routed_gateway, other).messages.batches.retrieve(made[0])
    for batch_id in made:
        wait_ended(c, batch_id)


def test_cancel_ends_what_has_not_run_and_results_wait_for_the_end(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    c = client(routed_gateway, secret)
    # Each answer takes a while, and at most 4 run at once per provider: most wait.
    cases.fault(replay_control, {"model": "gpt-4o"}, {"delay_ms": 1500}, times=20)
    batch = c.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": params("openai/gpt-4o")} for i in range(10)])
    time.sleep(0.5)
    # The SDK will not ask before `results_url` is set; asked anyway, the gateway says why not.
    with pytest.raises(anthropic.AnthropicError):
        c.messages.batches.results(batch.id)
    early = requests.get(f"{routed_gateway}/v1/messages/batches/{batch.id}/results", headers={"x-api-key": secret}, timeout=10)
    assert early.status_code == 400 and early.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        c.messages.batches.delete(batch.id)

    canceling = c.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended")
    assert canceling.cancel_initiated_at is not None
    ended = wait_ended(c, batch.id)
    counts = ended.request_counts
    assert counts.canceled >= 1 and counts.succeeded >= 1
    assert counts.canceled + counts.succeeded == 10 and counts.processing == 0
    results = list(c.messages.batches.results(batch.id))
    assert sorted(r.result.type for r in results) == sorted(["canceled"] * counts.canceled + ["succeeded"] * counts.succeeded)
    # Only what ran was sent and billed.
    assert len(upstream_log(replay_control)) == counts.succeeded
    rows = batch_transactions(routed_gateway, master_key, key_hash, counts.succeeded)
    assert len(rows) == counts.succeeded


def test_a_key_without_credit_gets_402_at_create(routed_gateway, replay_control, master_key):
    poor = cases.create_key(routed_gateway, master_key, name="poor", limit=0.000001)["key"]
    with pytest.raises(anthropic.APIStatusError) as refused:
        client(routed_gateway, poor).messages.batches.create(requests=[{"custom_id": "a", "params": params("openai/gpt-4o")}])
    assert refused.value.status_code == 402
    assert refused.value.body["error"]["type"] == "billing_error"
    assert client(routed_gateway, poor).messages.batches.list().data == []
    assert upstream_log(replay_control) == []


@pytest.mark.parametrize(
    "body, status, needle",
    [
        ({"requests": []}, 400, "at least one"),
        ({"requests": [{"custom_id": "a", "params": params("openai/gpt-4o")}] * 2}, 400, "requests.1.custom_id"),
        ({"requests": [{"custom_id": "a b", "params": params("openai/gpt-4o")}]}, 400, "requests.0.custom_id"),
        ({"requests": [{"custom_id": "a", "params": {**params("openai/gpt-4o"), "stream": True}}]}, 400, "streaming"),
        ({"requests": [{"custom_id": "a", "params": {"model": "openai/gpt-4o", "messages": QUESTION}}]}, 400, "requests.0.params"),
        ({"nope": 1}, 400, "requests"),
    ],
)
def test_invalid_batches_get_anthropic_errors(routed_gateway, master_key, body, status, needle):
    r = requests.post(routed_gateway + "/v1/messages/batches", headers={"x-api-key": master_key}, json=body, timeout=10)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert needle in error["error"]["message"]


def test_unknown_batches_are_404(routed_gateway, master_key):
    c = client(routed_gateway, master_key)
    for call in (c.messages.batches.retrieve, c.messages.batches.cancel, c.messages.batches.delete):
        with pytest.raises(anthropic.NotFoundError):
            call("msgbatch_doesnotexist")
    r = requests.get(routed_gateway + "/v1/messages/batches/msgbatch_nope/results", headers={"x-api-key": master_key}, timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_a_providers_429_is_retried_with_backoff(routed_gateway, replay_control, master_key, key):
    secret, key_hash = key
    c = client(routed_gateway, secret)
    cases.fault(replay_control, {"model": "gemini-2.0-flash"}, {"status": 429}, times=2)
    batch = c.messages.batches.create(requests=[{"custom_id": "g", "params": params("gemini/gemini-2.0-flash")}])
    ended = wait_ended(c, batch.id, timeout=30)
    assert ended.request_counts.succeeded == 1
    sent = upstream_log(replay_control)
    assert [r["status"] for r in sent] == [429, 429, 200]
    # Each call is listed, the refused ones as failed and free, all naming the batch request.
    rows = batch_transactions(routed_gateway, master_key, key_hash, 3)
    assert sorted((r["status"], r["upstream_status"]) for r in rows) == [("complete", 200), ("failed", 429), ("failed", 429)]
    assert all(r["custom_id"] == "g" and r["batch_id"] == batch.id for r in rows)
    assert [r["cost"] for r in rows if r["status"] == "failed"] == [0, 0]
    # Backed off: 1 s, then 2 s.
    assert sent[2]["started_ms"] - sent[0]["started_ms"] >= 2900


def test_the_keys_rate_limit_paces_its_batch(routed_gateway, replay_control, master_key):
    created = cases.create_key(routed_gateway, master_key, name="paced", rate_limit={"requests": 1, "interval": "2s"})
    c = client(routed_gateway, created["key"])
    started = time.monotonic()
    batch = c.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": params("openai/gpt-4o")} for i in range(3)])
    # Watched through the master key: the key's own calls would spend its requests.
    rows = batch_transactions(routed_gateway, master_key, created["data"]["hash"], 3, timeout=60)
    assert sorted(r["custom_id"] for r in rows) == ["r0", "r1", "r2"]
    # The create took the key's first request, each batch request one more: one per 2 s,
    # so the last could not run before 6 s.
    assert time.monotonic() - started >= 6
    assert len(upstream_log(replay_control)) == 3


def test_configured_limits_refuse_oversized_batches(tmp_path, replay_upstream, master_key):
    env, config = routed_setup(replay_upstream[0])
    env.update({"AROUTER_MAX_BATCH_REQUESTS": "2", "AROUTER_MAX_BATCH_BYTES": "2048"})
    with servers.gateway(tmp_path, env, config, master_key) as base:
        c = client(base, master_key)
        with pytest.raises(anthropic.BadRequestError) as many:
            c.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": params("openai/gpt-4o")} for i in range(3)])
        assert "at most 2 requests" in many.value.body["error"]["message"]
        big = {**params("openai/gpt-4o"), "system": "x" * 3000}
        with pytest.raises(anthropic.APIStatusError) as large:
            c.messages.batches.create(requests=[{"custom_id": "big", "params": big}])
        assert large.value.status_code == 413
        assert large.value.body["error"]["type"] == "request_too_large"


def test_a_batch_resumes_after_kill_9_without_rerunning_or_charging_twice(tmp_path, master_key):
    with servers.replay(tmp_path) as (url, control):
        resume_after_kill_9(tmp_path, url, control, master_key)


def resume_after_kill_9(tmp_path, url, control, master_key):
    env, config = routed_setup(url)
    # One request at a time, each taking 400 ms: the kill lands mid-batch with at most
    # one request in flight.
    env.update({"AROUTER_BATCH_PROVIDER_CONCURRENCY": "1"})
    cases.fault((url, control), {"model": "gpt-4o"}, {"delay_ms": 400}, times=100)
    with servers.gateway_process(tmp_path, env, config, master_key) as (base, proc):
        created = cases.create_key(base, master_key, name="resume")
        secret, key_hash = created["key"], created["data"]["hash"]
        c = client(base, secret)
        batch = c.messages.batches.create(
            requests=[{"custom_id": f"r{i}", "params": params("openai/gpt-4o")} for i in range(6)]
        )
        deadline = time.monotonic() + 30
        while c.messages.batches.retrieve(batch.id).request_counts.succeeded < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    with servers.gateway_process(tmp_path, env, config, master_key) as (base, _):
        c = client(base, secret)
        ended = wait_ended(c, batch.id)
        assert ended.request_counts.succeeded == 6
        assert [r.result.type for r in c.messages.batches.results(batch.id)] == ["succeeded"] * 6
        sent = control.get(url + "/_replay/requests").json()
        # Every request ran once, but for the one in flight at the kill (never finished,
        # never billed), which ran again.
        assert 6 <= len(sent) <= 7
        rows = batch_transactions(base, master_key, key_hash, 6)
        assert sorted(r["custom_id"] for r in rows) == [f"r{i}" for i in range(6)]
        assert {r["batch_id"] for r in rows} == {batch.id}


def test_results_are_jsonl_in_anthropics_shape(routed_gateway, replay_control, key):
    secret, _ = key
    c = client(routed_gateway, secret)
    batch = c.messages.batches.create(requests=[{"custom_id": "one", "params": params("openai/gpt-4o")}])
    ended = wait_ended(c, batch.id)
    r = requests.get(ended.results_url, headers={"x-api-key": secret}, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-jsonl"
    lines = [json.loads(line) for line in r.text.splitlines()]
    for line in lines:
        contract.validate_schema("AnthropicBatchResult", line)
    contract.validate_schema("AnthropicMessageBatch", ended.model_dump(mode="json"))
    assert len(lines) == 1 and lines[0]["custom_id"] == "one"
    assert lines[0]["result"]["type"] == "succeeded"
    assert lines[0]["result"]["message"]["type"] == "message"


def test_requests_waiting_for_a_slot_do_not_keep_the_gateway_busy(tmp_path, master_key):
    """Regression: requests held back by the per-provider bound made the worker loop spin on the
    store, and management calls (served off the serving threads, like the store) timed out."""
    with servers.replay(tmp_path) as (url, control):
        env, config = routed_setup(url)
        env.update({"AROUTER_BATCH_PROVIDER_CONCURRENCY": "1"})
        cases.fault((url, control), {"model": "gpt-4o"}, {"delay_ms": 1000}, times=100)
        with servers.gateway(tmp_path, env, config, master_key) as base:
            c = client(base, master_key)
            batch = c.messages.batches.create(requests=[{"custom_id": f"r{i}", "params": params("openai/gpt-4o")} for i in range(20)])
            time.sleep(0.5)
            headers = {"Authorization": f"Bearer {master_key}"}
            slowest = 0.0
            for _ in range(20):
                started = time.monotonic()
                r = requests.get(base + "/api/v1/balance", headers=headers, timeout=10)
                slowest = max(slowest, time.monotonic() - started)
                assert r.status_code == 200
            assert slowest < 0.5, f"a management call took {slowest:.2f} s while the batch waited"
            assert c.messages.batches.retrieve(batch.id).request_counts.processing > 0
            c.messages.batches.cancel(batch.id)
ONE = [{"custom_id": "only", "params": params("openai/gpt-4o")}]


def key_for_one_request(base: str, master_key: str, batch: list[dict]) -> str:
    """A key whose limit is exactly what `batch` may cost (as a refusal of it says): creating
    it holds the key's whole limit."""
    created = cases.create_key(base, master_key, name="held", limit=0.000001)
    with pytest.raises(anthropic.APIStatusError) as refused:
        client(base, created["key"]).messages.batches.create(requests=batch)
    most = float(refused.value.body["error"]["message"].split("up to $")[1].split(")")[0])
    patched = requests.patch(
        f"{base}/api/v1/keys/{created['data']['hash']}",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"limit": most},
        timeout=10,
    )
    assert patched.status_code == 200, patched.text
    return created["key"]


def test_a_retried_request_keeps_the_credit_its_batch_reserved(routed_gateway, replay_control, master_key):
    """The credit a batch holds for a request is not let go when the request is put back
    after a 429: a call of the same key in the meantime cannot take it, and the retry runs."""
    secret = key_for_one_request(routed_gateway, master_key, ONE)
    c = client(routed_gateway, secret)
    one = ONE
    cases.fault(replay_control, {"model": "gpt-4o"}, {"status": 429}, times=1)
    batch = c.messages.batches.create(requests=one)
    deadline = time.monotonic() + 10
    while not upstream_log(replay_control):
        assert time.monotonic() < deadline, "the batch request never ran"
        time.sleep(0.02)
    # The request now waits out its backoff (1 s), still holding its credit.
    with pytest.raises(anthropic.APIStatusError) as meanwhile:
        c.messages.create(**params("openai/gpt-4o"))
    assert meanwhile.value.status_code == 402
    ended = wait_ended(c, batch.id, timeout=30)
    assert ended.request_counts.succeeded == 1, ended.request_counts


def test_cancel_ends_a_request_waiting_out_its_backoff_at_once(routed_gateway, replay_control, key):
    """A request put back after 429s waits seconds for its next try; cancelling its batch ends
    it at once rather than when that try comes."""
    secret, _ = key
    c = client(routed_gateway, secret)
    cases.fault(replay_control, {"model": "gemini-2.0-flash"}, {"status": 429}, times=100)
    batch = c.messages.batches.create(requests=[{"custom_id": "g", "params": params("gemini/gemini-2.0-flash")}])
    deadline = time.monotonic() + 15
    while len(upstream_log(replay_control)) < 3:  # tried at 0, 1 and 3 s: the next try is 4 s away
        assert time.monotonic() < deadline
        time.sleep(0.05)
    c.messages.batches.cancel(batch.id)
    ended = wait_ended(c, batch.id, timeout=2)
    assert ended.request_counts.canceled == 1
    assert len(upstream_log(replay_control)) == 3


def test_a_restart_holds_the_credit_of_requests_not_run_yet(tmp_path, master_key):
    """The credit a batch reserved at create is held again after a restart for its requests not
    run yet: a call of the same key meanwhile cannot spend it, and the batch request runs."""
    with servers.replay(tmp_path) as (url, control):
        env, config = routed_setup(url)
        # One request at a time: while the master key's slow request runs, the key's batch waits.
        env.update({"AROUTER_BATCH_CONCURRENCY": "1"})
        cases.fault((url, control), {"model": "claude-opus-4-6"}, {"delay_ms": 4000}, times=100)
        with servers.gateway_process(tmp_path, env, config, master_key) as (base, proc):
            secret = key_for_one_request(base, master_key, ONE)
            c = client(base, secret)
            one = ONE
            slow = client(base, master_key).messages.batches.create(
                requests=[{"custom_id": "slow", "params": params("anthropic/claude-opus-4-6")}]
            )
            held = c.messages.batches.create(requests=one)
            deadline = time.monotonic() + 10
            while not control.get(url + "/_replay/requests").json():
                assert time.monotonic() < deadline
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        with servers.gateway_process(tmp_path, env, config, master_key) as (base, _):
            c = client(base, secret)
            # The slow request runs again first; the key's request waits, its credit held.
            time.sleep(0.5)
            assert c.messages.batches.retrieve(held.id).request_counts.processing == 1
            with pytest.raises(anthropic.APIStatusError) as meanwhile:
                c.messages.create(**params("openai/gpt-4o"))
            assert meanwhile.value.status_code == 402
            assert wait_ended(c, held.id, timeout=30).request_counts.succeeded == 1
            assert wait_ended(client(base, master_key), slow.id, timeout=30).request_counts.succeeded == 1
