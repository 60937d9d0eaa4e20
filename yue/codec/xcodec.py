"""xcodec_mini (`SoundStream`, 16 kHz, 50 frames/s, 12 x 1024 RVQ, SPEC §5) as transformers' `XcodecModel`.

decode: codes -> summed codebook embeddings -> fc_post2 -> acoustic decoder -> 16 kHz waveform.
encode: waveform -> [acoustic encoder ; semantic encoder(mean of HuBERT hidden states)] -> fc_prior -> residual
nearest-neighbour quantisation.

transformers holds every part, with the official behaviour (tests/weights/test_codec_layout.py compares them
with our former re-implementation of the official modules: within 1e-5, measured 0): the DAC acoustic encoder and
decoder (`DacEncoder`, `DacDecoder`, with XcodecModel's output_padding on the odd strides and no final tanh, as
xcodec's local DAC copy), HuBERT, the RepCodec semantic encoder, the residual VQ (`XcodecResidualVectorQuantization`)
and the projections (`fc` = fc_prior, `fc2` = fc_post2). yue.weights.codec_layout maps the official checkpoint's
names onto them. What is ours here: the official config (CodecConfig), the summed embedding the upsamplers take,
encoding with any codebook count, and which parts are loaded: decoding needs 13% of the weights (no HuBERT),
encoding the rest, and the training-only parts (`decoder_semantic`, `fc_post1`) are never kept.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import torch
from torch import nn

from ..rates import CODEBOOK_SIZE, CODEC_RATE

HUBERT_PAD = 160  # the semantic branch pads half a frame on each side so HuBERT's frames line up with the codec's
BITS_PER_CODE = 10  # log2(1024): each codebook adds 0.5 kbps at 50 frames/s
# XcodecModel's parts by use (its attribute names). The quantizer serves both ways.
DECODE_PARTS = ("quantizer", "fc2", "acoustic_decoder")
ENCODE_PARTS = ("acoustic_encoder", "encoder_semantic", "semantic_model", "fc")
TRAINING_PARTS = ("decoder_semantic", "fc1")  # in the official checkpoint, never run at inference
_ENCODER_LOCK = threading.Lock()  # two requests that both encode first load the encoding parts once


@dataclass(frozen=True)
class CodecConfig:
    """Sizes of the model. The first six fields are the official config.yaml `generator.config`; the rest are fixed
    in the official code and only change for the tiny test model."""

    sample_rate: int = CODEC_RATE
    ratios: tuple[int, ...] = (8, 5, 4, 2)  # encoder strides (decoder in the same order): hop 320
    D: int = 256  # acoustic latent channels
    bins: int = CODEBOOK_SIZE  # codes per codebook
    target_bandwidths: tuple[float, ...] = (0.5, 1, 1.5, 2, 4, 6)  # kbps; the last one sets the codebook count (12)
    n_filters: int = 32  # unused by the model (kept: it is in the official config)
    encoder_dim: int = 64  # DAC encoder d_model, fixed in the official code (not in config.yaml)
    decoder_channels: int = 1024  # DAC decoder width, fixed in the official code
    semantic_dim: int = 768  # HuBERT hidden size = RepCodec channels, fixed in the official code

    @property
    def hop(self) -> int:
        return math.prod(self.ratios)

    @property
    def frame_rate(self) -> int:
        return math.ceil(self.sample_rate / self.hop)

    @property
    def codebooks(self) -> int:
        """The official n_q: 1000 * top bandwidth // (frame rate * 10 bits)."""
        return int(1000 * self.target_bandwidths[-1] // (self.frame_rate * BITS_PER_CODE))

    @property
    def codebook_dim(self) -> int:
        """Codebook vectors concatenate the acoustic and semantic latents (256 + 768 = 1024)."""
        return self.D + self.semantic_dim

    def bandwidth(self, codebooks: int) -> float:
        """The smallest official bandwidth that encodes at least `codebooks` codebooks (kbps)."""
        per_codebook = self.frame_rate * BITS_PER_CODE / 1000
        return min(b for b in self.target_bandwidths if b >= codebooks * per_codebook)

    def xcodec_config(self, hubert_config):
        """The transformers XcodecConfig of these sizes; `hubert_config` is the semantic model's HubertConfig."""
        from transformers import XcodecConfig

        if hubert_config.hidden_size != self.semantic_dim:
            raise ValueError(f"the HuBERT config's hidden_size ({hubert_config.hidden_size}) must equal the codec's "
                             f"semantic_dim ({self.semantic_dim})")
        acoustic = dict(encoder_hidden_size=self.encoder_dim, downsampling_ratios=list(self.ratios),
                        decoder_hidden_size=self.decoder_channels, upsampling_ratios=list(self.ratios),
                        hidden_size=self.D)
        return XcodecConfig(target_bandwidths=list(self.target_bandwidths), sample_rate=self.sample_rate,
                            codebook_size=self.bins, acoustic_model_config=acoustic,
                            semantic_model_config=hubert_config, return_dict=False)


class SoundStream(nn.Module):
    """xcodec_mini over a transformers XcodecModel (`.model`). Built with random weights; the loader
    (yue.weights.codec_loading) builds it without weights and fills the parts it keeps from the official checkpoint."""

    def __init__(self, config: CodecConfig, hubert_config):
        super().__init__()
        from transformers import XcodecModel

        self.config = config
        self.model = XcodecModel(config.xcodec_config(hubert_config)).eval()
        for layer in self.model.quantizer.quantizers:  # XcodecModel starts its codebooks at zero; random ones vary
            nn.init.normal_(layer.codebook.embed)
        self._encoder_source = None  # loads the encoding parts into this codec when they were left out

    @property
    def encoder_loaded(self) -> bool:
        return all(getattr(self.model, name) is not None for name in ENCODE_PARTS)

    def keep(self, parts: tuple[str, ...]) -> "SoundStream":
        """Free every part of the XcodecModel but `parts` (see DECODE_PARTS, ENCODE_PARTS)."""
        for name in (*DECODE_PARTS, *ENCODE_PARTS, *TRAINING_PARTS):
            if name not in parts:
                setattr(self.model, name, None)
        return self

    def drop_encoder(self, source=None) -> "SoundStream":
        """Free the parts decoding never uses (HuBERT, both encoders, training-only parts: 87% of the weights).
        `source(codec)`, when given, loads the encoding parts back on the first encode."""
        self._encoder_source = source
        return self.keep(DECODE_PARTS)

    def load_encoder(self) -> None:
        """Make sure the encoding parts are here: loaded once, on the first call that needs them."""
        with _ENCODER_LOCK:
            if self.encoder_loaded:
                return
            if self._encoder_source is None:
                raise RuntimeError("this codec was loaded for decoding only (drop_encoder); load it again to encode")
            # encode runs under inference mode: the weights loaded here must stay ordinary tensors that later
            # moves (.to) and other modes can use
            with torch.inference_mode(False), torch.no_grad():
                self._encoder_source(self)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: LongTensor[B, K, T] -> Tensor[B, 1024, T], the summed RVQ embedding of codebooks 0..K-1 (the
        upsamplers' input; the official `get_embed`)."""
        return self.model.quantizer.decode(codes.transpose(0, 1))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes: LongTensor[B, K, T] -> 16 kHz waveform Tensor[B, 1, hop * T]."""
        return self.model.decode(codes)

    def decode_embedding(self, embedding: torch.Tensor) -> torch.Tensor:
        """Summed RVQ embedding Tensor[B, 1024, T] -> 16 kHz waveform Tensor[B, 1, hop * T] (fc_post2, decoder)."""
        return self.model.acoustic_decoder(self.model.fc2(embedding.transpose(1, 2)).transpose(1, 2))

    def encode(self, x: torch.Tensor, n_codebooks: int = 1) -> torch.Tensor:
        """x: 16 kHz waveform Tensor[B, 1, N] (raw, not normalised) -> codes LongTensor[B, n_codebooks, T].

        T = N / 320 when N is a multiple of 320; otherwise HuBERT's frame count, floor((N + 320 - 400) / 320) + 1.
        The official reference-audio prompt uses 1 codebook (target_bw 0.5).
        """
        if not 1 <= n_codebooks <= self.config.codebooks:
            raise ValueError(f"codebooks must be 1..{self.config.codebooks}, got {n_codebooks}")
        self.load_encoder()
        # XcodecModel takes the official bandwidths only (1, 2, 3, 4, 8 or 12 codebooks). Residual quantisation picks
        # codebook k from the residual of codebooks 0..k-1, so the first n codes of a wider encoding are the n-code one.
        return self.model.encode(x, self.config.bandwidth(n_codebooks))[:, :n_codebooks]
