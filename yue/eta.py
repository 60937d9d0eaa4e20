"""The time left in a step of a run (stage 1 or stage 2 of one section), from the step's own measured speed.

A rate averaged from the start of a step counts the prompt's prefill and every slow moment since, so on a machine
that gets busier the estimate keeps rising a little at every update. Here the rate is the recent speed, smoothed
(an exponential average over a few seconds), there is no number before the step has run a few seconds, and a
shown number counts down with the clock: a new estimate replaces it when it is lower, or when it is higher by more
than a tolerance. A higher estimate is not shown at once: the display says "estimating" again and waits until the
speed has settled again (twice as long each time it had to), so a number never creeps up update after update.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EtaSettings:
    settle_s: float = 3.0  # no number before a step has run this long (the prefill and the first tokens are slow)
    half_life_s: float = 2.0  # the smoothed rate forgets half of what it knew in this many seconds
    tolerance: float = 0.25  # an estimate at most 25% (and 1 s) above the countdown keeps the countdown


@dataclass
class Eta:
    """Feed it every progress event of a run (`update`); it answers the seconds left in the current step, or None
    while it is still estimating. `rate` is the smoothed speed (units per second), None until measured."""

    settings: EtaSettings = field(default_factory=EtaSettings)
    rate: float | None = None
    _step: object = None
    _last: tuple[float, int] = (0.0, 0)  # (time, done) of the previous event of this step
    _settled_at: float = 0.0  # no number before this time
    _settle_s: float = 0.0
    _shown: tuple[float, float] | None = None  # (time, seconds left) of the number last shown

    def update(self, step: object, done: int, total: int, now: float) -> float | None:
        """The seconds left in `step` (any value naming it, e.g. (section, stage)) after `done` of `total` units at
        time `now` (seconds, any clock that only goes forward); None: still estimating."""
        if step != self._step:
            self._step, self.rate, self._shown = step, None, None
            self._settle_s = self.settings.settle_s
            self._last, self._settled_at = (now, done), now + self._settle_s
            return None
        last_time, last_done = self._last
        if now > last_time:
            recent = max(done - last_done, 0) / (now - last_time)
            weight = 1 - 0.5 ** ((now - last_time) / self.settings.half_life_s)
            self.rate = recent if self.rate is None else self.rate + weight * (recent - self.rate)
            self._last = (now, done)
        if now < self._settled_at or not self.rate:
            return None
        estimate = max(total - done, 0) / self.rate
        if self._shown is not None:
            shown_at, shown = self._shown
            countdown = max(shown - (now - shown_at), 0.0)
            if estimate > countdown * (1 + self.settings.tolerance) + 1.0:  # slower than shown: settle again
                self._shown, self._settle_s = None, 2 * self._settle_s
                self._settled_at = now + self._settle_s
                return None
            if estimate >= countdown:
                return countdown
        self._shown = (now, estimate)
        return estimate


def describe_left(seconds: float | None, upper_bound: bool = False) -> str:
    """The time left in words: 'about 40 s left', 'about 2 min 5 s left'; `upper_bound`: the step may end sooner
    (stage 1 stops at the end-of-audio token), 'at most about …'."""
    if seconds is None:
        return "estimating the time left…"
    whole = round(seconds)
    text = f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"
    return f"{'at most ' if upper_bound else ''}about {text} left"
