"""What a GPU call and the app's process hand each other: small messages through spaces' queues, everything else by
path in the run's folder.

On ZeroGPU each call runs in a worker process forked from the app's (spaces 0.51.3, zero/wrappers.py `Worker`): its
arguments and every value it yields are pickled through a pipe (spaces.utils.SimpleQueue), and a worker may be
forked fresh or reused. The songs' render states and audio grow ~1.55 MB per take per second of song, so they do not
go that way: the request, every take's song after each section (audio, codes, render state) and the section's
unfinished state are files in the run's folder, which the forked worker shares (the same disk). Through the queues
go `Call` (in) and `Progress`, `Started`, `SectionDone`, `Handed`, `STOPPED` and `space.row_audio.RowHeard` (out,
a .wav in the folder per piece of audio heard while a section is made): each pickles to at most
MESSAGE_BYTES, whatever the song's length and takes (tests/space/test_serving.py measures 12 sections x 4 takes),
and progress comes at most 4 times a second, so a call moves at most 512 B + 2 KB per second of its booking.

The files are this app's own, in the run's private folder (mode 0700), never a client's: they are pickled (numpy
arrays and dataclasses, written whole or not at all). A client's bundle is read by `SongCodes.load`, never unpickled.
"""
from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from yue.files import replacing
from yue.lm.stage2 import RowCodes
from yue.song import Song, SongCodes, SongRequest, Unfinished

MESSAGE_BYTES = 512  # the most one call's pickled arguments, or one value it yields, may hold (measured: 253 B)
STOPPED = "stopped"  # what a call yields when the user pressed Stop


@dataclass(frozen=True)
class Call:
    """One GPU call of a section: the run's folder (its request, songs so far and unfinished state), which section,
    the seconds it booked (None: no deadline, off ZeroGPU), which call of the section it is and whether every take's
    audio is heard while the section is made (the page's switch: `space.serving.Service.run_section`)."""

    folder: str
    section: int
    booked: int | None = None
    number: int = 1
    listen: bool = True


@dataclass(frozen=True)
class Started:
    """What a call found at its first line: whether its worker is fresh (forked for it) and the seconds from the
    fork to that line (spaces' worker start: the GPU attached, the packed weights copied), 0 for a reused worker."""

    fresh: bool
    startup_s: float


@dataclass(frozen=True)
class SectionDone:
    """Every take's song with this section is in the run's folder (`RunFiles.songs(section)`)."""

    section: int


@dataclass(frozen=True)
class Handed:
    """The call stopped at its deadline (or at a Stop, where the run streams its rows); the section's unfinished
    state is in the run's folder."""

    section: int
    stage: str


class RunFiles:
    """The hand-over files of one run, in `<folder>/handover/`: `request.pkl`; per finished section and take
    `song-<s>-take<t>.pkl` (the Song without its render state: what the app writes and shows) and
    `state-<s>-take<t>.pkl` (its codes and render state: what the next call goes on from); `unfinished.pkl`. Only the
    last finished section's files are kept, and none once the run is over."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.root = self.folder / "handover"

    def _write(self, name: str, value) -> None:
        self.root.mkdir(mode=0o700, exist_ok=True)
        with replacing(self.root / name) as temporary, open(temporary, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)

    def _read(self, name: str):
        try:
            with open(self.root / name, "rb") as handle:
                return pickle.load(handle)
        except FileNotFoundError:
            return None

    def save_request(self, request: SongRequest) -> None:
        self._write("request.pkl", request)

    def request(self) -> SongRequest:
        return self._read("request.pkl")

    def save_songs(self, section: int, songs: list[Song]) -> None:
        """Every take's song with `section` done (a call's work); then the earlier section's files go."""
        for take, song in enumerate(songs):
            self._write(f"state-{section}-take{take}.pkl", (song.codes, song.render_state))
            self._write(f"song-{section}-take{take}.pkl", replace(song, render_state=None))
        for old in self.root.glob("*.pkl"):
            if old.name.startswith(("song-", "state-")) and not old.name.startswith((f"song-{section}-",
                                                                                     f"state-{section}-")):
                old.unlink(missing_ok=True)

    def songs(self, section: int, takes: int) -> list[Song] | None:
        """Every take's song with `section` done, or None when a call has not saved them all."""
        songs = [self._read(f"song-{section}-take{take}.pkl") for take in range(takes)]
        return None if any(song is None for song in songs) else songs

    def states(self, section: int, takes: int) -> tuple[list[SongCodes], list] | None:
        """(codes, render states) of every take's song with `section` done, for the next section's calls."""
        states = [self._read(f"state-{section}-take{take}.pkl") for take in range(takes)]
        if any(state is None for state in states):
            return None
        return [codes for codes, _ in states], [render for _, render in states]

    def save_unfinished(self, state: Unfinished) -> None:
        self._write("unfinished.pkl", state)

    def unfinished(self, section: int) -> Unfinished | None:
        """The last state handed over in `section` (None: none, or one of another section)."""
        state = self._read("unfinished.pkl")
        return state if state is not None and state.section == section else None

    def drop_unfinished(self) -> None:
        (self.root / "unfinished.pkl").unlink(missing_ok=True)

    def remove(self) -> None:
        """All of it, when the run is over (a long song's hand-over is gigabytes; its bundles keep what lasts)."""
        shutil.rmtree(self.root, ignore_errors=True)


def take_part(state: Unfinished, take: int) -> Unfinished:
    """Take `take`'s part of a batch's unfinished section: the state a one-take run with that take's seed would hold
    there (takes are independent row pairs of one batch: ids, sampler state, and its two stage-2 tracks)."""
    stage1 = state.stage1
    if stage1 is not None:
        stage1 = replace(stage1, ids=stage1.ids[take:take + 1], active=stage1.active[take:take + 1],
                         generators=stage1.generators[take:take + 1])
    rows = tuple(RowCodes(replace(part.row, track=part.row.track - 2 * take), part.codes) for part in state.rows
                 if part.row.track // 2 == take)
    return Unfinished(state.section, stage1, state.sections[take:take + 1], rows)
