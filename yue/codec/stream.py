"""A song's audio handed out while the song is made: each piece as soon as no later code can change it.

`AudioStream` renders the song so far with a `SongRenderer` of its own (decoding only new frames and their context)
and cuts from it the samples that are final: those of frames more than HOLD_FRAMES before the end of the codes
known to be final. The pieces, joined, are the render of the whole song up to the decoders' float rounding
(tests/codec/test_stream.py), with one difference: until the song is complete its loudness is provisional. The
official finish matches the mix's low band to the vocoder's by the RMS of the whole song (and `rescale` scales by
the whole song's peak), which no piece can know; a piece uses the song so far's (`Piece.low_gain`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rates import OUTPUT_HOP
from .incremental import RESAMPLE_CONTEXT_FRAMES, RenderState, SongRenderer
from .render import CONTEXT_FRAMES

# Samples of the last frames a render saw may still change when more frames come: the decoders' receptive field
# (CONTEXT_FRAMES covers it) and the resampler's context. Samples of frames before this many from the end are final.
HOLD_FRAMES = CONTEXT_FRAMES + RESAMPLE_CONTEXT_FRAMES


def final_frames(frames: int, complete: bool) -> int:
    """How many frames of a song whose first `frames` frames have final codes have final samples: all of them
    when the song is complete, else all but the last HOLD_FRAMES."""
    return frames if complete else max(0, frames - HOLD_FRAMES)


@dataclass(frozen=True)
class Piece:
    """Frames [start, start + frames) of a song at 44.1 kHz (882 samples a frame), float32 each, as the render of
    the song so far gave them. `low_gain`: the scale its mix's low band got (the RMS match over the song so far);
    `provisional`: the song was not complete, so the finished song's loudness may differ."""

    start: int
    frames: int
    mix: np.ndarray
    vocal: np.ndarray
    instrumental: np.ndarray
    low_gain: float
    provisional: bool


class AudioStream:
    """The final audio of one growing song, piece by piece. `state`: the render state to go on from (the song's as
    an earlier call left it, or None); `heard`: the frames already handed out (pieces start there)."""

    def __init__(self, codec, vocal_vocoder, instrumental_vocoder, rescale: bool = False,
                 state: RenderState | None = None, heard: int = 0):
        self.renderer = SongRenderer(codec, vocal_vocoder, instrumental_vocoder, rescale, state)
        self.heard = heard
        self.last: tuple[np.ndarray, ...] | None = None  # the last render: (mix, vocal, instrumental) of the song so far

    def piece(self, vocal_codes: np.ndarray, instrumental_codes: np.ndarray, complete: bool = False) -> Piece | None:
        """The samples of stage-2 codes (K, T) of both tracks (the song from its first frame; every code final) not
        handed out yet that are final now (`complete`: these are the whole song's codes); None when there are
        none."""
        end = final_frames(vocal_codes.shape[1], complete)
        if end <= self.heard:
            return None
        self.last = self.renderer.render(vocal_codes, instrumental_codes)
        start, self.heard = self.heard, end
        cut = slice(start * OUTPUT_HOP, end * OUTPUT_HOP)
        mix, vocal, instrumental = (track[cut] for track in self.last)
        return Piece(start, end - start, mix, vocal, instrumental, self.renderer.low_gain, not complete)
