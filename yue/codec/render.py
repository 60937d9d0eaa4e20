"""Codes <-> audio with loaded codec modules: the official path from stage-2 codes to the final 44.1 kHz song
(SPEC §6): 16 kHz xcodec reconstruction and 44.1 kHz Vocos stems, merged by band. Arrays in, arrays out."""
from __future__ import annotations

import numpy as np
import torch

from .mix import PEAK, finish, merge_bands
from ..rates import CODEBOOK_SIZE, CODEC_RATE, OUTPUT_RATE

CHUNK_FRAMES = 250  # decode 5 s at a time: a 5-minute song peaks at 1.9 GiB with the whole codec (bench_codec.py)
# Frames of context on each side of a chunk. The receptive fields, measured by perturbing one frame of the
# full-size models, reach 11 frames (xcodec decoder) and 30 frames (Vocos) (tests/test_render.py checks them).
CONTEXT_FRAMES = 32
# Encoding goes 15 s at a time with 3 s of audio on each side: a 21 s piece, whose activations bound the memory
# whatever the upload's length (1.2 GiB of weights + 0.6 GiB for a piece: bench/bench_stream_audio.py). The context
# covers the receptive fields of the acoustic encoder (28 frames), HuBERT's positional conv (64) and the semantic
# encoder (7), measured at full size. HuBERT normalises its first conv layer over, and attends to, its whole input,
# so codes can differ from one pass over the whole file (the bench measures how many).
ENCODE_WINDOW_FRAMES = 750
ENCODE_CONTEXT_FRAMES = 150


def _codes_tensor(codes: np.ndarray, device) -> torch.Tensor:
    """(K, T) codes -> LongTensor[1, K, T]."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[None]
    if codes.ndim != 2:
        raise ValueError(f"codes must have shape (codebooks, frames), got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= CODEBOOK_SIZE):
        raise ValueError(f"codes must lie in 0..{CODEBOOK_SIZE - 1}, got {codes.min()}..{codes.max()}")
    return torch.as_tensor(codes.astype(np.int64), device=device)[None]


def _device(module) -> torch.device:
    return next(module.parameters()).device


def chunked(decode, embedding: torch.Tensor, samples_per_frame: int, chunk: int = CHUNK_FRAMES,
            context: int = CONTEXT_FRAMES, first: int = 0) -> np.ndarray:
    """Run a frame-to-samples decoder over (1, C, T) in chunks with `context` frames on each side, keeping only each
    chunk's own samples: bounded memory, and the same result as one pass up to float rounding (measured in tests).
    Frames before `first` are context only: the samples returned are those of frames first..T-1."""
    frames = embedding.shape[-1]
    pieces = []
    for start in range(first, frames, chunk):
        lo, hi = max(0, start - context), min(frames, start + chunk + context)
        own = min(chunk, frames - start)
        wav = decode(embedding[..., lo:hi]).reshape(-1)
        skip = (start - lo) * samples_per_frame
        pieces.append(wav[skip:skip + own * samples_per_frame].float().cpu().numpy())
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def _embedding(codec, codes: np.ndarray, first: int, context: int, device) -> tuple[torch.Tensor, int]:
    """The summed RVQ embedding of frames first - context .. T-1 (what decoding from `first` needs), and where
    `first` falls in it."""
    codes = np.asarray(codes)
    lo = max(0, first - context)
    codes = codes[..., lo:] if codes.ndim == 2 else codes[lo:]
    return codec.embed(_codes_tensor(codes, _device(codec))).to(device), first - lo


@torch.inference_mode()
def decode_16k(codec, codes: np.ndarray, chunk: int = CHUNK_FRAMES, context: int = CONTEXT_FRAMES,
               first: int = 0) -> np.ndarray:
    """(K, T) codes -> 16 kHz float32 samples (320 (T - first),) of frames first..T-1, `chunk` frames at a time."""
    embedding, first = _embedding(codec, codes, first, context, _device(codec))
    return chunked(codec.decode_embedding, embedding, codec.config.hop, chunk, context, first)


@torch.inference_mode()
def upsample_44k(codec, vocoder, codes: np.ndarray, chunk: int = CHUNK_FRAMES, context: int = CONTEXT_FRAMES,
                 first: int = 0) -> np.ndarray:
    """(K, T) codes -> 44.1 kHz float32 samples (882 (T - first),) of frames first..T-1 through a Vocos decoder fed
    the summed RVQ embedding."""
    embedding, first = _embedding(codec, codes, first, context, _device(vocoder))
    return chunked(vocoder, embedding, vocoder.config.hop_length, chunk, context, first)


def decode_codes(codec, codes: np.ndarray, vocoder=None) -> tuple[np.ndarray, int]:
    """(K, T) codes -> (samples, rate): 16 kHz from the codec, or 44.1 kHz through `vocoder` when given."""
    if vocoder is None:
        return decode_16k(codec, codes), CODEC_RATE
    return upsample_44k(codec, vocoder, codes), OUTPUT_RATE


def render_song(codec, vocal_vocoder, instrumental_vocoder, vocal_codes: np.ndarray, instrumental_codes: np.ndarray,
                rescale: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage-2 codes of both tracks -> (mix, vocal, instrumental) at 44.1 kHz, as the official post-processing.

    The mix takes its low band (< 5.5 kHz) from the 16 kHz reconstruction and its high band from the vocoder mix.
    The inputs of the merge are limited as the official files were: each 16 kHz track clamped to ±0.99 before the
    two are summed, and the vocoder mix clamped or rescaled (`rescale`) before the merge.
    """
    recon_mix = np.clip(decode_16k(codec, vocal_codes), -PEAK, PEAK)
    recon_mix += np.clip(decode_16k(codec, instrumental_codes), -PEAK, PEAK)
    vocal_44k = upsample_44k(codec, vocal_vocoder, vocal_codes)
    instrumental_44k = upsample_44k(codec, instrumental_vocoder, instrumental_codes)
    mix = merge_bands(recon_mix, finish(vocal_44k + instrumental_44k, rescale))
    return finish(mix, rescale), finish(vocal_44k, rescale), finish(instrumental_44k, rescale)


