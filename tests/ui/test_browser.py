"""The dashboard in a real browser: headless Chromium from the distribution, via Playwright."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from hubproxy.api.state import WRITER
from hubproxy.store import accounts
from hubproxy.store.ops import apply
from tests.ui.conftest import Dash, expect, save_doc_screenshot

pytestmark = pytest.mark.browser

XSS = "<script>alert(1)</script>"
MESSAGE = {"role": "user", "content": "x"}

DRAWN = """(canvas) => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) inked++;
  return inked;
}"""


def nav(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Pages").get_by_role("link", name=name, exact=True)


async def ready(page: Any, value: str | None = None) -> None:
    """Wait (bounded) for the page's script to say it drew what it fetched."""
    selector = "body[data-ready]" if value is None else f'body[data-ready="{value}"]'
    await page.wait_for_selector(selector, state="attached")


async def test_overview_draws_charts(dash: Dash, page: Any) -> None:
    await dash.chat(3)
    await dash.sign_in(page, dash.alice)
    await ready(page)
    canvases = page.locator("#charts canvas")
    assert await canvases.count() == 5
    for i in range(5):
        assert await canvases.nth(i).evaluate(DRAWN) > 100, f"chart {i} is blank"
    captions = await page.locator("#charts figcaption .title").all_inner_texts()
    assert captions == [
        "Credits", "Requests", "Tokens", "Median duration (ms)", "Median TTFB (ms)"
    ]  # fmt: skip
    requests = page.locator("#chart-requests").locator("xpath=..").locator(".value")
    assert await requests.inner_text() == "3"
    assert await page.locator("#success").inner_text() == "100%"
    assert await page.locator("#balance").inner_text() == "24.999949"  # 25 − 3 × 17 µcredits
    assert await page.locator("#models tbody td").first.inner_text() == "demo/echo"
    assert page.console_errors == []
    save_doc_screenshot(await dash.shot(page, "overview"))
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(100)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the overview scrolls sideways on a phone"
    await dash.shot(page, "overview-390")


async def test_calls_pages_filters_detail_and_renders_fast(dash: Dash, page: Any) -> None:
    await dash.chat(53)
    async with dash.hub.openai() as client:
        with pytest.raises(Exception):  # noqa: B017  (any refusal: the call is still logged)
            await client.chat.completions.create(
                model="up/e500", messages=[{"role": "user", "content": "x"}]
            )
    await dash.hub.app[WRITER].flush()
    await dash.sign_in(page, dash.alice)
    await nav(page, "Calls").click()
    await ready(page, "1")
    rows = page.locator("#calls tbody tr")
    assert await rows.count() == 50
    await page.get_by_role("button", name="Older").click()
    await ready(page, "2")
    assert await rows.count() == 4
    assert await page.locator("#page-no").inner_text() == "Page 2"
    assert await page.get_by_role("button", name="Older").is_disabled()
    await page.get_by_role("button", name="Newer").click()
    await ready(page, "1")
    assert await rows.count() == 50
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_count(1)
    assert await rows.first.locator("td").nth(1).inner_text() == "up/e500"
    await rows.first.get_by_role("button", name="Details").click()
    detail = page.locator("#detail")
    await detail.wait_for(state="visible")
    assert "failed" in await detail.inner_text()
    await dash.shot(page, "call-detail")
    await page.keyboard.press("Escape")
    href = await page.get_by_role("link", name="Export CSV").get_attribute("href")
    assert href == "/api/user/calls?status=failed&format=csv"
    csv = await page.request.get(dash.hub.url + href)
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = (await csv.text()).strip().splitlines()
    assert len(lines) == 2 and "up/e500" in lines[1]
    elapsed = await page.evaluate(
        """async () => {
          const { render } = await import('/ui/static/js/calls.js');
          const row = (i) => ({ id: 'c' + i, request_id: 'r' + i, model: 'demo/echo',
            created_at: new Date(Date.now() - i * 1000).toISOString(), status: 'success',
            total_tokens: 1234 + i, credits: 1500 + i, duration_ms: 12, type: 'chat' });
          const rows = Array.from({ length: 1000 }, (_, i) => row(i));
          const t0 = performance.now();
          render(rows);
          document.body.getBoundingClientRect();  // layout included
          return performance.now() - t0;
        }"""
    )
    assert await rows.count() == 1000
    assert elapsed < 300, f"1,000 calls took {elapsed:.0f} ms to render"
    await dash.shot(page, "calls")


