// Keys: a management key creates, lists, edits (name, credit limit and its
// reset, rate limit, allowed models), disables and deletes keys through
// `/api/v1/keys`; any other key sees its own record (`GET /api/v1/key`).

import { call } from "./api.js";
import { el, field, table, usd, when, fill, guarded, say } from "./ui.js";

export async function showKeys(section, me) {
  if (!me.is_management_key) return showOwnKey(section);
  fill(
    section,
    el("h2", { id: "keys-title" }, "Keys"),
    createForm(section),
    el("div", { id: "new-secret", class: "secret-box", hidden: true }),
    el("div", { id: "key-editor" }),
    el("div", { id: "key-list" }),
  );
  await list(section);
}

/** The form fields every key has, filled from `key` (for editing) or empty. */
function settings(prefix, key = {}) {
  const rate = key.rate_limit ?? {};
  const input = (name, props) => el("input", { id: `${prefix}-${name}`, name, ...props });
  const reset = el(
    "select",
    { id: `${prefix}-limit-reset`, name: "limit_reset" },
    ["", "daily", "weekly", "monthly"].map((v) => el("option", { value: v, selected: (key.limit_reset ?? "") === v }, v || "never")),
  );
  return [
    field("Name", input("name", { required: true, value: key.name ?? "", maxLength: 256 })),
    field("Credit limit (USD)", input("limit", { type: "number", min: "0", step: "any", value: key.limit ?? "" }), "Empty: no limit."),
    field("Limit resets", reset),
    field("Rate limit: requests", input("rate-requests", { type: "number", min: "1", step: "1", value: rate.requests ?? "" }), "Empty: the gateway's default."),
    field("per interval", input("rate-interval", { value: rate.interval ?? "", placeholder: "60s", pattern: "[0-9]+[smhd]" }), "Empty: 60s. Or 5m, 1h, 1d"),
    field("Allowed models", input("allowed", { value: (key.allowed_models ?? []).join(", "), spellcheck: false }), "Comma-separated globs such as openai/*; empty: every model."),
  ];
}

/** The JSON body of a form built by `settings`. */
function body(form, prefix) {
  const value = (name) => form.querySelector(`#${prefix}-${name}`).value.trim();
  const limit = value("limit");
  const requests = value("rate-requests");
  const allowed = value("allowed");
  return {
    name: value("name"),
    limit: limit === "" ? null : Number(limit),
    limit_reset: value("limit-reset") || null,
    rate_limit: requests === "" ? null : { requests: Number(requests), interval: value("rate-interval") || "60s" },
    allowed_models: allowed === "" ? null : allowed.split(",").map((s) => s.trim()).filter(Boolean),
  };
}

function createForm(section) {
  const management = el("input", { type: "checkbox", id: "new-management", name: "management" });
  const form = el(
    "form",
    { id: "create-key", class: "grid-form" },
    el("h3", {}, "Create a key"),
    settings("new"),
    el("div", { class: "field check" }, management, el("label", { htmlFor: "new-management" }, "Management key (manages keys, calls no model; the master key only)")),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Create key")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const made = await guarded(() => call("POST", "/api/v1/keys", { ...body(form, "new"), management: management.checked }));
    if (!made) return;
    form.reset();
    showSecret(section, made);
    await list(section);
  });
  return form;
}

/** The new key's secret, shown this once, with a copy button. */
function showSecret(section, made) {
  const box = section.querySelector("#new-secret");
  const secret = el("input", { id: "new-secret-value", readOnly: true, value: made.key, spellcheck: false });
  const copy = el("button", { type: "button", id: "copy-secret" }, "Copy");
  copy.addEventListener("click", async () => {
    secret.select();
    try {
      await navigator.clipboard.writeText(made.key);
      say("Copied to the clipboard.");
    } catch {
      say("Copy it from the field: the clipboard is not available here.", "error");
    }
  });
  box.replaceChildren(
    el("h3", {}, `Key “${made.data.name}” created`),
    el("p", {}, "Copy its secret now: it is not shown again."),
    el("div", { class: "inline" }, el("label", { htmlFor: "new-secret-value", class: "visually-hidden" }, "Secret"), secret, copy),
    el("button", { type: "button", onclick: () => (box.hidden = true) }, "Done"),
  );
  box.hidden = false;
  secret.focus();
  secret.select();
}

