"""yue.codec.incremental: a growing song rendered piece by piece equals a whole render of the same codes, and the
decoders only run over the new and changed frames (plus their context)."""
import numpy as np
import pytest

from yue.codec import incremental, render
from yue.weights.codec_loading import load_codec, load_vocoder

ROW = 300  # stage 2's 6 s rows: a grown song may change the codes of its last, partial row

# The chunked decoders' rounding on the tiny codec (test_render.py: < 1e-6 per stem), after the band merge's RMS
# scale and the sum of bands
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def parts(tiny_dir):
    folder = tiny_dir / "xcodec_mini_infer"
    return load_codec(folder), load_vocoder(folder, "vocal"), load_vocoder(folder, "instrumental")


def grown(codes: list[np.ndarray], frames: int, rng) -> list[np.ndarray]:
    """The song grown to `frames`, as stage 2 grows it: whole rows kept, the last partial row and new frames new."""
    kept = codes[0].shape[1] // ROW * ROW
    return [np.concatenate([c[:, :kept], rng.integers(0, 1024, (8, frames - kept))], axis=1) for c in codes]


def assert_same_song(got, expected) -> None:
    for stem_got, stem_expected in zip(got, expected):
        assert stem_got.shape == stem_expected.shape
        assert np.abs(stem_got - stem_expected).max() < TOLERANCE


@pytest.mark.parametrize("rescale", [False, True])
def test_a_growing_song_equals_a_whole_render_at_every_section(parts, rescale):
    """Sections of 230-520 frames, each changing the last partial row: after every section the three stems equal
    render_song's on the same codes (clipped, or rescaled by the whole song's peak)."""
    rng = np.random.default_rng(0)
    renderer = incremental.SongRenderer(*parts, rescale=rescale)
    codes = [np.zeros((8, 0), np.int64)] * 2
    for frames in (230, 750, 1000, 1520):
        codes = grown(codes, frames, rng)
        assert_same_song(renderer.render(*codes), render.render_song(*parts, *codes, rescale=rescale))


def test_decoders_run_over_new_and_changed_frames_only(parts):
    """Each render decodes from CONTEXT_FRAMES before the first changed frame: in all, the song's frames plus at
    most one partial row and the context per section (a whole re-render per section would decode 3500 frames)."""
    rng = np.random.default_rng(1)
    renderer = incremental.SongRenderer(*parts)
    codes = [np.zeros((8, 0), np.int64)] * 2
    sections = (230, 750, 1000, 1520)
    for frames in sections:
        before, codes = renderer.decoded_frames, grown(codes, frames, rng)
        changed = incremental.first_change(renderer.codes, codes)
        renderer.render(*codes)
        assert renderer.decoded_frames - before == frames - max(0, changed - render.CONTEXT_FRAMES)
    assert renderer.decoded_frames <= sections[-1] + len(sections) * (ROW + render.CONTEXT_FRAMES)


def test_a_change_inside_the_song_is_rendered_again(parts):
    """Codes changed at frame 120 of 600 (not only at the end) are decoded again: the song equals a whole render,
    and differs from the old one after the change."""
    rng = np.random.default_rng(2)
    renderer = incremental.SongRenderer(*parts)
    codes = [rng.integers(0, 1024, (8, 600)) for _ in range(2)]
    old = renderer.render(*codes)
    codes[1][:, 120:130] = rng.integers(0, 1024, (8, 10))
    new = renderer.render(*codes)
    assert_same_song(new, render.render_song(*parts, *codes))
    assert np.abs(new[0][130 * 882:] - old[0][130 * 882:]).max() > 1e-3


def test_the_same_codes_again_and_a_shorter_song(parts):
    """The same codes give the same song (decoding only the context at the end); a song cut shorter equals a whole
    render of the cut codes."""
    rng = np.random.default_rng(3)
    renderer = incremental.SongRenderer(*parts)
    codes = [rng.integers(0, 1024, (8, 400)) for _ in range(2)]
    first = renderer.render(*codes)
    before = renderer.decoded_frames
    assert_same_song(renderer.render(*codes), first)
    assert renderer.decoded_frames - before == render.CONTEXT_FRAMES
    cut = [c[:, :260] for c in codes]
    assert_same_song(renderer.render(*cut), render.render_song(*parts, *cut))


