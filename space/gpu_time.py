"""ZeroGPU bookings: how long each GPU call asks for, when it must stop, and about how much quota a song uses.

ZeroGPU books a call's duration before the GPU is attached and kills the call when it runs past it; a visitor whose
quota left is below the booking is refused (a free visitor has 5 GPU-minutes a day). The card's real speed is not
known here, so no estimate of a section's work can be trusted to fit one call. Instead each call books a chunk that
fits a visitor's quota (CHUNK_SECONDS, or less when less work is left) and carries its own deadline: the booking
less STARTUP_SECONDS and stop_seconds(); the pipeline stops there and the next call goes on (yue/lm/deadline.py).
So an estimate that is wrong costs another call, never a killed call or a refused one.

Where each number comes from:
* MEASURED: bench/gpu on an NVIDIA H200 (bench/results/gpu-h200-run*.json; random full-size weights).
* ZEROGPU_SLOWDOWN: an ESTIMATE for ZeroGPU's card (see there); it only sizes the last call of a section, the number
  of calls shown and the stop margin, never whether a call survives.
* duration_factor(): read at run time from the installed `spaces` (zero/configs.json, by the GPU's model name: 1.0 on
  an H200, 1.5 on an RTX PRO 6000 Blackwell; none for an 'xlarge' GPU). spaces multiplies every requested duration
  by it before booking and checking the quota, so we request booked / factor: the visitor is charged our booking
  exactly once, and the call may run for that long in real seconds.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

from yue.config import Sampling
from yue.song import Unfinished

log = logging.getLogger("yue.app")

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
MARGIN = 1.5  # a section's last call books this much more than its work's estimate: a shared slice, longer contexts
# ESTIMATE until bench/gpu runs on ZeroGPU's card: a bf16 7B decode step took 8.6 ms on the H200, ~3 ms of it
# reading the weights at the measured 4.2 TB/s and the rest kernel latency; half an RTX PRO 6000 Blackwell has about
# half of its 1.8 TB/s (datasheet), so reading the weights takes ~14 ms there and a step ~20 ms: 2.3x, rounded up.
ZEROGPU_SLOWDOWN = 2.5
RENDER_SECONDS = 1.24  # rendering one take's song so far after a section, measured (pipeline step, first section)
# Takes are row pairs of one stage-1 batch, and a decode step on the GPU is bound by reading the weights, so each
# extra take should add only a fraction of a one-take stage-1 time. Not measured on a GPU yet (bench/gpu has no
# takes step): an estimate, to replace with the measured ratio. Stage 2 and audio are booked in full per take.
EXTRA_TAKE_STAGE1 = 0.15
MAX_SECONDS = 300  # ZeroGPU's limit for one call

# A call books at most this many seconds of a visitor's quota (after spaces' factor). 60 s is ZeroGPU's own default
# duration (spaces' DEFAULT_SCHEDULE_DURATION); a free visitor's 300 s a day hold five such calls, and a booking is
# refused whole when the quota left is smaller, so a smaller chunk wastes less of a visitor's last minutes. Each call
# also pays STARTUP_SECONDS, stop_seconds() and a re-prefill (bench/bench_lm.py "cut" case: well under 1 s), ~10 s
# in all: 15% of 60 s, 11% of 90 s; chunks much under 60 s would spend a growing share on them.
CHUNK_SECONDS = 60
MIN_CALL_SECONDS = 20  # the least a call books: its fixed costs and some work
# ESTIMATE: from the GPU grant to our function's first line: ZeroGPU forks its worker, attaches the GPU and copies
# the packed weights (~19 GB in bf16: both LMs and the codec) over PCIe at ~10 GB/s on a fresh worker; a reused one
# skips it. Not measurable outside ZeroGPU.
STARTUP_SECONDS = 5.0
# After the deadline passes: up to CHECK_EVERY (16) decode steps before the next clock read (~0.35 s of stage 1 on
# ZeroGPU's card, ESTIMATE 2.5 x 8.6 ms a step), the stage-2 steps the host has queued ahead of the GPU (its launch
# queue, under 1 s), handing the state back (a few ms on the CPU: bench/bench_lm.py "cut"). Plus rendering each
# take's song when a section ends just before the deadline (stop_seconds).
STOP_LAG_SECONDS = 1.5


def duration_factor() -> float:
    """The factor `spaces` multiplies every requested duration by on this machine (1.0 off ZeroGPU, without the
    package, or for an 'xlarge' GPU, which spaces does not scale)."""
    try:
        from spaces.config import Config

        if not Config.zero_gpu:
            return 1.0
        from spaces.zero import config, default_gpu_size

        return 1.0 if default_gpu_size() == "xlarge" else float(config.get_config()["duration_factor"])
    except (ImportError, AttributeError, KeyError, TypeError, ValueError) as error:  # another spaces version
        log.warning("could not read spaces' duration_factor (%s); assuming 1.0", error)
        return 1.0


def on_zero_gpu() -> bool:
    """Whether this app runs on ZeroGPU (spaces' own switch, the SPACES_ZERO_GPU variable)."""
    try:
        from spaces.config import Config
    except ImportError:
        return False
    return bool(Config.zero_gpu)


def stop_seconds(takes: int = 1) -> float:
    """What must still happen after a call's deadline passes, on ZeroGPU's card (an estimate: see STOP_LAG_SECONDS)."""
    return STOP_LAG_SECONDS + RENDER_SECONDS * ZEROGPU_SLOWDOWN * takes


def deadline_seconds(booked: float, takes: int = 1) -> float:
    """Seconds from a call's first line to its deadline: its booking less what happens before and after."""
    return booked - STARTUP_SECONDS - stop_seconds(takes)


def granted(booked: float) -> int:
    """The visitor seconds spaces really books when we ask for `booked`: it takes whole requested seconds
    (timedelta.seconds) times its factor, rounded; never more than `booked`. A call's deadline starts from this."""
    factor = duration_factor()
    return round(math.floor(booked / factor) * factor)


def request_seconds(booked: int) -> int:
    """The duration to give spaces.GPU for a booking of `booked` visitor seconds (a `granted` value): spaces
    multiplies it by its factor and rounds, which gives `booked` back."""
    return round(booked / duration_factor())


def work_seconds(sampling: Sampling, precision: str = "bf16", takes: int = 1,
                 unfinished: Unfinished | None = None) -> float:
    """Seconds of model work left in a section on ZeroGPU's card (estimate: measured H200 speed x slowdown):
    its stage-1 tokens (the budget, an upper bound), stage 2 and audio; less what `unfinished` says is done."""
    speed = MEASURED.get(precision, MEASURED["bf16"])
    tokens = sampling.max_new_tokens
    stage2_done = 0.0
    if unfinished is not None and unfinished.stage == "stage2":
        tokens = 0
        parts = unfinished.rows
        stage2_done = sum(p.frames for p in parts) / max(1, sum(p.row.length for p in parts))
    elif unfinished is not None and unfinished.stage1 is not None:
        tokens = max(0, tokens - unfinished.stage1.step)
    stage1 = tokens / speed.stage1_tokens_per_s * (1 + EXTRA_TAKE_STAGE1 * (takes - 1))
    frames = sampling.max_new_tokens // 2
    stage2 = speed.stage2_row_s * min(frames, FRAMES_PER_ROW) / FRAMES_PER_ROW * takes * (1 - stage2_done)
    return ZEROGPU_SLOWDOWN * (stage1 + stage2 + RENDER_SECONDS * takes)


def booking(work: float, takes: int = 1, chunk: float = CHUNK_SECONDS) -> int:
    """Visitor seconds a call books for `work` seconds left: a chunk, or less when the work (x MARGIN) and the
    call's fixed costs fit in less."""
    wanted = STARTUP_SECONDS + stop_seconds(takes) + MARGIN * work
    return int(math.ceil(min(chunk, MAX_SECONDS, max(MIN_CALL_SECONDS, wanted))))


def call_seconds(sampling: Sampling, precision: str = "bf16", takes: int = 1,
                 unfinished: Unfinished | None = None, chunk: float = CHUNK_SECONDS) -> int:
    """Visitor seconds the next call of a section books (`unfinished`: what earlier calls left of it)."""
    return booking(work_seconds(sampling, precision, takes, unfinished), takes, chunk)


def planned_calls(sampling: Sampling, precision: str = "bf16", takes: int = 1,
                  unfinished: Unfinished | None = None, chunk: float = CHUNK_SECONDS) -> list[int]:
    """The bookings the rest of a section takes if the card runs at the estimated speed: chunks, each working until
    its deadline, then one for the rest."""
    left, bookings = work_seconds(sampling, precision, takes, unfinished), []
    while left > 0 and len(bookings) < 100:
        bookings.append(booking(left, takes, chunk))
        left -= deadline_seconds(bookings[-1], takes)
    return bookings or [booking(0.0, takes, chunk)]


def song_seconds(sampling: Sampling, precision: str, takes: int, sections: int) -> int:
    """About how many visitor GPU seconds `sections` new sections book in all (the planned calls' bookings)."""
    return sections * sum(planned_calls(sampling, precision, takes))


QUOTA = re.compile(r"exceeded your .*quota|reached its GPU limit", re.IGNORECASE)


def quota_refused(error: BaseException) -> bool:
    """Whether `error` is ZeroGPU refusing a call for quota: spaces raises a gradio Error titled "ZeroGPU quota
    exceeded" whose text says "You have exceeded your free ZeroGPU quota (60s requested vs. 20s left)..."
    (spaces/zero/client.py, 0.51.3), or "Space app has reached its GPU limit" for a visitor without a token."""
    return "quota exceeded" in str(getattr(error, "title", "")).lower() or bool(QUOTA.search(str(error)))
