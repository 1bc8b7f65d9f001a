"""Upload throughput and the server's memory while it streams a big upload.

Uploads one file (100 MB by default) to a server in its own process, with
MAX_UPLOAD_SIZE raised to fit, and prints MB/s and the server's peak RSS
growth during the upload. Streaming means the growth stays far below the
file's size; the run fails if it reaches 32 MB.

    .venv/bin/python bench/upload.py [--mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rss_kib, start_server  # noqa: E402

GROWTH_LIMIT_MB = 32
MB = 1_000_000


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> bool:
    """Start a new VmHWM window (Linux clear_refs 5); False if not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


async def sample_rss(pid: int, peak: list[int], stop: asyncio.Event) -> None:
    """Fallback where VmHWM cannot be reset: poll VmRSS."""
    while not stop.is_set():
        peak[0] = max(peak[0], rss_kib(pid))
        await asyncio.sleep(0.005)


async def upload(session: aiohttp.ClientSession, base: str, headers: dict, path: Path) -> dict:
    with open(path, "rb") as fh, aiohttp.MultipartWriter("form-data") as body:
        part = body.append(fh, {"Content-Type": "application/octet-stream"})
        part.set_content_disposition("form-data", name="file", filename=path.name)
        async with session.post(f"{base}/api/files", data=body, headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            return await resp.json()


async def run(port: int, pid: int, size: int, workdir: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    small, big = workdir / "warmup.bin", workdir / "big.bin"
    small.write_bytes(os.urandom(MB))
    with open(big, "wb") as fh:
        block = os.urandom(MB)
        for _ in range(size // MB):
            fh.write(block)
        fh.write(block[: size % MB])
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(f"{base}/api/auth/register",
                                json={"email": f"bench-{uuid.uuid4().hex[:8]}@example.com",
                                      "password": "benchmark-password"}) as resp:
            headers = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
        await upload(session, base, headers, small)

        before = rss_kib(pid)
        exact = reset_peak_rss(pid)
        peak, stop = [before], asyncio.Event()
        sampler = asyncio.create_task(sample_rss(pid, peak, stop))
        started = time.perf_counter()
        file = await upload(session, base, headers, big)
        elapsed = time.perf_counter() - started
        stop.set()
        await sampler
        if exact:
            peak[0] = max(peak[0], peak_rss_kib(pid))
    assert file["size"] == size
    growth_mb = (peak[0] - before) * 1024 / MB
    print(f"uploaded {size / MB:.0f} MB in {elapsed:.2f} s: {size / MB / elapsed:.1f} MB/s")
    print(f"server RSS before {before * 1024 / MB:.1f} MB, peak growth during the upload {growth_mb:.1f} MB "
          f"({'VmHWM' if exact else 'sampled VmRSS'}; limit {GROWTH_LIMIT_MB} MB)")
    if growth_mb >= GROWTH_LIMIT_MB:
        raise SystemExit(f"FAIL: the server grew by {growth_mb:.1f} MB while receiving the upload")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the uploaded file in MB (default 100)")
    args = parser.parse_args()
    size = args.mb * MB
    proc, port = start_server(MAX_UPLOAD_SIZE=str(size + MB))
    try:
        with tempfile.TemporaryDirectory(prefix="chatserver-upload-") as workdir:
            uvloop.run(run(port, proc.pid, size, Path(workdir)))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
