// The dashboard: sign-in, navigation between its views.
// Who signed in decides what is shown: `GET /api/v1/key` says whether the
// key is a management key (or the master key); the gateway enforces the
// same rule on every call, this only avoids offering what would be refused.

import { call, savedKey, saveKey, forgetKey } from "./api.js";
import { say, guarded } from "./ui.js";
import { showUsage } from "./usage.js";
import { showKeys } from "./keys.js";
import { showCredits } from "./credits.js";
import { showLive } from "./live.js";

const VIEWS = { usage: showUsage, keys: showKeys, credits: showCredits, live: showLive };
const session = { me: null };

const $ = (id) => document.getElementById(id);

function section(name) {
  return $(`view-${name}`);
}

function showOnly(name) {
  for (const id of ["signin", ...Object.keys(VIEWS)]) section(id).hidden = id !== name;
  for (const button of $("nav").querySelectorAll("button")) {
    if (button.dataset.view === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
}

async function route() {
  if (!session.me) {
    showOnly("signin");
    return;
  }
  const asked = location.hash.slice(1);
  // The live view reads `/metrics`, which only management keys may.
  const allowed = asked in VIEWS && (asked !== "live" || session.me.is_management_key);
  const name = allowed ? asked : "usage";
  showOnly(name);
  say("");
  await guarded(() => VIEWS[name](section(name), session.me));
}

/** Asks the gateway who the saved key is; false (and forgets it) if refused. */
async function identify() {
  const me = await guarded(() => call("GET", "/api/v1/key"));
  if (!me) {
    forgetKey();
    return false;
  }
  session.me = me.data;
  $("nav").hidden = false;
  $("nav-live").hidden = !session.me.is_management_key;
  $("who").hidden = false;
  const kind = session.me.is_management_key ? "management" : "inference key";
  $("who-name").textContent = `${session.me.label} (${kind})`;
  return true;
}

function signOut() {
  forgetKey();
  session.me = null;
  $("nav").hidden = true;
  $("who").hidden = true;
  $("signin-key").value = "";
  say("Signed out.");
  showOnly("signin");
  $("signin-key").focus();
}

async function signIn(event) {
  event.preventDefault();
  saveKey($("signin-key").value.trim());
  $("signin-key").value = "";
  if (await identify()) {
    await route();
    $("main").focus();
  }
}

function start() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  for (const button of $("nav").querySelectorAll("button")) {
    button.addEventListener("click", () => {
      if (location.hash === `#${button.dataset.view}`) route();
      else location.hash = button.dataset.view;
    });
  }
  window.addEventListener("hashchange", route);
  if (savedKey()) identify().then((ok) => (ok ? route() : showOnly("signin")));
  else showOnly("signin");
}

start();
