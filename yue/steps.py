"""The steps of a run's sections, timed and reported (`Pipeline.stream_takes` runs them): stage 1's sections cut at
a deadline into an `Unfinished`, stage 2 of every take in one batched call, and the song so far with its audio;
progress events at most a few a second, with the time left (`yue.eta`)."""
from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np

from .config import Stage2Config
from .eta import Eta
from .song import Progress, Song, SongCodes, SongRequest, Unfinished
from .lm.deadline import Deadline, OutOfTime
from .lm.stage1 import Cancelled, SectionTokens, Stage1Tokens
from .lm import stage2
from .weights.loading import Models


def cut_stage1(sections: Iterator[list[SectionTokens]], rows: Callable[[int], tuple]) -> Iterator[list[SectionTokens]]:
    """Stage 1's sections; a stop at the deadline is raised again with an `Unfinished` of the section under way
    (with `rows(section)`, the stage-2 rows made of it so far)."""
    try:
        yield from sections
    except OutOfTime as stop:
        raise OutOfTime(Unfinished(stop.state.section, stage1=stop.state, rows=rows(stop.state.section))) from None


class Rate:
    """Progress events at most one per `interval` seconds (and the last): the step's average rate since it began,
    and the time left from its recent speed (`yue.eta.Eta`: counts down, None while estimating)."""

    def __init__(self, sink: Callable[[Progress], None] | None, interval: float = 0.25):
        self.sink, self.interval = sink, interval
        self.start = self.last = time.perf_counter()
        self.eta = Eta()

    def report(self, stage: str, section: int, sections: int, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.sink is None or (now - self.last < self.interval and done < total):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        left = self.eta.update((section, stage), done, total, now)
        self.sink(Progress(stage, section, sections, done, total, rate, left))


def stage2_codes(models: Models, config: Stage2Config, tokens: list[Stage1Tokens], known: list[list], section: int,
                 total: int, on_progress, cancel, timings, deadline: Deadline | None = None, made: tuple = (),
                 on_state=None, on_codes=None) -> list[SongCodes]:
    """Stage 2 of every take's tracks in one batched call (rows computed before are reused; `on_codes` hears
    them as they are made)."""
    start = time.perf_counter()
    models.prepare("stage2")
    rate = Rate(on_progress)

    def frame_progress(step: stage2.FrameProgress) -> None:
        if cancel is not None and cancel():
            raise Cancelled("stopped by the user")
        rate.report("stage2", section, total, step.frames_done, step.frames_total)

    tracks = [track for t in tokens for track in (t.vocal, t.instrumental)]
    filled = stage2.generate(models.stage2, tracks, config, frame_progress,
                             [codes for pair in known for codes in pair], deadline, made, on_state, on_codes)
    timings["stage2_s"] += time.perf_counter() - start
    return [SongCodes(t, filled[2 * take], filled[2 * take + 1]) for take, t in enumerate(tokens)]


def song_so_far(models: Models, codes: SongCodes, request: SongRequest, seed: int, done: int, total: int, timings,
                warnings, renderer) -> Song:
    """The song so far; its audio from `renderer` (one per stream: only what changed is decoded again), or none
    when `renderer` is None."""
    start = time.perf_counter()
    state = None
    if renderer is not None:
        models.prepare("audio")
        mix, vocal, instrumental = renderer.render(codes.vocal, codes.instrumental)
        state = renderer.state
    else:
        mix = vocal = instrumental = np.zeros(0, dtype=np.float32)
    timings["audio_s"] += time.perf_counter() - start
    return Song(44100, mix, vocal, instrumental, codes, seed, done, total, dict(timings), tuple(warnings), state)
