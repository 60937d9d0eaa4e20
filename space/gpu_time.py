"""ZeroGPU bookings: how long each GPU call asks for, when it must stop, and at most how much quota a song books.

ZeroGPU books a call's duration before the GPU is attached and kills the call when it runs past it; a visitor whose
quota left is below the booking is refused (a free visitor has a few GPU-minutes a day). ZeroGPU charges what a call
uses, not what it booked, so the sums here are upper bounds. The card's real speed is not known here, so no estimate
of a section's work can be trusted to fit one call. Instead each call books a chunk that fits a visitor's quota
(CHUNK_SECONDS, or less when less work is left) and carries its own deadline: the booking less what happens before
its first line and after its deadline; the pipeline stops there and the next call goes on (yue/lm/deadline.py). So
an estimate that is wrong costs another call, never a killed call or a refused one.

Where each number comes from:
* MEASURED: bench/gpu on an NVIDIA H200 (bench/results/gpu-h200-run*.json; random full-size weights).
* CARDS: each card's speed against that H200 (an ESTIMATE where not measured: see there); it sizes the last call of a
  section, the number of calls shown and the stop margin, never whether a call survives.
* duration_factor(): read at run time from the installed `spaces` (zero/configs.json, by the GPU's model name: 1.0 on
  an H200, 1.5 on an RTX PRO 6000 Blackwell; none for an 'xlarge' GPU: client.py `get_duration_seconds`). spaces
  multiplies every requested duration by it before booking and checking the quota, so we request booked / factor:
  the call may run for `booked` real seconds and the visitor is charged at most that once.
The tables of docs/space.md, docs/models.md and README.md are made from these numbers (space/gpu_table.py).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from yue.config import Sampling
from yue.rows import listen_batches
from yue.song import Unfinished
from yue.text.prompt import FRAMES_PER_SECOND

log = logging.getLogger("yue.app")

FRAMES_PER_ROW = 300  # stage 2 works in 6 s rows: a section's stage 2 costs 8 decode steps per frame of its longest row
TOKENS_PER_ROW = 2 * FRAMES_PER_ROW  # stage 1 makes 2 ids a frame (one per track): a whole row is 600 of its tokens


@dataclass(frozen=True)
class MeasuredSpeed:
    """One precision on one GPU, as measured by bench/gpu (2026-11-27, NVIDIA H200, random full-size weights)."""

    stage1_tokens_per_s: float  # guided stage-1 decoding through the pipeline (graphs, official sampling)
    stage2_row_s: float  # stage 2 of one section's rows (all batched): time for a full 300-frame row


# Pipeline step of bench/gpu: a 30 s section took 25.9-26.7 s of stage 1 (3000 tokens, prefill included) and
# 13.5 s of stage 2 (10 rows of 300 frames, bf16). bitsandbytes int8 / nf4 stage 1: the quantized step (8.8 / 25.1
# tokens/s); their stage 2 stays bf16 on a card of ZeroGPU's size.
MEASURED = {
    "bf16": MeasuredSpeed(stage1_tokens_per_s=112.0, stage2_row_s=13.7),
    "bnb-int8": MeasuredSpeed(stage1_tokens_per_s=8.8, stage2_row_s=13.7),
    "nf4": MeasuredSpeed(stage1_tokens_per_s=25.1, stage2_row_s=13.7),
}


def speed(precision: str) -> MeasuredSpeed:
    """A precision's measured speed; one not measured on a GPU yet (torchao int8 and int4: bench/gpu's `quant` step
    has not run) books at bf16's: if it is slower, a call stops at its deadline and one more call goes on."""
    return MEASURED.get(precision, MEASURED["bf16"])


@dataclass(frozen=True)
class Card:
    """A GPU a ZeroGPU call may run on, as the bookings see it."""

    name: str
    memory_gb: float
    slowdown: float  # its time for our work over the H200's (1.0: the card MEASURED comes from)
    duration_factor: float  # what spaces multiplies a requested duration by (zero/configs.json; xlarge: none)
    quota_factor: int  # visitor seconds one booked second costs (client.py `schedule`: an xlarge second counts twice)
    measured: bool


