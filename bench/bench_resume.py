"""What resuming a song in another GPU call costs now that the resumed call re-creates the uncut run's cache exactly.

    python -m bench.bench_resume            # 2k and 16k context, ~5 minutes on 2 busy CPU cores
    python -m bench.bench_resume --quick    # 2k only

Two tables, on the bench LM of bench/bench_lm.py (hidden 256, 4 layers, official vocab; fp32, CPU, 1 thread), each
case in a fresh process:
1. settling (yue/lm/decoder.py): an uncut run writes the slots of every 64 stage-1 steps (128 stage-2 steps) again by
   one prefill. Its cost: stage 1 (guidance, official sampling) and stage 2 with settling on and off.
2. a resumed call at 2k and 16k context: what it does before its first new step (every kept section and the section
   under way fed again as settled blocks plus at most 63 decode steps), against one plain re-prefill of the same
   ids (the old way, which rounds otherwise in bf16), and the bytes of the state handed over.
The 7B's numbers follow by arithmetic from bench/gpu's H200 measurements (printed under the tables).
"""
from __future__ import annotations

import argparse
import pickle
import time

from bench.bench_lm import _model, _tracks, measure_with

SECTION_IDS = 3000  # the official budget: a 30 s section is 3000 ids
# bench/gpu on an NVIDIA H200 (bench/results/gpu-h200-run3.json): a bf16 7B decode step with guidance 8.6 ms; the
# weights (12.4 GB) read at the measured 4.2 TB/s take 3.0 ms; prefill ESTIMATE: half the H200's 989 TFLOPS bf16 peak.
H200_STEP_S, H200_WEIGHTS_S, H200_PREFILL_FLOPS = 8.6e-3, 3.0e-3, 0.5 * 989e12
STAGE1_PARAMS = 6.22e9
SETTLE_STEPS = 64


def settle_case(case: str):
    """An uncut run with settling on or off: (seconds, units of work)."""
    import torch

    torch.set_num_threads(1)
    from yue.config import Sampling
    from yue.lm import guided, stage1, stage2

    settled = case.endswith("-settled")
    if not settled:
        guided.SETTLE_STEPS = stage2.SETTLE_STEPS = None
    model = _model()
    start = time.perf_counter()
    if case.startswith("stage1"):
        from bench.bench_lm import _stage1_prompt

        sampled = Sampling(max_new_tokens=1000, min_new_tokens=1000)
        sections = list(stage1.generate_takes(model, _stage1_prompt(1000), sampled, seed=1))
        work = sum(2 * s[0].frames for s in sections)
    else:
        stage2.generate(model, _tracks(300))
        work = 2 * 300
    return time.perf_counter() - start, work


def resume_case(context: int):
    """A call resumed mid-section with about `context` slots of song before it. Returns (slots fed, seconds to the
    first new step, seconds of one plain re-prefill of the same ids, state bytes, settled blocks, decode steps)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from yue.config import CONTEXT_TOKENS, Sampling
    from yue.lm import stage1
    from yue.lm.deadline import Deadline, OutOfTime
    from yue.lm.guided import GuidedContext
    from yue.lm.stage1 import Stage1Prompt, allowed_ids
    from yue.text.tokens import SOA, XCODEC, XCODEC_OFFSET

    model = _model()
    rng = np.random.default_rng(2)
    header = tuple(int(i) for i in rng.integers(3, 30000, 600)) + (SOA, XCODEC)
    later = tuple(int(i) for i in rng.integers(3, 30000, 50)) + (SOA, XCODEC)
    made = SECTION_IDS // 2  # the section under way, this far
    rest = context - len(header) - made
    kept = -(-rest // (SECTION_IDS + len(later))) if rest > 0 else 0
    per = (rest - kept * len(later)) // max(1, kept)
    done = tuple(tuple(int(i) for i in XCODEC_OFFSET + rng.integers(0, 1024, per)) for _ in range(kept))
    prompt = Stage1Prompt((header,) + (later,) * (kept + 1), done, False, ("verse",) * (kept + 1))
    sampling = Sampling(max_new_tokens=SECTION_IDS, min_new_tokens=SECTION_IDS)
    with_clock = Deadline.after(0.0, every=made)  # stop at the first clock read: step `made`
    try:
        for _ in stage1.generate_takes(model, prompt, sampling, 1, kept + 1, deadline=with_clock):
            pass
    except OutOfTime as stop:
        state = stop.state
    handed = pickle.dumps(state)
    ticks = []
    start = time.perf_counter()
    try:
        for _ in stage1.generate_takes(model, prompt, sampling, 1, kept + 1, lambda _: ticks.append(time.perf_counter()),
                                       resume=pickle.loads(handed), deadline=Deadline.after(0.0, every=1)):
            pass
    except OutOfTime:
        pass
    first_step = ticks[0] - start
    ids = list(header) + [i for section in done for i in section + later] + [int(i) for i in state.ids[0]]
    ids = ids[-min(len(ids), CONTEXT_TOKENS - SECTION_IDS - 1 + made):]  # the window after the left truncation
    context_view = GuidedContext(model, allowed_ids("cpu"), 1, len(ids) + 8)
    start = time.perf_counter()
    context_view.feed([ids])
    plain = time.perf_counter() - start
    return len(ids), first_step, plain, len(handed), len(ids) // SETTLE_STEPS, state.step % SETTLE_STEPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2k context only")
    args = parser.parse_args()
    print("\n1. settling in an uncut run (bench LM, fp32, CPU, 1 thread): stage 1 = 3 sections x 1000 ids with "
          "guidance, stage 2 = 2 tracks x 300 frames\n")
    print("| step | settled s | unsettled s | ms per unit settled | ms per unit unsettled | cost of settling |")
    print("|---|---|---|---|---|---|")
    for step in ("stage1", "stage2"):
        (on, work), (off, _) = (measure_with(settle_case, f"{step}-{kind}") for kind in ("settled", "unsettled"))
        print(f"| {step} | {on:.1f} | {off:.1f} | {1000 * on / work:.2f} | {1000 * off / work:.2f} "
              f"| {100 * (on / off - 1):+.1f} % |")
    print("\n2. a call resumed mid-section (1 take, guidance): what it does before its first new step\n")
    print("| context (slots) | settled blocks fed | decode steps fed | s to the first new step | one plain re-prefill s "
          "| ratio | state handed over (bytes) | 7B on an H200 (arithmetic) s |")
    print("|---|---|---|---|---|---|---|---|")
    for context in (2048,) if args.quick else (2048, 16384):
        slots, first, plain, handed, blocks, steps = measure_with(resume_case, context)
        # each settled block: the weights read once plus 2 rows x 64 ids of compute; then the decode steps
        block_s = H200_WEIGHTS_S + 2 * STAGE1_PARAMS * 2 * SETTLE_STEPS / H200_PREFILL_FLOPS  # 2 FLOPs a weight
        seven_b = blocks * block_s + steps * H200_STEP_S
        print(f"| {slots} | {blocks} | {steps} | {first:.2f} | {plain:.2f} | {first / plain:.1f} | {handed} "
              f"| {seven_b:.2f} |")
    print(f"\n7B column: settled blocks x ({1000 * H200_WEIGHTS_S:.1f} ms of weights + 2 rows x {SETTLE_STEPS} ids at "
          f"half the bf16 peak) + decode steps x {1000 * H200_STEP_S:.1f} ms (bench/gpu, H200). A take adds "
          "its ids (8 bytes each) and a sampler state (16 bytes on CUDA, 5056 on the CPU) to the state handed over.")


if __name__ == "__main__":
    main()
