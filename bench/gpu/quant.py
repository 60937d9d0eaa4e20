"""The quantization steps of bench/gpu: `quant`, stage 1 at every precision the library loads (bf16; int8 / int4
weight-only with torchao; bnb-int8 / nf4 with bitsandbytes), eager and with CUDA graphs, with its memory, the share
of the copy bandwidth it reaches and how far its tokens drift from bf16; and `quant_compiled`, the same with the
ahead-of-time compiled decode step inside the graphs (YUE_COMPILE=aot; only when named: every precision compiles a
package per cache capacity its runs reach, each serving all of that cache's attention buckets).

`quant` also runs stage 2 of the 3-minute song (2 tracks, all its 6 s rows batched, the estimate config) at each
precision and computes the 3-minute song's time from it: 2 stage-1 tokens per frame (vocal and instrumental) at
the tokens/s measured at the longest context (the slower end of a song: a conservative figure), plus stage 2. Not in
it: prompts, sections' re-feeds and the audio (the `codec` and `pipeline` steps measure those).

The weights are random (the 7B's official shape): the drift is a PROXY for what quantizing the trained checkpoint
does. Drift = the first greedy token (guidance on) that differs from bf16's, and the mean KL divergence
KL(bf16 || precision) of the next-token distributions over KL_STEPS teacher-forced steps (bf16's own tokens after
the prompt, the conditional row through the model's transformers forward).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from bench.gpu.bench import OFFICIAL, Bench, decoding, ours_stage1
from bench.gpu.steps import first_difference
from yue.config import Stage2Config
from yue.text.prompt import codes_to_stage1_ids
from yue.weights import registry

GREEDY = OFFICIAL.greedy()  # guidance as official; argmax, so that precisions can be compared token by token
KL_STEPS = 300  # teacher-forced steps of the KL divergence (the measure)
GPU_PRECISIONS = ("bf16", "int8", "int4", "bnb-int8", "nf4")  # the first is the reference
CPU_PRECISIONS = ("fp32", "int8", "int4", "bnb-int8", "nf4")  # --smoke: fp32 is the CPU's reference
STAGE2_WARMUP_FRAMES = 60  # frames per track of the stage-2 warm-up: short, so it is cheap at any precision
STAGE2_BUDGET_S = 240  # a stage 2 the warm-up projects longer is not run whole (bitsandbytes may be that slow)


def _saved(bench: Bench, which: str = "s1"):
    """A random model ('s1' the 7B, 's2' the estimate) saved once as a bf16 checkpoint (fp32 in --smoke), so each
    precision loads it as users do."""
    folder = bench.scratch / which
    if not (folder / "config.json").is_file():
        bench.lm(which).save_pretrained(folder)
        bench.release()
    return folder


def _stage2_song(bench: Bench, precision: str) -> tuple[float, bool]:
    """(seconds, measured) of stage 2 for the 3-minute song's rows at `precision`; measured False: a rough
    projection, the warm-up's time scaled by decode steps (it includes capture and first calls; its batch is
    smaller than the song's)."""
    from yue.lm import stage2

    model, _ = _load(_saved(bench, "s2"), bench, precision)
    rng = np.random.default_rng(0)
    tracks = [rng.integers(0, 1024, bench.song_frames) for _ in range(2)]
    warmup = min(STAGE2_WARMUP_FRAMES, bench.song_frames)
    with decoding():
        bench.sync()
        start = time.perf_counter()
        stage2.generate(model, [t[:warmup] for t in tracks])  # also the warm-up (graphs captured, kernels loaded)
        bench.sync()
        # The song's rows run in one batch: its loop has one row's steps (chunk_frames x 8), the warm-up's warmup x 8.
        projected = (time.perf_counter() - start) * min(bench.song_frames, Stage2Config().chunk_frames) / warmup
        if projected > STAGE2_BUDGET_S:
            return projected, False
        start = time.perf_counter()
        stage2.generate(model, tracks)
        bench.sync()
    return time.perf_counter() - start, True


def _step_bytes(model, precision: str, context: int) -> int:
    """Bytes one guided decode step reads at least: the weights but the embedding table (one row each), and the KV
    cache of both rows up to `context`."""
    size = registry.llama_size(model.config.to_dict())
    embedding = model.config.vocab_size * model.config.hidden_size * 2
    return size.weight_bytes(precision) - embedding + 2 * context * size.kv_bytes_per_token


@torch.inference_mode()
def _log_probs(model, ids: np.ndarray, steps: int) -> torch.Tensor:
    """log p(next token) at the last `steps` positions of `ids`, Float[steps, vocab], on the model's device."""
    tokens = torch.as_tensor(ids, device=model.device)[None]
    logits = model(tokens, logits_to_keep=steps).logits[0].float()
    return torch.log_softmax(logits, dim=-1)