async def test_keys_create_copy_and_revoke(dash: Dash, page: Any) -> None:
    await dash.sign_in(page, dash.alice)
    await nav(page, "Keys").click()
    await ready(page)
    await page.get_by_label("Label for a new key").fill('laptop <b>"x"</b>')
    await page.get_by_role("button", name="Create key").click()
    new_key = page.get_by_label("New key", exact=True)
    await new_key.wait_for(state="visible")
    key = await new_key.input_value()
    assert re.fullmatch(r"hp-[A-Za-z0-9_-]{43}", key)
    row = page.locator("#keys tbody tr", has_text='laptop <b>"x"</b>')
    assert await row.count() == 1  # the label is text, not markup
    await page.get_by_role("button", name="Copy").click()
    await expect(page.locator("#copied")).to_have_text("Copied.")
    async with dash.hub.openai(api_key=key) as client:
        assert [m.id async for m in client.models.list()]
    await dash.shot(page, "keys-created")
    await row.get_by_role("button", name=re.compile("^Revoke")).click()
    await expect(row).to_contain_text("revoked")
    assert page.dialogs and page.dialogs[0][0] == "confirm"
    async with dash.hub.openai(api_key=key) as client:
        with pytest.raises(Exception, match="Invalid or revoked"):
            await client.models.list()
    await dash.shot(page, "keys-revoked")


async def test_playground_streams_token_by_token(dash: Dash, page: Any) -> None:
    await dash.sign_in(page, dash.alice)
    await nav(page, "Playground").click()
    await ready(page)
    options = page.locator("#models option")
    assert await options.first.get_attribute("value") == "demo/echo"
    # The demo provider: the whole answer, with its usage and credits.
    await page.get_by_label("Model").fill("demo/echo")
    await page.get_by_label("Message").fill("hello there")
    await page.get_by_role("button", name="Send").click()
    meta = page.locator(".msg.assistant .meta.done")
    await meta.wait_for()
    assert await page.locator(".msg.assistant .answer").inner_text() == "You said: hello there"
    assert re.search(
        r"\d+ prompt \+ 4 completion tokens · 0\.0000\d\d credits", await meta.inner_text()
    )
    # A gated upstream: the first chunk shows while the rest has not been sent yet.
    dash.fake.release.clear()
    await page.get_by_role("button", name="New chat").click()
    await page.get_by_label("Model").fill("up/gated")
    await page.get_by_label("Message").fill("go on")
    await page.get_by_role("button", name="Send").click()
    answer = page.locator(".msg.assistant .answer")
    await expect(answer).not_to_be_empty()
    first = await answer.inner_text()
    assert first and await page.get_by_role("button", name="Send").is_disabled()
    await dash.shot(page, "playground-streaming")
    dash.fake.release.set()
    await page.locator(".msg.assistant .meta.done").wait_for()
    whole = await answer.inner_text()
    assert whole.startswith(first) and len(whole) > len(first)
    await dash.shot(page, "playground")


