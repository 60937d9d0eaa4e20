"""A song that grows section by section, rendered in O(song) model work in all: `SongRenderer` keeps each track's
decoded audio and the band filters' states, and on every new song decodes again only from the first frame whose
stage-2 codes changed (less the decoders' receptive field), then appends.

What a render costs: the codec decoder and both Vocos upsamplers run over the new and changed frames plus
CONTEXT_FRAMES; the resampler and the band filters over those frames plus at most a checkpoint interval. The rest of
the official finish (RMS match, clip or peak rescale of the whole song) is a few vector passes over the whole song,
as the finished song is a whole array anyway. The result equals `render.render_song` on the same codes up to the
chunked decoders' float rounding (tests/test_incremental.py; at full size within 4e-8: bench/bench_stream_audio.py).
"""
from __future__ import annotations

import numpy as np

from .mix import (PEAK, energy_matched, filtered, finish, highpass_coefficients, lowpass_coefficients, resample,
                  rms)
from .rates import CODEC_HOP, CODEC_RATE, OUTPUT_HOP, OUTPUT_RATE
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


class SongRenderer:
    """Renders the songs of one stream, each the previous one grown (and its last frames changed); `render` takes
    stage-2 codes of both tracks and returns (mix, vocal, instrumental) at 44.1 kHz as `render.render_song` does."""

    def __init__(self, codec, vocal_vocoder, instrumental_vocoder, rescale: bool = False):
        self.codec, self.vocoders, self.rescale = codec, (vocal_vocoder, instrumental_vocoder), rescale
        self.codes: list[np.ndarray] | None = None
        empty = np.zeros(0, dtype=np.float32)
        self.recon = [empty, empty]  # 16 kHz reconstruction of each track (320 T,)
        self.stems = [empty, empty]  # 44.1 kHz upsampler output of each track (882 T,)
        # Unclamped filter outputs at 44.1 kHz: low band of the resampled reconstruction mix; low and high band of
        # the vocoder mix (before the peak rescale, which is linear and applied at the end)
        self.bands = [empty, empty, empty]
        self.states = {0: [np.zeros(2, dtype=np.float32) for _ in range(3)]}  # frame -> filter states there
        self.coefficients = (lowpass_coefficients(OUTPUT_RATE), lowpass_coefficients(OUTPUT_RATE),
                             highpass_coefficients(OUTPUT_RATE))
        self.decoded_frames = 0  # frames run through the decoders so far, per track (the work, for tests and bench)

    def render(self, vocal_codes: np.ndarray, instrumental_codes: np.ndarray) -> tuple[np.ndarray, ...]:
        """Stage-2 codes (K, T) of both tracks -> (mix, vocal, instrumental), float32 (882 T,) each."""
        codes = [np.asarray(vocal_codes), np.asarray(instrumental_codes)]
        if codes[0].ndim != 2 or codes[0].shape != codes[1].shape:
            raise ValueError(f"both tracks need codes of one shape (codebooks, frames), got {codes[0].shape} and "
                             f"{codes[1].shape}")
        frames = codes[0].shape[1]
        redo = max(0, first_change(self.codes, codes) - CONTEXT_FRAMES)  # samples before this frame are final
        # both tracks decoded before any state changes: codes the decoders refuse leave the renderer as it was
        recon = [decode_16k(self.codec, track_codes, first=redo) for track_codes in codes]
        stems = [upsample_44k(self.codec, vocoder, track_codes, first=redo)
                 for vocoder, track_codes in zip(self.vocoders, codes)]
        self.recon = [np.concatenate([old[:redo * CODEC_HOP], new]) for old, new in zip(self.recon, recon)]
        self.stems = [np.concatenate([old[:redo * OUTPUT_HOP], new]) for old, new in zip(self.stems, stems)]
        self.decoded_frames += frames - redo
        self.codes = [c.copy() for c in codes]
        self._filter_from(max(0, redo - RESAMPLE_CONTEXT_FRAMES), frames)
        return self._finish()

    def _filter_from(self, changed: int, frames: int) -> None:
        """Run the band filters again from the last checkpoint at or before frame `changed` to the end."""
        start = max(frame for frame in self.states if frame <= changed)
        self.states = {frame: state for frame, state in self.states.items() if frame <= start}
        lead = max(0, start - RESAMPLE_CONTEXT_FRAMES)
        recon = sum(np.clip(track[lead * CODEC_HOP:], -PEAK, PEAK) for track in self.recon)
        low_source = resample(recon, CODEC_RATE, OUTPUT_RATE)[(start - lead) * OUTPUT_HOP:]
        vocoded = self.stems[0][start * OUTPUT_HOP:] + self.stems[1][start * OUTPUT_HOP:]
        if not self.rescale:
            vocoded = np.clip(vocoded, -PEAK, PEAK)
        sources = (low_source, vocoded, vocoded)
        pieces: list[list[np.ndarray]] = [[], [], []]
        state = self.states[start]
        for lo in range(start, frames, CHECKPOINT_FRAMES):
            hi = min(frames, lo + CHECKPOINT_FRAMES)
            span = slice((lo - start) * OUTPUT_HOP, (hi - start) * OUTPUT_HOP)
            results = [filtered(source[span], coefficients, zi)
                       for source, coefficients, zi in zip(sources, self.coefficients, state)]
            for piece, (out, _) in zip(pieces, results):
                piece.append(out)
            state = [zf for _, zf in results]
            if hi - lo == CHECKPOINT_FRAMES:
                self.states[hi] = state
        self.bands = [np.concatenate([band[:start * OUTPUT_HOP], *piece]) for band, piece in zip(self.bands, pieces)]

    def _finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The whole-song steps of `render_song`: clamp, RMS match, clip or rescale (vector passes, no model). With
        `rescale` the vocoder mix is scaled by its peak after the (linear) filters rather than before: the same up
        to float rounding."""
        low_recon, low_vocoded, high_vocoded = self.bands
        scale = np.float32(1.0)
        if self.rescale and low_vocoded.size:
            peak = float(np.abs(self.stems[0] + self.stems[1]).max())
            scale = np.float32(min(PEAK / peak, 1.0)) if peak > 0 else scale
        b_low_rms = rms(np.clip(scale * low_vocoded, -1.0, 1.0))
        mix = energy_matched(np.clip(low_recon, -1.0, 1.0), b_low_rms, np.clip(scale * high_vocoded, -1.0, 1.0))
        stems = [finish(stem, self.rescale) for stem in self.stems]
        # finish hands back its input when it has nothing to do (rescaled silence): never give out the kept arrays
        stems = [out.copy() if out is kept else out for out, kept in zip(stems, self.stems)]
        return finish(mix, self.rescale), stems[0], stems[1]
