"""Three gateways behind nginx on one PostgreSQL and one Redis (docs/deploy.md), under load with
faults: 2,000 requests from the `openai` and `anthropic` SDKs through nginx, streamed and not, some
clients leaving mid-call at random (a fixed seed); one gateway killed with `kill -9` and started
again; Redis restarted mid-run; a key disabled through one gateway mid-run. Then, against the
replay upstream's log of what reached a provider, the shared ledger and nginx's access log:

- no call reached a provider twice, and none was billed twice; no bill without a provider call;
- every call that reached a provider has exactly one transaction, the calls the killed gateway
  had in flight included: the call journal (on with --store) bills those at the restart, as
  `interrupted` at their prompt's cost, and only those are `interrupted` (a few of them may not
  have reached the provider yet: journaled, then killed before the send);
- a call the client saw whole is billed what the client was told (`usage.cost`), unless the
  kill came within one recorder batch of its answer: then it is one of the `interrupted`;
- calls in Anthropic's dialect (the `anthropic` SDK), translated to the OpenAI provider, are billed
  as the others;
- the sum of the costs equals the drop in balance, to the micro-dollar, on every gateway;
- a key's credit limit holds exactly across the gateways (each spends only what it leased of
  it from the store), and the limit did refuse calls;
- a key's rate limit holds exactly while Redis is up, and within the stated bound across the
  Redis restart (each gateway alone while Redis is away, a full bucket when Redis comes back);
- the disabled key is refused by the other gateways within one --store-poll-ms."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anthropic
import httpx
import httpx2  # the anthropic SDK's own httpx: its errors mid-stream
import openai
import pytest
import requests

import fleet
import pg
import servers
import transcripts

N = 3
REQUESTS = 2000
WORKERS = 24
SEED = 15
POLL_MS = 500
# The rate-limited key: RATE_REQUESTS per RATE_SECONDS, burst RATE_REQUESTS (GCRA).
RATE_REQUESTS, RATE_SECONDS = 5, 2
CAP_MICROS = 2000  # the credit limit of each capped key, USD 0.002
CREDIT = 100.0
WHOLE = "openai/chat_nonstream_instructions.json"
STREAM = "openai/chat_stream_text_after_tool_include_usage.json"
# What the streamed `anthropic` calls become upstream: its user message alone, streamed.
ANTHROPIC_STREAM = "openai/chat_stream_text_moderation_include_usage.json"
# The faults, at these fractions of the requests done.
KILL_AT, DISABLE_AT, REDIS_AT = 0.25, 0.45, 0.6
DOWN_S = 1.0


def body(name: str) -> dict:
    b = dict(transcripts.load(name)["request"]["body"])
    b["model"] = "openai/" + b["model"]
    return b


@dataclasses.dataclass
class Call:
    n: int
    key: str  # "free", "cap0", "cap1", "rated"
    stream: bool
    leave_after: int | None  # chunks read before leaving (stream), or None
    leave_timeout: float | None  # non-stream: a client timeout this short, or None
    tag: str = ""
    anthropic: bool = False  # the `anthropic` SDK on /v1/messages, translated to the OpenAI provider
    status: int | str = ""  # HTTP status, "left", "broken"
    cost: float | None = None
    started: float = 0.0
    ended: float = 0.0


def plan() -> list[Call]:
    rng = random.Random(SEED)
    calls = []
    for n in range(REQUESTS):
        key = rng.choices(["free", "cap0", "cap1", "rated"], weights=[60, 10, 10, 20])[0]
        stream = rng.random() < 0.5
        leave = key != "rated" and rng.random() < 0.15
        calls.append(
            Call(
                n,
                key,
                stream,
                leave_after=rng.randint(1, 4) if leave and stream else None,
                leave_timeout=rng.uniform(0.005, 0.05) if leave and not stream else None,
                tag=f"fleet-{SEED}-{n}",
                anthropic=key == "free" and rng.random() < 0.25,
            )
        )
    return calls


class Clients:
    """The `openai` clients (one per key) and the `anthropic` client (the free key), through
    nginx, shared by the worker threads (one per thread made 24 times as many TLS contexts at
    the start, seconds of a loaded machine)."""

    def __init__(self, base: str, secrets: dict[str, str]):
        self.by_key = {
            k: openai.OpenAI(base_url=base + "/v1", api_key=s, max_retries=0, timeout=30) for k, s in secrets.items()
        }
        self.anthropic = anthropic.Anthropic(base_url=base, api_key=secrets["free"], max_retries=0, timeout=30)


def run(call: Call, clients: Clients) -> Call:
    call.started = time.monotonic()
    try:
        call.status = anthropic_call(clients.anthropic, call) if call.anthropic else openai_call(clients, call)
    except (openai.APITimeoutError, anthropic.APITimeoutError):
        call.status = "left"
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        call.status = e.status_code
    except (openai.APIConnectionError, anthropic.APIConnectionError, httpx.HTTPError, httpx2.HTTPError):
        call.status = "broken"
    call.ended = time.monotonic()
    return call


def openai_call(clients: Clients, call: Call) -> int | str:
    client = clients.by_key[call.key]
    if call.leave_timeout is not None:
        client = client.with_options(timeout=call.leave_timeout)
    req = dict(body(STREAM if call.stream else WHOLE), user=call.tag, max_tokens=64)
    if call.stream:
        return stream_call(client, req, call)
    out = client.chat.completions.create(**req, extra_headers={"X-Request-Id": call.tag})
    call.cost = (out.usage.model_extra or {}).get("cost")
    return 200


def anthropic_call(client: anthropic.Anthropic, call: Call) -> int | str:
    """The conversation of WHOLE (or, streamed, of ANTHROPIC_STREAM) in Anthropic's shape; the
    gateway translates it to the recorded OpenAI request, the tag riding as metadata.user_id."""
    if call.leave_timeout is not None:
        client = client.with_options(timeout=call.leave_timeout)
    question = {"role": "user", "content": "What is the capital of France?"}
    req = {"max_tokens": 64, "messages": [question], "metadata": {"user_id": call.tag}}
    headers = {"X-Request-Id": call.tag}
    if not call.stream:
        client.messages.create(model="openai/gpt-4o", system="You are a helpful assistant.", **req, extra_headers=headers)
        return 200
    with client.messages.create(model="openai/gpt-5", stream=True, **req, extra_headers=headers) as events:
        for seen, _ in enumerate(events, 1):
            if call.leave_after is not None and seen >= call.leave_after:
                return "left"
    return 200


def stream_call(client: openai.OpenAI, req: dict, call: Call) -> int | str:
    stream = client.chat.completions.create(**req, extra_headers={"X-Request-Id": call.tag})
    with stream:
        for seen, chunk in enumerate(stream, 1):
            if chunk.usage is not None:
                call.cost = (chunk.usage.model_extra or {}).get("cost")
            if call.leave_after is not None and seen >= call.leave_after:
                return "left"  # closing the stream closes the connection mid-answer
    return 200


@dataclasses.dataclass
class Timeline:
    kill: float = 0.0
    restarted: float = 0.0
    redis_stop: float = 0.0
    redis_start: float = 0.0
    disabled: float = 0.0
    refused_after: dict[int, float] = dataclasses.field(default_factory=dict)


def admin(base: str, master_key: str, method: str, path: str, **kw) -> requests.Response:
    r = requests.request(method, base + path, headers={"Authorization": f"Bearer {master_key}"}, timeout=30, **kw)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r


def make_keys(base: str, master_key: str) -> dict[str, dict]:
    specs = {
        "free": {},
        "cap0": {"limit": CAP_MICROS / 1e6},
        "cap1": {"limit": CAP_MICROS / 1e6},
        "rated": {"rate_limit": {"requests": RATE_REQUESTS, "interval": f"{RATE_SECONDS}s"}},
        "doomed": {},
    }
    return {k: admin(base, master_key, "POST", "/api/v1/keys", json={"name": k, **v}).json() for k, v in specs.items()}


def status_of(base: str, secret: str) -> int:
    return requests.get(base + "/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=10).status_code


def disable_and_watch(gws: fleet.Gateways, master_key: str, key: dict, t: Timeline) -> None:
    """Disables `key` through gateway 1 and times how long gateways 0 and 2 still take it."""
    for n in (0, 2):
        assert status_of(gws.url(n), key["key"]) == 200
    admin(gws.url(1), master_key, "PATCH", f"/api/v1/keys/{key['data']['hash']}", json={"disabled": True})
    t.disabled = time.monotonic()
    assert status_of(gws.url(1), key["key"]) == 401, "refused at once by the gateway that disabled it"
    deadline = t.disabled + 10
    while len(t.refused_after) < 2 and time.monotonic() < deadline:
        for n in (0, 2):
            if n not in t.refused_after and status_of(gws.url(n), key["key"]) == 401:
                t.refused_after[n] = time.monotonic() - t.disabled
        time.sleep(0.01)


def load(base: str, secrets: dict[str, str], gws: fleet.Gateways, redis: fleet.Redis, master_key, doomed) -> tuple[list[Call], Timeline]:
    """Runs the planned calls through nginx while the faults strike at their marks."""
    calls, t = plan(), Timeline()
    clients = Clients(base, secrets)
    done = [0]
    lock = threading.Lock()

    def one(call: Call) -> Call:
        try:
            return run(call, clients)
        finally:
            with lock:
                done[0] += 1

    faults = [
        (KILL_AT, lambda: kill_and_restart(gws, t)),
        (DISABLE_AT, lambda: disable_and_watch(gws, master_key, doomed, t)),
        (REDIS_AT, lambda: restart_redis(redis, t)),
    ]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(one, c) for c in calls]
        for mark, strike in faults:
            while done[0] < mark * REQUESTS:
                time.sleep(0.01)
            strike()
        for f in futures:
            f.result()
    return calls, t


def kill_and_restart(gws: fleet.Gateways, t: Timeline) -> None:
    t.kill = time.monotonic()
    gws.kill(0)
    time.sleep(DOWN_S)
    gws.start(0)
    t.restarted = time.monotonic()


def restart_redis(redis: fleet.Redis, t: Timeline) -> None:
    t.redis_stop = time.monotonic()
    redis.stop()
    time.sleep(DOWN_S)
    redis.start()
    t.redis_start = time.monotonic()


def transactions(base: str, master_key: str) -> list[dict]:
    rows, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = admin(base, master_key, "GET", "/api/v1/transactions", params=params).json()
        rows += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return [r for r in rows if r.get("type", "usage") == "usage"]


def settled(base: str, master_key: str) -> list[dict]:
    """The usage rows, once no gateway's recorder adds any more."""
    before = -1
    while True:
        rows = transactions(base, master_key)
        if len(rows) == before:
            return rows
        before = len(rows)
        time.sleep(0.5)


