"""Every bad input of issue 9 answered in the JSON error shape, never a 500
(docs/README.md, "Errors"; docs/websocket.md, "Bad input")."""

import asyncio
import base64
import io
import json
import logging
import socket

from support.accounts import register
from support.error_shape import assert_error
from support.uploads import upload


async def json_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert_error(body, code)
    return body


def nested(depth: int) -> str:
    return '{"content": ' + "[" * depth + "]" * depth + "}"


async def test_json_nested_past_64_levels_is_refused_on_every_json_endpoint(client, user, chat):
    for path in ("/api/chats", f"/api/chats/{chat['id']}/messages", "/api/auth/register"):
        for depth in (65, 1000, 30000):
            resp = await client.post(path, data=nested(depth), headers=user.headers | {
                "Content-Type": "application/json"})
            body = await json_error(resp, 422, "invalid_json")
            assert "deeper than 64 levels" in body["error"]


async def test_json_nested_64_levels_is_parsed(client, user, chat):
    resp = await client.post(f"/api/chats/{chat['id']}/messages", data=nested(63),
                             headers=user.headers | {"Content-Type": "application/json"})
    await json_error(resp, 422, "validation_error")


async def test_infinite_and_nan_numbers_are_refused(client, user):
    for number in ("1e999", "-1e999", "NaN", "Infinity"):
        resp = await client.post("/api/chats", data=f'{{"title": "t", "x": {number}}}',
                                 headers=user.headers | {"Content-Type": "application/json"})
        await json_error(resp, 422, "invalid_json")


async def test_a_login_form_that_is_not_utf8_or_names_an_unknown_charset_is_refused(client):
    for body, content_type in ((b"username=a\xff&password=b", "application/x-www-form-urlencoded"),
                               (b"username=a&password=b", "application/x-www-form-urlencoded; charset=bogus")):
        resp = await client.post("/api/auth/login", data=body, headers={"Content-Type": content_type})
        await json_error(resp, 422, "invalid_input")


