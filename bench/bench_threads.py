"""The README's tiny `generate` and its Python block, timed with each choice of PyTorch CPU threads while a second
process keeps a core busy.

    python -m bench.bench_threads               # both, 2 runs of each choice, at most 120 s a run
    python -m bench.bench_threads --only python --runs 1 --limit 200

Choices: PyTorch's own default (one thread per usable CPU: what the CLI did before yue.weights.threads, and the
Python API before Pipeline chose), the default now (half the usable CPUs, no flag, OMP_NUM_THREADS unset), and
OMP_NUM_THREADS=1. Each run is a fresh process (imports and loading included, as a user times it): `python -m yue
generate`, or the README's Python block as written (read from README.md) in a folder of its own holding `tiny`. The
busy process is a Python loop on one core, started before and stopped after every run. A run past `--limit` seconds
is stopped and shown as "> limit". The goal: the default within 1.5x of OMP_NUM_THREADS=1.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LYRICS = ROOT / "examples" / "en-paper-lanterns" / "lyrics.txt"
BUSY = "while True: pass"  # one core kept busy, as another user's process would


def readme_python_block() -> str:
    """The README's Python block that runs on tiny checkpoints, as tests/test_docs.py runs it."""
    from tests.doc_runner import doc_blocks

    return next(block.code for block in doc_blocks(ROOT, "README.md")
                if block.lang == "python" and "Pipeline.tiny(" in block.code)


def generate(folder: Path, out: str, env: dict, limit: float) -> float | None:
    """Seconds of one README tiny `generate` (None: stopped at `limit`)."""
    command = [sys.executable, "-m", "yue", "generate", "--tiny", str(folder / "tiny"), "--genre", "pop female",
               "--lyrics-file", str(LYRICS), "--max-new-tokens", "200", "--min-new-tokens", "20",
               "--out", str(folder / out), "--overwrite"]
    return busy_run(command, env, ROOT, None, limit)


def python_block(folder: Path, out: str, env: dict, limit: float) -> float | None:
    """Seconds of the README's Python block in a folder of its own with the tiny checkpoints (None: stopped)."""
    place = folder / out
    shutil.rmtree(place, ignore_errors=True)
    place.mkdir()
    (place / "tiny").symlink_to(folder / "tiny")
    return busy_run([sys.executable, "-"], env, place, readme_python_block(), limit)


def busy_run(command: list[str], env: dict, cwd: Path, code: str | None, limit: float) -> float | None:
    """Seconds of `command` (stdin: `code`) beside a process busy on one core (None: stopped at `limit`)."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True, timeout=limit, input=code,
                       text=True)
        return time.perf_counter() - started
    except subprocess.TimeoutExpired:
        return None
    finally:
        busy.kill()
        busy.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="runs of each choice (the best is shown)")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds before a run is stopped")
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append",
                        help="the README command to time (default: both)")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    base = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    base.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    # PyTorch's own count, asked for explicitly: yue's choice then leaves it (the CLI and the API alike)
    choices = {f"PyTorch's own ({cpus} threads)": {**base, "OMP_NUM_THREADS": str(cpus)},
               "the default now (no flag)": base,
               "OMP_NUM_THREADS=1": {**base, "OMP_NUM_THREADS": "1"}}
    workloads = {name: WORKLOADS[name] for name in args.only or WORKLOADS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, "-m", "yue", "tiny", str(folder / "tiny")], env=base, cwd=ROOT, check=True,
                       capture_output=True)
        times = {(work, name): [] for work in workloads for name in choices}
        for run in range(args.runs):  # interleaved: a machine that gets busier slows every choice alike
            for work, (_, timed) in workloads.items():
                for index, (name, env) in enumerate(choices.items()):
                    times[work, name].append(timed(folder, f"out{index}", env, args.limit))
    best = {key: min((t for t in found if t is not None), default=None) for key, found in times.items()}
    print(f"\n{cpus} usable CPUs, a second process busy on one core; best of {args.runs} runs\n")
    print("| README command | threads | seconds | ratio to OMP_NUM_THREADS=1 |")
    print("|---|---|---|---|")
    for (work, name), seconds in best.items():
        one = best[work, "OMP_NUM_THREADS=1"]
        shown = f"{seconds:.1f}" if seconds is not None else f"> {args.limit:.0f}"
        ratio = ("-" if not one else f"{seconds / one:.2f}" if seconds is not None else f"> {args.limit / one:.1f}")
        print(f"| {workloads[work][0]} | {name} | {shown} | {ratio} |")


WORKLOADS = {"cli": ("tiny `generate` (2 sections, 200 tokens)", generate),
             "python": ("the Python block (2 sections, 200 tokens, then 2 takes)", python_block)}


if __name__ == "__main__":
    main()
