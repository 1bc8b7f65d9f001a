"""The preview service (docs/preview-service.md), faked by a real HTTP server
on 127.0.0.1: good answers, 500s, time-outs, garbage, huge answers."""

import asyncio
import base64
import email.parser
import email.policy
import json

import pytest
from aiohttp import web
from support.accounts import register
from support.sample_files import image_bytes, read_image
from support.served_app import app_of, db_of
from support.uploads import processed, stored_files, uploaded

from chatserver import appkeys
from chatserver.files.housekeeping import housekeep

API_KEY = "preview-key"
GOOD = {"content": "the full extracted text", "preview": "short preview"}
# the time-out of the tests that need one: a slow answer passes it, a good one never comes near it
TIMEOUT = 2


class FakePreviewService:
    """Answers from a script, one entry per request (the last one repeats);
    remembers what each request carried."""

    def __init__(self, *script):
        self.script = list(script)
        self.requests: list[dict] = []
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # parsed with the standard library: aiohttp's multipart reader warns
        # (an error under pytest) on some chunked bodies
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + await request.read())
        [part] = message.iter_parts()
        self.requests.append({"authorization": request.headers.get("Authorization"),
                              "field": part.get_param("name", header="content-disposition"),
                              "filename": part.get_filename(), "data": part.get_payload(decode=True),
                              "content_type": part.get_content_type()})
        return await self.script[min(len(self.requests), len(self.script)) - 1](self)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/preview", self.handle)
        return app


def reply(body=GOOD, status=200):
    """A script entry answering `body` (a response object cannot be sent twice)."""
    text = body if isinstance(body, str) else json.dumps(body)

    async def answer(service) -> web.Response:
        return web.Response(text=text, status=status, content_type="application/json")

    return answer


async def slow(service) -> web.Response:
    """Answers well after TIMEOUT, which the good answers stay far within."""
    await asyncio.sleep(3 * TIMEOUT)
    return await reply()(service)


async def held(service) -> web.Response:
    await service.release.wait()
    return await reply()(service)


@pytest.fixture
def with_service(make_client, fake_service):
    async def start(*script, **overrides):
        service = FakePreviewService(*script)
        server = await fake_service(service.app())
        client = await make_client(PREVIEW_SERVICE_URL=str(server.make_url("/preview")),
                                   PREVIEW_SERVICE_API_KEY=API_KEY, **overrides)
        return service, client, await register(client)

    return start


async def test_a_good_answer_fills_the_file_and_the_request_follows_the_contract(with_service):
    png = image_bytes((64, 32))
    service, client, user = await with_service(reply(GOOD | {"preview_image": base64.b64encode(png).decode()}))
    file = await processed(client, user, await uploaded(client, user, b"some text", "doc.txt"))
    assert (file["status"], file["text_content"], file["preview_text"]) == ("ready", GOOD["content"], "short preview")
    assert file["has_preview_image"] is True and file["error"] is None
    [request] = service.requests
    assert request["authorization"] == f"Bearer {API_KEY}"
    assert (request["field"], request["filename"], request["data"]) == ("file", "doc.txt", b"some text")
    assert request["content_type"] == "text/plain"
    resp = await client.get(f"/api/files/{file['id']}/preview", headers=user.headers)
    assert resp.headers["Content-Type"] == "image/png" and await resp.read() == png


async def test_an_answer_without_preview_gets_one_from_the_content(with_service):
    _, client, user = await with_service(reply({"content": "alpha   beta\n\ngamma"}))
    file = await processed(client, user, await uploaded(client, user, b"x", "a.txt"))
    assert (file["status"], file["preview_text"], file["has_preview_image"]) == ("ready", "alpha beta gamma", False)


async def test_a_big_file_is_streamed_to_the_service_whole(with_service):
    service, client, user = await with_service(reply())
    data = bytes(range(256)) * 4096  # 1 MiB
    file = await processed(client, user, await uploaded(client, user, data, "blob.bin"))
    assert file["status"] == "ready"
    assert service.requests[0]["data"] == data


@pytest.mark.parametrize("first", [reply({"error": "busy"}, status=500), reply("<html>bad gateway</html>", 502),
                                   slow, reply("not json at all"), reply({"content": 5})])
async def test_one_bad_answer_is_retried_then_the_file_is_ready(with_service, first):
    service, client, user = await with_service(first, reply(), PREVIEW_SERVICE_TIMEOUT_SECONDS=TIMEOUT)
    file = await processed(client, user, await uploaded(client, user, b"text", "a.txt"))
    assert (file["status"], file["text_content"]) == ("ready", GOOD["content"])
    assert len(service.requests) == 2


@pytest.mark.parametrize("answer, error", [
    (reply({"error": "boom"}, status=500), "preview service answered HTTP 500"),
    (reply({"error": "who are you"}, status=401), "preview service answered HTTP 401"),
    (slow, f"preview service did not answer within {TIMEOUT:g} s"),
    (reply("{garbage"), "preview service answered invalid JSON"),
    (reply(["content"]), "preview service answer has no 'content' string"),
    (reply({"content": "x", "preview": 7}), "preview service answer has a 'preview' that is not a string"),
    (reply({"content": "x", "preview_image": "%%%"}),
     "preview service answer has a 'preview_image' that is not base64"),
    (reply({"content": "x", "preview_image": base64.b64encode(b"GIF89a...").decode()}),
     "preview service answer has a 'preview_image' that is neither PNG nor JPEG"),
])
async def test_a_service_that_keeps_failing_makes_the_file_failed_with_the_reason(with_service, answer, error):
    service, client, user = await with_service(answer, PREVIEW_SERVICE_TIMEOUT_SECONDS=TIMEOUT, JOB_MAX_ATTEMPTS=3)
    file = await processed(client, user, await uploaded(client, user, b"text", "a.txt"))
    assert (file["status"], file["error"]) == ("failed", error)
    assert len(service.requests) == 3
    assert stored_files(client)["previews"] == []


