// Starts the real gateway binary (target/debug/arouter, or $AROUTER_BIN) and
// the replay upstream (target/debug/arouter-replay) on free loopback ports,
// the gateway's providers `openai`, `anthropic`, `gemini` and `backup` (an
// OpenAI-compatible server) all played by the replay from the recorded
// transcripts in conformance/transcripts. The JavaScript twin of
// tests/py/conftest.py + servers.py.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MASTER_KEY = 'sk-test-master';

// Anything that could point the gateway (or an SDK in this process) at a
// real provider or change its setup is removed.
const SCRUB =
  /(_API_KEY|_API_BASE|_BASE_URL|_ENDPOINT|_TOKEN|_SECRET)$|^(AROUTER_(?!(BIN|RUNTIME)$)|OPENAI_|ANTHROPIC_|GEMINI_|GOOGLE_|VERTEX|AZURE_|AWS_|HTTP_PROXY|HTTPS_PROXY|ALL_PROXY)/i;
for (const name of Object.keys(process.env)) {
  if (SCRUB.test(name)) delete process.env[name];
}

function binary(name) {
  const override = name === 'arouter' ? process.env.AROUTER_BIN : undefined;
  const file = override || path.join(REPO, 'target', 'debug', name);
  if (!existsSync(file)) {
    throw new Error(`${file} not found: build it with \`cargo build --workspace --bins\``);
  }
  return file;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function until(check, what, log, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${what} did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Replay + gateway. `stack.base` is the gateway's URL; `stop()` ends both. */
export async function startStack() {
  const dir = mkdtempSync(path.join(tmpdir(), 'arouter-js-'));
  const read = (name) => () => (existsSync(path.join(dir, name)) ? readFileSync(path.join(dir, name), 'utf8') : '');
  const addrFile = path.join(dir, 'replay.addr');
  const replayLog = openSync(path.join(dir, 'replay.log'), 'w');
  const replay = spawn(binary('arouter-replay'), ['--addr-file', addrFile, '--chunk-delay-ms', '1'], {
    stdio: ['ignore', replayLog, replayLog],
  });
  const children = [replay];
  try {
    const upstream = 'http://' + (await until(() => read('replay.addr')().trim(), 'arouter-replay', read('replay.log')));
    const port = await freePort();
    const config = path.join(dir, 'arouter.toml');
    writeFileSync(config, `[providers.backup]\nkind = "openai"\nbase_url = "${upstream}/v1"\napi_key_env = "BACKUP_KEY"\n`);
    const env = {
      ...process.env,
      AROUTER_MASTER_KEY: MASTER_KEY,
      OPENAI_API_KEY: 'sk-provider-openai',
      OPENAI_BASE_URL: `${upstream}/v1`,
      ANTHROPIC_API_KEY: 'sk-provider-anthropic',
      ANTHROPIC_BASE_URL: upstream,
      GEMINI_API_KEY: 'sk-provider-gemini',
      GEMINI_BASE_URL: upstream,
      BACKUP_KEY: 'sk-provider-backup',
      NO_PROXY: '*',
    };
    const gatewayLog = openSync(path.join(dir, 'gateway.log'), 'w');
    const args = ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(dir, 'data'), '--config', config];
    const gateway = spawn(binary('arouter'), args, { env, stdio: ['ignore', gatewayLog, gatewayLog] });
    children.push(gateway);
    const base = `http://127.0.0.1:${port}`;
    await until(async () => gateway.exitCode === null && (await fetch(`${base}/healthz`)).ok, 'the gateway', read('gateway.log'));
    return {
      base,
      upstream,
      /** Forgets the faults and the request log of the replay. */
      async reset() {
        const r = await fetch(`${upstream}/_replay/reset`, { method: 'POST' });
        if (!r.ok) throw new Error(`replay reset: ${r.status}`);
      },
      /** Every request the gateway sent upstream since the last reset. */
      async upstreamLog() {
        return (await fetch(`${upstream}/_replay/requests`)).json();
      },
      async stop() {
        await Promise.all(children.map(stop));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.all(children.map(stop));
    throw err;
  }
}
