"""Sharing, folders, pins, archive, feedback, presets, code blocks and copy
buttons, search highlighting and the shortcut list, in headless Chromium."""

import json

import aiohttp
import pytest
from support.fake_ai_service import Script, split_pieces

from .pages import assistant, new_chat, register_in_browser, screenshot, send, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser

CODE = 'def greet(name):\n    # say hello\n    return f"Hello {name}" if name else None\n'
CODE_ANSWER = f"Here you go:\n\n```python\n{CODE}```\n\nThat is all."


def answer_with(fake_ai, text: str) -> None:
    fake_ai.script = lambda body: Script(split_pieces(text, 40), delay=0.01, sources=[])


async def finished(page) -> None:
    await page.locator("#messages > li.assistant[data-status=complete]").last.wait_for()


async def make_chats(page, live, *titles) -> dict[str, str]:
    rest = await rest_of(page, live)
    ids = {}
    for title in titles:
        status, chat = await rest.call("POST", "/api/chats", json={"title": title})
        assert status == 201
        ids[title] = chat["id"]
    await page.reload()
    await page.locator("#chat-list button").first.wait_for()
    return ids


async def organise(page, *, folder=None, new_folder=None, pinned=None, archived=None) -> None:
    await page.get_by_role("button", name="Organise", exact=True).click()
    dialog = page.locator("#organise-dialog")
    await dialog.wait_for(state="visible")
    if new_folder:
        await dialog.get_by_label("New folder").fill(new_folder)
        await dialog.get_by_role("button", name="Add folder").click()
        await dialog.locator("#organise-folders li", has_text=new_folder).wait_for()
    if folder:
        await dialog.get_by_label("Folder", exact=True).select_option(label=folder)
    if pinned is not None:
        await dialog.get_by_label("Pin to the top of the list").set_checked(pinned)
    if archived is not None:
        await dialog.get_by_label("Archive (hide from the list)").set_checked(archived)
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")


async def test_a_shared_link_opens_without_an_account_and_stops_when_revoked(live, page, browser, fake_ai):
    answer_with(fake_ai, "An answer with <script>alert(1)</script> in it and **bold** text.")
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "What should I share?")
    await finished(page)
    await page.get_by_role("button", name="Share", exact=True).click()
    dialog = page.locator("#share-dialog")
    await dialog.get_by_role("button", name="Create link").click()
    field = dialog.locator(".share-url").first
    await field.wait_for()
    url = await field.input_value()
    assert "/s/" in url
    await screenshot(page, "share-dialog.png")

    stranger = await browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    shared = await stranger.new_page()
    resp = await shared.goto(url)
    assert resp.status == 200 and resp.headers["x-robots-tag"].startswith("noindex")
    await shared.locator(".question", has_text="What should I share?").wait_for()
    assert await shared.locator("strong", has_text="bold").count() == 1
    assert await shared.locator("script").count() == 0
    await screenshot(shared, "shared-page-phone.png")

    await dialog.get_by_role("button", name="Close").click()
    await page.get_by_role("button", name="Shared links").click()
    links = page.locator("#links-dialog")
    await links.locator("li", has_text="What should I share?").wait_for()
    assert await links.locator(".share-url").input_value() == url
    await links.get_by_role("button", name="Revoke").click()
    await links.get_by_text("You have not shared any chat.").wait_for()
    assert (await shared.goto(url)).status == 404
    await stranger.close()
    assert not unexpected_errors(page), page.errors


