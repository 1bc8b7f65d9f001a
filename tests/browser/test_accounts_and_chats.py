"""Accounts, the chat list, rename, delete, search: in headless Chromium."""

import datetime as dt

import jwt
import pytest
from support.fake_ai_service import Script

from .pages import new_chat, register_in_browser, send, token_of, unexpected_errors
from .rest import rest_of

pytestmark = pytest.mark.browser


async def test_register_logout_and_login_again(live, page):
    email = await register_in_browser(page, live)
    assert await page.locator("#user-name").text_content() == email.split("@")[0]
    await page.get_by_role("button", name="Log out").click()
    form = page.locator("#login-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill("wrong password")
    await form.get_by_role("button", name="Log in").click()
    await form.get_by_role("alert").filter(has_text="wrong email or password").wait_for()
    await form.get_by_label("Password").fill("correct horse")
    await form.get_by_role("button", name="Log in").click()
    await page.locator("#app-view").wait_for(state="visible")
    assert await token_of(page)
    assert not unexpected_errors(page), page.errors


async def test_a_chat_address_opened_in_a_new_tab_shows_the_chat(live, page):
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    _, chat = await rest.call("POST", "/api/chats", json={"title": "Opened twice"})
    address = f"{live.url}#/chat/{chat['id']}"
    await page.goto(address)
    await page.locator("#chat-title").filter(has_text="Opened twice").wait_for()

    tab = await page.context.new_page()
    await tab.goto(address)
    await tab.locator("#chat-title").filter(has_text="Opened twice").wait_for()
    assert await tab.locator("#app-view").is_visible()
    assert await tab.locator("#auth-view").is_hidden()
    assert not unexpected_errors(page), page.errors


async def test_logging_out_in_one_tab_logs_out_every_tab_and_forgets_the_token(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    tab = await page.context.new_page()
    await tab.goto(page.url)
    await tab.locator("#app-view").wait_for(state="visible")

    await tab.get_by_role("button", name="Log out").click()
    await tab.locator("#auth-view").wait_for(state="visible")
    await page.locator("#auth-view").wait_for(state="visible")
    assert await page.locator("#app-view").is_hidden()
    for each in (page, tab):
        assert await token_of(each) is None
        assert await each.evaluate("sessionStorage.length + localStorage.length") == 0
    # a new tab, and a reload of an old one, ask to log in
    third = await page.context.new_page()
    await third.goto(live.url)
    await third.locator("#auth-view").wait_for(state="visible")
    await page.reload()
    await page.locator("#auth-view").wait_for(state="visible")


async def test_logging_in_in_one_tab_logs_in_a_tab_showing_the_login_form(live, page):
    email = await register_in_browser(page, live)
    await page.get_by_role("button", name="Log out").click()
    other = await page.context.new_page()
    await other.goto(live.url)
    await other.locator("#auth-view").wait_for(state="visible")

    form = page.locator("#login-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill("correct horse")
    await form.get_by_role("button", name="Log in").click()
    await page.locator("#app-view").wait_for(state="visible")
    await other.locator("#app-view").wait_for(state="visible")
    assert await other.locator("#user-name").text_content() == email.split("@")[0]
    assert await token_of(other) == await token_of(page)


async def test_registration_errors_come_from_the_server(live, page):
    email = await register_in_browser(page, live)
    await page.get_by_role("button", name="Log out").click()
    await page.get_by_role("tab", name="Create account").click()
    form = page.locator("#register-form")
    await form.get_by_label("Email").fill(email.upper())
    await form.get_by_label("Password").fill("correct horse")
    await form.get_by_role("button", name="Create account").click()
    await form.get_by_role("alert").filter(has_text="already exists").wait_for()


async def test_expired_token_sends_the_user_back_to_login(live, page):
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    _, me = await rest.call("GET", "/api/users/me")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    expired = jwt.encode({"sub": me["id"], "iat": past, "exp": past + dt.timedelta(minutes=5)},
                         live.settings.JWT_SECRET, algorithm="HS256")

    # a token that runs out while the page is open: the client notices by itself. The page's clock
    # is moved past the expiry once the page shows the app, however long that took.
    soon = jwt.encode({"sub": me["id"], "exp": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)},
                      live.settings.JWT_SECRET, algorithm="HS256")
    await page.clock.install()
    await page.evaluate("(t) => localStorage.setItem('chatserver.token', t)", soon)
    await page.reload()
    await page.locator("#app-view").wait_for(state="visible")
    message = page.locator("#auth-message")
    assert await message.is_hidden()
    await page.clock.fast_forward("11:00")
    await message.wait_for(state="visible")
    assert "session has expired" in (await message.text_content())

    # a page opened with a token that has already expired
    await register_in_browser(page, live)
    await page.evaluate("(t) => localStorage.setItem('chatserver.token', t)", expired)
    await page.reload()
    await message.wait_for(state="visible")
    assert "session has expired" in (await message.text_content())
    assert await page.locator("#app-view").is_hidden()
    assert await token_of(page) is None

    # a token the server rejects although the client cannot tell (wrong signature)
    await register_in_browser(page, live)
    forged = jwt.encode({"sub": me["id"], "exp": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)},
                        "some-other-secret-of-enough-length-here", algorithm="HS256")
    await page.evaluate("(t) => localStorage.setItem('chatserver.token', t)", forged)
    await page.reload()
    await message.wait_for(state="visible")
    assert "session has expired" in (await message.text_content())


async def test_new_chat_rename_delete(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    chat_id = page.url.rsplit("/", 1)[-1]
    entry = page.locator(f'#chat-list button[data-chat-id="{chat_id}"]')
    assert await entry.text_content() == "New chat"
    assert await entry.get_attribute("aria-current") == "page"

    await page.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Title").fill("Holiday plans")
    await dialog.get_by_role("button", name="Rename").click()
    await entry.filter(has_text="Holiday plans").wait_for()
    assert await page.locator("#chat-title").text_content() == "Holiday plans"
    rest = await rest_of(page, live)
    assert (await rest.call("GET", f"/api/chats/{chat_id}"))[1]["title"] == "Holiday plans"

    # cancelling the confirmation keeps the chat; confirming deletes it
    await page.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Cancel").click()
    assert await entry.count() == 1
    await page.get_by_role("button", name="Delete").click()
    assert "Holiday plans" in await dialog.text_content()
    await dialog.get_by_role("button", name="Delete").click()
    await entry.wait_for(state="detached")
    assert (await rest.call("GET", f"/api/chats/{chat_id}"))[0] == 404
    assert not unexpected_errors(page), page.errors


async def test_chat_list_is_most_recent_first_and_loads_more_on_scroll(live, page):
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    for n in range(45):
        status, _ = await rest.call("POST", "/api/chats", json={"title": f"Chat number {n:02d}"})
        assert status == 201
    await page.reload()
    buttons = page.locator("#chat-list button")
    await buttons.first.wait_for()
    assert await buttons.first.text_content() == "Chat number 44"
    assert await buttons.count() == 30
    # scrolling the list to its end loads the next page
    await page.locator("#chat-list-sentinel").scroll_into_view_if_needed()
    await page.wait_for_function("() => document.querySelectorAll('#chat-list button').length === 45")
    titles = await buttons.all_text_contents()
    assert titles == [f"Chat number {n:02d}" for n in range(44, -1, -1)]


async def test_search_jumps_to_the_message(live, page):
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    _, target = await rest.call("POST", "/api/chats", json={"title": "Zoo notes"})
    _, posted = await rest.call("POST", f"/api/chats/{target['id']}/messages",
                                json={"content": "The quokka is a small marsupial"})
    for n in range(3):
        _, other = await rest.call("POST", "/api/chats", json={"title": f"Other {n}"})
        await rest.call("POST", f"/api/chats/{other['id']}/messages", json={"content": f"Unrelated words {n}"})
    await page.reload()
    await page.locator("#chat-list button").first.wait_for()
    await page.get_by_role("searchbox", name="Search messages").fill("quokka")
    await page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator("#search-list button")
    await results.first.wait_for()
    assert await results.count() == 1
    assert "quokka" in await results.first.text_content()
    assert "Zoo notes" in await results.first.text_content()
    await results.first.click()
    await page.wait_for_function("(id) => location.hash === '#/chat/' + id", arg=target["id"])
    message = page.locator(f'#msg-{posted["user_message"]["id"]}')
    await message.wait_for()
    assert "highlight" in (await message.get_attribute("class"))
    assert await page.locator("#chat-title").text_content() == "Zoo notes"


async def test_nothing_from_the_server_becomes_markup(live, page):
    await register_in_browser(page, live)
    await new_chat(page)
    evil = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> **still text**'
    await send(page, evil)
    user = page.locator("#messages > li.user").last
    await user.wait_for()
    assert await user.locator(".content").inner_text() == evil
    assert await page.locator("#messages img, #messages script").count() == 0
    # the chat title (taken from the message) and the sidebar are text too
    await page.reload()
    await page.locator("#messages > li.user").first.wait_for()
    assert await page.locator("#messages > li.user .content").inner_text() == evil
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("img[src=x], script:not([src])").count() == 0


async def test_older_messages_load_on_scroll_up(live, page, fake_ai):
    fake_ai.script = lambda body: Script([f"ok {body['message']}"], delay=0.01)
    await register_in_browser(page, live)
    rest = await rest_of(page, live)
    _, chat = await rest.call("POST", "/api/chats", json={"title": "Long history"})
    for n in range(40):
        status, _ = await rest.call("POST", f"/api/chats/{chat['id']}/messages", json={"content": f"message {n:02d}"})
        assert status == 201
    await page.goto(f"{live.url}#/chat/{chat['id']}")
    users = page.locator("#messages > li.user")
    await users.first.wait_for()
    # one page of 30 rows (user + assistant): the newest 15 questions, at the bottom
    assert await users.count() == 15
    assert await users.last.locator(".content").inner_text() == "message 39"
    newest = await page.locator("#scroller").evaluate("(s) => s.scrollHeight - s.scrollTop - s.clientHeight")
    assert newest < 5
    anchor = page.locator(f"#{await users.first.get_attribute('id')}")
    scroller = page.locator("#scroller")
    for expected in (30, 40):
        await scroller.evaluate("(s) => { s.scrollTop = 0; }")
        await page.wait_for_function("(n) => document.querySelectorAll('#messages > li.user').length === n",
                                     arg=expected)
        if expected == 30:
            # the view stays where it was: the older messages went in above it
            top = await anchor.evaluate("(el) => el.getBoundingClientRect().top")
            box = await scroller.evaluate("(s) => s.getBoundingClientRect().top")
            assert 0 <= top - box < 400, (top, box)
    texts = await users.locator(".content").all_inner_texts()
    assert texts == [f"message {n:02d}" for n in range(40)]
    assert await page.locator("#load-older").is_hidden()


async def test_server_errors_become_readable_notices(live, page):
    await register_in_browser(page, live)
    await new_chat(page)

    async def unavailable(route):
        await route.fulfill(status=503, json={"error": "the database is not reachable", "code": "unavailable"})

    await page.route("**/api/chats/*/messages", unavailable)
    await send(page, "will this arrive?", wait=False)
    notice = page.locator("#notices .notice.error")
    await notice.filter(has_text="Could not send the message: the database is not reachable").wait_for()
    # the text is kept so that it can be sent again
    assert await page.get_by_label("Message", exact=True).input_value() == "will this arrive?"
    await page.unroute("**/api/chats/*/messages", unavailable)

    # a proxy's HTML error page is not shown as such, and the page stays usable
    async def bad_gateway(route):
        await route.fulfill(status=502, content_type="text/html", body="<html><body>Bad Gateway</body></html>")

    await page.route("**/api/chats?*", bad_gateway)
    await page.reload()
    await notice.filter(has_text="Could not load your chats: The server answered 502").wait_for()
    assert await page.locator("#app-view").is_visible()
    await page.unroute("**/api/chats?*", bad_gateway)
    await page.get_by_label("Message", exact=True).fill("now it works")
    await page.keyboard.press("Enter")
    await page.locator("#messages > li.user").filter(has_text="now it works").wait_for()
