"""yue.codec.stream: the pieces of a growing song, joined, are one render of the whole song (gapless: no sample
missing, none twice, the decoders' and resampler's context respected), up to float rounding and the mix's
provisional low-band gain; a stream goes on from a render state in another process."""
import pickle

import numpy as np
import pytest

from yue.codec import render
from yue.codec.incremental import SongRenderer
from yue.codec.stream import HOLD_FRAMES, AudioStream, final_frames
from yue.rates import OUTPUT_HOP

from .test_incremental import TOLERANCE, parts  # noqa: F401 (the tiny codec fixture)

FRAMES = 420  # the song's frames in the end


@pytest.fixture(scope="module")
def song():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 1024, (8, FRAMES)) for _ in range(2)]


def pieces_of(stream: AudioStream, song, ends, complete_at_end=True) -> list:
    """The pieces a stream hands out as the song's final codes grow to each of `ends` frames."""
    out = []
    for end in ends:
        piece = stream.piece(song[0][:, :end], song[1][:, :end], complete_at_end and end == FRAMES)
        if piece is not None:
            out.append(piece)
    return out


def assert_joins_into(pieces, whole, low: np.ndarray, gain: float) -> None:
    """Pieces start where the one before ended from frame 0 to the song's end; their stems are the whole render's,
    their mix the whole render's with the piece's low-band gain in place of the whole song's."""
    assert [p.start for p in pieces] == [0] + list(np.cumsum([p.frames for p in pieces])[:-1])
    assert sum(p.frames for p in pieces) * OUTPUT_HOP == whole[0].size
    for name, stem in zip(("vocal", "instrumental"), whole[1:]):
        assert np.abs(np.concatenate([getattr(p, name) for p in pieces]) - stem).max() < TOLERANCE
    for p in pieces:
        cut = slice(p.start * OUTPUT_HOP, (p.start + p.frames) * OUTPUT_HOP)
        expected = np.clip(whole[0][cut] + low[cut] * np.float32(p.low_gain - gain), -0.99, 0.99)
        assert np.abs(p.mix - expected).max() < TOLERANCE


def whole_render(parts, song):
    renderer = SongRenderer(*parts)
    whole = renderer.render(*song)
    return whole, np.clip(renderer.state.bands[0], -1.0, 1.0), renderer.low_gain


def test_pieces_of_a_growing_song_join_into_one_render(parts, song):
    """Final codes growing 16-100 frames at a time (stage 2's pieces of rows): nothing is handed out until more than
    HOLD_FRAMES frames are final, every piece but the last is provisional, and joined they are render_song's."""
    whole, low, gain = whole_render(parts, song)
    assert np.abs(whole[1] - render.render_song(*parts, *song)[1]).max() < TOLERANCE
    stream = AudioStream(*parts)
    assert stream.piece(song[0][:, :HOLD_FRAMES], song[1][:, :HOLD_FRAMES]) is None
    pieces = pieces_of(stream, song, (16, 50, 100, 116, 216, 300, 350, 400, FRAMES))
    assert pieces[0].frames == 50 - HOLD_FRAMES and not pieces[-1].provisional
    assert all(p.provisional for p in pieces[:-1])
    assert_joins_into(pieces, whole, low, gain)


def test_a_stream_goes_on_from_a_pickled_render_state(parts, song):
    """As a ZeroGPU call goes on from the one before: a new stream from the pickled render state of the song through
    a row, and the frames heard there, hands out the rest; with the first call's pieces it is the whole render."""
    whole, low, gain = whole_render(parts, song)
    first = AudioStream(*parts)
    pieces = pieces_of(first, song, (100, 200))
    heard = final_frames(200, complete=False)
    assert first.heard == heard
    state = pickle.loads(pickle.dumps(first.renderer.state))
    pieces += pieces_of(AudioStream(*parts, state=state, heard=heard), song, (300, FRAMES))
    assert_joins_into(pieces, whole, low, gain)
