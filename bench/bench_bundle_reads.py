"""Reading hostile song bundles: time and peak memory of one read, and how long another user's small bundle waits
while big ones are read (the app's `space.jobs.load_bundle`), each measured in a fresh process.

    python -m bench.bench_bundle_reads                     # this checkout
    python -m bench.bench_bundle_reads --code /tmp/old     # another checkout's code (e.g. `git archive` of main)

The hostile bundle is the fourth campaign's: a valid bundle whose zip directory lists its 6 members 130 000 times
(780 000 entries, 47.6 MB). Prints one markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.bundles import listed_many_times, song
from tests.memory import measure
from yue.bundle import MAX_SONG_FRAMES

ROOT = Path(__file__).resolve().parent.parent

WAITING = """
import json, threading, time
from space.jobs import load_bundle

def read(path):
    try:
        load_bundle(path)
    except ValueError:
        pass

big = [threading.Thread(target=read, args=({big!r},)) for _ in range({uploads})]
for thread in big:
    thread.start()
time.sleep(0.02)  # the big reads are under way
started = time.perf_counter()
read({small!r})
waited = time.perf_counter() - started
for thread in big:
    thread.join()
print(json.dumps({{"seconds": waited}}))
"""


def run(code: Path, script: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script], cwd=code, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(code)})
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose code reads the bundles")
    parser.add_argument("--copies", type=int, default=130_000, help="times the directory lists each member")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small = song().save(Path(folder) / "small.npz")
        hostile = listed_many_times(Path(folder) / "many.npz", args.copies)
        largest = song((MAX_SONG_FRAMES // 12,) * 12).save(Path(folder) / "largest.npz")  # the most the app writes
        print(f"code: {args.code}; small bundle {small.stat().st_size / 1e3:.1f} kB, hostile bundle "
              f"{hostile.stat().st_size / 1e6:.1f} MB ({6 * args.copies} directory entries), largest real bundle "
              f"{largest.stat().st_size / 1e6:.1f} MB\n")
        print("| measure | value |\n|---|---|")
        for name, path in (("small bundle", small), ("hostile bundle", hostile), ("largest real bundle", largest)):
            result = measure("from space.jobs import load_bundle", f"load_bundle({str(path)!r})", args.code)
            outcome = "accepted" if result["outcome"] == "returned" else f"refused: {result['outcome'][:100]}"
            print(f"| {name}: one read | {result['seconds']:.2f} s, peak +{result['growth_mb']:.0f} MB, {outcome} |")
        for name, big in (("hostile", hostile), ("largest real", largest)):
            for uploads in (1, 4):
                result = run(args.code, WAITING.format(big=str(big), small=str(small), uploads=uploads))
                print(f"| small bundle read while {uploads} {name} bundle(s) are read | {result['seconds']:.2f} s |")


if __name__ == "__main__":
    main()
