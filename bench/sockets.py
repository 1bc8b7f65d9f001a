"""Memory of idle authenticated WebSockets: the server's RSS growth per
socket while N clients hold sockets open, for a chat's socket
(/ws/chat/{id}?token=) and the chat list's (/ws/chats?token=), beside a bare
aiohttp WebSocket server held open the same way (bench/relay.py's baseline).
Each kind gets a fresh server process. The clients run in --procs helper
processes; each socket has a reader (it answers the server's protocol pings,
as a browser does, and sees a close) and sends one JSON ping after opening.

A figure counts only if every socket opened (handshakes refused with 503 and
tried again are counted and printed: they should be 0), every chatserver
socket answered its ping with a pong (it is authenticated and in its receive
loop), and every socket was still open when the RSS was read.

Every socket needs a descriptor in the server, so N is capped by the hard
RLIMIT_NOFILE (the bench raises the soft limit to it).

--compress 15 has the clients offer permessage-deflate, as browsers do: a
socket that has sent or received a frame then holds zlib's state for it.

--trace runs each chatserver under tracemalloc (bench-only: a wrapper
process starts tracemalloc and then run.py's main) and prints, instead of
the RSS, the live Python allocations per socket by the line that made them.

    .venv/bin/python bench/sockets.py [--sockets 19500] [--procs 4] [--kinds bare,chat,list] [--trace]
                                      [--compress 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import aiohttp
import orjson
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, rss_kib, server_env, spawn, start_server  # noqa: E402
from relay import start_baseline  # noqa: E402

# sockets opened before the first reading, so that one-off allocations are not
# counted: opened as the others are, --procs holders at once, so that the pools
# behind the handshakes (Redis, PostgreSQL) have grown to what they need already
WARM = 200
# handshakes under way at once in each holder: a burst of handshakes opens as
# many pooled Redis connections (up to 500), each a descriptor the sockets need
BATCH = 50
ATTEMPTS = 20


# -- the clients ---------------------------------------------------------------

def hold(url: str, count: int, expect_pong: bool, compress: int) -> None:
    """Open `count` sockets to `url`; print `ready <opened> <503s> <resets> <pongs>` once each
    has sent a ping (and, with expect_pong, got its pong); then answer each
    `check` line on stdin with `open <n>`; close them all when stdin closes."""
    retries = resets = 0
    pongs = 0
    readers: list[asyncio.Task] = []
    closed = 0
    all_answered = asyncio.Event()

    async def connect(session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
        nonlocal retries, resets
        for _ in range(ATTEMPTS):
            try:
                ws = await session.ws_connect(url, heartbeat=None, autoping=True, compress=compress)
            except aiohttp.WSServerHandshakeError as exc:
                # a server swamped for a moment answers 503: tried again, and counted
                if exc.status != 503:
                    raise
                retries += 1
            except aiohttp.ClientConnectionError:
                resets += 1
            else:
                # read at once: a socket not read answers no ping, and the server drops it
                readers.append(asyncio.create_task(read(ws)))
                return ws
            await asyncio.sleep(0.5)
        raise RuntimeError(f"no socket after {ATTEMPTS} attempts")

    async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
        # receive() answers the server's protocol pings while it waits
        nonlocal pongs, closed
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT and orjson.loads(message.data).get("type") == "pong":
                    pongs += 1
                    if pongs == count:
                        all_answered.set()
        finally:
            closed += 1

    async def run() -> None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        for start in range(0, count, BATCH):
            sockets += await asyncio.gather(*(connect(session) for _ in range(start, min(count, start + BATCH))))
        for number, ws in enumerate(sockets):
            await ws.send_str(orjson.dumps({"type": "ping", "timestamp": number}).decode())
        if expect_pong:
            try:
                await asyncio.wait_for(all_answered.wait(), 120)
            except TimeoutError:
                pass
        print(f"ready {len(sockets)} {retries} {resets} {pongs if expect_pong else '-'}", flush=True)
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, sys.stdin.readline):
            print(f"open {len(sockets) - closed}", flush=True)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
        await session.close()
    uvloop.run(run())


class Holders:
    def __init__(self, url: str, count: int, procs: int, expect_pong: bool, compress: int):
        self.count = count
        self.procs = [subprocess.Popen(
            [sys.executable, __file__, "--hold", url, str(count // procs + (i < count % procs)),
             "pong" if expect_pong else "-", str(compress)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(procs)]
        self.opened = self.retries = self.resets = 0
        self.unanswered = 0 if expect_pong else None
        for proc, share in zip(self.procs, self.shares(), strict=True):
            line = proc.stdout.readline().split()
            assert line and line[0] == "ready", "a holder failed to open its sockets"
            self.opened += int(line[1])
            self.retries += int(line[2])
            self.resets += int(line[3])
            if expect_pong:
                self.unanswered += share - int(line[4])

    def shares(self) -> list[int]:
        n = len(self.procs)
        return [self.count // n + (i < self.count % n) for i in range(n)]

    def still_open(self) -> int:
        total = 0
        for proc in self.procs:
            proc.stdin.write("check\n")
            proc.stdin.flush()
            total += int(proc.stdout.readline().split()[1])
        return total

    def close(self) -> None:
        for proc in self.procs:
            proc.stdin.close()
        for proc in self.procs:
            proc.wait(timeout=300)


# -- measuring -------------------------------------------------------------------

class Measured:
    def __init__(self, kib: float, holders: Holders, still_open: int, descriptors: int,
                 trace: list[str] | None = None):
        self.kib = kib
        self.descriptors = descriptors
        self.holders = holders
        self.still_open = still_open
        self.trace = trace or []

    def problems(self) -> list[str]:
        h = self.holders
        found = []
        if h.opened != h.count:
            found.append(f"{h.count - h.opened} sockets not opened")
        if h.retries:
            found.append(f"{h.retries} handshakes answered 503 and tried again")
        if h.resets:
            found.append(f"{h.resets} connections reset during the handshake and tried again")
        if h.unanswered:
            found.append(f"{h.unanswered} sockets never answered the ping")
        if self.still_open != h.count:
            found.append(f"{h.count - self.still_open} sockets closed before the reading")
        return found


def per_socket(pid: int, url: str, args: argparse.Namespace, expect_pong: bool,
               snapshot: Path | None = None) -> Measured:
    count = args.sockets
    warm = Holders(url, WARM, args.procs, expect_pong, args.compress)
    time.sleep(1)
    before = take_snapshot(pid, snapshot) if snapshot else None
    rss_before = rss_kib(pid)
    holders = Holders(url, count, args.procs, expect_pong, args.compress)
    time.sleep(2)
    rss_after = rss_kib(pid)
    descriptors = len(os.listdir(f"/proc/{pid}/fd"))
    after = take_snapshot(pid, snapshot) if snapshot else None
    still_open = holders.still_open()
    warm.close()
    holders.close()
    trace = None
    if before is not None and after is not None:
        trace = allocations_per_socket(before, after, count)
    return Measured((rss_after - rss_before) / count, holders, still_open, descriptors, trace)


# -- tracemalloc (bench only: the wrapper below stands in for run.py) --------------

def serve_traced(snapshot: str) -> None:
    """run.py's main under tracemalloc; SIGUSR1 writes a snapshot to `snapshot`."""
    tracemalloc.start(12)

    def dump(signum: int, frame: object) -> None:
        tracemalloc.take_snapshot().dump(snapshot + ".part")
        os.replace(snapshot + ".part", snapshot)
    signal.signal(signal.SIGUSR1, dump)
    sys.path.insert(0, str(ROOT))
    import run
    sys.exit(run.main(["serve"]))


