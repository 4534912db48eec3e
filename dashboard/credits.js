// Credits and transactions: the balance and adding credit (management keys),
// the transactions list, filtered and paged by the API's cursor, and a
// generation's record (`GET /api/v1/generation?id=`) on request.

import { call, transactionsPage } from "./api.js";
import { el, field, table, usd, count, when, fill, guarded, say } from "./ui.js";

const PAGE = 25;
const FILTERS = ["model", "app", "status", "key_id", "since", "until"];

export async function showCredits(section, me) {
  fill(
    section,
    el("h2", { id: "credits-title" }, "Credits & transactions"),
    el("div", { id: "balance" }),
    me.is_management_key ? addCreditForm(section, me) : null,
    filterForm(section, me),
    el("div", { id: "transactions" }),
    el("div", { id: "generation", class: "detail", tabIndex: -1 }),
  );
  await Promise.all([balance(section, me), page(section, [])]);
}

async function balance(section, me) {
  const box = section.querySelector("#balance");
  const item = (name, value) => el("div", { class: "stat" }, el("dt", {}, name), el("dd", { id: `stat-${name.toLowerCase().replace(/\W+/g, "-")}` }, value));
  if (!me.is_management_key) {
    box.replaceChildren(
      el("dl", { class: "stats" }, item("Your usage", usd(me.usage)), item("Your limit", me.limit === null ? "none" : usd(me.limit)), item("Remaining", me.limit_remaining === null ? "–" : usd(me.limit_remaining))),
    );
    return;
  }
  const answer = await guarded(() => call("GET", "/api/v1/balance"));
  if (!answer) return;
  const d = answer.data;
  box.replaceChildren(
    el("dl", { class: "stats" }, item("Balance", usd(d.balance)), item("Credits added", usd(d.total_credits)), item("Usage", usd(d.total_usage))),
  );
}

function addCreditForm(section, me) {
  const amount = el("input", { id: "credit-amount", type: "number", min: "0.000001", step: "any", required: true });
  const note = el("input", { id: "credit-note", maxLength: 256 });
  const form = el(
    "form",
    { id: "add-credit", class: "toolbar" },
    field("Add credit (USD)", amount),
    field("Note", note),
    el("button", { type: "submit" }, "Add credit"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { amount: Number(amount.value), ...(note.value.trim() ? { note: note.value.trim() } : {}) };
    if (await guarded(() => call("POST", "/api/v1/balance", body))) {
      form.reset();
      say(`Added ${usd(body.amount)}.`);
      await showCredits(section, me);
    }
  });
  return form;
}

function filterForm(section, me) {
  const input = (name, props = {}) => el("input", { id: `filter-${name}`, name, ...props });
  const status = el(
    "select",
    { id: "filter-status", name: "status" },
    ["", "complete", "estimated", "failed", "cancelled"].map((v) => el("option", { value: v }, v || "any")),
  );
  const form = el(
    "form",
    { id: "transaction-filters", class: "toolbar" },
    field("Model", input("model", { placeholder: "openai/gpt-4o-mini" })),
    field("App", input("app", { placeholder: "referer or title" })),
    field("Status", status),
    me.is_management_key ? field("Key hash", input("key_id", { pattern: "[0-9a-fA-F]{64}" })) : null,
    field("Since", input("since", { type: "datetime-local" })),
    field("Until", input("until", { type: "datetime-local" })),
    el("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    page(section, []);
  });
  return form;
}

function filters(section) {
  const out = {};
  for (const name of FILTERS) {
    const input = section.querySelector(`#filter-${name}`);
    const value = input?.value.trim();
    if (!value) continue;
    // datetime-local is the user's local time; the API takes RFC 3339.
    out[name] = input.type === "datetime-local" ? new Date(value).toISOString().replace(/\.\d+Z$/, "Z") : value;
  }
  return out;
}

/** Shows one page; `trail` holds the cursors of the pages before it. */
async function page(section, trail) {
  const cursor = trail.at(-1) ?? null;
  const answer = await guarded(() => transactionsPage(filters(section), cursor, PAGE));
  if (!answer) return;
  const rows = answer.data.map((row) => transactionRow(section, row));
  const empty = [el("tr", {}, el("td", { colSpan: 8 }, "No transactions."))];
  const previous = el("button", { type: "button", disabled: trail.length === 0, onclick: () => page(section, trail.slice(0, -1)) }, "Previous page");
  const next = el("button", { type: "button", disabled: !answer.next_cursor, onclick: () => page(section, [...trail, answer.next_cursor]) }, "Next page");
  section
    .querySelector("#transactions")
    .replaceChildren(
      table("Transactions, newest first", ["Time", "Model", "App", "Tokens in / out", "Cost", "Status", "Latency", "Detail"], rows.length ? rows : empty),
      el("div", { class: "pager" }, previous, el("span", {}, `Page ${trail.length + 1}`), next),
    );
}

function transactionRow(section, row) {
  const credit = row.type === "credit";
  const app = row.app_title || row.app_referer || "";
  return el(
    "tr",
    { dataset: { id: row.id } },
    el("td", {}, when(row.created_at)),
    el("td", {}, credit ? `credit${row.note ? `: ${row.note}` : ""}` : row.model ?? "–"),
    el("td", { class: "app" }, app),
    el("td", {}, credit ? "–" : `${count(row.prompt_tokens)} / ${count(row.completion_tokens)}`),
    el("td", { class: "cost" }, credit ? `+${usd(row.cost)}` : usd(row.cost)),
    el("td", {}, row.status),
    el("td", {}, row.latency_ms === null ? "–" : `${count(row.latency_ms)} ms`),
    el("td", {}, credit ? "" : el("button", { type: "button", "aria-label": `Details of ${row.id}`, onclick: () => generation(section, row.id) }, "Details")),
  );
}

/** A generation's record, as OpenRouter's SDKs read it. */
async function generation(section, id) {
  const answer = await guarded(() => call("GET", `/api/v1/generation?id=${encodeURIComponent(id)}`));
  if (!answer) return;
  const box = section.querySelector("#generation");
  const entries = Object.entries(answer.data).filter(([, v]) => v !== null && typeof v !== "object");
  box.replaceChildren(
    el("h3", {}, "Generation ", el("code", {}, id)),
    el("dl", { class: "pairs" }, entries.map(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])),
    el("button", { type: "button", onclick: () => box.replaceChildren() }, "Close"),
  );
  box.focus();
  box.scrollIntoView({ block: "nearest" });
}
