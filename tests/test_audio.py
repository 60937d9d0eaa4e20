"""yue.audio: read any format as mono at 16 kHz, write wav/flac/mp3, clear errors."""
import struct

import numpy as np
import pytest
import soundfile

from yue.audio import READ_PEAK_MB, AudioError, check_audio, check_float_samples, read_audio, write_audio

from .memory import peak_growth_mb


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


def written(path, write):
    write(path)
    return path


def truncated_flac(path):
    """A real 3 s FLAC cut in half: its header reads, its frames stop midway."""
    soundfile.write(str(path), music(3.0), 44100)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: written(p.with_suffix(".mp3"), lambda q: q.write_text("hello\n" * 200)),
     "in.mp3 is not a readable audio file: its contents are not wav, flac, mp3 or ogg audio, or it is damaged"),
    (lambda p: truncated_flac(p.with_suffix(".flac")), "in.flac could not be decoded: it is damaged or truncated"),
    (lambda p: written(p, lambda q: soundfile.write(str(q), np.zeros(0, np.float32), 16000)),
     "in.wav is empty (no samples)."),
])
def test_library_internals_never_reach_the_message(tmp_path, make, message):
    """Weak answer 5: a text file named .mp3 said "File does not exist or is not a regular file (possibly a pipe?)",
    a truncated FLAC "Internal psf_fseek() failed."; an empty WAV passed the header check (the app then spoke of
    its window). Each says what the file is, in this app's words, from the header check or the read."""
    path = make(tmp_path / "in.wav")
    for read in (read_audio, check_audio) if "decoded" not in message else (read_audio,):
        with pytest.raises(AudioError) as error:
            read(path)
        assert message in str(error.value)
        assert "pipe" not in str(error.value) and "psf_" not in str(error.value)


def test_float_samples_far_past_full_scale_are_refused_not_scaled(tmp_path):
    """Weak answer 6: a float WAV with a sample of 1e30 was read as music while NaN and inf were refused. Both the
    read and the upload check refuse it, saying it is not scaled; a float file a little past full scale is read."""
    loud = tmp_path / "loud.wav"
    soundfile.write(str(loud), np.where(np.arange(8000) == 5, 1e30, music(1.0, 8000)), 8000, subtype="FLOAT")
    for check in (read_audio, check_float_samples):
        with pytest.raises(AudioError, match=r"loud.wav holds samples of 1e\+30, over 16 times full scale .* it is "
                                             r"refused, not scaled down"):
            check(loud)
    hot = tmp_path / "hot.wav"
    soundfile.write(str(hot), 5 * music(1.0, 8000), 8000, subtype="FLOAT")  # peaks at 1.5
    check_float_samples(hot)
    assert np.abs(read_audio(hot)).max() > 1.0


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


def claiming_flac(path, channels: int, rate: int, seconds: float):
    """A FLAC of 0.1 s whose header (STREAMINFO's 36-bit total) claims `seconds`: what a file small on disk and huge
    decoded looks like to every check that reads only the header (the issue's was a real 0.94 MB constant FLAC)."""
    soundfile.write(str(path), np.full((rate // 10, channels), 0.25, np.float32), rate, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    fields = struct.unpack(">Q", data[18:26])[0] >> 36 << 36  # rate, channels, bits; then the 36-bit total
    data[18:26] = struct.pack(">Q", fields | int(rate * seconds))
    path.write_bytes(bytes(data))
    return path


def test_a_file_huge_once_decoded_is_refused_from_its_header(tmp_path):
    """The issue's 8 channels at 192 kHz for 590 s (906 million samples): refused before decoding, naming the file,
    its channels, rate and length and what to export instead."""
    path = claiming_flac(tmp_path / "wide.flac", 8, 192_000, 590)
    with pytest.raises(AudioError, match=r"wide.flac holds 8 channels at 192000 Hz for 590 s: 906 million samples "
                                         r"to decode; the limit is 115 million .* Export it as mono or stereo"):
        read_audio(path)


def test_a_block_by_block_read_equals_one_pass(tmp_path):
    """Decoding, downmixing and resampling in blocks gives the samples one whole pass gives (soxr's stream and its
    one-shot call agree to float32 rounding)."""
    from yue.codec.mix import resample

    rate, left = 44100, music(7.3)
    stereo = np.stack([left, 0.5 * left[::-1]], axis=1)
    soundfile.write(str(tmp_path / "s.flac"), stereo, rate, subtype="PCM_24")
    whole = resample(soundfile.read(str(tmp_path / "s.flac"), dtype="float32")[0].mean(axis=1), rate, 16000)
    blocks = read_audio(tmp_path / "s.flac", 16000)
    assert blocks.shape == whole.shape
    np.testing.assert_allclose(blocks, whole, atol=2e-6)


@pytest.mark.parametrize("what", [None, "folder", "device"])
def test_a_folder_or_device_given_as_audio_says_what_it_is(tmp_path, what):
    """A folder or /dev/zero given as an audio file is named as such, not 'not found' (a missing file still is)."""
    path = {None: tmp_path / "gone.wav", "folder": tmp_path, "device": "/dev/zero"}[what]
    message = {None: "not found", "folder": "is a folder", "device": "is not a regular file"}[what]
    with pytest.raises(AudioError, match=message):
        read_audio(path)


def test_reading_ten_minutes_of_audio_raises_peak_memory_by_less_than_the_stated_bound(tmp_path):
    """590 s of 48 kHz stereo FLAC (0.1 MB on disk, 226 MB of float32 decoded at once before): read in a fresh
    process, the peak RSS grows by less than READ_PEAK_MB, the bound docs/bad-inputs.md states."""
    path = tmp_path / "long.flac"
    with soundfile.SoundFile(str(path), "w", 48_000, 2, format="FLAC", subtype="PCM_16") as handle:
        block = np.full((480_000, 2), 0.25, np.float32)
        for _ in range(59):
            handle.write(block)
    growth, outcome = peak_growth_mb("from yue.audio import read_audio", f"assert read_audio({str(path)!r}).size "
                                     "== 590 * 16000")
    assert outcome == "returned"
    assert growth < READ_PEAK_MB, f"peak RSS grew by {growth:.0f} MB"


@pytest.mark.parametrize("samples, rate, shown", [(16, 16000, "1.0 ms"), (100, 16000, "6.2 ms"),
                                                  (800, 44100, "18.1 ms")])
def test_audio_shorter_than_one_codec_frame_is_refused_naming_the_minimum(tmp_path, samples, rate, shown):
    """The codec needs 320 samples at 16 kHz (one 20 ms frame); shorter audio failed inside its convolutions."""
    soundfile.write(str(tmp_path / "blip.wav"), np.full(samples, 0.5, np.float32), rate)
    with pytest.raises(AudioError, match=f"blip.wav is {shown} long; the codec needs at least 20 ms \\(320 samples"):
        read_audio(tmp_path / "blip.wav")
