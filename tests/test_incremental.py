"""yue.incremental: a growing song rendered piece by piece equals a whole render of the same codes, and the decoders
only run over the new and changed frames (plus their context)."""
import numpy as np
import pytest

from yue import incremental, render
from yue.codec_loading import load_codec, load_vocoder

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
        request = SongRequest("pop", lyrics, None, sampling=Sampling(max_new_tokens=100, min_new_tokens=60), seed=5,
                              rescale=rescale)  # None: all three sections
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
