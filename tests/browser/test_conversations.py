"""Edit and branches, two pages in step through chat events, and export and
import from the page."""

import json

import pytest

from .pages import assistant, new_chat, register_in_browser, send, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser


async def complete(page, index: int = -1):
    answer = assistant(page, index)
    await answer.and_(page.locator('[data-status="complete"]')).wait_for(timeout=30000)
    return answer


def questions(page):
    return page.locator("#messages > li.user .user-text")


async def log_in(page, live, email: str, password: str = "correct horse") -> None:
    await page.goto(live.url)
    form = page.locator("#login-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Log in").click()
    await page.locator("#app-view").wait_for(state="visible")


async def test_edit_a_question_in_place_and_flip_between_versions(start_live, page):
    live = await start_live(AI_SERVICE_URL="", AI_BACKEND="builtin")
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Tell me about tomatoes")
    await complete(page)
    first = page.locator("#messages > li.user").first
    await first.get_by_role("button", name="Edit").click()
    box = first.get_by_label("Edit your message")
    assert await box.input_value() == "Tell me about tomatoes"
    await box.fill("Tell me about basil")
    await first.get_by_role("button", name="Save").click()
    await questions(page).filter(has_text="Tell me about basil").wait_for()
    await complete(page)
    question = page.locator("#messages > li.user").first
    assert await question.locator(".branch-position").text_content() == "2 / 2"
    await question.get_by_role("button", name="Previous version").click()
    await questions(page).filter(has_text="Tell me about tomatoes").wait_for()
    assert await page.locator("#messages > li.user").first.locator(".branch-position").text_content() == "1 / 2"
    assert await page.locator("#messages > li").count() == 2
    await page.locator("#messages > li.user").first.get_by_role("button", name="Next version").click()
    await questions(page).filter(has_text="Tell me about basil").wait_for()
    assert not unexpected_errors(page), page.errors


async def test_a_message_sent_in_a_second_page_appears_in_the_first_with_its_answer(start_live, page, browser):
    live = await start_live(AI_SERVICE_URL="", AI_BACKEND="builtin")
    email = await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Hello from the first page")
    await complete(page)
    url = page.url
    context = await browser.new_context()
    second = await context.new_page()
    try:
        await log_in(second, live, email)
        await second.goto(url)
        await questions(second).filter(has_text="Hello from the first page").wait_for()
        await send(second, "Hello from the second page")
        await questions(page).filter(has_text="Hello from the second page").wait_for(timeout=15000)
        answer = await complete(page)
        assert await answer.locator(".content").inner_text()
        rest = await rest_of(page, live)
        chat_id = url.rsplit("/", 1)[-1]
        await rest.call("PATCH", f"/api/chats/{chat_id}", json={"title": "Renamed elsewhere"})
        await page.locator("#chat-title", has_text="Renamed elsewhere").wait_for()
        await rest.call("DELETE", f"/api/chats/{chat_id}")
        await page.locator("#notices", has_text="deleted").wait_for()
        await page.wait_for_function("() => !location.hash.includes('/chat/')")
    finally:
        await context.close()
    assert not unexpected_errors(page), page.errors


async def test_import_and_export_from_the_page(start_live, page, tmp_path):
    live = await start_live(AI_SERVICE_URL="", AI_BACKEND="builtin")
    await register_in_browser(page, live)
    conversations = [{"id": "imported-1", "title": "Imported garden chat", "create_time": 1700000000,
                      "update_time": 1700000001, "current_node": "a", "mapping": {
                          "q": {"id": "q", "parent": None, "children": ["a"], "message": {
                              "id": "q", "author": {"role": "user"}, "create_time": 1700000000,
                              "content": {"content_type": "text", "parts": ["When to plant peas?"]}}},
                          "a": {"id": "a", "parent": "q", "children": [], "message": {
                              "id": "a", "author": {"role": "assistant"}, "create_time": 1700000001,
                              "content": {"content_type": "text", "parts": ["In early spring."]}}}}}]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(conversations))
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Import").click()
    await (await chooser.value).set_files(str(path))
    await page.locator("#import-result", has_text="Imported 1 chat, skipped 0.").wait_for()
    await page.get_by_role("button", name="Imported garden chat").click()
    await questions(page).filter(has_text="When to plant peas?").wait_for()
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Export", exact=True).click()
    download = await waiting.value
    text = (tmp_path / "chat.md")
    await download.save_as(str(text))
    assert text.read_text().startswith("# Imported garden chat")
    assert "In early spring." in text.read_text()
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Export all").click()
    everything = tmp_path / "all.json"
    await (await waiting.value).save_as(str(everything))
    assert json.loads(everything.read_text())[0]["title"] == "Imported garden chat"
    assert not unexpected_errors(page), page.errors
