"""Listening while a song is made (`Pipeline.stream_takes(on_row=...)`): every take's audio handed on as soon as its
codes are final, at the latest a 6 s row after stage 1 made it.

Stage 2 works on 6 s rows (300 frames) of the song, each independent of the others. While stage 1 makes a section,
the rows it finishes go through stage 2 between two stage-1 steps, on the same device, in batches (`listen_rows`,
`batch_end`): the section's first row alone, then `listen_rows` rows of each take at a time, a batch made (both tracks
of every take whose batch's last row ends at that decode step) once stage 1 has finished its last row. Their frames
go through the take's `AudioStream` every 100 frames (`stage2.PIECES_PER_ROW`): with `listen_rows` 1 a listener hears
the song ~6.7 s behind stage 1 (a row, and the decoders' right context), with more a batch's rows later. At the
section's end the rows left (the tail: rows of a batch stage 1 did not finish, and rows finished by the last step)
are made as `Pipeline` made them before, in one batch per length; a section's last partial row is recomputed when
the next section grows it (it is then the next section's first row), so its audio waits for that (or the song's end).

The same song: rows are batched by the decode step that finished their batch's last row, a function of the stage-1
ids (and `listen_rows`) alone, so a run cut into calls at any step (rows made so far travel in its `Unfinished`: done
in `rows`, begun too) makes the batches of an uncut one.
Against a run without `on_row` (all of a section's rows in one batch) the codes are equal where stage 2's numbers
do not depend on the batch: measured on the CPU in fp32 and bf16 (tests/test_rows.py, test_rows_schedule.py); on a GPU
`python -m bench.gpu --only stream` checks it (docs/models.md says what holds where).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .codec.stream import AudioStream, Piece
from .config import Stage2Config
from .lm import stage2
from .lm.deadline import OutOfTime
from .lm.stage1 import Cancelled, Stage1Partial
from .lm.stage2 import Row, RowCodes
from .rates import FRAME_RATE, OUTPUT_RATE
from .song import SongCodes, Unfinished
from .text.tokens import XCODEC_OFFSET


# While stage 1 makes a section, stage 2 makes its rows in batches: the section's first whole row alone (its first
# sound as early as it can be), then `listen_rows` rows of each take at a time. A batch costs about the same for 2 rows
# as for 10 on a GPU (bench/results/gpu-h200-run2.json: stage 2's steps are not bound by the batch), so fewer,
# larger batches cost less GPU time and the listener waits longer between them. 1: every row as soon as it is made.
LISTEN_ROWS = 1


def batch_end(row: int, listen_rows: int = LISTEN_ROWS) -> int:
    """The last row of the stage-2 batch that row `row` of a section (0-based: 0 is the section's first whole row, a
    partial row grown from the section before included) goes in while stage 1 makes the section: row 0 alone, then
    rows 1..L, L+1..2L, ... (L = `listen_rows`). The batch is made once stage 1 has finished that last row."""
    listen_rows = max(1, listen_rows)
    return 0 if row <= 0 else -(-row // listen_rows) * listen_rows


def listen_batches(rows: int, listen_rows: int = LISTEN_ROWS) -> int:
    """How many stage-2 batches a section whose stage 1 finishes `rows` whole rows (of each take) runs while stage 1
    goes on (`batch_end`: its first row alone, then one batch per `listen_rows` rows); a batch whose last row stage 1
    does not finish waits for the section's own last batch, which a run without listening also makes."""
    return sum(1 for row in range(max(0, rows)) if batch_end(row, listen_rows) == row)

@dataclass(frozen=True)
class RowAudio(Piece):
    """A piece of one take's song as it is made (a `yue.codec.stream.Piece`: frames [start, start + frames), 50 a
    second, at 44.1 kHz, float32, 882 samples a frame, for the mix and both stems), usually 2 s of a 6 s row (the
    first and the last of a section are shorter or longer; pieces join without gap or overlap). `section`: the
    section being made (0-based); `row`: the 6 s row of the song (0-based) the piece ends in; `during`: made while
    stage 1 of its section was still going. `provisional`: the song is not finished, so its loudness is the song so
    far's: the mix's low band was matched to the vocoder's by the RMS of the song so far (`low_gain`, the scale it
    got; the finished song uses the whole song's), and with `rescale` every track was scaled by the song so far's
    peak. Stems without rescale are final."""

    take: int = 0
    section: int = 0
    row: int = 0
    during: bool = False
    sample_rate: int = OUTPUT_RATE

    @property
    def start_s(self) -> float:
        return self.start / FRAME_RATE

    @property
    def seconds(self) -> float:
        return self.frames / FRAME_RATE


