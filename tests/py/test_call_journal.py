"""The call journal (`--call-journal`, issue 15): a gateway killed with `kill -9` while calls are
at their provider loses no bill. Each call is written down before it goes upstream; the next
start of the gateway bills every call the killed one left, once, at its prompt's cost, as an
`interrupted` transaction. Checked with the `openai` SDK against the replay upstream holding its
answers, on SQLite (journal turned on) and on PostgreSQL (on by default), on a prepaid gateway
with a key that has a spending limit:

- every call that reached the provider has exactly one transaction, the calls answered before
  the kill included (billed as answered, not again);
- the killed calls are `interrupted`, billed their prompt's cost (more than nothing, less than
  what they reserved), with the request id the client sent;
- the drop in balance is exactly the sum of the costs, and the key's usage counts them."""

from __future__ import annotations

import contextlib
import signal
import threading
import time

import httpx
import openai
import pytest
import requests

import pg
import servers
import transcripts
from conftest import free_port, routed_setup

WHOLE = "openai/chat_nonstream_instructions.json"
STREAM = "openai/chat_stream_text_after_tool_include_usage.json"
HELD = 6  # calls at the provider when the gateway is killed
HOLD_MS = 20_000
CONFIG = "[billing]\nprepaid = true\n"


def body(name: str, tag: str) -> dict:
    b = dict(transcripts.load(name)["request"]["body"])
    return {**b, "model": "openai/" + b["model"], "user": tag, "max_tokens": 64}


def admin(base: str, master_key: str, method: str, path: str, **kw) -> dict:
    r = requests.request(method, base + path, headers={"Authorization": f"Bearer {master_key}"}, timeout=30, **kw)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def micros(usd: float) -> int:
    return round(usd * 1_000_000)


def balance(base: str, master_key: str) -> int:
    d = admin(base, master_key, "GET", "/api/v1/credits")["data"]
    return micros(d["total_credits"]) - micros(d["total_usage"])


def usage_rows(base: str, master_key: str) -> list[dict]:
    rows = admin(base, master_key, "GET", "/api/v1/transactions", params={"limit": 1000})["data"]
    return [r for r in rows if r.get("type", "usage") == "usage"]