async def test_folders_group_the_list_and_pins_come_first(live, page):
    await register_in_browser(page, live)
    ids = await make_chats(page, live, "Plain one", "Work chat", "Pinned chat")
    await page.locator(f'#chat-list button[data-chat-id="{ids["Work chat"]}"]').click()
    await organise(page, new_folder="Work", folder="Work")
    await page.locator(f'#chat-list button[data-chat-id="{ids["Pinned chat"]}"]').click()
    await organise(page, pinned=True)
    titles = await page.locator("#chat-list .group-title").all_text_contents()
    assert titles == ["Pinned", "Work", "Chats"]
    order = await page.locator("#chat-list button").all_text_contents()
    assert order == ["Pinned chat", "Work chat", "Plain one"]
    work = page.locator(".chat-group", has=page.locator(".group-title", has_text="Work"))
    assert await work.locator("button").all_text_contents() == ["Work chat"]
    status, chat = await (await rest_of(page, live)).call("GET", f"/api/chats/{ids['Work chat']}")
    assert chat["folder_id"] and chat["pinned"] is False
    await screenshot(page, "folders-desktop.png")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.get_by_role("button", name="Show chats").click()
    await page.wait_for_function("() => document.getElementById('sidebar').getBoundingClientRect().left >= 0")
    await screenshot(page, "folders-phone.png")
    await page.get_by_role("button", name="Close chat list").click()
    await page.get_by_role("button", name="Organise", exact=True).click()
    await screenshot(page, "organise-phone.png")
    assert not unexpected_errors(page), page.errors


# the chat list as groups: [heading or null, sorted titles]
LIST_GROUPS = """() => {
  const out = [];
  for (const li of document.querySelectorAll('#chat-list > li')) {
    if (li.classList.contains('chat-group')) {
      out.push([li.querySelector('.group-title').textContent,
                [...li.querySelectorAll('button')].map((b) => b.textContent).sort()]);
    } else {
      if (!out.length || out[out.length - 1][0] !== null) out.push([null, []]);
      out[out.length - 1][1].push(li.textContent);
      out[out.length - 1][1].sort();
    }
  }
  return JSON.stringify(out);
}"""


async def list_shows(page, *groups) -> None:
    want = json.dumps([[heading, sorted(titles)] for heading, titles in groups], separators=(",", ":"))
    try:
        await page.wait_for_function(f"(want) => ({LIST_GROUPS})() === want", arg=want)
    except Exception:
        raise AssertionError(f"the list shows {await page.evaluate(LIST_GROUPS)}, not {want}") from None


async def test_every_tab_follows_pins_folders_and_archive(live, page):
    await register_in_browser(page, live)
    ids = await make_chats(page, live, "Plain one", "Moving chat", "Shown elsewhere")
    # a second tab of the same user, showing another chat
    other = await page.context.new_page()
    other.set_default_timeout(15000)
    other.errors = []
    other.on("pageerror", lambda exc: other.errors.append(str(exc)))
    await other.goto(f"{live.url}#/chat/{ids['Shown elsewhere']}")
    rest_two = ["Plain one", "Shown elsewhere"]
    await list_shows(other, (None, ["Moving chat", *rest_two]))

    await page.locator(f'#chat-list button[data-chat-id="{ids["Moving chat"]}"]').click()
    await organise(page, new_folder="Work", folder="Work")
    await list_shows(other, ("Work", ["Moving chat"]), ("Chats", rest_two))
    await organise(page, pinned=True)
    await list_shows(other, ("Pinned", ["Moving chat"]), ("Chats", rest_two))
    await organise(page, archived=True)
    await list_shows(other, (None, rest_two))

    rest = await rest_of(page, live)
    moving = f"/api/chats/{ids['Moving chat']}"
    assert (await rest.call("PATCH", moving, json={"archived": False}))[0] == 200
    await list_shows(other, ("Pinned", ["Moving chat"]), ("Chats", rest_two))
    assert (await rest.call("PATCH", moving, json={"pinned": False}))[0] == 200
    await list_shows(other, ("Work", ["Moving chat"]), ("Chats", rest_two))
    status, folders = await rest.call("GET", "/api/folders")
    [work] = folders["items"]
    assert (await rest.call("PATCH", f"/api/folders/{work['id']}", json={"name": "Projects"}))[0] == 200
    await list_shows(other, ("Projects", ["Moving chat"]), ("Chats", rest_two))
    assert (await rest.call("DELETE", f"/api/folders/{work['id']}"))[0] == 204
    await list_shows(other, (None, ["Moving chat", *rest_two]))
    assert (await rest.call("DELETE", moving))[0] == 204
    await list_shows(other, (None, rest_two))
    assert other.url.endswith(ids["Shown elsewhere"])
    assert not other.errors and not unexpected_errors(page), (other.errors, page.errors)


