"""The built-in backend: full-text search over the user's files and messages, honest about itself."""

import uuid

from support.accounts import create_chat, register
from support.messages import get_message, idle, post_message
from support.sample_files import image_bytes, pdf_bytes
from support.served_app import app_of, db_of
from support.uploads import uploaded
from support.ws_frames import open_ws, read_to_end, receive, streamed_text

from chatserver import appkeys
from chatserver.ai.answer_job import generate
from chatserver.ai.builtin import HOW, LEAD, sentences


async def add_file(client, account, name, text, status="ready"):
    return await db_of(client).fetchval(
        """
        INSERT INTO files (user_id, name, storage_name, size, sha256, content_type, status, text_content)
        VALUES (%s, %s, %s, 1, 'x', 'text/plain', %s, %s) RETURNING id
        """,
        (account.id, name, uuid.uuid4().hex, status, text))


async def add_answer(client, account, chat_id, text):
    """A complete answer of some earlier model in the chat."""
    await db_of(client).execute(
        """
        INSERT INTO messages (chat_id, user_id, role, content, status)
        VALUES (%s, %s, 'assistant', %s, 'complete')
        """,
        (chat_id, account.id, text))


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
    # streamed, not sent whole; how many frames depends on how far the socket was behind (a follower
    # behind by several chunks takes them as one frame), so the count is not the point
    assert any(f.get("type") == "chunk" for f in frames)
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["content"] == streamed_text(frames)
    assert stored["content"].startswith(f"{LEAD} {HOW}") and "not a language model" in stored["content"]
    assert "biology.txt" in stored["content"] and "stranger" not in stored["content"]
    assert stored["sources"] == [{"title": "biology.txt", "url": "",
                                  "content": "Photosynthesis converts light energy into chemical energy "
                                             "stored in glucose."}]
    assert frames[-1] == {"type": "complete", "message_id": answer["id"], "sources": stored["sources"]}