def micros(usd: float) -> int:
    return round(usd * 1_000_000)


def balance(base: str, master_key: str) -> int:
    d = admin(base, master_key, "GET", "/api/v1/credits").json()["data"]
    return micros(d["total_credits"]) - micros(d["total_usage"])


def test_three_gateways_behind_nginx_under_load_with_faults(tmp_path, master_key, postgres_server):
    database = pg.fresh_database(postgres_server)
    with contextlib.ExitStack() as stack:
        replay_url, control = stack.enter_context(servers.replay(tmp_path, chunk_delay_ms=5))
        redis = fleet.Redis(tmp_path)
        redis.start()
        stack.callback(lambda: redis.stop())
        extra = ["--store", database, "--store-poll-ms", str(POLL_MS), "--redis", f"redis://127.0.0.1:{redis.port}"]
        gws = fleet.Gateways(tmp_path, replay_url, master_key, extra)
        stack.callback(gws.close)
        gws.start()
        keys = make_keys(gws.url(0), master_key)
        admin(gws.url(0), master_key, "POST", "/api/v1/balance", json={"amount": CREDIT, "note": "fleet"})
        for _ in range(N - 1):
            gws.start()  # after the keys exist: each loads them at start
        (tmp_path / "nginx").mkdir()
        base, access_log = stack.enter_context(fleet.nginx(tmp_path / "nginx", gws.ports))
        before = [balance(gws.url(n), master_key) for n in range(N)]
        secrets = {k: v["key"] for k, v in keys.items() if k != "doomed"}
        started = time.monotonic()
        calls, t = load(base, secrets, gws, redis, master_key, keys["doomed"])
        took = time.monotonic() - started
        probe_balancer(base, secrets["free"], t)
        rows = settled(gws.url(1), master_key)
        after = [balance(gws.url(n), master_key) for n in range(N)]
        provider = control.get(replay_url + "/_replay/requests").json()
        nginx_log = fleet.access_records(access_log)
        report = check(calls, t, rows, provider, nginx_log, keys, gws, before, after)
        report["load_s"] = round(took, 1)
        print("\nfleet:", report)


