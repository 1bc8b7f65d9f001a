"""/v1/chat/completions takes image_url parts with data URLs: the image
becomes a file of the user attached to the question; remote URLs are refused."""

import base64

from support.accounts import register
from support.sample_files import image_bytes
from support.uploads import processed


async def api_key(client, account) -> dict:
    resp = await client.post("/api/keys", json={"name": "images"}, headers=account.headers)
    return {"Authorization": f"Bearer {(await resp.json())['key']}"}


def asking(url: str) -> dict:
    return {"model": "builtin", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": url}}]}]}


async def test_a_data_url_image_becomes_the_users_file_attached_to_the_question(client):
    account = await register(client)
    png = image_bytes((64, 32))
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    resp = await client.post("/v1/chat/completions", json=asking(url), headers=await api_key(client, account))
    assert resp.status == 200, await resp.text()
    listed = (await (await client.get("/api/files", headers=account.headers)).json())["items"]
    [image] = listed
    assert (image["name"], image["content_type"], image["size"]) == ("image-1.png", "image/png", len(png))
    assert "64x32" in (await processed(client, account, image))["preview_text"]
    [chat] = (await (await client.get("/api/chats", headers=account.headers)).json())["items"]
    items = (await (await client.get(f"/api/chats/{chat['id']}/messages", headers=account.headers)).json())["items"]
    assert [m["file_ids"] for m in items if m["role"] == "user"] == [[image["id"]]]


async def test_a_remote_image_url_is_refused_without_being_fetched(client):
    account = await register(client)
    resp = await client.post("/v1/chat/completions", json=asking("http://127.0.0.1:9/cat.png"),
                             headers=await api_key(client, account))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_image_url" and "remote URLs are not fetched" in error["message"]
    assert (await (await client.get("/api/chats", headers=account.headers)).json())["items"] == []


async def test_a_data_url_that_is_not_an_image_is_refused(client):
    account = await register(client)
    url = "data:image/png;base64," + base64.b64encode(b"just text, not a picture").decode()
    resp = await client.post("/v1/chat/completions", json=asking(url), headers=await api_key(client, account))
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_image_url"
