"""bench/gpu's listening step (`--only stream`): time to first sound on the 7B with both stages resident, and
whether stage 2's rows made one batch at a time while stage 1 goes on (yue/rows.py) give the codes of the section's
rows batched at once on this device (batch invariance: true on the CPU, unknown on a GPU until this runs)."""
from __future__ import annotations

import time

import numpy as np

from bench.gpu.bench import Bench, decoding
from bench.gpu.steps import _codec_parts
from yue.config import Sampling


def step_stream(bench: Bench) -> dict:
    """One 30 s section through Pipeline, plain and streamed (`stream_takes(on_row=)`): seconds to the first
    piece of audio and to the section's end, the stream's real-time factor, and how many stage-2 codes differ."""
    from yue.pipeline import Pipeline
    from yue.song import SongRequest
    from yue.text.tokens import Tokenizer
    from yue.weights.loading import Models
    from yue.weights.tiny import write_tokenizer

    tokenizer = Tokenizer(write_tokenizer(bench.scratch / "tokenizer.model"))
    pipeline = Pipeline(Models(bench.lm("s1"), bench.lm("s2"), tokenizer, *_codec_parts(bench),
                               device=bench.device))
    sampling = Sampling(max_new_tokens=bench.section_tokens, min_new_tokens=bench.section_tokens)
    request = SongRequest("pop female bright vocal", "[verse]\nfirst light on the harbor\nwe sing it again", 1,
                          sampling, seed=1)
    kernels = bench.results.get("best_kernels", "fast")
    out = {"_note": f"one section of {bench.section_tokens} stage-1 tokens ({kernels} kernels), both LMs resident"}
    with decoding(kernels=kernels):
        start = time.perf_counter()
        plain = list(pipeline.stream_takes(request))[-1][0]
        out["plain_section_s"] = round(time.perf_counter() - start, 2)
        firsts: list[float] = []
        start = time.perf_counter()
        streamed = list(pipeline.stream_takes(request, on_row=lambda piece: firsts.append(
            time.perf_counter() - start)))[-1][0]
        out["streamed_section_s"] = round(time.perf_counter() - start, 2)
    out["first_sound_s"] = round(firsts[0], 2)
    out["pieces"] = len(firsts)
    out["stream_realtime_factor"] = round(streamed.seconds / out["streamed_section_s"], 2)
    out["stage2_codes_differing"] = int(sum(np.count_nonzero(a != b) for a, b in (
        (plain.codes.vocal, streamed.codes.vocal), (plain.codes.instrumental, streamed.codes.instrumental))))
    out["stage1_equal"] = bool(np.array_equal(plain.codes.stage1.vocal, streamed.codes.stage1.vocal))
    return out


STREAM_STEPS = {"stream": step_stream}