def test_first_change():
    """The first frame where any track differs; the old length when the new codes only extend the old; 0 for a
    first song."""
    old = [np.zeros((8, 10), np.int64), np.zeros((8, 10), np.int64)]
    new = [np.zeros((8, 15), np.int64), np.zeros((8, 15), np.int64)]
    assert incremental.first_change(None, new) == 0
    assert incremental.first_change(old, new) == 10
    new[1][5, 7] = 1
    assert incremental.first_change(old, new) == 7
    assert incremental.first_change(old, [c[:, :4] for c in old]) == 4


def test_tracks_of_different_shapes_are_refused(parts):
    with pytest.raises(ValueError, match="one shape"):
        incremental.SongRenderer(*parts).render(np.zeros((8, 5), np.int64), np.zeros((8, 6), np.int64))


def test_a_stream_renders_its_songs_with_one_renderer(tiny_dir, monkeypatch):
    """Pipeline.stream keeps one renderer for all its sections, and every song it yields sounds as pipeline.render
    of the song's codes (the whole-song path), clipped or rescaled."""
    from yue import Pipeline, Sampling, SongRequest

    pipeline = Pipeline.tiny(tiny_dir)
    used = []
    original = incremental.SongRenderer.render

    def spy(self, *codes):
        used.append(self)
        return original(self, *codes)

    monkeypatch.setattr(incremental.SongRenderer, "render", spy)
    lyrics = "[verse]\nhello there\n\n[chorus]\nla la la\n\n[outro]\nbye"
    for rescale in (False, True):
        request = SongRequest("pop", lyrics, "all", sampling=Sampling(max_new_tokens=100, min_new_tokens=60), seed=5,
                              rescale=rescale)  # "all": all three sections
        used.clear()
        for song in pipeline.stream(request):
            assert_same_song((song.mix, song.vocal, song.instrumental), pipeline.render(song.codes, rescale))
        assert len(used) == 3 and len({id(renderer) for renderer in used}) == 1


def test_refused_codes_leave_the_renderer_as_it_was(parts):
    """A song whose instrumental codes are refused (outside 0..1023) changes nothing, not even its vocal track's
    audio: the next song, which keeps the old vocal codes, renders as if that call never happened."""
    rng = np.random.default_rng(6)
    renderer = incremental.SongRenderer(*parts)
    codes = [rng.integers(0, 1024, (8, 200)) for _ in range(2)]
    renderer.render(*codes)
    grown_codes = [np.concatenate([c, rng.integers(0, 1024, (8, 100))], axis=1) for c in codes]
    bad = [c.copy() for c in grown_codes]
    bad[0][:, 20:40] = rng.integers(0, 1024, (8, 20))
    bad[1][3, 150] = 1024
    with pytest.raises(ValueError, match="0..1023"):
        renderer.render(*bad)
    assert_same_song(renderer.render(*grown_codes), render.render_song(*parts, *grown_codes))


@pytest.mark.parametrize("rescale", [False, True])
def test_a_renderer_resumed_from_a_pickled_state_renders_what_a_kept_one_does(parts, rescale):
    """One section per process, as the app's ZeroGPU calls run: a fresh renderer resumed from the last render's
    state, after a pickle round trip, gives the same song as a renderer kept alive (bit for bit, with the same
    decoded-frame count) and as render_song, at every section."""
    import pickle

    rng = np.random.default_rng(7)
    kept = incremental.SongRenderer(*parts, rescale=rescale)
    state = None
    codes = [np.zeros((8, 0), np.int64)] * 2
    for frames in (230, 750, 1000, 1520):
        codes = grown(codes, frames, rng)
        resumed = incremental.SongRenderer(*parts, rescale=rescale, state=state)
        got = resumed.render(*codes)
        state = pickle.loads(pickle.dumps(resumed.state))
        expected = kept.render(*codes)
        for stem_got, stem_kept in zip(got, expected):
            np.testing.assert_array_equal(stem_got, stem_kept)
        assert state.decoded_frames == kept.decoded_frames
        assert_same_song(got, render.render_song(*parts, *codes, rescale=rescale))


