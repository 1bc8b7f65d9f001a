"""Attachments: button and drag-and-drop, upload progress, previews fetched
with the token, downloads, and the server's message for over-size files."""

import io

import pytest
from PIL import Image

from .pages import new_chat, register_in_browser, screenshot, send, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser

RECORD_PROGRESS = """() => {
  window.__progress = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const bars = r.target.querySelectorAll ? r.target.querySelectorAll('progress') : [];
      for (const bar of bars) window.__progress.push(Number(bar.value));
      if (r.target.tagName === 'PROGRESS') window.__progress.push(Number(r.target.value));
    }
  }).observe(document.getElementById('attachments'), { subtree: true, childList: true, attributes: true });
}"""


def png_bytes(width: int = 640, height: int = 480) -> bytes:
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 255 // width, y * 255 // height, 160) for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def test_upload_with_progress_preview_and_download(live, page, tmp_path):
    await register_in_browser(page, live)
    await new_chat(page)
    chat_id = page.url.rsplit("/", 1)[-1]
    await page.evaluate(RECORD_PROGRESS)
    # slow the upload down so that progress is visible
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 3_000_000})

    image = tmp_path / "gradient.png"
    image.write_bytes(png_bytes())
    notes = tmp_path / "notes.txt"
    notes.write_text("Meeting notes\nThe budget is 42 euros.\n" + "filler line\n" * 200_000)
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Attach files").click()
    await (await chooser.value).set_files([str(image), str(notes)])

    chips = page.locator("#attachments > li.attachment")
    await chips.nth(1).wait_for()
    # progress bars while uploading, then the status until the preview is ready
    await page.locator("#attachments progress").first.wait_for(state="attached")
    await page.wait_for_function("() => [...document.querySelectorAll('#attachments > li')].every("
                                 "(li) => li.dataset.state === 'ready')", timeout=30000)
    progress = await page.evaluate("() => window.__progress")
    assert any(0 < p < 100 for p in progress), progress
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    picture = chips.nth(0)
    thumb = picture.locator("img.thumb")
    await thumb.wait_for()
    assert (await thumb.get_attribute("src")).startswith("blob:")
    assert await thumb.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert await thumb.get_attribute("alt") == "Preview of gradient.png"
    text = chips.nth(1)
    assert "Meeting notes" in await text.locator(".excerpt").text_content()

    # the files go with the message and stay on it
    await send(page, "What is the budget?")
    user = page.locator("#messages > li.user").last
    await user.locator(".attachment").nth(1).wait_for()
    assert await chips.count() == 0
    rest = await rest_of(page, live)
    _, listing = await rest.call("GET", f"/api/chats/{chat_id}/messages")
    assert len(listing["items"][0]["file_ids"]) == 2
    card = user.locator('.attachment[data-status="ready"]').filter(has_text="notes.txt")
    await card.wait_for()
    async with page.expect_download() as download_info:
        await card.get_by_role("button", name="Download notes.txt").click()
    download = await download_info.value
    assert download.suggested_filename == "notes.txt"
    saved = tmp_path / "downloaded.txt"
    await download.save_as(saved)
    assert saved.read_bytes() == notes.read_bytes()
    await user.locator("img.thumb").wait_for()

    # after a reload the attachments are fetched again, previews included
    await page.reload()
    await page.locator("#messages > li.user .attachment img.thumb").wait_for()
    await screenshot(page, "attachments.png")
    assert not unexpected_errors(page), page.errors


async def test_drag_and_drop_and_over_size_refusal(start_live, page):
    live = await start_live(MAX_UPLOAD_SIZE=2000)
    await register_in_browser(page, live)
    await new_chat(page)
    await page.evaluate("""() => {
      const drop = (name, size) => {
        const data = new DataTransfer();
        data.items.add(new File(["x".repeat(size)], name, { type: "text/plain" }));
        const view = document.getElementById("chat-view");
        view.dispatchEvent(new DragEvent("dragenter", { dataTransfer: data, bubbles: true, cancelable: true }));
        view.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
      };
      drop("small.txt", 2000);
      drop("big.txt", 2001);
    }""")
    chips = page.locator("#attachments > li.attachment")
    small = chips.filter(has_text="small.txt")
    big = chips.filter(has_text="big.txt")
    await page.wait_for_function(
        "() => document.querySelector('#attachments > li:nth-child(1)').dataset.state === 'ready'")
    await big.get_by_role("alert").filter(has_text="larger than the limit of 2000 bytes").wait_for()
    assert await big.get_attribute("data-state") == "failed"
    assert await page.locator("#drop-overlay").is_hidden()
    # a refused file can be removed; the good one is sent
    await big.get_by_role("button", name="Remove big.txt").click()
    await big.wait_for(state="detached")
    assert await small.count() == 1
    await send(page, "one file")
    await page.locator("#messages > li.user .attachment").wait_for()
    assert await page.locator("#messages > li.user .attachment").count() == 1


async def test_attaching_without_a_chat_starts_one(live, page, tmp_path):
    await register_in_browser(page, live)
    notes = tmp_path / "first.txt"
    notes.write_text("the very first file")
    await page.locator("#file-input").set_input_files(str(notes))
    await page.wait_for_function("() => location.hash.startsWith('#/chat/')")
    chat_id = page.url.rsplit("/", 1)[-1]
    await page.wait_for_function("() => document.querySelector('#attachments > li')?.dataset.state === 'ready'")
    rest = await rest_of(page, live)
    _, listing = await rest.call("GET", f"/api/files?chat_id={chat_id}")
    assert [f["name"] for f in listing["items"]] == ["first.txt"]
