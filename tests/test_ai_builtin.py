"""The built-in backend: full-text search over the user's files and messages, honest about itself."""

import uuid

from ai_support import get_message, idle, open_ws, post_message, read_to_end, receive, streamed_text
from chatserver.ai.builtin import NOT_A_MODEL
from chatserver.ai.job import generate
from conftest import app_of, create_chat, db_of, register


async def add_file(client, account, name, text, status="ready"):
    await db_of(client).execute(
        """
        INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
        VALUES (%s, %s, %s, 1, 'x', 'text/plain', %s, %s)
        """,
        (account.id, name, uuid.uuid4().hex, status, text))


async def watched_answer(client, account, chat, question):
    """Run the answer's job by hand while a socket watches it from the start."""
    answer = (await post_message(client, account, chat["id"], question))["assistant_message"]
    ws = await open_ws(client, account, chat["id"])
    await ws.send_json({"type": "stream_request", "message_id": answer["id"]})
    first = await receive(ws)
    await generate(app_of(client), answer["id"])
    return answer, [first] + await read_to_end(ws)


async def test_fresh_install_answers_from_the_users_files_with_sources(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    stranger = await register(client)
    await add_file(client, account, "biology.txt",
                   "Photosynthesis converts light energy into chemical energy stored in glucose.")
    await add_file(client, account, "cooking.txt", "Bread needs flour, water, salt and yeast.")
    await add_file(client, stranger, "secret.txt", "Photosynthesis secrets of a stranger.")
    chat = await create_chat(client, account, "Biology homework")
    answer, frames = await watched_answer(client, account, chat, "How does photosynthesis work?")
    assert frames[0] == {"type": "stream_content", "message_id": answer["id"], "content": ""}
    assert len([f for f in frames if f.get("type") == "chunk"]) >= 3
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["content"] == streamed_text(frames)
    assert stored["content"].startswith(NOT_A_MODEL) and "not a language model" in stored["content"]
    assert "biology.txt" in stored["content"] and "stranger" not in stored["content"]
    assert stored["sources"] == [{"title": "biology.txt", "url": "",
                                  "content": "Photosynthesis converts light energy into chemical energy "
                                             "stored in glucose."}]
    assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": stored["sources"]}


async def test_earlier_messages_are_cited_by_chat_title(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    old_chat = await create_chat(client, account, "Trip planning")
    await post_message(client, account, old_chat["id"], "The ferry to Naxos leaves Piraeus at 7:25 every morning.")
    chat = await create_chat(client, account, "Today")
    answer, frames = await watched_answer(client, account, chat, "When does the ferry leave?")
    stored = await get_message(client, account, answer["id"])
    assert [s["title"] for s in stored["sources"]] == ["Trip planning"]
    assert "7:25" in stored["sources"][0]["content"]
    assert "Trip planning" in stored["content"]


async def test_nothing_found_is_said_plainly(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    answer, frames = await watched_answer(client, account, chat, "Quantum chromodynamics?")
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["sources"] == []
    assert stored["content"] == (NOT_A_MODEL + "\n\nI found nothing in your files or earlier messages "
                                 "that matches your message.")


async def test_the_builtin_backend_runs_when_nothing_is_configured(client, user, chat):
    answer = (await post_message(client, user, chat["id"], "hello"))["assistant_message"]
    await idle(client)
    stored = await get_message(client, user, answer["id"])
    assert stored["status"] == "complete" and stored["content"].startswith(NOT_A_MODEL)


async def test_a_long_text_is_quoted_by_the_passage_around_the_match(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    filler = "lorem ipsum dolor sit amet " * 60
    await add_file(client, account, "policy.txt", filler + "Refunds are accepted within thirty days. " + filler)
    chat = await create_chat(client, account)
    answer, frames = await watched_answer(client, account, chat, "What about refunds?")
    [source] = (await get_message(client, account, answer["id"]))["sources"]
    assert source["title"] == "policy.txt"
    assert "Refunds are accepted within thirty days" in source["content"]
    assert len(source["content"].split()) <= 60


async def test_attached_files_are_quoted_even_when_the_question_names_nothing_in_them(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    long_text = "Quarterly revenue grew in every region. " * 30
    file_id = await db_of(client).fetchval(
        """
        INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
        VALUES (%s, 'report.txt', %s, 1, 'x', 'text/plain', 'ready', %s) RETURNING id
        """,
        (account.id, uuid.uuid4().hex, long_text))
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Summarise this for me please",
                                 file_ids=[str(file_id)]))["assistant_message"]
    await generate(app_of(client), answer["id"])
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete"
    (source,) = stored["sources"]
    assert source["title"] == "report.txt"
    assert source["content"].startswith("Quarterly revenue grew in every region.")
    assert source["content"].endswith("...") and len(source["content"]) < len(long_text)


async def test_an_attached_file_without_text_is_named_in_the_answer(make_client):
    client = await make_client(start_workers=False, FILE_WAIT_SECONDS=0.1)
    account = await register(client)
    await add_file(client, account, "scan.pdf", None, status="failed")
    file_id = await db_of(client).fetchval("SELECT id FROM files WHERE user_id = %s", (account.id,))
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "What is in the scan?",
                                 file_ids=[str(file_id)]))["assistant_message"]
    await generate(app_of(client), answer["id"])
    stored = await get_message(client, account, answer["id"])
    assert "\u201cscan.pdf\u201d is attached but its text is not available" in stored["content"]