async function list(section) {
  const answer = await guarded(() => call("GET", "/api/v1/keys?include_disabled=true&include_expired=true"));
  if (!answer) return;
  const rows = answer.data.map((key) => keyRow(section, key));
  const empty = [el("tr", {}, el("td", { colSpan: 7 }, "No keys yet."))];
  section
    .querySelector("#key-list")
    .replaceChildren(table("Keys", ["Name", "Key", "Usage / limit", "Rate limit", "Models", "State", "Actions"], rows.length ? rows : empty));
}

function keyRow(section, key) {
  const rate = key.rate_limit ? `${key.rate_limit.requests} / ${key.rate_limit.interval}` : "default";
  const limit = key.limit === null ? "no limit" : `${usd(key.limit)}${key.limit_reset ? ` ${key.limit_reset}` : ""}`;
  const state = key.disabled ? "disabled" : key.management ? "management" : "active";
  const act = (label, work) =>
    el("button", { type: "button", "aria-label": `${label} ${key.name}`, onclick: work }, label);
  const patch = async (change, done) => {
    if (await guarded(() => call("PATCH", `/api/v1/keys/${key.hash}`, change))) {
      say(done);
      await list(section);
    }
  };
  return el(
    "tr",
    { dataset: { hash: key.hash } },
    el("th", { scope: "row" }, key.name),
    el("td", {}, el("code", {}, key.label)),
    el("td", {}, `${usd(key.usage)} / ${limit}`),
    el("td", { class: "rate" }, rate),
    el("td", {}, (key.allowed_models ?? ["all"]).join(", ")),
    el("td", { class: "state" }, state),
    el(
      "td",
      {},
      el(
        "div",
        { class: "row-actions" },
        act("Edit", () => edit(section, key)),
      key.disabled
        ? act("Enable", () => patch({ disabled: false }, `Key “${key.name}” enabled.`))
        : act("Disable", () => patch({ disabled: true }, `Key “${key.name}” disabled.`)),
      act("Delete", async () => {
        if (!window.confirm(`Delete the key “${key.name}”? Its calls stay in the transactions.`)) return;
        if (await guarded(() => call("DELETE", `/api/v1/keys/${key.hash}`))) {
          say(`Key “${key.name}” deleted.`);
          await list(section);
        }
      }),
      ),
    ),
  );
}

/** The edit form of one key, above the list. */
function edit(section, key) {
  const box = section.querySelector("#key-editor");
  const form = el(
    "form",
    { id: "edit-key", class: "grid-form" },
    el("h3", {}, `Edit “${key.name}”`),
    settings("edit", key),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "submit" }, "Save"),
      el("button", { type: "button", onclick: () => box.replaceChildren() }, "Cancel"),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await guarded(() => call("PATCH", `/api/v1/keys/${key.hash}`, body(form, "edit")))) {
      box.replaceChildren();
      say(`Key “${key.name}” saved.`);
      await list(section);
    }
  });
  box.replaceChildren(form);
  form.querySelector("#edit-name").focus();
}

/** An inference key's own record: its usage, limits and rate limit. */
async function showOwnKey(section) {
  const answer = await guarded(() => call("GET", "/api/v1/key"));
  if (!answer) return;
  const k = answer.data;
  const item = (name, value) => el("div", { class: "stat" }, el("dt", {}, name), el("dd", {}, value));
  const rate = k.rate_limit.requests < 0 ? "none" : `${k.rate_limit.requests} per ${k.rate_limit.interval}`;
  fill(
    section,
    el("h2", { id: "keys-title" }, "Your key"),
    el(
      "dl",
      { class: "stats" },
      item("Key", k.label),
      item("Usage", usd(k.usage)),
      item("Today", usd(k.usage_daily)),
      item("This month", usd(k.usage_monthly)),
      item("Credit limit", k.limit === null ? "none" : `${usd(k.limit)}${k.limit_reset ? ` (${k.limit_reset})` : ""}`),
      item("Remaining", k.limit_remaining === null ? "–" : usd(k.limit_remaining)),
      item("Rate limit", rate),
      item("Models", (k.allowed_models ?? ["all"]).join(", ")),
      item("Expires", when(k.expires_at)),
    ),
    el("p", {}, "Only a management key can change a key's settings."),
  );
}
