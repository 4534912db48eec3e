"""The dashboard in a real browser: Debian's Chromium, headless, driven by
Playwright (its own browser download is not used). A person's path through
it: sign in with the master key, create a key and see it listed, call models
with that key through the real `openai` SDK (with `HTTP-Referer` and
`X-Title`), see the app and its cost in the usage view, lower the key's rate
limit and get 429s, disable the key and see it refused; then an inference
key signs in and sees only its own calls. The live view (management keys)
shows requests per second and latency per provider from /metrics.

Screenshots of every view, at 1280x800 and at phone width (390x844), are
saved under $AROUTER_DASHBOARD_SHOTS (default /tmp/arouter-dashboard-shots)."""

from __future__ import annotations

import os
import pathlib
import re
import time

import openai
import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

import sdk_cases
import servers
import transcripts

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = pathlib.Path(os.environ.get("AROUTER_DASHBOARD_SHOTS", "/tmp/arouter-dashboard-shots"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
APP_TITLE = "Dashboard Test App"
APP_REFERER = "https://dash.example/"
TRANSCRIPT = "openai/chat_nonstream_instructions.json"


@pytest.fixture(scope="module")
def dash_gateway(tmp_path_factory, replay_upstream, master_key):
    """A gateway of its own, so the usage view holds this test's calls only."""
    url, _ = replay_upstream
    env = {"OPENAI_API_KEY": "sk-provider-openai", "OPENAI_BASE_URL": f"{url}/v1"}
    with servers.gateway(tmp_path_factory.mktemp("dashboard"), env, None, master_key) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems: list[str] = []
    # A CSP violation or a script error shows up as a console error.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    # Nothing this path does should be refused (401s would mean a request without the key).
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.problems = problems
    yield page
    context.close()


def shoot(page: Page, name: str) -> None:
    """The current view at both sizes."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.wait_for_timeout(150)  # charts redraw on resize
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(base + "/dashboard")
    page.get_by_label("API key").fill(key)
    page.get_by_label("API key").press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def client(base: str, key: str, title: str = APP_TITLE) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base + "/v1",
        api_key=key,
        max_retries=0,
        timeout=30,
        default_headers={"HTTP-Referer": APP_REFERER, "X-Title": title},
    )


def chat(c: openai.OpenAI):
    body = dict(transcripts.load(TRANSCRIPT)["request"]["body"])
    body["model"] = "openai/" + body["model"]
    return c.chat.completions.create(**body)


def wait_rows(base: str, master_key: str, n: int) -> list[dict]:
    """The recorder commits within about 50 ms; the usage view reads committed rows."""
    deadline = time.monotonic() + 10
    while True:
        r = requests.get(base + "/api/v1/transactions", headers={"Authorization": f"Bearer {master_key}"}, timeout=10)
        rows = r.json()["data"]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def usd(value: float) -> str:
    """As the dashboard writes an amount (ui.js `usd`)."""
    return f"${value:.6f}" if 0 < abs(value) < 0.01 else f"${value:.2f}"


def test_the_page_is_served_embedded_with_a_strict_policy(dash_gateway):
    r = requests.get(dash_gateway + "/dashboard", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"):
        assert directive in csp
    assert "unsafe" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    script = requests.get(dash_gateway + "/dashboard/vendor/chart.umd.min.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert script.text.startswith("/*!\n * Chart.js v4.6.1")
    assert requests.get(dash_gateway + "/dashboard/nope.js", timeout=10).status_code == 404


def test_a_person_manages_a_key_and_watches_its_usage(dash_gateway, page, master_key, replay_control):
    base = dash_gateway
    page.goto(base + "/dashboard")
    shoot(page, "1-sign-in")
    sign_in(page, base, master_key)

    # Create a key: its secret is shown once, and it is listed.
    page.get_by_role("button", name="Keys").click()
    form = page.locator("#create-key")
    form.get_by_label("Name").fill("dash-key")
    form.get_by_role("button", name="Create key").click()
    secret_box = page.get_by_label("Secret")
    expect(secret_box).to_be_visible()
    secret = secret_box.input_value()
    assert secret.startswith("sk-")
    row = page.locator("#key-list tr", has_text="dash-key")
    expect(row).to_have_count(1)
    expect(row.locator(".state")).to_have_text("active")
    shoot(page, "2-keys-created")

    # Calls through that key, attributed to an app.
    c = client(base, secret)
    cost = sum(chat(c).usage.cost for _ in range(3))
    assert cost > 0
    assert len(wait_rows(base, master_key, 3)) == 3

    # The app and its cost in the usage view.
    page.get_by_role("button", name="Usage").click()
    top_apps = page.locator("#top-apps")
    app_row = top_apps.locator("tr", has_text=APP_TITLE)
    expect(app_row).to_have_count(1)
    expect(app_row.locator("td").nth(0)).to_have_text("3")
    expect(app_row.locator("td").nth(2)).to_have_text(usd(cost))
    expect(page.locator("#top-models tr", has_text="openai/")).to_have_count(1)
    page.get_by_label("Split by").select_option("key")
    # The chart's text summary names the key and its count.
    expect(page.locator("#usage-requests")).to_have_attribute("aria-label", re.compile(r"by key: dash-key 3$"))
    shoot(page, "3-usage")

    # A lower rate limit: 429s follow.
    page.get_by_role("button", name="Keys").click()
    page.get_by_role("button", name="Edit dash-key").click()
    editor = page.locator("#edit-key")
    editor.get_by_label("Rate limit: requests").fill("2")
    editor.get_by_label("per interval").fill("60s")
    editor.get_by_role("button", name="Save").click()
    expect(row.locator(".rate")).to_have_text("2 / 60s")
    outcomes = []
    for _ in range(4):
        try:
            chat(c)
            outcomes.append(200)
        except openai.RateLimitError:
            outcomes.append(429)
    assert outcomes == [200, 200, 429, 429], outcomes

    # Disabled: refused.
    page.get_by_role("button", name="Disable dash-key").click()
    expect(row.locator(".state")).to_have_text("disabled")
    shoot(page, "4-keys-disabled")
    with pytest.raises(openai.AuthenticationError):
        chat(c)

    # Credits and transactions: the balance, credit added, a generation's detail.
    page.get_by_role("button", name="Credits & transactions").click()
    page.get_by_label("Add credit (USD)").fill("5")
    page.get_by_label("Note").fill("dashboard test")
    page.get_by_role("button", name="Add credit").click()
    expect(page.locator("#stat-credits-added")).to_have_text("$5.00")
    first = page.locator("#transactions tbody tr", has_text=APP_TITLE).first
    expect(first).to_be_visible()
    page.get_by_label("App", exact=True).fill(APP_TITLE)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#transactions tbody tr")).to_have_count(5)  # 3 + 2 before the 429s
    page.locator("#transactions tbody tr").first.get_by_role("button", name="Details").click()
    expect(page.locator("#generation")).to_contain_text("tokens_prompt")
    shoot(page, "5-credits-transactions")
    assert page.problems == [], page.problems


def test_the_live_view_shows_rates_and_latency_per_provider(dash_gateway, page, master_key, replay_control):
    """The live view reads /metrics every 2 s: calls made while it is open
    show up as requests per second, with p50/p99 latency and TTFT."""
    base = dash_gateway
    sign_in(page, base, master_key)
    page.get_by_role("button", name="Live").click()
    row = page.locator("#live-providers tr[data-provider='openai']")
    expect(row).to_have_count(1)
    expect(page.locator("#live-note")).to_contain_text("Over the last", timeout=10_000)
    c = client(base, master_key, "Live App")
    deadline = time.monotonic() + 20
    # Calls until a reading has seen some: every figure of the row is filled.
    while time.monotonic() < deadline:
        chat(c)
        if row.locator(".rate").inner_text() not in ("–", "0.00"):
            break
        page.wait_for_timeout(200)
    expect(row.locator(".rate")).not_to_have_text(re.compile(r"^(–|0\.00)$"))
    for cell in ("errors", "p50", "p99", "ttft50", "ttft99"):
        expect(row.locator(f".{cell}")).not_to_have_text("–")
    expect(row.locator(".errors")).to_have_text("0.0%")
    # The gauges: at least the page's own reading is in flight.
    expect(page.locator("#live-in-flight")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(page.locator("#live-connections")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(page.locator("#live-streams")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#live-rate")).to_have_attribute("aria-label", re.compile(r"openai \d"))
    shoot(page, "8-live")
    assert page.problems == [], page.problems


def test_an_inference_key_sees_only_its_own_usage(dash_gateway, page, master_key, replay_control):
    base = dash_gateway
    mine = sdk_cases.create_key(base, master_key, name="own-view", limit=2.5)["key"]
    before = len(wait_rows(base, master_key, 1))
    chat(client(base, mine, "Own App"))
    wait_rows(base, master_key, before + 1)
    sign_in(page, base, mine)
    expect(page.locator("#who-name")).to_contain_text("inference key")
    # /metrics is for management keys: no live view is offered.
    expect(page.get_by_role("button", name="Live")).to_be_hidden()
    expect(page.locator("#top-apps tr", has_text="Own App")).to_have_count(1)
    # Calls of other keys (the other test's app, if it ran) are not listed.
    expect(page.locator("#top-apps tr", has_text=APP_TITLE)).to_have_count(0)
    shoot(page, "6-inference-usage")
    page.get_by_role("button", name="Keys").click()
    expect(page.get_by_role("heading", name="Your key")).to_be_visible()
    expect(page.locator("#view-keys .stats")).to_contain_text("$2.50")
    page.get_by_role("button", name="Credits & transactions").click()
    expect(page.locator("#transactions tbody tr")).to_have_count(1)
    expect(page.get_by_label("Add credit (USD)")).to_have_count(0)
    shoot(page, "7-inference-transactions")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.problems == [], page.problems
