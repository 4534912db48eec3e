"""Two gateways on one PostgreSQL database (`--store`), as behind a load balancer: a key
made through one is taken by the other (at its start), each one's calls are billed once in
the shared ledger, and each reads the other's calls, generations and credits. Providers are
played by the replay upstream; the clients are the official `openai` and `openrouter` SDKs."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import openai
import pytest
import requests
from openrouter import OpenRouter, errors

import pg
import servers
import transcripts
from conftest import routed_setup

WHOLE = "openai/chat_nonstream_instructions.json"


def recorded(name: str) -> dict:
    body = dict(transcripts.load(name)["request"]["body"])
    body["model"] = "openai/" + body["model"]
    return body


@pytest.fixture(scope="module")
def database(postgres_server):
    return pg.fresh_database(postgres_server)


POLL_MS = 200
# A poll this slow reads the keys table once a minute: a key change another gateway sees
# sooner was told to it by the store (LISTEN/NOTIFY).
SLOW_POLL_MS = 60_000


def start(
    tmp_path_factory, replay_upstream, master_key, database, name, workdir=None, prepaid=False, poll_ms=POLL_MS
):
    env, config = routed_setup(replay_upstream[0])
    if prepaid:
        config += "\n[billing]\nprepaid = true\n"
    extra = ["--store", database, "--store-poll-ms", str(poll_ms)]
    workdir = workdir or tmp_path_factory.mktemp(name)
    return servers.gateway(workdir, env, config, master_key, extra)


def models_status(base: str, key: str) -> int:
    return requests.get(base + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code


def eventually(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def generation(client: OpenRouter, generation_id: str):
    """The generation, once the writing gateway's recorder has stored it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return client.generations.get_generation(id=generation_id).data
        except errors.OpenRouterError as e:
            if e.status_code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_two_gateways_share_keys_bills_and_credits(tmp_path_factory, replay_upstream, replay_control, master_key, database):
    body = recorded(WHOLE)
    with start(tmp_path_factory, replay_upstream, master_key, database, "a") as a:
        admin_a = OpenRouter(api_key=master_key, server_url=a + "/api/v1")
        before = admin_a.credits.get_credits().data
        key = admin_a.api_keys.create(name="shared", limit=5.0)
        # The second gateway starts after the key exists: it loads it.
        with start(tmp_path_factory, replay_upstream, master_key, database, "b") as b:
            admin_b = OpenRouter(api_key=master_key, server_url=b + "/api/v1")
            assert key.data.hash in [k.hash for k in admin_b.api_keys.list().data]
            answers = []
            for base in (a, b, b):
                client = openai.OpenAI(base_url=base + "/v1", api_key=key.key, max_retries=0, timeout=30)
                answers.append(client.chat.completions.create(model=body["model"], messages=body["messages"]))
            spent = sum(out.usage.cost for out in answers)
            assert spent > 0
            # Each gateway's recorder stores its own calls: once all three are in the
            # shared ledger, either gateway lists each call once and sums them exactly.
            def key_rows(base: str) -> list[dict]:
                return requests.get(
                    base + "/api/v1/transactions",
                    params={"key_id": key.data.hash},
                    headers={"Authorization": f"Bearer {master_key}"},
                    timeout=10,
                ).json()["data"]

            eventually(lambda: len(key_rows(a)) >= len(answers))
            for base, admin in ((a, admin_a), (b, admin_b)):
                rows = key_rows(base)
                assert len(rows) == len(answers)
                assert sum(r["cost"] for r in rows) == pytest.approx(spent, abs=1e-9)
                usage = admin.credits.get_credits().data.total_usage - before.total_usage
                assert usage == pytest.approx(spent, abs=1e-9)
                for out in answers:
                    assert generation(admin, out.id).total_cost == pytest.approx(out.usage.cost, abs=1e-12)
            # Credit added through one is counted by the other.
            added = requests.post(
                b + "/api/v1/balance",
                headers={"Authorization": f"Bearer {master_key}"},
                json={"amount": 3.25, "note": "shared"},
                timeout=10,
            )
            assert added.status_code == 200, added.text
            assert admin_a.credits.get_credits().data.total_credits == pytest.approx(before.total_credits + 3.25)
        # The key's spending, read from the shared ledger by a gateway that started after
        # the calls, counts every call through both.
        with start(tmp_path_factory, replay_upstream, master_key, database, "c") as c:
            admin_c = OpenRouter(api_key=master_key, server_url=c + "/api/v1")
            got = admin_c.api_keys.get(hash=key.data.hash).data
            assert got.usage == pytest.approx(spent, abs=1e-9)
            assert got.limit_remaining == pytest.approx(5.0 - spent, abs=1e-9)


