"""The only audio file I/O: read any common format as mono at a given rate; write wav / flac / mp3."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from .files import not_a_file, replacing
from .rates import CODEC_HOP, CODEC_RATE, FRAME_RATE

WRITE_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".mp3": ("MP3", "MPEG_LAYER_III")}
SILENCE = 1e-4  # peak below this (-80 dBFS) counts as silence
MAX_SECONDS = 600.0  # checked before decoding: a stereo 44.1 kHz hour would be 1.3 GB of float32 in memory
# Checked from the header too: a file small on disk (a constant-valued FLAC) can hold 8 channels at 192 kHz, 0.9 G
# samples whose decoding alone takes minutes; 10 minutes of 96 kHz stereo is the most any reference needs.
MAX_DECODED_SAMPLES = 2 * 96_000 * int(MAX_SECONDS)
BLOCK_SAMPLES = 1 << 20  # values decoded at once, whatever the channel count: 4 MB of float32
# What reading a file of MAX_SECONDS may add to a process's peak memory (docs/bad-inputs.md; test_audio measures
# it): the 16 kHz result twice (its pieces, then joined: 2 x 38 MB) plus a block and soxr's buffers.
READ_PEAK_MB = 128
# A float file may go past full scale (1.0) a little; one past +24 dBFS is damaged (samples of 1e30 were read as
# music): refused, like NaN and infinities, never normalised, since nothing says what its level should be
MAX_FLOAT_PEAK = 16.0
# The codec makes one frame of every 320 samples at 16 kHz: shorter audio gives no frame at all (its convolutions
# fail on it), so a reference or stem is refused below one frame, 20 ms.
MIN_SECONDS = 1 / FRAME_RATE


class AudioError(ValueError):
    """An audio file the pipeline cannot use; the message names the file and what to do."""


def read_audio(path: str | Path, sample_rate: int = CODEC_RATE, max_seconds: float | None = MAX_SECONDS,
               max_samples: int = MAX_DECODED_SAMPLES) -> np.ndarray:
    """float32 mono samples (N,) at `sample_rate` (channels averaged, resampled with soxr).

    Decoded, downmixed and resampled in blocks of about BLOCK_SAMPLES values, so memory holds one block and the mono
    result: at most READ_PEAK_MB above the caller's for a file of MAX_SECONDS (docs/bad-inputs.md). Raises
    AudioError naming the file for: missing, not a file, unreadable or unsupported, empty, too many decoded samples
    (channels x rate x seconds, from the header, beyond `max_samples`), longer than `max_seconds`, NaN or infinite
    samples, silent.
    """
    import soundfile
    import soxr

    path = Path(path)
    info = check_audio(path, max_seconds, max_samples)
    stream = None if info.samplerate == sample_rate else soxr.ResampleStream(info.samplerate, sample_rate, 1,
                                                                            dtype="float32", quality="VHQ")
    pieces, frames, damaged, peak = [], 0, Damage(path.name), 0.0
    with damaged.decoding():
        for block in soundfile.blocks(str(path), blocksize=max(1, BLOCK_SAMPLES // info.channels),
                                      dtype="float32", always_2d=True):
            frames += block.shape[0]
            damaged.count(block)
            mono = block.mean(axis=1, dtype=np.float32)
            peak = max(peak, float(np.abs(mono).max())) if mono.size and not damaged.samples else peak
            pieces.append(mono if stream is None else stream.resample_chunk(mono))
        if stream is not None:
            pieces.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
    if frames == 0:
        raise AudioError(f"{path.name} is empty (no samples).")
    if frames < MIN_SECONDS * info.samplerate:  # a header may understate the length
        raise AudioError(f"{path.name} holds {frames} samples at {info.samplerate} Hz; the codec needs at least "
                         f"{MIN_SECONDS * 1000:.0f} ms ({CODEC_HOP} samples at {CODEC_RATE} Hz, one frame). Give a "
                         "longer recording (about 30 s is recommended for a reference).")
    damaged.check()
    if peak < SILENCE:
        raise AudioError(f"{path.name} is silent; give a recording with audible music.")
    return np.concatenate(pieces).astype(np.float32, copy=False)


def check_audio(path: str | Path, max_seconds: float | None = MAX_SECONDS, max_samples: int = MAX_DECODED_SAMPLES):
    """soundfile's header of an audio file, checked before anything is decoded: a readable audio file (not a folder
    or a device), at least MIN_SECONDS and at most `max_seconds` long, at most `max_samples` values decoded
    (channels x frames). Raises AudioError naming the file and what to do."""
    path = Path(path)
    info = _info(path)
    seconds = info.frames / info.samplerate if info.samplerate else 0.0
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(f"{path.name} is {seconds:.0f} s long; the limit is {max_seconds:.0f} s. Trim it first.")
    if info.frames * info.channels > max_samples:
        raise AudioError(f"{path.name} holds {info.channels} channels at {info.samplerate} Hz for {seconds:.0f} s: "
                         f"{info.frames * info.channels / 1e6:.0f} million samples to decode; the limit is "
                         f"{max_samples / 1e6:.0f} million (10 minutes of 96 kHz stereo). Export it as mono or "
                         "stereo at 44.1 or 48 kHz.")
    if info.frames == 0:  # checked here too: an upload of no samples is called empty before any other check
        raise AudioError(f"{path.name} is empty (no samples).")
    if 0 < seconds < MIN_SECONDS:
        raise AudioError(f"{path.name} is {seconds * 1000:.1f} ms long; the codec needs at least "
                         f"{MIN_SECONDS * 1000:.0f} ms ({CODEC_HOP} samples at {CODEC_RATE} Hz, one frame). Give a "
                         "longer recording (about 30 s is recommended for a reference).")
    return info


def _info(path: Path):
    """soundfile's header of `path`, or an AudioError saying what the path is instead of an audio file."""
    import soundfile

    if not path.is_file():
        raise AudioError(f"Audio file {path}: {not_a_file(path)}; give an audio file (wav, flac, mp3 or ogg)")
    try:
        return soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError):  # libsndfile's words name its internals ("possibly a pipe?")
        raise AudioError(f"{path.name} is not a readable audio file: its contents are not wav, flac, mp3 or ogg "
                         "audio, or it is damaged. Export it again as wav or flac.") from None