def start_traced_server(snapshot: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = server_env(port, LOG_LEVEL="ERROR")
    return spawn([sys.executable, __file__, "--serve-traced", str(snapshot)], port, env), port


def take_snapshot(pid: int, path: Path) -> tracemalloc.Snapshot:
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 300
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the traced server wrote no snapshot")
        time.sleep(0.2)
    return tracemalloc.Snapshot.load(str(path))


def allocations_per_socket(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, count: int) -> list[str]:
    lines = []
    diffs = [d for d in after.compare_to(before, "traceback") if d.size_diff > 16 * count]
    total = sum(d.size_diff for d in after.compare_to(before, "filename"))
    lines.append(f"    live Python allocations: {total / count:,.0f} B per socket")
    for diff in diffs[:20]:
        frames = [f"{Path(f.filename).name}:{f.lineno}" for f in reversed(diff.traceback[-5:])]
        lines.append(f"    {diff.size_diff / count:7.0f} B  {diff.count_diff / count:5.2f} blocks  "
                     f"{' < '.join(frames)}")
    return lines


# -- the servers ------------------------------------------------------------------

async def account(base: str) -> tuple[str, str]:
    """A new account's token and a chat of its."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/api/auth/register", json={
                "email": f"sockets-{uuid.uuid4().hex[:8]}@example.com", "password": "benchmark-password"}) as resp:
            token = (await resp.json())["access_token"]
        async with session.post(f"{base}/api/chats", json={"title": "sockets"},
                                headers={"Authorization": f"Bearer {token}"}) as resp:
            chat_id = (await resp.json())["id"]
    return token, chat_id


def measure_chatserver(kind: str, args: argparse.Namespace) -> Measured:
    snapshot = Path(tempfile.mkdtemp(prefix="sockets-trace-")) / "snapshot" if args.trace else None
    proc, port = start_traced_server(snapshot) if snapshot else start_server(LOG_LEVEL="ERROR")
    try:
        base = f"http://127.0.0.1:{port}"
        token, chat_id = uvloop.run(account(base))
        url = f"{base}/ws/chat/{chat_id}?token={token}" if kind == "chat" else f"{base}/ws/chats?token={token}"
        return per_socket(proc.pid, url, args, True, snapshot)
    finally:
        proc.terminate()
        proc.wait()


def measure_bare(args: argparse.Namespace) -> Measured:
    proc, port = start_baseline()
    try:
        return per_socket(proc.pid, f"http://127.0.0.1:{port}/ws/idle", args, False)
    finally:
        proc.terminate()
        proc.wait()


NAMES = {"bare": "bare aiohttp", "chat": "/ws/chat/{id}", "list": "/ws/chats"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=19_500)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--kinds", default="bare,chat,list")
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--compress", type=int, default=0, help="the clients offer permessage-deflate with this "
                        "window (bits, 9-15; browsers offer 15), as browsers do; 0: they do not")
    parser.add_argument("--hold", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--serve-traced", help=argparse.SUPPRESS)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.hold:
        hold(args.hold[0], int(args.hold[1]), args.hold[2] == "pong", int(args.hold[3]))
        return
    if args.serve_traced:
        serve_traced(args.serve_traced)
        return
    kinds = args.kinds.split(",")
    results = {kind: measure_bare(args) if kind == "bare" else measure_chatserver(kind, args) for kind in kinds}
    print(f"{args.sockets} idle WebSockets (descriptor limit {hard})"
          f"{f', permessage-deflate offered ({args.compress} bits)' if args.compress else ''}"
          f"{', under tracemalloc' if args.trace else ''}:")
    bare = results.get("bare")
    for kind, measured in results.items():
        ratio = f"  ({measured.kib / bare.kib:.2f}x bare)" if bare and bare.kib > 0 else ""
        problems = measured.problems()
        verdict = "; ".join(problems) if problems else "all opened, answered and still open; no retries"
        verdict += f"; {measured.descriptors} server descriptors"
        # tracemalloc's own bookkeeping makes the RSS meaningless
        figure = "" if args.trace else f" {measured.kib:6.1f} KiB per socket{ratio}"
        print(f"  {NAMES[kind]:<14}{figure}  [{verdict}]")
        for line in measured.trace:
            print(line)


if __name__ == "__main__":
    main()
