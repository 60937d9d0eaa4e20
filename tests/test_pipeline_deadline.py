"""yue.pipeline with a deadline: a song made in calls that each stop after one decode step (stage 1 or a stage-2
frame) and go on from the pickled `Unfinished` equals the song of one uncut call, codes and audio."""
import pickle
from dataclasses import replace

import numpy as np
import pytest

from yue import Pipeline, Reference, Sampling, SongRequest
from yue.lm.deadline import Deadline, OutOfTime
from yue.song import Unfinished
from yue.weights.loading import load_models

from tests.lm.test_deadline import CallClock, Killed, random_calls

LYRICS = "[verse]\nhello there\n\n[chorus]\nla la la\n\n[outro]\nbye"
FAST = Sampling(max_new_tokens=12, min_new_tokens=4)
PASSED = Deadline(-1.0, every=1)  # every call stops at its first clock read after one step of work


@pytest.fixture(scope="module")
def token_pipeline(tiny_lm_dir):
    return Pipeline(load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False))


@pytest.fixture(scope="module")
def audio_pipeline(tiny_dir):
    return Pipeline.tiny(tiny_dir)


def made_in_cut_calls(pipeline: Pipeline, request: SongRequest, calls_of=None, **streaming):
    """As the Space makes a song: one section at a time, each in as many calls as it takes, every call's arguments
    and stop state pickled (a ZeroGPU worker is another process). `calls_of`: an iterator of tests.lm.test_deadline
    CallClock arguments, one per call (a killed call goes on from the last state it saved); default: every call
    stops after one step; `streaming`: more arguments of every call (on_row=...). Returns (the last songs, calls,
    stages cut)."""
    sections, _ = pipeline.check(request)
    kept = 0 if request.previous is None else len(request.previous.stage1.section_frames)
    songs, unfinished, calls, stages = None, None, 0, set()
    for index in range(kept, request.sections_total(len(sections))):
        while True:
            calls += 1
            previous = None if songs is None else [song.codes for song in songs]
            states = None if songs is None else [song.render_state for song in songs]
            previous, states, unfinished = pickle.loads(pickle.dumps((previous, states, unfinished)))
            clock, saved = (None, []) if calls_of is None else (CallClock(*next(calls_of)), [])
            try:
                for made in pipeline.stream_takes(replace(request, segments=index + 1), previous=previous,
                                                  render_states=states, resume=unfinished,
                                                  deadline=PASSED if clock is None else clock.deadline(1),
                                                  on_unfinished=saved.append, **streaming):
                    songs = pickle.loads(pickle.dumps(made))
                unfinished = None
                break
            except OutOfTime as stop:
                unfinished = stop.state
            except Killed:
                unfinished = saved[-1] if saved else unfinished
                stages.add("killed")
            if unfinished is not None:
                assert isinstance(unfinished, Unfinished) and unfinished.section == index
                stages.add(unfinished.stage)
    return songs, calls, stages


def assert_same_songs(cut, whole, audio: bool):
    assert len(cut) == len(whole)
    for got, expected in zip(cut, whole):
        assert got.seed == expected.seed
        assert got.codes.stage1.section_frames == expected.codes.stage1.section_frames
        np.testing.assert_array_equal(got.codes.stage1.vocal, expected.codes.stage1.vocal)
        np.testing.assert_array_equal(got.codes.stage1.instrumental, expected.codes.stage1.instrumental)
        np.testing.assert_array_equal(got.codes.vocal, expected.codes.vocal)
        np.testing.assert_array_equal(got.codes.instrumental, expected.codes.instrumental)
        if audio:
            assert got.mix.size == 882 * got.codes.frames
            for a, b in ((got.mix, expected.mix), (got.vocal, expected.vocal),
                         (got.instrumental, expected.instrumental)):
                np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("takes, guidance", [(2, 1.5), (1, 1.0)])
