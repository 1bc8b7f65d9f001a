"""Feedback on answers: thumbs up or down with a comment, kept with the
message, shown wherever the message is, and exported."""

import json

import pytest
from support.accounts import register
from support.error_shape import assert_error
from support.message_tree import setup, turn
from support.messages import post_message
from support.ws_frames import receive, subscribed


async def answered(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    posted = await turn(client, service, account, chat["id"], "q", "a")
    return client, account, chat, posted["assistant_message"]


async def rate(client, account, message_id, body):
    return await client.post(f"/api/messages/{message_id}/feedback", json=body, headers=account.headers)


async def test_feedback_is_kept_with_the_message(fake_service, make_client):
    client, account, chat, answer = await answered(fake_service, make_client)
    resp = await rate(client, account, answer["id"], {"rating": -1, "comment": "  wrong year  "})
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == answer["id"] and body["content"] == "a"
    assert body["feedback"]["rating"] == -1 and body["feedback"]["comment"] == "wrong year"
    assert body["feedback"]["updated_at"]
    again = await (await client.get(f"/api/messages/{answer['id']}", headers=account.headers)).json()
    assert again["feedback"] == body["feedback"]
    listed = await (await client.get(f"/api/chats/{chat['id']}/messages", headers=account.headers)).json()
    assert listed["items"][0]["feedback"] is None and listed["items"][1]["feedback"] == body["feedback"]


async def test_a_new_rating_replaces_the_old_and_delete_takes_it_back(fake_service, make_client):
    client, account, _, answer = await answered(fake_service, make_client)
    await rate(client, account, answer["id"], {"rating": -1, "comment": "meh"})
    body = await (await rate(client, account, answer["id"], {"rating": 1})).json()
    assert body["feedback"]["rating"] == 1 and body["feedback"]["comment"] is None
    resp = await client.delete(f"/api/messages/{answer['id']}/feedback", headers=account.headers)
    assert resp.status == 200 and (await resp.json())["feedback"] is None


async def test_feedback_goes_to_the_chats_sockets(fake_service, make_client):
    client, account, chat, answer = await answered(fake_service, make_client)
    ws = await subscribed(client, account, chat["id"])
    await rate(client, account, answer["id"], {"rating": 1})
    event = await receive(ws)
    assert event["type"] == "message_updated" and event["message"]["feedback"]["rating"] == 1
    await ws.close()


async def test_feedback_is_exported(fake_service, make_client):
    client, account, chat, answer = await answered(fake_service, make_client)
    await rate(client, account, answer["id"], {"rating": 1, "comment": "spot on"})
    resp = await client.get(f"/api/chats/{chat['id']}/export", params={"format": "json"}, headers=account.headers)
    (conversation,) = json.loads(await resp.text())
    feedback = conversation["mapping"][answer["id"]]["message"]["metadata"]["feedback"]
    assert feedback["rating"] == 1 and feedback["comment"] == "spot on"
    resp = await client.get(f"/api/chats/{chat['id']}/export", params={"format": "markdown"},
                            headers=account.headers)
    assert "> Rated good: spot on" in await resp.text()


@pytest.mark.parametrize("body", [{}, {"rating": 0}, {"rating": 2}, {"rating": "1"}, {"rating": True},
                                  {"rating": 1.0}, {"rating": 1, "comment": 5}, {"rating": 1, "comment": "x" * 2001},
                                  # past the documented maxLength as sent, though nothing is left once stripped
                                  {"rating": -1, "comment": "\r" * 2001}])
async def test_bad_feedback_is_422(fake_service, make_client, body):
    client, account, _, answer = await answered(fake_service, make_client)
    resp = await rate(client, account, answer["id"], body)
    assert resp.status == 422
    assert_error(await resp.json())


async def test_a_question_takes_no_feedback(client, user, chat):
    posted = await post_message(client, user, chat["id"], "q")
    resp = await rate(client, user, posted["user_message"]["id"], {"rating": 1})
    assert resp.status == 422
    assert_error(await resp.json(), "not_an_answer")


async def test_an_unfinished_answer_takes_no_feedback(client, user, chat):
    posted = await post_message(client, user, chat["id"], "q")
    resp = await rate(client, user, posted["assistant_message"]["id"], {"rating": 1})
    assert resp.status == 409
    assert_error(await resp.json(), "message_unfinished")


async def test_another_users_answer_is_404(fake_service, make_client):
    client, account, _, answer = await answered(fake_service, make_client)
    stranger = await register(client)
    for method in ("POST", "DELETE"):
        resp = await client.request(method, f"/api/messages/{answer['id']}/feedback", json={"rating": 1},
                                    headers=stranger.headers)
        assert resp.status == 404
        assert_error(await resp.json(), "not_found")
    mine = await (await client.get(f"/api/messages/{answer['id']}", headers=account.headers)).json()
    assert mine["feedback"] is None
