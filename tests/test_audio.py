"""yue.audio: read any format as mono at 16 kHz, write wav/flac/mp3, clear errors."""
import numpy as np
import pytest
import soundfile

from yue.audio import AudioError, read_audio, write_audio


def music(seconds=1.0, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3"])
def test_write_then_read_each_format(tmp_path, suffix):
    path = write_audio(tmp_path / f"song{suffix}", music(), 44100)
    assert soundfile.info(str(path)).samplerate == 44100
    samples = read_audio(path, 16000)
    assert abs(samples.size - 16000) < 1200  # mp3 adds encoder delay padding
    assert 0.2 < np.abs(samples).max() < 0.4


def test_stereo_is_averaged_and_resampled(tmp_path):
    stereo = np.stack([music(), -music() * 0 + music()], axis=1)
    soundfile.write(str(tmp_path / "s.wav"), stereo, 44100)
    samples = read_audio(tmp_path / "s.wav", 16000)
    assert samples.ndim == 1 and samples.size == 16000


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "not found"),
    (lambda p: p.write_bytes(b"not audio at all"), "not a readable audio file"),
    (lambda p: soundfile.write(str(p), np.zeros(0, np.float32), 16000), "empty"),
    (lambda p: soundfile.write(str(p), np.zeros(1600, np.float32), 16000), "silent"),
    (lambda p: soundfile.write(str(p), music(3.0, 8000), 8000), "limit is 2 s"),
])
def test_bad_files_are_named_with_the_reason(tmp_path, make, message):
    path = tmp_path / "in.wav"
    make(path)
    with pytest.raises(AudioError, match=message):
        read_audio(path, max_seconds=2)


def test_unknown_output_format_is_refused(tmp_path):
    with pytest.raises(AudioError, match="use one of .wav, .flac, .mp3"):
        write_audio(tmp_path / "x.ogg", music(), 44100)
