"""An account registered through the REST API, and a chat of its own."""

from __future__ import annotations

import dataclasses
import uuid

from aiohttp.test_utils import TestClient


@dataclasses.dataclass
class Account:
    id: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: TestClient, email: str | None = None, password: str = "correct horse") -> Account:
    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    resp = await client.post("/api/auth/register", json={"email": email, "password": password})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return Account(body["user"]["id"], email, password, body["access_token"])


async def create_chat(client: TestClient, account: Account, title: str = "A chat") -> dict:
    resp = await client.post("/api/chats", json={"title": title}, headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()