def test_a_state_of_another_song_still_renders_the_new_song_whole(parts):
    """A state whose codes are another song's (they differ from frame 40, or from frame 0, or the song is shorter)
    is decoded from the first difference: the song equals a whole render of its own codes."""
    rng = np.random.default_rng(8)
    renderer = incremental.SongRenderer(*parts)
    other = [rng.integers(0, 1024, (8, 500)) for _ in range(2)]
    renderer.render(*other)
    state = renderer.state
    shared_start = [np.concatenate([c[:, :40], rng.integers(0, 1024, (8, 560))], axis=1) for c in other]
    unrelated = [rng.integers(0, 1024, (8, 300)) for _ in range(2)]
    for codes in (shared_start, unrelated, [c[:, :120] for c in unrelated]):
        resumed = incremental.SongRenderer(*parts, state=state)
        assert_same_song(resumed.render(*codes), render.render_song(*parts, *codes))


def test_a_state_is_a_snapshot_later_renders_leave_alone(parts):
    """Renders make new arrays: a state taken earlier still resumes its own song after the renderer moved on, and
    its arrays cannot be changed in place."""
    rng = np.random.default_rng(9)
    renderer = incremental.SongRenderer(*parts)
    codes = [rng.integers(0, 1024, (8, 300)) for _ in range(2)]
    renderer.render(*codes)
    early = renderer.state
    renderer.render(*[rng.integers(0, 1024, (8, 400)) for _ in range(2)])
    grown_codes = [np.concatenate([c, rng.integers(0, 1024, (8, 100))], axis=1) for c in codes]
    resumed = incremental.SongRenderer(*parts, state=early)
    assert_same_song(resumed.render(*grown_codes), render.render_song(*parts, *grown_codes))
    assert resumed.decoded_frames - early.decoded_frames == 100 + render.CONTEXT_FRAMES
    with pytest.raises(ValueError, match="read-only"):
        early.stems[0][0] = 1.0


def test_a_state_of_the_other_mode_or_broken_is_refused(parts):
    """A state made without rescale cannot resume a rescaling renderer (its bands hold the clipped mix), and a
    state whose audio does not match its codes is refused, each with a message that says what to pass instead."""
    rng = np.random.default_rng(10)
    renderer = incremental.SongRenderer(*parts)
    renderer.render(*[rng.integers(0, 1024, (8, 100)) for _ in range(2)])
    with pytest.raises(ValueError, match="rescale=False.*pass no state"):
        incremental.SongRenderer(*parts, rescale=True, state=renderer.state)
    from dataclasses import replace

    broken = replace(renderer.state, stems=(renderer.state.stems[0][:10], renderer.state.stems[1]))
    with pytest.raises(ValueError, match="inconsistent"):
        incremental.SongRenderer(*parts, state=broken)
    with pytest.raises(ValueError, match="render_state"):
        incremental.SongRenderer(*parts, state={"codes": None})


def test_stream_takes_one_section_per_call_goes_on_from_each_takes_render_state(tiny_dir):
    """Rescaled, 2 takes, one stream_takes call per section as the app makes them: each call gets the last songs'
    codes and render states, every song it yields sounds as pipeline.render of its codes, and its state has run
    the decoders over fewer frames than whole renders would; a wrong number of states is refused."""
    import pickle
    from dataclasses import replace

    from yue import Pipeline, Sampling, SongRequest

    pipeline = Pipeline.tiny(tiny_dir)
    lyrics = "[verse]\nhello there\n\n[chorus]\nla la la\n\n[outro]\nbye"
    request = SongRequest("pop", lyrics, sampling=Sampling(max_new_tokens=300, min_new_tokens=300), seed=5,
                          rescale=True, takes=2)
    songs, whole = None, 0
    for index in range(3):
        previous = None if songs is None else [song.codes for song in songs]
        states = None if songs is None else pickle.loads(pickle.dumps([song.render_state for song in songs]))
        *_, songs = pipeline.stream_takes(replace(request, segments=index + 1), previous=previous,
                                          render_states=states)
        whole += songs[0].codes.frames
        for song in songs:
            assert_same_song((song.mix, song.vocal, song.instrumental), pipeline.render(song.codes, rescale=True))
    assert all(song.render_state.decoded_frames < whole for song in songs)
    with pytest.raises(ValueError, match="1 render states for 2 takes"):
        next(pipeline.stream_takes(request, render_states=[None]))
