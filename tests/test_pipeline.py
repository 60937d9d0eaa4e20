"""yue.pipeline: one API from request to song; section streaming, continuation, cancellation and validation."""
from dataclasses import replace

import numpy as np
import pytest

from yue import Cancelled, Pipeline, Reference, Sampling, SongCodes, SongRequest, Stage1Tokens
from yue.weights.loading import load_models
from .bundles import with_stage2

LYRICS = "[verse]\nhello there\n\n[chorus]\nla la la\n\n[outro]\nbye"
FAST = Sampling(max_new_tokens=30, min_new_tokens=4)


@pytest.fixture(scope="module")
def token_pipeline(tiny_lm_dir):
    """Both LMs and the tokenizer, no codec: songs carry codes only (fast)."""
    return Pipeline(load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False))


def test_stream_yields_the_song_after_every_section(token_pipeline):
    songs = list(token_pipeline.stream(SongRequest("pop", LYRICS, "all", sampling=FAST, seed=3)))  # "all": every section
    assert [s.sections_done for s in songs] == [1, 2, 3]
    assert songs[-1].complete and not songs[0].complete
    frames = [s.codes.frames for s in songs]
    assert frames == sorted(frames) and len(songs[-1].codes.stage1.section_frames) == 3
    final = songs[-1].codes
    assert final.vocal.shape == final.instrumental.shape == (8, final.frames)
    np.testing.assert_array_equal(final.vocal[0], final.stage1.vocal)
    # earlier sections' codes never change as the song grows
    np.testing.assert_array_equal(songs[0].codes.stage1.vocal, final.stage1.vocal[:songs[0].codes.frames])


def test_section_by_section_calls_equal_one_call(token_pipeline):
    """As on ZeroGPU (one GPU call per section): continuing from the song so far gives the same final codes."""
    whole = token_pipeline.generate(SongRequest("pop", LYRICS, "all", sampling=FAST, seed=9))
    song = None
    for count in (1, 2, 3):
        request = SongRequest("pop", LYRICS, segments=count, sampling=FAST, seed=9,
                              previous=None if song is None else song.codes)
        song = token_pipeline.generate(request)
    np.testing.assert_array_equal(song.codes.stage1.vocal, whole.codes.stage1.vocal)
    np.testing.assert_array_equal(song.codes.vocal, whole.codes.vocal)
    np.testing.assert_array_equal(song.codes.instrumental, whole.codes.instrumental)


def test_regenerate_from_a_section_keeps_the_sections_before(token_pipeline):
    first = token_pipeline.generate(SongRequest("pop", LYRICS, "all", sampling=FAST, seed=1))
    kept = first.codes.keep_sections(2)
    again = token_pipeline.generate(SongRequest("pop", LYRICS, "all", sampling=FAST, seed=2, previous=kept))
    assert again.codes.stage1.section_frames[:2] == first.codes.stage1.section_frames[:2]
    np.testing.assert_array_equal(again.codes.stage1.vocal[:kept.frames], kept.stage1.vocal)


def test_random_seed_is_reported_and_reproduces(token_pipeline):
    song = token_pipeline.generate(SongRequest("pop", LYRICS, segments=1, sampling=FAST, seed=None))
    again = token_pipeline.generate(SongRequest("pop", LYRICS, segments=1, sampling=FAST, seed=song.seed))
    np.testing.assert_array_equal(song.codes.stage1.vocal, again.codes.stage1.vocal)


def test_cancel_stops_and_keeps_finished_sections(token_pipeline):
    kept = []
    calls = {"n": 0}

    def cancel():
        calls["n"] += 1
        return len(kept) == 1 and calls["n"] > 5

    with pytest.raises(Cancelled):
        for song in token_pipeline.stream(SongRequest("pop", LYRICS, sampling=FAST), cancel=cancel):
            kept.append(song)
    assert len(kept) == 1 and kept[0].codes.frames > 0


def test_progress_reports_stage_section_rate(token_pipeline):
    events = []
    token_pipeline.generate(SongRequest("pop", LYRICS, segments=1, sampling=FAST), on_progress=events.append)
    assert {e.stage for e in events} == {"stage1", "stage2"}
    assert events[-1].done == events[-1].total and "Section 1/1" in events[-1].describe()


