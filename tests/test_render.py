"""yue.render: codes -> 16 kHz / 44.1 kHz audio; chunked decoding equals one pass; the song has three stems."""
import numpy as np
import pytest

from yue import render
from yue.codec_loading import load_codec, load_vocoder


@pytest.fixture(scope="module")
def parts(tiny_dir):
    folder = tiny_dir / "xcodec_mini_infer"
    return load_codec(folder), load_vocoder(folder, "vocal"), load_vocoder(folder, "instrumental")


def test_chunked_decoding_equals_one_pass(parts):
    """Chunks of 200 frames with 32 frames of context on each side match a whole decode to float rounding."""
    codec, vocal, _ = parts
    codes = np.random.default_rng(0).integers(0, 1024, (8, 650))
    for decode in (lambda c, n: render.decode_16k(codec, c, n), lambda c, n: render.upsample_44k(codec, vocal, c, n)):
        whole, pieces = decode(codes, 10**6), decode(codes, 200)
        assert whole.shape == pieces.shape
        assert np.abs(whole - pieces).max() < 1e-6


def test_song_lengths_follow_the_frame_count(parts):
    codec, vocal, instrumental = parts
    codes = np.random.default_rng(1).integers(0, 1024, (8, 40))
    assert render.decode_codes(codec, codes)[0].shape == (320 * 40,)
    samples, rate = render.decode_codes(codec, codes, vocal)
    assert samples.shape == (882 * 40,) and rate == 44100
    mix, v, i = render.render_song(codec, vocal, instrumental, codes, codes[::-1] % 1024)
    assert mix.shape == v.shape == i.shape == (882 * 40,)
    assert np.abs(mix).max() <= 0.99


def test_bad_codes_are_refused(parts):
    with pytest.raises(ValueError, match="0..1023"):
        render.decode_16k(parts[0], np.full((8, 3), 1024))