def test_a_keys_spending_through_one_gateway_counts_on_the_other_while_it_runs(
    tmp_path_factory, replay_upstream, replay_control, master_key, database
):
    """Each gateway enforces a key's limit on its own line; every POLL_MS it raises that line
    to what the shared ledger holds, so calls billed through one gateway count against the
    limit on the other (`GET /api/v1/keys/{hash}` shows the line admission uses) without a
    restart. It once stayed at what the other gateway had read at its start."""
    body = recorded(WHOLE)
    with start(tmp_path_factory, replay_upstream, master_key, database, "s") as s, start(
        tmp_path_factory, replay_upstream, master_key, database, "t"
    ) as t:
        admin_s = OpenRouter(api_key=master_key, server_url=s + "/api/v1")
        key = admin_s.api_keys.create(name="spends on s", limit=5.0)
        admin_t = OpenRouter(api_key=master_key, server_url=t + "/api/v1")
        eventually(lambda: models_status(t, key.key) == 200)
        client = openai.OpenAI(base_url=s + "/v1", api_key=key.key, max_retries=0, timeout=30)
        spent = sum(
            client.chat.completions.create(model=body["model"], messages=body["messages"]).usage.cost
            for _ in range(2)
        )
        assert spent > 0
        eventually(lambda: admin_t.api_keys.get(hash=key.data.hash).data.usage == pytest.approx(spent, abs=1e-9))
        got = admin_t.api_keys.get(hash=key.data.hash).data
        assert got.limit_remaining == pytest.approx(5.0 - spent, abs=1e-9)


def test_prepaid_gateways_see_each_others_credits_and_usage_while_they_run(
    tmp_path_factory, replay_upstream, replay_control, master_key, database
):
    """On `prepaid` gateways the balance calls reserve against is each gateway's own line;
    every POLL_MS it is raised to the shared ledger's credits and usage, so credit added and
    calls billed through one gateway show on the other (`/api/v1/credits` reports that line)
    without a restart. Credit added through one once stayed unseen by the other."""
    body = recorded(WHOLE)
    with start(tmp_path_factory, replay_upstream, master_key, database, "u", prepaid=True) as u, start(
        tmp_path_factory, replay_upstream, master_key, database, "v", prepaid=True
    ) as v:
        admin_u = OpenRouter(api_key=master_key, server_url=u + "/api/v1")
        admin_v = OpenRouter(api_key=master_key, server_url=v + "/api/v1")
        before = admin_v.credits.get_credits().data
        added = requests.post(
            u + "/api/v1/balance",
            headers={"Authorization": f"Bearer {master_key}"},
            json={"amount": 2.5, "note": "through u"},
            timeout=10,
        )
        assert added.status_code == 200, added.text
        eventually(
            lambda: admin_v.credits.get_credits().data.total_credits
            == pytest.approx(before.total_credits + 2.5, abs=1e-9)
        )
        client = openai.OpenAI(base_url=u + "/v1", api_key=master_key, max_retries=0, timeout=30)
        spent = client.chat.completions.create(model=body["model"], messages=body["messages"]).usage.cost
        assert spent > 0
        eventually(
            lambda: admin_v.credits.get_credits().data.total_usage
            == pytest.approx(before.total_usage + spent, abs=1e-9)
        )
        # Both gateways agree, and u counted its own call once.
        assert admin_u.credits.get_credits().data.total_usage == pytest.approx(before.total_usage + spent, abs=1e-9)


