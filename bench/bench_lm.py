"""Stage-1 and stage-2 speed, ours vs the official algorithms, side by side on one small random LLaMA.

    python -m bench.bench_lm            # a 30 s song (the issue's target), about 10 minutes on 2 CPU cores
    python -m bench.bench_lm --quick    # a 6 s song, about a minute
    python -m bench.bench_lm --only cut # what cutting a run into calls at a deadline costs (re-prefill per call)

Each measurement runs in its own process (so peak memory is its own); outputs are compared for equality.
Model: the `bench` preset (hidden 256, 4 layers, 8 heads / 2 KV heads, official vocab), float32, CPU, 1 thread.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from yue.config import LLAMA_SIZES

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**LLAMA_SIZES["bench"].to_hf_dict(), attn_implementation="sdpa"))
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 2:
                param.normal_(0.0, 0.15)  # as the tiny checkpoints: well-separated logits
    return model.eval()


def _tracks(frames: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return [rng.integers(0, 1024, frames), rng.integers(0, 1024, frames)]


def _stage1_prompt(new_tokens: int):
    import numpy as np

    from yue.lm.stage1 import Stage1Prompt
    from yue.text.tokens import SOA, XCODEC

    rng = np.random.default_rng(1)
    header = [int(i) for i in rng.integers(3, 30000, 600)] + [SOA, XCODEC]
    later = [int(i) for i in rng.integers(3, 30000, 50)] + [SOA, XCODEC]
    return Stage1Prompt((tuple(header), tuple(later), tuple(later)), (), False, ("verse", "chorus", "verse"))


def _digest(arrays) -> str:
    import numpy as np

    return hashlib.sha256(b"".join(np.asarray(a, dtype=np.int64).tobytes() for a in arrays)).hexdigest()[:12]


def run_case(case: str, frames: int, new_tokens: int):
    """One measurement in a fresh process: (seconds, peak RSS MiB, units of work, digest of the output)."""
    import torch

    # One thread on both sides: the bench model's matmuls are too small to gain from a second thread, and spinning
    # OpenMP threads make timings swing tenfold when anything else runs on a 2-core machine.
    torch.set_num_threads(1)
    from yue.lm import official, stage1, stage2
    from yue.config import Sampling

    model = _model()
    settings = Sampling(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    start = time.perf_counter()
    if case == "stage2-ours":
        outputs, work = stage2.generate(model, _tracks(frames)), 2 * frames
    elif case == "stage2-official":
        outputs, work = [official.stage2_generate(model, t) for t in _tracks(frames)], 2 * frames
    elif case == "stage1-ours":
        sections = list(stage1.generate_sections(model, _stage1_prompt(new_tokens), settings))
        outputs = [list(s.vocal) + list(s.instrumental) for s in sections]
        work = sum(2 * s.frames for s in sections)
    elif case.startswith("stage1-takes"):  # official sampling, every take runs the whole section
        takes = int(case.removeprefix("stage1-takes"))
        sampled = Sampling(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        sections = list(stage1.generate_takes(model, _stage1_prompt(new_tokens), sampled, seed=1, takes=takes))
        outputs = [list(s.vocal) + list(s.instrumental) for section in sections for s in section]
        work = sum(2 * section[0].frames for section in sections)  # decode steps (one token of every take each)
    elif case.startswith(("stage1-cut", "stage2-cut")):
        return cut_case(model, case, frames, new_tokens)
    elif case == "stage1-transformers":
        ids = official.stage1_generate(model, _stage1_prompt(new_tokens), settings)
        import numpy as np

        outputs = []
        for section in ids:
            codes = np.asarray(section) - 45334
            outputs.append(list(codes[0::2]) + list(codes[1::2]))
        work = sum(len(section) for section in ids)
    else:
        raise ValueError(case)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return seconds, peak, work, _digest(outputs)


def cut_case(model, case: str, frames: int, new_tokens: int):
    """A run cut into calls at a deadline (`stage1-cutN`: every section in N calls, official sampling; `stage2-cutN`:
    every 300-frame row in N calls), each call going on from the last one's pickled state as the Space's calls do.
    Returns (seconds, peak MiB, calls, digest, seconds spent handing states over, ids re-fed per stage-1 call)."""
    import pickle

    from yue.config import Sampling
    from yue.lm import stage1, stage2
    from yue.lm.deadline import Deadline, OutOfTime
    from yue.text.prompt import codes_to_stage1_ids

    calls = int(case[len("stage1-cut"):])
    sampled = Sampling(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    steps = new_tokens if case.startswith("stage1") else 300 * 8  # decode steps in a section / in a row
    deadline = Deadline(-1.0, every=-(-steps // calls)) if calls > 1 else None  # passed: a call stops every `every`
    finished, state, handover, count, refed = [], None, 0.0, 0, 0
    prompt = _stage1_prompt(new_tokens)
    ticks: list[list[float]] = []  # per call: its start, then the time of every step (stage 2: frame) it made
    tick = lambda _: ticks[-1].append(time.perf_counter())
    start = time.perf_counter()
    while True:
        count += 1
        ticks.append([time.perf_counter()])
        try:
            if case.startswith("stage2"):
                outputs = stage2.generate(model, _tracks(frames), on_progress=tick, deadline=deadline,
                                          made=state or ())
            else:
                done = [tuple(codes_to_stage1_ids(s.vocal, s.instrumental) for s in finished)]
                if state is not None:  # what this call feeds again: every section so far and the one under way
                    refed += sum(map(len, prompt.pieces[:state.section + 1])) + sum(map(len, done[0])) + state.tokens
                for made in stage1.generate_takes(model, prompt, sampled, 1, None, tick, done=done,
                                                  deadline=deadline, resume=state):
                    if made[0].generated:
                        finished.append(made[0])
                outputs = [list(s.vocal) + list(s.instrumental) for s in finished]
            break
        except OutOfTime as stop:
            began = time.perf_counter()
            state = pickle.loads(pickle.dumps(stop.state))
            handover += time.perf_counter() - began
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # a resumed call's re-prefill: from its start to its first step, less one step's median time
    steps = sorted(b - a for times in ticks for a, b in zip(times[1:], times[2:]))
    step = steps[len(steps) // 2] if steps else 0.0
    prefill = [times[1] - times[0] - step for times in ticks[1:] if len(times) > 1]
    return seconds, peak, count, _digest(outputs), handover, refed, sum(prefill) / max(1, len(prefill)), step


def cut_table(frames: int, new_tokens: int, quick: bool) -> None:
    """The cost of cutting: what each extra call spends before its first step (re-prefill), against the uncut run."""
    print(f"\nthe cost of cutting a run into calls at a deadline (Deadline, yue/lm/deadline.py): stage 1 = 3 "
          f"sections x {new_tokens} tokens, official sampling; stage 2 = 2 tracks x {frames} frames (rows of 300); "
          "each call re-prefills and goes on from the last call's pickled state\n")
    print("| step | calls a section (or row) | calls | s (uncut) | re-prefill s per extra call | ms per step (frame) "
          "| ids re-fed per stage-1 call | ms to hand a state over | same output |")
    print("|---|---|---|---|---|---|---|---|---|")
    for step in ("stage1", "stage2"):
        base = measure(f"{step}-cut1", frames, new_tokens)
        for per in (2, 4) if quick else (2, 4, 8):
            seconds, _, calls, digest, handover, refed, prefill, step_s = measure(f"{step}-cut{per}", frames,
                                                                                   new_tokens)
            refed_text = f"{refed / max(1, calls - 1):.0f}" if step == "stage1" else "-"
            print(f"| {step} | {per} | {calls} | {seconds:.1f} ({base[0]:.1f}) | {prefill:.3f} | {1000 * step_s:.1f} "
                  f"| {refed_text} | {1000 * handover / max(1, calls - 1):.2f} "
                  f"| {'yes' if digest == base[3] else 'NO'} |")


def measure(case: str, frames: int, new_tokens: int):
    return measure_with(run_case, case, frames, new_tokens)


def measure_with(function, *args):
    """function(*args) in a fresh process: its own peak memory, no state left by another case."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 6 s song and shorter sections")
    parser.add_argument("--only", choices=["stage1", "stage2", "takes", "cut"], help="run one of the comparisons")
    args = parser.parse_args()
    seconds_of_audio = 6 if args.quick else 30
    frames = 50 * seconds_of_audio
    new_tokens = 200 if args.quick else 1000

    if args.only == "cut":
        cut_table(frames, new_tokens, args.quick)
        return
    rows = []
    for ours, theirs, unit in (("stage2-ours", "stage2-official", "frame"),
                               ("stage1-ours", "stage1-transformers", "token")):
        if args.only is not None and not ours.startswith(args.only):
            continue
        a, b = measure(ours, frames, new_tokens), measure(theirs, frames, new_tokens)
        rows.append((ours, theirs, unit, a, b))

    print(f"\nsong: {seconds_of_audio} s (2 tracks x {frames} frames); stage 1: 3 sections x {new_tokens} new tokens, "
          "greedy, guidance 1.5/1.2, repetition penalty 1.1")
    print("model: hidden 256, 4 layers, 8/2 heads, vocab 83968, fp32, CPU, 1 thread\n")
    header = f"| {'step':<8} | {'ours s':>8} | {'official s':>10} | {'ours ms/' + 'unit':>13} | {'official ms/unit':>16} " \
             f"| {'speed-up':>8} | {'time ratio':>10} | {'ours peak MiB':>13} | {'official peak MiB':>17} | same output |"
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for ours, theirs, unit, a, b in rows:
        step = ours.split("-")[0]
        print(f"| {step:<8} | {a[0]:>8.1f} | {b[0]:>10.1f} | {1000 * a[0] / a[2]:>13.2f} | {1000 * b[0] / b[2]:>16.2f} "
              f"| {b[0] / a[0]:>7.1f}x | {a[0] / b[0]:>10.3f} | {a[1]:>13.0f} | {b[1]:>17.0f} | "
              f"{'yes' if a[3] == b[3] else 'NO':<11} |")
    if args.only in (None, "takes"):
        takes = {n: measure(f"stage1-takes{n}", frames, new_tokens) for n in (1, 2, 4)}
        print(f"\nstage 1 with takes (several samples in one batch, official sampling, 3 sections x {new_tokens} "
              "tokens each):\n")
        print("| takes | s | ms per step (one token of every take) | time ratio to 1 take | peak MiB |")
        print("|---|---|---|---|---|")
        for n, (seconds, peak, work, _) in takes.items():
            print(f"| {n} | {seconds:.1f} | {1000 * seconds / work:.2f} | {seconds / takes[1][0]:.2f} | {peak:.0f} |")
    print("\nunit: stage 2 = one frame of one track (8 codes); stage 1 = one generated token (both passes of guidance)."
          "\nofficial = the plain algorithms in yue/lm/official.py on transformers' generate (per-frame re-prefill for "
          "stage 2; generate(guidance_scale=...) re-prefilling the history per section for stage 1).")


if __name__ == "__main__":
    main()
