"""Administration, quotas, logout and single sign-on in the web client, in
headless Chromium: the page only administrators see, what is used and left
today, a logout the server honours, and the "Sign in with ..." button."""

import uuid
import warnings

import aiohttp
import pytest
from playwright.async_api import expect

from chatserver import appkeys
from chatserver.data import users

from .pages import register_in_browser, token_of, unexpected_errors
from .rest import rest_of

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")]


async def test_the_admin_page_is_for_administrators_only(live, page):
    email = await register_in_browser(page, live)
    await expect(page.get_by_role("button", name="Administration")).to_be_hidden()

    other = f"other-{uuid.uuid4().hex[:8]}@example.com"
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{live.url}api/auth/register", json={"email": other, "password": "long enough"})
        other_token = (await resp.json())["access_token"]
    await users.set_role_by_email(live.app[appkeys.DB], email, "admin")
    await page.reload()
    await page.get_by_role("button", name="Administration").click()
    dialog = page.get_by_role("dialog", name="Administration")
    await dialog.get_by_label("Find accounts").fill(other)
    await dialog.get_by_role("button", name="Search").click()
    row = dialog.locator("#admin-users tr").filter(has_text=other)
    await expect(row).to_contain_text("active")

    await row.get_by_role("button", name=f"Disable {other}").click()
    await expect(row).to_contain_text("disabled")
    rest = await rest_of(page, live)
    rest.headers = {"Authorization": f"Bearer {other_token}"}
    status, _ = await rest.call("GET", "/api/users/me")
    assert status == 401

    page.once("dialog", lambda d: d.accept("5"))
    await dialog.locator(f'#admin-users button[aria-label="Messages quota of {other}"]').click()
    await expect(dialog.locator("#admin-users tr").filter(has_text=other).locator("td").nth(3)).to_have_text("5")
    assert not unexpected_errors(page), page.errors


async def test_an_administrator_lists_everyones_api_keys_and_revokes_one(live, page):
    email = await register_in_browser(page, live)
    await users.set_role_by_email(live.app[appkeys.DB], email, "admin")
    # the database is the whole session's: other tests' keys are in everyone's list too,
    # so this test's keys have names of their own
    suffix = uuid.uuid4().hex[:8]
    other = f"keys-{suffix}@example.com"
    laptop, build = f"laptop {suffix}", f"build server {suffix}"
    async with aiohttp.ClientSession() as session:
        resp = await session.post(f"{live.url}api/auth/register", json={"email": other, "password": "long enough"})
        other_headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
        made = {}
        for name in (laptop, build):
            resp = await session.post(f"{live.url}api/keys", json={"name": name}, headers=other_headers)
            made[name] = (await resp.json())["key"]
    await page.reload()
    await page.get_by_role("button", name="Administration").click()
    dialog = page.get_by_role("dialog", name="Administration")
    keys = dialog.locator("#admin-keys tr")
    await expect(keys.filter(has_text=laptop)).to_contain_text(other)
    await expect(keys.filter(has_text=build)).to_contain_text("never")

    await dialog.get_by_label("Find accounts").fill(other)
    await dialog.get_by_role("button", name="Search").click()
    await dialog.get_by_role("button", name=f"API keys of {other}").click()
    await expect(dialog.locator("#admin-keys-title")).to_have_text(f"API keys of {other}")
    await expect(keys).to_have_count(2)

    page.once("dialog", lambda d: d.accept())
    await dialog.get_by_role("button", name=f"Revoke key {laptop} of {other}").click()
    await expect(keys).to_have_count(1)
    await expect(keys).to_contain_text(build)
    rest = await rest_of(page, live)
    rest.headers = {"Authorization": f"Bearer {made[laptop]}"}
    assert (await rest.call("GET", "/api/chats"))[0] == 401
    rest.headers = {"Authorization": f"Bearer {made[build]}"}
    assert (await rest.call("GET", "/api/chats"))[0] == 200
    assert not unexpected_errors(page), page.errors


async def test_usage_shows_what_is_used_and_left_today(start_live, page):
    live = await start_live(QUOTA_MESSAGES_PER_DAY=5)
    await register_in_browser(page, live)
    await page.get_by_role("button", name="Usage").click()
    await expect(page.locator("#quota-today")).to_contain_text("0 of 5 messages, 5 left")
    await expect(page.locator("#quota-today")).to_contain_text("tokens (no limit)")


async def test_log_out_revokes_the_token_on_the_server(live, page):
    await register_in_browser(page, live)
    token = await token_of(page)
    await page.get_by_role("button", name="Log out").click()
    await page.locator("#auth-view").wait_for(state="visible")
    rest = await rest_of(page, live)
    rest.headers = {"Authorization": f"Bearer {token}"}

    async def refused():
        status, _ = await rest.call("GET", "/api/users/me")
        return status == 401

    for _ in range(300):
        if await refused():
            break
        await page.wait_for_timeout(50)
    assert await refused()


@pytest.fixture
def provider():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from oidc_provider_mock import run_server_in_thread
    with run_server_in_thread(require_nonce=True) as server:
        yield f"http://127.0.0.1:{server.server_port}"


async def test_sign_in_with_the_provider(start_live, page, provider):
    live = await start_live(OIDC_ISSUER=provider, OIDC_CLIENT_ID="chatserver", OIDC_CLIENT_SECRET="s3cret",
                            OIDC_PROVIDER_NAME="TestIdP")
    sub, email = uuid.uuid4().hex, f"sso-{uuid.uuid4().hex[:8]}@example.com"
    async with aiohttp.ClientSession() as session:
        resp = await session.put(f"{provider}/users/{sub}", json={"email": email, "email_verified": True})
        assert resp.status == 204
    await page.goto(live.url)
    await page.get_by_role("link", name="Sign in with TestIdP").click()
    await page.locator('input[name="sub"]').fill(sub)
    await page.get_by_role("button", name="Authorize").click()
    await page.locator("#app-view").wait_for(state="visible")
    await expect(page.locator("#user-name")).to_have_attribute("title", email)
    assert "access_token" not in page.url
    assert not unexpected_errors(page), page.errors


async def test_no_sign_in_button_without_a_provider(live, page):
    await page.goto(live.url)
    await page.locator("#auth-view").wait_for(state="visible")
    await expect(page.locator("#oidc-login")).to_be_hidden()