@pytest.mark.parametrize("request_kwargs, message", [
    ({"lyrics": "no tags here"}, "no section tags"),
    ({"genres": " "}, "Genre tags are empty"),
    ({"segments": 5}, "only 3 sections"),
    ({"sampling": Sampling(top_p=0)}, r"top_p \(--top-p\) must be in"),
    ({"sampling": Sampling(temperature=float("inf"))}, r"temperature \(--temperature\) must be a finite number"),
    ({"sampling": Sampling(repetition_penalty=float("inf"))}, r"repetition_penalty \(--repetition-penalty\) must"),
    ({"sampling": Sampling(guidance_later=float("inf"))}, r"guidance_later \(--guidance-later\) must be a finite number"),
    ({"sampling": Sampling(max_new_tokens=40.5)}, r"max_new_tokens \(--max-new-tokens\) must be a whole number, got 40.5"),
    ({"segments": 1.5}, "segments must be a whole number >= 1; got 1.5"),
    ({"segments": 0}, "segments must be a whole number >= 1; got 0"),
    ({"seed": 2**64}, r"seed must be a whole number from 0 to 9007199254740991 \(2\*\*53 - 1\); got 1844"),
    ({"seed": 2**63 - 1}, "seed must be a whole number from 0 to 9007199254740991"),
    ({"seed": -1}, "seed must be a whole number from 0"),
    ({"seed": 3.5}, "fractions are not rounded"),
    ({"seed": "7"}, r"got '7' \(str\)"),
    ({"genres": 5}, r"genres must be text; got 5 \(int\)"),
    ({"reference": Reference(codes=np.zeros(100, dtype=np.int64), start_s=float("nan"))},
     r"reference start \(start_s, seconds\) must be a number from 0 to 600; got nan"),
    ({"reference": Reference(codes=np.zeros(100, dtype=np.int64), end_s=float("inf"))},
     r"reference end \(end_s, seconds\) must be a number from 0 to 600; got inf"),
    ({"reference": Reference(codes=np.zeros(100, dtype=np.int64), end_s=1e308)},
     r"reference end \(end_s, seconds\) must be a number from 0 to 600; got 1e\+308"),
    ({"genres": "pop \udcff"}, r"Genre tags hold a character that is not text \(U\+DCFF, a lone surrogate\)"),
    ({"reference": Reference(codes=np.full(100, 5000))}, r"reference codes must lie in 0..1023"),
    ({"reference": Reference(vocal_codes=np.zeros(500, dtype=np.int64), instrumental_codes=np.zeros(400, dtype=int))},
     r"The reference vocal is 10.00 s long and the reference instrumental 8.00 s: stems of one recording"),
    ({"previous": SongCodes(Stage1Tokens(np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64), (6, -2)))},
     r"the song to continue: its section lengths \(section_frames\) must lie in 0..49152; got -2..6"),
    ({"previous": with_stage2(1)}, r"the song to continue: its stage-2 vocal codes have shape \(1, 5\); expected "
                                   r"\(8, frames\)"),
])
def test_bad_requests_are_refused_before_any_model_work(token_pipeline, request_kwargs, message):
    request = SongRequest(**{"genres": "pop", "lyrics": LYRICS, "sampling": FAST, **request_kwargs})
    with pytest.raises(ValueError, match=message):
        token_pipeline.check(request)


def test_no_request_puts_a_control_id_into_the_prompt_text(official_tokenizer):
    """With the official tokenizer, '<SOA>' in lyrics (id 32001) or '<EOA>' in a genre (id 32002) is refused by the
    request check every entry point runs (Pipeline.check, the CLI's generate and prompt, the app's jobs)."""
    from yue.request import check_request, request_prompt
    from yue.text.tokens import EOA, SOA

    for genres, lyrics, message in (("pop", "[verse]\nhold <SOA> on\n", "Lyrics hold '<SOA>' on line 2"),
                                    ("pop <EOA>", "[verse]\nla\n", "Genre tags hold '<EOA>' on line 1")):
        request = SongRequest(genres, lyrics, sampling=FAST)
        assert {SOA, EOA} & set(official_tokenizer.tokenize(genres + lyrics))  # what the check prevents
        for check in (lambda: check_request(request, tokenizer=official_tokenizer),
                      lambda: request_prompt(official_tokenizer, request)):
            with pytest.raises(ValueError, match=message):
                check()


def test_every_accepted_seed_is_used_as_given(token_pipeline):
    """The top of the seed range is accepted and its section seeds are not wrapped; neighbouring seeds differ."""
    from yue.checks import SEED_MAX
    from yue.lm.stage1 import section_seed

    assert section_seed(SEED_MAX, 11) == SEED_MAX + 7919 * 11  # 12 sections, none wrapped modulo 2**63
    songs = [token_pipeline.generate(SongRequest("pop", LYRICS, segments=1, sampling=FAST, seed=seed))
             for seed in (0, SEED_MAX - 1, SEED_MAX)]
    assert [song.seed for song in songs] == [0, SEED_MAX - 1, SEED_MAX]
    codes = [song.codes.stage1.vocal.tobytes() for song in songs]
    assert len(set(codes)) == 3


