"""Start the replay upstream (arouter-replay) and a gateway wired to it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import subprocess
import time

import requests

import contract

REPO_ROOT = contract.REPO_ROOT


def _bin(name: str) -> pathlib.Path:
    # AROUTER_BIN points the tests at another gateway build, as in conftest.
    override = os.environ.get("AROUTER_BIN") if name == "arouter" else None
    path = pathlib.Path(override) if override else REPO_ROOT / "target" / "debug" / name
    if not path.is_file():
        raise RuntimeError(f"{path} not found: build it with `cargo build --workspace --bins`")
    return path


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextlib.contextmanager
def replay(workdir: pathlib.Path, chunk_delay_ms: int = 1):
    """Yields (base_url, control) where control is a requests session for /_replay/; streamed
    events are `chunk_delay_ms` apart."""
    addr_file = workdir / "replay.addr"
    log = open(workdir / "replay.log", "wb")
    proc = subprocess.Popen(
        [str(_bin("arouter-replay")), "--addr-file", str(addr_file), "--chunk-delay-ms", str(chunk_delay_ms)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not addr_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("arouter-replay did not start:\n" + (workdir / "replay.log").read_text())
            time.sleep(0.05)
        url = "http://" + addr_file.read_text().strip()
        with requests.Session() as control:
            control.trust_env = False
            yield url, control
    finally:
        _stop(proc)
        log.close()


@contextlib.contextmanager
def gateway(
    workdir: pathlib.Path,
    env: dict[str, str],
    config_toml: str | None,
    master_key: str,
    extra_args: list[str] | None = None,
):
    """Yields the base URL of a gateway started with `env` and `config_toml` (and
    `extra_args` on its command line)."""
    with gateway_process(workdir, env, config_toml, master_key, extra_args) as (base, _):
        yield base


@contextlib.contextmanager
def gateway_process(
    workdir: pathlib.Path,
    env: dict[str, str],
    config_toml: str | None,
    master_key: str,
    extra_args: list[str] | None = None,
    port: int | None = None,
):
    """Yields (base URL, process) of a gateway started with `env` and `config_toml`, on the data
    directory `workdir/data` (a second gateway on the same `workdir` finds what the first stored),
    listening on `port` (default: a free one)."""
    from conftest import free_port, gateway_env  # the scrubbed environment

    full_env = gateway_env(master_key)
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        full_env.pop(key, None)
    full_env.update(env)
    cmd = [str(_bin("arouter")), "serve", "--listen", f"127.0.0.1:{port or free_port()}", "--data-dir", str(workdir / "data")]
    if config_toml is not None:
        cfg = workdir / "arouter.toml"
        cfg.write_text(config_toml)
        cmd += ["--config", str(cfg)]
    cmd += extra_args or []
    port = cmd[3].rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{port}"
    err = open(workdir / "gateway.log", "ab")
    proc = subprocess.Popen(cmd, env=full_env, stdout=err, stderr=err, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gateway did not start:\n" + (workdir / "gateway.log").read_text())
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        yield base, proc
    finally:
        _stop(proc)
        err.close()


def metric_values(base: str, master_key: str) -> dict[str, float]:
    """The gateway's metrics, `name{labels}` to value, read with the Prometheus parser."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {master_key}"}, timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
    return out
