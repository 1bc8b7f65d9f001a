"""Live answers over the WebSocket, against the real app and a fake AI
service that streams slowly through the callback protocol."""

import asyncio
import dataclasses

import pytest
from support.fake_ai_service import Script, default_answer

from .pages import assistant, new_chat, register_in_browser, screenshot, send, token_of, unexpected_errors
from .rest import Rest, rest_of

pytestmark = pytest.mark.browser

RENDER = """async ([text]) => {
  const src = document.querySelector('script[type=module]').src.replace('main.js', 'markdown.js');
  const { renderMarkdown } = await import(src);
  const box = document.createElement('div');
  box.append(renderMarkdown(text));
  return box.innerHTML;
}"""


def words(count: int) -> list[str]:
    return [f"w{i:03d} " for i in range(count)]


async def rendered(page, text: str) -> str:
    return await page.evaluate(RENDER, [text])


async def wait_status(message, status: str, timeout: float = 30000) -> None:
    await message.and_(message.page.locator(f'[data-status="{status}"]')).wait_for(timeout=timeout)


async def test_streamed_answer_appears_with_its_sources(live, page, fake_ai):
    await register_in_browser(page, live)
    await new_chat(page)
    question = "How do streamed answers work?"
    await send(page, question)
    answer = assistant(page)
    await wait_status(answer, "streaming")
    # it grows while it streams: a part first, then the whole
    await answer.locator(".content").filter(has_text="You said").wait_for()
    partial = await answer.locator(".content").inner_text()
    await wait_status(answer, "complete")
    expected = default_answer(question)
    assert len(partial) < len(await answer.locator(".content").inner_text())
    assert await answer.locator(".content").inner_html() == await rendered(page, expected)
    assert await answer.locator(".content strong").text_content() == "bold"
    assert await answer.locator(".content li").all_text_contents() == ["first item", "second item"]

    sources = answer.locator(".sources li")
    assert await sources.count() == 2
    link = sources.nth(0).get_by_role("link", name="Example handbook")
    assert await link.get_attribute("href") == "https://example.com/handbook"
    assert await sources.nth(1).get_by_role("link").count() == 0
    assert "Unlinked note" in await sources.nth(1).text_content()
    snippet = sources.nth(0).locator(".snippet")
    assert not await snippet.is_visible()
    await sources.nth(0).locator("summary").click()
    assert await snippet.is_visible()
    assert await snippet.text_content() == "The handbook explains how answers are streamed."

    assert await answer.get_by_role("button", name="Regenerate").is_visible()
    assert await page.locator("#stop").is_hidden()
    # the chat took its title from the first message
    assert await page.locator("#chat-title").text_content() == question
    rest = await rest_of(page, live)
    _, stored = await rest.call("GET", f"/api/messages/{await answer.get_attribute('data-message-id')}")
    assert stored["content"] == expected and stored["status"] == "complete"

    await send(page, "And how do I write a list?\nWith two lines.")
    await wait_status(assistant(page), "complete")
    await page.locator("#scroller").evaluate("(s) => { s.scrollTop = s.scrollHeight; }")
    path = await screenshot(page, "conversation.png")
    assert path.stat().st_size > 10_000
    assert not unexpected_errors(page), page.errors


async def test_reload_mid_answer_shows_the_full_answer_exactly_once(live, page, fake_ai):
    fake_ai.script = lambda body: Script(words(60), delay=0.08)
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Count for me")
    answer = assistant(page)
    await answer.locator(".content").filter(has_text="w010").wait_for()
    await page.reload()
    answer = assistant(page)
    await answer.wait_for()
    assert await answer.get_attribute("data-status") in ("pending", "streaming")
    await wait_status(answer, "complete")
    text = await answer.locator(".content").inner_text()
    assert text == "".join(words(60)).strip()

    # a second answer, and a reload with the answer half way again, twice
    await send(page, "Again")
    answer = assistant(page)
    await answer.locator(".content").filter(has_text="w005").wait_for()
    await page.reload()
    await assistant(page).locator(".content").filter(has_text="w030").wait_for()
    await page.reload()
    answer = assistant(page)
    await wait_status(answer, "complete")
    assert await answer.locator(".content").inner_text() == "".join(words(60)).strip()
    assert not unexpected_errors(page), page.errors


async def test_a_dropped_connection_resumes_exactly(flaky_live, page, fake_ai):
    live, proxy = flaky_live
    fake_ai.script = lambda body: Script(words(60), delay=0.08)
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Count while the network drops")
    answer = assistant(page)
    await answer.locator(".content").filter(has_text="w008").wait_for()
    # the connection drops, and stays down for a while: chunks go on arriving
    # at the server meanwhile; then it comes back
    proxy.refusing = True
    proxy.drop()
    await page.locator("#connection").filter(has_text="Reconnecting").wait_for()
    seen = await answer.locator(".content").inner_text()
    # past the proxy, the server has stored well more than the page shows
    direct = Rest(dataclasses.replace(live, url=live.settings.PUBLIC_BASE_URL), await token_of(page))
    path = f"/api/messages/{await answer.get_attribute('data-message-id')}"
    async with asyncio.timeout(30):
        while len((await direct.call("GET", path))[1]["content"]) < len(seen) + 20:
            await asyncio.sleep(0.05)
    assert await answer.locator(".content").inner_text() == seen
    proxy.refusing = False
    await wait_status(answer, "complete")
    assert await answer.locator(".content").inner_text() == "".join(words(60)).strip()
    await page.locator("#connection").filter(has_text="Reconnecting").wait_for(state="hidden")

    # a blip in the middle of a second answer, with no pause at all
    await send(page, "Again")
    answer = assistant(page)
    await answer.locator(".content").filter(has_text="w020").wait_for()
    proxy.drop()
    await wait_status(answer, "complete")
    assert await answer.locator(".content").inner_text() == "".join(words(60)).strip()
    assert not unexpected_errors(page), page.errors