def test_continuation_needs_new_sections(token_pipeline):
    """Lyrics with no section after the kept ones, or a segments count (kept ones included) the kept song already
    has, are refused: either would make nothing."""
    song = token_pipeline.generate(SongRequest("pop", LYRICS, segments=1, sampling=FAST))
    with pytest.raises(ValueError, match="followed by at least one new section"):
        token_pipeline.check(SongRequest("pop", "[verse]\nhello there", None, sampling=FAST, previous=song.codes))
    two = token_pipeline.generate(SongRequest("pop", LYRICS, segments=2, sampling=FAST))
    with pytest.raises(ValueError, match="segments is 2 but the song to continue already has 2 sections: "
                                         "segments counts the finished song's sections, kept ones included"):
        token_pipeline.check(SongRequest("pop", LYRICS, 2, sampling=FAST, previous=two.codes))
    with pytest.raises(ValueError, match="segments must be a whole number, 'all' or None"):
        token_pipeline.check(SongRequest("pop", LYRICS, "every", sampling=FAST))


def test_default_is_the_official_run_of_two_new_sections(token_pipeline):
    """SongRequest's default (segments=None) is config.DEFAULT_SECTIONS new sections, the official infer.py
    --run_n_segments 2: two of three lyric sections; one for a one-section lyric (not refused); kept sections plus two
    when continuing; "all" makes every section (test_stream_yields_the_song_after_every_section)."""
    from yue.config import DEFAULT_SECTIONS

    song = token_pipeline.generate(SongRequest("pop", LYRICS, sampling=FAST))
    assert song.sections_done == song.sections_total == len(song.codes.stage1.section_frames) == DEFAULT_SECTIONS == 2
    short = token_pipeline.generate(SongRequest("pop", "[verse]\nla la la\n", sampling=FAST))
    assert short.sections_done == short.sections_total == 1
    four = LYRICS + "\n[outro]\nthe end\n"
    kept = token_pipeline.generate(SongRequest("pop", four, 1, sampling=FAST)).codes
    assert SongRequest("pop", four, previous=kept).sections_total(4) == 3
    assert SongRequest("pop", four, previous=kept).sections_total(2) == 2
    assert SongRequest("pop", four, "all").sections_total(4) == 4 and SongRequest("pop", four, 3).sections_total(4) == 3


def test_bundle_round_trip_keeps_codes_and_settings(token_pipeline, tmp_path):
    song = token_pipeline.generate(SongRequest("pop", LYRICS, segments=2, sampling=FAST, seed=4))
    path = song.codes.save(tmp_path / "song.npz", {"genres": "pop", "seed": 4})
    codes, settings = SongCodes.load(path)
    assert settings == {"genres": "pop", "seed": 4}
    assert codes.stage1.section_frames == song.codes.stage1.section_frames
    np.testing.assert_array_equal(codes.vocal, song.codes.vocal)


def test_cut_inside_a_section_keeps_its_first_part(token_pipeline):
    song = token_pipeline.generate(SongRequest("pop", LYRICS, segments=2, sampling=FAST, seed=4))
    first = song.codes.stage1.section_frames[0]
    cut = song.codes.cut(first + 3)
    assert cut.stage1.section_frames == (first, 3) and cut.vocal.shape[1] == first + 3


