"""Schemathesis against /openapi.json, authenticated and bounded in examples
and time: no server error and no answer that the document does not describe."""

import asyncio
import sys
from pathlib import Path

import pytest

from support.accounts import create_chat, register

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")
# bounds of one run: CI gives it about two minutes
MAX_EXAMPLES, MAX_SECONDS = 12, 75


@pytest.mark.timeout(240)
async def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(client):
    account = await register(client)
    await create_chat(client, account)
    base = f"http://{client.host}:{client.port}"
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json",
        "--header", f"Authorization: Bearer {account.token}",
        "--checks", CHECKS, "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_SECONDS),
        "--seed", "9", "--no-shrink", "--workers", "2", "--suppress-health-check", "all",
        "--exclude-path", "/ws/chat/{chat_id}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode(errors="replace")[-6000:]
