"""The tests' oracle for the Vocos upsampler: our own re-implementation (SPEC §6.1), proven equal to the official
modules, that yue shipped until its ISTFT head came from transformers (the backbone is still yue's). Official
state-dict names.

The Vocos upsampler (SPEC §6.1): summed xcodec embeddings (B, 1024, T) -> 44.1 kHz waveform (B, 882 T).

ConvNeXt backbone, then an ISTFT head with "same" padding. Official files: decoders/decoder_131000.pth (vocals) and
decoders/decoder_151000.pth (instrumental), raw state dicts of 81 entries.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from yue.codec.vocoder import Backbone, VocoderConfig


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding: trim (n_fft - hop) / 2 from each end, so T frames give hop * T samples."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """spec: complex Tensor[B, n_fft / 2 + 1, T] -> Tensor[B, hop * T]."""
        frames = spec.shape[-1]
        pad = (self.n_fft - self.hop_length) // 2
        chunks = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        length = (frames - 1) * self.hop_length + self.n_fft
        fold = dict(output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        audio = F.fold(chunks, **fold)[:, 0, 0, pad:-pad]
        envelope = F.fold(self.window.square().expand(1, frames, -1).transpose(1, 2), **fold)[0, 0, 0, pad:-pad]
        return audio / envelope


class ISTFTHead(nn.Module):
    """Linear to n_fft + 2 channels = log-magnitude and phase of n_fft / 2 + 1 bins, then the inverse STFT."""

    def __init__(self, c: VocoderConfig):
        super().__init__()
        self.out = nn.Linear(c.dim, c.n_fft + 2)
        self.istft = ISTFT(c.n_fft, c.hop_length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> (B, hop * T): magnitude (clipped at 100) and phase halves -> complex spectrum -> ISTFT."""
        magnitude, phase = self.out(x).transpose(1, 2).float().chunk(2, dim=1)
        magnitude = torch.exp(magnitude).clamp(max=1e2)
        return self.istft(magnitude * (torch.cos(phase) + 1j * torch.sin(phase)))


class Vocoder(nn.Module):
    """Vocos `VocosDecoder` (backbone + head, no feature extractor); key names as the official decoder files."""

    def __init__(self, config: VocoderConfig = VocoderConfig()):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.head = ISTFTHead(config)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """embedding: Tensor[B, 1024, T] -> 44.1 kHz Tensor[B, 882 T]."""
        return self.head(self.backbone(embedding))