async def test_archived_chats_have_a_view_of_their_own(live, page):
    await register_in_browser(page, live)
    ids = await make_chats(page, live, "Keep", "Old news")
    await page.locator(f'#chat-list button[data-chat-id="{ids["Old news"]}"]').click()
    await organise(page, archived=True)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#chat-list button')].map(b => b.textContent).join() === 'Keep'")
    await page.get_by_role("button", name="Archived chats").click()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#chat-list button')].map(b => b.textContent).join() === 'Old news'")
    await page.get_by_role("button", name="Back to chats").click()
    await page.locator("#chat-list button", has_text="Keep").wait_for()
    assert not unexpected_errors(page), page.errors


async def test_thumbs_and_a_comment_are_kept_with_the_answer(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Rate me")
    await finished(page)
    await assistant(page).get_by_role("button", name="Good answer").click()
    await assistant(page).locator("button.thumb.chosen[aria-label='Good answer']").wait_for()
    await assistant(page).get_by_role("button", name="Add a comment").click()
    await page.get_by_label("What was good or wrong?").fill("Clear and short")
    await page.get_by_role("button", name="Save comment").click()
    await assistant(page).get_by_role("button", name="Edit comment").wait_for()
    message_id = await assistant(page).get_attribute("data-message-id")
    status, message = await (await rest_of(page, live)).call("GET", f"/api/messages/{message_id}")
    assert message["feedback"]["rating"] == 1 and message["feedback"]["comment"] == "Clear and short"
    await page.reload()
    await assistant(page).locator("button.thumb.chosen[aria-label='Good answer']").wait_for()
    await assistant(page).get_by_role("button", name="Good answer").click()
    await assistant(page).locator("button.thumb.chosen").wait_for(state="detached")
    assert not unexpected_errors(page), page.errors


async def test_a_chat_starts_from_a_preset(live, page):
    await register_in_browser(page, live)
    await page.get_by_role("button", name="Presets", exact=True).click()
    dialog = page.locator("#presets-dialog")
    await dialog.get_by_label("Name").fill("Pirate")
    await dialog.get_by_label("System prompt").fill("Answer like a pirate.")
    await dialog.get_by_label("Temperature").fill("0.4")
    await dialog.get_by_role("button", name="Save preset").click()
    row = dialog.locator("#preset-list li", has_text="Pirate")
    await row.wait_for()
    await screenshot(page, "presets-dialog.png")
    before = page.url
    await row.get_by_role("button", name="Start chat").click()
    await page.wait_for_function("(u) => location.href !== u && location.hash.startsWith('#/chat/')", arg=before)
    chat_id = page.url.rsplit("/", 1)[-1]
    status, chat = await (await rest_of(page, live)).call("GET", f"/api/chats/{chat_id}")
    assert chat["system_prompt"] == "Answer like a pirate." and chat["temperature"] == 0.4
    assert not unexpected_errors(page), page.errors


async def test_a_preset_with_a_tool_and_a_knowledge_file_starts_a_chat_with_both(live, page):
    await register_in_browser(page, live)
    form = aiohttp.FormData()
    form.add_field("file", b"Pears are pruned in February.", filename="orchard.txt", content_type="text/plain")
    status, file = await (await rest_of(page, live)).call("POST", "/api/files", data=form)
    assert status == 201
    await page.get_by_role("button", name="Presets", exact=True).click()
    dialog = page.locator("#presets-dialog")
    await dialog.get_by_label("Name").fill("Gardener")
    await dialog.get_by_role("group", name="Tools").get_by_label("builtin:search_chats").check()
    await dialog.get_by_role("group", name="Knowledge").get_by_label("orchard.txt").check()
    await dialog.get_by_role("button", name="Save preset").click()
    row = dialog.locator("#preset-list li", has_text="Gardener")
    await row.get_by_text("tools: builtin:search_chats, 1 knowledge file").wait_for()
    before = page.url
    await row.get_by_role("button", name="Start chat").click()
    await page.wait_for_function("(u) => location.href !== u && location.hash.startsWith('#/chat/')", arg=before)
    chat_id = page.url.rsplit("/", 1)[-1]
    status, chat = await (await rest_of(page, live)).call("GET", f"/api/chats/{chat_id}")
    assert (chat["tools"], chat["knowledge"]) == (["builtin:search_chats"], [file["id"]])
    await page.locator("#chat-settings").click()
    settings = page.locator("#settings-dialog")
    assert await settings.get_by_role("group", name="Tools").get_by_label("builtin:search_chats").is_checked()
    assert await settings.get_by_role("group", name="Knowledge").get_by_label("orchard.txt").is_checked()
    assert not unexpected_errors(page), page.errors


async def test_a_dialog_taller_than_the_window_keeps_its_close_button_in_view(live, page):
    await page.set_viewport_size({"width": 390, "height": 844})
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    for name in ("Code reviewer", "Translator", "Pirate"):
        assert (await rest.call("POST", "/api/presets", json={"name": name, "system_prompt": "Be brief."}))[0] == 201
    await page.reload()
    await page.get_by_role("button", name="Show chats").click()
    await page.get_by_role("button", name="Presets", exact=True).click()
    dialog = page.locator("#presets-dialog")
    await dialog.wait_for(state="visible")
    assert await dialog.evaluate("(d) => d.scrollHeight > d.clientHeight")
    close = dialog.get_by_role("button", name="Close")
    box = await close.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 844
    await close.click()
    await dialog.wait_for(state="hidden")
    assert not unexpected_errors(page), page.errors


async def test_code_blocks_are_highlighted_and_copy_buttons_copy(live, page, fake_ai):
    answer_with(fake_ai, CODE_ANSWER)
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url.rstrip("/"))
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Show me code")
    await finished(page)
    block = assistant(page).locator(".code-block")
    assert await block.locator(".code-lang").text_content() == "python"
    assert await block.locator(".tok-k").all_text_contents() == ["def", "return", "if", "else"]
    assert await block.locator(".tok-c").all_text_contents() == ["# say hello"]
    assert await block.locator(".tok-s").all_text_contents() == ['"Hello {name}"']
    assert await block.locator(".tok-l").all_text_contents() == ["None"]
    assert await block.locator("code").text_content() == CODE.rstrip("\n")
    await block.get_by_role("button", name="Copy code").click()
    await block.get_by_role("button", name="Copied").wait_for()
    assert await page.evaluate("navigator.clipboard.readText()") == CODE.rstrip("\n")
    await assistant(page).locator(".message-actions").get_by_role("button", name="Copy", exact=True).click()
    await page.wait_for_function("async (t) => (await navigator.clipboard.readText()) === t", arg=CODE_ANSWER)
    await screenshot(page, "code-block-desktop.png")
    await page.set_viewport_size({"width": 390, "height": 844})
    await screenshot(page, "code-block-phone.png")
    assert not unexpected_errors(page), page.errors


