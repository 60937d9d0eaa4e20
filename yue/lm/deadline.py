"""A GPU call's deadline: the models' loops read it every few decode steps and stop cleanly before it passes.

On ZeroGPU a call books its duration up front and is killed when it runs past it, losing what it made; the card's
real speed is not known in advance, so no estimate of the work can be trusted to fit. Instead each call carries the
clock time by which it must stop (what it booked less what must still happen after stopping: space/gpu_time.py),
and stage 1 and stage 2 raise `OutOfTime` with everything needed to go on (stage1.Stage1Partial,
stage2.RowCodes) at the first check after it. The next call feeds what was made again, as settled blocks of
the uncut run (yue/lm/settle.py), and continues: the same song, bit for bit, in any precision.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

# Decode steps between two reads of the clock. A stage-1 step already waits for its token on the host, so a read
# there costs nothing; a stage-2 step does not wait, so its loop reads the clock on frame boundaries (8 steps a
# frame), never adding a device sync. 16 steps are ~0.15 s of stage 1 on an H200 (8.6 ms a step): the stop is late by
# at most that.
CHECK_EVERY = 16
STAGE2_STEPS_PER_FRAME = 8  # codebooks 0..7 of a frame: 8 fed ids


class OutOfTime(Exception):
    """Raised when a loop stopped at its deadline; `state` is what it made so far, to go on from."""

    def __init__(self, state):
        super().__init__("stopped at the call's deadline; go on from `state` in the next call")
        self.state = state


@dataclass(frozen=True)
class Deadline:
    """Stop deciding new work once `clock()` reaches `at`. `every`: decode steps between clock reads (tests use 1 and
    a fake clock to cut a run at every step)."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    every: int = CHECK_EVERY

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic, every: int = CHECK_EVERY) -> "Deadline":
        """The deadline `seconds` from now on `clock`."""
        if not every >= 1:
            raise ValueError(f"a deadline's clock reads come every >= 1 steps; got {every}")
        return cls(clock() + seconds, clock, every)

    def left(self) -> float:
        return self.at - self.clock()

    def passed(self) -> bool:
        return self.clock() >= self.at

    def stage2_every(self) -> int:
        """Frames between two reads of the clock in stage 2 (a frame is STAGE2_STEPS_PER_FRAME decode steps)."""
        return max(1, self.every // STAGE2_STEPS_PER_FRAME)


# A call that is killed (ZeroGPU's "GPU task aborted": a stalled host, a booking cut short) loses what it made since
# the state it last handed over; handing the state so far to a caller's `save` at most this often bounds that loss.
# Stage 1's state is a few KB of ids and sampler states; stage 2's needs one copy of the codes made off the device.
SAVE_EVERY_SECONDS = 5.0


def read_clock(deadline: Deadline | None, count: int, first: int, every: int) -> float | None:
    """The deadline clock's time if a loop at step (or frame) `count` that began this call at `first` reads it here:
    every `every` counts, after at least one count of work in this call (so every call makes progress); else None."""
    if deadline is None or count <= first or count % every:
        return None
    return deadline.clock()


def stop_now(deadline: Deadline | None, count: int, first: int, every: int) -> bool:
    """Whether a loop at `count` stops here: on a clock read (`read_clock`), once the deadline has passed."""
    now = read_clock(deadline, count, first, every)
    return now is not None and now >= deadline.at


class Saves:
    """Hands a loop's state so far to `save` (None: never) on clock reads at least SAVE_EVERY_SECONDS apart on the
    deadline's clock, so that a call killed before its deadline loses at most that much work."""

    def __init__(self, save: Callable | None, deadline: Deadline | None, every_seconds: float = SAVE_EVERY_SECONDS):
        self.save, self.every_seconds = save, every_seconds
        self.last = deadline.clock() if save is not None and deadline is not None else None

    def check(self, now: float | None, state: Callable[[], object]) -> None:
        """On a clock read (`now`), `save(state())` when the last save is `every_seconds` old."""
        if now is not None and self.last is not None and now - self.last >= self.every_seconds:
            self.last = now
            self.save(state())
