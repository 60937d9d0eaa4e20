"""How far the whole song is, and the time left for all of it (not just the step running now). Nothing here imports
gradio.

A run makes its new sections one after another, each in three steps: stage 1 (tokens), stage 2 (frames) and the
audio. Sections are alike, so k of n sections done is k/n of the song; within a section a step counts by its cost in
seconds. Before this run has finished a section, the costs are those measured with bench/gpu on an H200
(`space.gpu_time.section_costs`, scaled to the request's tokens and takes); after each section, the seconds this run
measured for each step (`Song.timings`) replace them, so a CPU (where stage 2 weighs far more) is right from the
second section on. The shown fraction never goes back.

The time left for the song comes from the recent speed of that fraction (`yue.eta.Eta`, the estimator of the
pipeline's steps): steps weighted by their cost advance it at an even speed, and Eta's number counts down with the
clock and says "estimating" rather than creep up.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import gpu_time
from yue.config import Sampling
from yue.eta import Eta
from yue.song import Progress

STEPS = ("stage1", "stage2", "audio")
SCALE = 1_000_000  # the song's fraction in whole units, for Eta (which counts units done of a total)


def measured_costs(sampling: Sampling, precision: str = "bf16", takes: int = 1,
                   listen: bool = False) -> dict[str, float]:
    """Seconds of each step of one section on the GPU bench/gpu measured (the same speeds as the GPU bookings;
    `listen`: rows heard while it is made, whose stage-2 batches lengthen stage 1)."""
    return gpu_time.section_costs(sampling, precision, takes, listen)


@dataclass(frozen=True)
class SongState:
    """The whole song's progress: `fraction` of it done (0 to 1) and `left_s`, the seconds left for all of it (None
    while estimating)."""

    fraction: float
    left_s: float | None
    ended: bool = False  # the run is over (finished, or stopped at `fraction`)


class SongProgress:
    """Feed it the run's `Progress` events (`step`) and each finished section's timings (`section_done`); each
    answers a `SongState`. `sections`: the new sections this run makes."""

    def __init__(self, sections: int, costs: dict[str, float], eta: Eta | None = None):
        self.sections, self.costs = max(sections, 1), dict(costs)
        self.eta = eta or Eta()
        self.shown = 0.0

    def step(self, new_index: int, event: Progress, now: float) -> SongState:
        """Event `event` of new section `new_index` (0-based among the new sections) at time `now` (seconds)."""
        before = sum(self.costs[name] for name in STEPS[:STEPS.index(event.stage)]) if event.stage in STEPS else 0.0
        part = self.costs.get(event.stage, 0.0) * (event.done / event.total if event.total else 1.0)
        return self._at(new_index + (before + part) / sum(self.costs.values()), now)

    def section_done(self, new_index: int, timings: dict[str, float], now: float) -> SongState:
        """New section `new_index` is done; `timings`: its measured seconds per step ("stage1_s" …)."""
        measured = {name: timings.get(f"{name}_s", 0.0) for name in STEPS}
        if all(seconds > 0 for seconds in measured.values()):  # a token-only run has no audio step to weigh
            self.costs = measured
        elif measured["stage1"] > 0 and measured["stage2"] > 0:
            self.costs = {**measured, "audio": 0.0}
        return self._at(new_index + 1.0, now)

    def _at(self, sections_done: float, now: float) -> SongState:
        self.shown = max(self.shown, min(sections_done / self.sections, 1.0))
        left = self.eta.update("song", round(self.shown * SCALE), SCALE, now)
        return SongState(self.shown, left)