# ESTIMATES until bench/gpu runs on ZeroGPU's card: a bf16 7B decode step took 8.6 ms on the H200, ~3 ms of it
# reading the weights at the measured 4.2 TB/s and the rest kernel latency. Half an RTX PRO 6000 Blackwell ('large',
# ZeroGPU's default) has about half of the card's 1.8 TB/s (datasheet): ~14 ms of reading, ~20 ms a step, 2.3x,
# rounded up to 2.5. The whole card ('xlarge'): ~7 ms of reading, ~12.5 ms a step, 1.45x, rounded up to 1.5.
CARDS = {
    "large": Card("half an NVIDIA RTX PRO 6000 Blackwell ('large', ZeroGPU's default)", 48, 2.5, 1.5, 1, False),
    "xlarge": Card("a whole NVIDIA RTX PRO 6000 Blackwell ('xlarge')", 96, 1.5, 1.0, 2, False),
    "h200": Card("NVIDIA H200 (measured, bench/gpu)", 141, 1.0, 1.0, 1, True),
}

# Listening while a section is made (the page's switch, on by default): stage 2 makes the section's first row alone,
# then LISTEN_ROWS rows of each take a batch (yue.rows.listen_batches), between stage-1 steps on the same GPU, each
# batch about as long as a section's whole stage 2 (MEASURED stage2_row_s: 10 rows took 13.7 s, 60 rows 27 s). A batch
# of L rows gives 6L s of song for 5.4L s of stage 1 (600 tokens at 112/s) + 13.7 s: it would keep up with playback
# only for L >= 23, more rows than a 30 s section (5) has, so no value plays without pauses and every batch more costs
# 13.7 s (x the card's slowdown) of the visitor's quota. 4 rather than yue.rows' 1: the first row alone (a 30 s
# section's first 6 s are heard ~19 s into it on the H200, where the whole section takes ~42 s without listening),
# then at most one batch more per 30 s section: 2 batches (+27 s, +66%) instead of 1's 5 (+69 s, +164%).
# ESTIMATE until `python -m bench.gpu --only stream` measures a section made with listening on a GPU.
LISTEN_ROWS = 4
MARGIN = 1.5  # a section's last call books this much more than its work's estimate: a shared slice, longer contexts
RENDER_SECONDS = 1.24  # rendering one take's song so far after a section, measured (pipeline step, first section)
# Takes are row pairs of one stage-1 batch, and a decode step on the GPU is bound by reading the weights, so each
# extra take should add only a fraction of a one-take stage-1 time. Not measured on a GPU yet (bench/gpu has no
# takes step): an estimate, to replace with the measured ratio. Stage 2 and audio are booked in full per take.
EXTRA_TAKE_STAGE1 = 0.15
MAX_SECONDS = 300  # ZeroGPU's limit for one call

# A call books at most this many seconds of a visitor's quota (after spaces' factor). 60 s is ZeroGPU's own default
# duration (spaces' DEFAULT_SCHEDULE_DURATION); a booking is refused whole when the quota left is smaller, so a
# smaller chunk wastes less of a visitor's last minutes. Each call also pays STARTUP_SECONDS, stop_seconds() and its
# resume (feeding again what was made as settled blocks: bench/bench_resume.py, by arithmetic ~1.7 s at 15k context
# on the H200, ~4 s on ZeroGPU's card), ~10-13 s in all: 15-20% of 60 s; chunks much under 60 s would spend a
# growing share on them.
CHUNK_SECONDS = 60
MIN_CALL_SECONDS = 20  # the least a call books: its fixed costs and some work
MIN_WORK_SECONDS = 5  # what a call books for its work at least, above its fixed costs (which grow with the song)
# ESTIMATE: from the GPU grant to our function's first line. A fresh worker is forked, then spaces' worker_init
# (wrappers.py) attaches the GPU (`torch.init`: CUDA_VISIBLE_DEVICES, a first CUDA tensor) and `torch.move` copies
# every tensor packed at start-up (~19 GB in bf16: both LMs and the codec) from disk through two 128 MB pinned
# buffers (packing.py `pack_to_cuda`), then the arguments are unpickled; a reused worker skips all of it. Not
# measurable outside ZeroGPU: each call also measures its own (serving.py) and stops earlier when it was slower.
STARTUP_SECONDS = 5.0
# After the deadline passes: up to CHECK_EVERY (16) decode steps before the next clock read (~0.35 s of stage 1 on
# ZeroGPU's card, ESTIMATE 2.5 x 8.6 ms a step), the stage-2 steps the host has queued ahead of the GPU (its launch
# queue, under 1 s), handing the state back (a few ms on the CPU: bench/bench_resume.py). Plus, per take,
# rendering its song when a section ends just before the deadline, and writing it to the run's folder.
STOP_LAG_SECONDS = 1.5
# A model switch (another language, mode or precision than the call before) gets its own allowance in its call's
# booking: a reused worker loads the stage-1 LM inside the call (12.45 GB in bf16 from the page cache or disk), a
# fresh one copies it from host memory (not packed: loaded after launch) on top of the packed ones. ESTIMATE.
LOAD_SECONDS = 30
# What a take's hand-over to the next call holds per second of its song: its render state (16 kHz reconstructions,
# 44.1 kHz stems and filter bands: 1.0 MB) and its audio (mix and stems, float32: 0.53 MB), written when a section
# ends (inside the call, after its deadline) and read by the next call (space/handover.py). bench/bench_handover.py
# wrote the 12 x 30 s, 4-take song's 2.24 GB in 8.2 s on a busy 2-core machine (0.27 GB/s; reading: 1-2 GB/s):
# ESTIMATE for ZeroGPU's disk.
HANDOVER_BYTES_PER_AUDIO_SECOND = 1.55e6
HANDOVER_BYTES_PER_SECOND = 0.25e9


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


