"""Tools in the web client, in headless Chromium: the tool picker of the
chat's settings, an answer's tool call shown live as a collapsible step, and
an MCP server's tool picked and called from the web client."""

import asyncio
import json
import sys

import pytest
from support.paths import TESTS_DIR
from support.tool_models import FakeToolModel, add_test_tools_to_app, calls, say, tool_results

from .pages import assistant, new_chat, register_in_browser, send, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser


def hang_then_answer(body: dict) -> dict:
    if not tool_results(body):
        return calls(("hang", {"text": "the weather"}))
    return say("The tool gave up, so here is my own answer.")


async def live_with_tool_model(start_live, fake_service, **settings):
    model = FakeToolModel(hang_then_answer)
    server = await fake_service(model.app)
    live = await start_live(AI_BACKEND="openai", OPENAI_BASE_URL=str(server.make_url("/v1")),
                            OPENAI_MODEL="tool-model", **settings)
    return live


async def test_the_settings_dialog_picks_the_chats_tools(start_live, fake_service, page):
    live = await live_with_tool_model(start_live, fake_service)
    await register_in_browser(page, live)
    await new_chat(page)
    await page.get_by_role("button", name="Settings").click()
    dialog = page.locator("#settings-dialog")
    await dialog.wait_for(state="visible")
    await dialog.get_by_label("builtin:search_chats").check()
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")
    chat_id = page.url.rsplit("/", 1)[-1]
    status, chat = await (await rest_of(page, live)).call("GET", f"/api/chats/{chat_id}")
    assert (status, chat["tools"]) == (200, ["builtin:search_chats"])
    await page.get_by_role("button", name="Settings").click()
    assert await dialog.get_by_label("builtin:search_chats").is_checked()
    assert not await dialog.get_by_label("builtin:read_file").is_checked()
    assert not unexpected_errors(page), page.errors


async def test_a_tool_call_shows_live_as_a_step_and_stays_after_a_reload(start_live, fake_service, page):
    live = await live_with_tool_model(start_live, fake_service, TOOL_TIMEOUT_SECONDS=3)
    tools = add_test_tools_to_app(live.app)
    await register_in_browser(page, live)
    await new_chat(page)
    chat_id = page.url.rsplit("/", 1)[-1]
    status, _ = await (await rest_of(page, live)).call("PATCH", f"/api/chats/{chat_id}", json={"tools": ["test:hang"]})
    assert status == 200
    await send(page, "What is the weather?")
    step = assistant(page).locator(".step")
    await step.and_(page.locator("[data-status=running]")).wait_for()
    assert tools.started == ["hang"]
    assert "running" in await step.locator("summary").inner_text()
    await step.and_(page.locator("[data-status=failed]")).wait_for(timeout=15000)
    await step.locator("summary").click()
    assert '"text": "the weather"' in await step.locator(".step-arguments").inner_text()
    assert "did not answer within 3 s" in await step.locator(".step-error").inner_text()
    await assistant(page).get_by_text("here is my own answer").wait_for()
    await page.reload()
    reloaded = assistant(page).locator(".step")
    await reloaded.wait_for()
    assert "test:hang" in await reloaded.locator("summary").inner_text()
    assert not unexpected_errors(page), page.errors


def add_then_answer(body: dict) -> dict:
    if not tool_results(body):
        return calls(("calc_add", {"a": 19, "b": 23}))
    return say(f"It is {tool_results(body)[0]['content']}.")


async def test_an_mcp_servers_tool_is_picked_and_called_from_the_web_client(start_live, fake_service, page):
    model = FakeToolModel(add_then_answer)
    server = await fake_service(model.app)
    calc = str(TESTS_DIR / "mcp_fixtures" / "calc_server.py")
    live = await start_live(AI_BACKEND="openai", OPENAI_BASE_URL=str(server.make_url("/v1")), OPENAI_MODEL="tool-model",
                            MCP_SERVERS=json.dumps([{"name": "calc", "command": sys.executable,
                                                     "args": [calc, "stdio"]}]))
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    async with asyncio.timeout(30):
        while not any(t["id"] == "mcp:calc:add" and t["available"]
                      for t in (await rest.call("GET", "/api/tools"))[1]["items"]):
            await asyncio.sleep(0.1)
    await new_chat(page)
    await page.get_by_role("button", name="Settings").click()
    dialog = page.locator("#settings-dialog")
    await dialog.get_by_label("mcp:calc:add").check()
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")
    await send(page, "What is 19 + 23? Use the tool.")
    step = assistant(page).locator(".step")
    await step.and_(page.locator("[data-status=done]")).wait_for()
    await step.locator("summary").click()
    assert json.loads(await step.locator(".step-arguments").inner_text()) == {"a": 19, "b": 23}
    assert await step.locator(".step-output").inner_text() == "42"
    await assistant(page).get_by_text("It is 42.").wait_for()
    assert not unexpected_errors(page), page.errors