def burst(bases: list[str], key: str, body: dict, calls: int) -> list:
    """`calls` calls at once, spread over `bases`; each one's answer, or its status code."""
    import concurrent.futures

    def one(i: int):
        client = openai.OpenAI(base_url=bases[i % len(bases)] + "/v1", api_key=key, max_retries=0, timeout=30)
        try:
            return client.chat.completions.create(model=body["model"], messages=body["messages"], max_tokens=8)
        except openai.APIStatusError as e:
            return e.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=calls) as pool:
        return list(pool.map(one, range(calls)))


def slow_provider(replay_control, body: dict) -> None:
    """From now on the provider holds each answer half a second: every call of a burst is in
    flight at once, so no gateway can learn from the store what the other spent."""
    url, control = replay_control
    model = body["model"].split("/", 1)[1]
    rule = {"match": {"model": model}, "fault": {"delay_ms": 500}, "times": 10_000}
    control.post(url + "/_replay/faults", json=rule).raise_for_status()


def one_call_cost(base: str, master_key: str, body: dict) -> float:
    client = openai.OpenAI(base_url=base + "/v1", api_key=master_key, max_retries=0, timeout=30)
    return client.chat.completions.create(model=body["model"], messages=body["messages"], max_tokens=8).usage.cost


def test_a_keys_limit_holds_exactly_when_gateways_spend_it_at_once(
    tmp_path_factory, replay_upstream, replay_control, master_key, postgres_server
):
    """Credit leases: each gateway spends only what it leased of a key's limit from the shared
    store, so calls through two gateways at once never take a key past its limit (each on its
    own view once spent up to twice the limit between two polls)."""
    database = pg.fresh_database(postgres_server)
    body = recorded(WHOLE)
    with start(tmp_path_factory, replay_upstream, master_key, database, "l1") as g1, start(
        tmp_path_factory, replay_upstream, master_key, database, "l2"
    ) as g2:
        cost = one_call_cost(g1, master_key, body)
        limit = round(cost * 20.5, 6)
        key = OpenRouter(api_key=master_key, server_url=g1 + "/api/v1").api_keys.create(name="leased", limit=limit)
        eventually(lambda: models_status(g2, key.key) == 200)
        slow_provider(replay_control, body)
        outcomes = burst([g1, g2], key.key, body, 60)
        served = [o for o in outcomes if not isinstance(o, int)]
        assert {o for o in outcomes if isinstance(o, int)} == {402}, outcomes
        assert served, "no call was served"
        spent = sum(o.usage.cost for o in served)
        assert spent <= limit + 1e-9, f"spent {spent} of a {limit} limit ({len(served)} calls of {cost})"
        admin = OpenRouter(api_key=master_key, server_url=g2 + "/api/v1")
        eventually(lambda: admin.api_keys.get(hash=key.data.hash).data.usage == pytest.approx(spent, abs=1e-9))


def test_a_prepaid_balance_is_never_overdrawn_by_gateways_spending_it_at_once(
    tmp_path_factory, replay_upstream, replay_control, master_key, postgres_server
):
    """The same for the account's balance on prepaid gateways: what all of them bill stays
    within the credit added."""
    body = recorded(WHOLE)
    with start(tmp_path_factory, replay_upstream, master_key, pg.fresh_database(postgres_server), "probe") as p:
        cost = one_call_cost(p, master_key, body)
    credit = round(cost * 20.5, 6)
    database = pg.fresh_database(postgres_server)
    with start(tmp_path_factory, replay_upstream, master_key, database, "m1", prepaid=True) as g1, start(
        tmp_path_factory, replay_upstream, master_key, database, "m2", prepaid=True
    ) as g2:
        admin = OpenRouter(api_key=master_key, server_url=g2 + "/api/v1")
        added = requests.post(
            g1 + "/api/v1/balance",
            headers={"Authorization": f"Bearer {master_key}"},
            json={"amount": credit, "note": "leased"},
            timeout=10,
        )
        assert added.status_code == 200, added.text
        slow_provider(replay_control, body)
        outcomes = burst([g1, g2], master_key, body, 60)
        served = [o for o in outcomes if not isinstance(o, int)]
        assert {o for o in outcomes if isinstance(o, int)} == {402}, outcomes
        assert served, "no call was served"
        spent = sum(o.usage.cost for o in served)
        assert spent <= credit + 1e-9, f"spent {spent} of a {credit} balance ({len(served)} calls of {cost})"

        def left() -> float:
            d = admin.credits.get_credits().data
            return d.total_credits - d.total_usage

        eventually(lambda: left() == pytest.approx(credit - spent, abs=1e-9))


