"""yue.rows through `Pipeline.stream_takes(on_row=)`: each take's audio handed on row by row while stage 1 goes on,
the same codes and song as a run without it, pieces that join without gap into the song, and a Stop that keeps
what was heard and goes on to the uncut song."""
from dataclasses import replace

import numpy as np
import pytest

from yue import Cancelled, Pipeline, Sampling, SongRequest
from yue.codec.stream import HOLD_FRAMES
from yue.config import Stage2Config
from yue.rates import OUTPUT_HOP
from yue.weights.loading import load_models

LYRICS = "[verse]\nhello there\n\n[chorus]\nla la la"
# ~150 frames a section, rows of 50 frames: three rows a section, made while stage 1 goes on (seconds on 2 cores)
ROWS = Stage2Config(chunk_frames=50)
SAMPLING = Sampling(max_new_tokens=300, min_new_tokens=280)
REQUEST = SongRequest("pop", LYRICS, "all", sampling=SAMPLING, seed=5)


def pipeline_at(tiny_dir, precision: str) -> Pipeline:
    return Pipeline(load_models(stage1=tiny_dir / "s1", stage2=tiny_dir / "s2", codec=tiny_dir / "xcodec_mini_infer",
                                precision=precision), ROWS)


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def pipeline(request, tiny_dir):
    return pipeline_at(tiny_dir, request.param)


def streamed(pipeline: Pipeline, request: SongRequest, **kwargs):
    """(every yield of stream_takes with on_row, the pieces in order, the number of pieces before each yield)."""
    pieces, yields, before = [], [], []
    for songs in pipeline.stream_takes(request, on_row=pieces.append, **kwargs):
        yields.append(songs)
        before.append(len(pieces))
    return yields, pieces, before


def joined(pieces, take: int = 0) -> dict[str, np.ndarray]:
    mine = [piece for piece in pieces if piece.take == take]
    starts = [piece.start for piece in mine]
    assert starts == [0] + list(np.cumsum([piece.frames for piece in mine])[:-1]), "pieces join without gap"
    return {name: np.concatenate([getattr(piece, name) for piece in mine]) for name in ("mix", "vocal", "instrumental")}


def test_streamed_rows_make_the_song_of_a_run_without_them(pipeline):
    """Same seed, fp32 and bf16 on the CPU: codes equal, the finished song's audio sample for sample; the pieces
    come while stage 1 of their section still runs (before its song is yielded), and joined they are the finished
    stems (float rounding) and its mix up to the provisional low-band gain each piece states."""
    plain = list(pipeline.stream_takes(REQUEST))
    yields, pieces, before = streamed(pipeline, REQUEST)
    assert len(yields) == len(plain) == 2
    for ours, theirs in zip(yields, plain):
        np.testing.assert_array_equal(ours[0].codes.vocal, theirs[0].codes.vocal)
        np.testing.assert_array_equal(ours[0].codes.instrumental, theirs[0].codes.instrumental)
        np.testing.assert_array_equal(ours[0].mix, theirs[0].mix)
        np.testing.assert_array_equal(ours[0].vocal, theirs[0].vocal)
    song = yields[-1][0]
    during = [piece for piece in pieces[:before[0]] if piece.during]  # heard before stage 1 of section 1 ended
    assert len(during) >= 2 and pieces[0] is during[0] and (pieces[0].section, pieces[0].row) == (0, 0)
    assert sum(piece.frames for piece in during) >= 2 * ROWS.chunk_frames - HOLD_FRAMES  # rows 1 and 2 at least
    audio = joined(pieces)
    assert audio["mix"].size == song.mix.size == song.codes.frames * OUTPUT_HOP
    np.testing.assert_allclose(audio["vocal"], song.vocal, atol=1e-5)
    np.testing.assert_allclose(audio["instrumental"], song.instrumental, atol=1e-5)
    assert pieces[-1].provisional is False and all(piece.provisional for piece in pieces[:-1])
    # the mix's low band: the piece's gain where the finished song has the whole song's
    renderer = pipeline.renderer()
    renderer.render(song.codes.vocal, song.codes.instrumental)
    low = np.clip(renderer.state.bands[0], -1.0, 1.0)
    for piece in pieces:
        cut = slice(piece.start * OUTPUT_HOP, (piece.start + piece.frames) * OUTPUT_HOP)
        expected = song.mix[cut] + low[cut] * np.float32(piece.low_gain - renderer.low_gain)
        np.testing.assert_allclose(piece.mix, np.clip(expected, -0.99, 0.99), atol=1e-5)


def test_each_take_streams_its_own_song(tiny_dir):
    """Two takes in one batch: each take's pieces, joined, are that take's finished stems."""
    pipeline = pipeline_at(tiny_dir, "fp32")
    yields, pieces, _ = streamed(pipeline, replace(REQUEST, takes=2, segments=1))
    assert {piece.take for piece in pieces} == {0, 1}
    for take, song in enumerate(yields[-1]):
        np.testing.assert_allclose(joined(pieces, take)["vocal"], song.vocal, atol=1e-5)
    assert not np.array_equal(yields[-1][0].codes.vocal, yields[-1][1].codes.vocal)


def test_a_stop_keeps_what_was_heard_and_goes_on_to_the_uncut_song(tiny_dir):
    """Stop after the second piece of section 1: `Cancelled.heard` is the song through the rows heard (its stems
    begin with the pieces), and going on from `Cancelled.state` (with on_row) makes the uncut song and streams the
    rest from where the listener stopped."""
    pipeline = pipeline_at(tiny_dir, "fp32")
    whole = list(pipeline.stream_takes(REQUEST))[-1][0]
    pieces = []
    with pytest.raises(Cancelled) as stop:
        for _ in pipeline.stream_takes(REQUEST, on_row=pieces.append, cancel=lambda: len(pieces) >= 2):
            pass
    assert len(pieces) == 2 and stop.value.state.section == 0 and stop.value.state.stage == "stage1"
    heard_frames = sum(piece.frames for piece in pieces)
    mix, vocal, _ = stop.value.heard[0]
    assert vocal.size >= heard_frames * OUTPUT_HOP
    np.testing.assert_allclose(vocal[:heard_frames * OUTPUT_HOP], joined(pieces)["vocal"], atol=1e-5)
    rest = []
    yields = list(pipeline.stream_takes(REQUEST, resume=stop.value.state, on_row=rest.append))
    np.testing.assert_array_equal(yields[-1][0].codes.vocal, whole.codes.vocal)
    np.testing.assert_array_equal(yields[-1][0].mix, whole.mix)
    assert rest[0].start == 0  # a new call hears its song from the start: the app plays it from there