def check(calls, t, rows, provider, nginx_log, keys, gws, before, after) -> dict:
    by_tag = {c.tag: c for c in calls}
    report = check_ledger(calls, t, rows, provider, nginx_log, gws)
    # The drop in balance is the sum of the costs, to the micro-dollar, read through each gateway.
    spent = sum(micros(r["cost"]) for r in rows)
    assert len(set(before)) == 1 and len(set(after)) == 1, (before, after)
    assert before[0] - after[0] == spent, (before, after, spent)
    report["billed_usd"] = spent / 1e6
    report.update(check_credit_limits(calls, rows, keys))
    report.update(check_rate_limit([by_tag[c.tag] for c in calls if c.key == "rated"], provider, t))
    # Coherence: the key disabled through gateway 1 was refused by 0 and 2 within one poll
    # interval of the store, plus one read of the keys table and this probe's own answer on a
    # loaded gateway (half a second for both).
    assert sorted(t.refused_after) == [0, 2], t.refused_after
    report["refused_after_s"] = {n: round(s, 3) for n, s in t.refused_after.items()}
    assert max(t.refused_after.values()) <= POLL_MS / 1000 + 0.5, t.refused_after
    # The restarted gateway takes its share again behind nginx (once its fail_timeout is over).
    killed = f"127.0.0.1:{gws.ports[0]}"
    assert any(killed in upstreams(nginx_log, f"probe-{i}") for i in range(PROBES)), "nothing to the restarted gateway"
    return report