def test_keys_changed_through_one_gateway_reach_the_other_within_a_second(
    tmp_path_factory, replay_upstream, master_key, database
):
    """The store tells every gateway of a key change as it commits (LISTEN/NOTIFY), and each
    reads its keys table at once: with a poll of a minute, a key made, disabled, enabled and
    deleted through p is taken or refused by q within a second."""
    with start(tmp_path_factory, replay_upstream, master_key, database, "p", poll_ms=SLOW_POLL_MS) as p, start(
        tmp_path_factory, replay_upstream, master_key, database, "q", poll_ms=SLOW_POLL_MS
    ) as q:
        admin_p = OpenRouter(api_key=master_key, server_url=p + "/api/v1")
        created = admin_p.api_keys.create(name="made on p")
        eventually(lambda: models_status(q, created.key) == 200, seconds=1.0)
        assert models_status(p, created.key) == 200
        admin_p.api_keys.update(hash=created.data.hash, disabled=True)
        eventually(lambda: models_status(q, created.key) == 401, seconds=1.0)
        admin_p.api_keys.update(hash=created.data.hash, disabled=False)
        eventually(lambda: models_status(q, created.key) == 200, seconds=1.0)
        admin_p.api_keys.delete(hash=created.data.hash)
        eventually(lambda: models_status(q, created.key) == 401, seconds=1.0)