def call(client: openai.OpenAI, tag: str, stream: bool) -> None:
    """One call through the SDK; the kill breaks it (an error the caller expects)."""
    req = body(STREAM if stream else WHOLE, tag)
    if stream:
        with client.chat.completions.create(**req, extra_headers={"X-Request-Id": tag}) as events:
            for _ in events:
                pass
    else:
        client.chat.completions.create(**req, extra_headers={"X-Request-Id": tag})


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_gateway_killed_with_calls_at_the_provider_bills_each_once_at_its_next_start(
    store, tmp_path, master_key, request
):
    extra = ["--call-journal", "on"]
    if store == "postgres":
        extra = ["--store", pg.fresh_database(request.getfixturevalue("postgres_server"))]
    port = free_port()
    with contextlib.ExitStack() as stack:
        replay_url, control = stack.enter_context(servers.replay(tmp_path))
        env, providers = routed_setup(replay_url)
        config = providers + CONFIG

        def start():
            return stack.enter_context(servers.gateway_process(tmp_path, env, config, master_key, extra, port=port))

        base, proc = start()
        admin(base, master_key, "POST", "/api/v1/balance", json={"amount": 10.0, "note": "journal"})
        key = admin(base, master_key, "POST", "/api/v1/keys", json={"name": "capped", "limit": 5.0})
        before = balance(base, master_key)
        client = openai.OpenAI(base_url=base + "/v1", api_key=key["key"], max_retries=0, timeout=60)
        # Answered before the kill: billed as answered, and only so.
        answered = [f"journal-{store}-done-{n}" for n in range(2)]
        for n, tag in enumerate(answered):
            call(client, tag, stream=n % 2 == 1)
        # Then the provider holds its answers: these are at the provider when the gateway dies.
        control.post(replay_url + "/_replay/faults", json={"match": {}, "fault": {"delay_ms": HOLD_MS}, "times": HELD}).raise_for_status()
        held = [f"journal-{store}-held-{n}" for n in range(HELD)]
        broken: list[str] = []

        def run(n: int, tag: str) -> None:
            try:
                call(client, tag, stream=n % 2 == 1)
            except (openai.APIConnectionError, openai.APIStatusError, httpx.HTTPError):
                broken.append(tag)

        threads = [threading.Thread(target=run, args=(n, tag)) for n, tag in enumerate(held)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while True:
            reached = [r["body"].get("user") for r in control.get(replay_url + "/_replay/requests").json()]
            if set(held) <= set(reached):
                break
            assert time.monotonic() < deadline, f"not all held calls reached the provider: {reached}"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        for t in threads:
            t.join(timeout=30)
        assert sorted(broken) == sorted(held), "every held call was cut by the kill"
        control.post(replay_url + "/_replay/reset").raise_for_status()

        base, _ = start()
        rows = usage_rows(base, master_key)
        by_request: dict[str, list[dict]] = {}
        for r in rows:
            by_request.setdefault(r["request_id"], []).append(r)
        assert sorted(by_request) == sorted(answered + held), sorted(by_request)
        assert all(len(v) == 1 for v in by_request.values()), by_request
        for tag in answered:
            assert by_request[tag][0]["status"] == "complete", by_request[tag]
        for tag in held:
            row = by_request[tag][0]
            assert row["status"] == "interrupted", row
            assert row["key_id"] == key["data"]["hash"], row
            assert row["completion_tokens"] == 0 and row["prompt_tokens"] > 0, row
            assert 0 < micros(row["cost"]), row
        spent = sum(micros(r["cost"]) for r in rows)
        assert before - balance(base, master_key) == spent
        key_now = admin(base, master_key, "GET", f"/api/v1/keys/{key['data']['hash']}")["data"]
        assert micros(key_now["usage"]) == spent, key_now
        # The restart said what it billed.
        assert "billed 6 call(s) a stopped gateway left in flight" in (tmp_path / "gateway.log").read_text()


def test_calls_in_flight_across_a_database_restart_are_billed_once(tmp_path, master_key, replay_upstream):
    """A database restart breaks every gateway's connection, so for a moment each looks gone
    (its session lock is free) and another may bill its open intents as `interrupted`. When the
    calls then end on their own gateway, each must still have exactly one transaction: the one
    it was answered with, which replaces the interrupted estimate."""
    replay_url, control = replay_upstream
    env, providers = routed_setup(replay_url)
    config = providers + CONFIG
    held = [f"restart-held-{n}" for n in range(4)]
    with pg.cluster_or_skip() as (directory, admin_url), contextlib.ExitStack() as stack:
        database = pg.fresh_database(admin_url)
        (tmp_path / "p").mkdir()
        (tmp_path / "q").mkdir()
        # p polls seldom, so q reaches the database first after the restart, while p's calls
        # are still at the provider and p's connection (and with it its lock) is not back.
        slow = ["--store", database, "--store-poll-ms", "60000"]
        p = stack.enter_context(servers.gateway(tmp_path / "p", env, config, master_key, slow))
        fast = ["--store", database, "--store-poll-ms", "200"]
        q = stack.enter_context(servers.gateway(tmp_path / "q", env, config, master_key, fast))
        admin(p, master_key, "POST", "/api/v1/balance", json={"amount": 10.0, "note": "restart"})
        client = openai.OpenAI(base_url=p + "/v1", api_key=master_key, max_retries=0, timeout=60)
        control.post(replay_url + "/_replay/faults", json={"match": {}, "fault": {"delay_ms": 4000}, "times": len(held)}).raise_for_status()
        failed: list[str] = []

        def run(tag: str) -> None:
            try:
                call(client, tag, stream=False)
            except (openai.APIConnectionError, openai.APIStatusError) as e:
                failed.append(f"{tag}: {e}")

        threads = [threading.Thread(target=run, args=(tag,)) for tag in held]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while not set(held) <= {r["body"].get("user") for r in control.get(replay_url + "/_replay/requests").json()}:
            assert time.monotonic() < deadline, "the calls did not reach the provider"
            time.sleep(0.05)
        pg.stop(directory)
        time.sleep(0.5)
        assert pg.start(directory) == admin_url
        for t in threads:
            t.join(timeout=30)
        assert not failed, failed
        control.post(replay_url + "/_replay/reset").raise_for_status()

        def billed() -> dict[str, list[str]]:
            by_request: dict[str, list[str]] = {}
            for r in usage_rows(q, master_key):
                by_request.setdefault(r["request_id"], []).append(r["status"])
            return by_request

        deadline = time.monotonic() + 20
        while sorted(billed()) != sorted(held) or any("complete" not in v for v in billed().values()):
            assert time.monotonic() < deadline, billed()
            time.sleep(0.2)
        time.sleep(1.0)  # another poll of each gateway: nothing is billed again
        assert billed() == {tag: ["complete"] for tag in held}, billed()
        answered = sum(micros(r["cost"]) for r in usage_rows(q, master_key))
        d = admin(q, master_key, "GET", "/api/v1/credits")["data"]
        assert micros(d["total_usage"]) == answered
