// Small DOM helpers: elements are built with properties and text nodes,
// never from HTML strings, so no value from the API is ever parsed as markup.

/** `el("button", {type: "button", onclick}, "Save")`. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name in node && !name.includes("-")) node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A labelled form field: the label's `for` names the input. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const help = hint ? el("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (help) input.setAttribute("aria-describedby", help.id);
  return el("div", { class: "field" }, el("label", { htmlFor: id }, label), input, help);
}

/** A table in a scrolling box, so wide tables never widen the page. */
export function table(caption, headers, rows) {
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("caption", {}, caption),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows),
    ),
  );
}

export function usd(value) {
  if (value === null || value === undefined) return "–";
  const digits = Math.abs(value) < 0.01 && value !== 0 ? 6 : 2;
  return `$${Number(value).toFixed(digits)}`;
}

export function count(value) {
  return Number(value ?? 0).toLocaleString("en-US");
}

export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

/** Says something to the user, and to screen readers through the live region. */
export function say(message, kind = "info") {
  const status = document.getElementById("status");
  status.textContent = message;
  status.dataset.kind = kind;
}

/** Runs `work`, reporting its error instead of losing it. */
export async function guarded(work) {
  try {
    return await work();
  } catch (err) {
    say(err.message || String(err), "error");
    return undefined;
  }
}

/** Replaces the content of a view section. */
export function fill(section, ...children) {
  section.replaceChildren(...children.flat().filter(Boolean));
}
