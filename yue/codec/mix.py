"""Stems -> song (SPEC §6.4): the low band of the 16 kHz reconstruction, RMS-matched, plus the high band of the
44.1 kHz vocoder mix; then clip or rescale. Arrays in, arrays out."""
from __future__ import annotations

import math

import numpy as np

from ..rates import CODEC_RATE, OUTPUT_RATE

CUTOFF_HZ = 5500.0  # below: the codec's own reconstruction; above: the upsampler's extra bandwidth
Q = 0.707  # torchaudio's biquad default, used by the official lowpass_biquad / highpass_biquad calls
EPS = 1e-10  # added to both RMS values (official), so silence does not divide by zero
PEAK = 0.99  # the official output limit: clamp to ±0.99, or rescale so the peak is at most 0.99


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """float32 samples (N,) at `from_rate` -> float32 samples at `to_rate` (soxr, very high quality)."""
    import soxr

    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate, quality="VHQ").astype(np.float32)


def lowpass_coefficients(rate: int, cutoff: float = CUTOFF_HZ) -> tuple[np.ndarray, np.ndarray]:
    """torchaudio's `lowpass_biquad` coefficients (RBJ cookbook, Q 0.707) as float32 (b, a), normalised by a[0]."""
    w0 = 2 * math.pi * cutoff / rate
    alpha, cos = math.sin(w0) / 2 / Q, math.cos(w0)
    b0 = (1 - cos) / 2
    return _normalised([b0, 1 - cos, b0], [1 + alpha, -2 * cos, 1 - alpha])


def highpass_coefficients(rate: int, cutoff: float = CUTOFF_HZ) -> tuple[np.ndarray, np.ndarray]:
    """torchaudio's `highpass_biquad` coefficients (RBJ cookbook, Q 0.707) as float32 (b, a), normalised by a[0]."""
    w0 = 2 * math.pi * cutoff / rate
    alpha, cos = math.sin(w0) / 2 / Q, math.cos(w0)
    b0 = (1 + cos) / 2
    return _normalised([b0, -(1 + cos), b0], [1 + alpha, -2 * cos, 1 - alpha])


def _normalised(b, a) -> tuple[np.ndarray, np.ndarray]:
    # float32 throughout, as torchaudio filtered the float32 waveform (and half the memory of float64)
    return (np.asarray(b) / a[0]).astype(np.float32), (np.asarray(a) / a[0]).astype(np.float32)


def filtered(samples: np.ndarray, coefficients, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Direct-form biquad over float32 samples (N,), unclamped -> (output (N,), state (2,)). Filtering a signal in
    pieces, each starting from the state the previous piece ended with, gives the same output as one pass."""
    from scipy.signal import lfilter

    b, a = coefficients
    state = np.zeros(2, dtype=np.float32) if state is None else state
    return lfilter(b, a, np.asarray(samples, dtype=np.float32), zi=state)


def _biquad(samples: np.ndarray, coefficients) -> np.ndarray:
    """torchaudio's `biquad`: direct-form filter with the output clamped to [-1, 1]."""
    out, _ = filtered(samples, coefficients)
    return np.clip(out, -1.0, 1.0, out=out)


def lowpass(samples: np.ndarray, rate: int, cutoff: float = CUTOFF_HZ) -> np.ndarray:
    """torchaudio's `lowpass_biquad`: RBJ-cookbook second-order low-pass, Q 0.707, output clamped to ±1."""
    return _biquad(samples, lowpass_coefficients(rate, cutoff))


def highpass(samples: np.ndarray, rate: int, cutoff: float = CUTOFF_HZ) -> np.ndarray:
    """torchaudio's `highpass_biquad`: RBJ-cookbook second-order high-pass, Q 0.707, output clamped to ±1."""
    return _biquad(samples, highpass_coefficients(rate, cutoff))


def rms(samples: np.ndarray) -> float:
    """The official RMS with EPS added (float64 accumulation)."""
    return math.sqrt(float(np.mean(np.square(samples, dtype=np.float64)))) + EPS if samples.size else EPS


def low_band_gain(a_low: np.ndarray, b_low_rms: float) -> np.float32:
    """The scale that matches the reconstruction's low band `a_low` to the RMS of the vocoder's (`b_low_rms`)."""
    return np.float32(b_low_rms / rms(a_low))


def energy_matched(a_low: np.ndarray, gain: np.float32, b_high: np.ndarray) -> np.ndarray:
    """The merge's last step on filtered (clamped) bands: the reconstruction's low band `a_low` times `gain`
    (`low_band_gain`), plus the vocoder's high band `b_high`; float32 (min(len a_low, len b_high),). Scales `a_low`
    in place."""
    a_low *= gain
    length = min(a_low.size, b_high.size)
    return (a_low[:length] + b_high[:length]).astype(np.float32)


def merge_bands(recon_16k: np.ndarray, vocoded_44k: np.ndarray, recon_rate: int = CODEC_RATE,
                output_rate: int = OUTPUT_RATE) -> np.ndarray:
    """The official `replace_low_freq_with_energy_matched`: (N,) at 16 kHz and (M,) at 44.1 kHz -> float32 (L,) at
    44.1 kHz, L = min(resampled N, M): low band of the resampled reconstruction scaled to the RMS of the vocoder's
    low band, plus the vocoder's high band."""
    high_source = np.asarray(vocoded_44k, dtype=np.float32)
    a_low = lowpass(resample(recon_16k, recon_rate, output_rate), output_rate)
    b_low_rms = rms(lowpass(high_source, output_rate))  # only its RMS is needed: the band itself is freed here
    return energy_matched(a_low, low_band_gain(a_low, b_low_rms), highpass(high_source, output_rate))


def finish(samples: np.ndarray, rescale: bool = False) -> np.ndarray:
    """The official output step: scale to peak 0.99 (`--rescale`) or clip at ±0.99."""
    samples = np.asarray(samples, dtype=np.float32)
    if rescale:
        peak = float(np.abs(samples).max()) if samples.size else 0.0
        return samples * min(PEAK / peak, 1.0) if peak > 0 else samples
    return np.clip(samples, -PEAK, PEAK)