async def test_admin_grants_credits_and_edits_a_rate_through_preview(dash: Dash, page: Any) -> None:
    await dash.sign_in(page, dash.root)
    await nav(page, "Users").click()
    await ready(page)
    alice = page.locator('#users tbody tr[data-user="alice"] .balance')
    assert await alice.inner_text() == "25"
    await page.get_by_label("User", exact=True).select_option("alice")
    await page.get_by_label("Amount (credits)").fill("1234.5")
    await page.get_by_label("Note").fill("<i>bonus</i> for May")
    await page.get_by_role("button", name="Grant").click()
    await expect(alice).to_have_text("1,259.5")
    await page.locator("#grants tbody tr").first.wait_for()
    assert await page.locator("#grants tbody tr td").nth(3).inner_text() == "<i>bonus</i> for May"
    await dash.shot(page, "admin-users")
    await nav(page, "Models and rates").click()
    await ready(page)
    output = page.get_by_label("output rate of demo/echo (chat)")
    assert await output.input_value() == "2"
    await output.fill("3.5")
    await page.get_by_role("button", name="Preview changes").click()
    preview = page.locator("#preview")
    await preview.wait_for(state="visible")
    assert "in 1 · out 2" in await preview.inner_text()
    assert "in 1 · out 3.5" in await preview.inner_text()
    rates = await page.request.get(dash.hub.url + "/api/admin/rates")
    assert (await rates.json())["data"][0]["output"] == "2", "a preview changed the rate"
    await dash.shot(page, "admin-rates-preview")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("#applied")).to_contain_text("Applied")
    rates = await page.request.get(dash.hub.url + "/api/admin/rates")
    assert (await rates.json())["data"][0]["output"] == "3.5"


async def test_a_member_gets_no_admin_data(dash: Dash, page: Any) -> None:
    await dash.sign_in(page, dash.alice)
    assert await page.locator("nav a.admin").count() == 0
    for path in ("/ui/admin/users", "/ui/admin/rates", "/ui/admin/usage",
                 "/ui/admin/providers", "/ui/admin/models", "/ui/admin/availability"):  # fmt: skip
        resp = await page.goto(dash.hub.url + path)
        assert resp.status == 404
        text = await page.locator("body").inner_text()
        assert "root" not in text and "There is no such page" in text
        assert await page.locator("table").count() == 0
    api = await page.request.get(dash.hub.url + "/api/admin/users")
    assert api.status == 404
    await dash.shot(page, "member-admin")


async def test_a_model_name_with_markup_renders_as_text(dash: Dash, page: Any) -> None:
    conn = dash.hub.db()
    try:
        user = accounts.user_by_name(conn, "alice")
        apply(conn, [(
            "INSERT INTO model_calls (id, request_id, user_id, api_key_id, provider, model, type, "
            "status, error, created_at) VALUES ('0190000000000000aa', 'req-x', ?, 1, 'evil', ?, "
            "'chat', 'failed', ?, 1700000000000)",
            (user["id"], XSS, XSS),
        )])  # fmt: skip
    finally:
        conn.close()
    await dash.sign_in(page, dash.alice)
    await nav(page, "Calls").click()
    await ready(page)
    cell = page.locator("#calls tbody tr").first.locator("td").nth(1)
    assert await cell.inner_text() == f"evil/{XSS}"
    await page.locator("#calls tbody tr").first.get_by_role("button", name="Details").click()
    assert await page.locator("#detail dd", has_text="alert").count() == 2
    assert await page.locator("main script").count() == 0
    await page.wait_for_timeout(200)
    assert page.dialogs == [], "a script from the log ran"
    await dash.shot(page, "xss")


async def test_writes_without_the_csrf_token_are_refused(dash: Dash, page: Any) -> None:
    await dash.sign_in(page, dash.alice)
    url = dash.hub.url
    token = await page.locator('meta[name="csrf-token"]').get_attribute("content")
    for path, body in (
        ("/api/user/keys", {"label": "no token"}),
        ("/v1/chat/completions", {"model": "demo/echo", "messages": [MESSAGE]}),
    ):
        refused = await page.request.post(url + path, data=body)
        assert refused.status == 403, await refused.text()
        assert (await refused.json())["error"]["code"] == "csrf_failed"
        wrong = await page.request.post(url + path, data=body, headers={"X-CSRF-Token": "x" * 43})
        assert wrong.status == 403
    assert (await page.request.delete(url + "/api/user/keys/1")).status == 403
    assert (await page.request.post(url + "/ui/logout", form={"csrf_token": "nope"})).status == 403
    made = await page.request.post(
        url + "/api/user/keys", data={"label": "with token"}, headers={"X-CSRF-Token": token}
    )
    assert made.status == 200
    keys = (await (await page.request.get(url + "/api/user/keys")).json())["data"]
    assert [k["label"] for k in keys].count("no token") == 0
    await page.goto(url + "/ui/keys")  # still signed in: nothing above ended the session
    await ready(page)
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(url + "/ui/login")
    assert (await page.request.get(url + "/api/user/balance")).status == 401
    await dash.shot(page, "signed-out")