async def test_earlier_answers_are_cited_by_chat_title(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    old_chat = await create_chat(client, account, "Trip planning")
    await add_answer(client, account, old_chat["id"], "The ferry to Naxos leaves Piraeus at 7:25 every morning.")
    chat = await create_chat(client, account, "Today")
    answer, frames = await watched_answer(client, account, chat, "When does the ferry leave?")
    stored = await get_message(client, account, answer["id"])
    assert stored["sources"] == [{"title": "Trip planning", "url": "",
                                  "content": "The ferry to Naxos leaves Piraeus at 7:25 every morning."}]
    assert "Trip planning" in stored["content"]


async def test_the_users_own_messages_are_never_quoted(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    old_chat = await create_chat(client, account, "Trip planning")
    await post_message(client, account, old_chat["id"], "Does the ferry to Naxos leave from Piraeus?")
    chat = await create_chat(client, account)
    answer, frames = await watched_answer(client, account, chat, "When does the ferry to Naxos leave?")
    stored = await get_message(client, account, answer["id"])
    assert stored["sources"] == []
    assert "Piraeus" not in stored["content"]


async def test_earlier_builtin_answers_are_not_quoted_again(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    await add_file(client, account, "ferry.txt", "The ferry to Naxos leaves at 7:25.")
    chat = await create_chat(client, account)
    # the first answer explains the search, the second only opens with the short lead: neither is quoted
    await watched_answer(client, account, chat, "When does the ferry leave?")
    await watched_answer(client, account, chat, "When does the ferry leave?")
    answer, frames = await watched_answer(client, account, chat, "When does the ferry leave?")
    stored = await get_message(client, account, answer["id"])
    assert stored["sources"] == [{"title": "ferry.txt", "url": "", "content": "The ferry to Naxos leaves at 7:25."}]


async def test_nothing_found_is_said_plainly(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    chat = await create_chat(client, account)
    answer, frames = await watched_answer(client, account, chat, "Quantum chromodynamics?")
    stored = await get_message(client, account, answer["id"])
    assert stored["status"] == "complete" and stored["sources"] == []
    assert stored["content"] == (f"{LEAD} {HOW}\n\nI found nothing in your files or earlier answers "
                                 "that matches your message.")


async def test_the_builtin_backend_runs_when_nothing_is_configured(client, user, chat):
    answer = (await post_message(client, user, chat["id"], "hello"))["assistant_message"]
    await idle(client)
    stored = await get_message(client, user, answer["id"])
    assert stored["status"] == "complete" and stored["content"].startswith(LEAD)


async def test_only_the_first_answer_of_a_conversation_explains_the_search(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    await add_file(client, account, "ferry.txt", "The ferry to Naxos leaves at 7:25.")
    chat = await create_chat(client, account)
    first, _ = await watched_answer(client, account, chat, "When does the ferry leave?")
    second, _ = await watched_answer(client, account, chat, "Where does the ferry go?")
    first_text = (await get_message(client, account, first["id"]))["content"]
    second_text = (await get_message(client, account, second["id"]))["content"]
    assert first_text.startswith(f"{LEAD} {HOW}\n\n")
    assert second_text.startswith(f"{LEAD}\n\n") and HOW not in second_text
    assert len(LEAD.split()) <= 15
    assert "The ferry to Naxos leaves at 7:25." in second_text


async def test_a_new_conversation_explains_the_search_again(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    await watched_answer(client, account, await create_chat(client, account), "When does the ferry leave?")
    answer, _ = await watched_answer(client, account, await create_chat(client, account), "And the bus?")
    assert (await get_message(client, account, answer["id"]))["content"].startswith(f"{LEAD} {HOW}")


async def test_a_long_run_on_text_is_quoted_by_the_words_around_the_match(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    filler = "lorem ipsum dolor sit amet " * 60
    await add_file(client, account, "policy.txt", filler + "refunds are accepted within thirty days " + filler)
    chat = await create_chat(client, account)
    answer, frames = await watched_answer(client, account, chat, "What about refunds?")
    [source] = (await get_message(client, account, answer["id"]))["sources"]
    assert source["title"] == "policy.txt"
    assert "refunds are accepted within thirty days" in source["content"]
    assert len(source["content"].split()) <= 60


async def test_an_attached_file_that_does_not_match_is_named_in_one_line(make_client):
    client = await make_client(start_workers=False)
    account = await register(client)
    file_id = await add_file(client, account, "report.txt", "Quarterly revenue grew in every region. " * 30)
    chat = await create_chat(client, account)
    answer = (await post_message(client, account, chat["id"], "Which bakery sells sourdough?",
                                 file_ids=[str(file_id)]))["assistant_message"]
    await generate(app_of(client), answer["id"])
    stored = await get_message(client, account, answer["id"])
    assert stored["sources"] == []
    assert "\u201creport.txt\u201d does not mention any of the words of your message." in stored["content"]
    assert "Quarterly" not in stored["content"]


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


async def test_two_attached_files_answer_both_halves_of_a_question_in_whole_sentences_once_each(client):
    account = await register(client)
    chat = await create_chat(client, account, "Bakery")
    notes = NOTES.encode()
    attached = [await uploaded(client, account, notes, "notes.txt", chat_id=chat["id"]),
                await uploaded(client, account, notes, "notes-copy.txt", chat_id=chat["id"]),
                await uploaded(client, account, pdf_bytes(OVEN_PDF), "oven.pdf", chat_id=chat["id"]),
                await uploaded(client, account, image_bytes((400, 260)), "logo.png", chat_id=chat["id"])]
    await post_message(client, account, chat["id"], "Remember that revenue grew and the oven is new.")
    posted = await post_message(client, account, chat["id"],
                                "How much did revenue grow in Q3 and what does the new oven cost?",
                                file_ids=[f["id"] for f in attached])
    await app_of(client)[appkeys.QUEUE].wait_idle(30)
    answer = await get_message(client, account, posted["assistant_message"]["id"])
    quoted = [s["content"] for s in answer["sources"]]
    assert answer["status"] == "complete"
    assert {(s["title"], s["content"]) for s in answer["sources"][:2]} == {
        ("notes.txt", "Revenue grew 17 percent in Q3, mostly from the bakery counter."),
        ("oven.pdf", "The new oven costs 23,500 euros and arrives in November.")}
    assert len(quoted) == len(set(quoted))
    assert {s["title"] for s in answer["sources"]} == {"notes.txt", "oven.pdf"}
    assert "does not mention" not in answer["content"]
    assert "Remember that" not in answer["content"] and "How much did" not in answer["content"]
    assert "pixels" not in answer["content"]
    assert "\u201clogo.png\u201d is attached; the built-in search reads text, not images." in answer["content"]


async def test_passages_are_whole_sentences_around_the_match(client):
    account = await register(client)
    chat = await create_chat(client, account)
    file = await uploaded(client, account, NOTES.encode(), "notes.txt", chat_id=chat["id"])
    posted = await post_message(client, account, chat["id"], "Where is the third shop?", file_ids=[file["id"]])
    await app_of(client)[appkeys.QUEUE].wait_idle(30)
    answer = await get_message(client, account, posted["assistant_message"]["id"])
    assert answer["sources"][0] == {
        "title": "notes.txt", "url": "",
        "content": "We are opening a third shop in Leiden in the spring, next to the station."}


def test_sentences_follow_punctuation_bullets_and_paragraphs_not_wrapped_lines():
    text = ("Meeting notes\n- Revenue grew 17.5 percent, e.g. in Q3.\n- Staff: four bakers\n\n"
            "The oven, which Dr. Smith chose after a long search, costs a lot and it\narrives soon. It is big!")
    assert sentences(text) == ["Meeting notes", "- Revenue grew 17.5 percent, e.g. in Q3.", "- Staff: four bakers",
                               "The oven, which Dr. Smith chose after a long search, costs a lot and it arrives soon.",
                               "It is big!"]


NOTES = """Meeting notes, 14 October

Attendees: Anna, Ben and Carla.
Revenue grew 17 percent in Q3, mostly from the bakery counter. Costs stayed flat. We are opening a
third shop in Leiden in the spring, next to the station. Ben will hire two more bakers.
- Next meeting: 11 November.
"""
OVEN_PDF = [
    "Equipment plan. The current oven is twelve years old and breaks down every month. "
    "The new oven costs 23,500 euros and arrives in November. Installation takes two days.",
    "Financing. The bank offers a loan over five years. The shop stays open during the installation.",
]
