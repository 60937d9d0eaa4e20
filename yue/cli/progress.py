"""What `python -m yue generate` tells a person while it works and when it is done.

While it works: one line per step (a stage of a section) on stderr. On a terminal the line is rewritten in place
with a carriage return and ended with a newline when the step ends; piped into a file or another program, a step
gets one plain line when it ends, and one every `interval_s` while it runs, so a log holds a few lines per section
rather than one per progress event (the pipeline sends up to four a second). When done: a short summary of what was
written where, the sections made of the lyrics' sections, the audio's length, the seed and the time of each stage.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, TextIO

# Progress.stage -> (what a person reads, the unit of done/total)
STAGES = {"stage1": ("stage 1", "tokens"), "stage2": ("stage 2", "frames"), "audio": ("audio", "frames")}
PIPED_INTERVAL_S = 10.0  # piped: a step still running is reported at most this often
# Song.timings key -> the stage it measured
TIMED_STAGES = (("stage1_s", "stage 1"), ("stage2_s", "stage 2"), ("audio_s", "audio"))


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def seconds(value: float) -> str:
    """Elapsed time to read at a glance: tenths under 10 s, whole seconds above."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def describe(progress, elapsed_s: float) -> str:
    """'section 1/2 stage 1: 340/3000 tokens, 12 s, about 95 s left' for a yue.song.Progress event."""
    name, unit = STAGES.get(progress.stage, (progress.stage, "steps"))
    text = (f"section {progress.section + 1}/{progress.sections} {name}: {progress.done}/{progress.total} {unit}, "
            f"{seconds(elapsed_s)}")
    if progress.done < progress.total and progress.eta_s is not None:
        text += f", about {progress.eta_s:.0f} s left"
    return text


class ProgressLine:
    """An `on_progress` callback for the pipeline that writes its events to `stream` as described above."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = PIPED_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = is_terminal(self.stream)
        self.interval_s, self.clock = interval_s, clock
        self.step: tuple[str, int] | None = None  # (stage, section) of the step under way
        self.started = self.written = 0.0  # when that step began, when a piped line was last written
        self.text = ""  # the step's latest line
        self.pending = False  # piped: the latest line has not been written yet
        self.width = 0  # terminal: characters on the line being rewritten

    def __call__(self, progress) -> None:
        now = self.clock()
        step = (progress.stage, progress.section)
        if step != self.step:
            self.end()
            self.step, self.started, self.written = step, now, now
        # the pipeline's rate is done / seconds since the step began (its first event comes a moment later)
        elapsed = progress.done / progress.rate if progress.rate else now - self.started
        self.text, self.pending = describe(progress, elapsed), True
        finished = progress.done >= progress.total
        if self.terminal:
            padding = " " * max(0, self.width - len(self.text))  # blank what is left of a longer line
            self._write("\r" + self.text + padding)
            self.width = len(self.text)
            self.pending = False
        elif finished or now - self.written >= self.interval_s:
            self._write(self.text + "\n")
            self.written, self.pending = now, False
        if finished:
            self.end()

    def end(self) -> None:
        """End the step under way: its last line stays (a stage that stops early, at <EOA>, ends this way)."""
        if self.step is None:
            return
        if self.terminal:
            self._write("\n")
        elif self.pending:
            self._write(self.text + "\n")
        self.step, self.pending, self.width = None, False, 0

    def note(self, text: str) -> None:
        """A line of its own (loading models, warnings), after the step under way is ended."""
        self.end()
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def summary(songs: list, folders: list[Path], audio_files: list[str], lyric_sections: int, load_s: float,
            total_s: float) -> list[str]:
    """The lines `generate` ends with: per take where its files went, its seed and audio length; the sections made
    of the lyrics' sections (and how to make them all); the seconds each stage took."""
    files = ", ".join([*audio_files, "song.npz", "stage1_*.npy (1, T)", "stage2_*.npy (8, T)", "settings.json"])
    lines = []
    for take, (song, folder) in enumerate(zip(songs, folders)):
        name = f"take {take + 1}: " if len(songs) > 1 else ""
        lines.append(f"{name}{song.seconds:.1f} s of audio, seed {song.seed} -> {folder}/")
    lines.append(f"files: {files}")
    song = songs[0]
    made = f"{song.sections_done} of {lyric_sections} lyric sections"
    if song.sections_done < lyric_sections:
        made += "; --segments all for every section"
    lines.append(made)
    stages = ", ".join(f"{name} {seconds(song.timings.get(key, 0.0))}" for key, name in TIMED_STAGES)
    lines.append(f"time: loading models {seconds(load_s)}, {stages}; total {seconds(total_s)}")
    return lines
