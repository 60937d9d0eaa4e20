"""yue.codec.render: codes -> 16 kHz / 44.1 kHz audio; chunked decoding equals one pass; the song has three stems."""
import numpy as np
import pytest

from yue.codec import render
from yue.weights.codec_loading import load_codec, load_vocoder


@pytest.fixture(scope="module")
def parts(tiny_dir):
    folder = tiny_dir / "xcodec_mini_infer"
    return load_codec(folder), load_vocoder(folder, "vocal"), load_vocoder(folder, "instrumental")


def test_chunked_decoding_equals_one_pass(parts):
    """Chunks of 200 frames with 32 frames of context on each side match a whole decode to float rounding
    (< 1e-6 here; 1.4e-7 for the full-size decoder and 0 for the full-size Vocos, measured with random weights)."""
    codec, vocal, _ = parts
    codes = np.random.default_rng(0).integers(0, 1024, (8, 650))
    for decode in (lambda c, n: render.decode_16k(codec, c, n), lambda c, n: render.upsample_44k(codec, vocal, c, n)):
        whole, pieces = decode(codes, 10**6), decode(codes, 200)
        assert whole.shape == pieces.shape
        assert np.abs(whole - pieces).max() < 1e-6


def test_decoding_from_a_frame_equals_the_tail_of_a_whole_decode(parts):
    """`first=F` returns the samples of frames F.. only (decoded with CONTEXT_FRAMES before F), equal to the same
    samples of a whole decode to float rounding; without that context they would differ."""
    codec, vocal, _ = parts
    codes = np.random.default_rng(2).integers(0, 1024, (8, 300))
    for decode, hop in ((lambda **k: render.decode_16k(codec, codes, **k), 320),
                        (lambda **k: render.upsample_44k(codec, vocal, codes, **k), 882)):
        whole, tail = decode(), decode(first=170, chunk=60)
        assert tail.shape == (hop * 130,)
        assert np.abs(whole[hop * 170:] - tail).max() < 1e-6
        assert np.abs(whole[hop * 170:] - decode(first=170, context=0)).max() > 1e-4


def test_song_lengths_follow_the_frame_count(parts):
    """T frames give 320·T samples at 16 kHz and 882·T at 44.1 kHz; the song's three stems share that length."""
    codec, vocal, instrumental = parts
    codes = np.random.default_rng(1).integers(0, 1024, (8, 40))
    assert render.decode_codes(codec, codes)[0].shape == (320 * 40,)
    samples, rate = render.decode_codes(codec, codes, vocal)
    assert samples.shape == (882 * 40,) and rate == 44100
    mix, v, i = render.render_song(codec, vocal, instrumental, codes, codes[::-1] % 1024)
    assert mix.shape == v.shape == i.shape == (882 * 40,)
    assert np.abs(mix).max() <= 0.99


def test_bad_codes_are_refused(parts):
    """Codes outside 0..1023 are refused before decoding."""
    with pytest.raises(ValueError, match="0..1023"):
        render.decode_16k(parts[0], np.full((8, 3), 1024))


def test_merge_inputs_are_limited_as_the_official_files(parts, monkeypatch):
    """The band merge sees each 16 kHz track clamped to ±0.99 before summing, and the vocoder mix clamped to ±0.99
    (as the official recons and vocoder-mix files were written before post-processing)."""
    codec, vocal, instrumental = parts
    seen = {}

    def spy(recon, vocoded):
        seen.update(recon=recon, vocoded=vocoded)
        return vocoded

    monkeypatch.setattr(render, "merge_bands", spy)
    monkeypatch.setattr(render, "decode_16k", lambda c, codes: np.full(320 * codes.shape[1], 3.0, np.float32))
    monkeypatch.setattr(render, "upsample_44k", lambda c, v, codes: np.full(882 * codes.shape[1], 0.7, np.float32))
    codes = np.zeros((8, 4), np.int64)
    render.render_song(codec, vocal, instrumental, codes, codes)
    np.testing.assert_allclose(seen["recon"], 1.98)
    np.testing.assert_allclose(seen["vocoded"], 0.99)


