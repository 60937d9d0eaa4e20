"""The only audio file I/O: read any common format as mono at a given rate; write wav / flac / mp3."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .codec.mix import resample
from .rates import CODEC_RATE

WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III")}
SILENCE = 1e-4  # peak below this (-80 dBFS) counts as silence
MAX_SECONDS = 600.0  # checked before decoding: a stereo 44.1 kHz hour would be 1.3 GB of float32 in memory


class AudioError(ValueError):
    """An audio file the pipeline cannot use; the message names the file and what to do."""


def read_audio(path: str | Path, sample_rate: int = CODEC_RATE, max_seconds: float | None = MAX_SECONDS) -> np.ndarray:
    """float32 mono samples (N,) at `sample_rate` (channels averaged, resampled with soxr).

    Raises AudioError naming the file for: missing, unreadable or unsupported, empty, NaN or infinite samples,
    silent, longer than `max_seconds`.
    """
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise AudioError(f"Audio file not found: {path}")
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioError(f"{path.name} is not a readable audio file (wav, flac, mp3 or ogg): {error}") from None
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(f"{path.name} is {seconds:.0f} s long; the limit is {max_seconds:.0f} s. Trim it first.")
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioError(f"{path.name} could not be decoded: {error}") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{path.name} is empty (no samples).")
    if not np.isfinite(samples).all():
        bad = int((~np.isfinite(samples)).any(axis=1).sum())
        raise AudioError(f"{path.name} holds {bad} NaN or infinite samples (a damaged float file); export it again "
                         "as 16- or 24-bit PCM.")
    mono = samples.mean(axis=1)
    if float(np.abs(mono).max()) < SILENCE:
        raise AudioError(f"{path.name} is silent; give a recording with audible music.")
    return resample(mono, rate, sample_rate)


def check_finite(path: str | Path, block_frames: int = 1 << 16) -> None:
    """Refuse a float file holding NaN or infinite samples (integer PCM cannot), read in blocks: a check cheap enough
    to run on an upload before any GPU time is booked for it."""
    import soundfile

    path = Path(path)
    if soundfile.info(str(path)).subtype not in ("FLOAT", "DOUBLE"):
        return
    bad = sum(int((~np.isfinite(block)).any(axis=1).sum())
              for block in soundfile.blocks(str(path), blocksize=block_frames, dtype="float32", always_2d=True))
    if bad:
        raise AudioError(f"{path.name} holds {bad} NaN or infinite samples (a damaged float file); export it again "
                         "as 16- or 24-bit PCM.")


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write mono float samples as .wav (16-bit), .flac or .mp3, chosen by the file's extension."""
    import soundfile

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise AudioError(f"Cannot write {path.name}: use one of {', '.join(WRITE_FORMATS)}")
    kind, subtype = WRITE_FORMATS[suffix]
    samples = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if samples.size == 0:
        raise AudioError(f"Nothing to write to {path.name}: no samples")
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, sample_rate, format=kind, subtype=subtype)
    return path