def current_card() -> Card:
    """The card this app's calls run on: 'xlarge' when spaces chose it at start-up (packed tensors over its
    threshold), the H200 when zero/configs.json says so, else ZeroGPU's default 'large' (also off ZeroGPU)."""
    if not on_zero_gpu():
        return CARDS["large"]
    try:
        from spaces.zero import config, default_gpu_size

        if default_gpu_size() == "xlarge":
            return CARDS["xlarge"]
        return CARDS["h200"] if config.get_config()["model"] == "NVIDIA H200" else CARDS["large"]
    except (ImportError, AttributeError, KeyError, TypeError) as error:  # another spaces version
        log.warning("could not read spaces' GPU (%s); assuming ZeroGPU's default card", error)
        return CARDS["large"]


def song_at_end(audio_s: float, sampling: Sampling) -> float:
    """Seconds of song when the section under way ends at its token budget (2 ids a frame): the hand-over then."""
    return audio_s + sampling.max_new_tokens / 2 / FRAMES_PER_SECOND


def handover_seconds(audio_s: float, takes: int = 1) -> float:
    """Writing (or reading) every take's hand-over for a song of `audio_s` seconds so far (an estimate)."""
    return takes * audio_s * HANDOVER_BYTES_PER_AUDIO_SECOND / HANDOVER_BYTES_PER_SECOND


def stop_seconds(takes: int = 1, audio_s: float = 0.0, card: Card | None = None) -> float:
    """What must still happen after a call's deadline passes (an estimate: see STOP_LAG_SECONDS), for `takes` takes
    of a song `audio_s` seconds long when its section ends."""
    card = card or current_card()
    return STOP_LAG_SECONDS + RENDER_SECONDS * card.slowdown * takes + handover_seconds(audio_s, takes)


def deadline_seconds(booked: float, takes: int = 1, audio_s: float = 0.0, startup: float = 0.0,
                     card: Card | None = None) -> float:
    """Seconds from a call's first line to its deadline: its booking less what happened before that line (the
    `startup` the call measured, at least STARTUP_SECONDS) and what must happen after the deadline."""
    return booked - max(STARTUP_SECONDS, startup) - stop_seconds(takes, audio_s, card)


def granted(booked: float) -> int:
    """The seconds spaces really books when we ask for `booked`: it takes whole requested seconds (timedelta.seconds)
    times its factor, rounded; never more than `booked`. A call's deadline starts from this."""
    factor = duration_factor()
    return round(math.floor(booked / factor) * factor)


def request_seconds(booked: int) -> int:
    """The duration to give spaces.GPU for a booking of `booked` seconds (a `granted` value): spaces multiplies it
    by its factor and rounds, which gives `booked` back."""
    return round(booked / duration_factor())


