"""Organising chats: folders, pinned chats first, archived chats in a view of
their own; the chat list's pages stay exact with pins first."""

import pytest
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.ws_frames import receive, subscribed


async def make_folder(client, account, name="Work") -> dict:
    resp = await client.post("/api/folders", json={"name": name}, headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def patch_chat(client, account, chat_id, **changes) -> dict:
    resp = await client.patch(f"/api/chats/{chat_id}", json=changes, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def listed(client, account, **query) -> list[str]:
    resp = await client.get("/api/chats", params=query, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return [c["title"] for c in (await resp.json())["items"]]


async def walk(client, account, limit, **query) -> list[str]:
    titles, cursor = [], None
    while True:
        params = {"limit": str(limit), **query, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/api/chats", params=params, headers=account.headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        titles += [c["title"] for c in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return titles


async def test_folders_are_created_listed_renamed_and_deleted(client, user):
    folder = await make_folder(client, user, "Work")
    await make_folder(client, user, "anything else")
    body = await (await client.get("/api/folders", headers=user.headers)).json()
    assert [f["name"] for f in body["items"]] == ["anything else", "Work"]
    resp = await client.patch(f"/api/folders/{folder['id']}", json={"name": "Job"}, headers=user.headers)
    assert resp.status == 200 and (await resp.json())["name"] == "Job"
    assert (await client.delete(f"/api/folders/{folder['id']}", headers=user.headers)).status == 204
    body = await (await client.get("/api/folders", headers=user.headers)).json()
    assert [f["name"] for f in body["items"]] == ["anything else"]


async def test_a_folder_name_is_taken_whatever_its_case(client, user):
    await make_folder(client, user, "Work")
    resp = await client.post("/api/folders", json={"name": "work"}, headers=user.headers)
    assert resp.status == 409
    assert_error(await resp.json(), "folder_exists")


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "   "}, {"name": 3}, {"name": "x" * 101}])
async def test_a_bad_folder_name_is_422(client, user, body):
    resp = await client.post("/api/folders", json=body, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json())


async def test_another_users_folder_is_404_and_cannot_hold_my_chat(client, user, other_user, chat):
    theirs = await make_folder(client, other_user)
    for method, body in (("PATCH", {"name": "mine now"}), ("DELETE", None)):
        resp = await client.request(method, f"/api/folders/{theirs['id']}", json=body, headers=user.headers)
        assert resp.status == 404
        assert_error(await resp.json(), "not_found")
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"folder_id": theirs["id"]}, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "unknown_folder")
    mine = await (await client.get("/api/folders", headers=user.headers)).json()
    assert mine["items"] == []


async def test_a_chat_moves_into_a_folder_and_the_list_filters_by_it(client, user):
    folder = await make_folder(client, user)
    inside = await create_chat(client, user, "inside")
    await create_chat(client, user, "outside")
    moved = await patch_chat(client, user, inside["id"], folder_id=folder["id"])
    assert moved["folder_id"] == folder["id"]
    assert await listed(client, user, folder_id=folder["id"]) == ["inside"]
    assert await listed(client, user, folder_id="none") == ["outside"]
    assert await listed(client, user) == ["outside", "inside"]


async def test_a_chat_can_be_created_in_a_folder_and_pinned(client, user):
    folder = await make_folder(client, user)
    resp = await client.post("/api/chats", json={"title": "t", "folder_id": folder["id"], "pinned": True},
                             headers=user.headers)
    assert resp.status == 201
    body = await resp.json()
    assert body["folder_id"] == folder["id"] and body["pinned"] is True and body["archived"] is False


async def test_deleting_a_folder_moves_its_chats_out_and_tells_their_sockets(client, user):
    folder = await make_folder(client, user)
    chat = await create_chat(client, user, "kept")
    await patch_chat(client, user, chat["id"], folder_id=folder["id"])
    ws = await subscribed(client, user, chat["id"])
    assert (await client.delete(f"/api/folders/{folder['id']}", headers=user.headers)).status == 204
    event = await receive(ws)
    assert event["type"] == "chat_updated" and event["chat"]["folder_id"] is None
    assert await listed(client, user, folder_id="none") == ["kept"]
    await ws.close()


