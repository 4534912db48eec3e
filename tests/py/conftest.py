"""Fixtures for the ARouter contract tests.

`gateway` starts the real server binary once per session:

    $AROUTER_BIN serve --listen 127.0.0.1:<free port> --data-dir <tmp dir>

(default binary: <repo>/target/debug/arouter; build it with `cargo build -p arouter`).
A missing binary is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

import contract
import pg

REPO_ROOT = contract.REPO_ROOT
MASTER_KEY = "sk-test-master"
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_GRACE_S = 5.0

# Environment variables that could point the gateway at real providers or change its
# configuration; they are removed so the server sees only what the fixture sets.
_SCRUB = re.compile(
    r"(_API_KEY|_API_BASE|_BASE_URL|_ENDPOINT|_TOKEN|_SECRET)$"
    r"|^(AROUTER_(?!RUNTIME$)|OPENAI_|ANTHROPIC_|GEMINI_|GOOGLE_|VERTEX|AZURE_|AWS_|OPENROUTER_|MISTRAL_|GROQ_"
    r"|DEEPSEEK_|XAI_|TOGETHER_|FIREWORKS_|COHERE_|HTTP_PROXY|HTTPS_PROXY|ALL_PROXY)",
    re.IGNORECASE,
)


def binary_path() -> pathlib.Path:
    return pathlib.Path(os.environ.get("AROUTER_BIN") or REPO_ROOT / "target" / "debug" / "arouter")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gateway_env(master_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SCRUB.search(k)}
    env.update(
        {
            "AROUTER_MASTER_KEY": master_key,
            "OPENAI_API_KEY": "sk-upstream-test",
            # Port 9 (discard) on loopback: nothing answers, nothing leaves the machine.
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "NO_PROXY": "*",
        }
    )
    return env


def _tail(path: pathlib.Path, limit: int = 8000) -> str:
    """The log's beginning and end (the first panic and the last words both matter)."""
    try:
        data = path.read_bytes()
    except OSError:
        return "<unreadable>"
    if len(data) > limit:
        half = limit // 2
        data = data[:half] + b"\n[... %d bytes omitted ...]\n" % (len(data) - limit) + data[-half:]
    return data.decode("utf-8", "replace")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=SHUTDOWN_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=SHUTDOWN_GRACE_S)


@pytest.fixture(scope="session")
def spec() -> dict:
    """The parsed spec/openapi.yaml."""
    return contract.load_spec()


@pytest.fixture(scope="session")
def master_key() -> str:
    """The gateway's master key (AROUTER_MASTER_KEY); also a valid gateway credential."""
    return MASTER_KEY


@contextlib.contextmanager
def started_gateway(workdir: pathlib.Path, master_key: str, extra_args: list[str] | None = None):
    """Start the real gateway in `workdir` (its data directory `workdir/data`), with
    `extra_args` after the usual ones, and yield its base URL."""
    binary = binary_path()
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(
            f"gateway binary not found or not executable: {binary}\n"
            f"Build it with `cd {REPO_ROOT} && cargo build -p arouter`, "
            f"or point AROUTER_BIN at a built binary.",
            pytrace=False,
        )

    data_dir = workdir / "data"
    data_dir.mkdir()
    stdout_path, stderr_path = workdir / "stdout.log", workdir / "stderr.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir)]
    cmd += extra_args or []

    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd,
            env=gateway_env(master_key),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
        )

    probe = requests.Session()
    probe.trust_env = False
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error = None
    while True:
        code = proc.poll()
        if code is not None:
            pytest.fail(
                f"gateway exited with status {code} before answering /healthz\n"
                f"command: {' '.join(cmd)}\n--- stderr ---\n{_tail(stderr_path)}\n"
                f"--- stdout ---\n{_tail(stdout_path, 2000)}",
                pytrace=False,
            )
        try:
            r = probe.get(base_url + "/healthz", timeout=1)
            if r.status_code == 200:
                break
            last_error = f"/healthz answered {r.status_code}: {r.text[:200]}"
        except requests.RequestException as e:
            last_error = repr(e)
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(
                f"gateway did not answer /healthz within {STARTUP_TIMEOUT_S:.0f}s "
                f"(last: {last_error})\ncommand: {' '.join(cmd)}\n--- stderr ---\n{_tail(stderr_path)}",
                pytrace=False,
            )
        time.sleep(0.1)
    probe.close()

    try:
        yield base_url
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def sqlite_gateway(tmp_path_factory, master_key):
    """The real gateway on its default store (SQLite in a fresh data directory); its base URL
    (http://127.0.0.1:<port>)."""
    with started_gateway(tmp_path_factory.mktemp("gateway"), master_key) as base:
        yield base