PROBES = 6


def probe_balancer(base: str, secret: str, t: Timeline) -> None:
    """Unbilled requests through nginx (`GET /v1/models`), past the restarted gateway's
    fail_timeout (2 s in deploy/nginx.conf): round robin sends some of them to it."""
    time.sleep(max(0.0, t.restarted + 2.5 - time.monotonic()))
    for i in range(PROBES):
        headers = {"Authorization": f"Bearer {secret}", "X-Request-Id": f"probe-{i}"}
        assert requests.get(base + "/v1/models", headers=headers, timeout=10).status_code == 200


def upstreams(nginx_log: dict, tag: str) -> str:
    return " ".join(r["upstream"] for r in nginx_log.get(tag, []))


def check_ledger(calls, t, rows, provider, nginx_log, gws) -> dict:
    by_tag = {c.tag: c for c in calls}
    reached = [p["body"].get("user") for p in provider]
    assert all(tag in by_tag for tag in reached), "a provider call the load did not make"
    # No call reached a provider twice: nginx never sends a request that reached a gateway to
    # another one (no `non_idempotent` in deploy/nginx.conf).
    assert len(set(reached)) == len(reached)
    billed: dict[str, dict] = {}
    for r in rows:
        assert r["request_id"] not in billed, f"billed twice: {r['request_id']}"
        billed[r["request_id"]] = r
    # Billed without a provider call: only a call the killed gateway had journaled and not yet
    # sent when it died (the journal cannot tell; billed its prompt, an `interrupted` row, checked
    # below with the others).
    unreached = set(billed) - set(reached)
    assert all(billed[tag]["status"] == "interrupted" for tag in unreached), f"billed without a provider call: {sorted(unreached)[:5]}"
    # Every call that reached a provider has a transaction, the killed gateway's too.
    killed = f"127.0.0.1:{gws.ports[0]}"
    lost = [by_tag[tag] for tag in reached if tag not in billed]
    assert not lost, f"{len(lost)} call(s) reached a provider and have no transaction: {lost[:3]}"
    # Billed from the journal: only calls the killed gateway had in flight, or had answered
    # within one recorder batch (and its commit) before the kill, at their prompt's cost.
    interrupted = [by_tag[tag] for tag, r in billed.items() if r["status"] == "interrupted"]
    assert interrupted, "the kill interrupted no call"

    for c in interrupted:
        row = billed[c.tag]
        assert killed in upstreams(nginx_log, c.tag), f"{c} interrupted, not on the killed gateway"
        assert c.started <= t.kill <= c.ended + 1.0, f"{c} interrupted, not in flight at the kill ({t.kill})"
        assert row["completion_tokens"] == 0 and row["prompt_tokens"] > 0, row
    # A call the client saw whole is billed what the client was told; one the kill interrupted
    # before its bill was stored is billed its prompt, less than that.
    whole = [c for c in calls if c.status == 200 and c.cost is not None]
    for c in whole:
        row = billed[c.tag]
        if row["status"] == "interrupted":
            assert 0 < micros(row["cost"]) <= micros(c.cost), (c, row)
            continue
        assert micros(row["cost"]) == micros(c.cost), (c, row)
        assert row["status"] == "complete", row
    # Calls translated from Anthropic's dialect are billed too, under the same request id.
    translated = [c for c in calls if c.anthropic and c.status == 200]
    assert translated and all(c.tag in billed for c in translated)
    left = [c for c in calls if c.status == "left" and c.tag in billed]
    assert left, "no client left a call that reached a provider"
    statuses = sorted({billed[c.tag]["status"] for c in left})
    return {
        "calls": len(calls),
        "answers": count_by(calls, lambda c: str(c.status)),
        "provider_calls": len(reached),
        "transactions": len(rows),
        "interrupted_by_kill_9": len(interrupted),
        "interrupted_not_at_provider": len(unreached),
        "interrupted_answered_before_kill": count_by(interrupted, lambda c: (str(c.status), c.ended < t.kill)),
        "interrupted_earliest_end_before_kill_ms": round(max([t.kill - c.ended for c in interrupted] + [0]) * 1000),
        "left_billed_as": statuses,
        "anthropic_billed": sum(1 for c in calls if c.anthropic and c.tag in billed),
    }