def test_full_size_receptive_fields_fit_in_the_chunk_context():
    """At the official sizes, changing one frame changes the 16 kHz decoder's and the Vocos upsampler's output only
    within CONTEXT_FRAMES frames of it, so chunks with that much context on each side reproduce a whole decode."""
    import torch
    from transformers import HubertConfig, XcodecModel
    from transformers.models.dac.modeling_dac import DacDecoder

    from yue.codec.xcodec import CodecConfig
    from yue.codec.vocoder import Vocoder, VocoderConfig

    torch.manual_seed(0)
    config = CodecConfig()
    decoder = DacDecoder(config.xcodec_config(HubertConfig()).acoustic_model_config)
    XcodecModel._adjust_dac_decoder(decoder)  # as XcodecModel builds it: odd strides' output_padding, no tanh
    vocoder = Vocoder(VocoderConfig()).eval()
    models = ((decoder.eval(), config.D, config.hop), (vocoder, vocoder.config.input_channels, vocoder.config.hop_length))
    frames, frame = 2 * render.CONTEXT_FRAMES + 9, render.CONTEXT_FRAMES + 4
    with torch.inference_mode():
        for model, channels, hop in models:
            x = torch.randn(1, channels, frames)
            changed = x.clone()
            changed[..., frame] += 1.0
            difference = (model(changed) - model(x)).reshape(-1).abs()
            touched = torch.nonzero(difference > 0).flatten()
            first, last = touched.min().item() // hop, touched.max().item() // hop
            assert frame - render.CONTEXT_FRAMES <= first and last <= frame + render.CONTEXT_FRAMES, (first, last)
            assert last - first >= 8  # the test does see a real receptive field


def test_windowed_encoding_gives_one_pass_frame_counts(parts):
    """Encoding in windows gives as many frames as one pass, for lengths on and off a frame boundary; a file no
    longer than a window and its context is one pass, code for code."""
    import torch

    codec = parts[0]
    rng = np.random.default_rng(4)
    for length in (320 * 230, 320 * 230 + 77, 32123):
        samples = (0.1 * rng.standard_normal(length)).astype(np.float32)
        with torch.inference_mode():
            whole = codec.encode(torch.as_tensor(samples).reshape(1, 1, -1), 2)[0].numpy()
        assert render.encode_codes(codec, samples, 2, window=40, context=12).shape == whole.shape
        np.testing.assert_array_equal(render.encode_codes(codec, samples, 2, window=length // 320, context=12), whole)


def test_windowed_encoding_places_every_window_where_it_belongs(parts, monkeypatch):
    """With a local semantic branch (a projection of each 400-sample HuBERT frame, where HuBERT itself normalises
    over and attends to its whole input), windows with enough context give exactly the one-pass codes; without
    context they do not."""
    import torch
    import torch.nn.functional as F

    codec = parts[0]
    projection = torch.randn(400, codec.config.semantic_dim, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(codec.model, "_extract_semantic_features",
                        lambda x: F.pad(x[:, 0, :], (160, 160)).unfold(1, 400, 320) @ projection)
    samples = (0.1 * np.random.default_rng(5).standard_normal(320 * 230 + 77)).astype(np.float32)
    with torch.inference_mode():
        whole = codec.encode(torch.as_tensor(samples).reshape(1, 1, -1), 4)[0].numpy()
    np.testing.assert_array_equal(render.encode_codes(codec, samples, 4, window=40, context=30), whole)
    assert (render.encode_codes(codec, samples, 4, window=40, context=0) != whole).any()


def test_audio_shorter_than_one_frame_is_refused_and_one_frame_encodes(parts):
    """16 or 100 samples (the issue's 'Calculated padded input size …' from the codec's convolutions) are refused
    naming the minimum, 320 samples (one frame); 320 samples give one frame."""
    codec = parts[0]
    for length in (16, 100):
        with pytest.raises(ValueError, match=f"audio of {length} samples is too short to encode: the codec needs at "
                                             "least 320 samples \\(20 ms, one frame\\)"):
            render.encode_codes(codec, np.full(length, 0.1, np.float32))
    assert render.encode_codes(codec, np.full(320, 0.1, np.float32)).shape == (1, 1)
