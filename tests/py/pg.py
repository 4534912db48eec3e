"""A throwaway PostgreSQL for the tests of the Postgres store (`scripts/pg-cluster`: Debian's
server on a free loopback port, run as the `postgres` user when the tests run as root), and
fresh databases on it, one per gateway."""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile

import pytest

import contract

SCRIPT = contract.REPO_ROOT / "scripts" / "pg-cluster"
_names = itertools.count()


class Unavailable(Exception):
    """No PostgreSQL server could be started here."""


def start(directory: str) -> str:
    """Starts (first: creates) the cluster in `directory`; its superuser URL."""
    try:
        r = subprocess.run([str(SCRIPT), "start", directory], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(repr(e)) from e
    if r.returncode != 0:
        raise Unavailable(r.stderr.strip()[-2000:])
    return r.stdout.strip()


def stop(directory: str) -> None:
    subprocess.run([str(SCRIPT), "stop", directory], capture_output=True, timeout=120, check=True)


@contextlib.contextmanager
def cluster():
    """Yields (directory, superuser URL) of a cluster in a new temporary directory (searchable
    by the `postgres` user); stops and deletes it afterwards. Raises `Unavailable`."""
    top = tempfile.mkdtemp(prefix="arouter-pg-")
    os.chmod(top, 0o755)
    directory = os.path.join(top, "cluster")
    try:
        url = start(directory)
        try:
            yield directory, url
        finally:
            stop(directory)
    finally:
        shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def cluster_or_skip():
    """`cluster()`, or the test skipped when PostgreSQL cannot be had (a failure under CI,
    where it must be)."""
    stack = contextlib.ExitStack()
    try:
        directory, url = stack.enter_context(cluster())
    except Unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"no PostgreSQL: {e}", pytrace=False)
        pytest.skip(f"no PostgreSQL: {e}")
    with stack:
        yield directory, url


def _psql() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))), None)
    if not found:
        raise Unavailable("psql not found (apt-get install postgresql)")
    return found


def fresh_database(admin_url: str) -> str:
    """Creates an empty database on the server of `admin_url`; its URL."""
    name = f"arouter_py_{os.getpid()}_{next(_names)}"
    subprocess.run(
        [_psql(), admin_url, "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {name}"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    base, sep, query = admin_url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + sep + query
