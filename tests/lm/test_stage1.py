"""yue.lm.stage1: cached, batched-guidance generation equals transformers' own generate, section by section."""
import copy

import numpy as np
import pytest
import torch

from yue.lm import official, stage1
from yue.lm.deadline import Deadline, OutOfTime
from yue.text import tokens
from yue.config import Sampling
from yue.text.prompt import build_prompt, codes_to_stage1_ids, parse_lyrics

LYRICS = "[verse]\nhello there\nmy friend\n\n[chorus]\nla la la\n\n[bridge]\noh oh\n\n[outro]\nbye now"


@pytest.fixture(scope="module")
def song_prompt(tiny_tokenizer):
    return build_prompt(tiny_tokenizer, "pop female bright", parse_lyrics(LYRICS).sections)


def section_ids(section):
    return codes_to_stage1_ids(section.vocal, section.instrumental).tolist()


def test_greedy_equals_transformers_generate_with_guidance(stage1_model, song_prompt):
    """Sampling off: every section's tokens equal generate(guidance_scale, repetition_penalty, min_new_tokens) with
    the same allowed-id mask, which re-prefills the whole history per section; all four sections are made."""
    settings = Sampling(max_new_tokens=40, min_new_tokens=6, do_sample=False)
    ours = list(stage1.generate_sections(stage1_model, song_prompt, settings))
    oracle = official.stage1_generate(stage1_model, song_prompt, settings)
    assert len(ours) == len(oracle) == 4
    for section, expected in zip(ours, oracle):
        assert section_ids(section) == expected


def test_end_of_audio_stops_a_section_on_a_whole_frame(stage1_model, song_prompt):
    """A model that loves <EOA> still makes min_new_tokens and ends on a (vocal, instrumental) pair; transformers
    agrees on where each section stops."""
    model = copy.deepcopy(stage1_model)
    with torch.no_grad():
        model.lm_head.weight[tokens.EOA] = model.lm_head.weight[tokens.XCODEC_OFFSET + 3] * 4
    settings = Sampling(max_new_tokens=60, min_new_tokens=7, do_sample=False)
    ours = list(stage1.generate_sections(model, song_prompt, settings, segments=2))
    oracle = official.stage1_generate(model, song_prompt, settings, segments=2)
    assert [section_ids(s) for s in ours] == oracle
    for section in ours:
        assert 2 * section.frames >= 7 and 2 * section.frames < 60


def test_sampling_is_seeded_and_only_codebook0(stage1_model, song_prompt):
    settings = Sampling(max_new_tokens=30, min_new_tokens=4)
    first = list(stage1.generate_sections(stage1_model, song_prompt, settings, seed=11, segments=2))
    again = list(stage1.generate_sections(stage1_model, song_prompt, settings, seed=11, segments=2))
    other = list(stage1.generate_sections(stage1_model, song_prompt, settings, seed=12, segments=2))
    assert [section_ids(s) for s in first] == [section_ids(s) for s in again]
    assert [section_ids(s) for s in first] != [section_ids(s) for s in other]
    for section in first:
        assert section.vocal.min() >= 0 and section.vocal.max() < 1024
        assert section.vocal.shape == section.instrumental.shape


def test_section_by_section_equals_all_at_once(stage1_model, song_prompt):
    """Continuing from kept sections (one call per section, as on ZeroGPU) gives the same song as one call."""
    settings = Sampling(max_new_tokens=24, min_new_tokens=4)
    whole = list(stage1.generate_sections(stage1_model, song_prompt, settings, seed=5, segments=3))
    done = tuple(np.asarray(section_ids(s)) for s in whole[:2])
    resumed = stage1.Stage1Prompt(song_prompt.pieces, done, song_prompt.uses_reference, song_prompt.labels)
    third = list(stage1.generate_sections(stage1_model, resumed, settings, seed=5, segments=3))
    assert [s.generated for s in third] == [False, False, True]
    assert section_ids(third[2]) == section_ids(whole[2])


def test_continuation_and_left_truncation_equal_transformers(stage1_model, song_prompt):
    """Kept sections are fed as if generated; once history + prompt pass 16384 - max_new_tokens - 1 ids, the model
    sees only the last ones (the official left truncation) and the cache is rebuilt on that window. Checked against
    transformers, which re-prefills the truncated window itself."""
    model = copy.deepcopy(stage1_model)
    with torch.no_grad():  # make <EOA> likely so sections stop right after min_new_tokens
        model.lm_head.weight[tokens.EOA] = model.lm_head.weight[tokens.XCODEC_OFFSET + 3] * 4
    settings = Sampling(max_new_tokens=8192, min_new_tokens=10, do_sample=False)
    max_context = 16384 - 8192 - 1
    frames = 2100
    rng = np.random.default_rng(0)
    done = tuple(codes_to_stage1_ids(rng.integers(0, 1024, frames), rng.integers(0, 1024, frames)) for _ in range(2))
    resumed = stage1.Stage1Prompt(song_prompt.pieces, done, False, song_prompt.labels)
    assert sum(len(p) for p in resumed.pieces[:3]) + 2 * 2 * frames > max_context  # section 3 is truncated
    ours = list(stage1.generate_sections(model, resumed, settings, segments=4))
    oracle = official.stage1_generate(model, resumed, settings, segments=4)
    assert [s.generated for s in ours] == [False, False, True, True]
    assert all(10 <= 2 * s.frames < 200 for s in ours[2:])  # stopped by <EOA>, not by max_new_tokens
    assert [section_ids(s) for s in ours[2:]] == oracle[2:]
    assert section_ids(ours[0]) == done[0].tolist()


def test_cancel_from_the_callback_stops_generation(stage1_model, song_prompt):
    def stop(progress):
        if progress.new_tokens >= 5:
            raise stage1.Cancelled("stop")

    with pytest.raises(stage1.Cancelled):
        list(stage1.generate_sections(stage1_model, song_prompt, Sampling(max_new_tokens=40, min_new_tokens=4), on_token=stop))


def test_kept_sections_before_the_last_window_restart_are_only_counted(stage1_model, song_prompt, monkeypatch):
    """Three kept sections of ~3000 ids and a budget of 8000 a section: the window restarts (left truncation) when
    the first new section begins, so the model is fed none of the kept sections but the window of their last ids;
    the new section's tokens, sampled with 2 takes of different kept lengths, equal a run fed every kept section."""
    rng = np.random.default_rng(5)
    done = [tuple(codes_to_stage1_ids(rng.integers(0, 1024, n), rng.integers(0, 1024, n)) for n in lengths)
            for lengths in ((1500, 1500, 1500), (1500, 1400, 1500))]
    settings = Sampling(max_new_tokens=8000, min_new_tokens=4)
    assert stage1._first_seen_section(song_prompt, done, settings.max_new_tokens, stage1.allowed_ids("cpu")) == 3

    def run():  # the new section's first 60 ids of each take
        with pytest.raises(OutOfTime) as stop:
            list(stage1.generate_takes(stage1_model, song_prompt, settings, 3, 4, takes=2, done=done,
                                       deadline=Deadline(-1.0, every=60)))
        return [ids.tolist() for ids in stop.value.state.ids]

    counted = run()
    monkeypatch.setattr(stage1, "_first_seen_section", lambda *args: 0)
    assert counted == run()
