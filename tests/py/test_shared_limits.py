"""Per-key rate limits shared by several gateways through Redis (`--redis`).

Two gateways on one data directory (so one key table) and one Redis: a key's
limit holds across both, the `X-RateLimit-Remaining` countdown running on
through either; without Redis each gateway enforces the limit alone, so twice
as many requests pass. With Redis away, `--redis-failure open` (the default)
decides on each gateway's own bucket and `/readyz` says Redis is unavailable
but stays 200; `closed` refuses a limited key with a 503 in the route's
dialect, and `/readyz` is 503. When Redis comes back, limits are shared
again. The limit is 4 per 60 s: nothing refills during a test."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import re
import shutil
import subprocess
import time

import pytest
import requests

import sdk_cases
import servers

LIMIT = 4


@contextlib.contextmanager
def redis_server(workdir: pathlib.Path, port: int | None = None):
    """A throwaway redis-server on loopback, no persistence; yields its port."""
    from conftest import free_port

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is needed (.ci/run installs Debian's redis-server)")
    port = port or free_port()
    log = open(workdir / f"redis-{port}.log", "ab")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
        ).stdout.strip() != "PONG":
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def env_for(redis_port: int | None, failure: str | None = None) -> dict[str, str]:
    env = {"AROUTER_RATE_LIMIT": f"{LIMIT}/60s"}
    if redis_port is not None:
        env["AROUTER_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}"
    if failure is not None:
        env["AROUTER_REDIS_FAILURE"] = failure
    return env


def ask(base: str, key: str) -> requests.Response:
    """One request that counts against the key's limit and reaches no provider."""
    return requests.get(base + "/api/v1/key", headers={"Authorization": f"Bearer {key}"}, timeout=10)


@contextlib.contextmanager
def two_gateways(workdir: pathlib.Path, env: dict[str, str], master_key: str):
    """Two gateways on one data directory; yields (a, b, key), the key made through `a`
    before `b` started, so both know it."""
    with servers.gateway(workdir, env, None, master_key) as a:
        key = sdk_cases.create_key(a, master_key, name="shared")["key"]
        with servers.gateway(workdir, env, None, master_key) as b:
            yield a, b, key


def test_a_keys_limit_holds_across_gateways_sharing_redis(tmp_path, master_key):
    with redis_server(tmp_path) as port, two_gateways(tmp_path, env_for(port), master_key) as (a, b, key):
        answers = [ask(base, key) for base in [a, b] * LIMIT]
        assert [r.status_code for r in answers] == [200] * LIMIT + [429] * LIMIT
        assert [int(r.headers["X-RateLimit-Remaining"]) for r in answers[:LIMIT]] == list(range(LIMIT - 1, -1, -1))
        refused = answers[LIMIT]
        assert refused.json()["error"]["code"] == 429  # OpenRouter's error shape under /api/v1/
        assert int(refused.headers["Retry-After"]) >= 1
        ready = requests.get(a + "/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": "ok", "redis": "ok"}


def test_concurrent_admissions_on_two_gateways_never_pass_the_limit(tmp_path, master_key):
    """Forty requests at once, half through each gateway: the swaps race in Redis, and
    exactly the limit passes."""
    from concurrent.futures import ThreadPoolExecutor

    with redis_server(tmp_path) as port, two_gateways(tmp_path, env_for(port), master_key) as (a, b, key):
        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(lambda base: ask(base, key).status_code, [a, b] * 20))
        assert sorted(statuses) == [200] * LIMIT + [429] * (40 - LIMIT)


def test_without_redis_each_gateway_enforces_the_limit_alone(tmp_path, master_key):
    with two_gateways(tmp_path, env_for(None), master_key) as (a, b, key):
        answers = [ask(base, key) for base in [a, b] * (LIMIT + 1)]
        assert sum(r.status_code == 200 for r in answers) == 2 * LIMIT
        assert [r.status_code for r in answers[-2:]] == [429, 429]
        assert "redis" not in requests.get(a + "/readyz", timeout=10).json()["checks"]


