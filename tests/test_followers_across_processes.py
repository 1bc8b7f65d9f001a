"""Followers of one answer in the process that makes its pieces and in
another (docs/frames.md): the first get them from the script's reply, the
others through pub/sub, and both get the same frames and resume exactly."""

import asyncio

from support.accounts import create_chat, register
from support.fake_ai_service import callback_path, start_callback_service
from support.messages import get_message, idle, post_message
from support.served_app import app_of
from support.ws_frames import open_ws, read_to_end, receive, streamed_text

from chatserver import appkeys


async def two_processes(fake_service, make_client):
    service, here = await start_callback_service(fake_service, make_client)
    account = await register(here)
    chat = await create_chat(here, account)
    answer = (await post_message(here, account, chat["id"], "Tell me a story"))["assistant_message"]
    path = callback_path(await service.request_for(answer["id"]))
    await idle(here)
    # started once the job ran here: its workers share the queue
    elsewhere = await make_client(AI_SERVICE_URL="http://127.0.0.1:9/unused")
    return here, elsewhere, account, chat, answer, path


async def following(client, account, chat_id: str, message_id: str):
    ws = await open_ws(client, account, chat_id)
    await ws.send_json({"type": "stream_request", "message_id": message_id})
    first = await receive(ws)
    assert first["type"] == "stream_content"
    return ws, first


async def test_followers_here_and_elsewhere_get_the_same_frames_and_late_ones_resume_exactly(
        fake_service, make_client):
    here, elsewhere, account, chat, answer, path = await two_processes(fake_service, make_client)
    early = [await following(client, account, chat["id"], answer["id"]) for client in (here, elsewhere)]
    seen: list[list[dict]] = [[first] for _, first in early]
    pieces = [f"<{i}>" for i in range(12)]
    late = []
    for seq, piece in enumerate(pieces):
        # callbacks reach either process, as behind a load balancer
        resp = await (here if seq % 3 else elsewhere).post(path, json={"type": "chunk", "content": piece, "seq": seq})
        assert resp.status == 200
        frames = [await receive(ws) for ws, _ in early]
        assert frames[0] == frames[1] == {"type": "chunk", "message_id": answer["id"], "content": piece}
        for kept, frame in zip(seen, frames, strict=True):
            kept.append(frame)
        if seq in (4, 8):
            late += [await following(client, account, chat["id"], answer["id"]) for client in (here, elsewhere)]
    await here.post(path, json={"type": "complete", "seq": len(pieces)})
    final = "".join(pieces)
    for ws, before in [(ws, kept) for (ws, _), kept in zip(early, seen, strict=True)] + \
            [(ws, [first]) for ws, first in late]:
        frames = [*before, *await read_to_end(ws)]
        assert streamed_text(frames) == final
        assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": []}
    assert (await get_message(elsewhere, account, answer["id"]))["content"] == final


async def test_a_piece_is_published_only_once_another_process_follows_the_answer(fake_service, make_client):
    here, elsewhere, account, chat, answer, path = await two_processes(fake_service, make_client)
    app = app_of(here)
    pubsub = app[appkeys.REDIS].pubsub()
    await pubsub.subscribe(app[appkeys.KEYS].chat_channel(chat["id"]))
    try:
        ws_here, _ = await following(here, account, chat["id"], answer["id"])
        await here.post(path, json={"type": "chunk", "content": "made and followed here", "seq": 0})
        assert (await receive(ws_here))["content"] == "made and followed here"
        ws_elsewhere, first = await following(elsewhere, account, chat["id"], answer["id"])
        assert first["content"] == "made and followed here"
        await here.post(path, json={"type": "chunk", "content": " and now elsewhere too", "seq": 1})
        assert (await receive(ws_here))["content"] == (await receive(ws_elsewhere))["content"]
        published = None
        async with asyncio.timeout(30):
            while published is None:
                published = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        # the first piece on the channel is the second one made: the first reached no one through it
        assert published["data"] == f"{answer['id']}|2|c| and now elsewhere too"
    finally:
        await pubsub.aclose()
