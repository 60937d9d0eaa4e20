"""The kernel-fusion steps of bench/gpu (yue/lm/fusion.py): `fusion`, fused q/k/v and gate/up matmuls (YUE_FUSED=1)
against the separate ones (in the default run, about 2 minutes), and `compile`, the torch.compile'd decode step
against the eager one (only when named with --only: compiling the 7B and the stage-2 model takes minutes; --smoke
runs it too)."""
from __future__ import annotations

import logging
import time

import numpy as np
import torch

from bench.gpu.bench import OFFICIAL, Bench, decoding, ours_stage1
from bench.gpu.steps import first_difference
from yue.lm import stage2
from yue.lm.fusion import joined, layer_projections


def _fuse_here(model, bench: Bench) -> dict:
    """Fuse the model's projections now unless an earlier step did, and what fusing did to device memory."""
    layers = model.get_decoder().layers
    attention = layers[0].self_attn
    if joined([attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight]) is not None:
        return {"weights_fused_by": "an earlier step"}
    cuda = bench.device.type == "cuda"
    bench.sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(bench.device)
    allocated = torch.cuda.memory_allocated(bench.device) if cuda else 0
    reserved = torch.cuda.memory_reserved(bench.device) if cuda else 0
    start = time.perf_counter()
    for layer in layers:
        layer_projections(layer, True)
    bench.sync()
    out = {"weights_fused_by": "this step", "fuse_s": round(time.perf_counter() - start, 2)}
    if cuda:  # allocated should not change; reserved may grow by the blocks the old weights leave in the cache
        gib = 2**30
        out.update(allocated_change_gib=round((torch.cuda.memory_allocated(bench.device) - allocated) / gib, 3),
                   reserved_change_gib=round((torch.cuda.memory_reserved(bench.device) - reserved) / gib, 3),
                   peak_over_before_gib=round((torch.cuda.max_memory_allocated(bench.device) - allocated) / gib, 3))
    return out


def _stage2_song(model, bench: Bench, tracks, **switches) -> tuple[float, list[np.ndarray]]:
    """(seconds, codes) of stage 2 for the song's tracks under these decoding switches."""
    with decoding(**switches):
        bench.sync()
        start = time.perf_counter()
        codes = stage2.generate(model, tracks)
        bench.sync()
    return time.perf_counter() - start, codes


