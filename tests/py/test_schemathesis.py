"""The spec is a contract the server is held to: schemathesis (pinned in requirements.txt) runs
every check over spec/openapi.yaml against the live gateway, whose three providers are played by
the replay upstream. Its configuration, with the reason for every narrowed check, is
tests/py/schemathesis.toml (seeded, fixed number of cases).

Skip it in a quick local run with `-m "not schemathesis"`.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

import contract

CONFIG = pathlib.Path(__file__).with_name("schemathesis.toml")
TIME_LIMIT_S = 600


# The deployment under test: the three providers on the replay upstream (as `routed_gateway`),
# plus a default model, since the spec lets a chat request leave `model` out when one is set.
PROVIDER_ENV = {
    "OPENAI_API_KEY": "sk-provider-openai",
    "ANTHROPIC_API_KEY": "sk-provider-anthropic",
    "GEMINI_API_KEY": "sk-provider-gemini",
    "AROUTER_DEFAULT_MODEL": "openai/gpt-4o-mini",
}


@pytest.fixture(scope="module")
def spec_gateway(tmp_path_factory, replay_upstream, master_key):
    import servers

    url, _ = replay_upstream
    env = {
        **PROVIDER_ENV,
        "OPENAI_BASE_URL": f"{url}/v1",
        "ANTHROPIC_BASE_URL": url,
        "GEMINI_BASE_URL": url,
    }
    with servers.gateway(tmp_path_factory.mktemp("schemathesis-gw"), env, None, master_key) as base:
        yield base


@pytest.mark.schemathesis
def test_the_server_keeps_the_spec(spec_gateway, master_key, tmp_path):
    exe = pathlib.Path(sys.executable).with_name("schemathesis")
    cmd = [
        str(exe),
        "--config-file",
        str(CONFIG),
        "run",
        str(contract.SPEC_PATH),
        "--url",
        spec_gateway,
        "--header",
        f"Authorization: Bearer {master_key}",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIME_LIMIT_S, check=False
    )
    out = proc.stdout + proc.stderr
    log = tmp_path / "schemathesis.out"
    log.write_text(out)
    summary = re.search(r"(\d+) generated, .*", out)
    print(summary.group(0) if summary else "no schemathesis summary line")
    if proc.returncode != 0:
        # From its FAILURES section on: each failure names the operation, the check, the response
        # and a curl command that reproduces it. Long generated bodies are cut in the middle.
        start = out.find("FAILURES")
        report = out[start - 40 :] if start >= 0 else out
        if len(report) > 30000:
            report = report[:15000] + "\n[... cut; the whole output is in the file named below ...]\n" + report[-15000:]
        pytest.fail(
            f"schemathesis found the server and spec/openapi.yaml disagreeing (exit {proc.returncode}).\n"
            f"command: {' '.join(cmd)}\nwhole output: {log}\n\n{report}",
            pytrace=False,
        )
