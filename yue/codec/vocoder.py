"""The Vocos upsampler (SPEC §6.1): summed xcodec embeddings (B, 1024, T) -> 44.1 kHz waveform (B, 882 T).

ConvNeXt backbone, then an ISTFT head with "same" padding. Official files: decoders/decoder_131000.pth (vocals) and
decoders/decoder_151000.pth (instrumental), raw state dicts of 81 entries (yue.weights.codec_layout maps their names).

Which part comes from where:
* The head is transformers' Vocos ISTFT head (`Xcodec2ISTFTHead`: Linear to n_fft + 2, exp-magnitude clipped at
  100 and phase, irfft, overlap-add with "same" padding), equal to the official head within 1e-5
  (tests/weights/test_codec_layout.py; measured 3.8e-7).
* The backbone stays ours. The `vocos` package (PyPI 0.1.0) holds it (and gives the official outputs: within 9.1e-7
  of this module, docs/models.md), but importing any of its modules imports torchaudio (vocos/__init__ -> pretrained
  -> feature_extractors; heads.py too), and no torchaudio loads beside torch 2.13 (PyPI's newest, 2.11.1, is a CUDA
  build for torch 2.11: "libc10_cuda.so: cannot open shared object file"). transformers 5.23 has no Vocos model;
  its one 1-D ConvNeXt block (Qwen3-Omni's code2wav) has a causal depthwise conv and a fixed 4x expansion where
  Vocos pads both sides and expands 3x (1536), so it cannot run these weights (tests/codec/test_vocoder.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

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


class ConvNeXtBlock(nn.Module):
    """Vocos ConvNeXt block: x + γ · pwconv2(GELU(pwconv1(LN(dwconv(x))))), (B, C, T) -> (B, C, T).
    GELU is the exact (erf) one; γ starts at `layer_scale` (1 / num_layers in Vocos)."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x).transpose(1, 2))
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + y.transpose(1, 2)


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


def istft_head(c: VocoderConfig) -> nn.Module:
    """transformers' Vocos ISTFT head for this config: (B, T, dim) -> (B, 1, hop * T)."""
    from transformers.models.xcodec2.modeling_xcodec2 import Xcodec2ISTFTHead

    # The head reads these three fields of its config. Xcodec2Config itself would derive n_fft and hop_length from
    # xcodec2's downsampling ratios (and validate attention sizes that the head has not).
    return Xcodec2ISTFTHead(SimpleNamespace(hidden_size=c.dim, n_fft=c.n_fft, hop_length=c.hop_length))


class Vocoder(nn.Module):
    """Vocos `VocosDecoder` (backbone + head, no feature extractor)."""

    def __init__(self, config: VocoderConfig = VocoderConfig()):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        self.head = istft_head(config)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """embedding: Tensor[B, 1024, T] -> 44.1 kHz Tensor[B, 882 T]."""
        return self.head(self.backbone(embedding))[:, 0]
