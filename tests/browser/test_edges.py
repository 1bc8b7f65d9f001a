"""The web client's rough edges a newcomer noticed, one test each: the rename
dialog, Regenerate after a reload, the tab label, the attachment buttons, the
favicon; and the docs pages that load nothing from elsewhere."""

import pytest

from .pages import new_chat, register_in_browser, send, unexpected_errors

pytestmark = pytest.mark.browser


async def test_rename_dialog_offers_the_title_the_chat_got_from_its_first_message(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "Plan the garden party")
    await page.wait_for_function("() => document.getElementById('chat-title').textContent === 'Plan the garden party'")
    await page.get_by_role("button", name="Rename").click()
    assert await page.locator("#dialog-input").input_value() == "Plan the garden party"


async def test_after_a_reload_only_the_last_answer_offers_regenerate(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    for text in ("first question", "second question", "third question"):
        await send(page, text)
        await page.locator("#messages > li.assistant[data-status=complete]").nth(
            await page.locator("#messages > li.user").count() - 1).wait_for()
    await page.reload()
    await page.locator("#messages > li.assistant").nth(2).wait_for()
    regenerate = page.locator("#messages > li.assistant button.regenerate")
    await regenerate.first.wait_for()
    assert await regenerate.count() == 1
    assert await page.locator("#messages > li.assistant").last.locator("button.regenerate").count() == 1


@pytest.mark.parametrize("width", [1024, 1920])
async def test_the_create_account_tab_label_stays_on_one_line_at_desktop_width(live, page, width):
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(live.url)
    tab = page.get_by_role("tab", name="Create account")
    await tab.wait_for()
    # a font wider than Chromium's default here, like the ones the label wrapped in
    lines = await tab.evaluate("""(el) => {
      for (const t of document.querySelectorAll(".tabs [role=tab]")) t.style.letterSpacing = ".12em";
      const range = document.createRange();
      range.selectNodeContents(el);
      return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
    }""")
    assert lines == 1


async def test_an_attachments_download_and_remove_buttons_do_not_touch(live, page, tmp_path):
    await register_in_browser(page, live)
    await new_chat(page)
    notes = tmp_path / "notes.txt"
    notes.write_text("The budget is 42 euros.\n")
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Attach files").click()
    await (await chooser.value).set_files([str(notes)])
    card = page.locator("#attachments > li.attachment")
    download = card.get_by_role("button", name="Download notes.txt")
    remove = card.get_by_role("button", name="Remove notes.txt")
    await download.wait_for()
    await remove.wait_for()
    a, b = await download.bounding_box(), await remove.bounding_box()
    side_by_side = b["x"] >= a["x"] + a["width"] + 4
    stacked = b["y"] >= a["y"] + a["height"] + 4
    assert side_by_side or stacked, (a, b)


async def test_the_browser_finds_a_favicon(live, page):
    response = await page.goto(live.url + "favicon.ico")
    assert response.status == 200 and response.headers["content-type"] == "image/x-icon"


@pytest.mark.parametrize("path, ready", [("docs", ".swagger-ui .info"), ("redoc", ".api-info")])
async def test_docs_pages_load_nothing_from_elsewhere(live, page, path, ready):
    sent, blocked = [], []
    page.on("requestfinished", lambda request: sent.append(request.url))
    page.on("requestfailed", lambda request: (blocked if request.failure == "csp" else sent)
            .append(request.url))
    await page.goto(live.url + path)
    await page.locator(ready).first.wait_for()
    assert [u for u in sent if not u.startswith((live.url, "data:", "blob:"))] == []
    assert await page.evaluate("getComputedStyle(document.body).margin") == "0px"
    # the browser refuses ReDoc's CDN logo before sending anything, and says so
    assert [e for e in unexpected_errors(page) if "Content Security Policy" not in e] == []
