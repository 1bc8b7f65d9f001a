from support.accounts import register


async def test_register_login_chat_message_flow(client):
    account = await register(client)
    resp = await client.post("/api/auth/login", json={"email": account.email, "password": account.password})
    assert resp.status == 200
    token = (await resp.json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    chat = await (await client.post("/api/chats", json={}, headers=headers)).json()
    resp = await client.post(f"/api/chats/{chat['id']}/messages", json={"content": "hi"}, headers=headers)
    assert resp.status == 201
    resp = await client.get(f"/api/chats/{chat['id']}/messages", headers=headers)
    items = (await resp.json())["items"]
    assert [m["role"] for m in items] == ["user", "assistant"]
