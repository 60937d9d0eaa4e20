"""The steps of bench/gpu, one function each (`STEPS`); bench/gpu/bench.py builds what they measure."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from bench.gpu.bench import OFFICIAL, Bench, decoding, ours_stage1
from yue.lm import official, stage1, stage2
from yue.config import Sampling
from yue.lm.guided import GuidedContext
from yue.text.prompt import Stage1Prompt
from yue.text.tokens import XCODEC_OFFSET


def transformers_stage1(model, prompt: Stage1Prompt, tokens: int, bench: Bench) -> float:
    """tokens/s of transformers generate with the official settings (guidance as its own unbatched pass)."""
    from transformers import LogitsProcessorList

    ids = torch.tensor([list(prompt.pieces[0])], device=bench.device)

    def run(n: int) -> float:
        bench.sync()
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                           do_sample=True, top_k=OFFICIAL.top_k, top_p=OFFICIAL.top_p, guidance_scale=1.5,
                           repetition_penalty=OFFICIAL.repetition_penalty, pad_token_id=2,
                           logits_processor=LogitsProcessorList([official._Stage1Mask(ids.shape[1])]))
        bench.sync()
        return time.perf_counter() - start

    run(4)  # warm-up
    one = run(1)
    return (tokens - 1) / (run(tokens) - one)


def step_stage1(bench: Bench) -> dict:
    """Stage-1 decode tokens/s (guidance on, official sampling): ours with graphs ("fast" and "plain" kernels),
    ours eager, transformers generate."""
    model = bench.lm("s1")
    out = {"_note": "7B official config, random bf16; tokens/s of the decode loop (one token = both guidance rows)"}
    for kernels in ("fast", "plain"):  # warm-up (kernels, cuBLAS)
        ours_stage1(model, bench.prompt(bench.contexts[0]), 8, OFFICIAL, bench, kernels=kernels)
    for context in bench.contexts:
        prompt = bench.prompt(context)
        bench.reset_peak()
        for kernels in ("fast", "plain"):
            rate = ours_stage1(model, prompt, bench.new_tokens, OFFICIAL, bench, kernels=kernels)[0]
            out[f"ours_graphs_{kernels}_tok_s@{context}"] = round(rate, 1)
        out[f"peak_gib@{context}"] = bench.peak_gib()
        rate = ours_stage1(model, prompt, bench.new_tokens // 3, OFFICIAL, bench, graphs=False)[0]
        out[f"ours_eager_fast_tok_s@{context}"] = round(rate, 1)
        out[f"transformers_tok_s@{context}"] = round(transformers_stage1(model, prompt, bench.hf_tokens, bench), 1)
        best = max(out[f"ours_graphs_{k}_tok_s@{context}"] for k in ("fast", "plain"))
        out[f"speedup_vs_transformers@{context}"] = round(best / out[f"transformers_tok_s@{context}"], 2)
    fast = sum(v for k, v in out.items() if k.startswith("ours_graphs_fast"))
    plain = sum(v for k, v in out.items() if k.startswith("ours_graphs_plain"))
    bench.results["best_kernels"] = "fast" if fast >= plain else "plain"
    return out


def first_difference(a: np.ndarray, b: np.ndarray) -> int:
    differ = np.nonzero(a != b)[0]
    return int(differ[0]) if differ.size else -1


def step_agree(bench: Bench) -> dict:
    """Greedy tokens: graphs vs eager (bf16 on the 7B, fp32 on the stage-2-sized model), fast vs plain kernels;
    stage-2 codes graphs vs eager in fp32."""
    out = {"_note": f"{bench.new_tokens} greedy tokens; first differing token (-1 = none)"}
    greedy = OFFICIAL.greedy()
    prompt = bench.prompt(bench.contexts[0])
    for name, model in (("bf16_7b", bench.lm("s1")), ("fp32_2b", bench.lm("s2", torch.float32))):
        runs = {(graphs, kernels): ours_stage1(model, prompt, bench.new_tokens, greedy, bench, graphs, kernels)[1]
                for graphs in (True, False) for kernels in ("fast", "plain")}
        out[f"graphs_vs_eager_fast_{name}"] = first_difference(runs[True, "fast"], runs[False, "fast"])
        out[f"graphs_vs_eager_plain_{name}"] = first_difference(runs[True, "plain"], runs[False, "plain"])
        out[f"fast_vs_plain_{name}"] = first_difference(runs[True, "fast"], runs[True, "plain"])
    tracks = [np.random.default_rng(3).integers(0, 1024, 20)]
    model = bench.lm("s2", torch.float32)
    with decoding(graphs=False):
        eager = stage2.generate(model, tracks)[0]
    with decoding(graphs=True):
        graphs = stage2.generate(model, tracks)[0]
    out["stage2_fp32_graph_equals_eager"] = bool((eager == graphs).all())
    bench.release(keep=(("s1", bench.dtype),))
    return out


def step_stage2(bench: Bench) -> dict:
    """Stage 2 for a 3-minute song (2 tracks) with each kernel set; graph vs eager codes (bf16); the official
    per-frame loop on a short piece for scale."""
    model = bench.lm("s2")
    rng = np.random.default_rng(0)
    tracks = [rng.integers(0, 1024, bench.song_frames) for _ in range(2)]
    out = {"_note": "stage-2 ESTIMATE config (1.96 B), random bf16; all 6 s rows batched"}
    out["song_seconds"] = bench.song_frames / 50
    for kernels in ("fast", "plain"):
        with decoding(kernels=kernels):
            stage2.generate(model, [t[:60] for t in tracks])  # warm-up
            bench.reset_peak()
            bench.sync()
            start = time.perf_counter()
            stage2.generate(model, tracks)
            bench.sync()
        out[f"ours_{kernels}_s"] = round(time.perf_counter() - start, 2)
        out[f"ours_{kernels}_frames_per_s"] = round(2 * bench.song_frames / out[f"ours_{kernels}_s"], 1)
        out[f"peak_{kernels}_gib"] = bench.peak_gib()
    short = [t[:bench.official_frames or 20] for t in tracks]
    with decoding(graphs=False):
        eager = stage2.generate(model, short)
    graphs = stage2.generate(model, short)
    out["bf16_codes_differing_graph_vs_eager"] = f"{sum(int((a != b).sum()) for a, b in zip(eager, graphs))} of " \
                                                 f"{sum(a.size for a in eager)}"
    if bench.official_frames:
        bench.sync()
        start = time.perf_counter()
        theirs = official.stage2_generate(model, short[0])
        bench.sync()
        official_s = time.perf_counter() - start
        out["official_frames_per_s"] = round(bench.official_frames / official_s, 2)
        out["bf16_codes_differing_official_vs_ours"] = int((theirs != graphs[0]).sum())
        out["speedup_vs_official_per_frame"] = round(out["ours_fast_frames_per_s"] / out["official_frames_per_s"], 1)
    return out


def _codec_parts(bench: Bench):
    from transformers import HubertConfig

    from yue.codec.xcodec import CodecConfig, SoundStream
    from yue.codec.vocoder import Vocoder, VocoderConfig

    if "codec" not in bench.cache:
        torch.manual_seed(0)
        codec = SoundStream(CodecConfig(), HubertConfig()).eval()
        codec.drop_encoder()
        parts = (codec, Vocoder(VocoderConfig()).eval(), Vocoder(VocoderConfig()).eval())
        bench.cache["codec"] = tuple(part.to(bench.device) for part in parts)
    return bench.cache["codec"]


def step_codec(bench: Bench) -> dict:
    """xcodec decode + both Vocos upsamplers + band merge for a 3-minute song (fp32, chunked)."""
    from yue.codec.render import render_song

    parts = _codec_parts(bench)
    rng = np.random.default_rng(0)
    render_song(*parts, *[rng.integers(0, 1024, (8, 250)) for _ in range(2)])  # warm-up
    codes = [rng.integers(0, 1024, (8, bench.codec_seconds * 50)) for _ in range(2)]
    bench.reset_peak()
    start = time.perf_counter()
    mix, _, _ = render_song(*parts, *codes)
    seconds = time.perf_counter() - start
    assert mix.shape == (bench.codec_seconds * 44100,) and np.isfinite(mix).all()
    return {"_note": "full-size codec + 2 Vocos, random fp32", "audio_s": bench.codec_seconds,
            "wall_s": round(seconds, 2), "real_time_factor": round(seconds / bench.codec_seconds, 4),
            "peak_gib": bench.peak_gib()}


def step_pipeline(bench: Bench) -> dict:
    """Two 30 s sections streamed through Pipeline on the device, as the app runs them (stage 1, stage 2 of the new
    rows, audio of the song so far, per section); and the time of a 3-minute song (6 sections) from them."""
    from yue.weights.loading import Models
    from yue.pipeline import Pipeline
    from yue.song import SongRequest
    from yue.weights.tiny import write_tokenizer
    from yue.text.tokens import Tokenizer

    tokenizer = Tokenizer(write_tokenizer(bench.scratch / "tokenizer.model"))
    models = Models(bench.lm("s1"), bench.lm("s2"), tokenizer, *_codec_parts(bench), device=bench.device)
    sampling = Sampling(max_new_tokens=bench.section_tokens, min_new_tokens=bench.section_tokens)
    lyrics = "[verse]\nfirst light on the harbor\nwe sing it again\n\n[chorus]\nla la la"
    kernels = bench.results.get("best_kernels", "fast")
    out = {"_note": f"2 streamed sections of 30 s each ({kernels} kernels); seconds per section"}
    bench.reset_peak()
    before, start = {}, time.perf_counter()
    with decoding(kernels=kernels):
        for song in Pipeline(models).stream(SongRequest("pop female bright vocal", lyrics, 2, sampling, seed=1)):
            section = song.sections_done
            out[f"section{section}_wall_s"] = round(time.perf_counter() - start, 1)
            for name, total in song.timings.items():
                out[f"section{section}_{name}"] = round(total - before.get(name, 0.0), 2)
            before, start = dict(song.timings), time.perf_counter()
    out["song_seconds"] = round(song.seconds, 1)
    out["peak_gib"] = bench.peak_gib()
    # Later sections cost what section 2 cost plus a little more context (stage-1 speed is flat from 2k to 12k
    # ids) and a longer audio re-render (real-time factor below 0.01): 6 sections ~ section 1 + 5 x section 2.
    out["estimated_3min_song_s"] = round(out["section1_wall_s"] + 5 * out["section2_wall_s"], 1)
    return out


def step_nan(bench: Bench) -> dict:
    """Masked rows on this device: what a query that sees no key gives, and that ours never makes one."""
    q = torch.randn(2, 4, 1, 64, device=bench.device, dtype=bench.dtype)
    mask = torch.ones(2, 1, 1, 256, dtype=torch.bool, device=bench.device)
    mask[1] = False
    raw = torch.nn.functional.scaled_dot_product_attention(q, q.expand(2, 4, 256, 64).contiguous(),
                                                           q.expand(2, 4, 256, 64).contiguous(), attn_mask=mask)
    model = bench.lm("s1")
    context = GuidedContext(model, stage1.allowed_ids(bench.device))
    prompt = list(bench.prompt(bench.contexts[0]).pieces[0])
    finite = []
    for restart in range(3):  # sections: restart the guidance row, decode, feed the next prompt
        cond, uncond = context.feed([prompt[:500] if restart else prompt], restart_uncond=True)
        for code in range(40):
            cond, uncond = context.step([XCODEC_OFFSET + code], [1 + code], [True])
        finite.append(bool(torch.isfinite(cond).all() and torch.isfinite(uncond).all()))
    return {"_note": "SDPA with an all-false mask row, and a stage-1 run with 3 guidance restarts",
            "fully_masked_row_gives": "NaN" if raw[1].isnan().any() else "finite",
            "ours_logits_finite": all(finite), "ours_cache_finite": context.decoder.finite()}


def step_takes(bench: Bench) -> dict:
    """Stage-1 time per decode step with 1, 2 and 4 takes in one batch (official sampling, graphs)."""
    model = bench.lm("s1")
    prompt = bench.prompt(bench.contexts[0])
    settings = replace(OFFICIAL, max_new_tokens=bench.new_tokens // 3, min_new_tokens=bench.new_tokens // 3)
    out = {"_note": f"7B, context {bench.contexts[0]}; ms per step (one token of every take)"}
    for takes in (1, 2, 4):
        stamps = []
        with decoding():
            list(stage1.generate_takes(model, prompt, settings, seed=1, takes=takes,
                                       on_token=lambda p: stamps.append(time.perf_counter())))
        out[f"ms_per_step_{takes}_takes"] = round(1000 * (stamps[-1] - stamps[0]) / (len(stamps) - 1), 2)
    out["ratio_4_takes_to_1"] = round(out["ms_per_step_4_takes"] / out["ms_per_step_1_takes"], 2)
    return out


def step_prefill(bench: Bench) -> dict:
    """What a GPU call cut at its deadline pays to go on: the re-prefill of the stage-1 window (one take, a cold
    cache, as a resumed call builds it) at each context length, in seconds and ids per second."""
    model = bench.lm("s1")
    out = {"_note": "7B, one take: GuidedContext.feed of the whole window into a new cache (a resumed call)"}
    for context in bench.contexts:
        ids = list(bench.prompt(context).pieces[0])
        GuidedContext(model, stage1.allowed_ids(bench.device), 1, context + 8).feed([ids[:256]], restart_uncond=True)
        bench.sync()
        start = time.perf_counter()
        GuidedContext(model, stage1.allowed_ids(bench.device), 1, context + 8).feed([ids], restart_uncond=True)
        bench.sync()
        seconds = time.perf_counter() - start
        out[f"refill_s@{context}"] = round(seconds, 3)
        out[f"refill_ids_per_s@{context}"] = round(context / seconds)
    return out


STEPS = {"stage1": step_stage1, "agree": step_agree, "stage2": step_stage2, "codec": step_codec,
         "pipeline": step_pipeline, "nan": step_nan, "takes": step_takes, "prefill": step_prefill}
