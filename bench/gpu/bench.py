"""What the steps of bench/gpu share: `Bench` (sizes, random models built on the device, memory readings) and
the switches for one measurement (graphs, kernels)."""
from __future__ import annotations

import gc
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from yue.lm import stage1
from yue.config import LLAMA_SIZES, LlamaSize, Sampling
from yue.text.prompt import Stage1Prompt
from yue.text.tokens import SOA, XCODEC

SMOKE_S2 = LlamaSize(64, 128, 2, 4, 4)
OFFICIAL = Sampling()  # top_p 0.93, top_k 50, repetition 1.1, guidance 1.5 / 1.2


class Bench:
    def __init__(self, device: torch.device, smoke: bool, scratch: Path, results: dict):
        self.device, self.smoke, self.scratch, self.results = device, smoke, scratch, results
        self.dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
        self.cache: dict = {}
        # sizes: (full GPU run, --smoke on the CPU)
        self.contexts = (2000, 12000) if not smoke else (200, 700)
        self.new_tokens = 300 if not smoke else 24
        self.hf_tokens = 48 if not smoke else 6
        self.song_frames = 9000 if not smoke else 40  # 3 minutes at 50 frames/s
        self.official_frames = 50 if not smoke else 6
        self.codec_seconds = 180 if not smoke else 2
        self.section_tokens = 3000 if not smoke else 40  # one 30 s section

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self) -> float:
        return round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2) if self.device.type == "cuda" else 0.0

    def lm(self, which: str, dtype: torch.dtype | None = None):
        """A random LLaMA built directly on the device (no CPU copy, no file): 's1' official, 's2' the estimate."""
        dtype = dtype or self.dtype
        key = (which, dtype)
        if key not in self.cache:
            from transformers import LlamaConfig, LlamaForCausalLM

            size = {"s1": LLAMA_SIZES["tiny-s1" if self.smoke else "s1-7b"],
                    "s2": SMOKE_S2 if self.smoke else LLAMA_SIZES["s2-estimate"]}[which]
            config = LlamaConfig(**size.to_hf_dict(), attn_implementation="sdpa")
            torch.manual_seed({"s1": 1, "s2": 2}[which])
            with torch.device(self.device):
                model = LlamaForCausalLM(config).to(dtype)
            with torch.no_grad():
                for param in model.parameters():  # spread logits as a trained model's are, not near-uniform
                    if param.ndim == 2:
                        param.normal_(0.0, 0.02 if not self.smoke else 0.15)
            self.cache[key] = model.eval()
        return self.cache[key]

    def tidy(self) -> None:
        """Between steps: the models stay (rebuilding the 7B costs seconds), freed blocks go back to the driver."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def release(self, keep: tuple = ()) -> None:
        for key in [k for k in self.cache if k not in keep]:
            del self.cache[key]
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def prompt(self, context: int) -> Stage1Prompt:
        rng = np.random.default_rng(context)
        header = [int(i) for i in rng.integers(3, 30000, context - 2)] + [SOA, XCODEC]
        return Stage1Prompt((tuple(header),), (), False, ("verse",))


SWITCHES = ("YUE_CUDA_GRAPHS", "YUE_DECODE", "YUE_FUSED", "YUE_COMPILE")


@contextmanager
def decoding(graphs: bool = True, kernels: str = "fast", fused: bool | None = None, compiled: bool | str = False):
    """Decode with or without CUDA graphs, "fast" or "plain" kernels, fused or separate projections (None: the
    library's default), a compiled (True: torch.compile; "aot": AOTInductor packages) or an eager step
    (yue/lm/decoder.py, yue/lm/fusion.py, yue/lm/compiled.py), for one measurement."""
    saved = {name: os.environ.get(name) for name in SWITCHES}
    compile_setting = compiled if isinstance(compiled, str) else "1" if compiled else "0"
    os.environ.update(YUE_CUDA_GRAPHS="1" if graphs else "0", YUE_DECODE=kernels, YUE_COMPILE=compile_setting)
    os.environ.pop("YUE_FUSED", None) if fused is None else os.environ.update(YUE_FUSED="1" if fused else "0")
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.update({name: value})


def ours_stage1(model, prompt: Stage1Prompt, tokens: int, sampling: Sampling, bench: Bench,
                graphs: bool = True, kernels: str = "fast", fused: bool | None = None, compiled: bool | str = False):
    """(tokens/s of the decode loop, ids); time from the first to the last token, so prefill is left out."""
    stamps = []
    settings = replace(sampling, max_new_tokens=tokens, min_new_tokens=tokens)
    with decoding(graphs, kernels, fused, compiled):
        section = next(stage1.generate_sections(model, prompt, settings, seed=1,
                                                on_token=lambda p: stamps.append(time.perf_counter())))
    ids = np.stack([section.vocal, section.instrumental], 1).reshape(-1)
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), ids