@pytest.fixture(scope="session")
def gateway(sqlite_gateway):
    """The real gateway (SQLite store); modules that run on every store override this name
    with `store_gateway`."""
    return sqlite_gateway


# ----------------------------------------------------------------- the Postgres store


@pytest.fixture(scope="session")
def postgres_server():
    """A superuser URL of a PostgreSQL server: AROUTER_TEST_POSTGRES_URL (scripts/test sets
    it), else a throwaway cluster started here with scripts/pg-cluster. Without PostgreSQL
    the Postgres tests are skipped, except under CI, where that is a failure."""
    url = os.environ.get("AROUTER_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    with pg.cluster_or_skip() as (_, url):
        yield url


@pytest.fixture(scope="session")
def postgres_gateway(tmp_path_factory, master_key, postgres_server):
    """The real gateway on a fresh PostgreSQL database (`--store`); its base URL."""
    url = pg.fresh_database(postgres_server)
    with started_gateway(tmp_path_factory.mktemp("pg-gateway"), master_key, ["--store", url]) as base:
        yield base


STORES = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=STORES)
def store_gateway(request):
    """`gateway`, once on each store."""
    return request.getfixturevalue(f"{request.param}_gateway")


@pytest.fixture(scope="session")
def http():
    """A requests session that never uses environment proxies."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


@pytest.fixture(scope="session")
def validate_response():
    """contract.validate_response(method, path_template, status, content_type, body_json)."""
    return contract.validate_response


@pytest.fixture(scope="session")
def validate_schema():
    """contract.validate_schema(schema_name, instance)."""
    return contract.validate_schema


@pytest.fixture(scope="session")
def replay_upstream(tmp_path_factory):
    """The replay upstream playing the providers: (base_url, control session)."""
    import servers

    with servers.replay(tmp_path_factory.mktemp("replay")) as pair:
        yield pair


def routed_setup(url: str) -> tuple[dict[str, str], str]:
    """The environment and config file of a gateway whose providers (`openai`, `anthropic`,
    `gemini`, and `backup`, an OpenAI-compatible server) are all played by the replay
    upstream at `url`."""
    env = {
        "OPENAI_API_KEY": "sk-provider-openai",
        "OPENAI_BASE_URL": f"{url}/v1",
        "ANTHROPIC_API_KEY": "sk-provider-anthropic",
        "ANTHROPIC_BASE_URL": url,
        "GEMINI_API_KEY": "sk-provider-gemini",
        "GEMINI_BASE_URL": url,
        "BACKUP_KEY": "sk-provider-backup",
    }
    config = f'[providers.backup]\nkind = "openai"\nbase_url = "{url}/v1"\napi_key_env = "BACKUP_KEY"\n'
    return env, config


@pytest.fixture(scope="session")
def sqlite_routed_gateway(tmp_path_factory, replay_upstream, master_key):
    """A gateway on the replay upstream (see `routed_setup`), SQLite store. Yields its base URL."""
    import servers

    env, config = routed_setup(replay_upstream[0])
    with servers.gateway(tmp_path_factory.mktemp("routed"), env, config, master_key) as base:
        yield base


@pytest.fixture(scope="session")
def routed_gateway(sqlite_routed_gateway):
    """A gateway on the replay upstream (SQLite store); modules that run on every store
    override this name with `routed_store_gateway`."""
    return sqlite_routed_gateway


@pytest.fixture(scope="session")
def postgres_routed_gateway(tmp_path_factory, replay_upstream, master_key, postgres_server):
    """A gateway on the replay upstream with a fresh PostgreSQL database as its store."""
    import servers

    env, config = routed_setup(replay_upstream[0])
    extra = ["--store", pg.fresh_database(postgres_server)]
    with servers.gateway(tmp_path_factory.mktemp("pg-routed"), env, config, master_key, extra) as base:
        yield base


@pytest.fixture(scope="session", params=STORES)
def routed_store_gateway(request):
    """`routed_gateway`, once on each store."""
    return request.getfixturevalue(f"{request.param}_routed_gateway")


@pytest.fixture()
def replay_control(replay_upstream):
    """Control session of the replay upstream; faults and the log are reset per test."""
    url, control = replay_upstream
    control.post(url + "/_replay/reset").raise_for_status()
    yield url, control
    control.post(url + "/_replay/reset").raise_for_status()
