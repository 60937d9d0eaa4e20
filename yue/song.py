"""The typed values that flow through the pipeline: a request in, progress and a `Song` out (a song saved as one .npz
bundle and read back checked: yue/bundle.py)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import checks
from .arrays import ArrayFileError
from .bundle import check_bundle_arrays, read_bundle, write_bundle
from .config import ALL_SECTIONS, DEFAULT_SECTIONS, Limits, Sampling
from .text.prompt import FRAMES_PER_SECOND, dual_reference_ids, single_reference_ids
from .rates import CODEBOOK_SIZE
from .lm import cut_state
from .lm.stage1 import SectionTokens, Stage1Partial, Stage1Tokens
from .lm.stage2 import RowCodes

def check_codes(codes, name: str, ndim: int) -> None:
    """Integer codes of `ndim` dimensions, each a codebook entry 0..1023."""
    codes = np.asarray(codes)
    if codes.ndim != ndim or codes.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer codes with {ndim} dimension(s); got {codes.dtype} {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= CODEBOOK_SIZE):
        raise ValueError(f"{name} must lie in 0..{CODEBOOK_SIZE - 1}; got {codes.min()}..{codes.max()}")


@dataclass(frozen=True)
class Reference:
    """In-context-learning reference: codebook-0 codes (T,) of one mixed track, or of a vocal + instrumental pair,
    and the window (seconds) the model hears; about 30 s is recommended."""

    codes: np.ndarray | None = None
    vocal_codes: np.ndarray | None = None
    instrumental_codes: np.ndarray | None = None
    start_s: float = 0.0
    end_s: float = 30.0

    def check(self) -> None:
        """Finite window, start >= 0, and codes of one track or of both stems (the window's fit: `ids`)."""
        longest = Limits().max_reference_seconds
        checks.number(self.start_s, "reference start (start_s, seconds)", 0, longest)
        checks.number(self.end_s, "reference end (end_s, seconds)", 0, longest)
        tracks = {"codes": self.codes} if self.codes is not None else {
            "vocal_codes": self.vocal_codes, "instrumental_codes": self.instrumental_codes}
        for name, codes in tracks.items():
            if codes is None:
                raise ValueError("A reference needs either one mixed track or both a vocal and an instrumental track")
            codes = np.asarray(codes)
            check_codes(codes[0] if codes.ndim == 2 and codes.shape[0] == 1 else codes, f"reference {name}", 1)
        if self.codes is None:
            checks.same_length(("reference vocal", np.size(self.vocal_codes) / FRAMES_PER_SECOND),
                               ("reference instrumental", np.size(self.instrumental_codes) / FRAMES_PER_SECOND))

    def ids(self) -> np.ndarray:
        if self.codes is not None:
            return single_reference_ids(self.codes, self.start_s, self.end_s)
        if self.vocal_codes is None or self.instrumental_codes is None:
            raise ValueError("A reference needs either one mixed track or both a vocal and an instrumental track")
        frames = min(np.size(self.vocal_codes), np.size(self.instrumental_codes))  # stems may differ by a frame
        return dual_reference_ids(np.ravel(self.vocal_codes)[:frames], np.ravel(self.instrumental_codes)[:frames],
                                  self.start_s, self.end_s)


@dataclass(frozen=True)
class SongCodes:
    """Everything needed to continue or re-render a song: stage-1 codebook-0 codes with section bounds, and the
    stage-2 codes (8, T) of each track when they were computed."""

    stage1: Stage1Tokens
    vocal: np.ndarray | None = None
    instrumental: np.ndarray | None = None
    # The section after these, stopped part-way (a GPU call ZeroGPU refused): continuing the song resumes it exactly.
    # `cut` and `keep_sections` drop it (what they keep is finished).
    unfinished: Unfinished | None = None

    @property
    def frames(self) -> int:
        return int(self.stage1.vocal.shape[0])

    def keep_sections(self, count: int) -> "SongCodes":
        """The first `count` sections (for "regenerate from section count + 1 on")."""
        # One rule everywhere (CLI --keep-sections, the app, Python): keeping nothing would quietly start a new song
        if not 1 <= count <= len(self.stage1.section_frames):
            raise ValueError(f"the song has {len(self.stage1.section_frames)} sections; keep 1 to "
                             f"{len(self.stage1.section_frames)} of them, not {count} (to start over, make a new song)")
        return self.cut(sum(self.stage1.section_frames[:count]))

    def cut(self, frames: int) -> "SongCodes":
        """The song up to frame `frames`; a section the cut falls into keeps its part before the cut."""
        frames = max(0, min(int(frames), self.frames))
        bounds, total = [], 0
        for length in self.stage1.section_frames:
            if total >= frames:
                break
            bounds.append(min(length, frames - total))
            total += bounds[-1]
        stage1 = Stage1Tokens(self.stage1.vocal[:frames], self.stage1.instrumental[:frames], tuple(bounds),
                              self.stage1.labels[:len(bounds)])
        cut = (lambda codes: None if codes is None else codes[:, :frames])
        return SongCodes(stage1, cut(self.vocal), cut(self.instrumental))

    def save(self, path: str | Path, settings: dict | None = None) -> Path:
        """One .npz bundle with the code arrays and the settings (JSON) that made them (yue/bundle.py)."""
        return write_bundle(path, self.arrays(), self.stage1.labels, settings)

    def arrays(self) -> dict[str, np.ndarray]:
        """The song's arrays by their bundle names (stage-2 tracks only when computed; the section stopped part-way
        when there is one: a song of no finished section may hold one)."""
        arrays = {"stage1_vocal": self.stage1.vocal, "stage1_instrumental": self.stage1.instrumental,
                  "section_frames": np.asarray(self.stage1.section_frames, dtype=np.int64)}
        arrays.update({name: codes for name, codes in (("vocal", self.vocal), ("instrumental", self.instrumental))
                       if codes is not None})
        if self.unfinished is not None:
            state = self.unfinished
            arrays.update(cut_state.to_arrays(state.section, state.stage1, state.sections, state.rows))
        return arrays

    def check(self, what: str = "the song") -> None:
        """Raise ValueError (ArrayFileError) unless the codes are a song this pipeline can continue or render: every
        array and what they agree on (yue.bundle's BUNDLE_SPECS, AGREEMENTS), and a label per section."""
        check_bundle_arrays(self.arrays(), what)
        tokens = self.stage1
        if tokens.labels and len(tokens.labels) != len(tokens.section_frames):
            raise ArrayFileError(f"{what}: {len(tokens.labels)} section labels for {len(tokens.section_frames)} "
                                 "sections")

    @classmethod
    def load(cls, path: str | Path) -> tuple["SongCodes", dict]:
        """Read a bundle written by `save`; returns the codes and the settings. Every member is checked before the
        codes are made (yue/bundle.py: `read_bundle`); raises ValueError naming the file and what is wrong."""
        name = Path(path).name
        data, settings, labels = read_bundle(path)
        stage1 = Stage1Tokens(data["stage1_vocal"].astype(np.int64), data["stage1_instrumental"].astype(np.int64),
                              tuple(int(x) for x in data["section_frames"]), tuple(labels))
        codes = cls(stage1, *(data[k].astype(np.int64) if k in data else None for k in ("vocal", "instrumental")))
        state = cut_state.from_arrays(data, name, len(stage1.section_frames), (stage1.vocal, stage1.instrumental))
        codes = codes if state is None else replace(codes, unfinished=Unfinished(*state))
        codes.check(name)
        return codes, settings


@dataclass(frozen=True)
class SongRequest:
    genres: str
    lyrics: str  # every section of the song, including sections already made when continuing
    # How many sections the song has when done, kept ones included when continuing. None: the official run's
    # config.DEFAULT_SECTIONS (2) new sections, fewer when the lyrics have fewer; "all": every lyric section.
    segments: int | str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    seed: int | None = 42  # None = a random seed, reported in the result
    reference: Reference | None = None  # style transfer (ICL)
    previous: SongCodes | None = None  # continuation: its sections are kept and generation resumes after them
    rescale: bool = False  # official --rescale: scale the output to peak 0.99 instead of clipping
    takes: int = 1  # versions made at once in one batch; take t uses seed + t (so it equals a run with that seed)

    def __post_init__(self):
        # `previous` may be given as a bundle's path (str or Path): it is read (and checked) here
        if isinstance(self.previous, (str, Path)):
            object.__setattr__(self, "previous", SongCodes.load(self.previous)[0])
        elif self.previous is not None and not isinstance(self.previous, SongCodes):
            raise ValueError(f"previous must be a SongCodes or a bundle's path (SongCodes.load reads one); got "
                             f"{checks.shown(self.previous)} ({type(self.previous).__name__})")

    def sections_total(self, lyric_sections: int) -> int:
        """How many sections the finished song has, for lyrics of `lyric_sections` sections (see `segments`)."""
        kept = 0 if self.previous is None else len(self.previous.stage1.section_frames)
        if self.segments is None:
            return min(kept + DEFAULT_SECTIONS, lyric_sections)
        return lyric_sections if self.segments == ALL_SECTIONS else self.segments

    def settings(self) -> dict:
        """JSON-safe description (for bundles and logs)."""
        return {"genres": self.genres, "lyrics": self.lyrics, "segments": self.segments, "seed": self.seed,
                "takes": self.takes, "sampling": asdict(self.sampling), "rescale": self.rescale,
                "reference": None if self.reference is None else
                {"start_s": self.reference.start_s, "end_s": self.reference.end_s,
                 "dual": self.reference.codes is None}}

    def with_seed(self, seed: int) -> "SongRequest":
        return replace(self, seed=seed)


@dataclass(frozen=True)
class Unfinished:
    """A section that a call stopped at its deadline (`Pipeline.stream_takes(deadline=)` raises
    `yue.lm.deadline.OutOfTime` with this as its `state`): everything the next call needs to make exactly what one
    uncut call makes, given as `stream_takes(resume=)` with the same songs so far (`previous`, `render_states`).
    Picklable (numpy arrays, bytes, ints): on ZeroGPU it crosses a process boundary."""

    section: int  # 0-based index of the section under way
    stage1: Stage1Partial | None = None  # stage 1 stopped in the section: each take's ids and sampler state
    sections: tuple[SectionTokens, ...] = ()  # stage 1 done: the section of each take
    rows: tuple[RowCodes, ...] = ()  # stage 2 stopped: the rows made so far, whole or in part

    @property
    def stage(self) -> str:
        return "stage2" if self.sections else "stage1"

    @property
    def takes(self) -> int:
        return len(self.sections) if self.sections else len(self.stage1.ids)

    def check_takes(self, takes: int) -> "Unfinished":
        """This state, when a run of `takes` takes may go on from it; else ValueError saying what to do."""
        if takes != self.takes:
            raise ValueError(f"section {self.section + 1} of this song was stopped part-way with {self.takes} "
                             f"take(s): continue it with takes = {self.takes} to finish it exactly, or keep only its "
                             f"{self.section} finished section(s) to make it again")
        return self


@dataclass(frozen=True)
class Progress:
    stage: str  # "stage1", "stage2" or "audio"
    section: int  # 0-based section being made
    sections: int
    done: int  # tokens (stage 1) or frames (stage 2) done in this step
    total: int
    rate: float = 0.0  # tokens or frames per second
    eta_s: float | None = None  # seconds left for this step

    def describe(self) -> str:
        what = {"stage1": "tokens", "stage2": "frames"}.get(self.stage, "")
        eta = f", about {self.eta_s:.0f} s left" if self.eta_s is not None else ""
        speed = f" at {self.rate:.1f} {what}/s" if self.rate else ""
        return f"Section {self.section + 1}/{self.sections}: {self.stage} {self.done}/{self.total} {what}{speed}{eta}"


@dataclass(frozen=True)
class Song:
    """44.1 kHz mono audio of the mix and the two stems, the codes behind them, and how they were made."""

    sample_rate: int
    mix: np.ndarray
    vocal: np.ndarray
    instrumental: np.ndarray
    codes: SongCodes
    seed: int
    sections_done: int
    sections_total: int
    timings: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # What the audio renderer kept (a yue.incremental.RenderState; None without audio): pass it back as
    # `stream_takes(render_states=...)` to grow this song without decoding its audio again
    render_state: object = field(default=None, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        return self.sections_done >= self.sections_total

    @property
    def seconds(self) -> float:
        return self.codes.frames / FRAMES_PER_SECOND
