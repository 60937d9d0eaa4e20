"""Rows heard while a section is made, between a GPU call and the app's process: the call writes each piece of
every take's audio (`yue.rows.RowAudio`) as a .wav in the run's hand-over folder and yields a `RowHeard` (a path and a few
numbers, well under handover.MESSAGE_BYTES); the app plays the pieces in order.

A call cut at its deadline goes on in the next call from its section's state, whose own stream starts again at
the section's first row not final before it: `Heard` keeps, per take, the frames played so far and hands on only
the part of a piece after them, so a listener hears every frame once, in order, across calls (and after a Stop,
every row heard stays heard: the app keeps the pieces it played). Nothing here imports gradio or spaces.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from yue.audio import write_audio
from yue.rates import FRAME_RATE, OUTPUT_HOP
from yue.rows import RowAudio

ROW_FOLDER = "rows"  # in the run's folder


@dataclass(frozen=True)
class RowHeard:
    """Frames [start, start + frames) of take `take`'s mix (50 a second), in the .wav at `path`."""

    take: int
    section: int
    start: int
    frames: int
    path: str


def write_row(folder: str | Path, piece: RowAudio) -> RowHeard:
    """Write a piece's mix (16-bit .wav, 44.1 kHz) under `folder` (the run's hand-over folder: removed with it when
    the run ends) and say where it is."""
    path = Path(folder) / ROW_FOLDER / f"take{piece.take + 1}-{piece.start:07d}-{piece.frames}.wav"
    write_audio(path, piece.mix, piece.sample_rate)
    return RowHeard(piece.take, piece.section, piece.start, piece.frames, str(path))


class Heard:
    """Per take, the frames a listener has been handed so far."""

    def __init__(self, takes: int, frames: int = 0):
        self.frames = [frames] * takes

    def new_part(self, row: RowHeard) -> RowHeard | None:
        """The part of `row` after what its take heard (the row itself when it starts there; a trimmed copy when a
        resumed call hands some of it again; None when all of it was heard)."""
        heard, end = self.frames[row.take], row.start + row.frames
        if end <= heard:
            return None
        self.frames[row.take] = end
        if row.start >= heard:
            return row
        import soundfile

        samples, rate = soundfile.read(row.path, dtype="float32")  # 16-bit samples: written again unchanged
        path = Path(row.path).with_name(f"take{row.take + 1}-{heard:07d}-{end - heard}.wav")
        write_audio(path, samples[(heard - row.start) * OUTPUT_HOP:], rate)
        return RowHeard(row.take, row.section, heard, end - heard, str(path))


def row_listing(rows: list[RowHeard], first: int = 0) -> tuple[list[str], list[dict]]:
    """The pieces from number `first` on (0: all) whose files are still there (a run's are removed when it ends), as
    (their .wav files, a table of each: its number in the run, take and section (from 1), start and seconds, file
    name), for API callers (the /rows endpoint)."""
    files, table = [], []
    for number, row in enumerate(rows[max(first, 0):], start=max(first, 0)):
        if Path(row.path).exists():
            files.append(row.path)
            table.append({"piece": number, "take": row.take + 1, "section": row.section + 1,
                          "start_s": row.start / FRAME_RATE, "seconds": row.frames / FRAME_RATE,
                          "file": Path(row.path).name})
    return files, table
