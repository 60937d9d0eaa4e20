"""A song that grows section by section, rendered in O(song) model work in all: `SongRenderer` keeps each track's
decoded audio and the band filters' states, and on every new song decodes again only from the first frame whose
stage-2 codes changed (less the decoders' receptive field), then appends.

What a render costs: the codec decoder and both Vocos upsamplers run over the new and changed frames plus
CONTEXT_FRAMES; the resampler and the band filters over those frames plus at most a checkpoint interval. The rest of
the official finish (RMS match, clip or peak rescale of the whole song) is a few vector passes over the whole song,
as the finished song is a whole array anyway. The result equals `render.render_song` on the same codes up to the
chunked decoders' float rounding (tests/test_incremental.py; at full size within 4e-8: bench/bench_stream_audio.py).

What it keeps between renders is a `RenderState` (arrays and ints, no modules): `renderer.state` after a render, and
`SongRenderer(..., state=...)` resumes from one, so one song may grow over many processes (the app's one ZeroGPU
call per section pickles it out with each section's songs and back in with the next call's arguments).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .mix import (PEAK, energy_matched, filtered, finish, highpass_coefficients, low_band_gain, lowpass_coefficients,
                  resample, rms)
from ..rates import CODEC_HOP, CODEC_RATE, OUTPUT_HOP, OUTPUT_RATE
from .render import CONTEXT_FRAMES, decode_16k, upsample_44k

# Frames of 16 kHz input on each side of a resampled piece. soxr's VHQ filter reaches 373 samples at 44.1 kHz (0.42
# frames, measured with an impulse); a piece that starts on a frame boundary gives the same samples as one pass.
RESAMPLE_CONTEXT_FRAMES = 2
# The band filters' states are kept every this many frames (5 s): a render filters again from the last one before
# the change, so at most this much more than the changed frames.
CHECKPOINT_FRAMES = 250


def first_change(old: list[np.ndarray] | None, new: list[np.ndarray]) -> int:
    """The first frame at which any track's codes (K, T) differ from the old ones, or the shorter length when one
    only extends the other; 0 without old codes."""
    if old is None:
        return 0
    first = min(new[0].shape[1], old[0].shape[1])
    for before, after in zip(old, new):
        if before.shape[0] != after.shape[0]:
            return 0
        differs = np.nonzero((before[:, :first] != after[:, :first]).any(axis=0))[0]
        if differs.size:
            first = int(differs[0])
    return first


def _frozen(array: np.ndarray) -> np.ndarray:
    """The array, read-only: a state's arrays are shared with the renderer and with earlier states (renders make new
    arrays, never change kept ones), so no caller may change them in place."""
    array.flags.writeable = False
    return array


def _empty() -> np.ndarray:
    return _frozen(np.zeros(0, dtype=np.float32))


@dataclass(frozen=True)
class RenderState:
    """Everything a `SongRenderer` keeps between renders, without its modules: numpy arrays, ints and a flag, so it
    pickles (a ZeroGPU call's arguments and results are pickled) and a renderer resumed from it renders exactly what
    the renderer that made it would. Later renders never change a state (they make new arrays)."""

    rescale: bool = False  # the bands below hold the vocoder mix clipped (False) or not (True): one mode per state
    codes: tuple[np.ndarray, ...] | None = None  # stage-2 codes (K, T) of each track rendered last
    recon: tuple[np.ndarray, ...] = field(default_factory=lambda: (_empty(), _empty()))  # 16 kHz (320 T,) per track
    stems: tuple[np.ndarray, ...] = field(default_factory=lambda: (_empty(), _empty()))  # 44.1 kHz (882 T,) per track
    # Unclamped filter outputs at 44.1 kHz: low band of the resampled reconstruction mix; low and high band of the
    # vocoder mix (before the peak rescale, which is linear and applied at the end)
    bands: tuple[np.ndarray, ...] = field(default_factory=lambda: (_empty(), _empty(), _empty()))
    # frame -> the three band filters' states there (every CHECKPOINT_FRAMES frames, and frame 0)
    checkpoints: dict = field(default_factory=lambda: {0: tuple(_frozen(np.zeros(2, np.float32)) for _ in range(3))})
    decoded_frames: int = 0  # frames run through the decoders so far, per track (the work, for tests and bench)

    @property
    def frames(self) -> int:
        return 0 if self.codes is None else self.codes[0].shape[1]

    def check(self, rescale: bool) -> "RenderState":
        """This state, when a renderer of mode `rescale` may resume from it; else ValueError saying what is wrong."""
        if self.rescale != rescale:
            raise ValueError(f"this render state was made with rescale={self.rescale}: it cannot resume a renderer "
                             f"with rescale={rescale}; pass no state (render the song whole) or one of the same mode")
        frames = self.frames
        lengths = [len(a) == frames * CODEC_HOP for a in self.recon] + [
            len(a) == frames * OUTPUT_HOP for a in (*self.stems, *self.bands)]
        if not all(lengths) or 0 not in self.checkpoints or max(self.checkpoints) > frames:
            raise ValueError(f"this render state is inconsistent (audio lengths do not match its {frames} frames of "
                             "codes): pass the state a song carried, unchanged, or none")
        return self


class SongRenderer:
    """Renders the songs of one stream, each the previous one grown (and its last frames changed); `render` takes
    stage-2 codes of both tracks and returns (mix, vocal, instrumental) at 44.1 kHz as `render.render_song` does.

    `state`: a `RenderState` to resume from (`renderer.state` after an earlier render, pickled or not); the first
    render then decodes only from where its codes differ from the state's. Codes of another song are fine: they
    differ early and are decoded from there (from frame 0 at worst)."""

    def __init__(self, codec, vocal_vocoder, instrumental_vocoder, rescale: bool = False,
                 state: RenderState | None = None):
        self.codec, self.vocoders, self.rescale = codec, (vocal_vocoder, instrumental_vocoder), rescale
        if state is not None and not isinstance(state, RenderState):
            raise ValueError(f"a render state must be a yue.incremental.RenderState (a song's render_state), got "
                             f"{type(state).__name__}")
        self.state = RenderState(rescale) if state is None else state.check(rescale)
        self.coefficients = (lowpass_coefficients(OUTPUT_RATE), lowpass_coefficients(OUTPUT_RATE),
                             highpass_coefficients(OUTPUT_RATE))
        self.low_gain = 1.0  # the scale the last render's mix gave its low band (the RMS match over that song)

    @property
    def codes(self) -> tuple[np.ndarray, ...] | None:
        return self.state.codes

    @property
    def decoded_frames(self) -> int:
        return self.state.decoded_frames

    def render(self, vocal_codes: np.ndarray, instrumental_codes: np.ndarray) -> tuple[np.ndarray, ...]:
        """Stage-2 codes (K, T) of both tracks -> (mix, vocal, instrumental), float32 (882 T,) each."""
        codes = [np.asarray(vocal_codes), np.asarray(instrumental_codes)]
        if codes[0].ndim != 2 or codes[0].shape != codes[1].shape:
            raise ValueError(f"both tracks need codes of one shape (codebooks, frames), got {codes[0].shape} and "
                             f"{codes[1].shape}")
        frames, old = codes[0].shape[1], self.state
        redo = max(0, first_change(old.codes, codes) - CONTEXT_FRAMES)  # samples before this frame are final
        # both tracks decoded before any state changes: codes the decoders refuse leave the renderer as it was
        recon = [decode_16k(self.codec, track_codes, first=redo) for track_codes in codes]
        stems = [upsample_44k(self.codec, vocoder, track_codes, first=redo)
                 for vocoder, track_codes in zip(self.vocoders, codes)]
        recon = tuple(_frozen(np.concatenate([kept[:redo * CODEC_HOP], new])) for kept, new in zip(old.recon, recon))
        stems = tuple(_frozen(np.concatenate([kept[:redo * OUTPUT_HOP], new])) for kept, new in zip(old.stems, stems))
        bands, checkpoints = self._filter_from(max(0, redo - RESAMPLE_CONTEXT_FRAMES), frames, recon, stems)
        self.state = RenderState(self.rescale, tuple(_frozen(c.copy()) for c in codes), recon, stems, bands,
                                 checkpoints, old.decoded_frames + frames - redo)
        return self._finish()

    def _filter_from(self, changed: int, frames: int, recon, stems) -> tuple[tuple, dict]:
        """The bands of the song with these `recon` and `stems`, filtered again from the last checkpoint at or
        before frame `changed` to the end; returns (bands, checkpoints)."""
        old = self.state
        start = max(frame for frame in old.checkpoints if frame <= changed)
        checkpoints = {frame: state for frame, state in old.checkpoints.items() if frame <= start}
        lead = max(0, start - RESAMPLE_CONTEXT_FRAMES)
        mixed = sum(np.clip(track[lead * CODEC_HOP:], -PEAK, PEAK) for track in recon)
        low_source = resample(mixed, CODEC_RATE, OUTPUT_RATE)[(start - lead) * OUTPUT_HOP:]
        vocoded = stems[0][start * OUTPUT_HOP:] + stems[1][start * OUTPUT_HOP:]
        if not self.rescale:
            vocoded = np.clip(vocoded, -PEAK, PEAK)
        sources = (low_source, vocoded, vocoded)
        pieces: list[list[np.ndarray]] = [[], [], []]
        state = checkpoints[start]
        for lo in range(start, frames, CHECKPOINT_FRAMES):
            hi = min(frames, lo + CHECKPOINT_FRAMES)
            span = slice((lo - start) * OUTPUT_HOP, (hi - start) * OUTPUT_HOP)
            results = [filtered(source[span], coefficients, zi)
                       for source, coefficients, zi in zip(sources, self.coefficients, state)]
            for piece, (out, _) in zip(pieces, results):
                piece.append(out)
            state = tuple(_frozen(zf) for _, zf in results)
            if hi - lo == CHECKPOINT_FRAMES:
                checkpoints[hi] = state
        bands = tuple(_frozen(np.concatenate([band[:start * OUTPUT_HOP], *piece]))
                      for band, piece in zip(old.bands, pieces))
        return bands, checkpoints

    def _finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The whole-song steps of `render_song`: clamp, RMS match, clip or rescale (vector passes, no model). With
        `rescale` the vocoder mix is scaled by its peak after the (linear) filters rather than before: the same up
        to float rounding."""
        low_recon, low_vocoded, high_vocoded = self.state.bands
        kept_stems = self.state.stems
        scale = np.float32(1.0)
        if self.rescale and low_vocoded.size:
            peak = float(np.abs(kept_stems[0] + kept_stems[1]).max())
            scale = np.float32(min(PEAK / peak, 1.0)) if peak > 0 else scale
        a_low = np.clip(low_recon, -1.0, 1.0)
        self.low_gain = float(low_band_gain(a_low, rms(np.clip(scale * low_vocoded, -1.0, 1.0))))
        mix = energy_matched(a_low, np.float32(self.low_gain), np.clip(scale * high_vocoded, -1.0, 1.0))
        stems = [finish(stem, self.rescale) for stem in kept_stems]
        # finish hands back its input when it has nothing to do (rescaled silence): never give out the kept arrays
        stems = [out.copy() if out is kept else out for out, kept in zip(stems, kept_stems)]
        return finish(mix, self.rescale), stems[0], stems[1]