async def test_search_shows_plain_text_with_the_match_marked(live, page, fake_ai):
    answer_with(fake_ai, "Tomatoes like **basil** and `marigolds`.")
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Companions for tomatoes?")
    await finished(page)
    await page.get_by_label("Search messages").fill("basil")
    await page.get_by_label("Search messages").press("Enter")
    snippet = page.locator("#search-list .hit-snippet").first
    await snippet.wait_for()
    assert (await snippet.text_content()).startswith("Tomatoes like basil and marigolds")
    assert await snippet.locator("mark").all_text_contents() == ["basil"]
    assert not unexpected_errors(page), page.errors


PLAIN = "async ([src, text]) => (await import(src)).plainText(text)"


@pytest.mark.parametrize("snippet, plain", [
    ("def top_words(path) -> list[tuple[str, int]]:", "def top_words(path) -> list[tuple[str, int]]:"),
    ("in a file [1], and in the browser [2].", "in a file [1], and in the browser [2]."),
    ("```python\nfrom x import y\n```", "from x import y"),
    ("see [the docs](https://example.com/a) and ![a logo](x.png)", "see the docs and a logo"),
    ("## Title\n- *one* and __two__, a * b and 2*3", "Title one and two, a * b and 2*3"),
])
async def test_search_snippets_lose_markdown_but_keep_identifiers_and_brackets(client_only, page, snippet, plain):
    await page.goto(client_only)
    src = await page.evaluate(
        "() => document.querySelector('script[type=module]').src.replace('main.js', 'snippets.js')")
    assert await page.evaluate(PLAIN, [src, snippet]) == plain