def _load(folder, bench: Bench, precision: str):
    from yue.weights.loading import load_lm

    bench.release()
    allocated = torch.cuda.memory_allocated(bench.device) if bench.device.type == "cuda" else 0
    model = load_lm(folder, bench.device, precision=precision)
    measured = torch.cuda.memory_allocated(bench.device) - allocated if bench.device.type == "cuda" else None
    return model, measured


def step_quant(bench: Bench, compiled: bool = False) -> dict:
    """Stage-1 tokens/s at each context for every precision (eager, graphs; or compiled + graphs), weights and peak
    GiB, share of the copy bandwidth, first differing greedy token and mean KL against the reference precision; not
    compiled: stage 2 of the 3-minute song and the song's computed time."""
    cuda = bench.device.type == "cuda"
    precisions = GPU_PRECISIONS if cuda else CPU_PRECISIONS
    if compiled:  # bitsandbytes layers cannot be compiled (host syncs); --smoke: one compile is enough to check it
        precisions = precisions[:3] if cuda else ("int8",)
    modes = ("compiled",) if compiled else ("eager", "graphs")
    contexts = bench.contexts if cuda or not compiled else bench.contexts[:1]
    copy = bench.results.get("environment", {}).get("copy_tb_per_s")
    out = {"_note": ("random 7B (drift is a proxy); greedy with guidance; tokens/s of the decode loop; bandwidth "
                     "share = bytes a step reads x tokens/s / measured copy TB/s; stage 2: the 3-minute song's rows, "
                     "estimate config; song = 2 tokens per frame at the longest context's tokens/s + stage 2")}
    folder = _saved(bench)
    reference: dict = {}
    steps = min(KL_STEPS, bench.new_tokens)
    for precision in precisions:
        model, measured = _load(folder, bench, precision)
        size = registry.llama_size(model.config.to_dict())
        out[f"{precision}_weights_gib_computed"] = round(size.weight_bytes(precision) / 2**30, 2)
        if measured is not None:
            out[f"{precision}_weights_gib_measured"] = round(measured / 2**30, 2)
        for context in contexts:
            prompt = bench.prompt(context)
            bench.reset_peak()
            for mode in modes:
                tokens = bench.new_tokens // 3 if mode == "eager" else bench.new_tokens
                switches = dict(graphs=mode != "eager", compiled="aot" if mode == "compiled" else False)
                if mode == "compiled":  # compile every bucket this run reaches first: not timed
                    ours_stage1(model, prompt, tokens, GREEDY, bench, **switches)
                rate, ids = ours_stage1(model, prompt, tokens, GREEDY, bench, **switches)
                out[f"{precision}_{mode}_tok_s@{context}"] = round(rate, 1)
            out[f"{precision}_peak_gib@{context}"] = bench.peak_gib()
            if copy:
                share = rate * _step_bytes(model, precision, context) / (copy * 1e12)
                out[f"{precision}_bandwidth_share@{context}"] = round(share, 3)
            key = (context, mode)
            if precision == precisions[0]:
                reference[key] = ids
            elif key in reference:
                out[f"{precision}_first_differing_token@{context}"] = first_difference(ids, reference[key])
        if not compiled:  # drift over teacher-forced steps: the reference's own greedy tokens after the prompt
            context = contexts[0]
            codes = reference[(context, modes[-1])].reshape(-1, 2)
            ids = np.concatenate([np.array(bench.prompt(context).pieces[0]),
                                  codes_to_stage1_ids(codes[:, 0], codes[:, 1])])
            log_q = _log_probs(model, ids, steps)
            if precision == precisions[0]:
                reference["log_p"] = log_q
            else:
                log_p = reference["log_p"]
                kl = (log_p.exp() * (log_p - log_q)).sum(-1).mean().item()
                out[f"{precision}_mean_kl_vs_{precisions[0]}@{context}"] = round(kl, 5)
        del model
        if not compiled:
            stage1_s = 2 * bench.song_frames / out[f"{precision}_{modes[-1]}_tok_s@{contexts[-1]}"]
            stage2_s, measured = _stage2_song(bench, precision)
            out[f"{precision}_stage2_3min_song_s" + ("" if measured else "_projected")] = round(stage2_s, 2)
            out[f"{precision}_3min_song_s_computed"] = round(stage1_s + stage2_s, 2)
    if compiled:
        from yue.lm.compiled import REPORTS

        out["packages_built"] = len(REPORTS)
        out["packages_holding_a_weight_copy"] = sum(r.weights_inside for r in REPORTS)
        out["compile_s_mean"] = round(sum(r.compile_s for r in REPORTS) / max(len(REPORTS), 1), 1)
        out["package_mb_max"] = round(max((r.package_bytes for r in REPORTS), default=0) / 1e6, 2)
    bench.release()
    return out


def step_quant_compiled(bench: Bench) -> dict:
    return step_quant(bench, compiled=True)


QUANT_STEPS = {"quant": step_quant, "quant_compiled": step_quant_compiled}
ONLY_WHEN_NAMED_QUANT = ("quant_compiled",)
