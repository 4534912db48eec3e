"""How soon a key disabled through one gateway is refused by another on the same PostgreSQL
database: the time from the management call's answer on p to the first 401 on q (q asked in a
tight loop), over CHANGES changes made at random moments. Prints median and max for each setup given:

    .venv/bin/python bench/key_propagation.py URL LABEL=BINARY:POLL_MS [LABEL=BINARY:POLL_MS ...]

URL is a superuser's URL (scripts/pg-cluster start DIR prints one); each setup gets a fresh
database. BINARY is an `arouter` build; e.g. this build with a one-minute poll (only the
store's notifications can explain a change seen sooner) against a build without them at the
default poll of 2000 ms."""

from __future__ import annotations

import os
import pathlib
import random
import statistics
import sys
import tempfile
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "py"))

import pg  # noqa: E402
import servers  # noqa: E402
from conftest import MASTER_KEY, routed_setup  # noqa: E402

CHANGES = int(os.environ.get("CHANGES", "50"))
# Each change waits a random time up to this first: otherwise each would follow the read that
# saw the one before, just after a poll, and wait a whole interval.
JITTER_S = float(os.environ.get("JITTER_S", "2.0"))


def status(session: requests.Session, base: str, key: str) -> int:
    return session.get(base + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code


def until(session: requests.Session, base: str, key: str, want: int, limit: float = 30.0) -> float:
    """Seconds until `key` gets `want` on `base`."""
    start = time.monotonic()
    while status(session, base, key) != want:
        if time.monotonic() - start > limit:
            raise RuntimeError(f"no {want} within {limit} s")
    return time.monotonic() - start


def measure(admin_url: str, binary: str, poll_ms: int) -> list[float]:
    os.environ["AROUTER_BIN"] = binary
    database = pg.fresh_database(admin_url)
    top = pathlib.Path(tempfile.mkdtemp(prefix="arouter-propagation-"))
    with servers.replay(top) as (upstream, _):
        env, config = routed_setup(upstream)
        extra = ["--store", database, "--store-poll-ms", str(poll_ms)]
        (top / "p").mkdir()
        (top / "q").mkdir()
        with servers.gateway(top / "p", env, config, MASTER_KEY, extra) as p, servers.gateway(
            top / "q", env, config, MASTER_KEY, extra
        ) as q, requests.Session() as s:
            auth = {"Authorization": f"Bearer {MASTER_KEY}"}
            made = s.post(p + "/api/v1/keys", headers=auth, json={"name": "propagation"}, timeout=10).json()
            key, hash_ = made["key"], made["data"]["hash"]
            until(s, q, key, 200, limit=poll_ms / 1000 + 30)
            out = []
            for _ in range(CHANGES):
                time.sleep(random.uniform(0, JITTER_S))
                for disabled, want in ((True, 401), (False, 200)):
                    r = s.patch(p + f"/api/v1/keys/{hash_}", headers=auth, json={"disabled": disabled}, timeout=10)
                    r.raise_for_status()
                    took = until(s, q, key, want, limit=poll_ms / 1000 + 30)
                    if want == 401:
                        out.append(took)
            return out


def main() -> None:
    import faulthandler

    faulthandler.dump_traceback_later(900, exit=True)
    admin_url, setups = sys.argv[1], sys.argv[2:]
    for setup in setups:
        label, rest = setup.split("=", 1)
        binary, poll_ms = rest.rsplit(":", 1)
        took = measure(admin_url, binary, int(poll_ms))
        ms = sorted(t * 1000 for t in took)
        print(
            f"{label}: {len(ms)} changes, median {statistics.median(ms):.1f} ms, "
            f"max {ms[-1]:.1f} ms, min {ms[0]:.1f} ms"
        )


if __name__ == "__main__":
    main()
