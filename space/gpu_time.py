"""GPU seconds a section needs, from speeds measured with bench/gpu (not guessed), for ZeroGPU's up-front booking.

ZeroGPU asks for a call's duration before the GPU is attached, so the GPU cannot be asked what it is. The speeds were
measured on an H200; since 2026-05 Hugging Face's docs give ZeroGPU's card as half an RTX PRO 6000 Blackwell (48 GB),
not measured here, so the bookings scale the H200 times by ZEROGPU_SLOWDOWN, an estimate (see there). A booking that
runs short kills the call mid-section; one that runs long only costs the visitor quota, so every time is also
multiplied by MARGIN.
"""
from __future__ import annotations

from dataclasses import dataclass

from yue.config import Sampling

FRAMES_PER_ROW = 300  # stage 2 works in 6 s rows: a section's stage 2 costs 8 decode steps per frame of its longest row


@dataclass(frozen=True)
class MeasuredSpeed:
    """One precision on one GPU, as measured by bench/gpu (2026-11-27, NVIDIA H200, random full-size weights)."""

    stage1_tokens_per_s: float  # guided stage-1 decoding through the pipeline (graphs, official sampling)
    stage2_row_s: float  # stage 2 of one section's rows (all batched): time for a full 300-frame row


# Pipeline step of bench/gpu: a 30 s section took 25.9-26.7 s of stage 1 (3000 tokens, prefill included) and
# 13.5 s of stage 2 (10 rows of 300 frames, bf16). bitsandbytes int8 / nf4 stage 1: the quantized step (8.8 / 25.1
# tokens/s); their stage 2 stays bf16 on a card of ZeroGPU's size. torchao int8 / int4 are NOT measured yet (bench/gpu
# `quant` step): booked at bitsandbytes' speeds for the same bits until it runs (their path has no host syncs).
MEASURED = {
    "bf16": MeasuredSpeed(stage1_tokens_per_s=112.0, stage2_row_s=13.7),
    "bnb-int8": MeasuredSpeed(stage1_tokens_per_s=8.8, stage2_row_s=13.7),
    "nf4": MeasuredSpeed(stage1_tokens_per_s=25.1, stage2_row_s=13.7),
}
MEASURED["int8"], MEASURED["int4"] = MEASURED["bnb-int8"], MEASURED["nf4"]
MARGIN = 1.5  # a shared GPU slice, longer contexts in later sections, a cold cuBLAS
# ESTIMATE until bench/gpu runs on ZeroGPU's card: a bf16 7B decode step took 8.6 ms on the H200, ~3 ms of it
# reading the weights at the measured 4.2 TB/s and the rest kernel latency; half an RTX PRO 6000 Blackwell has about
# half of its 1.8 TB/s (datasheet), so reading the weights takes ~14 ms there and a step ~20 ms: 2.3x, rounded up.
ZEROGPU_SLOWDOWN = 2.5
FIXED_SECONDS = 15  # moving the models onto the GPU, the prompt prefill, rendering the song so far (~1 s measured)
RENDER_SECONDS = 1.0  # rendering one take's song so far (the ~1 s measured above): booked again for every extra take
# Takes are row pairs of one stage-1 batch, and a decode step on the GPU is bound by reading the weights, so each
# extra take should add only a fraction of a one-take stage-1 time. Not measured on a GPU yet (bench/gpu has no
# takes step): an estimate, to replace with the measured ratio. Stage 2 and audio are booked in full per take.
EXTRA_TAKE_STAGE1 = 0.15
MAX_SECONDS = 300  # ZeroGPU's limit for one call


def section_seconds(sampling: Sampling, precision: str = "bf16", takes: int = 1) -> int:
    """Seconds to book for one section of `takes` takes with these settings ("auto" precision is bf16 on ZeroGPU's
    card): stage 1 costs 1 + EXTRA_TAKE_STAGE1 x (takes - 1) times one take's, stage 2 and audio `takes` times."""
    speed = MEASURED.get(precision, MEASURED["bf16"])
    stage1 = sampling.max_new_tokens / speed.stage1_tokens_per_s * (1 + EXTRA_TAKE_STAGE1 * (takes - 1))
    frames = sampling.max_new_tokens // 2
    stage2 = speed.stage2_row_s * min(frames, FRAMES_PER_ROW) / FRAMES_PER_ROW * takes
    audio = RENDER_SECONDS * (takes - 1)  # take 1's is in FIXED_SECONDS
    return int(min(MAX_SECONDS, FIXED_SECONDS + MARGIN * ZEROGPU_SLOWDOWN * (stage1 + stage2 + audio)))
