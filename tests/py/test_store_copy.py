"""`arouter store copy`: a gateway that outgrew its SQLite file moves to PostgreSQL with
everything it kept. A gateway on SQLite makes a key, takes credit, serves calls, stores a
Responses API answer and runs a message batch (through the official SDKs); it is stopped, its
file is copied into an empty database, and a gateway on that database serves the same key,
balance, transactions, stored response and batch results, and goes on from there."""

from __future__ import annotations

import subprocess

import anthropic
import openai
import pytest
import requests
from openrouter import OpenRouter

import pg
import servers
from conftest import routed_setup
from test_batches_sdk import params, wait_ended
from test_openai_responses_store import first_turn
from test_shared_store import SLOW_POLL_MS, WHOLE, eventually, models_status, recorded


def copy(workdir, database: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "AROUTER_STORE_URL": database}
    return subprocess.run(
        [str(servers._bin("arouter")), "store", "copy", "--data-dir", str(workdir / "data")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def transactions(base: str, master_key: str) -> list[dict]:
    r = requests.get(
        base + "/api/v1/transactions", params={"limit": 100}, headers={"Authorization": f"Bearer {master_key}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_a_sqlite_gateway_moves_to_postgres_with_everything_it_kept(
    tmp_path_factory, replay_upstream, master_key, postgres_server
):
    env, config = routed_setup(replay_upstream[0])
    body = recorded(WHOLE)
    workdir = tmp_path_factory.mktemp("copied")
    with servers.gateway(workdir, env, config, master_key) as base:
        admin = OpenRouter(api_key=master_key, server_url=base + "/api/v1")
        made = admin.api_keys.create(name="moves", limit=5.0)
        requests.post(
            base + "/api/v1/balance", headers={"Authorization": f"Bearer {master_key}"}, json={"amount": 3.0}, timeout=10
        ).raise_for_status()
        chat = openai.OpenAI(base_url=base + "/v1", api_key=made.key, max_retries=0, timeout=30)
        calls = [chat.chat.completions.create(model=body["model"], messages=body["messages"]) for _ in range(2)]
        stored, _ = first_turn(chat)
        claude = anthropic.Anthropic(base_url=base, api_key=made.key, max_retries=0, timeout=30)
        batch = claude.messages.batches.create(requests=[{"custom_id": "one", "params": params("openai/gpt-4o")}])
        wait_ended(claude, batch.id)
        eventually(lambda: len(transactions(base, master_key)) == 5)  # 4 calls and the credit
        before = {
            "credits": admin.credits.get_credits().data,
            "key": admin.api_keys.get(hash=made.data.hash).data,
            "rows": transactions(base, master_key),
        }

    database = pg.fresh_database(postgres_server)
    out = copy(workdir, database)
    assert out.returncode == 0, out.stderr
    assert "keys: 1\n" in out.stdout and "transactions: 4\n" in out.stdout, out.stdout
    assert "the same in both stores" in out.stdout, out.stdout

    with servers.gateway(workdir, env, config, master_key, ["--store", database]) as base:
        admin = OpenRouter(api_key=master_key, server_url=base + "/api/v1")
        credits = admin.credits.get_credits().data
        assert (credits.total_credits, credits.total_usage) == (
            before["credits"].total_credits,
            before["credits"].total_usage,
        )
        key = admin.api_keys.get(hash=made.data.hash).data
        assert (key.name, key.limit, key.usage) == (before["key"].name, before["key"].limit, before["key"].usage)
        assert transactions(base, master_key) == before["rows"]
        # The same secret works, and what it stored is there.
        chat = openai.OpenAI(base_url=base + "/v1", api_key=made.key, max_retries=0, timeout=30)
        assert chat.responses.retrieve(stored.id).output == stored.output
        claude = anthropic.Anthropic(base_url=base, api_key=made.key, max_retries=0, timeout=30)
        (result,) = list(claude.messages.batches.results(batch.id))
        assert result.custom_id == "one" and result.result.type == "succeeded"
        # And it goes on: a new key and a new call, numbered after the copied ones.
        admin.api_keys.create(name="after the move")
        after = chat.chat.completions.create(model=body["model"], messages=body["messages"])
        eventually(lambda: len(transactions(base, master_key)) == 6)
        assert transactions(base, master_key)[0]["id"] == after.id
        usage = admin.credits.get_credits().data.total_usage
        assert usage == pytest.approx(before["credits"].total_usage + after.usage.cost, abs=1e-9)
        assert {c.id for c in calls} <= {r["id"] for r in transactions(base, master_key)}

    # A database that holds a ledger is never copied into.
    again = copy(workdir, database)
    assert again.returncode == 1
    assert "is not empty" in again.stderr, again.stderr


def test_a_gateway_already_on_the_database_takes_the_copied_keys_at_once(
    tmp_path_factory, replay_upstream, master_key, postgres_server
):
    """The copy tells the gateways already on the database that its keys changed (as every key
    change does): with a poll of a minute, the copied key works there within a second."""
    env, config = routed_setup(replay_upstream[0])
    workdir = tmp_path_factory.mktemp("copied-live")
    with servers.gateway(workdir, env, config, master_key) as base:
        made = OpenRouter(api_key=master_key, server_url=base + "/api/v1").api_keys.create(name="copied live")
    database = pg.fresh_database(postgres_server)
    extra = ["--store", database, "--store-poll-ms", str(SLOW_POLL_MS)]
    with servers.gateway(tmp_path_factory.mktemp("waiting"), env, config, master_key, extra) as waiting:
        assert models_status(waiting, made.key) == 401
        out = copy(workdir, database)
        assert out.returncode == 0, out.stderr
        eventually(lambda: models_status(waiting, made.key) == 200, seconds=1.0)
