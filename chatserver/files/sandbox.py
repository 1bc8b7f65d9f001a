"""Running the built-in extractor on one file in a process of its own.

A hostile file (a PDF of millions of drawing operators, a DOCX that unpacks
to gigabytes) must cost neither the server's memory nor its other uploads.
So each file is read by a fresh `python -m chatserver.files.sandbox` whose
address space (RLIMIT_AS) and CPU time (RLIMIT_CPU) the child limits for
itself before importing a parser, and which the server kills when it
outlives the wall-clock bound or when the job is cancelled (shutdown, job
time limit). The answer comes back as one JSON document on stdout.

Run as a module it is the child: argv is path, content type, text budget,
memory limit in MB and time limit in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import signal
import sys
from pathlib import Path

from chatserver.files.result import Preview, UnreadableFile

# a file past a bound says which one, in words a user understands
TIME_ERROR = "extracting the file took longer than the limit of {seconds:g} s"
MEMORY_ERROR = "extracting the file needs more memory than the limit of {mb} MB"
# headroom for the interpreter and its modules above what a parser may use
_STARTUP_MB = 64


async def extract_isolated(path: Path, content_type: str, budget: int, *,
                           timeout: float, memory_mb: int) -> Preview:
    """The extractor's Preview for this file, made in a child process; UnreadableFile
    when the file cannot be read or passes PREVIEW_TIMEOUT_SECONDS or PREVIEW_MEMORY_MB."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatserver.files.sandbox",
        str(path), content_type, str(budget), str(memory_mb), str(timeout),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        # a Ctrl-C in the server's terminal is the server's to handle, not the child's
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        raise UnreadableFile(TIME_ERROR.format(seconds=timeout)) from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            # reaped in a task of its own, so a cancelled job never waits for it
            asyncio.get_running_loop().create_task(proc.wait())
    assert proc.returncode is not None, "communicate() has reaped the child"
    return _answer(proc.returncode, out, err, timeout=timeout, memory_mb=memory_mb)


def _answer(returncode: int, out: bytes, err: bytes, *, timeout: float, memory_mb: int) -> Preview:
    try:
        answer = json.loads(out)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and returncode == 0:
        if "error" in answer:
            raise UnreadableFile(answer["error"])
        image = answer.get("image")
        return Preview(answer["text"], answer["preview_text"],
                       base64.b64decode(image) if image else None, answer.get("image_extension"))
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise UnreadableFile(TIME_ERROR.format(seconds=timeout))
    if b"MemoryError" in err or b"Cannot allocate memory" in err or b"bad_alloc" in err:
        raise UnreadableFile(MEMORY_ERROR.format(mb=memory_mb))
    # a parser that crashed the interpreter: most often an allocation refused
    # deep inside a C library, so the memory bound is the likeliest cause
    raise UnreadableFile(f"the extractor stopped (exit status {returncode}); "
                         + MEMORY_ERROR.format(mb=memory_mb))


def _limit(memory_mb: int, timeout: float) -> None:
    import resource

    cpu = math.ceil(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = (memory_mb + _STARTUP_MB) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child(argv: list[str]) -> dict:
    path, content_type, budget, memory_mb, timeout = argv
    _limit(int(memory_mb), float(timeout))
    from chatserver.files import extract

    try:
        preview = extract.extract(Path(path), content_type, int(budget), memory_mb=int(memory_mb))
    except UnreadableFile as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": MEMORY_ERROR.format(mb=memory_mb)}
    return {
        "text": preview.text,
        "preview_text": preview.preview_text,
        "image": base64.b64encode(preview.image).decode() if preview.image else None,
        "image_extension": preview.image_extension,
    }


if __name__ == "__main__":
    result = _child(sys.argv[1:])
    sys.stdout.write(json.dumps(result))
