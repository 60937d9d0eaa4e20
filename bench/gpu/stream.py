"""bench/gpu's listening step (`--only stream`): time to first sound on the 7B with both stages resident, and
whether stage 2's rows made in batches while stage 1 goes on (yue/rows.py) give the codes of the section's rows
batched at once on this device (batch invariance: true on the CPU, unknown on a GPU until this runs), for listen_rows
1, 2 and 5 side by side (rows of each take per stage-2 batch after the section's first: fewer batches, less GPU time).
"""
from __future__ import annotations

import time

import numpy as np

from bench.bench_stream import streamed
from bench.gpu.bench import Bench, decoding
from bench.gpu.steps import _codec_parts
from yue.config import Sampling

# each row as soon as made, pairs, and a 30 s section's (5 rows) rest after its first: stage 1 finishes its first 4
# rows before its last step, so 5 makes only the first row while stage 1 goes on (the rest at the section's end)
LISTEN_ROWS_SWEPT = (1, 2, 5)


def step_stream(bench: Bench) -> dict:
    """One 30 s section through Pipeline, plain and streamed (`stream_takes(on_row=, listen_rows=)`) with each of
    LISTEN_ROWS_SWEPT: seconds to the first piece of audio and to the section's end, the stream's real-time factor,
    the stage-2 batches run while stage 1 went on, and how many stage-2 codes differ from the plain run's."""
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
    out = {"_note": f"one section of {bench.section_tokens} stage-1 tokens ({kernels} kernels), both LMs resident; "
                    f"@N: listen_rows N"}
    with decoding(kernels=kernels):
        start = time.perf_counter()
        plain = list(pipeline.stream_takes(request))[-1][0]
        out["plain_section_s"] = round(time.perf_counter() - start, 2)
        runs = {listen: streamed(pipeline, request, listen) for listen in LISTEN_ROWS_SWEPT}
    for listen, run in runs.items():
        song = run["songs"][0]
        out[f"first_sound_s@{listen}"] = round(run["first_s"], 2)
        out[f"streamed_section_s@{listen}"] = round(run["section_s"], 2)
        out[f"streamed_vs_plain@{listen}"] = round(run["section_s"] / out["plain_section_s"], 2)
        out[f"stream_realtime_factor@{listen}"] = round(song.seconds / run["section_s"], 2)
        out[f"stage2_batches_during_stage1@{listen}"] = run["batches"]
        out[f"pieces@{listen}"] = run["pieces"]
        out[f"stage2_codes_differing@{listen}"] = int(sum(np.count_nonzero(a != b) for a, b in (
            (plain.codes.vocal, song.codes.vocal), (plain.codes.instrumental, song.codes.instrumental))))
        out[f"stage1_equal@{listen}"] = bool(np.array_equal(plain.codes.stage1.vocal, song.codes.stage1.vocal))
    return out


STREAM_STEPS = {"stream": step_stream}
