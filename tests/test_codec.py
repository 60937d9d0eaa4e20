"""yue.codec: the xcodec length contracts, encode/decode, and the residual quantiser."""
import numpy as np
import pytest
import torch

from yue import render
from yue.codec_loading import load_codec


@pytest.fixture(scope="module")
def codec(tiny_dir):
    return load_codec(tiny_dir / "xcodec_mini_infer")


def test_decode_gives_320_samples_per_frame(codec):
    codes = torch.randint(0, 1024, (2, 8, 37))
    with torch.inference_mode():
        assert codec.decode(codes).shape == (2, 1, 320 * 37)
        assert codec.embed(codes).shape == (2, codec.config.codebook_dim, 37)


def test_embedding_is_the_sum_of_codebook_rows(codec):
    codes = torch.randint(0, 1024, (1, 3, 5))
    layers = codec.quantizer.vq.layers
    expected = sum(layers[k]._codebook.embed[codes[0, k]] for k in range(3)).T
    torch.testing.assert_close(codec.embed(codes)[0], expected)


def test_encode_frame_count_and_padded_fallback(codec):
    """N a multiple of 320 gives N/320 frames; other N take the official padded fallback (32 123 -> 101)."""
    with torch.inference_mode():
        assert codec.encode(torch.randn(1, 1, 320 * 50) * 0.1, 4).shape == (1, 4, 50)
        assert codec.encode(torch.randn(1, 1, 32123) * 0.1, 1).shape == (1, 1, 101)


def test_quantiser_finds_codebook_entries_exactly(codec):
    """A latent equal to entry j of codebook 0 quantises to code j with residual zero for later codebooks."""
    quantizer = codec.quantizer
    entries = torch.tensor([5, 900, 17])
    latent = quantizer.vq.layers[0]._codebook.embed[entries].T[None]
    assert quantizer.quantize(latent, 1)[0, 0].tolist() == [5, 900, 17]


def test_encode_then_decode_round_trip_runs(codec):
    wav = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.3
    codes = render.encode_codes(codec, wav, 8)
    assert codes.shape == (8, 50) and codes.min() >= 0 and codes.max() < 1024
    assert render.decode_16k(codec, codes).shape == (16000,)


def test_codebook_count_is_checked(codec):
    with pytest.raises(ValueError, match="codebooks must be 1..12"):
        codec.encode(torch.zeros(1, 1, 3200), 13)


def test_decode_only_codec_decodes_the_same_and_refuses_to_encode(tiny_dir, codec):
    """Dropping the encoding parts leaves decoding unchanged; encoding then says how to get it back."""
    light = load_codec(tiny_dir / "xcodec_mini_infer", decode_only=True)
    codes = np.random.default_rng(3).integers(0, 1024, (8, 20))
    np.testing.assert_array_equal(render.decode_16k(light, codes), render.decode_16k(codec, codes))
    assert light.semantic_model is None
    with pytest.raises(RuntimeError, match="decoding only"):
        light.encode(torch.zeros(1, 1, 3200), 1)
