"""`python run.py reindex`: files extracted before passages existed are cut
into passages, and the command says whether vectors are on."""

import asyncio
import os
import subprocess
import sys

from support.accounts import register
from support.paths import TESTS_DIR
from support.served_app import app_of

from chatserver import appkeys
from chatserver.data import files, passages


async def test_reindex_cuts_files_that_have_no_passages_and_reports_vectors(client, servers, tmp_path):
    account = await register(client)
    db = app_of(client)[appkeys.DB]
    # a file as one extracted before passages existed: ready, with text, no passages
    row = await files.insert(db, account.id, None, "old.txt", "old-storage", 10, "", "text/plain")
    await files.start_processing(db, str(row["id"]))
    await files.record_ready(db, str(row["id"]), "Old notes about the greenhouse heater.", "Old notes", None)
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": servers["dsn"], "DATA_DIR": str(tmp_path),
           "UPLOAD_DIR": str(tmp_path / "uploads"), "EMBEDDINGS_BUILTIN": "false"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, str(TESTS_DIR.parent / "run.py"), "reindex"],
                                   env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "file(s) cut into passages" in done.stdout
    assert "vectors: off (no embedding model" in done.stdout
    assert [r["text"] for r in await passages.of_file(db, row["id"])] == ["Old notes about the greenhouse heater."]