def test_takes_cut_at_every_step_make_the_uncut_song(token_pipeline, takes, guidance):
    """Sampled, with guidance (or without), 1 or 2 takes, three sections: every stage-1 step and every stage-2 frame
    is a call of its own, and the final takes equal those of one uncut call."""
    request = SongRequest("pop", LYRICS, "all", sampling=replace(FAST, guidance_first=guidance), seed=7, takes=takes)
    whole = list(token_pipeline.stream_takes(request))[-1]
    cut, calls, stages = made_in_cut_calls(token_pipeline, request)
    assert_same_songs(cut, whole, audio=False)
    assert stages == {"stage1", "stage2"} and calls > whole[0].codes.frames * 2  # a call per token, and per frame


def test_style_reference_and_continuation_cut_at_every_step_sound_as_uncut(audio_pipeline):
    """ICL (a style reference) continuing a song made before, with the tiny codec: the cut calls' song (codes and
    the audio rendered call by call from pickled render states) equals one uncut call's."""
    rng = np.random.default_rng(1)
    reference = Reference(codes=rng.integers(0, 1024, 150), start_s=0, end_s=2)
    first = audio_pipeline.generate(SongRequest("pop", LYRICS, 1, sampling=FAST, seed=3, reference=reference))
    request = SongRequest("pop", LYRICS, "all", sampling=FAST, seed=4, reference=reference, previous=first.codes)
    whole = list(audio_pipeline.stream_takes(request))[-1]
    cut, calls, stages = made_in_cut_calls(audio_pipeline, request)
    assert_same_songs(cut, whole, audio=True)
    assert stages == {"stage1", "stage2"}


@pytest.fixture(scope="module")
def bf16_pipeline(tiny_dir):
    return Pipeline.tiny(tiny_dir, precision="bf16")


@pytest.mark.parametrize("takes, sampling, style", [(2, Sampling(max_new_tokens=140, min_new_tokens=60), False),
                                                     (1, Sampling(max_new_tokens=140, do_sample=False), False),
                                                     (1, Sampling(max_new_tokens=140, min_new_tokens=60), True)])
def test_bf16_songs_in_random_calls_with_kills_equal_one_continuous_run(bf16_pipeline, takes, sampling, style):
    """bf16 on the CPU, as the Space makes a song and as the CLI does: each section in its own calls, cut at random
    steps, every third call killed and resumed from the last state it saved, every state pickled; sampled with 2
    takes, greedy, and a style reference continuing an earlier song: codes equal one continuous run's, audio within
    1e-6."""
    rng = np.random.default_rng(1)
    reference = Reference(codes=rng.integers(0, 1024, 150), start_s=0, end_s=2) if style else None
    request = SongRequest("pop", LYRICS, 2, sampling=sampling, seed=7, takes=takes, reference=reference)
    if style:
        first = bf16_pipeline.generate(replace(request, segments=1, sampling=FAST, seed=3))
        request = replace(request, previous=first.codes, segments=3)
    whole = list(bf16_pipeline.stream_takes(request))[-1]
    cut, calls, stages = made_in_cut_calls(bf16_pipeline, request, random_calls(takes + 2 * style))
    assert_same_songs(cut, whole, audio=True)
    assert stages == {"stage1", "stage2", "killed"} and calls > 4


def test_an_unfinished_section_goes_on_only_with_the_songs_of_its_call(token_pipeline):
    """A state is for the section its call was making: given with other songs (here none, one section short), the
    run is refused with a message that says what to pass."""
    request = SongRequest("pop", LYRICS, 2, sampling=FAST, seed=7)
    first = token_pipeline.generate(replace(request, segments=1))
    with pytest.raises(OutOfTime) as stop:
        list(token_pipeline.stream_takes(request, previous=[first.codes], deadline=PASSED))
    with pytest.raises(ValueError, match="this unfinished section is section 2 of the song: go on with the songs"):
        list(token_pipeline.stream_takes(request, resume=stop.value.state))
