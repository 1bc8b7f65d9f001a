"""Citations: an answer's [n] is a link that opens source n, the passage of a
knowledge file with its file name and page, highlighted."""

import aiohttp
import pytest
from support.fake_ai_service import Script, split_pieces
from support.sample_files import pdf_bytes

from .pages import assistant, new_chat, register_in_browser, send, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser

PAGES = ["The orchard has forty apple trees.", "Pruning of the pear trees happens every February."]


def citing(body: dict) -> Script:
    """Answers citing the first passage it was given, as a model would."""
    sources = [{"title": p["file_name"], "url": "", "content": p["text"], "file_id": p["file_id"],
                "page": p["page"], "passage_id": p["passage_id"]} for p in body["passages"]]
    return Script(split_pieces("The pear trees are pruned in February [1]."), delay=0.02, sources=sources)


async def test_a_citation_opens_its_passage_with_file_and_page(start_live, fake_ai, page):
    fake_ai.script = citing
    live = await start_live()
    await register_in_browser(page, live)
    await new_chat(page)
    rest = await rest_of(page, live)
    form = aiohttp.FormData()
    form.add_field("file", pdf_bytes(PAGES), filename="orchard.pdf", content_type="application/pdf")
    status, file = await rest.call("POST", "/api/files", data=form)
    assert status == 201
    chat_id = page.url.rsplit("/", 1)[-1]
    for _ in range(300):
        status, current = await rest.call("GET", f"/api/files/{file['id']}")
        if current["status"] == "ready":
            break
        await page.wait_for_timeout(100)
    status, _ = await rest.call("PATCH", f"/api/chats/{chat_id}", json={"knowledge": [file["id"]]})
    assert status == 200
    await send(page, "When are the pear trees pruned?")
    answer = assistant(page)
    await answer.and_(page.locator('[data-status="complete"]')).wait_for(timeout=30000)
    link = answer.locator("a.citation")
    assert await link.text_content() == "[1]"
    await link.click()
    cited = answer.locator(".sources li.cited")
    await cited.wait_for()
    assert "page 2" in await cited.inner_text()
    assert await cited.locator(".snippet").is_visible()
    assert PAGES[1] in await cited.locator(".snippet").inner_text()
    assert not unexpected_errors(page), page.errors


async def test_a_chats_knowledge_files_are_picked_in_its_settings(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    rest = await rest_of(page, live)
    ids = {}
    for name, data, kind in (("orchard.txt", b"Pear trees are pruned in February.", "text/plain"),
                             ("cider.txt", b"The press is cleaned after each harvest.", "text/plain")):
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=kind)
        status, file = await rest.call("POST", "/api/files", data=form)
        assert status == 201
        ids[name] = file["id"]
    chat_id = page.url.rsplit("/", 1)[-1]
    dialog = page.locator("#settings-dialog")
    knowledge = dialog.get_by_role("group", name="Knowledge")
    await page.get_by_role("button", name="Settings").click()
    await dialog.wait_for(state="visible")
    assert sorted(t.strip() for t in await knowledge.locator("label").all_inner_texts()) == ["cider.txt", "orchard.txt"]
    await knowledge.get_by_label("orchard.txt").check()
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")
    status, chat = await rest.call("GET", f"/api/chats/{chat_id}")
    assert chat["knowledge"] == [ids["orchard.txt"]]
    # opened again, the dialog shows the chat's choice, which can be undone
    await page.get_by_role("button", name="Settings").click()
    assert await knowledge.get_by_label("orchard.txt").is_checked()
    assert not await knowledge.get_by_label("cider.txt").is_checked()
    await knowledge.get_by_label("orchard.txt").uncheck()
    await dialog.get_by_role("button", name="Save").click()
    await dialog.wait_for(state="hidden")
    status, chat = await rest.call("GET", f"/api/chats/{chat_id}")
    assert chat["knowledge"] == []
    assert not unexpected_errors(page), page.errors
