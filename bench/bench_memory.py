"""Memory of the YuE models per precision: the computed table for the real models, and the formula checked against
what transformers/bitsandbytes really allocate for a small model on this machine.

    python -m bench.bench_memory             # prints the tables of docs/models.md (markdown)
    python -m bench.bench_memory --measure   # also loads the `bench` preset LM at every precision on the CPU

The real 7B/1B numbers are computed (parameters x bytes, registry.py); only the small model is measured here.
"""
from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from yue.weights import registry  # noqa: E402  (after the environment: nothing of the Hub may read it earlier)
from yue.weights.registry import GB  # noqa: E402


def computed_tables() -> str:
    s1, s2 = registry.STAGE1_SIZE, registry.STAGE2_SIZE
    lines = ["| precision | stage 1 weights (6.22 B) | stage 2 weights (1.96 B, estimate) |", "|---|---|---|"]
    for p in registry.PRECISIONS:
        lines.append(f"| {p} | {s1.weight_bytes(p) / GB:.2f} GB | {s2.weight_bytes(p) / GB:.2f} GB |")
    lines += ["", "| stage 1 / stage 2 | all resident: peak | free GPU memory needed | offload: peak "
              "| free GPU memory needed |", "|---|---|---|---|---|"]
    for pair in (("fp32", "fp32"),) + registry.AUTO_CHOICES:
        resident, offload = (registry.peak_bytes(*pair, off) for off in (False, True))
        lines.append(f"| {pair[0]} / {pair[1]} | {resident / GB:.1f} GB | {resident / GB / registry.SAFETY:.1f} GB "
                     f"| {offload / GB:.1f} GB | {offload / GB / registry.SAFETY:.1f} GB |")
    return "\n".join(lines)


def measure() -> str:
    """Load the `bench` preset (hidden 256, 4 layers) at each precision; compare footprint and formula."""
    import torch

    from yue.config import LLAMA_SIZES
    from yue.weights.loading import load_lm
    from yue.weights.tiny import write_llama

    torch.set_num_threads(1)
    lines = ["| precision | formula | get_memory_footprint() | difference |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as folder:
        write_llama(folder, LLAMA_SIZES["bench"], seed=0, with_tokenizer=False)
        for p in registry.PRECISIONS:
            model = load_lm(folder, precision=p)
            size = registry.llama_size(model.config.to_dict())
            formula, measured = size.weight_bytes(p), model.get_memory_footprint()
            lines.append(f"| {p} | {formula / 1e6:.2f} MB | {measured / 1e6:.2f} MB "
                         f"| {(measured - formula) / formula:+.2%} |")
            del model
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", action="store_true", help="also measure a small LM at every precision")
    args = parser.parse_args()
    print(computed_tables())
    if args.measure:
        print()
        print(measure())


if __name__ == "__main__":
    main()