def _differing(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    return f"{sum(int((x != y).sum()) for x, y in zip(a, b))} of {sum(x.size for x in a)}"


def step_fusion(bench: Bench) -> dict:
    """Fused (YUE_FUSED=1, the default) against separate projections, graphs and fast kernels: stage-1 tokens/s at
    the first context (alternating, twice), stage 2 for a 3-minute song, memory, greedy agreement."""
    model = bench.lm("s1")
    context = bench.contexts[0]
    out = {"_note": f"7B stage 1 at {context} context (runs alternate separate/fused); stage 2 3-minute song; "
                    "first differing greedy token (-1 = none)"}
    out.update(_fuse_here(model, bench))
    prompt = bench.prompt(context)
    for fused in (False, True):  # warm-up: graphs, cuBLAS
        ours_stage1(model, prompt, 8, OFFICIAL, bench, fused=fused)
    for run in (1, 2):
        for fused in (False, True):
            rate = ours_stage1(model, prompt, bench.new_tokens, OFFICIAL, bench, fused=fused)[0]
            out[f"stage1_{'fused' if fused else 'separate'}_tok_s@{context}_run{run}"] = round(rate, 1)
    greedy = {fused: ours_stage1(model, prompt, bench.new_tokens, OFFICIAL.greedy(), bench, fused=fused)[1]
              for fused in (False, True)}
    out["bf16_7b_first_differing_token"] = first_difference(greedy[False], greedy[True])

    model = bench.lm("s2")
    rng = np.random.default_rng(0)
    tracks = [rng.integers(0, 1024, bench.song_frames) for _ in range(2)]
    for fused in (False, True):
        with decoding(fused=fused):
            stage2.generate(model, [t[:60] for t in tracks])  # warm-up
    songs = {fused: _stage2_song(model, bench, tracks, fused=fused) for fused in (False, True)}
    out["stage2_separate_s"], out["stage2_fused_s"] = (round(songs[f][0], 2) for f in (False, True))
    out["stage2_bf16_codes_differing"] = _differing(songs[False][1], songs[True][1])

    model = bench.lm("s2", torch.float32)  # fp32: the same greedy tokens expected (as on the CPU)
    greedy = {fused: ours_stage1(model, prompt, bench.new_tokens, OFFICIAL.greedy(), bench, fused=fused)[1]
              for fused in (False, True)}
    out["fp32_2b_first_differing_token"] = first_difference(greedy[False], greedy[True])
    short = [t[:bench.official_frames] for t in tracks]
    codes = {fused: _stage2_song(model, bench, short, fused=fused)[1] for fused in (False, True)}
    out["stage2_fp32_codes_differing"] = _differing(codes[False], codes[True])
    bench.release(keep=(("s1", bench.dtype), ("s2", bench.dtype)))
    return out


class _Warnings(logging.Handler):
    """Collects the decoder's warnings (a failed graph capture falls back to eager decoding and says so)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:200])


def step_compile(bench: Bench) -> dict:
    """YUE_COMPILE=1 (torch.compile's default mode, inside our CUDA graphs) against the eager step, both with fused
    projections: first run (compiling), timed runs of stage 1 at the first context and stage 2 for a 3-minute song."""
    from torch._dynamo.utils import counters

    watch = _Warnings()
    logging.getLogger("yue.lm.decoder").addHandler(watch)
    try:
        return _compile_runs(bench, counters, watch)
    finally:
        logging.getLogger("yue.lm.decoder").removeHandler(watch)


def _compile_runs(bench: Bench, counters, watch: _Warnings) -> dict:
    model = bench.lm("s1")
    context = bench.contexts[0]
    prompt = bench.prompt(context)
    out = {"_note": f"fused projections in both; 7B stage 1 at {context} context, stage 2 3-minute song; first run "
                    "includes compiling; "
                    "first differing greedy token (-1 = none)"}
    start = time.perf_counter()  # the first run compiles: as many tokens as timed, so every bucket is compiled
    ours_stage1(model, prompt, bench.new_tokens, OFFICIAL, bench, fused=True, compiled=True)
    out["stage1_first_run_s"] = round(time.perf_counter() - start, 1)
    ours_stage1(model, prompt, 8, OFFICIAL, bench, fused=True)  # warm-up of the eager step's graphs
    for compiled in (False, True):
        rate = ours_stage1(model, prompt, bench.new_tokens, OFFICIAL, bench, fused=True, compiled=compiled)[0]
        out[f"stage1_{'compiled' if compiled else 'eager'}_tok_s@{context}"] = round(rate, 1)
    greedy = {compiled: ours_stage1(model, prompt, bench.new_tokens, OFFICIAL.greedy(), bench, fused=True,
                                  compiled=compiled)[1]
              for compiled in (False, True)}
    out["bf16_7b_first_differing_token"] = first_difference(greedy[False], greedy[True])
    out["graphs_compiled_after_stage1"] = counters["stats"]["unique_graphs"]

    model = bench.lm("s2")
    rng = np.random.default_rng(0)
    tracks = [rng.integers(0, 1024, bench.song_frames) for _ in range(2)]
    out["stage2_first_run_s"] = round(_stage2_song(model, bench, tracks, fused=True, compiled=True)[0], 1)
    with decoding(fused=True):
        stage2.generate(model, [t[:60] for t in tracks])  # warm-up of the eager step
    songs = {compiled: _stage2_song(model, bench, tracks, fused=True, compiled=compiled) for compiled in (False, True)}
    out["stage2_eager_s"], out["stage2_compiled_s"] = (round(songs[c][0], 2) for c in (False, True))
    out["stage2_bf16_codes_differing"] = _differing(songs[False][1], songs[True][1])
    out["graphs_compiled_in_all"] = counters["stats"]["unique_graphs"]
    out["decoder_warnings"] = "; ".join(watch.messages) or "none"
    return out


FUSION_STEPS = {"fusion": step_fusion, "compile": step_compile}
ONLY_WHEN_NAMED = ("compile",)  # not in a plain `python -m bench.gpu` run (minutes of compiling)