def count_by(items, key) -> dict:
    out: dict = {}
    for x in items:
        out[key(x)] = out.get(key(x), 0) + 1
    return dict(sorted(out.items()))


def check_credit_limits(calls, rows, keys) -> dict:
    """Each gateway spends only the credit it leased of a key's limit from the shared store
    (docs/deploy.md): the key never spends past its limit in all, whichever gateways served
    it, and the limit did refuse calls."""
    out = {}
    for name in ("cap0", "cap1"):
        spent = sum(micros(r["cost"]) for r in rows if r["key_id"] == keys[name]["data"]["hash"])
        refused = sum(1 for c in calls if c.key == name and c.status == 402)
        assert refused > 0, f"{name}: the limit never refused a call"
        assert spent <= CAP_MICROS, f"{name}: spent {spent} micro-USD, limit {CAP_MICROS}"
        out[f"{name}_spent_of_limit"] = round(spent / CAP_MICROS, 3)
    return out


def check_rate_limit(rated: list[Call], provider, t: Timeline) -> dict:
    """GCRA with burst B = RATE_REQUESTS and emission interval T: over a span w, at most
    B + floor(w / T) admissions. While Redis is up the fleet shares one bucket: exact. Across the
    restart: the shared bucket before, each gateway's own bucket while Redis is away (and up to a
    second after, until it tries again, plus a timeout), a full shared bucket after."""
    b, period = RATE_REQUESTS, RATE_SECONDS / RATE_REQUESTS
    # Admitted: every answer of a gateway but a 429, and a call cut by the kill (an nginx 502, a
    # broken stream) when it reached the provider. One cut between its admission and its
    # provider call is not seen: counted apart.
    reached = {p["body"].get("user") for p in provider}
    cut = [c for c in rated if c.status in (502, "broken")]
    admitted = [c for c in rated if c.status != 429 and (c not in cut or c.tag in reached)]
    assert any(c.status == 429 for c in rated), "the rate limit never refused"
    before = [c for c in admitted if c.ended < t.redis_stop]
    span = max(c.ended for c in before) - min(c.started for c in rated)
    exact = b + int(span / period)
    assert len(before) <= exact, f"{len(before)} admitted in {span:.1f} s with Redis up; bound {exact}"
    whole = max(c.ended for c in rated) - min(c.started for c in rated)
    alone = (t.redis_start - t.redis_stop) + 1.5
    bound = (N + 2) * b + int((whole + N * alone) / period)
    assert len(admitted) <= bound, f"{len(admitted)} admitted in {whole:.1f} s; bound {bound}"
    return {
        "rated_admitted_with_redis_up": f"{len(before)} (bound {exact})",
        "rated_admitted": f"{len(admitted)} of {len(rated)} (bound {bound}; one bucket per gateway: {N * (b + int(whole / period))})",
        "rated_cut_unknown": sum(1 for c in cut if c.tag not in reached),
        # What the Redis restart let through beyond one shared bucket over the whole run.
        "rated_excess_over_shared": len(admitted) - (b + int(whole / period)),
        "redis_away_s": round(t.redis_start - t.redis_stop, 2),
    }