def test_open_policy_without_redis_decides_alone_and_readyz_says_so(tmp_path, master_key):
    from conftest import free_port

    port = free_port()  # nothing listens there yet
    with two_gateways(tmp_path, env_for(port), master_key) as (a, b, key):
        answers = [ask(base, key) for base in [a, b] * (LIMIT + 1)]
        assert sum(r.status_code == 200 for r in answers) == 2 * LIMIT, "each gateway alone"
        ready = requests.get(a + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["redis"] == "unavailable"
        # Redis comes up: after at most a second, admissions go to it again (its state
        # starts full: what the gateways admitted alone is not in it).
        with redis_server(tmp_path, port):
            time.sleep(1.2)
            shared = [ask(base, key) for base in [a, b] * LIMIT]
            assert [r.status_code for r in shared] == [200] * LIMIT + [429] * LIMIT
            assert requests.get(b + "/readyz", timeout=10).json()["checks"]["redis"] == "ok"
        log = (tmp_path / "gateway.log").read_text()
        assert "Redis is unreachable" in log and "Redis is back" in log


def test_closed_policy_refuses_a_limited_key_while_redis_is_away(tmp_path, master_key):
    from conftest import free_port

    port = free_port()
    env = env_for(port, "closed")
    with servers.gateway(tmp_path, env, None, master_key) as base:
        key = sdk_cases.create_key(base, master_key, name="shared")["key"]
        refused = ask(base, key)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == 503  # OpenRouter's error shape under /api/v1/
        openai = requests.post(
            base + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert openai.status_code == 503
        assert openai.json()["error"]["code"] == "rate_limiter_unavailable"
        # The same refusal in another dialect's shape, on its route.
        anthropic = requests.post(
            base + "/v1/messages",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            json={"model": "anthropic/claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert anthropic.status_code == 503
        assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "overloaded_error"
        ready = requests.get(base + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json() == {"status": "unavailable", "checks": {"store": "ok", "redis": "unavailable"}}
        # Metrics say so too: Redis down, and the admissions its policy decided.
        down = servers.metric_values(base, master_key)
        assert down['arouter_dependency_up{dependency="redis"}'] == 0
        assert down["arouter_rate_limit_policy_decisions_total"] >= 3
        with redis_server(tmp_path, port):
            time.sleep(1.2)
            assert ask(base, key).status_code == 200
            assert requests.get(base + "/readyz", timeout=10).status_code == 200
            assert servers.metric_values(base, master_key)['arouter_dependency_up{dependency="redis"}'] == 1



async def burst(base: str, key: str, connections: int, each: int) -> list[int]:
    """`connections` keep-alive connections at once, each asking `each` times in a row; the
    statuses. (asyncio: more requests in flight at once than threads would give.)"""
    host, port = base.removeprefix("http://").split(":")
    request = f"GET /api/v1/key HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n".encode()

    async def one() -> list[int]:
        reader, writer = await asyncio.open_connection(host, int(port))
        out = []
        for _ in range(each):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            await reader.readexactly(length)
            out.append(int(head.split(b" ", 2)[1]))
        writer.close()
        return out

    results = await asyncio.gather(*(one() for _ in range(connections)))
    return [s for r in results for s in r]


def test_concurrent_admissions_of_one_key_are_not_taken_for_an_outage(tmp_path, master_key):
    """Hundreds of requests of one key at once on a gateway: they take turns for the key, so
    their swaps never race each other in Redis (they used to, losing eight in a row was taken
    for Redis being away, and `closed` refused most of them with 503). Every admission is
    counted once in Redis, none is refused, and nothing says Redis is away."""
    with redis_server(tmp_path) as port:
        # One request back every 0.864 s: the countdown barely refills during the test.
        env = {"AROUTER_RATE_LIMIT": "100000/1d", "AROUTER_REDIS_URL": f"redis://127.0.0.1:{port}"}
        env["AROUTER_REDIS_FAILURE"] = "closed"
        with servers.gateway(tmp_path, env, None, master_key) as base:
            key = sdk_cases.create_key(base, master_key, name="hot")["key"]
            started = time.monotonic()
            statuses = asyncio.run(burst(base, key, connections=200, each=15))
            assert statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
            remaining = int(ask(base, key).headers["X-RateLimit-Remaining"])
            refilled = int((time.monotonic() - started) / 0.864) + 1
            assert 100000 - len(statuses) - 1 <= remaining <= 100000 - len(statuses) - 1 + refilled
    assert "Redis is unreachable" not in (tmp_path / "gateway.log").read_text()


def test_one_keys_admissions_on_two_gateways_at_once_all_get_their_turn(tmp_path, master_key):
    """Hundreds of one key's requests at once on each of two gateways: a gateway that lost a
    swap gets the next turn (it used to lose again and again to the gateway that had just won,
    whose next swap was always sent first, until the admission gave up: a 503 under `closed`).
    Every admission is counted once in Redis and none is refused."""
    with redis_server(tmp_path) as port:
        env = {"AROUTER_RATE_LIMIT": "100000/1d", "AROUTER_REDIS_URL": f"redis://127.0.0.1:{port}"}
        env["AROUTER_REDIS_FAILURE"] = "closed"
        with two_gateways(tmp_path, env, master_key) as (a, b, key):
            started = time.monotonic()

            async def both() -> list[int]:
                halves = await asyncio.gather(burst(a, key, 200, 20), burst(b, key, 200, 20))
                return halves[0] + halves[1]

            statuses = asyncio.run(both())
            assert statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
            remaining = int(ask(a, key).headers["X-RateLimit-Remaining"])
            refilled = int((time.monotonic() - started) / 0.864) + 1
            assert 100000 - len(statuses) - 1 <= remaining <= 100000 - len(statuses) - 1 + refilled
    assert "Redis is unreachable" not in (tmp_path / "gateway.log").read_text()
