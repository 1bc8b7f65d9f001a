"""The issue's "done when": with nothing configured (the built-in backend), a
new user registers, uploads a PDF, asks about it and reads the answer."""

import pytest
from support.sample_files import pdf_bytes

from .pages import assistant, new_chat, register_in_browser, send, unexpected_errors

pytestmark = pytest.mark.browser


async def test_new_user_asks_about_an_uploaded_pdf_with_the_builtin_backend(start_live, page, tmp_path):
    live = await start_live(AI_SERVICE_URL="", AI_BACKEND="builtin")
    await register_in_browser(page, live)
    await new_chat(page)
    pdf = tmp_path / "garden.pdf"
    pdf.write_bytes(pdf_bytes(["The greenhouse tomatoes need watering every Tuesday morning."]))
    async with page.expect_file_chooser() as chooser:
        await page.get_by_role("button", name="Attach files").click()
    await (await chooser.value).set_files(str(pdf))
    chip = page.locator("#attachments > li.attachment")
    await page.wait_for_function("() => document.querySelector('#attachments > li')?.dataset.state === 'ready'",
                                 timeout=30000)
    assert "greenhouse tomatoes" in await chip.locator(".excerpt").text_content()
    await send(page, "When do the tomatoes need watering?")
    answer = assistant(page)
    await answer.and_(page.locator('[data-status="complete"]')).wait_for(timeout=30000)
    assert "Tuesday" in await answer.locator(".content").inner_text()
    assert "garden.pdf" in await answer.locator(".sources").inner_text()
    # a reload shows the same finished answer
    text = await answer.locator(".content").inner_text()
    await page.reload()
    await assistant(page).and_(page.locator('[data-status="complete"]')).wait_for()
    assert await assistant(page).locator(".content").inner_text() == text
    assert not unexpected_errors(page), page.errors
