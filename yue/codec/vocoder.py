"""The Vocos upsampler (SPEC §6.1): summed xcodec embeddings (B, 1024, T) -> 44.1 kHz waveform (B, 882 T).

ConvNeXt backbone, then an ISTFT head with "same" padding. Official files: decoders/decoder_131000.pth (vocals) and
decoders/decoder_151000.pth (instrumental), raw state dicts of 81 entries.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvNeXtBlock
from ..rates import OUTPUT_HOP


@dataclass(frozen=True)
class VocoderConfig:
    """The official decoders/config.yaml init_args (backbone and head)."""

    input_channels: int = 1024  # the summed xcodec RVQ embedding (256 acoustic + 768 semantic)
    dim: int = 512  # backbone width
    intermediate_dim: int = 1536  # ConvNeXt pointwise expansion
    num_layers: int = 8  # ConvNeXt blocks; also sets the layer-scale init 1/num_layers
    n_fft: int = 3528  # 4 hops: 80 ms windows at 44.1 kHz
    hop_length: int = OUTPUT_HOP  # one codec frame (20 ms) of 44.1 kHz samples


class Backbone(nn.Module):
    """Vocos backbone: embed conv k7 -> LayerNorm -> ConvNeXt blocks -> final LayerNorm."""

    def __init__(self, c: VocoderConfig):
        super().__init__()
        self.embed = nn.Conv1d(c.input_channels, c.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(c.dim, eps=1e-6)
        self.convnext = nn.ModuleList([ConvNeXtBlock(c.dim, c.intermediate_dim, 1 / c.num_layers)
                                       for _ in range(c.num_layers)])
        self.final_layer_norm = nn.LayerNorm(c.dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, T, dim)."""
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


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
