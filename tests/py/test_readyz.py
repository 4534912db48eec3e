"""`GET /readyz`: the readiness probe says whether the gateway's store answers, on the SQLite
file and on PostgreSQL, with no key; a gateway whose database went away stays live
(`/healthz` 200) but not ready (503), and is ready again once the database is back."""

from __future__ import annotations

import os
import time

import pytest
import requests

import pg
from conftest import started_gateway
from contract import validate_response

TIMEOUT = 10


def get_ready(http, base):
    r = http.get(f"{base}/readyz", timeout=TIMEOUT)
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", r.text
    validate_response("GET", "/readyz", r.status_code, ctype, r.json())
    return r


def test_ready_on_each_store_without_a_key(store_gateway, http, master_key):
    r = get_ready(http, store_gateway)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"store": "ok"}}
    # A wrong key changes nothing: the probe is public, like /healthz.
    bad = http.get(f"{store_gateway}/readyz", headers={"Authorization": "Bearer sk-wrong"}, timeout=TIMEOUT)
    assert bad.status_code == 200
    head = http.head(f"{store_gateway}/readyz", timeout=TIMEOUT)
    assert head.status_code == 200 and head.content == b""
    # Other methods are refused as on /healthz (after the credential check).
    auth = {"Authorization": f"Bearer {master_key}"}
    assert http.post(f"{store_gateway}/readyz", headers=auth, timeout=TIMEOUT).status_code == 405


def wait_for(http, base, status, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        r = get_ready(http, base)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_not_ready_while_the_database_is_down_and_ready_again_after(tmp_path_factory, master_key, http):
    try:
        cluster = pg.cluster()
        directory, admin = cluster.__enter__()
    except pg.Unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"no PostgreSQL: {e}", pytrace=False)
        pytest.skip(f"no PostgreSQL: {e}")
    try:
        url = pg.fresh_database(admin)
        with started_gateway(tmp_path_factory.mktemp("readyz"), master_key, ["--store", url]) as base:
            assert get_ready(http, base).status_code == 200
            pg.stop(directory)
            down = wait_for(http, base, 503)
            assert down.status_code == 503, down.text
            assert down.json() == {"status": "unavailable", "checks": {"store": "unavailable"}}
            assert http.get(f"{base}/healthz", timeout=TIMEOUT).status_code == 200, "still live"
            # Management calls that need the store fail as unavailable, not as a crash.
            keys = http.get(f"{base}/api/v1/keys", headers={"Authorization": f"Bearer {master_key}"}, timeout=TIMEOUT)
            assert keys.status_code == 503, keys.text
            assert pg.start(directory) == admin
            up = wait_for(http, base, 200)
            assert up.status_code == 200, up.text
            assert requests.get(
                f"{base}/api/v1/keys", headers={"Authorization": f"Bearer {master_key}"}, timeout=TIMEOUT
            ).status_code == 200
    finally:
        cluster.__exit__(None, None, None)