def listen_seconds(sampling: Sampling, precision: str = "bf16") -> float:
    """Seconds listening adds to a whole section on the H200 bench/gpu measured: the stage-2 batches made while stage
    1 goes on (`yue.rows.listen_batches` of the rows its token budget makes, LISTEN_ROWS a batch), one whole row
    batch each, whatever the takes (a batch is not bound by its rows: see LISTEN_ROWS)."""
    return listen_batches(sampling.max_new_tokens // TOKENS_PER_ROW, LISTEN_ROWS) * speed(precision).stage2_row_s


def section_costs(sampling: Sampling, precision: str = "bf16", takes: int = 1,
                  listen: bool = False) -> dict[str, float]:
    """Seconds of each step of one whole section on the H200 bench/gpu measured: stage 1 (the token budget, an upper
    bound; `listen`: with the stage-2 batches made between its steps, `listen_seconds`, which lengthen it), stage 2
    (its longest row) and the audio."""
    measured = speed(precision)
    stage1 = sampling.max_new_tokens / measured.stage1_tokens_per_s * (1 + EXTRA_TAKE_STAGE1 * (takes - 1))
    stage1 += listen_seconds(sampling, precision) if listen else 0.0
    frames = min(sampling.max_new_tokens // 2, FRAMES_PER_ROW)
    return {"stage1": stage1, "stage2": measured.stage2_row_s * frames / FRAMES_PER_ROW * takes,
            "audio": RENDER_SECONDS * takes}


def work_seconds(sampling: Sampling, precision: str = "bf16", takes: int = 1,
                 unfinished: Unfinished | None = None, card: Card | None = None, listen: bool = False) -> float:
    """Seconds of model work left in a section on `card` (default: this app's; an estimate: measured H200 speed x
    the card's slowdown): `section_costs` less what `unfinished` says is done (`listen`: its rows are heard while it
    is made; the batches that takes are spread over stage 1, so its steps left count them too)."""
    costs = section_costs(sampling, precision, takes, listen)
    if unfinished is not None and unfinished.stage == "stage2":
        parts = unfinished.rows
        costs["stage1"] = 0.0
        costs["stage2"] *= 1 - sum(p.frames for p in parts) / max(1, sum(p.row.length for p in parts))
    elif unfinished is not None and unfinished.stage1 is not None:
        costs["stage1"] *= max(0, sampling.max_new_tokens - unfinished.stage1.step) / max(1, sampling.max_new_tokens)
    return (card or current_card()).slowdown * sum(costs.values())


def least_booking(takes: int = 1, audio_s: float = 0.0, card: Card | None = None) -> int:
    """The least a call may book: its fixed costs (startup, stop) and MIN_WORK_SECONDS of work, MIN_CALL_SECONDS at
    least; `audio_s`: the song's length when the section ends (its hand-over grows with it)."""
    fixed = STARTUP_SECONDS + stop_seconds(takes, audio_s, card)
    return int(math.ceil(max(MIN_CALL_SECONDS, fixed + MIN_WORK_SECONDS)))


def booking(work: float, takes: int = 1, chunk: float = CHUNK_SECONDS, card: Card | None = None,
            audio_s: float = 0.0) -> int:
    """Seconds a call books for `work` seconds left: a chunk, or less when the work (x MARGIN) and the call's fixed
    costs fit in less; never less than `least_booking`."""
    wanted = STARTUP_SECONDS + stop_seconds(takes, audio_s, card) + MARGIN * work
    least = least_booking(takes, audio_s, card)
    return int(math.ceil(min(max(chunk, least), MAX_SECONDS, max(least, wanted))))


def call_seconds(sampling: Sampling, precision: str = "bf16", takes: int = 1, unfinished: Unfinished | None = None,
                 chunk: float = CHUNK_SECONDS, card: Card | None = None, audio_s: float = 0.0,
                 listen: bool = False) -> int:
    """Seconds the next call of a section books (`unfinished`: what earlier calls left of it; `audio_s`: the song's
    length when the section ends; `listen`: its rows are heard while it is made)."""
    return booking(work_seconds(sampling, precision, takes, unfinished, card, listen), takes, chunk, card, audio_s)


def planned_calls(sampling: Sampling, precision: str = "bf16", takes: int = 1,
                  unfinished: Unfinished | None = None, chunk: float = CHUNK_SECONDS,
                  card: Card | None = None, audio_s: float = 0.0, listen: bool = False) -> list[int]:
    """The bookings the rest of a section takes if the card runs at the estimated speed: chunks, each working until
    its deadline, then one for the rest (`listen`: its rows are heard while it is made)."""
    left, bookings = work_seconds(sampling, precision, takes, unfinished, card, listen), []
    while left > 0 and len(bookings) < 100:
        bookings.append(booking(left, takes, chunk, card, audio_s))
        left -= deadline_seconds(bookings[-1], takes, audio_s, 0.0, card)
    return bookings or [booking(0.0, takes, chunk, card, audio_s)]


def song_seconds(sampling: Sampling, precision: str, takes: int, sections: int, card: Card | None = None,
                 listen: bool = False) -> int:
    """At most how many seconds of a visitor's quota `sections` new sections of a new song book in all (the planned
    calls' bookings; ZeroGPU charges what they use, which is less; `listen`: rows are heard while they are made)."""
    card, ends = card or current_card(), [0.0]
    for _ in range(sections):
        ends.append(song_at_end(ends[-1], sampling))
    return card.quota_factor * sum(sum(planned_calls(sampling, precision, takes, card=card, audio_s=end,
                                                     listen=listen))
                                   for end in ends[1:])
