"""Passages of uploaded files and GET /api/files/search on a PostgreSQL
without pgvector: full-text search alone, over the user's own files."""

import logging

from support.accounts import register
from support.error_shape import assert_error
from support.sample_files import pdf_bytes
from support.served_app import app_of
from support.uploads import processed, uploaded

from chatserver import appkeys
from chatserver.data import passages

PAGES = ["The orchard has forty apple trees planted in rows.",
         "Pruning of the pear trees happens every February before the buds open.",
         "The cider press is cleaned with hot water after each harvest."]


async def search(client, account, q: str, **params) -> dict:
    resp = await client.get("/api/files/search", params={"q": q, **params}, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_pdf_is_split_into_passages_that_know_their_page(client):
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, pdf_bytes(PAGES), "orchard.pdf"))
    rows = await passages.of_file(app_of(client)[appkeys.DB], file["id"])
    assert [(r["page"], r["text"]) for r in rows] == [(n, text) for n, text in enumerate(PAGES, 1)]


async def test_docx_headings_become_the_passages_headings(client):
    from io import BytesIO

    import docx
    document = docx.Document()
    document.add_heading("Pruning", level=1)
    document.add_paragraph("Cut pear trees in February.")
    out = BytesIO()
    document.save(out)
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, out.getvalue(), "care.docx"))
    rows = await passages.of_file(app_of(client)[appkeys.DB], file["id"])
    assert [(r["heading"], r["text"]) for r in rows] == [("Pruning", "Cut pear trees in February.")]


async def test_search_finds_the_passage_with_its_file_page_and_id(client):
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, pdf_bytes(PAGES), "orchard.pdf"))
    body = await search(client, account, "when are the pear trees pruned?")
    best = body["items"][0]
    assert (best["file_id"], best["file_name"], best["page"]) == (file["id"], "orchard.pdf", 2)
    assert best["text"] == PAGES[1] and best["score"] > 0 and best["passage_id"]


async def test_search_covers_only_the_users_own_files(client):
    owner, stranger = await register(client), await register(client)
    await processed(client, owner, await uploaded(client, owner, pdf_bytes(PAGES), "orchard.pdf"))
    assert (await search(client, stranger, "pear trees pruning"))["items"] == []


async def test_search_keeps_to_the_files_named(client):
    account = await register(client)
    orchard = await processed(client, account, await uploaded(client, account, pdf_bytes(PAGES), "orchard.pdf"))
    other = await processed(client, account, await uploaded(client, account, b"Pear jam recipe.", "jam.txt"))
    both = await search(client, account, "pear")
    assert {i["file_id"] for i in both["items"]} == {orchard["id"], other["id"]}
    only = await search(client, account, "pear", file_ids=other["id"], limit="5")
    assert [i["file_id"] for i in only["items"]] == [other["id"]]


async def test_a_deleted_files_passages_are_no_longer_found(client):
    account = await register(client)
    file = await processed(client, account, await uploaded(client, account, pdf_bytes(PAGES), "orchard.pdf"))
    assert (await client.delete(f"/api/files/{file['id']}", headers=account.headers)).status == 204
    assert (await search(client, account, "cider press"))["items"] == []


async def test_search_refuses_a_missing_query_and_bad_file_ids(client):
    account = await register(client)
    for params in ({}, {"q": " "}, {"q": "x", "file_ids": "not-a-uuid"}, {"q": "x", "limit": "0"}):
        resp = await client.get("/api/files/search", params=params, headers=account.headers)
        assert resp.status == 422, params
        assert_error(await resp.json(), "validation_error")


async def test_search_needs_a_token(client):
    assert (await client.get("/api/files/search", params={"q": "x"})).status == 401


async def test_without_pgvector_the_start_up_log_says_vectors_are_off(make_client, caplog):
    with caplog.at_level(logging.INFO, logger="chatserver.knowledge.vectors"):
        # an embedding model is configured (never reached here): only pgvector is missing
        await make_client(EMBEDDINGS_BASE_URL="http://127.0.0.1:9/v1")
    assert any("vectors: off (this PostgreSQL has no pgvector extension" in r.getMessage() for r in caplog.records)