async def test_a_revoked_key_ends_its_sessions_within_2_s(dash: Dash, page: Any) -> None:
    await dash.sign_in(page, dash.alice)
    assert (await page.request.get(dash.hub.url + "/api/user/balance")).status == 200
    conn = dash.hub.db()  # as the CLI does it: another process's write
    try:
        [row] = conn.execute("SELECT id FROM api_keys WHERE label = 'test' AND user_id = "
                             "(SELECT id FROM users WHERE name = 'alice')").fetchall()  # fmt: skip
        apply(conn, [accounts.revoke_key(row[0])])
    finally:
        conn.close()
    loop = asyncio.get_running_loop()
    started = loop.time()
    while (await page.request.get(dash.hub.url + "/api/user/balance")).status != 401:
        assert loop.time() - started < 2.0, "the session outlived its key"
        await asyncio.sleep(0.05)
    await page.goto(dash.hub.url + "/ui/")
    await page.wait_for_url(dash.hub.url + "/ui/login")
    await dash.shot(page, "revoked")


async def test_admin_pages_for_usage_availability_and_providers(dash: Dash, page: Any) -> None:
    await dash.chat(2)
    await dash.grant("root", "5")
    await dash.chat(1, key=dash.root)
    await dash.sign_in(page, dash.root)
    await nav(page, "Usage").click()
    await ready(page)
    assert await page.locator("#charts canvas").first.evaluate(DRAWN) > 100
    users = page.locator("#by-user tbody tr")
    assert await users.count() == 2
    await (
        users.filter(has_text="alice").get_by_role("button", name=re.compile("Drill down")).click()
    )
    await page.locator("#by-key tbody tr").first.wait_for()
    assert "test" in await page.locator("#by-key").inner_text()
    assert "demo/echo" in await page.locator("#by-model").inner_text()
    await dash.shot(page, "admin-usage")
    await nav(page, "Availability").click()
    await ready(page)
    row = page.locator("#availability tbody tr").first
    assert (await row.locator("td").all_inner_texts())[:3] == ["demo/echo", "3", "100%"]
    await dash.shot(page, "admin-availability")
    # The config file's providers: listed, read-only, their keys masked.
    await nav(page, "Providers").click()
    await ready(page)
    up = page.locator('#providers tbody tr[data-provider="up"]')
    assert "config file (read-only)" in await up.inner_text()
    assert await up.get_by_role("button", name=re.compile("^(Edit|Disable|Delete)")).count() == 0
    await up.get_by_role("button", name="Credentials of up").click()
    await expect(page.locator("#cred-h")).to_have_text("Credentials of up")
    cells = page.locator('#cred-table tbody tr[data-credential="config-1"] td')
    assert (await cells.all_inner_texts())[:4] == ["config-1", "sk-…0001", "1", "active"]
    assert await page.locator("#credential").is_hidden()  # no keys added to a config provider
    assert await page.locator("#cred-readonly").is_visible()
    assert "sk-up-0000001" not in await page.content()
    await dash.shot(page, "admin-providers")


KEY = "sk-live-SECRET-93f1c07e2d5babcd"


