"""Presets: named sets of answer settings, and new chats made from them."""

import pytest
from support.error_shape import assert_error

SETTINGS = {"model": None, "system_prompt": "Answer like a pirate.", "temperature": 0.2, "max_tokens": 300}


async def make_preset(client, account, name="Pirate", **fields) -> dict:
    resp = await client.post("/api/presets", json={"name": name, **SETTINGS, **fields}, headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_a_preset_holds_its_settings(client, user):
    preset = await make_preset(client, user)
    assert {k: preset[k] for k in SETTINGS} == SETTINGS
    assert preset["name"] == "Pirate" and preset["tools"] == [] and preset["knowledge"] == []
    body = await (await client.get("/api/presets", headers=user.headers)).json()
    assert body["items"] == [preset]


async def test_a_preset_is_changed_field_by_field_and_deleted(client, user):
    preset = await make_preset(client, user)
    resp = await client.patch(f"/api/presets/{preset['id']}", json={"temperature": None, "name": "Parrot"},
                              headers=user.headers)
    assert resp.status == 200
    changed = await resp.json()
    assert changed["name"] == "Parrot" and changed["temperature"] is None
    assert changed["system_prompt"] == SETTINGS["system_prompt"] and changed["max_tokens"] == 300
    assert (await client.delete(f"/api/presets/{preset['id']}", headers=user.headers)).status == 204
    assert (await (await client.get("/api/presets", headers=user.headers)).json())["items"] == []


async def test_a_new_chat_copies_the_presets_settings(client, user):
    preset = await make_preset(client, user)
    resp = await client.post("/api/chats", json={"preset_id": preset["id"]}, headers=user.headers)
    assert resp.status == 201
    chat = await resp.json()
    assert {k: chat[k] for k in SETTINGS} == SETTINGS


async def test_settings_in_the_request_win_over_the_presets(client, user):
    preset = await make_preset(client, user)
    resp = await client.post("/api/chats", json={"preset_id": preset["id"], "temperature": 1.5,
                                                 "system_prompt": None}, headers=user.headers)
    chat = await resp.json()
    assert chat["temperature"] == 1.5 and chat["system_prompt"] is None and chat["max_tokens"] == 300


async def test_a_chat_keeps_its_settings_when_the_preset_changes_or_goes(client, user):
    preset = await make_preset(client, user)
    chat = await (await client.post("/api/chats", json={"preset_id": preset["id"]}, headers=user.headers)).json()
    await client.patch(f"/api/presets/{preset['id']}", json={"max_tokens": 5}, headers=user.headers)
    await client.delete(f"/api/presets/{preset['id']}", headers=user.headers)
    again = await (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).json()
    assert again["max_tokens"] == 300


async def test_another_users_preset_is_404_and_makes_no_chat(client, user, other_user):
    theirs = await make_preset(client, other_user)
    for method, body in (("PATCH", {"name": "mine"}), ("DELETE", None)):
        resp = await client.request(method, f"/api/presets/{theirs['id']}", json=body, headers=user.headers)
        assert resp.status == 404
        assert_error(await resp.json(), "not_found")
    resp = await client.post("/api/chats", json={"preset_id": theirs["id"]}, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "unknown_preset")
    assert (await (await client.get("/api/presets", headers=user.headers)).json())["items"] == []
    assert (await (await client.get("/api/chats", headers=user.headers)).json())["items"] == []


async def test_a_preset_name_is_taken_whatever_its_case(client, user):
    await make_preset(client, user, "Pirate")
    resp = await client.post("/api/presets", json={"name": "PIRATE"}, headers=user.headers)
    assert resp.status == 409
    assert_error(await resp.json(), "preset_exists")
    other = await make_preset(client, user, "Other")
    resp = await client.patch(f"/api/presets/{other['id']}", json={"name": "pirate"}, headers=user.headers)
    assert resp.status == 409


@pytest.mark.parametrize("field", ["tools", "knowledge"])
async def test_unknown_tools_and_knowledge_are_422(client, user, field):
    resp = await client.post("/api/presets", json={"name": "x", field: ["web-search"]}, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), f"unknown_{field}")
    preset = await make_preset(client, user)
    resp = await client.patch(f"/api/presets/{preset['id']}", json={field: ["a-file"]}, headers=user.headers)
    assert resp.status == 422


async def test_an_unknown_model_is_422(client, user):
    resp = await client.post("/api/presets", json={"name": "x", "model": "no-such-model"}, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "unknown_model")


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x", "temperature": 3}, {"name": "x", "max_tokens": 0},
                                  {"name": "x", "tools": "web"}, {"name": "x", "temperature": "hot"}])
async def test_bad_presets_are_422(client, user, body):
    resp = await client.post("/api/presets", json=body, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json())


@pytest.mark.parametrize("body", [{}, {"name": None}, {"tools": None}])
async def test_bad_preset_changes_are_422(client, user, body):
    preset = await make_preset(client, user)
    resp = await client.patch(f"/api/presets/{preset['id']}", json=body, headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json())
