"""A chat's knowledge files and long attached files reach the model as
numbered passages to cite; the answer's sources are those passages."""

import pytest
from support.accounts import create_chat, register
from support.error_shape import assert_error
from support.llmock import LLMock
from support.messages import get_message, idle, post_message
from support.sample_files import pdf_bytes
from support.uploads import processed, uploaded

PAGES = ["The orchard has forty apple trees planted in rows.",
         "Pruning of the pear trees happens every February before the buds open.",
         "The cider press is cleaned with hot water after each harvest."]
QUESTION = "When are the pear trees pruned?"


@pytest.fixture(scope="module")
def llmock():
    server = LLMock()
    yield server
    server.stop()


async def model_client(make_client, llmock, **settings):
    llmock.script()
    return await make_client(OPENAI_BASE_URL=llmock.url + "/v1", OPENAI_MODEL="gpt-4o-mini", **settings)


async def answered(client, account, chat_id: str, question: str = QUESTION, **extra) -> dict:
    posted = await post_message(client, account, chat_id, question, **extra)
    await idle(client)
    return await get_message(client, account, posted["assistant_message"]["id"])


async def chat_with_knowledge(client, account, file_ids: list[str]):
    return await client.post("/api/chats", json={"title": "Orchard", "knowledge": file_ids},
                             headers=account.headers)


async def test_a_chat_keeps_its_knowledge_files_and_changes_them(client):
    account = await register(client)
    file = await uploaded(client, account, b"Pears in February.", "notes.txt")
    resp = await chat_with_knowledge(client, account, [file["id"], file["id"]])
    assert resp.status == 201
    chat = await resp.json()
    assert chat["knowledge"] == [file["id"]]
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"knowledge": []}, headers=account.headers)
    assert (await resp.json())["knowledge"] == []
    assert (await create_chat(client, account))["knowledge"] == []


async def test_knowledge_naming_another_users_file_is_refused(client):
    owner, stranger = await register(client), await register(client)
    file = await uploaded(client, owner, b"Private notes.", "private.txt")
    resp = await chat_with_knowledge(client, stranger, [file["id"]])
    assert resp.status == 422
    assert_error(await resp.json(), "unknown_files")
    chat = await create_chat(client, stranger)
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"knowledge": [file["id"]]},
                              headers=stranger.headers)
    assert resp.status == 422


async def test_the_model_gets_the_knowledge_passages_numbered_and_the_answer_cites_them(make_client, llmock):
    client = await model_client(make_client, llmock)
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, pdf_bytes(PAGES), "orchard.pdf"))
    chat = await (await chat_with_knowledge(client, account, [file["id"]])).json()
    answer = await answered(client, account, chat["id"])
    [body] = llmock.bodies()
    sent = body["messages"][-1]["content"]
    assert "cite each passage you use by its number in square brackets" in sent
    assert f"[1] orchard.pdf, page 2:\n{PAGES[1]}" in sent
    assert sent.endswith(QUESTION)
    first = answer["sources"][0]
    assert (first["title"], first["file_id"], first["page"], first["content"]) == (
        "orchard.pdf", file["id"], 2, PAGES[1])
    assert first["passage_id"]


async def test_an_attached_file_that_fits_goes_whole_and_one_too_long_as_passages(make_client, llmock):
    client = await model_client(make_client, llmock, AI_CONTEXT_TOKENS=400, DEFAULT_SYSTEM_PROMPT="")
    account = await register(client)
    chat = await create_chat(client, account)
    filler = " ".join(f"Row {n} of the orchard holds apple trees of variety number {n}." for n in range(150))
    long = await processed(client, account, await uploaded(
        client, account, pdf_bytes([filler, PAGES[1]]), "long.pdf"))
    short = await processed(client, account, await uploaded(client, account, b"Buy twine.", "short.txt"))
    answer = await answered(client, account, chat["id"], file_ids=[long["id"], short["id"]])
    sent = llmock.bodies()[-1]["messages"][-1]["content"]
    assert "--- short.txt ---\nBuy twine." in sent
    assert "too long to include whole" in sent and filler not in sent
    assert PAGES[1] in sent
    # the filler runs over several pages: the passage knows which page it is on
    assert any(s["file_id"] == long["id"] and s["page"] > 1 and s["content"] == PAGES[1] for s in answer["sources"])


async def test_the_builtin_answer_quotes_the_knowledge_passage_with_its_page(client):
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, pdf_bytes(PAGES), "orchard.pdf"))
    chat = await (await chat_with_knowledge(client, account, [file["id"]])).json()
    answer = await answered(client, account, chat["id"])
    assert f"From \u201corchard.pdf\u201d, page 2: {PAGES[1]}" in answer["content"]
    source = answer["sources"][0]
    assert (source["file_id"], source["page"], source["content"]) == (file["id"], 2, PAGES[1])
    assert source["passage_id"]