def arouter(*args: str, env: dict[str, str] | None = None) -> str:
    """Runs an offline `arouter` command; its output (it must succeed)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("AROUTER_")}
    full.update(env or {})
    out = subprocess.run(
        [str(servers._bin("arouter")), *args], env=full, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_offline_commands_act_on_the_database(
    tmp_path_factory, replay_upstream, master_key, postgres_server
):
    database = pg.fresh_database(postgres_server)
    made = arouter("keys", "create", "--name", "offline", "--store", database)
    secret, hash_line = made.splitlines()[:2]
    hash_ = hash_line.removeprefix("hash: ")
    assert secret.startswith("sk-ar-") and len(hash_) == 64
    added = arouter("credits", "add", "2.5", "--note", "invoice 7", env={"AROUTER_STORE_URL": database})
    assert "total credits 2.5 USD" in added, added
    with start(tmp_path_factory, replay_upstream, master_key, database, "offline") as base:
        assert models_status(base, secret) == 200
        admin = OpenRouter(api_key=master_key, server_url=base + "/api/v1")
        assert admin.credits.get_credits().data.total_credits == pytest.approx(2.5)
        listed = arouter("keys", "list", "--store", database)
        assert hash_ in listed and "offline" in listed
        # Disabled offline: the running gateway refuses it within its poll.
        arouter("keys", "disable", hash_, "--store", database)
        eventually(lambda: models_status(base, secret) == 401)


def test_calls_served_while_the_database_is_down_are_billed_once_it_is_back(
    tmp_path_factory, replay_upstream, master_key
):
    """The hot path never waits on the store: calls go on while the database is down, the
    recorder holds their usage and retries, and once the database is back each call is
    billed exactly once."""
    with pg.cluster_or_skip() as (directory, admin):
        database = pg.fresh_database(admin)
        body = recorded(WHOLE)
        workdir = tmp_path_factory.mktemp("outage")
        with start(tmp_path_factory, replay_upstream, master_key, database, "outage", workdir) as base:
            client = openai.OpenAI(base_url=base + "/v1", api_key=master_key, max_retries=0, timeout=30)
            admin_api = OpenRouter(api_key=master_key, server_url=base + "/api/v1")

            def usage() -> float:
                return admin_api.credits.get_credits().data.total_usage

            first = client.chat.completions.create(model=body["model"], messages=body["messages"])
            eventually(lambda: usage() == pytest.approx(first.usage.cost, abs=1e-9))
            pg.stop(directory)
            during = [client.chat.completions.create(model=body["model"], messages=body["messages"]) for _ in range(2)]
            assert all(out.choices[0].message.content for out in during)
            # The metrics say the store is down, and that commits failed.
            store_up = 'arouter_dependency_up{dependency="store"}'
            eventually(lambda: servers.metric_values(base, master_key)[store_up] == 0)
            eventually(lambda: servers.metric_values(base, master_key)["arouter_store_failed_commits_total"] >= 1)
            assert pg.start(directory) == admin
            spent = first.usage.cost + sum(out.usage.cost for out in during)
            eventually(lambda: usage() == pytest.approx(spent, abs=1e-9), seconds=30)
            eventually(lambda: servers.metric_values(base, master_key)[store_up] == 1)
            assert servers.metric_values(base, master_key)["arouter_usage_dropped_total"] == 0
            rows = requests.get(
                base + "/api/v1/transactions", headers={"Authorization": f"Bearer {master_key}"}, timeout=10
            ).json()["data"]
            assert sorted(r["id"] for r in rows) == sorted(out.id for out in [first, *during])
        log = (workdir / "gateway.log").read_text()
        assert "holding" in log and "usage store recovered" in log, "the outage was not seen:\n" + log[-2000:]


def test_calls_held_when_the_gateway_stops_with_the_database_down_are_billed_at_its_next_start(
    tmp_path_factory, replay_upstream, master_key
):
    """A gateway stopped (SIGTERM) while the database is down cannot store the usage it holds:
    it writes it to the spool in its data directory, and its next start, with the database
    back, bills each call once with its real cost (and a start after that, nothing again)."""
    with pg.cluster_or_skip() as (directory, admin):
        database = pg.fresh_database(admin)
        body = recorded(WHOLE)
        workdir = tmp_path_factory.mktemp("spool")
        env, config = routed_setup(replay_upstream[0])
        extra = ["--store", database, "--store-poll-ms", str(POLL_MS)]
        with servers.gateway_process(workdir, env, config, master_key, extra) as (base, proc):
            client = openai.OpenAI(base_url=base + "/v1", api_key=master_key, max_retries=0, timeout=30)
            pg.stop(directory)
            during = [client.chat.completions.create(model=body["model"], messages=body["messages"]) for _ in range(3)]
            assert all(out.choices[0].message.content for out in during)
            eventually(lambda: servers.metric_values(base, master_key)["arouter_store_failed_commits_total"] >= 1)
            proc.send_signal(signal.SIGTERM)
            # It tries the store for its shutdown patience (10 s) before it gives up.
            proc.wait(timeout=60)
        assert pg.start(directory) == admin
        spent = sum(out.usage.cost for out in during)

        def billed_once():
            with servers.gateway_process(workdir, env, config, master_key, extra) as (base, _):
                admin_api = OpenRouter(api_key=master_key, server_url=base + "/api/v1")
                assert admin_api.credits.get_credits().data.total_usage == pytest.approx(spent, abs=1e-9)
                rows = requests.get(
                    base + "/api/v1/transactions", headers={"Authorization": f"Bearer {master_key}"}, timeout=10
                ).json()["data"]
                assert sorted(r["id"] for r in rows) == sorted(out.id for out in during)
            assert not list((workdir / "data" / "spool").iterdir()), "an imported spool file was kept"

        billed_once()
        log = (workdir / "gateway.log").read_text()
        assert "transaction(s) written to" in log, "the held usage was not spooled:\n" + log[-3000:]
        assert "stored 3 call(s) spooled by a past run" in log
        # A third start finds nothing to import: still billed once.
        billed_once()


def test_a_prepaid_call_beyond_the_lease_gets_503_while_the_database_is_down(
    tmp_path_factory, replay_upstream, master_key
):
    """On a shared store a prepaid gateway holds only what it leased. With the database down a
    call its lease cannot cover is refused with 503 `credit_store_unavailable` in the route's
    dialect (the credit may well be there), not a 402 saying there is none; once the database
    is back the same call is served."""
    with pg.cluster_or_skip() as (directory, admin):
        database = pg.fresh_database(admin)
        body = recorded(WHOLE)
        with start(tmp_path_factory, replay_upstream, master_key, database, "leaseless", prepaid=True) as base:
            added = requests.post(
                base + "/api/v1/balance",
                headers={"Authorization": f"Bearer {master_key}"},
                json={"amount": 1.0, "note": "leaseless"},
                timeout=10,
            )
            assert added.status_code == 200, added.text
            # Nothing was called yet, so nothing is leased.
            pg.stop(directory)
            client = openai.OpenAI(base_url=base + "/v1", api_key=master_key, max_retries=0, timeout=30)
            with pytest.raises(openai.InternalServerError) as refused:
                client.chat.completions.create(model=body["model"], messages=body["messages"], max_tokens=8)
            assert refused.value.status_code == 503
            assert refused.value.body["code"] == "credit_store_unavailable", refused.value.body
            assert pg.start(directory) == admin

            def served() -> bool:
                try:
                    client.chat.completions.create(model=body["model"], messages=body["messages"], max_tokens=8)
                    return True
                except openai.InternalServerError:
                    return False

            eventually(served, seconds=30)


def test_store_failure_closed_refuses_calls_in_each_dialect_while_the_database_is_down(
    tmp_path_factory, replay_upstream, master_key
):
    """`--store-failure closed`: once the gateway has seen the database fail, every call is
    answered 503 `store_unavailable` in its route's dialect, as each official SDK reads it,
    until the database is back; management (here /metrics) still answers and says why."""
    import anthropic
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types as genai_types

    with pg.cluster_or_skip() as (directory, admin):
        database = pg.fresh_database(admin)
        body = recorded(WHOLE)
        env, config = routed_setup(replay_upstream[0])
        workdir = tmp_path_factory.mktemp("closed")
        extra = ["--store", database, "--store-poll-ms", str(POLL_MS), "--store-failure", "closed"]
        with servers.gateway(workdir, env, config, master_key, extra) as base:
            key = OpenRouter(api_key=master_key, server_url=base + "/api/v1").api_keys.create(name="closed").key
            client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=30)
            assert client.chat.completions.create(model=body["model"], messages=body["messages"]).choices

            pg.stop(directory)
            store_up = 'arouter_dependency_up{dependency="store"}'
            eventually(lambda: servers.metric_values(base, master_key)[store_up] == 0)
            with pytest.raises(openai.InternalServerError) as refused:
                client.chat.completions.create(model=body["model"], messages=body["messages"])
            assert refused.value.status_code == 503
            assert refused.value.body["code"] == "store_unavailable", refused.value.body
            claude = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0, timeout=30)
            with pytest.raises(anthropic.InternalServerError) as refused:
                claude.messages.create(
                    model="openai/gpt-4o", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
                )
            assert refused.value.status_code == 503
            assert refused.value.body["error"]["type"] == "overloaded_error", refused.value.body
            gemini = genai.Client(
                api_key=key, http_options=genai_types.HttpOptions(base_url=base, timeout=30_000)
            )
            with pytest.raises(genai_errors.ServerError) as refused:
                gemini.models.generate_content(model="openai/gpt-4o", contents="hi")
            assert refused.value.code == 503
            assert refused.value.status == "UNAVAILABLE", refused.value.details
            assert servers.metric_values(base, master_key)["arouter_store_policy_refusals_total"] == 3

            assert pg.start(directory) == admin

            def served() -> bool:
                try:
                    return bool(client.chat.completions.create(model=body["model"], messages=body["messages"]).choices)
                except openai.InternalServerError:
                    return False

            eventually(served, seconds=30)
        log = (workdir / "gateway.log").read_text()
        assert "requests are refused with 503" in log and "requests are served" in log, log[-2000:]


def test_a_database_that_admits_clients_by_certificate(tmp_path_factory, replay_upstream, master_key):
    """`sslcert` / `sslkey` in the store URL, as libpq takes them: the role `arouter_cert` of
    the test cluster logs in only with the client certificate its CA signed. Without it the
    database refuses the gateway (said plainly); with it keys and calls work."""
    with pg.cluster_or_skip() as (directory, admin):
        port = admin.split("@127.0.0.1:")[1].split("/")[0]
        base_url = (
            f"postgres://arouter_cert@127.0.0.1:{port}/postgres"
            f"?sslmode=verify-full&sslrootcert={directory}/ca.pem"
        )
        without = subprocess.run(
            [str(servers._bin("arouter")), "keys", "list", "--store", base_url],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert without.returncode == 1
        assert "requires a valid client certificate" in without.stderr, without.stderr
        database = f"{base_url}&sslcert={directory}/client.pem&sslkey={directory}/client.key"
        made = arouter("keys", "create", "--name", "by certificate", "--store", database)
        secret = made.splitlines()[0]
        with start(tmp_path_factory, replay_upstream, master_key, database, "cert") as base:
            assert models_status(base, secret) == 200
            assert requests.get(base + "/readyz", timeout=10).json()["checks"]["store"] == "ok"


def test_key_changes_are_heard_again_after_the_database_restarts(tmp_path_factory, replay_upstream, master_key):
    """The connection that hears key changes breaks when the database goes down; the gateway
    opens it again (saying so once each way) and reads the keys table then, so a key disabled
    offline after the restart is refused within seconds, not at the next poll a minute on."""
    with pg.cluster_or_skip() as (directory, admin):
        database = pg.fresh_database(admin)
        made = arouter("keys", "create", "--name", "restart", "--store", database)
        secret, hash_line = made.splitlines()[:2]
        workdir = tmp_path_factory.mktemp("relisten")
        with start(tmp_path_factory, replay_upstream, master_key, database, "relisten", workdir, poll_ms=SLOW_POLL_MS) as base:
            assert models_status(base, secret) == 200
            pg.stop(directory)
            assert pg.start(directory) == admin
            arouter("keys", "disable", hash_line.removeprefix("hash: "), "--store", database)
            eventually(lambda: models_status(base, secret) == 401, seconds=5.0)
        log = (workdir / "gateway.log").read_text()
        assert log.count("lost the connection that hears key changes") == 1, log[-3000:]
        assert log.count("listening for key changes again") == 1, log[-3000:]


def test_a_lowered_limit_holds_on_every_gateway_at_once(tmp_path_factory, replay_upstream, master_key, postgres_server):
    """A key's limit lowered through one gateway binds the others from the moment they hear of
    it: what each leased under the old limit is dropped with the change, so a gateway still
    holding credit of the old limit does not spend it past the new one."""
    database = pg.fresh_database(postgres_server)
    body = recorded(WHOLE)
    env, config = routed_setup(replay_upstream[0])
    # A slow poll: q keeps what it leased for its calls for seconds (key changes still
    # arrive at once, by NOTIFY).
    extra = ["--store", database, "--store-poll-ms", "60000"]
    with servers.gateway(tmp_path_factory.mktemp("r1"), env, config, master_key, extra) as p, servers.gateway(
        tmp_path_factory.mktemp("r2"), env, config, master_key, extra
    ) as q:
        admin = OpenRouter(api_key=master_key, server_url=p + "/api/v1")
        key = admin.api_keys.create(name="relimited", limit=1.0)
        eventually(lambda: models_status(q, key.key) == 200)
        client = openai.OpenAI(base_url=q + "/v1", api_key=key.key, max_retries=0, timeout=30)
        other = openai.OpenAI(base_url=p + "/v1", api_key=key.key, max_retries=0, timeout=30)
        # Both spend; q counts p's calls only at its next poll, a minute away, so by its own
        # count the key has room, and it holds credit it leased for its call.
        served = [
            c.chat.completions.create(model=body["model"], messages=body["messages"], max_tokens=64)
            for c in [client] + [other] * 7
        ]
        spent = sum(c.usage.cost for c in served)
        # Less than any call reserves is left under the new limit, while q still holds what
        # it leased of the old one.
        admin.api_keys.update(hash=key.data.hash, limit=round(spent + 0.0001, 6))
        time.sleep(0.2)
        refused = []
        for base in [q, q, p, q]:
            c = openai.OpenAI(base_url=base + "/v1", api_key=key.key, max_retries=0, timeout=30)
            try:
                c.chat.completions.create(model=body["model"], messages=body["messages"], max_tokens=64)
                refused.append(200)
            except openai.APIStatusError as e:
                refused.append(e.status_code)
        assert refused == [402] * 4, refused
        # Raised again, the key is served on both.
        admin.api_keys.update(hash=key.data.hash, limit=1.0)
        time.sleep(0.2)
        client.chat.completions.create(model=body["model"], messages=body["messages"], max_tokens=64)