async def test_admin_adds_a_provider_and_a_credential_and_tests_it(dash: Dash, page: Any) -> None:
    await dash.sign_in(page, dash.root)
    await nav(page, "Providers").click()
    await ready(page, "1")
    await page.get_by_label("Name").fill("lp")
    await page.get_by_label("Type").select_option("openai")
    await page.get_by_label("Base URL").fill(dash.upstream_url)
    await page.get_by_label("Extra headers (JSON object)").fill('{"X-Org": "acme"}')
    await page.get_by_role("button", name="Add provider").click()
    row = page.locator('#providers tbody tr[data-provider="lp"]')
    await expect(row).to_contain_text("database")
    await expect(page.locator("#cred-h")).to_have_text("Credentials of lp")
    assert await page.locator("#no-credentials").is_visible()
    # The key is typed into the form; afterwards it is shown masked, and nowhere in full.
    await page.get_by_label("Label", exact=True).fill("prod-1")
    await page.get_by_label("API key (write-only: shown masked once saved)").fill(KEY)
    await page.get_by_label("Weight", exact=True).fill("3")
    await page.get_by_role("button", name="Add credential").click()
    cred = page.locator('#cred-table tbody tr[data-credential="prod-1"]')
    await expect(cred.locator("code.masked")).to_have_text("sk-…abcd")
    assert await cred.get_by_label("Weight of prod-1").input_value() == "3"
    assert await cred.locator("td.state").inner_text() == "active"
    assert await page.locator("#k-key").input_value() == ""
    assert KEY not in await page.content()
    # Tested against the fake upstream on loopback: the result shows, and the counters move.
    await page.get_by_label("Model to test with").fill("ok")
    await cred.get_by_role("button", name="Test prod-1").click()
    result = page.locator("#test-result")
    await expect(result).to_contain_text("prod-1: OK (HTTP 200 in")
    assert "with model ok" in await result.inner_text()
    seen = dash.fake.requests[-1]
    assert seen.headers["Authorization"] == f"Bearer {KEY}" and seen.headers["X-Org"] == "acme"
    await expect(cred.locator("td").nth(6)).to_have_text("1")  # successes in the last hour
    await dash.shot(page, "admin-credential-tested")
    # A revoked key: the test shows the upstream's refusal, and the credential is disabled.
    await page.get_by_label("Label", exact=True).fill("old")
    await page.get_by_label("API key (write-only: shown masked once saved)").fill(
        "sk-revoked-0000000000wxyz"
    )
    await page.get_by_role("button", name="Add credential").click()
    old = page.locator('#cred-table tbody tr[data-credential="old"]')
    await old.get_by_role("button", name="Test old").click()
    await expect(result).to_contain_text("old: failed (HTTP 401 in")
    await expect(old.locator("td.state")).to_contain_text("disabled until")
    assert "401" in await old.locator("td.last-error").inner_text()
    assert await old.locator("td").nth(7).inner_text() == "1"  # failures in the last hour
    # Weight, disable and enable, as the API then tells it.
    await cred.get_by_label("Weight of prod-1").fill("5")
    await cred.get_by_role("button", name="Set weight of prod-1").click()
    await cred.get_by_role("button", name="Disable prod-1").click()
    await expect(cred.locator("td.state")).to_have_text("disabled")
    assert await cred.get_by_label("Weight of prod-1").input_value() == "5"
    pid = await provider_id(dash, "lp")
    creds = (await dash.admin("GET", f"/api/admin/providers/{pid}/credentials"))["data"]
    assert {c["label"]: (c["weight"], c["enabled"]) for c in creds}["prod-1"] == (5, False)
    await cred.get_by_role("button", name="Enable prod-1").click()
    await expect(cred.locator("td.state")).to_have_text("active")
    # A bad weight is refused with the API's message, and nothing changes.
    await cred.get_by_label("Weight of prod-1").fill("0")
    await cred.get_by_role("button", name="Set weight of prod-1").click()
    await expect(page.locator("#page-error")).to_contain_text("'weight' must be a whole number")
    # Edit the provider, then disable it.
    await row.get_by_role("button", name="Edit lp").click()
    assert await page.get_by_label("Name").is_disabled()
    await page.get_by_label("Idle timeout (s)").fill("30")
    await page.get_by_role("button", name="Save provider").click()
    await expect(page.locator("#provider-h")).to_have_text("Add a provider")
    assert (await dash.admin("GET", f"/api/admin/providers/{pid}"))["idle_timeout_s"] == 30
    await row.get_by_role("button", name="Disable lp").click()
    await expect(row.locator("td").nth(4)).to_have_text("disabled")
    assert KEY not in await page.content()
    assert page.console_errors == []
    await dash.shot(page, "admin-providers-managed")