async def test_pinned_chats_come_first(client, user):
    for title in ("old", "pinned", "new"):
        made = await create_chat(client, user, title)
        if title == "pinned":
            pinned = made
    await patch_chat(client, user, pinned["id"], pinned=True)
    assert await listed(client, user) == ["pinned", "new", "old"]
    assert await listed(client, user, pinned="true") == ["pinned"]
    assert await listed(client, user, pinned="false") == ["new", "old"]


async def test_pages_walk_every_chat_once_with_pins_first(client, user):
    made = [await create_chat(client, user, f"c{i}") for i in range(7)]
    for chat in made[1::3]:
        await patch_chat(client, user, chat["id"], pinned=True)
    expected = ["c4", "c1"] + [f"c{i}" for i in (6, 5, 3, 2, 0)]
    for limit in (1, 2, 3):
        assert await walk(client, user, limit) == expected


async def test_archived_chats_are_left_out_unless_asked_for(client, user):
    chat = await create_chat(client, user, "old news")
    await create_chat(client, user, "current")
    archived = await patch_chat(client, user, chat["id"], archived=True)
    assert archived["archived"] is True
    assert await listed(client, user) == ["current"]
    assert await listed(client, user, archived="true") == ["old news"]
    assert (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).status == 200
    await patch_chat(client, user, chat["id"], archived=False)
    assert await listed(client, user) == ["current", "old news"]


async def test_pinning_does_not_make_a_chat_more_recent(client, user):
    chat = await create_chat(client, user)
    pinned = await patch_chat(client, user, chat["id"], pinned=True)
    assert pinned["updated_at"] == chat["updated_at"]


async def test_a_pin_change_tells_the_chats_sockets(client, user, chat):
    ws = await subscribed(client, user, chat["id"])
    await patch_chat(client, user, chat["id"], pinned=True)
    event = await receive(ws)
    assert event["type"] == "chat_updated" and event["chat"]["pinned"] is True
    await ws.close()


@pytest.mark.parametrize("query", [{"pinned": "maybe"}, {"archived": "2"}, {"folder_id": "nope"},
                                   {"cursor": "W10"}])
async def test_bad_list_filters_are_422(client, user, query):
    resp = await client.get("/api/chats", params=query, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json())


@pytest.mark.parametrize("body", [{"pinned": None}, {"archived": "yes"}, {"folder_id": "not-a-uuid"}])
async def test_bad_placement_is_422(client, user, chat, body):
    resp = await client.patch(f"/api/chats/{chat['id']}", json=body, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json())


async def test_another_user_cannot_pin_or_archive_my_chat(client, user, chat):
    stranger = await register(client)
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"pinned": True}, headers=stranger.headers)
    assert resp.status == 404
    assert (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).status == 200


async def test_an_old_pinned_chat_is_on_the_first_page(client, user):
    old = await create_chat(client, user, "old but pinned")
    for i in range(5):
        await create_chat(client, user, f"newer {i}")
    await patch_chat(client, user, old["id"], pinned=True)
    resp = await client.get("/api/chats", params={"limit": "2"}, headers=user.headers)
    assert [c["title"] for c in (await resp.json())["items"]][0] == "old but pinned"


async def test_an_archived_pinned_chat_is_in_the_archived_view(client, user):
    chat = await create_chat(client, user, "pinned then archived")
    await patch_chat(client, user, chat["id"], pinned=True, archived=True)
    assert await listed(client, user) == []
    assert await listed(client, user, archived="true") == ["pinned then archived"]


