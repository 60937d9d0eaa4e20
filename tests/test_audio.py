"""yue.audio: read any format as mono at 16 kHz, write wav/flac/mp3, clear errors."""
import numpy as np
import pytest
import soundfile

from yue.audio import AudioError, read_audio, write_audio


def music(seconds=1.0, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [44100, 16000])
@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_write_then_read_each_format(tmp_path, suffix, rate):
    """wav, flac and mp3 at 44.1 kHz (songs) and 16 kHz (reconstructions) read back as 1 s of mono at 16 kHz."""
    path = write_audio(tmp_path / f"song{suffix}", music(rate=rate), rate)
    assert soundfile.info(str(path)).samplerate == rate
    samples = read_audio(path, 16000)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 16000) < 1200  # mp3 adds encoder delay padding
    assert 0.2 < np.abs(samples).max() < 0.4


def test_stereo_is_averaged_and_resampled(tmp_path):
    """A 44.1 kHz stereo file becomes one channel (the mean) at 16 kHz."""
    stereo = np.stack([music(), -music() * 0 + music()], axis=1)
    soundfile.write(str(tmp_path / "s.wav"), stereo, 44100)
    samples = read_audio(tmp_path / "s.wav", 16000)
    assert samples.ndim == 1 and samples.size == 16000


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "not found"),
    (lambda p: p.write_bytes(b"not audio at all"), "in.wav is not a readable audio file"),
    (lambda p: soundfile.write(str(p), np.zeros(0, np.float32), 16000), "empty"),
    (lambda p: soundfile.write(str(p), np.zeros(1600, np.float32), 16000), "silent"),
    (lambda p: soundfile.write(str(p), music(3.0, 8000), 8000), "in.wav is 3 s long; the limit is 2 s"),
    (lambda p: soundfile.write(str(p), np.where(np.arange(8000) == 99, np.nan, music(1.0, 8000)), 8000,
                               subtype="FLOAT"), "in.wav holds 1 NaN or infinite samples"),
    (lambda p: soundfile.write(str(p), np.stack([music(1.0, 8000), np.full(8000, np.inf)], axis=1), 8000,
                               subtype="DOUBLE"), "in.wav holds 8000 NaN or infinite samples"),
])
def test_bad_files_are_named_with_the_reason(tmp_path, make, message):
    """Missing, unreadable, empty, NaN/inf, silent and too-long files raise AudioError with the file and the
    reason."""
    path = tmp_path / "in.wav"
    make(path)
    with pytest.raises(AudioError, match=message):
        read_audio(path, max_seconds=2)


def test_unknown_output_format_is_refused(tmp_path):
    """Writing another extension names the ones that work."""
    with pytest.raises(AudioError, match="use one of .wav, .flac, .mp3"):
        write_audio(tmp_path / "x.ogg", music(), 44100)


def test_unsupported_format_is_named(tmp_path):
    """A file in a format libsndfile cannot read (here a PNG header) is refused as unreadable, naming the file."""
    path = tmp_path / "cover.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(AudioError, match="cover.png is not a readable audio file"):
        read_audio(path)
