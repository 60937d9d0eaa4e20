"""yue.codec.mix: the low band comes from the 16 kHz reconstruction, the high band from the 44.1 kHz vocoder mix."""
import numpy as np

from yue.codec import mix


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def band_energy(x: np.ndarray, rate: int, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(x[rate // 4:]))
    bins = np.fft.rfftfreq(x[rate // 4:].size, 1 / rate)
    return float(spectrum[np.abs(bins - freq) < 50].max())


def test_low_tone_from_reconstruction_high_tone_from_vocoder():
    """A 1 kHz tone only in the 16 kHz path survives, RMS-matched; a 10 kHz tone only in the 44.1 kHz path passes;
    a 1 kHz tone only in the vocoder path is replaced."""
    recon = tone(1000, 16000)
    vocoded = tone(10000, 44100) + tone(1000, 44100, amplitude=0.05)
    out = mix.merge_bands(recon, vocoded)
    assert out.shape == (44100,) and out.dtype == np.float32
    assert band_energy(out, 44100, 10000) > 0.5 * band_energy(vocoded, 44100, 10000)
    assert band_energy(out, 44100, 1000) > 0.5 * band_energy(vocoded, 44100, 1000)  # RMS-matched to the vocoder's
    only_vocoder_low = mix.merge_bands(np.zeros(16000, np.float32), tone(1000, 44100))
    assert band_energy(only_vocoder_low, 44100, 1000) < 0.2 * band_energy(tone(1000, 44100), 44100, 1000)


def test_biquads_are_3db_at_the_cutoff():
    """Both biquads (Q 0.707) pass a 5.5 kHz tone at 1/√2 of its amplitude."""
    rate = 44100
    at_cutoff = tone(5500, rate)
    for filtered in (mix.lowpass(at_cutoff, rate), mix.highpass(at_cutoff, rate)):
        ratio = np.sqrt(np.mean(filtered[rate // 2:] ** 2) / np.mean(at_cutoff[rate // 2:] ** 2))
        assert abs(ratio - 0.707) < 0.03


def test_finish_clips_or_rescales():
    """Default: clamp to ±0.99; rescale: multiply by min(0.99 / peak, 1), so quiet audio is left alone."""
    loud = np.array([0.5, -2.0, 1.5], dtype=np.float32)
    np.testing.assert_allclose(mix.finish(loud), [0.5, -0.99, 0.99], rtol=1e-6)
    np.testing.assert_allclose(mix.finish(loud, rescale=True), loud * 0.99 / 2.0, rtol=1e-6)
    quiet = np.array([0.1, -0.2], dtype=np.float32)
    np.testing.assert_array_equal(mix.finish(quiet, rescale=True), quiet)


def test_biquad_coefficients_are_the_rbj_cookbook_ones():
    """lowpass/highpass filter with torchaudio's biquad coefficients (RBJ cookbook), checked on an impulse."""
    from scipy.signal import lfilter

    rate, cutoff, q = 44100, 5500.0, 0.707
    w0 = 2 * np.pi * cutoff / rate
    alpha, cos = np.sin(w0) / (2 * q), np.cos(w0)
    a = [1 + alpha, -2 * cos, 1 - alpha]
    impulse = np.zeros(64, np.float32)
    impulse[0] = 0.5
    low = lfilter([(1 - cos) / 2, 1 - cos, (1 - cos) / 2], a, impulse)
    high = lfilter([(1 + cos) / 2, -(1 + cos), (1 + cos) / 2], a, impulse)
    np.testing.assert_allclose(mix.lowpass(impulse, rate), low, atol=1e-6)
    np.testing.assert_allclose(mix.highpass(impulse, rate), high, atol=1e-6)


def test_merge_truncates_to_the_shorter_input():
    """Inputs of different lengths give the shorter length (after resampling 16 kHz to 44.1 kHz)."""
    out = mix.merge_bands(tone(1000, 16000, seconds=0.5), tone(10000, 44100, seconds=1.0))
    assert out.shape == (22050,)
    out = mix.merge_bands(tone(1000, 16000, seconds=1.0), tone(10000, 44100, seconds=0.25))
    assert out.shape == (11025,)


def test_filtering_in_pieces_with_the_carried_state_equals_one_pass():
    """Both biquads run over a signal in uneven pieces, each piece starting from the state the last one ended with,
    give exactly (bit for bit) the one-pass output; starting a piece from a zero state instead does not."""
    samples = np.random.default_rng(0).standard_normal(10000).astype(np.float32)
    for coefficients in (mix.lowpass_coefficients(44100), mix.highpass_coefficients(44100)):
        whole, _ = mix.filtered(samples, coefficients)
        pieces, state = [], None
        for lo, hi in ((0, 1), (1, 2500), (2500, 2501), (2501, 10000)):
            out, state = mix.filtered(samples[lo:hi], coefficients, state)
            pieces.append(out)
        np.testing.assert_array_equal(np.concatenate(pieces), whole)
        restarted = np.concatenate([mix.filtered(samples[:2500], coefficients)[0],
                                    mix.filtered(samples[2500:], coefficients)[0]])
        assert np.abs(restarted - whole).max() > 1e-3


def test_energy_matched_scales_the_low_band_to_the_target_rms():
    """The reconstruction's low band is scaled so its RMS equals the given one, then the high band is added."""
    a_low = tone(1000, 44100, amplitude=0.5)
    b_high = tone(10000, 44100, amplitude=0.1)
    out = mix.energy_matched(a_low.copy(), mix.low_band_gain(a_low, 0.2), b_high)
    assert abs(mix.rms(out - b_high) - 0.2) < 1e-4
