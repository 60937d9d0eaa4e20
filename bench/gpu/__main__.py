"""GPU speed and memory of the whole stack, on random full-size models built on the GPU (downloads nothing).

    python -m bench.gpu                 # on a CUDA GPU: about 7 minutes on one H100/H200; table + gpu.json
    python -m bench.gpu --smoke         # every step at tiny sizes on the CPU (a few minutes): catches typos
    python -m bench.gpu --only stage1   # one step (stage1 | agree | stage2 | codec | pipeline | nan | takes | quant
                                        # | stream | quant_compiled | fusion | compile); repeatable
    python -m bench.gpu --only compile  # torch.compile'd decode step: only run when named (compiling takes minutes)
    python -m bench.gpu --only quant --only quant_compiled   # precisions, stage 2 and the song per precision
                                        # (bench/gpu/quant.py); not yet timed on a GPU: where a command is capped
                                        # at 10 minutes, run `--only quant` and `--only quant_compiled` apart

Models: stage 1 from the official config (SPEC §7.1, 6.22 B); stage 2 from the size ESTIMATE (its config is not
public: hidden 2048, intermediate 5504, 32 layers, 16 heads, vocab 83 968, about 1.96 B); the codec and both Vocos
upsamplers from the official configs. bf16 LMs and an fp32 codec, as the pipeline loads them on CUDA.
Each step is timed after a warm-up, writes its numbers into the JSON as soon as it ends, and a failing step is
recorded with its error while the others still run. int8 / int4 need torchao, bnb-int8 / nf4 bitsandbytes (see
README: carry the wheels).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from bench.gpu.bench import Bench
from bench.gpu.fusion import FUSION_STEPS, ONLY_WHEN_NAMED
from bench.gpu.quant import ONLY_WHEN_NAMED_QUANT, QUANT_STEPS
from bench.gpu.steps import STEPS
from bench.gpu.stream import STREAM_STEPS
from yue.weights.devices import check_device

ALL_STEPS = {**STEPS, **STREAM_STEPS, **QUANT_STEPS, **FUSION_STEPS}


def environment(device: torch.device) -> dict:
    import transformers

    info = {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0],
            "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count)
        # The copy bandwidth is the ceiling of every decode step (weights and cache are read once per step).
        a = torch.empty(2 * 2**30, dtype=torch.uint8, device=device)
        b = torch.empty_like(a)
        for _ in range(3):
            b.copy_(a)
        torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(10):
            b.copy_(a)
        torch.cuda.synchronize(device)
        info["copy_tb_per_s"] = round(10 * 2 * a.numel() / (time.perf_counter() - start) / 1e12, 2)
        del a, b
    else:
        info["gpu"] = "none (CPU)"
    return info


def table(results: dict) -> str:
    """The README table: one line per measured quantity."""
    lines = ["| step | measured | note |", "|---|---|---|"]
    for step, rows in results.items():
        if not isinstance(rows, dict):
            continue
        if "error" in rows:
            lines.append(f"| {step} | FAILED | {rows['error'].splitlines()[-1][:120]} |")
            continue
        names = [name for name in rows if not name.startswith("_")]
        for name in names:
            value = rows[name]
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            note = rows.get("_note", "") if name == names[0] else ""
            lines.append(f"| {step} | {name} = {shown} | {note} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks that every step runs")
    parser.add_argument("--only", action="append", choices=list(ALL_STEPS),
                        help="run only these steps (repeatable); 'compile' runs only when named (or with --smoke)")
    parser.add_argument("--official-frames", type=int, help="frames of the official stage-2 loop (slow; 0 skips it)")
    parser.add_argument("--device", help="torch device to measure on (default: cuda when there is one)")
    parser.add_argument("--json", default=os.environ.get("OUT", "."), help="folder for gpu.json (default $OUT or .)")
    args = parser.parse_args()

    device = torch.device("cpu") if args.smoke else check_device(args.device)  # the library's default and checks
    if device.type == "cpu" and not args.smoke:
        parser.error("no CUDA GPU here: run with --smoke to check the steps on the CPU")
    if device.type == "cpu":
        torch.set_num_threads(1)  # tiny models: spinning threads only slow a shared CPU down
    torch.manual_seed(0)
    out = Path(args.json) / ("gpu-smoke.json" if args.smoke else "gpu.json")
    results: dict = {"environment": environment(device)}
    print(json.dumps(results["environment"]), flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        bench = Bench(device, args.smoke, Path(scratch), results)
        if args.official_frames is not None:
            bench.official_frames = args.official_frames
        default = [name for name in ALL_STEPS if args.smoke or name not in ONLY_WHEN_NAMED + ONLY_WHEN_NAMED_QUANT]
        for name in args.only or default:
            start = time.perf_counter()
            print(f"--- {name}", flush=True)
            try:
                results[name] = ALL_STEPS[name](bench)
            except Exception:  # a step that fails is reported, the next one still runs
                results[name] = {"error": traceback.format_exc()}
                print(results[name]["error"], flush=True)
            results[name]["_seconds"] = round(time.perf_counter() - start, 1)
            print(json.dumps(results[name], default=str), flush=True)
            out.write_text(json.dumps(results, indent=1, default=str))
            bench.tidy()
    print(f"\n{results['environment'].get('gpu')}, torch {torch.__version__}\n")
    print(table(results))
    print(f"\nfull numbers: {out}")
    if any("error" in rows for rows in results.values() if isinstance(rows, dict)):
        sys.exit(1)


if __name__ == "__main__":
    main()
