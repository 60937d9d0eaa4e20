"""Codec speed and memory at full (official) size with random weights: the library path yue runs (transformers'
XcodecModel and Vocos ISTFT head, loaded by yue.weights.codec_loading) against ours, the former re-implementation of
the official modules (tests/codec/reference, the tests' oracle), side by side in one run on the same weights.

    python -m bench.bench_codec                  # CPU, 2 threads: 30 s cases (~10 minutes on 2 busy cores)
    python -m bench.bench_codec --long           # + a 5-minute song
    python -m bench.bench_codec --device cuda    # on a GPU (fp32, as yue runs the codec)
    python -m bench.bench_codec --rounds 3       # each path's fastest of 3 alternating runs (a shared machine)

One official-layout folder is written first (random weights in the official files, ~0.8 GB in a temporary folder);
each case then runs in its own process, so its peak RSS is its own. "song" = both tracks through the official
output path (yue.codec.render.render_song): 16 kHz xcodec decode, 44.1 kHz Vocos upsampling, band merge, in chunks
of CHUNK_FRAMES frames. "load" = reading the folder into the models (the library path maps the official names).
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path

CASES = {"song": "decode + upsample + merge, 2 tracks (whole codec loaded)",
         "decode-only song": "the same with a decode-only codec (load_codec(decode_only=True))",
         "encode": "encode reference (HuBERT + encoders, 1 codebook)"}
PATHS = ("ours", "library")


def _parts(decode_only: bool = False):
    """The library codec and two upsamplers at full size with random weights (no files)."""
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


def _load(path: str, folder: Path, decode_only: bool, device):
    """(codec, vocal, instrumental) from the official-layout folder, through the library loader or into ours."""
    import torch

    from yue.weights import codec_layout, codec_loading

    if path == "library":
        return (codec_loading.load_codec(folder, device, decode_only=decode_only),
                *(codec_loading.load_vocoder(folder, which, device) for which in ("vocal", "instrumental")))
    from tests.codec.reference.vocoder import Vocoder
    from tests.codec.reference.xcodec import SoundStream

    codec = SoundStream(codec_loading.codec_config(folder), codec_loading.hubert_config(folder))
    state = torch.load(folder / codec_loading.CODEC_WEIGHTS, map_location="cpu", mmap=True, weights_only=True)
    codec.load_state_dict(codec_layout.pos_conv_as(state["codec_model"], set(codec.state_dict())))
    if decode_only:
        codec.drop_encoder()
    vocoders = []
    for which in ("vocal", "instrumental"):
        vocoder = Vocoder(codec_loading.vocoder_config(folder))
        vocoder.load_state_dict(torch.load(folder / codec_loading.VOCODER_WEIGHTS[which], weights_only=True))
        vocoders.append(vocoder.to(device).eval())
    return codec.to(device).eval(), *vocoders


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


def run_case(path: str, case: str, seconds: float, folder: Path, threads: int, device: str):
    import numpy as np
    import torch

    from yue.codec import render

    torch.set_num_threads(threads)
    start = time.perf_counter()
    codec, vocal, instrumental = _load(path, folder, case == "decode-only song", device)
    load = time.perf_counter() - start
    rng = np.random.default_rng(0)
    totals: dict = defaultdict(float)
    _timed(render, ("decode_16k", "upsample_44k", "merge_bands"), totals)
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    start = time.perf_counter()
    if case == "encode":
        samples = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
        output = render.encode_codebook0(codec, samples)
        assert output.shape == (int(seconds * 50),)
    else:
        frames = int(seconds * 50)
        output, _, _ = render.render_song(codec, vocal, instrumental, *[rng.integers(0, 1024, (8, frames))] * 2)
        assert output.shape == (882 * frames,)
    sync()
    elapsed = time.perf_counter() - start
    return load, elapsed, dict(totals), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--long", action="store_true", help="add a 5-minute song")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run each case this many times, alternating the paths, and keep each path's fastest "
                             "(default 1; more on a machine that other jobs share)")
    args = parser.parse_args()
    from tests import ROOT
    from tests.codec.reference.folder import write_official_folder

    cases = [("song", 30), ("decode-only song", 30), ("encode", 30), *([("song", 300)] if args.long else [])]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_official_folder(Path(scratch), ROOT / "tests" / "data")
        for case, seconds in cases:
            results = {}
            for _ in range(args.rounds):
                for path in PATHS:
                    with multiprocessing.get_context("spawn").Pool(1) as pool:
                        result = pool.apply(run_case, (path, case, seconds, folder, args.threads, args.device))
                    print(f"done: {path} {case} {seconds} s in {result[1]:.1f} s", flush=True)
                    if path not in results or result[1] < results[path][1]:
                        results[path] = result
            ours, library = results["ours"][4], results["library"][4]
            difference = float((library != ours).mean() if case == "encode" else
                               abs(library - ours).max() / abs(ours).max())
            rows.append((case, seconds, results, difference))
    print(f"\nfull-size xcodec_mini + 2 Vocos upsamplers, random weights, fp32, {args.device}, {args.threads} threads: "
          "ours (tests/codec/reference) vs the library path\n")
    print("| case | audio | path | load s | wall s | real-time factor | 16 kHz decode s | 44.1 kHz upsample s | merge s "
          "| peak RSS MiB | library / ours wall | output difference |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case, seconds, results, difference in rows:
        ratio = results["library"][1] / results["ours"][1]
        for path in PATHS:
            load, elapsed, parts, peak, _ = results[path]
            split = " | ".join(f"{parts[name]:.1f}" if name in parts else "-"
                               for name in ("decode_16k", "upsample_44k", "merge_bands"))
            tail = f"{ratio:.2f} | {difference:.1e}" if path == "library" else " | "
            print(f"| {CASES[case]} | {seconds:.0f} s | {path} | {load:.1f} | {elapsed:.1f} | {elapsed / seconds:.3f} "
                  f"| {split} | {peak:.0f} | {tail} |")
    print("\nreal-time factor = wall time / audio duration (below 1 is faster than real time). output difference: "
          "max |library - ours| / max |ours| of the mix (song), the share of codes differing (encode).")


if __name__ == "__main__":
    main()
