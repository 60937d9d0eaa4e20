"""yue.codec.vocoder: 882 samples per frame at 44.1 kHz; transformers' ISTFT head inverts a 'same'-padded STFT and
splits magnitude and phase as Vocos does; our ConvNeXt backbone keeps the official names (no library block fits)."""
import math

import pytest
import torch

from yue.codec.vocoder import ConvNeXtBlock, Vocoder, VocoderConfig
from yue.weights import codec_layout


def test_vocoder_gives_882_samples_per_frame():
    """(B, C, T) embeddings give (B, 882·T) samples; the official sizes have the 81 state-dict entries."""
    vocoder = Vocoder(VocoderConfig(input_channels=48, dim=32, intermediate_dim=64, num_layers=2)).eval()
    with torch.inference_mode():
        for frames in (1, 25):
            assert vocoder(torch.randn(2, 48, frames)).shape == (2, 882 * frames)
    official = Vocoder()
    state = codec_layout.vocoder_to_official(official.state_dict(), official.head.window)
    assert len(state) == 81  # the official decoder files have 81 entries, the ISTFT window among them
    assert torch.equal(state[codec_layout.VOCODER_WINDOW], torch.hann_window(3528))


def _identity_head(bins: int):
    """The head of a vocoder whose backbone width is the n_fft + 2 spectrum channels, with an identity projection:
    its input is [log-magnitude ; phase] per frame."""
    config = VocoderConfig(input_channels=4, dim=2 * bins, intermediate_dim=8, num_layers=1)
    head = Vocoder(config).head.double()
    with torch.no_grad():
        head.linear.weight.copy_(torch.eye(2 * bins))
        head.linear.bias.zero_()
    return head


def test_head_inverts_a_same_padded_stft():
    """head([log|S| ; angle S]) = x when S is the STFT of x padded by (n_fft - hop)/2 on both sides, as Vocos'
    'same' padding assumes (away from the ends, where the window envelope is whole)."""
    n_fft, hop, frames = 3528, 882, 12
    x = 0.1 * torch.randn(1, hop * frames, dtype=torch.float64)
    pad = (n_fft - hop) // 2
    window = torch.hann_window(n_fft, dtype=torch.float64)
    spec = torch.stft(torch.nn.functional.pad(x, (pad, pad)), n_fft, hop, window=window, center=False,
                      return_complex=True)[..., :frames]
    features = torch.cat([spec.abs().log(), spec.angle()], dim=1).transpose(1, 2)  # (B, T, n_fft + 2)
    with torch.no_grad():
        y = _identity_head(n_fft // 2 + 1)(features)[:, 0]
    assert y.shape == x.shape
    torch.testing.assert_close(y[:, n_fft:-n_fft], x[:, n_fft:-n_fft], rtol=0, atol=1e-6)  # float32 window and irfft


def test_head_splits_magnitude_then_phase_and_clips_magnitude_at_100():
    """The first n_fft/2+1 channels are log-magnitudes, clipped at 100 after exp (10 gives what log(100) gives),
    the rest phases (swapping the halves changes the sound)."""
    bins = 3528 // 2 + 1
    head = _identity_head(bins)
    phase = torch.rand(1, 6, bins, dtype=torch.float64)
    with torch.no_grad():
        clipped = head(torch.cat([torch.full((1, 6, bins), 10.0, dtype=torch.float64), phase], dim=2))
        at_100 = head(torch.cat([torch.full((1, 6, bins), math.log(100), dtype=torch.float64), phase], dim=2))
        swapped = head(torch.cat([phase, torch.full((1, 6, bins), math.log(100), dtype=torch.float64)], dim=2))
    torch.testing.assert_close(clipped, at_100)
    assert (clipped - swapped).abs().max() > 1


def test_convnext_block_names_shapes_and_residual():
    """Vocos ConvNeXt block: official parameter names and shapes, γ = layer scale, and with γ = 0 it is identity."""
    block = ConvNeXtBlock(8, 24, layer_scale=1 / 8)
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes == {"gamma": (8,), "dwconv.weight": (8, 1, 7), "dwconv.bias": (8,), "norm.weight": (8,),
                      "norm.bias": (8,), "pwconv1.weight": (24, 8), "pwconv1.bias": (24,),
                      "pwconv2.weight": (8, 24), "pwconv2.bias": (8,)}
    assert torch.allclose(block.gamma, torch.full((8,), 1 / 8))
    x = torch.randn(2, 8, 30)
    assert block(x).shape == x.shape
    with torch.no_grad():
        block.gamma.zero_()
    assert torch.equal(block(x), x)


def test_transformers_convnext_block_cannot_run_the_official_weights():
    """transformers' one 1-D ConvNeXt block (Qwen3-Omni's code2wav) expands 4x: the official 1536-wide layers of a
    512 block do not load. At a width where it loads (ours at 4x), its causal depthwise conv gives other outputs
    than Vocos' centred one, so the backbone stays ours."""
    from transformers.models.qwen3_omni_moe.modeling_qwen3_omni_moe import Qwen3OmniMoeConvNeXtBlock

    official = ConvNeXtBlock(512, 1536, layer_scale=1 / 8).state_dict()
    renamed = {k.replace("dwconv.", "dwconv.conv."): v for k, v in official.items()}
    with pytest.raises(RuntimeError, match="size mismatch for pwconv1.weight"):
        Qwen3OmniMoeConvNeXtBlock(512).load_state_dict(renamed)
    ours, theirs = ConvNeXtBlock(8, 32, layer_scale=1.0).eval(), Qwen3OmniMoeConvNeXtBlock(8).eval()
    theirs.load_state_dict({k.replace("dwconv.", "dwconv.conv."): v for k, v in ours.state_dict().items()})
    x = torch.randn(1, 8, 20)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max() > 1e-2
