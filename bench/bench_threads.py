"""The README's tiny `generate`, timed with each choice of PyTorch CPU threads while a second process keeps a core busy.

    python -m bench.bench_threads               # 2 runs of each choice, at most 120 s a run
    python -m bench.bench_threads --runs 1 --limit 60

Choices: PyTorch's own default (one thread per usable CPU, what the CLI did before yue.weights.threads), the CLI's
default now (half the usable CPUs, no flag, OMP_NUM_THREADS unset), and OMP_NUM_THREADS=1. Each run is a fresh
`python -m yue generate` process (imports and loading included, as a user times it); the busy process is a Python
loop on one core, started before and stopped after every run. A run past `--limit` seconds is stopped and shown as
"> limit". The goal: the default within 1.5x of the better of the others.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LYRICS = ROOT / "examples" / "en-paper-lanterns" / "lyrics.txt"
BUSY = "while True: pass"  # one core kept busy, as another user's process would


def generate(folder: Path, out: str, env: dict, extra: list[str], limit: float) -> float | None:
    """Seconds of one README tiny `generate` (None: stopped at `limit`)."""
    command = [sys.executable, "-m", "yue", "generate", "--tiny", str(folder / "tiny"), "--genre", "pop female",
               "--lyrics-file", str(LYRICS), "--max-new-tokens", "200", "--min-new-tokens", "20",
               "--out", str(folder / out), "--overwrite", *extra]
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=limit)
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
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    base = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    base.update(HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    choices = {f"PyTorch's own ({cpus} threads)": (base, ["--threads", str(cpus)]),
               "the default now (no flag)": (base, []),
               "OMP_NUM_THREADS=1": ({**base, "OMP_NUM_THREADS": "1"}, [])}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subprocess.run([sys.executable, "-m", "yue", "tiny", str(folder / "tiny")], env=base, cwd=ROOT, check=True,
                       capture_output=True)
        times = {name: [] for name in choices}
        for run in range(args.runs):  # interleaved: a machine that gets busier slows every choice alike
            for index, (name, (env, extra)) in enumerate(choices.items()):
                times[name].append(generate(folder, f"out{index}", env, extra, args.limit))
    best = {name: min((t for t in found if t is not None), default=None) for name, found in times.items()}
    known = [t for t in best.values() if t is not None]
    fastest = min(known) if known else None
    print(f"\ntiny `generate` (README command, 2 sections, 200 tokens), {cpus} usable CPUs, a second process busy on "
          f"one core; best of {args.runs}\n")
    print("| threads | seconds | ratio to the fastest |")
    print("|---|---|---|")
    for name, seconds in best.items():
        shown = f"{seconds:.1f}" if seconds is not None else f"> {args.limit:.0f}"
        ratio = ("-" if not fastest else f"{seconds / fastest:.2f}" if seconds is not None
                 else f"> {args.limit / fastest:.1f}")
        print(f"| {name} | {shown} | {ratio} |")


if __name__ == "__main__":
    main()
