"""Share links: a snapshot of the shown branch behind an unguessable token,
listed and revoked by its owner, read as JSON or as a script-free HTML page
by anyone holding the link."""

import re

from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.fake_ai_service import callback_path
from support.message_tree import edit, setup, switch, turn
from support.messages import idle, post_message
from support.served_app import db_of

from chatserver.data import users

DANGEROUS = ('<script>alert("x")</script> and [a link](javascript:alert(1)) and '
             '<img src=x onerror=alert(2)> and [fine](https://example.com/doc)')


async def share(client, account, chat_id) -> dict:
    resp = await client.post(f"/api/chats/{chat_id}/shares", headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def shared(client, token) -> dict:
    resp = await client.get(f"/api/shared/{token}")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_share_holds_the_shown_branch_as_it_is_now(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    await turn(client, service, account, chat["id"], "q1", "a1")
    await turn(client, service, account, chat["id"], "q2", "a2")
    link = await share(client, account, chat["id"])
    assert link["message_count"] == 4 and link["url"].endswith(f"/s/{link['token']}")
    assert len(link["token"]) >= 40
    body = await shared(client, link["token"])
    assert body["title"] == chat["title"]
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")]
    assert set(body["messages"][0]) == {"role", "content", "sources", "created_at"}


async def test_later_messages_are_not_shared(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    await turn(client, service, account, chat["id"], "q1", "a1")
    link = await share(client, account, chat["id"])
    await turn(client, service, account, chat["id"], "q2 after sharing", "a2")
    body = await shared(client, link["token"])
    assert [m["content"] for m in body["messages"]] == ["q1", "a1"]


async def test_other_branches_are_not_shared_and_a_switch_later_changes_nothing(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    first = await turn(client, service, account, chat["id"], "q1", "a1")
    await turn(client, service, account, chat["id"], "q2", "a2")
    edited = await edit(client, account, first["user_message"]["id"], "q1 edited")
    path = callback_path(await service.request_for(edited["assistant_message"]["id"]))
    await idle(client)
    assert (await client.post(path, json={"type": "complete", "content": "a1 edited"})).status == 200
    link = await share(client, account, chat["id"])
    assert (await switch(client, account, chat["id"], first["user_message"]["id"])).status == 200
    body = await shared(client, link["token"])
    assert [m["content"] for m in body["messages"]] == ["q1 edited", "a1 edited"]


async def test_an_unfinished_answer_is_left_out(client, user, chat):
    await post_message(client, user, chat["id"], "still being answered")
    link = await share(client, user, chat["id"])
    body = await shared(client, link["token"])
    assert [(m["role"], m["content"]) for m in body["messages"]] == [("user", "still being answered")]


async def test_sources_keep_only_their_titles_and_urls(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    posted = await post_message(client, account, chat["id"], "q")
    path = callback_path(await service.request_for(posted["assistant_message"]["id"]))
    await idle(client)
    source = {"title": "Manual", "url": "https://example.com/m", "content": "a private passage"}
    assert (await client.post(path, json={"type": "complete", "content": "a", "sources": [source]})).status == 200
    body = await shared(client, (await share(client, account, chat["id"]))["token"])
    assert body["messages"][1]["sources"] == [{"title": "Manual", "url": "https://example.com/m"}]


async def test_an_empty_chat_cannot_be_shared(client, user, chat):
    resp = await client.post(f"/api/chats/{chat['id']}/shares", headers=user.headers)
    assert resp.status == 409
    assert_error(await resp.json(), "empty_chat")


async def test_another_users_chat_cannot_be_shared(client, user, other_user, chat):
    await post_message(client, user, chat["id"], "mine")
    resp = await client.post(f"/api/chats/{chat['id']}/shares", headers=other_user.headers)
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_shares_are_listed_for_their_owner_only(client, user, other_user, chat):
    await post_message(client, user, chat["id"], "q")
    link = await share(client, user, chat["id"])
    mine = await (await client.get("/api/shares", headers=user.headers)).json()
    assert [s["id"] for s in mine["items"]] == [link["id"]]
    assert mine["items"][0]["url"] == link["url"] and mine["items"][0]["chat_id"] == chat["id"]
    theirs = await (await client.get("/api/shares", headers=other_user.headers)).json()
    assert theirs["items"] == []


async def test_a_revoked_link_stops_at_once(client, user, chat):
    await post_message(client, user, chat["id"], "q")
    link = await share(client, user, chat["id"])
    assert (await client.delete(f"/api/shares/{link['id']}", headers=user.headers)).status == 204
    for path in (f"/api/shared/{link['token']}", f"/s/{link['token']}"):
        resp = await client.get(path)
        assert resp.status == 404
        assert_error(await resp.json(), "not_found")
    assert (await client.delete(f"/api/shares/{link['id']}", headers=user.headers)).status == 404


async def test_another_user_cannot_revoke_a_share(client, user, other_user, chat):
    await post_message(client, user, chat["id"], "q")
    link = await share(client, user, chat["id"])
    resp = await client.delete(f"/api/shares/{link['id']}", headers=other_user.headers)
    assert resp.status == 404
    assert (await client.get(f"/api/shared/{link['token']}")).status == 200


async def test_unknown_and_malformed_tokens_are_404(client):
    for token in ("x" * 43, "short", "not%20a%20token"):
        for path in (f"/api/shared/{token}", f"/s/{token}"):
            resp = await client.get(path)
            assert resp.status == 404, path
            assert_error(await resp.json(), "not_found")


async def test_deleting_the_chat_takes_its_links_down(client, user, chat):
    await post_message(client, user, chat["id"], "q")
    link = await share(client, user, chat["id"])
    assert (await client.delete(f"/api/chats/{chat['id']}", headers=user.headers)).status == 204
    assert (await client.get(f"/api/shared/{link['token']}")).status == 404


async def test_a_disabled_accounts_links_stop_working(client, user, chat):
    await post_message(client, user, chat["id"], "q")
    link = await share(client, user, chat["id"])
    assert await users.set_disabled(db_of(client), user.email, True)
    assert (await client.get(f"/api/shared/{link['token']}")).status == 404


async def test_the_page_is_readable_without_an_account_and_noindex(client, user, chat):
    await post_message(client, user, chat["id"], "What is *this*?")
    link = await share(client, user, chat["id"])
    resp = await client.get(f"/s/{link['token']}")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert resp.headers["X-Robots-Tag"].startswith("noindex")
    assert resp.headers["Cache-Control"] == "no-store"
    assert "script-src" not in resp.headers["Content-Security-Policy"]
    page = await resp.text()
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert "What is *this*?" in page
    json_resp = await client.get(f"/api/shared/{link['token']}")
    assert json_resp.headers["X-Robots-Tag"].startswith("noindex")


async def test_the_page_labels_the_roles_for_whoever_reads_it(client, user, chat):
    await post_message(client, user, chat["id"], "Who asked this?")
    await idle(client)
    link = await share(client, user, chat["id"])
    page = await (await client.get(f"/s/{link['token']}")).text()
    # the reader is not the one who asked: no "You"
    assert re.findall(r'<h2 class="who">([^<]*)</h2>', page) == ["User", "Assistant"]


async def test_the_page_never_shows_the_owners_email(client, chat, user):
    await post_message(client, user, chat["id"], "q")
    link = await share(client, user, chat["id"])
    page = await (await client.get(f"/s/{link['token']}")).text()
    body = await (await client.get(f"/api/shared/{link['token']}")).text()
    for text in (page, body):
        assert user.email not in text and user.id not in text and chat["id"] not in text


async def test_markup_in_messages_is_inert_on_the_page(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    await turn(client, service, account, chat["id"], DANGEROUS, DANGEROUS + "\n\n```js\nif (a < b) {}\n```")
    link = await share(client, account, chat["id"])
    page = await (await client.get(f"/s/{link['token']}")).text()
    assert "<script>" not in page and "<img" not in page
    assert "javascript:" not in re.findall(r'href="([^"]*)"', page).__str__()
    assert page.count("&lt;script&gt;") == 2
    assert '<a href="https://example.com/doc" rel="nofollow noopener noreferrer">fine</a>' in page
    assert "if (a &lt; b) {}" in page


async def test_the_page_of_a_chat_titled_with_markup_escapes_the_title(client):
    account = await register(client)
    chat = await create_chat(client, account, title="<b>bold</b> & co")
    await post_message(client, account, chat["id"], "q")
    link = await share(client, account, chat["id"])
    page = await (await client.get(f"/s/{link['token']}")).text()
    assert "<title>&lt;b&gt;bold&lt;/b&gt; &amp; co</title>" in page


async def test_sharing_again_makes_a_new_snapshot_and_leaves_the_old_link_as_it_was(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    await turn(client, service, account, chat["id"], "q1", "a1")
    first = await share(client, account, chat["id"])
    await turn(client, service, account, chat["id"], "q2", "a2")
    second = await share(client, account, chat["id"])
    assert second["token"] != first["token"] and second["message_count"] == 4
    assert [m["content"] for m in (await shared(client, second["token"]))["messages"]] == ["q1", "a1", "q2", "a2"]
    assert [m["content"] for m in (await shared(client, first["token"]))["messages"]] == ["q1", "a1"]