class Listening:
    """The rows and audio of every take of one `stream_takes` call, section by section: `begin` a section, `step`
    before each stage-1 decode step (`stage1.generate_takes(on_step=)`), `hear` the codes of rows being made
    (`stage2.make_rows(on_codes=)`), `end` it with the section's codes."""

    def __init__(self, models, config: Stage2Config, streams: list[AudioStream], on_row: Callable[[RowAudio], None],
                 deadline=None, cancel: Callable[[], bool] | None = None, listen_rows: int = LISTEN_ROWS):
        self.models, self.config, self.streams, self.on_row = models, config, streams, on_row
        self.deadline, self.cancel, self.listen_rows = deadline, cancel, listen_rows
        self.live = not models.offload  # with offload stage 1 leaves the device for stage 2: rows wait for its end
        self.spent = {"stage2_s": 0.0, "audio_s": 0.0}  # time the rows' stage 2 and audio took
        self.section, self.made, self.begun = -1, {}, {}

    def begin(self, section: int, before: list[tuple[np.ndarray, np.ndarray]], known: list[list],
              made: tuple[RowCodes, ...] = (), last: bool = False, save=None) -> None:
        """Section `section` starts: `before[t]`, the stage-1 (vocal, instrumental) codes of take t's song before it;
        `known[t]`, its stage-2 codes (or [None, None]); `made`, rows an earlier call made of it (done or begun);
        `last`: it ends the song; `save(rows, stage1 state)`: hands the section's state on (every few seconds)."""
        self.section, self.before, self.last, self.save = section, before, last, save
        self.during = True  # stage 1 of the section goes on (`stage1_done` says when it ends)
        self.heard_at = [stream.heard for stream in self.streams]
        self.made = {part.row: part for part in made if part.frames == part.row.length}
        self.begun = {part.row: part for part in made if part.frames < part.row.length}
        chunk = self.config.chunk_frames
        self.codes = []  # per take: stage-2 codes of both tracks from the song's start, every code final
        for song in known:
            whole = 0 if song[0] is None else song[0].shape[1] // chunk * chunk  # a partial row is made again
            self.codes.append([np.zeros((self.config.codebooks, 0), np.int64) if c is None else c[:, :whole]
                               for c in song])
        self.first = [codes[0].shape[1] for codes in self.codes]  # where each take's first row of the section starts

    def stage1_done(self) -> None:
        self.during = False

    def take_spent(self) -> dict[str, float]:
        """The seconds the rows' stage 2 and audio took since asked last."""
        spent, self.spent = self.spent, {"stage2_s": 0.0, "audio_s": 0.0}
        return spent

    @property
    def rows(self) -> tuple[RowCodes, ...]:
        """Every row of the section made so far, whole or begun."""
        return tuple(self.made.values()) + tuple(self.begun.values())

    def step(self, section: int, ids: list[list[int]], state: Callable[[], Stage1Partial]) -> None:
        """Before a stage-1 decode step: stop if asked (keeping what was made), and make the batches of rows
        finished since the last step."""
        if self.cancel is not None and self.cancel():
            raise self.stopped(state())
        if not self.live or all(before[0].size + len(new) // 2 < self._batch_ends(take, codes[0].shape[1])
                                for take, (before, new, codes) in enumerate(zip(self.before, ids, self.codes))):
            return  # no take has the batch after its final codes finished: nothing to make (most steps)
        tracks, groups = self._ready(ids)
        for group in groups:
            self._make(tracks, group, state)
        self._advance()

    def stopped(self, partial: Stage1Partial | None = None, sections: tuple = ()) -> Cancelled:
        """The stop of the section under way, with its state (`partial`: stage 1's; or its `sections`, stage 1
        done) and, where a take heard some of it, what it heard (`Cancelled.heard`)."""
        state = Unfinished(self.section, stage1=partial, sections=sections, rows=self.rows)
        heard = [stream.last if stream.heard > start else None for stream, start in zip(self.streams, self.heard_at)]
        return Cancelled("stopped by the user", state, heard if any(h is not None for h in heard) else None)

    def _batch_ends(self, take: int, start: int) -> int:
        """The frame of take `take`'s song where the batch of its row starting at `start` ends (`batch_end`)."""
        chunk = self.config.chunk_frames
        return self.first[take] + (batch_end((start - self.first[take]) // chunk, self.listen_rows) + 1) * chunk

    def _ready(self, ids: list[list[int]]) -> tuple[list[np.ndarray], list[list[Row]]]:
        """(each track's stage-1 codes so far, the rows of every batch stage 1 has finished and not made yet, grouped
        by the step that finished the batch's last row, in order)."""
        chunk, tracks, groups = self.config.chunk_frames, [], {}
        for take, (before, new) in enumerate(zip(self.before, ids)):
            pairs = np.asarray(new[:len(new) // 2 * 2], np.int64) - XCODEC_OFFSET
            tracks += [np.concatenate([before[0], pairs[0::2]]), np.concatenate([before[1], pairs[1::2]])]
            for start in range(self.codes[take][0].shape[1], tracks[-1].size - chunk + 1, chunk):
                end = self._batch_ends(take, start)
                if end > tracks[-1].size:
                    break  # its batch waits for stage 1 to finish the batch's last row
                rows = [Row(2 * take + k, start, chunk) for k in (0, 1)]
                if rows[0] not in self.made:
                    groups.setdefault(max(0, end - before[0].size), []).extend(rows)
        return tracks, [groups[end] for end in sorted(groups)]

    def _make(self, tracks: list[np.ndarray], rows: list[Row], state: Callable[[], Stage1Partial]) -> None:
        """Stage 2 of `rows` (one batch), heard as it goes."""
        begun = tuple(self.begun.pop(row) for row in rows if row in self.begun)
        save = None if self.save is None else lambda parts: self.save(self._with(parts), state())
        started, audio = time.perf_counter(), self.spent["audio_s"]
        self.models.prepare("stage2")
        try:
            parts = stage2.make_rows(self.models.stage2, tracks, rows, self.config, self._check, self.deadline,
                                     begun, save, self.hear)
        except OutOfTime as stop:
            self._keep(stop.state)
            raise
        except Cancelled:
            raise self.stopped(state()) from None
        finally:  # the audio heard meanwhile counts as audio
            self.spent["stage2_s"] += time.perf_counter() - started - (self.spent["audio_s"] - audio)
        self._keep(parts)

    def _keep(self, parts) -> None:
        for part in parts:
            (self.made if part.frames == part.row.length else self.begun)[part.row] = part

    def _check(self, _) -> None:
        """Stage 2's frame progress inside stage 1: none is shown (stage 1's is), but a stop is seen at once."""
        if self.cancel is not None and self.cancel():
            raise Cancelled("stopped by the user")

    def _with(self, rows: tuple[RowCodes, ...]) -> tuple[RowCodes, ...]:
        """The section's rows made so far, `rows` (of a batch under way) as far as they go."""
        return tuple({part.row: part for part in (*self.rows, *rows)}.values())

    def hear(self, parts: list[RowCodes]) -> None:
        """Codes of rows as far as stage 2 has made them: each take whose next frames they are hears them (a
        section's partial last row only when it ends the song: it is made again when the next section grows it)."""
        found = {(part.row.track, part.row.start): part for part in parts
                 if part.row.length == self.config.chunk_frames or self.last}
        for take, codes in enumerate(self.codes):
            pair = [found.get((2 * take + k, codes[0].shape[1])) for k in (0, 1)]
            if None not in pair:
                frames = min(part.frames for part in pair)
                self._emit(take, [np.concatenate([track, part.codes[:, :frames]], axis=1)
                                  for track, part in zip(codes, pair)])

    def _advance(self) -> None:
        """Each take's final codes grow by its rows made in order from where they end (rows an earlier call made
        included), and what they make final is heard."""
        chunk = self.config.chunk_frames
        for take, codes in enumerate(self.codes):
            grown = codes
            while all(Row(2 * take + k, grown[0].shape[1], chunk) in self.made for k in (0, 1)):
                grown = [np.concatenate([track, self.made[Row(2 * take + k, track.shape[1], chunk)].codes], axis=1)
                         for k, track in enumerate(grown)]
            if grown is not codes:
                self.codes[take] = grown
                self._emit(take, grown)

    def end(self, songs: list[SongCodes]) -> None:
        """The section's codes are all made (`songs`, every take's song with it): hand on what is final now (all
        of it when the song is complete)."""
        chunk = self.config.chunk_frames
        for take, song in enumerate(songs):
            frames = song.frames if self.last else song.frames // chunk * chunk
            self.codes[take] = [song.vocal[:, :frames], song.instrumental[:, :frames]]
            self._emit(take, self.codes[take], complete=self.last)

    def _emit(self, take: int, codes: list[np.ndarray], complete: bool = False) -> None:
        started = time.perf_counter()
        self.models.prepare("audio")
        piece: Piece | None = self.streams[take].piece(codes[0], codes[1], complete)
        self.spent["audio_s"] += time.perf_counter() - started
        if piece is not None:
            row = (piece.start + piece.frames - 1) // self.config.chunk_frames
            self.on_row(RowAudio(**vars(piece), take=take, section=self.section, row=row, during=self.during))


def move_spent(timings: dict, listening: Listening, within: str | None = None) -> None:
    """The seconds `listening` spent since asked last go to their own stages, out of `within`'s (they were part of
    its wall time)."""
    for key, seconds in listening.take_spent().items():
        timings[key] += seconds
        if within is not None:
            timings[within] -= seconds