async def provider_id(dash: Dash, name: str) -> str:
    data = (await dash.admin("GET", "/api/admin/providers"))["data"]
    return str(next(p["id"] for p in data if p["name"] == name))


async def test_admin_catalogue_aliases_and_passive_availability(dash: Dash, page: Any) -> None:
    pid = (
        await dash.admin(
            "POST", "/api/admin/providers",
            {"name": "lp", "type": "openai", "base_url": dash.upstream_url},
        )
    )["id"]  # fmt: skip
    cred = await dash.admin(
        "POST", f"/api/admin/providers/{pid}/credentials", {"label": "a", "key": KEY}
    )
    await dash.sign_in(page, dash.root)
    await nav(page, "Catalogue").click()
    await ready(page, "1")
    demo = page.locator('#models tbody tr[data-model="demo/echo"]')
    assert "config file (read-only)" in await demo.inner_text()
    await page.get_by_label("Model (provider/model)").fill("lp/ok")
    await page.get_by_label("Display name").fill(XSS)
    await page.get_by_label("Context window (tokens)").fill("128000")
    await page.get_by_role("button", name="Add model").click()
    row = page.locator('#models tbody tr[data-model="lp/ok"]')
    await expect(row.locator("td").nth(1)).to_have_text(XSS)  # markup shown as text
    assert await row.locator("td").nth(3).inner_text() == "128,000"
    await page.get_by_label("Aliases, one a line").fill("fast = lp/ok, demo/echo")
    await page.get_by_role("button", name="Save aliases").click()
    alias = page.locator('#aliases tbody tr[data-alias="fast"]')
    await expect(alias).to_contain_text("lp/ok → demo/echo")
    assert (await dash.admin("GET", "/api/admin/aliases"))["aliases"] == {
        "fast": ["lp/ok", "demo/echo"]
    }
    await dash.shot(page, "admin-catalogue")
    # An alias to a model nobody offers: refused with the API's fix, nothing saved.
    await page.get_by_label("Aliases, one a line").fill("slow = lp/nope")
    await page.get_by_role("button", name="Save aliases").click()
    await expect(page.locator("#page-error")).to_contain_text("not in the catalogue")
    assert "slow" not in (await dash.admin("GET", "/api/admin/aliases"))["aliases"]
    # In use by the alias: disabling the model is refused; the row stays enabled.
    await row.get_by_role("button", name="Disable lp/ok").click()
    await expect(page.locator("#page-error")).to_contain_text("would break an alias")
    assert "enabled" in await row.inner_text()
    # A credential test (it picks the catalogue's model) feeds the passive availability.
    tested = await dash.admin("POST", f"/api/admin/credentials/{cred['id']}/test", {})
    assert tested["ok"] is True and tested["model"] == "ok"
    await nav(page, "Availability").click()
    await ready(page)
    cells = page.locator('#availability tbody tr[data-model="lp/ok"] td')
    texts = await cells.all_inner_texts()
    assert texts[:3] == ["lp/ok", "0", "–"] and texts[6:8] == ["1", "100%"]
    assert texts[8].endswith(" ms") and texts[9] == "–"
    assert page.dialogs == [], "a script from a display name ran"
    await dash.shot(page, "admin-catalogue-availability")