async def test_an_archived_chat_keeps_its_folder_and_comes_back_into_it(client, user):
    folder = await make_folder(client, user)
    chat = await create_chat(client, user, "filed")
    await patch_chat(client, user, chat["id"], folder_id=folder["id"], archived=True)
    assert await listed(client, user, folder_id=folder["id"]) == []
    assert await listed(client, user, folder_id=folder["id"], archived="true") == ["filed"]
    back = await patch_chat(client, user, chat["id"], archived=False)
    assert back["folder_id"] == folder["id"]
    assert await listed(client, user, folder_id=folder["id"]) == ["filed"]


@pytest.mark.parametrize("query", ["folder_id=", "pinned=", "archived="])
async def test_a_filter_without_a_value_is_422_as_the_schema_says(client, user, query):
    resp = await client.get(f"/api/chats?{query}", headers=user.headers)
    assert resp.status == 422


# ---- the chat list's socket: every tab's list follows (docs/websocket.md, The chat list)


async def list_socket(client, account):
    """A /ws/chats socket that has subscribed to the user's list events."""
    ws = await client.ws_connect(f"/ws/chats?token={account.token}")
    await ws.send_json({"type": "subscribe"})
    assert await receive(ws) == {"type": "subscribed"}
    return ws


async def test_placing_a_chat_tells_every_list_socket_of_its_owner(client, user, chat):
    ws = await list_socket(client, user)
    folder = await make_folder(client, user)
    assert await receive(ws) == {"type": "folder_created", "folder": folder}
    for changes in ({"pinned": True}, {"folder_id": folder["id"]}, {"archived": True}, {"archived": False},
                    {"folder_id": None}, {"pinned": False}):
        await patch_chat(client, user, chat["id"], **changes)
        event = await receive(ws)
        assert event["type"] == "chat_updated" and event["chat"]["id"] == chat["id"]
        assert {k: event["chat"][k] for k in changes} == changes
    await ws.close()


async def test_folder_changes_tell_every_list_socket(client, user, chat):
    ws = await list_socket(client, user)
    folder = await make_folder(client, user, "Old")
    await receive(ws)
    await patch_chat(client, user, chat["id"], folder_id=folder["id"])
    await receive(ws)
    resp = await client.patch(f"/api/folders/{folder['id']}", json={"name": "New"}, headers=user.headers)
    renamed = await resp.json()
    assert await receive(ws) == {"type": "folder_updated", "folder": renamed}
    assert (await client.delete(f"/api/folders/{folder['id']}", headers=user.headers)).status == 204
    assert await receive(ws) == {"type": "folder_deleted", "folder_id": folder["id"]}
    moved_out = await receive(ws)
    assert moved_out["type"] == "chat_updated" and moved_out["chat"]["folder_id"] is None
    assert (await client.delete(f"/api/chats/{chat['id']}", headers=user.headers)).status == 204
    assert await receive(ws) == {"type": "chat_deleted", "chat_id": chat["id"]}
    await ws.close()


async def test_a_list_socket_hears_nothing_of_another_user(client, user, other_user):
    theirs = await create_chat(client, other_user)
    ws = await list_socket(client, user)
    await patch_chat(client, other_user, theirs["id"], pinned=True)
    await make_folder(client, other_user)
    mine = await make_folder(client, user, "Mine")
    # events come in order: the first one heard is my own, published after theirs
    assert await receive(ws) == {"type": "folder_created", "folder": mine}
    await ws.close()


async def test_a_list_socket_answers_ping_and_refuses_other_frames(client, user):
    ws = await client.ws_connect(f"/ws/chats?token={user.token}")
    await ws.send_json({"type": "ping", "timestamp": 7})
    assert await receive(ws) == {"type": "pong", "timestamp": 7}
    await ws.send_str("not json")
    assert "error" in await receive(ws)
    await ws.send_json({"type": "stream_request", "message_id": "x"})
    assert "error" in await receive(ws)
    await ws.close()


async def test_a_list_socket_needs_a_good_token(client):
    resp = await client.get("/ws/chats?token=nope", headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                                             "Sec-WebSocket-Version": "13",
                                                             "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 401