async def test_an_unreachable_service_makes_the_file_failed(make_client, unused_tcp_port):
    client = await make_client(PREVIEW_SERVICE_URL=f"http://127.0.0.1:{unused_tcp_port}/preview",
                               JOB_MAX_ATTEMPTS=2)
    user = await register(client)
    file = await processed(client, user, await uploaded(client, user, b"text", "a.txt"))
    assert file["status"] == "failed"
    assert file["error"].startswith("preview service unreachable: ClientConnectorError")


async def test_a_huge_content_is_cut_to_the_budget(with_service):
    _, client, user = await with_service(reply({"content": "z" * 500_000}), TEXT_EXTRACT_CHAR_BUDGET=1000)
    file = await processed(client, user, await uploaded(client, user, b"text", "a.txt"))
    assert file["status"] == "ready"
    assert file["text_content"] == "z" * 1000 + "\n\n[cut: only the first 1000 characters of the text are kept]"
    assert len(file["preview_text"]) <= 300


async def test_an_answer_over_the_byte_limit_is_refused_unread(with_service):
    service, client, user = await with_service(reply({"content": "z" * 300_000}),
                                               PREVIEW_SERVICE_MAX_ANSWER_BYTES=100_000, JOB_MAX_ATTEMPTS=1)
    file = await processed(client, user, await uploaded(client, user, b"text", "a.txt"))
    assert (file["status"], file["error"]) == ("failed", "preview service answer is larger than 100000 bytes")


async def test_nul_characters_in_the_answer_are_dropped(with_service):
    _, client, user = await with_service(reply({"content": "a\u0000b", "preview": "\ud800c"}))
    file = await processed(client, user, await uploaded(client, user, b"text", "a.txt"))
    assert (file["status"], file["text_content"], file["preview_text"]) == ("ready", "ab", "?c")


async def test_the_status_is_processing_while_the_service_works(with_service):
    service, client, user = await with_service(held)
    file = await uploaded(client, user, b"text", "a.txt")
    assert file["status"] == "pending"
    while not service.requests:
        await asyncio.sleep(0.01)
    resp = await client.get(f"/api/files/{file['id']}", headers=user.headers)
    assert (await resp.json())["status"] == "processing"
    service.release.set()
    assert (await processed(client, user, file))["status"] == "ready"


async def test_a_file_deleted_while_the_service_works_leaves_no_thumbnail(with_service):
    png = base64.b64encode(image_bytes((10, 10))).decode()

    async def held_with_image(service):
        await service.release.wait()
        return await reply(GOOD | {"preview_image": png})(service)

    service, client, user = await with_service(held_with_image)
    file = await uploaded(client, user, b"text", "a.txt")
    while not service.requests:
        await asyncio.sleep(0.01)
    assert (await client.delete(f"/api/files/{file['id']}", headers=user.headers)).status == 204
    service.release.set()
    await app_of(client)[appkeys.QUEUE].wait_idle()
    assert stored_files(client) == {"tmp": [], "files": [], "previews": []}


async def test_housekeeping_retries_temporary_failures_a_bounded_number_of_times(with_service):
    service, client, user = await with_service(reply(status=503), JOB_MAX_ATTEMPTS=2, PREVIEW_RETRY_ROUNDS=2)
    file = await processed(client, user, await uploaded(client, user, b"text", "a.txt"))
    assert file["status"] == "failed"
    app = app_of(client)
    for _ in range(3):
        await housekeep(app)
        await app[appkeys.QUEUE].wait_idle()
    assert len(service.requests) == 2 * (1 + 2)
    assert (await processed(client, user, file))["error"] == "preview service answered HTTP 503"

    service.script = [reply()]
    await db_of(client).execute("UPDATE files SET preview_retries = 0 WHERE id = %s", (file["id"],))
    await housekeep(app)
    file = await processed(client, user, file)
    assert (file["status"], file["text_content"], file["error"]) == ("ready", GOOD["content"], None)


async def test_a_new_thumbnail_replaces_an_older_one_of_another_format(with_service):
    jpeg = image_bytes((8, 8), "JPEG")
    service, client, user = await with_service(reply(GOOD | {"preview_image": base64.b64encode(jpeg).decode()}))
    file = await processed(client, user, await uploaded(client, user, b"x", "a.txt"))
    [old] = stored_files(client)["previews"]
    assert old.endswith(".jpeg")
    service.script = [reply(GOOD | {"preview_image": base64.b64encode(image_bytes((8, 8))).decode()})]
    await db_of(client).execute("UPDATE files SET status = 'pending' WHERE id = %s", (file["id"],))
    await app_of(client)[appkeys.QUEUE].enqueue("preview", {"file_id": file["id"]})
    await processed(client, user, file)
    [new] = stored_files(client)["previews"]
    assert new.endswith(".png")
    resp = await client.get(f"/api/files/{file['id']}/preview", headers=user.headers)
    assert read_image(await resp.read()).format == "PNG"
