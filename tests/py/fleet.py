"""A fleet on loopback, as docs/deploy.md describes it: N gateways on one PostgreSQL database
and one Redis, behind nginx running the repository's own site file (deploy/nginx.conf) with its
ports and log path replaced. Every part is a real server process; the providers are played by
the replay upstream. Gateways can be killed (`kill -9`) and started again on their port, Redis
stopped and started again on its port."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest
import requests

import contract
import servers
from conftest import free_port, routed_setup

SITE = contract.REPO_ROOT / "deploy" / "nginx.conf"


def nginx_site(listen: int, gateways: list[int], access_log: pathlib.Path) -> str:
    """deploy/nginx.conf with nginx listening on `listen`, one `server` line per gateway port,
    and the access log at `access_log`."""
    text = SITE.read_text()
    servers_re = re.compile(r"^(\s*)server 127\.0\.0\.1:\d+ (.*);$", re.M)
    first = servers_re.search(text)
    assert first, "deploy/nginx.conf has no `server 127.0.0.1:PORT ...;` line"
    indent, options = first.group(1), first.group(2)
    lines = "\n".join(f"{indent}server 127.0.0.1:{port} {options};" for port in gateways)
    text = servers_re.sub("", text)
    text = text[: first.start()] + lines + text[first.start() :]
    text, listens = re.subn(r"^(\s*)listen \d+;$", rf"\1listen 127.0.0.1:{listen};", text, flags=re.M)
    text, logs = re.subn(r"access_log \S+ arouter;", f"access_log {access_log} arouter;", text)
    assert listens == 1 and logs == 1, "deploy/nginx.conf: one listen and one access_log expected"
    return text


@contextlib.contextmanager
def nginx(workdir: pathlib.Path, gateways: list[int]):
    """Debian's nginx in the foreground with deploy/nginx.conf in front of `gateways`; yields
    (its base URL, the path of its access log)."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(exe, os.X_OK):
        pytest.fail("nginx is needed (.ci/run installs Debian's nginx)")
    port = free_port()
    access_log = workdir / "access.log"
    (workdir / "arouter.conf").write_text(nginx_site(port, gateways, access_log))
    temp = "".join(f"{kind}_temp_path {workdir / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, nginx's workers would run as nobody, who cannot reach the test's directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = (
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n{temp}include {workdir / 'arouter.conf'};\n}}\n"
    )
    (workdir / "nginx.conf").write_text(main)
    cmd = [exe, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", str(workdir / "error.log")]
    log = open(workdir / "nginx.out", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start:\n" + (workdir / "error.log").read_text())
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.05)
        yield base, access_log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def access_records(path: pathlib.Path) -> dict[str, list[dict[str, str]]]:
    """nginx's access log (the `arouter` format) by request id: status and upstream(s)."""
    found: dict[str, list[dict[str, str]]] = {}
    line_re = re.compile(r'" (\d{3}) \d+ upstream=(\S+(?:, \S+)*) upstream_status=(\S+(?:, \S+)*) request_id=(\S+) ')
    for line in path.read_text().splitlines():
        m = line_re.search(line)
        if m:
            found.setdefault(m.group(4), []).append({"status": m.group(1), "upstream": m.group(2)})
    return found


class Gateways:
    """N gateways on one store and one Redis, each on a fixed port of its own, so one can be
    killed and started again where nginx expects it."""

    def __init__(self, workdir: pathlib.Path, replay_url: str, master_key: str, extra: list[str], config: str = ""):
        env, providers = routed_setup(replay_url)
        self.env, self.config = env, providers + config
        self.workdir, self.master_key, self.extra = workdir, master_key, extra
        self.ports: list[int] = []
        self.stacks: list[contextlib.ExitStack] = []
        self.procs: list[subprocess.Popen] = []

    def url(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[n]}"

    def start(self, n: int | None = None) -> int:
        """Starts gateway `n` again on its port, or a new one; its number."""
        if n is None:
            n = len(self.ports)
            self.ports.append(free_port())
            self.stacks.append(contextlib.ExitStack())
            self.procs.append(None)  # type: ignore[arg-type]
        workdir = self.workdir / f"gateway-{n}"
        workdir.mkdir(exist_ok=True)
        stack = contextlib.ExitStack()
        _, proc = stack.enter_context(
            servers.gateway_process(workdir, self.env, self.config, self.master_key, self.extra, port=self.ports[n])
        )
        self.stacks[n], self.procs[n] = stack, proc
        return n

    def kill(self, n: int) -> None:
        """`kill -9` gateway `n`."""
        self.procs[n].send_signal(signal.SIGKILL)
        self.procs[n].wait(timeout=10)
        self.stacks[n].close()

    def log(self, n: int) -> str:
        return (self.workdir / f"gateway-{n}" / "gateway.log").read_text(errors="replace")

    def close(self) -> None:
        for stack in self.stacks:
            stack.close()


class Redis:
    """A redis-server (tests/py/test_shared_limits.py's) that can be stopped and started again
    on its port."""

    def __init__(self, workdir: pathlib.Path):
        self.workdir, self.port = workdir, free_port()
        self.stack = contextlib.ExitStack()

    def start(self) -> None:
        from test_shared_limits import redis_server

        self.stack = contextlib.ExitStack()
        self.stack.enter_context(redis_server(self.workdir, self.port))

    def stop(self) -> None:
        self.stack.close()
