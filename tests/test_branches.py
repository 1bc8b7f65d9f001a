"""Messages as a tree: edit, regenerate as a sibling, branch switch, the shown
branch in listings and in the AI history, and the migration of linear chats."""

import uuid

import psycopg2
import psycopg2.extras
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.message_tree import answer, edit, setup, shown, switch, turn
from support.messages import post_message
from yoyo import get_backend, read_migrations

from chatserver.api.pagination import encode_cursor
from chatserver.migrate import MIGRATIONS_DIR, apply_migrations


async def test_messages_record_their_parent_and_siblings(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    first = await turn(client, service, account, chat["id"], "q1", "a1")
    second = await post_message(client, account, chat["id"], "q2")
    q1, a1 = first["user_message"], first["assistant_message"]
    assert q1["parent_id"] is None and q1["siblings"] == [q1["id"]]
    assert a1["parent_id"] == q1["id"]
    assert second["user_message"]["parent_id"] == a1["id"]
    assert second["assistant_message"]["parent_id"] == second["user_message"]["id"]


async def test_edit_makes_a_sibling_question_with_a_pending_answer_and_shows_it(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    first = await turn(client, service, account, chat["id"], "q1", "a1")
    second = await turn(client, service, account, chat["id"], "q2", "a2")
    edited = await edit(client, account, second["user_message"]["id"], "q2 again")
    question, reply = edited["user_message"], edited["assistant_message"]
    assert question["content"] == "q2 again" and question["parent_id"] == first["assistant_message"]["id"]
    assert question["siblings"] == [second["user_message"]["id"], question["id"]]
    assert reply["status"] == "pending" and reply["parent_id"] == question["id"]
    listed = await shown(client, account, chat["id"])
    assert [m["content"] for m in listed] == ["q1", "a1", "q2 again", ""]


async def test_editing_an_answer_is_422(client, user, chat):
    posted = await post_message(client, user, chat["id"], "q")
    resp = await client.post(f"/api/messages/{posted['assistant_message']['id']}/edit", json={"content": "x"},
                             headers=user.headers)
    assert resp.status == 422
    assert_error(await resp.json(), "not_a_question")


async def test_editing_another_users_message_is_404(client, user, other_user, chat):
    posted = await post_message(client, user, chat["id"], "q")
    resp = await client.post(f"/api/messages/{posted['user_message']['id']}/edit", json={"content": "x"},
                             headers=other_user.headers)
    assert resp.status == 404


async def test_editing_the_first_question_starts_a_second_root(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    first = await turn(client, service, account, chat["id"], "q1", "a1")
    edited = await edit(client, account, first["user_message"]["id"], "q1 again")
    assert edited["user_message"]["parent_id"] is None
    assert edited["user_message"]["siblings"] == [first["user_message"]["id"], edited["user_message"]["id"]]
    assert [m["content"] for m in await shown(client, account, chat["id"])] == ["q1 again", ""]


async def test_branch_switch_shows_the_newest_descendant_of_the_chosen_message(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    await turn(client, service, account, chat["id"], "q1", "a1")
    old = await turn(client, service, account, chat["id"], "q2", "a2")
    await turn(client, service, account, chat["id"], "q3", "a3")
    edited = await edit(client, account, old["user_message"]["id"], "q2 again")
    await answer(client, service, edited["assistant_message"]["id"], "a2 again")
    resp = await switch(client, account, chat["id"], old["user_message"]["id"])
    assert resp.status == 200
    assert (await resp.json())["id"] == chat["id"]
    assert [m["content"] for m in await shown(client, account, chat["id"])] == ["q1", "a1", "q2", "a2", "q3", "a3"]
    await switch(client, account, chat["id"], edited["user_message"]["id"])
    assert [m["content"] for m in await shown(client, account, chat["id"])] == ["q1", "a1", "q2 again", "a2 again"]


async def test_branch_switch_to_a_message_of_another_chat_is_404(client, user, chat):
    other = await create_chat(client, user)
    posted = await post_message(client, user, other["id"], "elsewhere")
    resp = await switch(client, user, chat["id"], posted["user_message"]["id"])
    assert resp.status == 404
    assert_error(await resp.json())
    resp = await switch(client, user, chat["id"], "not-an-id")
    assert resp.status == 422


async def test_regenerate_is_a_shown_sibling_and_the_old_answer_comes_back_by_switching(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    first = await turn(client, service, account, chat["id"], "q1", "a1")
    old = first["assistant_message"]
    resp = await client.post(f"/api/messages/{old['id']}/regenerate", headers=account.headers)
    new = await resp.json()
    assert new["parent_id"] == first["user_message"]["id"] and new["siblings"] == [old["id"], new["id"]]
    await answer(client, service, new["id"], "a1 again")
    assert [m["content"] for m in await shown(client, account, chat["id"])] == ["q1", "a1 again"]
    await switch(client, account, chat["id"], old["id"])
    assert [m["content"] for m in await shown(client, account, chat["id"])] == ["q1", "a1"]


async def test_the_ai_history_is_the_branch_of_the_question(fake_service, make_client):
    service, client, account, chat = await setup(fake_service, make_client)
    await turn(client, service, account, chat["id"], "q1", "a1")
    old = await turn(client, service, account, chat["id"], "q2", "a2")
    edited = await edit(client, account, old["user_message"]["id"], "q2 again")
    request = await service.request_for(edited["assistant_message"]["id"])
    assert request["message"] == "q2 again"
    assert request["conversation_history"] == [{"role": "user", "content": "q1"},
                                               {"role": "assistant", "content": "a1"}]
    await answer(client, service, edited["assistant_message"]["id"], "a2 again")
    after_edit = await post_message(client, account, chat["id"], "q3")
    history = (await service.request_for(after_edit["assistant_message"]["id"]))["conversation_history"]
    assert [h["content"] for h in history] == ["q1", "a1", "q2 again", "a2 again"]
    await switch(client, account, chat["id"], old["assistant_message"]["id"])
    on_old = await post_message(client, account, chat["id"], "q3 on the old branch")
    history = (await service.request_for(on_old["assistant_message"]["id"]))["conversation_history"]
    assert [h["content"] for h in history] == ["q1", "a1", "q2", "a2"]


async def test_a_deep_tree_pages_through_the_shown_branch_only(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    expected = []
    for i in range(30):
        posted = await post_message(client, account, chat["id"], f"q{i}")
        if i % 3 == 0:
            # a discarded version beside every third question
            posted = await edit(client, account, posted["user_message"]["id"], f"q{i} edited")
        expected += [posted["user_message"]["id"], posted["assistant_message"]["id"]]
    seen, cursor = [], None
    while True:
        resp = await client.get(f"/api/chats/{chat['id']}/messages",
                                params={"limit": 7, **({"cursor": cursor} if cursor else {})}, headers=account.headers)
        body = await resp.json()
        seen = [m["id"] for m in body["items"]] + seen
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


async def test_an_empty_chat_lists_nothing_and_a_foreign_cursor_finds_nothing(client, user, other_user, chat):
    assert await shown(client, user, chat["id"]) == []
    posted = await post_message(client, user, chat["id"], "mine")
    other_chat = await create_chat(client, other_user)
    resp = await client.get(f"/api/chats/{other_chat['id']}/messages",
                            params={"cursor": encode_cursor(posted["user_message"]["id"])},
                            headers=other_user.headers)
    assert resp.status == 200 and (await resp.json())["items"] == []


def _old_shape(dsn: str) -> dict:
    """A linear chat as it was stored before the tree: q1 a1(regenerated away) a1' q2 a2, and an
    out-of-order regeneration of a2 after q3 a3."""
    backend = get_backend(dsn)
    migrations = read_migrations(str(MIGRATIONS_DIR))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations.filter(lambda m: m.id < "0040")))
    backend.connection.close()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
    cur.execute("INSERT INTO users (email, password_hash) VALUES ('old@example.com', 'x') RETURNING id")
    user_id = cur.fetchone()["id"]
    cur.execute("INSERT INTO chats (user_id, title) VALUES (%s, 'old') RETURNING id", (user_id,))
    chat_id = cur.fetchone()["id"]
    ids = {}

    def add(name, role, reply_to=None, superseded=False):
        cur.execute(
            """INSERT INTO messages (chat_id, user_id, role, content, status, reply_to, superseded)
               VALUES (%s, %s, %s, %s, 'complete', %s, %s) RETURNING id""",
            (chat_id, user_id, role, name, ids.get(reply_to), superseded))
        ids[name] = cur.fetchone()["id"]

    add("q1", "user")
    add("a1", "assistant", "q1", superseded=True)
    add("a1'", "assistant", "q1")
    add("q2", "user")
    add("a2", "assistant", "q2", superseded=True)
    add("q3", "user")
    add("a3", "assistant", "q3")
    add("a2'", "assistant", "q2")
    conn.close()
    return {"chat": chat_id, **ids}


def test_migration_turns_a_linear_chat_into_a_tree_and_shows_what_was_shown(empty_database):  # noqa: F811
    old = _old_shape(empty_database)
    assert apply_migrations(empty_database) >= 1
    conn = psycopg2.connect(empty_database)
    cur = conn.cursor()
    cur.execute("SELECT id, parent_id FROM messages")
    parents = dict(cur.fetchall())
    cur.execute("SELECT shown_leaf FROM chats WHERE id = %s", (old["chat"],))
    leaf = cur.fetchone()[0]
    conn.close()
    assert len(parents) == 8
    assert parents[old["q1"]] is None
    assert parents[old["a1"]] == parents[old["a1'"]] == old["q1"]
    assert parents[old["q2"]] == old["a1'"]
    assert parents[old["a2"]] == parents[old["a2'"]] == old["q2"]
    assert parents[old["q3"]] == old["a2"]
    assert parents[old["a3"]] == old["q3"]
    # the conversation went on after a2: that is the branch shown
    assert leaf == old["a3"]


async def test_unknown_fields_and_bad_ids_in_branch_are_refused(client, user, chat):
    resp = await switch(client, user, chat["id"], str(uuid.uuid4()))
    assert resp.status == 404
    resp = await client.post(f"/api/chats/{chat['id']}/branch", json={}, headers=user.headers)
    assert resp.status == 422
