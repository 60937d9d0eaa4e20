"""A short musical reference track we make ourselves (no third-party audio): chords, bass, melody and a soft beat.

    python examples/make_reference.py reference.wav [seconds]   (with the package installed: the README's install)

The app calls `write_reference` at start-up into its output folder, so no audio file is kept in the repository.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 44100
BPM = 96  # a relaxed pop tempo: one bar of four beats is 2.5 s
BEAT_S = 60.0 / BPM
# I - V - vi - IV in C major, one chord per bar, as MIDI notes.
CHORDS = ((60, 64, 67), (55, 59, 62), (57, 60, 64), (53, 57, 60))
# Melody: (MIDI note, beats) per bar; it follows the chord tones so it sounds like a tune, not noise.
MELODY = (((72, 1), (71, 1), (67, 2)), ((67, 1), (69, 1), (71, 2)), ((72, 1), (76, 1), (74, 2)),
          ((72, 1), (69, 1), (67, 2)))


def _hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12)


def _tone(note: float, seconds: float, harmonics: tuple[float, ...], decay: float) -> np.ndarray:
    """A plucked/organ-like note: a few harmonics under an exponential decay with a 5 ms attack (no clicks)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(amp * np.sin(2 * np.pi * _hz(note) * (k + 1) * t) for k, amp in enumerate(harmonics))
    envelope = np.exp(-t * decay) * np.minimum(1.0, t / 0.005) * np.minimum(1.0, (seconds - t) / 0.01)
    return wave * envelope


def _kick(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.sin(2 * np.pi * (50 + 90 * np.exp(-t * 30)) * t) * np.exp(-t * 12)


def _add(track: np.ndarray, sound: np.ndarray, start_s: float) -> None:
    start = int(start_s * SAMPLE_RATE)
    end = min(track.size, start + sound.size)
    if start < end:
        track[start:end] += sound[:end - start]


def synthesize(seconds: float = 10.0) -> np.ndarray:
    """Mono float32 samples at 44.1 kHz, peak 0.8."""
    track = np.zeros(int(seconds * SAMPLE_RATE))
    bar_s = 4 * BEAT_S
    for bar in range(int(np.ceil(seconds / bar_s))):
        start = bar * bar_s
        chord, melody = CHORDS[bar % len(CHORDS)], MELODY[bar % len(MELODY)]
        for note in chord:  # sustained pad
            _add(track, 0.12 * _tone(note, bar_s, (1.0, 0.3, 0.1), 0.6), start)
        _add(track, 0.3 * _tone(chord[0] - 24, bar_s, (1.0, 0.5), 0.8), start)  # bass two octaves down
        beat = 0.0
        for note, beats in melody:
            _add(track, 0.25 * _tone(note, beats * BEAT_S, (1.0, 0.4, 0.2, 0.1), 2.5), start + beat * BEAT_S)
            beat += beats
        for k in range(4):
            _add(track, 0.35 * _kick(0.3), start + k * BEAT_S)
    return (0.8 * track / np.abs(track).max()).astype(np.float32)


def write_reference(path: str | Path, seconds: float = 10.0) -> Path:
    """Write the reference track as a 16-bit wav (a few hundred kB) and return its path. write_audio moves the
    finished file over `path` in one step: copies of the app sharing a folder write it at the same moment, and one
    reading it (Gradio copies it into its cache) must never find a file another has just truncated."""
    from yue.audio import write_audio

    return write_audio(path, synthesize(seconds), SAMPLE_RATE)


if __name__ == "__main__":
    out = write_reference(sys.argv[1] if len(sys.argv) > 1 else "reference.wav",
                          float(sys.argv[2]) if len(sys.argv) > 2 else 10.0)
    print(f"wrote {out}")
