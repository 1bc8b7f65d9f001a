"""The safe Markdown subset, and the page at phone and desktop widths, in
light and dark, reachable by keyboard, with no CSP violation."""

import re

import pytest
from support.fake_ai_service import Script

from .pages import assistant, new_chat, register_in_browser, screenshot, send, unexpected_errors

pytestmark = pytest.mark.browser

RENDER = """async ([src, text]) => {
  const { renderMarkdown } = await import(src);
  const box = document.createElement("div");
  box.append(renderMarkdown(text));
  return box.innerHTML;
}"""


async def markdown(page, text: str) -> str:
    src = await page.evaluate(
        "() => document.querySelector('script[type=module]').src.replace('main.js', 'markdown.js')")
    return await page.evaluate(RENDER, [src, text])


@pytest.mark.parametrize("source, html", [
    ("Hello *world* and **bold** and `x < y`",
     "<p>Hello <em>world</em> and <strong>bold</strong> and <code>x &lt; y</code></p>"),
    ("para one\nline two\n\npara two", "<p>para one<br>line two</p><p>para two</p>"),
    ("- a\n- b *c*\n\n1. one\n2. two",
     "<ul><li>a</li><li>b <em>c</em></li></ul><ol><li>one</li><li>two</li></ol>"),
    ("- outer\n  - inner\n- next", "<ul><li>outer<ul><li>inner</li></ul></li><li>next</li></ul>"),
    ("```python\nif a < b:\n    print('<b>')\n```",
     '<pre><code class="language-python">if a &lt; b:\n    print(\'&lt;b&gt;\')</code></pre>'),
    ("```\nunclosed while streaming", "<pre><code>unclosed while streaming</code></pre>"),
    ("[docs](https://example.com/a?b=1&c=2)",
     '<p><a href="https://example.com/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank">docs</a></p>'),
    ("see https://example.com/x.", '<p>see <a href="https://example.com/x" rel="noopener noreferrer nofollow" '
                                   'target="_blank">https://example.com/x</a>.</p>'),
    ("[click](javascript:alert(1))", "<p>click</p>"),
    ("[click](  JaVaScRiPt:alert(1))", "<p>click</p>"),
    ("[x](data:text/html;base64,PHNjcmlwdD4=)", "<p>x</p>"),
    ("[x](vbscript:msgbox)", "<p>x</p>"),
    ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
    ('<img src=x onerror="alert(1)">', '<p>&lt;img src=x onerror="alert(1)"&gt;</p>'),
    ("**[a](https://e.com/\" onmouseover=\"x)**",  # quotes cannot leave the attribute
     '<p><strong><a href="https://e.com/%22%20onmouseover=%22x" rel="noopener noreferrer nofollow" '
     'target="_blank">a</a></strong></p>'),
    ("snake_case_name and 2 * 3 * 4", "<p>snake_case_name and 2 * 3 * 4</p>"),
    ("\\*not emphasis\\*", "<p>*not emphasis*</p>"),
    ("# Title\n> quoted *text*", "<h3>Title</h3><blockquote><p>quoted <em>text</em></p></blockquote>"),
])
async def test_markdown_subset(client_only, page, source, html):
    await page.goto(client_only)
    assert await markdown(page, source) == html


async def test_markdown_never_creates_active_content(client_only, page):
    await page.goto(client_only)
    nasty = "\n".join([
        "<iframe src=javascript:alert(1)></iframe>", "<svg onload=alert(1)>", "`<b>`", "[<img src=x>](https://ok.example)",
        "<a href='javascript:alert(1)'>x</a>", "![img](https://example.com/x.png)",
        "```\n</code></pre><script>x</script>\n```",
    ])
    html = await markdown(page, nasty)
    for tag in ("<iframe", "<svg", "<img", "<script", "<b>"):
        assert tag not in html, (tag, html)
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs and all(h.startswith("https://") for h in hrefs), hrefs


