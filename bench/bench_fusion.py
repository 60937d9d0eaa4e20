"""Fused projections (and, with --compile, the compiled decode step) against separate ones on the CPU: our stage 1
and stage 2 of bench/bench_lm.py (same model and cases), variants alternating so a busy shared machine slows them
alike, each run in a fresh process that runs the case twice and times the second (the first compiles, if compiling).

    python -m bench.bench_fusion                # 6 s song, 3 x 100 stage-1 tokens, 3 rounds: ~5 minutes on 2 cores
    python -m bench.bench_fusion --compile      # adds YUE_COMPILE=1 (inductor's C++ backend needs gcc): ~8 minutes
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics

from bench.bench_lm import run_case

VARIANTS = {"separate": {"YUE_FUSED": "0", "YUE_COMPILE": "0"}, "fused": {"YUE_FUSED": "1", "YUE_COMPILE": "0"},
            "fused+compiled": {"YUE_FUSED": "1", "YUE_COMPILE": "1"}}
CASES = (("stage2-ours", "frame"), ("stage1-ours", "token"))


def run_variant(env: dict, case: str, frames: int, new_tokens: int):
    """(seconds of the second run, units of work, output digest) with these decoder switches."""
    os.environ.update(env)
    run_case(case, frames, new_tokens)
    seconds, _, work, digest = run_case(case, frames, new_tokens)
    return seconds, work, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="runs of every variant, alternating (default 3)")
    parser.add_argument("--seconds", type=int, default=6, help="seconds of song for stage 2 (default 6)")
    parser.add_argument("--tokens", type=int, default=100, help="new stage-1 tokens per section, 3 sections")
    parser.add_argument("--compile", action="store_true", help="also YUE_COMPILE=1")
    args = parser.parse_args()
    variants = [name for name in VARIANTS if args.compile or name != "fused+compiled"]
    frames = 50 * args.seconds
    runs: dict = {}
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for round_ in range(args.rounds):
            for case, _ in CASES:
                for name in variants:
                    result = pool.apply(run_variant, (VARIANTS[name], case, frames, args.tokens))
                    runs.setdefault((case, name), []).append(result)
                    print(f"round {round_ + 1} {case} {name}: {result[0]:.2f} s", flush=True)

    print(f"\nstage 2: 2 tracks x {frames} frames; stage 1: 3 sections x {args.tokens} tokens, greedy, guidance; "
          f"bench model (hidden 256, 4 layers), fp32, CPU, 1 thread; {args.rounds} rounds, alternating\n")
    print("| step | variant | ms/unit, median | min - max over rounds | time vs separate (medians) | same output |")
    print("|---|---|---|---|---|---|")
    for case, unit in CASES:
        base = statistics.median(r[0] for r in runs[(case, "separate")])
        digest = runs[(case, "separate")][0][2]
        for name in variants:
            results = runs[(case, name)]
            per_unit = [1000 * seconds / work for seconds, work, _ in results]
            same = all(r[2] == digest for r in results)
            print(f"| {case.split('-')[0]} | {name} | {statistics.median(per_unit):.2f} per {unit} | "
                  f"{min(per_unit):.2f} - {max(per_unit):.2f} | "
                  f"{statistics.median(r[0] for r in results) / base:.3f} | {'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