def cursor_of(*values: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


async def test_a_messages_cursor_out_of_range_or_of_other_digits_is_refused(client, user, chat):
    for position in (str(2**63), "9" * 100, "²", "٣"):
        resp = await client.get(f"/api/chats/{chat['id']}/messages", params={"cursor": cursor_of(position)},
                                headers=user.headers)
        await json_error(resp, 422, "invalid_cursor")


async def test_a_cursor_outside_the_base64url_alphabet_is_a_validation_error(client, user, chat):
    resp = await client.get(f"/api/chats/{chat['id']}/messages", params={"cursor": "not a cursor!"},
                            headers=user.headers)
    await json_error(resp, 422, "validation_error")


async def raw_request(client, data: bytes) -> tuple[int, dict, bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(data)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


async def test_what_the_http_parser_refuses_is_answered_in_the_json_shape(client):
    for request in (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
                    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
                    b"NOT A REQUEST LINE\r\n\r\n"):
        status, headers, body = await raw_request(client, request)
        assert status == 400
        assert headers["content-type"].startswith("application/json")
        assert_error(json.loads(body), "bad_request")


async def test_a_body_over_max_request_body_is_a_json_413(make_client):
    client = await make_client(MAX_REQUEST_BODY=1000)
    account = await register(client)
    resp = await client.post("/api/chats", json={"title": "x" * 2000}, headers=account.headers)
    await json_error(resp, 413, "payload_too_large")


async def test_the_longest_valid_message_fits_the_default_body_limit_even_escaped(client, user, chat):
    content = "😀" * 100_000
    body = json.dumps({"content": content}, ensure_ascii=True)
    assert len(body) > 1_000_000
    resp = await client.post(f"/api/chats/{chat['id']}/messages", data=io.BytesIO(body.encode()),
                             headers=user.headers | {"Content-Type": "application/json"})
    assert resp.status == 201, await resp.text()


async def test_listing_files_of_a_chat_id_with_a_nul_is_a_documented_422(client, user):
    resp = await client.get("/api/files?chat_id=%00", headers=user.headers)
    await json_error(resp, 422)
    spec = await (await client.get("/openapi.json")).json()
    assert "422" in spec["paths"]["/api/files"]["get"]["responses"]


async def test_an_empty_chat_id_on_upload_is_refused(client, user):
    resp = await upload(client, user, b"hello", chat_id="")
    await json_error(resp, 404, "not_found")


async def test_a_websocket_frame_nested_too_deep_gets_an_error_frame_and_the_socket_stays(client, user, chat):
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={user.token}")
    await ws.send_str("[" * 30000 + "]" * 30000)
    frame = await ws.receive_json(timeout=30)
    assert "deeper than 64 levels" in frame["error"]
    await ws.send_json({"type": "ping", "timestamp": 5})
    assert await ws.receive_json(timeout=30) == {"type": "pong", "timestamp": 5}
    await ws.close()


async def test_a_ping_with_an_infinite_timestamp_gets_an_error_frame_not_infinity(client, user, chat):
    ws = await client.ws_connect(f"/ws/chat/{chat['id']}?token={user.token}")
    await ws.send_str('{"type":"ping","timestamp":1e999}')
    raw = await ws.receive_str(timeout=30)
    assert "out of range" in json.loads(raw)["error"]
    await ws.close()


async def test_a_client_closing_during_the_websocket_handshake_leaves_no_traceback(client, user, chat, caplog):
    caplog.set_level(logging.INFO, logger="chatserver.access")
    key = base64.b64encode(b"0123456789abcdef").decode()
    handshake = (f"GET /ws/chat/{chat['id']}?token={user.token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    for _ in range(5):
        sock = socket.create_connection((client.host, client.port))
        sock.sendall(handshake.encode())
        sock.close()
    # each request's access line is written once its handling is over, after anything it logged
    async with asyncio.timeout(30):
        while sum(f"path=/ws/chat/{chat['id']} " in r.getMessage() for r in caplog.records) < 5:
            await asyncio.sleep(0.02)
    resp = await client.get("/health")
    assert resp.status == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]


async def test_a_temperature_of_the_wrong_json_type_is_refused_not_coerced(client, user, chat):
    for value in (False, True, "1"):
        resp = await client.post("/api/chats", json={"temperature": value}, headers=user.headers)
        await json_error(resp, 422, "validation_error")
        resp = await client.patch(f"/api/chats/{chat['id']}", json={"temperature": value}, headers=user.headers)
        await json_error(resp, 422, "validation_error")
    stored = await (await client.get(f"/api/chats/{chat['id']}", headers=user.headers)).json()
    assert stored["temperature"] is None


async def test_a_json_body_naming_a_charset_other_than_utf8_is_refused(client, user):
    body = json.dumps({"title": "über"})
    for charset, data in (("klingon", body.encode()), ("utf-16", body.encode("utf-16")),
                          ("latin-1", body.encode("latin-1"))):
        resp = await client.post("/api/chats", data=data, headers=user.headers | {
            "Content-Type": f"application/json; charset={charset}"})
        error = await json_error(resp, 422, "invalid_input")
        assert "UTF-8" in error["error"]
    resp = await client.post("/api/chats", data=body.encode(), headers=user.headers | {
        "Content-Type": "application/json; charset=utf-8"})
    assert resp.status == 201


async def test_a_json_body_in_utf16_without_a_charset_is_not_json(client, user):
    resp = await client.post("/api/chats", data=json.dumps({"title": "t"}).encode("utf-16"),
                             headers=user.headers | {"Content-Type": "application/json"})
    body = await json_error(resp, 422, "invalid_json")
    assert "UTF-8" in body["error"]


async def test_the_schema_and_the_server_agree_that_a_patched_title_cannot_be_null(client, user, chat):
    spec = await (await client.get("/openapi.json")).json()
    title = spec["components"]["schemas"]["ChatPatch"]["properties"]["title"]
    assert title.get("type") == "string" and "anyOf" not in title
    resp = await client.patch(f"/api/chats/{chat['id']}", json={"title": None}, headers=user.headers)
    await json_error(resp, 422, "validation_error")


async def test_what_the_http_parser_refuses_never_echoes_the_request(client):
    for request in (b"GET /api/chats?cursor=" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + b"secret" * 2000 + b"\r\n\r\n",
                    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
                    b"NOT A REQUEST LINE\r\n\r\n"):
        status, _, body = await raw_request(client, request)
        assert status == 400
        message = json.loads(body)["error"]
        assert not any(leak in message for leak in ("bytearray", "b'", "AAAA", "secret", "NOT A")), message


async def test_a_malformed_multipart_body_is_refused_without_echoing_it(client, user):
    boundary = "XyZ"
    for raw in (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n"
                b"Content-Length: nope\x01\r\n\r\nhello\r\n--XyZ--\r\n",
                b"garbage\x1b[31m without any boundary"):
        resp = await client.post("/api/files", data=raw, headers=user.headers | {
            "Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert 400 <= resp.status < 500, await resp.text()
        message = (await resp.json())["error"]
        assert not any(leak in message for leak in ("b'", "bytearray", "\x1b", "garbage", "nope")), message


async def test_the_schema_says_what_the_server_does_with_a_cursor_it_did_not_give_out(client, user, chat):
    spec = await (await client.get("/openapi.json")).json()
    for path in ("/api/chats", "/api/chats/{chat_id}/messages", "/api/keys"):
        operation = spec["paths"][path]["get"]
        cursor = next(p for p in operation["parameters"] if p["name"] == "cursor")
        assert "invalid_cursor" in cursor["description"] and "422" in operation["responses"]
    for path in ("/api/chats", f"/api/chats/{chat['id']}/messages", "/api/keys"):
        resp = await client.get(path, params={"cursor": "0"}, headers=user.headers)
        await json_error(resp, 422, "invalid_cursor")


async def test_a_string_past_its_documented_length_is_refused_even_when_whitespace_makes_the_excess(client, user):
    # the schema's maxLength holds for the string as sent (schemathesis found padded ones taken)
    resp = await client.post("/api/chats", json={"title": " " * 300 + "x"}, headers=user.headers)
    await json_error(resp, 422, "validation_error")
    resp = await client.post("/api/auth/register", json={"email": " " * 250 + "pad@example.com",
                                                         "password": "password123"})
    await json_error(resp, 422, "validation_error")


async def test_whitespace_around_a_string_within_its_length_is_stripped(client, user):
    resp = await client.post("/api/chats", json={"title": "  Trip plans \n"}, headers=user.headers)
    assert resp.status == 201 and (await resp.json())["title"] == "Trip plans"
    resp = await client.post("/api/chats", json={"title": " \t "}, headers=user.headers)
    await json_error(resp, 422, "validation_error")
