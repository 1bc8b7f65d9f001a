"""The chat settings panel and the usage panel, in headless Chromium."""

import pytest

from .pages import new_chat, register_in_browser, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser


async def test_settings_panel_sets_the_chats_model_prompt_and_limits(start_live, page):
    live = await start_live(OPENAI_MODEL="house-model", OPENAI_MODELS="small-model")
    await register_in_browser(page, live)
    await new_chat(page)
    await page.get_by_role("button", name="Settings").click()
    dialog = page.locator("#settings-dialog")
    await dialog.wait_for(state="visible")
    assert await dialog.get_by_label("Model", exact=True).locator("option").all_text_contents() == [
        "Server default (house-model)", "house-model", "small-model"]
    await dialog.get_by_label("Model", exact=True).select_option("small-model")
    await dialog.get_by_label("System prompt").fill("Answer like a pirate.")
    await dialog.get_by_label("Temperature").fill("0.5")
    await dialog.get_by_label("Max tokens").fill("40")
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")
    chat_id = page.url.rsplit("/", 1)[-1]
    status, chat = await (await rest_of(page, live)).call("GET", f"/api/chats/{chat_id}")
    assert status == 200
    assert {k: chat[k] for k in ("model", "system_prompt", "temperature", "max_tokens")} == {
        "model": "small-model", "system_prompt": "Answer like a pirate.", "temperature": 0.5, "max_tokens": 40}
    await page.get_by_role("button", name="Settings").click()
    await dialog.get_by_label("Temperature").fill("7")
    await dialog.get_by_role("button", name="Save").click()
    await dialog.get_by_role("alert").filter(has_text="temperature").wait_for()
    assert not unexpected_errors(page), page.errors


async def test_usage_panel_opens(live, page):
    await register_in_browser(page, live)
    await page.get_by_role("button", name="Usage").click()
    await page.locator("#usage-dialog").wait_for(state="visible")
    await page.get_by_text("No answers in the last 30 days.").wait_for()
    await page.get_by_role("button", name="Close").click()
    await page.locator("#usage-dialog").wait_for(state="hidden")
