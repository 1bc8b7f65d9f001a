"""The API keys page: create with a name, copy once, list, delete; in headless Chromium."""

import pytest
from playwright.async_api import expect

from .pages import register_in_browser, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser


async def test_key_is_made_shown_once_listed_and_deleted(live, page):
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    await page.get_by_role("button", name="API keys").click()
    dialog = page.get_by_role("dialog", name="API keys")
    await dialog.get_by_label("Name").fill("my script")
    await dialog.get_by_role("button", name="Create key").click()
    shown = dialog.get_by_label("New API key")
    await shown.wait_for()
    key = await shown.input_value()
    assert key.startswith("cs-")
    row = dialog.locator("#key-list li").filter(has_text="my script")
    await row.wait_for()
    assert key[:11] in await row.text_content() and "never used" in await row.text_content()

    rest.headers = {"Authorization": f"Bearer {key}"}
    status, _ = await rest.call("GET", "/api/users/me")
    assert status == 200

    await dialog.get_by_role("button", name="Close").click()
    await page.get_by_role("button", name="API keys").click()
    assert not await dialog.get_by_label("New API key").is_visible()
    # the list is fetched again on opening: wait for the new rendering, not the one left from before
    await expect(row).to_contain_text("last used", timeout=15000)

    page.once("dialog", lambda d: d.accept())
    await row.get_by_role("button", name="Delete key my script").click()
    await dialog.get_by_text("No API keys yet.").wait_for()
    status, _ = await rest.call("GET", "/api/users/me")
    assert status == 401
    assert not unexpected_errors(page), page.errors