async def test_phone_width_dark_mode_and_keyboard(live, browser):
    context = await browser.new_context(viewport={"width": 390, "height": 800}, color_scheme="dark",
                                        is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(15000)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        await register_in_browser(page, live)
        background = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(17, 20, 24)"  # the dark palette
        sidebar = page.locator("#sidebar")
        assert not await sidebar.is_visible()  # off-canvas on a phone
        menu = page.get_by_role("button", name="Show chats")
        await menu.click()
        await page.get_by_role("button", name="+ New chat").wait_for(state="visible")
        await page.get_by_role("button", name="+ New chat").click()
        await page.wait_for_function("() => location.hash.startsWith('#/chat/')")
        await page.wait_for_function("() => !document.querySelector('#sidebar').classList.contains('open')")
        # the conversation fits the width: nothing scrolls sideways
        await send(page, "A message typed on a phone " + "long " * 40)
        await page.locator("#messages > li.user").wait_for()
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390
        await screenshot(page, "phone-dark.png")
        # Escape closes the sidebar again, and focus can reach it by keyboard
        await menu.focus()
        await page.keyboard.press("Enter")
        await page.get_by_role("button", name="+ New chat").wait_for(state="visible")
        await page.keyboard.press("Escape")
        await page.wait_for_function("() => !document.querySelector('#sidebar').classList.contains('open')")
        assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        await context.close()


async def test_every_control_is_labelled_and_reachable(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "hello")
    await page.locator("#messages > li.assistant").wait_for()
    unnamed = await page.evaluate("""() => {
      const named = (el) => (el.getAttribute('aria-label') || el.textContent || '').trim() ||
        (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.getAttribute('title');
      return [...document.querySelectorAll('button, input, textarea, select, a[href]')]
        .filter((el) => el.offsetParent !== null && el.type !== 'file' && !named(el))
        .map((el) => el.outerHTML);
    }""")
    assert unnamed == []
    # Tab walks from the message box to the send button; Enter sends, Shift+Enter is a new line
    box = page.get_by_label("Message", exact=True)
    await box.focus()
    await page.keyboard.type("line one")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("line two")
    assert await box.input_value() == "line one\nline two"
    await page.keyboard.press("Enter")
    await page.locator("#messages > li.user").nth(1).wait_for()
    assert await page.locator("#messages > li.user .content").nth(1).inner_text() == "line one\nline two"
    assert await box.input_value() == ""
    focusable = []
    await page.evaluate("() => document.activeElement.blur()")
    for _ in range(30):
        await page.keyboard.press("Tab")
        focusable.append(
            await page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()"))
    for expected in ("new-chat", "search-input", "logout", "rename-chat", "delete-chat", "attach", "composer-input"):
        assert expected in focusable, (expected, focusable)
    assert not unexpected_errors(page), page.errors


BRACKETS = 100_000


async def test_an_answer_of_100000_brackets_renders_at_once_and_links_still_work(live, page, fake_ai):
    """Each "[" used to scan to the end of the text for its "]": 100,000 of
    them (within the message length) took 12.6 s in Chromium, the page frozen.
    The answer must now be on screen within 6 s of being sent, generous for a
    slow machine and well below the quadratic time; with it, the page still
    answers and a Markdown link after the brackets is still a link."""
    answer = "[" * BRACKETS + " then [the docs](https://example.com/docs)"
    fake_ai.script = lambda body: Script([answer], delay=0.01)
    await register_in_browser(page, live)
    await new_chat(page)
    await send(page, "brackets please", wait=False)
    link = assistant(page).locator("a", has_text="the docs")
    await link.wait_for(timeout=6000)
    assert await link.get_attribute("href") == "https://example.com/docs"
    text = await assistant(page).locator(".content").inner_text()
    assert text == "[" * BRACKETS + " then the docs"
    await new_chat(page)
    assert not unexpected_errors(page), page.errors
