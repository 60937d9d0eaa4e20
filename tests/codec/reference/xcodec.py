"""The tests' oracle for xcodec_mini: our own re-implementation of the official `SoundStream` (SPEC §5), proven
equal to the official modules, that yue shipped until the codec came from transformers' XcodecModel. Official
state-dict names. The tests compare the library path with it; bench/bench_codec.py times both.

decode: codes -> summed codebook embeddings -> fc_post2 -> acoustic decoder -> 16 kHz waveform.
encode: waveform -> [acoustic encoder ; semantic encoder(mean of HuBERT hidden states)] -> fc_prior -> residual
nearest-neighbour quantisation. `decoder_semantic` and `fc_post1` are training-only: built so that the official
checkpoint loads strictly, never run.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from yue.codec.xcodec import HUBERT_PAD, CodecConfig

from .layers import Conv, ResidualUnit, Snake1d, WNConv1d, WNConvTranspose1d

class AcousticEncoder(nn.Module):
    """DAC Encoder: (B, 1, N) -> (B, D, N / hop)."""

    def __init__(self, dim: int, strides, latent: int):
        super().__init__()
        layers = [WNConv1d(1, dim, 7, padding=3)]
        for stride in strides:
            layers.append(_EncoderBlock(2 * dim, stride))
            dim *= 2
        layers += [Snake1d(dim), WNConv1d(dim, latent, 3, padding=1)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _EncoderBlock(nn.Module):
    """Three dilated residual units at dim/2 channels, then a strided conv: (B, dim/2, L) -> (B, dim, L/stride)."""

    def __init__(self, dim: int, stride: int):
        super().__init__()
        half = dim // 2
        self.block = nn.Sequential(ResidualUnit(half, 1), ResidualUnit(half, 3), ResidualUnit(half, 9), Snake1d(half),
                                   WNConv1d(half, dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _DecoderBlock(nn.Module):
    """A transposed conv upsampling by `stride`, then three dilated residual units: (B, in, L) -> (B, out, L*stride)."""

    def __init__(self, in_dim: int, out_dim: int, stride: int):
        super().__init__()
        # The official decoder sets output_padding 1 on its second block (the stride-5 one) and 0 elsewhere: with
        # kernel 2s and padding ceil(s/2), exactly the odd strides need it for an output `stride` times longer.
        self.block = nn.Sequential(
            Snake1d(in_dim),
            WNConvTranspose1d(in_dim, out_dim, 2 * stride, stride=stride, padding=math.ceil(stride / 2),
                              output_padding=stride % 2),
            ResidualUnit(out_dim, 1), ResidualUnit(out_dim, 3), ResidualUnit(out_dim, 9))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class AcousticDecoder(nn.Module):
    """The local DAC-style Decoder: (B, D, T) -> (B, 1, hop * T), no final tanh."""

    def __init__(self, latent: int, channels: int, rates):
        super().__init__()
        layers = [WNConv1d(latent, channels, 7, padding=3)]
        for i, stride in enumerate(rates):
            layers.append(_DecoderBlock(channels // 2**i, channels // 2**(i + 1), stride))
        out = channels // 2**len(rates)
        layers += [Snake1d(out), WNConv1d(out, 1, 7, padding=3)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _SemanticResidual(nn.Module):
    """RepCodec residual unit, no biases: x + conv1x1(ELU(conv3(ELU(x))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = Conv(channels, channels, 3, bias=False)
        self.conv2 = nn.Conv1d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


class _SemanticBlock(nn.Module):
    """Two residual units, then a stride-1 kernel-3 conv (with bias): (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int):
        super().__init__()
        self.res_units = nn.ModuleList([_SemanticResidual(channels), _SemanticResidual(channels)])
        self.conv = Conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.res_units:
            x = unit(x)
        return self.conv(x)


class SemanticEncoder(nn.Module):
    """RepCodec Encoder (ELU residual units): (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = Conv(channels, channels, 3, bias=False)
        self.conv_blocks = nn.ModuleList([_SemanticBlock(channels), _SemanticBlock(channels)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        for block in self.conv_blocks:
            x = block(x)
        return x


class SemanticDecoder(nn.Module):
    """RepCodec Decoder: training only (reconstructs HuBERT features); here so the checkpoint loads strictly."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = Conv(channels, channels, 3, bias=False)
        self.conv_blocks = nn.ModuleList([_SemanticBlock(channels), _SemanticBlock(channels)])
        self.conv2 = Conv(channels, channels, 3, bias=False)


class Codebook(nn.Module):
    """One RVQ codebook; all buffers (EMA training state included) as in the official EuclideanCodebook."""

    def __init__(self, bins: int, dim: int):
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(bins))
        self.register_buffer("embed", torch.randn(bins, dim))
        self.register_buffer("embed_avg", torch.zeros(bins, dim))

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor[N, D] -> LongTensor[N]: the official distance -(|x|² - 2x·e + |e|²), argmax."""
        embed = self.embed.t()
        distance = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))
        return distance.argmax(dim=-1)


class _VQ(nn.Module):
    def __init__(self, bins: int, dim: int):
        super().__init__()
        self._codebook = Codebook(bins, dim)


class _RVQLayers(nn.Module):
    def __init__(self, codebooks: int, bins: int, dim: int):
        super().__init__()
        self.layers = nn.ModuleList([_VQ(bins, dim) for _ in range(codebooks)])


class ResidualQuantizer(nn.Module):
    """The official ResidualVectorQuantizer's inference behaviour (key names `vq.layers.{i}._codebook.*`)."""

    def __init__(self, codebooks: int, bins: int, dim: int):
        super().__init__()
        self.vq = _RVQLayers(codebooks, bins, dim)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: LongTensor[B, K, T] -> summed embeddings Tensor[B, dim, T] (codebooks 0..K-1 in order)."""
        total = 0.0
        for k in range(codes.shape[1]):
            total = total + F.embedding(codes[:, k], self.vq.layers[k]._codebook.embed)
        return total.transpose(1, 2)

    def quantize(self, x: torch.Tensor, codebooks: int) -> torch.Tensor:
        """x: Tensor[B, dim, T] -> codes LongTensor[B, codebooks, T] by residual nearest neighbours."""
        residual = x.transpose(1, 2)
        batch, frames, dim = residual.shape
        codes = []
        for k in range(codebooks):
            codebook = self.vq.layers[k]._codebook
            index = codebook.nearest(residual.reshape(-1, dim)).reshape(batch, frames)
            residual = residual - F.embedding(index, codebook.embed)
            codes.append(index)
        return torch.stack(codes, dim=1)


class SoundStream(nn.Module):
    """xcodec_mini. `hubert_config` is a transformers HubertConfig; HuBERT's weights come with the codec checkpoint."""

    def __init__(self, config: CodecConfig, hubert_config):
        super().__init__()
        from transformers import HubertModel

        self.config = config
        c = config
        self.encoder = AcousticEncoder(c.encoder_dim, c.ratios, c.D)
        self.encoder_semantic = SemanticEncoder(c.semantic_dim)
        self.decoder_semantic = SemanticDecoder(c.semantic_dim)
        self.quantizer = ResidualQuantizer(c.codebooks, c.bins, c.codebook_dim)
        self.decoder_2 = AcousticDecoder(c.D, c.decoder_channels, c.ratios)
        self.semantic_model = HubertModel(hubert_config)
        self.fc_prior = nn.Linear(c.codebook_dim, c.codebook_dim)
        self.fc_post1 = nn.Linear(c.codebook_dim, c.semantic_dim)
        self.fc_post2 = nn.Linear(c.codebook_dim, c.D)

    ENCODE_ONLY = ("encoder", "encoder_semantic", "decoder_semantic", "semantic_model", "fc_prior", "fc_post1")

    def drop_encoder(self) -> "SoundStream":
        """Free the parts decoding never uses (HuBERT, both encoders, training-only parts: 87% of the weights)."""
        for name in self.ENCODE_ONLY:
            setattr(self, name, None)
        return self

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: LongTensor[B, K, T] -> Tensor[B, 1024, T], the summed RVQ embedding (the upsampler's input)."""
        return self.quantizer.embed(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: LongTensor[B, K, T] -> 16 kHz waveform Tensor[B, 1, hop * T]."""
        return self.decode_embedding(self.embed(codes))

    def decode_embedding(self, embedding: torch.Tensor) -> torch.Tensor:
        """Summed RVQ embedding Tensor[B, 1024, T] -> 16 kHz waveform Tensor[B, 1, hop * T] (fc_post2, decoder_2)."""
        return self.decoder_2(self.fc_post2(embedding.transpose(1, 2)).transpose(1, 2))

    def semantic_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: Tensor[B, 1, N] -> mean of HuBERT's hidden states (embeddings + every layer), Tensor[B, T', C]."""
        padded = F.pad(x[:, 0, :], (HUBERT_PAD, HUBERT_PAD))
        hidden = self.semantic_model(padded, output_hidden_states=True).hidden_states
        return torch.stack(hidden, dim=1).mean(dim=1)

    def encode(self, x: torch.Tensor, n_codebooks: int = 1) -> torch.Tensor:
        """x: 16 kHz waveform Tensor[B, 1, N] (raw, not normalised) -> codes LongTensor[B, n_codebooks, T].

        T = N / 320 when N is a multiple of 320; otherwise HuBERT's frame count, floor((N + 320 - 400) / 320) + 1.
        The official reference-audio prompt uses 1 codebook (target_bw 0.5).
        """
        if self.encoder is None:
            raise RuntimeError("this codec was loaded for decoding only (drop_encoder); load it again to encode")
        if not 1 <= n_codebooks <= self.config.codebooks:
            raise ValueError(f"codebooks must be 1..{self.config.codebooks}, got {n_codebooks}")
        semantic = self.encoder_semantic(self.semantic_features(x).transpose(1, 2))
        acoustic = self.encoder(x)
        if acoustic.shape[2] != semantic.shape[2]:
            # the official fallback: encode the padded waveform so both branches have the same frame count
            acoustic = self.encoder(F.pad(x[:, 0, :], (HUBERT_PAD, HUBERT_PAD))[:, None, :])
        latent = self.fc_prior(torch.cat([acoustic, semantic], dim=1).transpose(1, 2)).transpose(1, 2)
        return self.quantizer.quantize(latent, n_codebooks)
