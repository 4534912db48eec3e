// The live view: requests per second, error rate, and p50/p99 latency and
// time to first token per provider, from the gateway's Prometheus metrics
// (`GET /metrics`, which only management keys may read). The metrics are
// counters since the gateway started, so every figure is the difference
// between two readings EVERY_MS apart; the first reading shows the
// quantiles since start and no rate yet.

import { callText } from "./api.js";
import { lines } from "./charts.js";
import { el, fill, guarded, table } from "./ui.js";

const EVERY_MS = 2000;
/** Readings kept for the chart (two minutes). */
const KEEP = 60;

const live = { timer: null, previous: null, history: [] };

/** `name{a="x",b="y"} value` lines into `[{name, labels, value}]`. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, name, value] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[name] = value.replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** Per provider: requests, 5xx answers, and the two histograms' buckets. */
function reading(samples) {
  const providers = new Map();
  const gauges = {};
  const GAUGES = ["arouter_in_flight_requests", "arouter_in_flight_streams", "arouter_connections"];
  const of = (name) => {
    if (!providers.has(name)) providers.set(name, { requests: 0, errors: 0, latency: new Map(), ttft: new Map() });
    return providers.get(name);
  };
  for (const s of samples) {
    if (GAUGES.includes(s.name)) gauges[s.name] = s.value;
    const provider = s.labels.provider;
    if (!provider || provider === "none") continue;
    if (s.name === "arouter_requests_total") {
      const p = of(provider);
      p.requests += s.value;
      if (Number(s.labels.status) >= 500) p.errors += s.value;
    } else if (s.name === "arouter_request_duration_seconds_bucket") {
      of(provider).latency.set(s.labels.le, s.value);
    } else if (s.name === "arouter_time_to_first_token_seconds_bucket") {
      of(provider).ttft.set(s.labels.le, s.value);
    }
  }
  return { at: performance.now(), providers, gauges };
}

/** Bucket counts of `now` less those of `before` (cumulative, by `le`). */
function since(now, before) {
  const out = new Map();
  for (const [le, count] of now) out.set(le, count - (before?.get(le) ?? 0));
  return out;
}

/** The `q` quantile of cumulative buckets, interpolated as Prometheus' `histogram_quantile` does. */
export function quantile(q, buckets) {
  const sorted = [...buckets].map(([le, n]) => [le === "+Inf" ? Infinity : Number(le), n]).sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let [lower, below] = [0, 0];
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Infinity) return lower;
      return lower + ((bound - lower) * (rank - below)) / Math.max(count - below, 1e-9);
    }
    [lower, below] = [bound, count];
  }
  return lower;
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

/** One row per provider over the interval since the previous reading. */
function rows(now, before) {
  const elapsed = before ? (now.at - before.at) / 1000 : null;
  return [...now.providers].sort(([a], [b]) => a.localeCompare(b)).map(([name, p]) => {
    const old = before?.providers.get(name);
    const requests = p.requests - (old?.requests ?? 0);
    const errors = p.errors - (old?.errors ?? 0);
    const latency = since(p.latency, old?.latency);
    const ttft = since(p.ttft, old?.ttft);
    return {
      name,
      rate: elapsed ? requests / elapsed : null,
      errorRate: requests > 0 ? errors / requests : null,
      p50: quantile(0.5, latency),
      p99: quantile(0.99, latency),
      ttft50: quantile(0.5, ttft),
      ttft99: quantile(0.99, ttft),
    };
  });
}

function render(section, current, before) {
  const list = rows(current, before);
  if (before) {
    live.history.push({ at: new Date(), rates: new Map(list.map((r) => [r.name, r.rate])) });
    live.history.splice(0, Math.max(0, live.history.length - KEEP));
  }
  const note = before
    ? `Over the last ${((current.at - before.at) / 1000).toFixed(1)} s; refreshed every ${EVERY_MS / 1000} s.`
    : "Since the gateway started; rates come with the next reading.";
  const body = list.map((r) =>
    el(
      "tr",
      { dataset: { provider: r.name } },
      el("th", { scope: "row" }, r.name),
      el("td", { class: "rate" }, r.rate === null ? "–" : r.rate.toFixed(2)),
      el("td", { class: "errors" }, r.errorRate === null ? "–" : `${(r.errorRate * 100).toFixed(1)}%`),
      el("td", { class: "p50" }, seconds(r.p50)),
      el("td", { class: "p99" }, seconds(r.p99)),
      el("td", { class: "ttft50" }, seconds(r.ttft50)),
      el("td", { class: "ttft99" }, seconds(r.ttft99)),
    ),
  );
  const providers = list.map((r) => r.name);
  const stat = (id, name, value) =>
    el("div", { class: "stat" }, el("dt", {}, name), el("dd", { id }, value === undefined ? "–" : String(value)));
  const g = current.gauges;
  const chartBox = el("div", { class: "charts" });
  fill(
    section,
    el("h2", { id: "live-title" }, "Live"),
    el("p", { id: "live-note", class: "hint" }, note),
    el(
      "dl",
      { class: "stats" },
      // The reading's own request is one of those in flight.
      stat("live-in-flight", "Requests in flight", g.arouter_in_flight_requests),
      stat("live-streams", "Streams in flight", g.arouter_in_flight_streams),
      stat("live-connections", "Client connections", g.arouter_connections),
    ),
    el(
      "div",
      { id: "live-providers" },
      table(
        "Per provider",
        ["Provider", "Requests/s", "Errors (5xx)", "p50 latency", "p99 latency", "p50 TTFT", "p99 TTFT"],
        body,
      ),
    ),
    chartBox,
  );
  lines(
    chartBox,
    "live-rate",
    "Requests per second",
    live.history.map((h) => h.at.toLocaleTimeString()),
    providers.map((name) => ({ name, values: live.history.map((h) => h.rates.get(name) ?? 0) })),
    (v) => Number(v).toFixed(2),
  );
}

async function tick(section) {
  if (section.hidden) {
    stop();
    return;
  }
  const text = await guarded(() => callText("GET", "/metrics"));
  if (text === undefined || section.hidden) return;
  const current = reading(parseMetrics(text));
  render(section, current, live.previous);
  live.previous = current;
}

function stop() {
  clearInterval(live.timer);
  live.timer = null;
}

export async function showLive(section) {
  stop();
  live.previous = null;
  live.history = [];
  await tick(section);
  live.timer = setInterval(() => tick(section), EVERY_MS);
}
