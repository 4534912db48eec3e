// Usage: requests, tokens and cost over time, split by app, model, provider
// or key, with the top apps and models. The gateway has no aggregate
// endpoint, so the rows of `GET /api/v1/transactions` in the chosen range
// are summed here (an inference key's list holds only its own calls).

import { allTransactions, call } from "./api.js";
import { el, field, table, usd, count, fill, guarded, say } from "./ui.js";
import { stackedBars } from "./charts.js";

const HOUR = 3600;
const DAY = 24 * HOUR;
/** Range choices: seconds back from now, and the chart's bucket width. */
const RANGES = {
  "1h": { span: HOUR, bucket: 5 * 60, label: "Last hour" },
  "24h": { span: DAY, bucket: HOUR, label: "Last 24 hours" },
  "7d": { span: 7 * DAY, bucket: 6 * HOUR, label: "Last 7 days" },
  "30d": { span: 30 * DAY, bucket: DAY, label: "Last 30 days" },
};
const SPLITS = {
  app: { label: "App", of: appOf },
  model: { label: "Model", of: (r) => r.model ?? "(none)" },
  provider: { label: "Provider", of: (r) => r.provider ?? "(none)" },
  key: { label: "Key", of: (r) => (r.key_id ? keyNames.get(r.key_id) ?? r.key_id.slice(0, 10) : "master key") },
};
/** Key hash to name, for a management key (others see only their own key). */
const keyNames = new Map();
/** Rows read at most for one view; the view says when a range held more. */
const MAX_ROWS = 20000;
/** Series drawn; the rest are summed as "other". */
const MAX_SERIES = 8;

const state = { range: "24h", split: "app" };

/** The app a call came from: its title, else its referer. */
export function appOf(row) {
  return row.app_title || row.app_referer || "(no app)";
}

export async function showUsage(section, me) {
  if (me.is_management_key) {
    const keys = await guarded(() => call("GET", "/api/v1/keys?include_disabled=true&include_expired=true"));
    for (const key of keys?.data ?? []) keyNames.set(key.hash, key.name);
  }
  const rangeSelect = el(
    "select",
    { id: "usage-range", onchange: (e) => ((state.range = e.target.value), load(section)) },
    Object.entries(RANGES).map(([v, r]) => el("option", { value: v, selected: v === state.range }, r.label)),
  );
  const splitSelect = el(
    "select",
    { id: "usage-split", onchange: (e) => ((state.split = e.target.value), load(section)) },
    Object.entries(SPLITS).map(([v, s]) => el("option", { value: v, selected: v === state.split }, s.label)),
  );
  const refresh = el("button", { type: "button", onclick: () => load(section) }, "Refresh");
  fill(
    section,
    el("h2", { id: "usage-title" }, "Usage"),
    el("div", { class: "toolbar" }, field("Time range", rangeSelect), field("Split by", splitSelect), refresh),
    el("div", { id: "usage-body", class: "usage-body" }),
  );
  await load(section);
}

async function load(section) {
  const body = section.querySelector("#usage-body");
  const range = RANGES[state.range];
  const now = Math.floor(Date.now() / 1000);
  const since = Math.floor((now - range.span) / range.bucket) * range.bucket;
  body.replaceChildren(el("p", {}, "Loading…"));
  const result = await guarded(() => allTransactions({ since }, MAX_ROWS));
  if (!result) return;
  const rows = result.rows.filter((r) => r.type === "usage");
  body.replaceChildren();
  if (result.truncated) say(`Showing the newest ${count(MAX_ROWS)} calls of this range only.`);
  body.append(totals(rows));
  const buckets = bucketStarts(since, now, range.bucket);
  const split = SPLITS[state.split];
  const charts = el("div", { class: "charts" });
  body.append(charts);
  const metrics = [
    ["usage-requests", "Requests", () => 1, count],
    ["usage-tokens", "Tokens", (r) => r.prompt_tokens + r.completion_tokens, count],
    ["usage-cost", "Cost (USD)", (r) => r.cost, usd],
  ];
  for (const [id, title, value, format] of metrics) {
    const series = seriesOf(rows, buckets, range.bucket, split.of, value);
    stackedBars(charts, id, `${title} by ${split.label.toLowerCase()}`, buckets.map(label(range)), series, format);
  }
  body.append(
    el("div", { class: "tops" }, top("Top apps", "top-apps", rows, appOf), top("Top models", "top-models", rows, SPLITS.model.of)),
  );
}

function totals(rows) {
  const sum = (f) => rows.reduce((a, r) => a + f(r), 0);
  const item = (name, value) => el("div", { class: "stat" }, el("dt", {}, name), el("dd", {}, value));
  return el(
    "dl",
    { class: "stats" },
    item("Requests", count(rows.length)),
    item("Tokens", count(sum((r) => r.prompt_tokens + r.completion_tokens))),
    item("Cost", usd(sum((r) => r.cost))),
  );
}

function bucketStarts(since, now, width) {
  const starts = [];
  for (let t = since; t <= now; t += width) starts.push(t);
  return starts;
}

function label(range) {
  const daily = range.bucket >= DAY;
  return (t) =>
    new Date(t * 1000).toLocaleString(undefined, daily ? { month: "short", day: "numeric" } : { weekday: range.span > DAY ? "short" : undefined, hour: "2-digit", minute: "2-digit" });
}

/** One series per group (the biggest first, the rest as "other"). */
function seriesOf(rows, buckets, width, groupOf, valueOf) {
  const first = buckets[0];
  const byGroup = new Map();
  for (const row of rows) {
    const index = Math.floor((Date.parse(row.created_at) / 1000 - first) / width);
    if (index < 0 || index >= buckets.length) continue;
    const group = groupOf(row);
    if (!byGroup.has(group)) byGroup.set(group, new Array(buckets.length).fill(0));
    byGroup.get(group)[index] += valueOf(row);
  }
  const total = (values) => values.reduce((a, b) => a + b, 0);
  const sorted = [...byGroup.entries()].sort((a, b) => total(b[1]) - total(a[1]));
  const series = sorted.slice(0, MAX_SERIES).map(([name, values]) => ({ name, values }));
  const rest = sorted.slice(MAX_SERIES);
  if (rest.length) {
    const values = buckets.map((_, i) => rest.reduce((a, [, v]) => a + v[i], 0));
    series.push({ name: `other (${rest.length})`, values });
  }
  return series;
}

/** A top-10 table of requests, tokens and cost per group. */
function top(caption, id, rows, groupOf) {
  const groups = new Map();
  for (const row of rows) {
    const name = groupOf(row);
    const g = groups.get(name) ?? { requests: 0, tokens: 0, cost: 0 };
    g.requests += 1;
    g.tokens += row.prompt_tokens + row.completion_tokens;
    g.cost += row.cost;
    groups.set(name, g);
  }
  const sorted = [...groups.entries()].sort((a, b) => b[1].cost - a[1].cost || b[1].requests - a[1].requests);
  const body = sorted.slice(0, 10).map(([name, g]) =>
    el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, count(g.requests)), el("td", {}, count(g.tokens)), el("td", {}, usd(g.cost))),
  );
  const wrap = table(caption, ["Name", "Requests", "Tokens", "Cost"], body.length ? body : [el("tr", {}, el("td", { colSpan: 4 }, "No calls in this range."))]);
  wrap.id = id;
  return wrap;
}
