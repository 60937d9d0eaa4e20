"""Every precision on the CPU, side by side: stage-1 decode tokens/s (greedy, guidance on) and drift from fp32 on
bench_lm's model (the `bench` preset: hidden 256, 4 layers, official vocab; random weights) with intermediate size
768 instead of 688, which no int4 group size (32, 64, 128) divides.

    python -m bench.bench_quant            # 300 tokens per precision, about a minute on 2 CPU cores

Drift is a PROXY (random weights): the first greedy token that differs from fp32's, and the mean KL divergence
KL(fp32 || precision) of next-token distributions over 300 teacher-forced steps (fp32's own tokens after the
prompt). On this model the unquantized lm_head (84k x 256) is most of the bytes a step reads, so the CPU says
little about speed on a GPU: `python -m bench.gpu --only quant` measures that.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PRECISIONS = ("fp32", "bf16", "int8", "int4", "bnb-int8", "nf4")
INTERMEDIATE = 768  # the bench preset's 688 is 16 x 43: int4 refuses it (yue/weights/devices.py)


def _model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from yue.config import LLAMA_SIZES

    torch.manual_seed(0)
    config = LlamaConfig(**LLAMA_SIZES["bench"].to_hf_dict(), attn_implementation="sdpa")
    config.intermediate_size = INTERMEDIATE
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 2:
                param.normal_(0.0, 0.15)  # as bench_lm and the tiny checkpoints: well-separated logits
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=300, help="decoded and teacher-forced tokens per precision")
    args = parser.parse_args()

    import numpy as np
    import torch

    from bench.bench_lm import _stage1_prompt
    from bench.gpu.quant import _log_probs
    from bench.gpu.steps import first_difference
    from yue.config import Sampling
    from yue.lm.stage1 import generate_sections
    from yue.text.prompt import codes_to_stage1_ids
    from yue.weights.loading import load_lm

    torch.set_num_threads(1)
    prompt = _stage1_prompt(args.tokens)
    prompt = replace(prompt, pieces=prompt.pieces[:1], labels=prompt.labels[:1])
    settings = Sampling(max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False)
    rows, reference = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "bench"
        _model().save_pretrained(folder)
        for precision in PRECISIONS:
            model = load_lm(folder, "cpu", precision=precision)
            next(generate_sections(model, prompt, replace(settings, max_new_tokens=8, min_new_tokens=8)))  # warm-up
            stamps = []
            section = next(generate_sections(model, prompt, settings,
                                             on_token=lambda p: stamps.append(time.perf_counter())))
            rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            ids = np.stack([section.vocal, section.instrumental], 1).reshape(-1)
            forced = np.concatenate([np.array(prompt.pieces[0]), codes_to_stage1_ids(section.vocal,
                                                                                        section.instrumental)])
            log_q = _log_probs(model, forced if not reference else reference["forced"], args.tokens)
            if not reference:
                reference.update(ids=ids, forced=forced, log_p=log_q, rate=rate)
            log_p = reference["log_p"]
            kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean().item()
            rows.append((precision, rate, rate / reference["rate"], first_difference(ids, reference["ids"]), kl))
            del model
    print(f"\nbench model, context {len(prompt.pieces[0])}, {args.tokens} greedy tokens, torch {torch.__version__}, "
          "1 thread\n")
    print("| precision | tokens/s | vs fp32 | first differing token | mean KL vs fp32 |")
    print("|---|---|---|---|---|")
    for precision, rate, ratio, first, kl in rows:
        print(f"| {precision} | {rate:.1f} | {ratio:.2f}x | {first} | {kl:.2e} |")


if __name__ == "__main__":
    main()