async def test_stop_keeps_the_partial_answer(live, page, fake_ai):
    fake_ai.script = lambda body: Script(words(200), delay=0.08)
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Talk for a long time")
    answer = assistant(page)
    await answer.locator(".content").filter(has_text="w005").wait_for()
    await page.locator("#stop").click()
    await wait_status(answer, "cancelled")
    assert "Stopped" in await answer.locator(".message-error").text_content()
    assert await answer.locator(".status").text_content() == "stopped"
    kept = await answer.locator(".content").inner_text()
    assert kept.startswith("w000 w001 w002 w003 w004 w005")
    # the service stops at the first chunk the server refuses: from then on nothing can arrive
    async with asyncio.timeout(30):
        while fake_ai.tasks:
            await asyncio.sleep(0.05)
    assert await answer.locator(".content").inner_text() == kept
    rest = await rest_of(page, live)
    _, stored = await rest.call("GET", f"/api/messages/{await answer.get_attribute('data-message-id')}")
    assert stored["status"] == "cancelled"
    assert stored["content"].strip() == kept
    assert await page.locator("#stop").is_hidden()
    # the partial answer survives a reload, still marked as stopped
    await page.reload()
    answer = assistant(page)
    await wait_status(answer, "cancelled")
    assert await answer.locator(".content").inner_text() == kept
    await answer.get_by_role("button", name="Regenerate").wait_for()


async def test_regenerate_streams_a_new_answer(live, page, fake_ai):
    def asked(message: str) -> int:
        """By question: the app's start-up sweep may send an earlier test's forgotten answer here too."""
        return [r["message"] for r in fake_ai.requests].count(message)

    fake_ai.script = lambda body: Script([f"Answer number {asked(body['message'])} ", "to: ", body["message"]])
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "pick a number")
    first = assistant(page, 0)
    await wait_status(first, "complete")
    assert await first.locator(".content").inner_text() == "Answer number 1 to: pick a number"
    await first.get_by_role("button", name="Regenerate").click()
    # the new answer takes the old one's place; the old one is a version behind it
    second = page.locator("#messages > li.assistant", has=page.locator(".branch-position", has_text="2 / 2"))
    await second.wait_for()
    await wait_status(second, "complete")
    assert await second.locator(".content").inner_text() == "Answer number 2 to: pick a number"
    assert asked("pick a number") == 2
    assert await page.locator("#messages > li.assistant").count() == 1
    assert await second.get_by_role("button", name="Regenerate").count() == 1
    assert await page.locator("#messages > li.user").count() == 1
    await second.get_by_role("button", name="Previous version").click()
    await assistant(page).locator(".content", has_text="Answer number 1 to: pick a number").wait_for()


async def test_failed_answer_is_marked_with_its_error(live, page, fake_ai):
    fake_ai.script = lambda body: Script(["Half an ", "answer"], fail="the model is overloaded")
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "this will fail")
    answer = assistant(page)
    await wait_status(answer, "failed")
    assert "the model is overloaded" in await answer.locator(".message-error").text_content()
    assert await answer.locator(".status").text_content() == "failed"
    await answer.get_by_role("button", name="Regenerate").wait_for()


async def test_streamed_markup_renders_as_text(live, page, fake_ai):
    await register_in_browser(page, live)
    await new_chat(page)
    evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    await send(page, evil)
    answer = assistant(page)
    await wait_status(answer, "complete")
    assert evil in await answer.locator(".content").inner_text()
    assert await page.locator("#messages img, #messages script").count() == 0
    assert await page.evaluate("window.__xss") is None


async def test_idle_socket_is_kept_alive_with_pings(live, page, fake_ai):
    frames = {"sent": [], "received": []}

    def on_socket(ws):
        ws.on("framesent", lambda payload: frames["sent"].append(payload))
        ws.on("framereceived", lambda payload: frames["received"].append(payload))

    page.on("websocket", on_socket)
    await page.clock.install()
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "hello")
    await wait_status(assistant(page), "complete")
    assert any('"stream_request"' in f for f in frames["sent"])
    assert not any('"ping"' in f for f in frames["sent"])
    await page.clock.fast_forward(25_000)
    await page.wait_for_function("() => true")
    async with asyncio.timeout(30):
        while not any('"pong"' in f for f in frames["received"]):
            await asyncio.sleep(0.05)
    pings = [f for f in frames["sent"] if '"ping"' in f]
    assert pings and any('"pong"' in f for f in frames["received"])
    assert await page.locator("#connection").text_content() == ""


async def test_answers_still_arrive_when_websockets_are_blocked(live, page, fake_ai):
    fake_ai.script = lambda body: Script(words(30), delay=0.05)

    async def refuse(ws):
        await ws.close(code=1011, reason="blocked by a proxy")

    await page.route_web_socket("**/ws/**", refuse)
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Are you there?")
    answer = assistant(page)
    await page.locator("#connection").filter(has_text="onnecting").wait_for()
    await wait_status(answer, "complete")
    assert await answer.locator(".content").inner_text() == "".join(words(30)).strip()
    assert await answer.locator(".sources li").count() == 2
