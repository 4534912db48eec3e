// The management API, as every SDK calls it: the key goes in the
// Authorization header (never a cookie), so no other site can make the
// browser call it with the user's credentials, and there is no CSRF to guard.

const STORE = "arouter.key";

export function savedKey() {
  return sessionStorage.getItem(STORE);
}

export function saveKey(key) {
  sessionStorage.setItem(STORE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORE);
}

/** An error answer, with the message the gateway gave. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls `method path` with the saved key; the parsed JSON answer. */
export async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${savedKey() ?? ""}` };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const message = json?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return json;
}

/** Calls `GET path` with the saved key; the answer's text (`/metrics`). */
export async function callText(method, path) {
  const headers = { Authorization: `Bearer ${savedKey() ?? ""}` };
  const response = await fetch(path, { method, headers, cache: "no-store", credentials: "omit" });
  const text = await response.text();
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      message = JSON.parse(text)?.error?.message ?? message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, message);
  }
  return text;
}

/** `GET /api/v1/transactions` with `filters`; one page. */
export function transactionsPage(filters, cursor, limit) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(filters)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  if (cursor) query.set("cursor", cursor);
  query.set("limit", String(limit));
  return call("GET", `/api/v1/transactions?${query}`);
}

/**
 * Every transaction matching `filters`, newest first, up to `maxRows`
 * (there is no aggregate endpoint: the usage view sums pages itself).
 * `truncated` says the range held more.
 */
export async function allTransactions(filters, maxRows) {
  const rows = [];
  let cursor = null;
  do {
    const page = await transactionsPage(filters, cursor, Math.min(1000, maxRows - rows.length));
    rows.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && rows.length < maxRows);
  return { rows, truncated: Boolean(cursor) };
}
