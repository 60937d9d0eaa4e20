"""Codec speed and memory at full (official) size with random weights, CPU.

    python bench/bench_codec.py          # 30 s and 5 min songs, 30 s reference encode (a few minutes on 2 cores)

Each case runs in its own process so its peak RSS is its own (the full-size codec + two upsamplers are ~0.8 GB of
fp32 weights, counted in every peak). "song" = both tracks through the official output path: 16 kHz xcodec decode,
44.1 kHz Vocos upsampling, band merge (yue.render.render_song), decoded in 30 s chunks.
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time


def _parts(decode_only: bool = False):
    import torch
    from transformers import HubertConfig

    from yue.codec import CodecConfig, SoundStream
    from yue.vocoder import Vocoder, VocoderConfig

    torch.manual_seed(0)
    # HubertConfig's defaults are the official semantic_ckpts/hf_1_325000 config (hubert-base)
    codec = SoundStream(CodecConfig(), HubertConfig()).eval()
    if decode_only:
        codec.drop_encoder()
    return codec, Vocoder(VocoderConfig()).eval(), Vocoder(VocoderConfig()).eval()


def run_case(case: str, seconds: float):
    import numpy as np
    import torch

    from yue import render

    torch.set_num_threads(2)
    codec, vocal, instrumental = _parts(decode_only=case == "decode-only song")
    rng = np.random.default_rng(0)
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
    return elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    rows = []
    for case, seconds in (("song", 30), ("song", 300), ("decode-only song", 300), ("encode", 30)):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            elapsed, peak = pool.apply(run_case, (case, seconds))
        rows.append((case, seconds, elapsed, peak))
    print("\nfull-size xcodec_mini + 2 Vocos upsamplers, random weights, fp32, CPU, 2 threads\n")
    print("| case | audio | wall time s | real-time factor | peak RSS MiB |")
    print("|---|---|---|---|---|")
    names = {"song": "decode + upsample + merge, 2 tracks (whole codec loaded)",
             "decode-only song": "the same with a decode-only codec (load_codec(decode_only=True))",
             "encode": "encode reference (HuBERT + encoders, 1 codebook)"}
    for case, seconds, elapsed, peak in rows:
        print(f"| {names[case]} | {seconds:.0f} s | {elapsed:.1f} | {elapsed / seconds:.3f} | {peak:.0f} |")
    print("\nreal-time factor = wall time / audio duration (below 1 is faster than real time).")


if __name__ == "__main__":
    main()