class Damage:
    """What a block-by-block decode finds wrong with a file (`name`): a decoder error on the way (a truncated
    file: libsndfile says "Internal psf_fseek() failed."), NaN or infinite samples, or float samples far past full
    scale; `check` raises AudioError saying which, once every block was counted."""

    def __init__(self, name: str):
        self.name, self.samples, self.loudest = name, 0, 0.0

    def count(self, block: np.ndarray) -> None:
        finite = np.isfinite(block)
        self.samples += int((~finite).any(axis=1).sum())
        if block.size:
            self.loudest = max(self.loudest, float(np.abs(np.where(finite, block, 0)).max()))

    @contextlib.contextmanager
    def decoding(self):
        import soundfile

        try:
            yield
        except (RuntimeError, soundfile.LibsndfileError):
            raise AudioError(f"{self.name} could not be decoded: it is damaged or truncated. Export it again.") \
                from None

    def check(self) -> None:
        if self.samples:
            raise AudioError(f"{self.name} holds {self.samples} NaN or infinite samples (a damaged float file); "
                             "export it again as 16- or 24-bit PCM.")
        if self.loudest > MAX_FLOAT_PEAK:
            raise AudioError(f"{self.name} holds samples of {self.loudest:.3g}, over {MAX_FLOAT_PEAK:g} times full "
                             "scale (a damaged float file): it is refused, not scaled down. Export it again as 16- or "
                             "24-bit PCM.")


def check_float_samples(path: str | Path, block_frames: int = 1 << 16) -> None:
    """Refuse a float file holding NaN, infinite or absurdly loud samples (integer PCM cannot), or one that fails
    to decode, read in blocks: a check cheap enough to run on an upload before any GPU time is booked for it."""
    import soundfile

    path = Path(path)
    if _info(path).subtype not in ("FLOAT", "DOUBLE"):
        return
    damaged = Damage(path.name)
    with damaged.decoding():
        for block in soundfile.blocks(str(path), blocksize=block_frames, dtype="float32", always_2d=True):
            damaged.count(block)
    damaged.check()


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
    with replacing(path) as temporary:  # a write error leaves no partial file
        soundfile.write(str(temporary), samples, sample_rate, format=kind, subtype=subtype)
    return path
