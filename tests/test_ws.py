"""The WebSocket (docs/websocket.md): upgrade, ping, bad frames, exact resume."""

import asyncio
import random
import time

import aiohttp
import jwt
import pytest
from support.accounts import create_chat, register
from support.fake_ai_service import callback_path, start_callback_service
from support.messages import get_message, idle, post_message
from support.served_app import app_of
from support.ws_frames import follow, open_ws, read_to_end, receive, streamed_text

from chatserver import appkeys
from chatserver.data import users
from chatserver.live.fanout import FANOUT, listener_client_name
from chatserver.live.state import ANSWER_STATE, AnswerState
from chatserver.live.wire import Event
from chatserver.redis_keys import Keys


async def streaming_answer(fake_service, make_client, **settings):
    service, client = await start_callback_service(fake_service, make_client, **settings)
    account = await register(client)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Tell me a story"))["assistant_message"]
    path = callback_path(await service.request_for(answer["id"]))
    await idle(client)
    return client, account, chat, answer, path


async def test_upgrade_without_or_with_a_bad_token_is_401(client, user, chat):
    for query in ("", "?token=", "?token=not.a.jwt"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await client.ws_connect(f"/ws/chat/{chat['id']}{query}")
        assert caught.value.status == 401


async def test_upgrade_for_another_users_or_a_missing_chat_is_404(client, user, other_user, chat):
    for chat_id in (chat["id"], "00000000-0000-0000-0000-000000000000", "nonsense"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await client.ws_connect(f"/ws/chat/{chat_id}?token={other_user.token}")
        assert caught.value.status == 404


async def test_ping_answers_pong_with_the_same_timestamp(client, user, chat):
    ws = await open_ws(client, user, chat["id"])
    await ws.send_json({"type": "ping", "timestamp": 1635000000000})
    assert await receive(ws) == {"type": "pong", "timestamp": 1635000000000}


async def test_bad_frames_get_an_error_and_the_socket_stays_usable(client, user, other_user, chat):
    other_chat = await create_chat(client, other_user)
    foreign = (await post_message(client, other_user, other_chat["id"], "mine"))["assistant_message"]
    own_chat_2 = await create_chat(client, user)
    elsewhere = (await post_message(client, user, own_chat_2["id"], "elsewhere"))["assistant_message"]
    ws = await open_ws(client, user, chat["id"])
    bad = ["{not json", "[1, 2]", '"text"', '{"type": "dance"}', "{}",
           '{"type": "stream_request"}', '{"type": "stream_request", "message_id": 7}',
           '{"type": "stream_request", "message_id": "not-a-uuid"}',
           '{"type": "cancel", "message_id": "not-a-uuid"}']
    for raw in bad:
        await ws.send_str(raw)
        frame = await receive(ws)
        assert set(frame) == {"error"} and frame["error"], raw
    for message in (foreign, elsewhere):
        for kind in ("stream_request", "cancel"):
            await ws.send_json({"type": kind, "message_id": message["id"]})
            assert await receive(ws) == {"error": "no such message in this chat", "message_id": message["id"]}
    await ws.send_bytes(b"\x00\x01")
    assert set(await receive(ws)) == {"error"}
    await ws.send_json({"type": "ping", "timestamp": 1})
    assert await receive(ws) == {"type": "pong", "timestamp": 1}


async def test_a_frame_over_64_kib_closes_the_socket_with_1009(client, user, chat):
    ws = await open_ws(client, user, chat["id"])
    await ws.send_str('{"type": "ping", "pad": "' + "x" * 70_000 + '"}')
    message = await ws.receive(timeout=30)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 1009


async def test_request_before_the_first_chunk_gets_everything(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert await receive(ws) == {"type": "stream_content", "message_id": answer["id"], "content": ""}
    await client.post(path, json={"type": "chunk", "content": "Once", "seq": 0})
    await client.post(path, json={"type": "chunk", "content": " upon", "seq": 1})
    source = {"title": "t", "url": "", "content": "c"}
    await client.post(path, json={"type": "complete", "sources": [source]})
    assert await read_to_end(ws) == [
        {"type": "chunk", "message_id": answer["id"], "content": "Once"},
        {"type": "chunk", "message_id": answer["id"], "content": " upon"},
        {"type": "complete", "message_id": answer["id"], "sources": [source]},
    ]


async def test_request_mid_stream_gets_the_text_so_far_then_only_later_chunks(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    await client.post(path, json=[{"type": "chunk", "content": "a", "seq": 0},
                                  {"type": "chunk", "content": "b", "seq": 1}])
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert await receive(ws) == {"type": "stream_content", "message_id": answer["id"], "content": "ab"}
    await client.post(path, json={"type": "chunk", "content": "c", "seq": 2})
    await client.post(path, json={"type": "complete"})
    assert await read_to_end(ws) == [{"type": "chunk", "message_id": answer["id"], "content": "c"},
                                     {"type": "complete", "message_id": answer["id"], "sources": []}]


async def test_request_after_the_end_gets_content_then_complete(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    await client.post(path, json=[{"type": "chunk", "content": "all"}, {"type": "complete"}])
    ws = await open_ws(client, account, chat["id"])
    expected = [{"type": "stream_content", "message_id": answer["id"], "content": "all"},
                {"type": "complete", "message_id": answer["id"], "sources": []}]
    assert await follow(ws, answer["id"]) == expected
    # also once the live state is gone and only PostgreSQL knows the answer
    app = app_of(client)
    keys = app[appkeys.KEYS]
    await app[appkeys.REDIS].delete(keys.stream(answer["id"]), keys.stream_content(answer["id"]))
    assert await follow(ws, answer["id"]) == expected


async def test_a_user_message_streams_as_complete(client, user, chat):
    question = (await post_message(client, user, chat["id"], "hi"))["user_message"]
    ws = await open_ws(client, user, chat["id"])
    assert await follow(ws, question["id"]) == [
        {"type": "stream_content", "message_id": question["id"], "content": "hi"},
        {"type": "complete", "message_id": question["id"], "sources": []}]


@pytest.mark.parametrize("seed", range(6))
async def test_resume_at_random_points_is_exact(fake_service, make_client, seed):
    rng = random.Random(seed)
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    pieces = [f"<{i}:{'x' * rng.randint(0, 5)}>" for i in range(30)]
    order = list(range(len(pieces)))
    # deliveries out of order and repeated, as a flaky network would make them
    deliveries = order + rng.sample(order, 10)
    rng.shuffle(deliveries)
    join_points = sorted(rng.sample(range(len(deliveries) + 1), 4))
    sockets = []
    for step, seq in enumerate(deliveries + [None]):
        while join_points and join_points[0] == step:
            join_points.pop(0)
            ws = await open_ws(client, account, chat["id"])
            await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
            sockets.append(ws)
        if seq is not None:
            resp = await client.post(path, json={"type": "chunk", "content": pieces[seq], "seq": seq})
            assert resp.status == 200
    await client.post(path, json={"type": "complete"})
    final = "".join(pieces)
    for ws in sockets:
        frames = await read_to_end(ws)
        assert frames[0]["type"] == "stream_content"
        assert [f["type"] for f in frames[1:-1]] == ["chunk"] * (len(frames) - 2)
        assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": []}
        assert streamed_text(frames) == final
    assert (await get_message(client, account, answer["id"]))["content"] == final


async def sockets_counted(client, count: int) -> bool:
    """Once the open-sockets gauge reads `count`: a closed socket's handler ends
    (and counts it out) after the client saw the close, in a task of its own."""
    gauge = app_of(client)[appkeys.METRICS].websockets
    async with asyncio.timeout(30):
        while gauge._value.get() != count:
            await asyncio.sleep(0.01)
    return True


async def test_several_sockets_on_one_chat_each_get_every_frame(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    sockets = [await open_ws(client, account, chat["id"]) for _ in range(3)]
    for ws in sockets:
        await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
        assert (await receive(ws))["type"] == "stream_content"
    assert app_of(client)[appkeys.METRICS].websockets._value.get() == 3
    for seq, text in enumerate(["x", "y", "z"]):
        await client.post(path, json={"type": "chunk", "content": text, "seq": seq})
    await client.post(path, json={"type": "complete"})
    for ws in sockets:
        frames = await read_to_end(ws)
        assert [f.get("content") for f in frames] == ["x", "y", "z", None]
    await sockets[0].close()
    await sockets[1].close()
    await sockets[2].send_json({"type": "ping", "timestamp": 2})
    await receive(sockets[2])
    assert await sockets_counted(client, 1)


async def test_chunks_posted_to_another_instance_reach_this_socket(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    other = await make_client(AI_SERVICE_URL="http://127.0.0.1:9/unused")
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert (await receive(ws))["content"] == ""
    await other.post(path, json={"type": "chunk", "content": "from B", "seq": 0})
    await client.post(path, json={"type": "chunk", "content": " and A", "seq": 1})
    await other.post(path, json={"type": "complete", "seq": 2})
    assert await read_to_end(ws) == [{"type": "chunk", "message_id": answer["id"], "content": "from B"},
                                     {"type": "chunk", "message_id": answer["id"], "content": " and A"},
                                     {"type": "complete", "message_id": answer["id"], "sources": []}]
    other_ws = await open_ws(other, account, chat["id"])
    assert streamed_text(await follow(other_ws, answer["id"])) == "from B and A"


class _DeafKeys(Keys):
    def chat_channel(self, chat_id: object) -> str:
        return "nobody-listens"


async def test_a_piece_lost_on_the_way_is_filled_in_from_the_snapshot(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    app = app_of(client)
    state = app[ANSWER_STATE]
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert (await receive(ws))["content"] == ""
    await client.post(path, json={"type": "chunk", "content": "A", "seq": 0})
    assert (await receive(ws))["content"] == "A"
    # "B" is published where nobody listens, as if the pub/sub connection had dropped it
    deaf = AnswerState(state.redis, _DeafKeys(state.keys.prefix), state.settings)
    await deaf.apply(answer["id"], chat["id"], [Event.chunk("B", 1)])
    await deaf.close()
    await client.post(path, json={"type": "chunk", "content": "C", "seq": 2})
    await client.post(path, json={"type": "complete", "seq": 3})
    assert await read_to_end(ws) == [{"type": "chunk", "message_id": answer["id"], "content": "BC"},
                                     {"type": "complete", "message_id": answer["id"], "sources": []}]


async def test_after_the_subscription_is_lost_watchers_catch_up(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert (await receive(ws))["content"] == ""
    # the server drops our subscription; the listener notices and subscribes again
    app = app_of(client)
    redis = app[appkeys.REDIS]
    (killed,) = [c["id"] for c in await redis.client_list(_type="pubsub")
                 if c["name"] == listener_client_name(app[appkeys.KEYS])]
    await redis.client_kill_filter(_id=killed)
    await client.post(path, json={"type": "chunk", "content": "after", "seq": 0})
    await client.post(path, json={"type": "complete", "seq": 1})
    frames = await read_to_end(ws)
    assert streamed_text([{"type": "stream_content", "content": ""}] + frames) == "after"
    assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": []}


async def test_a_closed_socket_leaves_no_subscription_behind(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    subscribers = app_of(client)[FANOUT].subscribers
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "subscribe"})
    assert await receive(ws) == {"type": "subscribed"}
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    assert (await receive(ws))["type"] == "stream_content"
    assert {chat["id"], answer["id"]} <= set(subscribers)
    await ws.close()
    deadline = asyncio.get_running_loop().time() + 10
    while {chat["id"], answer["id"]} & set(subscribers) and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert not {chat["id"], answer["id"]} & set(subscribers)
    await client.post(path, json={"type": "complete", "content": "the end", "seq": 0})
    assert (await get_message(client, account, answer["id"]))["content"] == "the end"


async def test_a_client_that_stops_answering_pings_is_dropped(make_client):
    client = await make_client(WS_HEARTBEAT_SECONDS=0.2)
    account = await register(client)
    chat = await create_chat(client, account)
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={account.token}", autoping=False)
    kinds = []
    while True:
        message = await ws.receive(timeout=30)
        kinds.append(message.type)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
    assert kinds[0] == aiohttp.WSMsgType.PING
    live = await client.ws_connect(f"/ws/chat/{chat['id']}?token={account.token}")
    await live.send_json({"type": "ping", "timestamp": 3})
    assert await receive(live) == {"type": "pong", "timestamp": 3}
    assert await sockets_counted(client, 1)


@pytest.mark.parametrize("socket", ["chat", "chat list"])
async def test_a_peer_silent_after_a_ping_is_closed_with_1011(make_client, socket):
    client = await make_client(WS_HEARTBEAT_SECONDS=0.4)
    account = await register(client)
    chat = await create_chat(client, account)
    path = f"/ws/chat/{chat['id']}" if socket == "chat" else "/ws/chats"
    ws = await client.ws_connect(f"{path}?token={account.token}", autoping=False)
    assert (await ws.receive(timeout=30)).type == aiohttp.WSMsgType.PING
    closing = await ws.receive(timeout=30)
    assert (closing.type, closing.data, closing.extra) == (aiohttp.WSMsgType.CLOSE, 1011, "no answer to the ping")


async def test_a_peer_that_answers_pings_stays_open_through_many_of_them(make_client):
    client = await make_client(WS_HEARTBEAT_SECONDS=0.2)
    account = await register(client)
    chat = await create_chat(client, account)
    ws = await open_ws(client, account, chat["id"])
    frames = []

    async def read():  # receive() answers each ping
        async for message in ws:
            frames.append(message.json())

    reader = asyncio.create_task(read())
    await asyncio.sleep(1.6)  # 8 pings
    await ws.send_json({"type": "ping", "timestamp": "still"})
    async with asyncio.timeout(30):
        while not frames:
            await asyncio.sleep(0.01)
    assert frames == [{"type": "pong", "timestamp": "still"}]
    assert await sockets_counted(client, 1)
    await ws.close()
    await reader


@pytest.mark.parametrize("socket", ["chat", "chat list"])
async def test_permessage_deflate_is_declined(client, user, chat, socket):
    """Browsers offer it; it would hold zlib's state (about 106 KiB) for as long as the socket is open."""
    path = f"/ws/chat/{chat['id']}" if socket == "chat" else "/ws/chats"
    ws = await client.ws_connect(f"{path}?token={user.token}", compress=15)
    assert ws.compress == 0
    await ws.send_json({"type": "ping", "timestamp": 1})
    assert await receive(ws) == {"type": "pong", "timestamp": 1}


async def test_a_client_ping_is_answered_with_a_pong_of_its_data(client, user, chat):
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={user.token}", autoping=False)
    await ws.ping(b"are you there")
    assert (await ws.receive(timeout=30)).data == b"are you there"


async def test_garbage_on_a_chat_channel_does_not_stop_the_fan_out(fake_service, make_client):
    client, account, chat, answer, path = await streaming_answer(fake_service, make_client)
    app = app_of(client)
    await app[appkeys.REDIS].publish(app[appkeys.KEYS].chat_channel(chat["id"]), "no separators here")
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    await receive(ws)
    await client.post(path, json=[{"type": "chunk", "content": "still"}, {"type": "complete"}])
    assert await read_to_end(ws) == [{"type": "chunk", "message_id": answer["id"], "content": "still"},
                                     {"type": "complete", "message_id": answer["id"], "sources": []}]


async def test_one_socket_follows_at_most_100_answers_at_once(make_client):
    client = await make_client(start_workers=False, RATE_LIMIT_MESSAGES="0")  # 101 posts in a row
    account = await register(client)
    chat = await create_chat(client, account)
    answers = [(await post_message(client, account, chat["id"], f"q{i}"))["assistant_message"]["id"]
               for i in range(101)]
    ws = await open_ws(client, account, chat["id"])
    for answer in answers[:100]:
        await ws.send_json({"type": "stream_request", "message_id": answer})
        assert await receive(ws) == {"type": "stream_content", "message_id": answer, "content": ""}
    await ws.send_json({"type": "stream_request", "message_id": answers[100]})
    assert await receive(ws) == {"error": "this socket already follows 100 answers", "message_id": answers[100]}
    await ws.send_json({"type": "stream_request", "message_id": answers[0]})  # a repeat restarts it
    assert await receive(ws) == {"type": "stream_content", "message_id": answers[0], "content": ""}


async def closed_with(ws, seconds: float = 10) -> int | None:
    """Read the socket until it closes (frames are skipped); its close code."""
    async with asyncio.timeout(seconds):
        while True:
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.CLOSE:
                return message.data
            if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                return ws.close_code


async def test_a_socket_closes_with_4401_when_its_token_expires(client, user, chat, settings):
    now = int(time.time())
    token = jwt.encode({"sub": str(user.id), "iat": now, "exp": now + 2}, settings.JWT_SECRET,
                       algorithm=settings.JWT_ALGORITHM)
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={token}")
    await ws.send_json({"type": "ping", "timestamp": 1})
    assert await receive(ws) == {"type": "pong", "timestamp": 1}
    assert await closed_with(ws) == 4401


async def test_deleting_an_api_key_closes_its_sockets_in_every_process_with_4401(make_client):
    client = await make_client(start_workers=False)
    other_process = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    made = await (await client.post("/api/keys", json={"name": "laptop"}, headers=account.headers)).json()
    by_key = await client.ws_connect(f"/ws/chat/{chat['id']}?token={made['key']}")
    by_token = await client.ws_connect(f"/ws/chat/{chat['id']}?token={account.token}")
    await by_key.send_json({"type": "subscribe"})
    assert (await receive(by_key))["type"] == "subscribed"

    resp = await other_process.delete(f"/api/keys/{made['id']}", headers=account.headers)
    assert resp.status == 204
    assert await closed_with(by_key) == 4401
    # the account's other credentials stay good
    await by_token.send_json({"type": "ping", "timestamp": 2})
    assert await receive(by_token) == {"type": "pong", "timestamp": 2}


async def test_a_disable_missed_while_the_revocation_listener_was_away_still_closes_the_socket(client, user, chat):
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={user.token}")
    app = app_of(client)
    # disabled behind the servers' backs: no message on the channel
    assert await users.set_disabled(app[appkeys.DB], user.email, True)
    await ws.send_json({"type": "ping", "timestamp": 1})
    assert await receive(ws) == {"type": "pong", "timestamp": 1}
    # the server drops the listener's subscription; subscribed again, it asks PostgreSQL
    redis = app[appkeys.REDIS]
    (killed,) = [c["id"] for c in await redis.client_list(_type="pubsub")
                 if c["name"] == listener_client_name(app[appkeys.KEYS])]
    await redis.client_kill_filter(_id=killed)
    assert await closed_with(ws) == 4401