def test_not_a_bundle_is_refused(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a song bundle"):
        SongCodes.load(bad)


def test_tiny_pipeline_makes_44k_audio_of_the_song_length(tiny_dir, tmp_path):
    """Text to audio offline: mix and stems at 44.1 kHz, 882 samples per frame; a reference track encodes."""
    from yue import Reference
    from yue.audio import write_audio

    pipeline = Pipeline.tiny(tiny_dir)
    song = pipeline.generate(SongRequest("pop", LYRICS, segments=2, sampling=FAST, seed=1))
    assert song.sample_rate == 44100
    assert song.mix.shape == song.vocal.shape == song.instrumental.shape == (882 * song.codes.frames,)
    assert np.isfinite(song.mix).all() and np.abs(song.mix).max() <= 0.99
    t = np.arange(16000 * 3) / 16000
    write_audio(tmp_path / "ref.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    codes = pipeline.encode(tmp_path / "ref.wav")
    assert codes.shape == (150,)
    styled = pipeline.generate(SongRequest("pop", LYRICS, segments=1, sampling=FAST,
                                           reference=Reference(codes=codes, start_s=0, end_s=2)))
    assert styled.mix.size == 882 * styled.codes.frames


def test_takes_are_the_songs_of_one_take_runs_with_their_seeds(token_pipeline):
    """takes=3 in one batch: take t (seed 20 + t) has the stage-1 and stage-2 codes of a one-take run with that seed,
    after every section."""
    streamed = list(token_pipeline.stream_takes(SongRequest("pop", LYRICS, "all", sampling=FAST, seed=20, takes=3)))
    assert [len(songs) for songs in streamed] == [3, 3, 3]
    for take in range(3):
        alone = list(token_pipeline.stream(SongRequest("pop", LYRICS, "all", sampling=FAST, seed=20 + take)))
        for together, single in zip([songs[take] for songs in streamed], alone):
            assert together.seed == single.seed == 20 + take
            np.testing.assert_array_equal(together.codes.vocal, single.codes.vocal)
            np.testing.assert_array_equal(together.codes.instrumental, single.codes.instrumental)
    assert not np.array_equal(streamed[-1][0].codes.vocal, streamed[-1][1].codes.vocal)


def test_kept_take_carries_every_take_on(token_pipeline):
    """keep() after each section: every take's song starts with the kept take's first section."""
    request = SongRequest("pop", LYRICS, segments=2, sampling=FAST, seed=4, takes=2)
    final = list(token_pipeline.stream_takes(request, keep=lambda sections: 1))[-1]
    first = final[1].codes.stage1.section_frames[0]
    np.testing.assert_array_equal(final[0].codes.stage1.vocal[:first], final[1].codes.stage1.vocal[:first])


def test_takes_made_section_by_section_equal_one_call(token_pipeline):
    """As on ZeroGPU with takes: each section is one call in which every take continues its own song so far
    (`previous`, one song per take); the final takes equal those of one call, stage 1 and stage 2."""
    whole = list(token_pipeline.stream_takes(SongRequest("pop", LYRICS, "all", sampling=FAST, seed=11, takes=2)))[-1]
    songs = None
    for count in (1, 2, 3):
        request = SongRequest("pop", LYRICS, segments=count, sampling=FAST, seed=11, takes=2)
        previous = None if songs is None else [song.codes for song in songs]
        songs = list(token_pipeline.stream_takes(request, previous=previous))[-1]
    assert [song.seed for song in songs] == [11, 12]
    for together, apart in zip(whole, songs):
        np.testing.assert_array_equal(apart.codes.stage1.vocal, together.codes.stage1.vocal)
        assert apart.codes.stage1.section_frames == together.codes.stage1.section_frames
        np.testing.assert_array_equal(apart.codes.vocal, together.codes.vocal)
        np.testing.assert_array_equal(apart.codes.instrumental, together.codes.instrumental)
    assert not np.array_equal(songs[0].codes.stage1.vocal, songs[1].codes.stage1.vocal)  # two songs, not one


def test_takes_songs_to_continue_are_one_per_take_with_as_many_sections(token_pipeline):
    request = SongRequest("pop", LYRICS, sampling=FAST, takes=2)
    one = token_pipeline.generate(replace(request, segments=1, takes=1))
    with pytest.raises(ValueError, match="1 songs to continue for 2 takes"):
        list(token_pipeline.stream_takes(request, previous=[one.codes]))
    two = token_pipeline.generate(replace(request, segments=2, takes=1))
    with pytest.raises(ValueError, match=r"have \[1, 2\] sections: each take must keep as many"):
        list(token_pipeline.stream_takes(request, previous=[one.codes, two.codes]))


@pytest.mark.parametrize("takes", [0, 5, 1.5, "2"])
def test_takes_outside_the_limit_are_refused(token_pipeline, takes):
    with pytest.raises(ValueError, match="takes"):
        token_pipeline.generate(SongRequest("pop", LYRICS, sampling=FAST, takes=takes))


def test_previous_may_be_a_bundles_path(tmp_path):
    """SongRequest(previous="song.npz") raised AttributeError: a path is read as the bundle; other values are refused
    naming what to give."""
    saved = SongCodes(Stage1Tokens(np.arange(6), np.arange(6), (6,), ("verse",))).save(tmp_path / "song.npz")
    for given in (str(saved), saved):
        request = SongRequest("pop", LYRICS, previous=given)
        assert request.previous.stage1.section_frames == (6,)
    with pytest.raises(ValueError, match=r"previous must be a SongCodes or a bundle's path .*; got 5 \(int\)"):
        SongRequest("pop", LYRICS, previous=5)