@torch.inference_mode()
def encode_codes(codec, samples: np.ndarray, codebooks: int = 1, window: int = ENCODE_WINDOW_FRAMES,
                 context: int = ENCODE_CONTEXT_FRAMES) -> np.ndarray:
    """16 kHz mono samples (N,) -> (codebooks, T) int64 codes, T as one pass gives: encoded `window` frames at a
    time, each piece of audio with `context` frames more on each side. Pieces start on frame boundaries, so a
    piece's frames are frames of the whole file."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    hop, pieces, start = codec.config.hop, [], 0
    if samples.size < hop:  # no frame: the codec's convolutions would fail with a message about padding
        raise ValueError(f"audio of {samples.size} samples is too short to encode: the codec needs at least {hop} "
                         f"samples ({1000 * hop / codec.config.sample_rate:.0f} ms, one frame)")
    while True:
        lo, hi = max(0, start - context), start + window + context
        wav = torch.as_tensor(samples[lo * hop:hi * hop], device=_device(codec)).reshape(1, 1, -1)
        codes = codec.encode(wav, codebooks)[0].cpu().numpy().astype(np.int64)
        last = hi * hop >= samples.size
        pieces.append(codes[:, start - lo:] if last else codes[:, start - lo:start - lo + window])
        if last:
            return np.concatenate(pieces, axis=1)
        start += window


def encode_codebook0(codec, samples: np.ndarray) -> np.ndarray:
    """16 kHz mono samples -> codebook-0 codes (T,): the stage-1 reference (official target_bw 0.5)."""
    return encode_codes(codec, samples, 1)[0]