async def test_question_mark_lists_the_shortcuts(live, page):
    await register_in_browser(page, live)
    await page.locator("body").press("?")
    dialog = page.locator("#shortcuts-dialog")
    await dialog.wait_for(state="visible")
    assert "New chat" in await dialog.text_content()
    await screenshot(page, "shortcuts-desktop.png")
    await dialog.get_by_role("button", name="Close").click()
    await page.keyboard.press("Control+k")
    assert await page.evaluate("document.activeElement.id") == "search-input"
    assert not unexpected_errors(page), page.errors


TOKENS = """async ([src, text, lang]) => {
  const { tokens } = await import(src);
  const started = performance.now();
  const parts = tokens(text, lang);
  return { joined: parts.map((p) => p[1]).join(""), ms: performance.now() - started,
           classes: parts.filter((p) => p[0]).map((p) => [p[0], p[1]]) };
}"""


async def run_tokens(page, text: str, lang: str) -> dict:
    src = await page.evaluate(
        "() => document.querySelector('script[type=module]').src.replace('main.js', 'highlight.js')")
    return await page.evaluate(TOKENS, [src, text, lang])


@pytest.mark.parametrize("text, lang, expected", [
    ("const s = 'it\\'s'; // done", "js", [["tok-k", "const"], ["tok-s", "'it\\'s'"], ["tok-c", "// done"]]),
    ("x = '''a\n'b'\n''' # c", "python", [["tok-s", "'''a\n'b'\n'''"], ["tok-c", "# c"]]),
    ("SELECT 1 FROM t -- why", "sql", [["tok-k", "SELECT"], ["tok-n", "1"], ["tok-k", "FROM"], ["tok-c", "-- why"]]),
    ("/* never closed", "c", [["tok-c", "/* never closed"]]),
    ("plain words", "no-such-language", []),
])
async def test_the_highlighter_marks_tokens_and_keeps_every_character(client_only, page, text, lang, expected):
    await page.goto(client_only)
    result = await run_tokens(page, text, lang)
    assert result["joined"] == text
    assert result["classes"] == expected


async def test_the_highlighter_is_linear_on_hostile_input(client_only, page):
    await page.goto(client_only)
    for piece, lang in (('"\\', "js"), ("/*", "c"), ("'''", "python"), ("a1.", "rust"), ("-- \n", "sql")):
        small = await run_tokens(page, piece * 20_000, lang)
        large = await run_tokens(page, piece * 160_000, lang)
        assert large["joined"] == piece * 160_000
        # eight times the input may cost about eight times the time, never the square of it
        assert large["ms"] < max(40 * small["ms"], 500), (piece, small["ms"], large["ms"])
