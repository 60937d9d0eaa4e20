"""yue.codec.xcodec: the xcodec length contracts, the summed RVQ embedding, encode/decode and the residual quantiser,
through transformers' XcodecModel (tests/weights/test_codec_layout.py compares it with the official modules)."""
import numpy as np
import pytest
import torch

from yue import rates
from yue.codec import render
from yue.codec.xcodec import CodecConfig
from yue.weights.codec_loading import load_codec


@pytest.fixture(scope="module")
def codec(tiny_dir):
    return load_codec(tiny_dir / "xcodec_mini_infer")


def test_official_config_derives_the_named_rates():
    """The official sizes give hop 320, 50 frames/s, 12 codebooks of 1024 and 1024-dim codebook vectors."""
    config = CodecConfig()
    assert (config.sample_rate, config.hop, config.frame_rate) == (rates.CODEC_RATE, rates.CODEC_HOP, rates.FRAME_RATE)
    assert (config.codebooks, config.bins, config.codebook_dim) == (rates.CODEBOOKS, rates.CODEBOOK_SIZE, 1024)


def test_decode_gives_320_samples_per_frame(codec):
    """T frames decode to exactly 320·T samples (the stride-5 output_padding keeps every block exact)."""
    with torch.inference_mode():
        for frames in (1, 37):
            codes = torch.randint(0, 1024, (2, 8, frames))
            assert codec.decode(codes).shape == (2, 1, 320 * frames)
            assert codec.embed(codes).shape == (2, codec.config.codebook_dim, frames)


def test_embedding_is_the_sum_of_codebook_rows(codec):
    """embed(codes) = Σ_k embed_k[codes[k]], transposed to channels-first; decode = decoder_2(fc_post2(embed))."""
    codes = torch.randint(0, 1024, (1, 3, 5))
    books = [q.codebook.embed for q in codec.model.quantizer.quantizers]
    expected = sum(books[k][codes[0, k]] for k in range(3)).T
    torch.testing.assert_close(codec.embed(codes)[0], expected)
    with torch.inference_mode():
        by_hand = codec.model.acoustic_decoder(codec.model.fc2(expected.T)[None].transpose(1, 2))
        torch.testing.assert_close(codec.decode(codes), by_hand)
        torch.testing.assert_close(codec.decode_embedding(expected[None]), by_hand)


def test_encode_frame_count_and_padded_fallback(codec):
    """N a multiple of 320 gives N/320 frames; other N take the official padded fallback (32 123 -> 101)."""
    with torch.inference_mode():
        assert codec.encode(torch.randn(1, 1, 320 * 50) * 0.1, 4).shape == (1, 4, 50)
        assert codec.encode(torch.randn(1, 1, 32123) * 0.1, 1).shape == (1, 1, 101)


def test_encode_is_residual_nearest_neighbour_of_the_fused_latent(codec):
    """encode = RVQ of fc_prior([acoustic ; RepCodec(mean of the 13 HuBERT hidden states of x padded 160/160)])."""
    x = torch.randn(1, 1, 320 * 20) * 0.1
    model = codec.model
    with torch.inference_mode():
        padded = torch.nn.functional.pad(x[:, 0], (160, 160))
        hidden = model.semantic_model(padded, output_hidden_states=True).hidden_states
        assert len(hidden) == model.semantic_model.config.num_hidden_layers + 1
        semantic = model.encoder_semantic(torch.stack(hidden).mean(0).transpose(1, 2))
        latent = model.fc(torch.cat([model.acoustic_encoder(x), semantic], 1).transpose(1, 2))[0]
        codes = codec.encode(x, 2)[0]
    books = [q.codebook.embed for q in model.quantizer.quantizers[:2]]
    first = torch.cdist(latent, books[0]).argmin(1)
    second = torch.cdist(latent - books[0][first], books[1]).argmin(1)
    assert torch.equal(codes, torch.stack([first, second]))


def test_quantiser_finds_codebook_entries_exactly(codec):
    """A latent equal to entries of codebook 0 quantises to those codes."""
    quantizer = codec.model.quantizer
    entries = torch.tensor([5, 900, 17])
    latent = quantizer.quantizers[0].codebook.embed[entries].T[None]
    assert quantizer.encode(latent, bandwidth=0.5)[0, 0].tolist() == [5, 900, 17]


def test_any_codebook_count_is_the_head_of_a_wider_encoding(codec):
    """XcodecModel takes only the official bandwidths (1, 2, 3, 4, 8, 12 codebooks); 5..7 and 9..11 are the first
    codes of the next wider one, which is the n-codebook residual quantisation itself."""
    x = torch.randn(1, 1, 320 * 10) * 0.1
    with torch.inference_mode():
        twelve = codec.encode(x, 12)
        for n in range(1, 13):
            assert torch.equal(codec.encode(x, n), twelve[:, :n])
    assert [codec.config.bandwidth(n) for n in (1, 4, 5, 8, 9)] == [0.5, 2, 4, 4, 6]


def test_encode_then_decode_round_trip_runs(codec):
    """1 s of audio encodes to (8, 50) codes in range and decodes back to 1 s at 16 kHz."""
    wav = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.3
    codes = render.encode_codes(codec, wav, 8)
    assert codes.shape == (8, 50) and codes.min() >= 0 and codes.max() < 1024
    assert render.decode_16k(codec, codes).shape == (16000,)


def test_codebook_count_is_checked(codec):
    """Asking for more codebooks than the model has names the valid range."""
    with pytest.raises(ValueError, match="codebooks must be 1..12"):
        codec.encode(torch.zeros(1, 1, 3200), 13)


def test_decode_only_codec_decodes_the_same_and_loads_the_encoder_to_encode(tiny_dir, codec):
    """A decode-only load decodes the same as a whole one; its first encode loads the encoding parts, and then
    encodes the same too. A codec whose encoder was dropped without a source says how to get it back."""
    light = load_codec(tiny_dir / "xcodec_mini_infer", decode_only=True)
    codes = np.random.default_rng(3).integers(0, 1024, (8, 20))
    np.testing.assert_array_equal(render.decode_16k(light, codes), render.decode_16k(codec, codes))
    assert light.model.semantic_model is None and not light.encoder_loaded
    x = torch.randn(1, 1, 3200) * 0.1
    with torch.inference_mode():
        assert torch.equal(light.encode(x, 4), codec.encode(x, 4))
    assert light.encoder_loaded
    light.drop_encoder()
    with pytest.raises(RuntimeError, match="decoding only"):
        light.encode(x, 1)
