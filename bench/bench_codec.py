"""Codec speed and memory at full (official) size with random weights, CPU.

    python -m bench.bench_codec          # 30 s and 5 min songs, 30 s reference encode (~8 minutes on 2 cores)

Each case runs in its own process so its peak RSS is its own (the full-size codec + two upsamplers are ~0.8 GB of
fp32 weights, counted in every peak). "song" = both tracks through the official output path (yue.render.render_song):
16 kHz xcodec decode, 44.1 kHz Vocos upsampling, band merge, decoded in chunks of yue.render.CHUNK_FRAMES frames.
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from collections import defaultdict


def _parts(decode_only: bool = False):
    import torch
    from transformers import HubertConfig

    from yue.codec.xcodec import CodecConfig, SoundStream
    from yue.codec.vocoder import Vocoder, VocoderConfig

    torch.manual_seed(0)
    # HubertConfig's defaults are the official semantic_ckpts/hf_1_325000 config (hubert-base)
    codec = SoundStream(CodecConfig(), HubertConfig()).eval()
    if decode_only:
        codec.drop_encoder()
    return codec, Vocoder(VocoderConfig()).eval(), Vocoder(VocoderConfig()).eval()


def _timed(module, names: tuple[str, ...], totals: dict) -> None:
    """Wrap module-level functions so their wall time adds up in `totals` (bench only)."""
    for name in names:
        function = getattr(module, name)

        def wrapper(*args, _function=function, _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _function(*args, **kwargs)
            finally:
                totals[_name] += time.perf_counter() - start

        setattr(module, name, wrapper)


def run_case(case: str, seconds: float, threads: int):
    import numpy as np
    import torch

    from yue.codec import render

    torch.set_num_threads(threads)
    codec, vocal, instrumental = _parts(decode_only=case == "decode-only song")
    rng = np.random.default_rng(0)
    totals: dict = defaultdict(float)
    _timed(render, ("decode_16k", "upsample_44k", "merge_bands"), totals)
    start = time.perf_counter()
    if case in ("song", "decode-only song"):
        frames = int(seconds * 50)
        codes = [rng.integers(0, 1024, (8, frames)) for _ in range(2)]
        mix, _, _ = render.render_song(codec, vocal, instrumental, *codes)
        assert mix.shape == (882 * frames,)
    elif case == "encode":
        samples = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        codes = render.encode_codebook0(codec, samples)
        assert codes.shape == (int(seconds * 50),)
    elapsed = time.perf_counter() - start
    return elapsed, dict(totals), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--quick", action="store_true", help="30 s cases only")
    args = parser.parse_args()
    cases = [("song", 30), ("decode-only song", 30), ("song", 300), ("encode", 30)]
    if args.quick:
        cases = [case for case in cases if case[1] <= 30]
    rows = []
    for case, seconds in cases:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            elapsed, parts, peak = pool.apply(run_case, (case, seconds, args.threads))
        rows.append((case, seconds, elapsed, parts, peak))
        print(f"done: {case} {seconds} s in {elapsed:.0f} s", flush=True)
    print(f"\nfull-size xcodec_mini + 2 Vocos upsamplers, random weights, fp32, CPU, {args.threads} threads\n")
    print("| case | audio | wall s | real-time factor | 16 kHz decode s | 44.1 kHz upsample s | merge s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"song": "decode + upsample + merge, 2 tracks (whole codec loaded)",
             "decode-only song": "the same with a decode-only codec (load_codec(decode_only=True))",
             "encode": "encode reference (HuBERT + encoders, 1 codebook)"}
    for case, seconds, elapsed, parts, peak in rows:
        split = " | ".join(f"{parts[name]:.1f}" if name in parts else "-"
                           for name in ("decode_16k", "upsample_44k", "merge_bands"))
        print(f"| {names[case]} | {seconds:.0f} s | {elapsed:.1f} | {elapsed / seconds:.3f} | {split} | {peak:.0f} |")
    print("\nreal-time factor = wall time / audio duration (below 1 is faster than real time).")


if __name__ == "__main__":
    main()
