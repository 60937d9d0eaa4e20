"""The typed values that flow through the pipeline: a request in, progress and a `Song` out."""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from .config import Sampling
from .prompt import FRAMES_PER_SECOND, dual_reference_ids, single_reference_ids
from .stage1 import Stage1Tokens

BUNDLE_VERSION = 1


@dataclass(frozen=True)
class Reference:
    """In-context-learning reference: codebook-0 codes (T,) of one mixed track, or of a vocal + instrumental pair,
    and the window (seconds) the model hears; about 30 s is recommended."""

    codes: np.ndarray | None = None
    vocal_codes: np.ndarray | None = None
    instrumental_codes: np.ndarray | None = None
    start_s: float = 0.0
    end_s: float = 30.0

    def ids(self) -> np.ndarray:
        if self.codes is not None:
            return single_reference_ids(self.codes, self.start_s, self.end_s)
        if self.vocal_codes is None or self.instrumental_codes is None:
            raise ValueError("A reference needs either one mixed track or both a vocal and an instrumental track")
        return dual_reference_ids(self.vocal_codes, self.instrumental_codes, self.start_s, self.end_s)


@dataclass(frozen=True)
class SongCodes:
    """Everything needed to continue or re-render a song: stage-1 codebook-0 codes with section bounds, and the
    stage-2 codes (8, T) of each track when they were computed."""

    stage1: Stage1Tokens
    vocal: np.ndarray | None = None
    instrumental: np.ndarray | None = None

    @property
    def frames(self) -> int:
        return int(self.stage1.vocal.shape[0])

    def keep_sections(self, count: int) -> "SongCodes":
        """The first `count` sections (for "regenerate from section count + 1 on")."""
        if not 0 <= count <= len(self.stage1.section_frames):
            raise ValueError(f"the song has {len(self.stage1.section_frames)} sections; cannot keep {count}")
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
        """One .npz bundle with the code arrays and the settings (JSON) that made them."""
        arrays = {"stage1_vocal": self.stage1.vocal, "stage1_instrumental": self.stage1.instrumental,
                  "section_frames": np.asarray(self.stage1.section_frames, dtype=np.int64)}
        if self.vocal is not None and self.instrumental is not None:
            arrays.update(vocal=self.vocal, instrumental=self.instrumental)
        meta = {"version": BUNDLE_VERSION, "labels": list(self.stage1.labels), "settings": settings or {}}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = Path(path)
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> tuple["SongCodes", dict]:
        """Read a bundle written by `save`; returns the codes and the settings."""
        try:
            with np.load(io.BytesIO(Path(path).read_bytes())) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                stage1 = Stage1Tokens(data["stage1_vocal"].astype(np.int64), data["stage1_instrumental"].astype(np.int64),
                                      tuple(int(x) for x in data["section_frames"]), tuple(meta.get("labels", ())))
                vocal = data["vocal"].astype(np.int64) if "vocal" in data else None
                instrumental = data["instrumental"].astype(np.int64) if "instrumental" in data else None
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"{Path(path).name} is not a song bundle saved by this app ({error})") from None
        if sum(stage1.section_frames) != stage1.vocal.shape[0]:
            raise ValueError(f"{Path(path).name}: section lengths do not add up to the track length")
        return cls(stage1, vocal, instrumental), meta.get("settings", {})


@dataclass(frozen=True)
class SongRequest:
    genres: str
    lyrics: str  # every section of the song, including sections already made when continuing
    segments: int | None = None  # how many sections the song has when done; None = all lyric sections
    sampling: Sampling = field(default_factory=Sampling)
    seed: int | None = 42  # None = a random seed, reported in the result
    reference: Reference | None = None  # style transfer (ICL)
    previous: SongCodes | None = None  # continuation: its sections are kept and generation resumes after them
    rescale: bool = False  # official --rescale: scale the output to peak 0.99 instead of clipping

    def settings(self) -> dict:
        """JSON-safe description (for bundles and logs)."""
        return {"genres": self.genres, "lyrics": self.lyrics, "segments": self.segments, "seed": self.seed,
                "sampling": asdict(self.sampling), "rescale": self.rescale,
                "reference": None if self.reference is None else
                {"start_s": self.reference.start_s, "end_s": self.reference.end_s,
                 "dual": self.reference.codes is None}}

    def with_seed(self, seed: int) -> "SongRequest":
        return replace(self, seed=seed)


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

    @property
    def complete(self) -> bool:
        return self.sections_done >= self.sections_total

    @property
    def seconds(self) -> float:
        return self.codes.frames / FRAMES_PER_SECOND
