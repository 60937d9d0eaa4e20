"""yue.lm.guided through stage1.generate_takes: several takes in one batch each make what a one-take run with their seed
makes (sampled, with sections ending at different times, kept sections and left truncation), and a kept take
carries every take on."""
import copy

import numpy as np
import pytest
import torch

from yue.lm import stage1
from yue.text import tokens
from yue.config import Sampling
from yue.text.prompt import build_prompt, codes_to_stage1_ids, parse_lyrics

LYRICS = "[verse]\nhello there\nmy friend\n\n[chorus]\nla la la\n\n[bridge]\noh oh\n\n[outro]\nbye now"


@pytest.fixture(scope="module")
def song_prompt(tiny_tokenizer):
    return build_prompt(tiny_tokenizer, "pop female bright", parse_lyrics(LYRICS).sections)


@pytest.fixture(scope="module")
def eoa_model(stage1_model):
    """<EOA> likely: sections end after min_new_tokens, at different steps for different takes."""
    model = copy.deepcopy(stage1_model)
    with torch.no_grad():
        model.lm_head.weight[tokens.EOA] = model.lm_head.weight[tokens.XCODEC_OFFSET + 3] * 4
    return model


def ids(section) -> list[int]:
    return codes_to_stage1_ids(section.vocal, section.instrumental).tolist()


def one_take(model, prompt, settings, seed, segments):
    return [ids(s) for s in stage1.generate_sections(model, prompt, settings, seed=seed, segments=segments)]


@pytest.mark.parametrize("model_name", ["stage1_model", "eoa_model"])
def test_each_take_equals_a_one_take_run_with_its_seed(request, song_prompt, model_name):
    model = request.getfixturevalue(model_name)
    settings = Sampling(max_new_tokens=30, min_new_tokens=4)
    batched = list(stage1.generate_takes(model, song_prompt, settings, seed=5, segments=3, takes=3))
    assert len(batched) == 3 and all(len(sections) == 3 for sections in batched)
    per_take = [[ids(sections[take]) for sections in batched] for take in range(3)]
    for take in range(3):
        assert per_take[take] == one_take(model, song_prompt, settings, 5 + take, 3)
    assert per_take[0] != per_take[1]  # different seeds, different songs
    if model_name == "eoa_model":  # the takes really ended their sections at different steps
        assert any(len({len(per_take[take][s]) for take in range(3)}) > 1 for s in range(3))


def test_takes_continue_kept_sections_and_survive_left_truncation(eoa_model, song_prompt):
    """Kept sections go to every take; once a take's history passes the context bound its window restarts on the
    last ids, as in a one-take run, while the other takes keep theirs."""
    settings = Sampling(max_new_tokens=8192, min_new_tokens=10)
    rng = np.random.default_rng(0)
    frames = 2040
    done = tuple(codes_to_stage1_ids(rng.integers(0, 1024, frames), rng.integers(0, 1024, frames)) for _ in range(2))
    resumed = stage1.Stage1Prompt(song_prompt.pieces, done, False, song_prompt.labels)
    batched = list(stage1.generate_takes(eoa_model, resumed, settings, seed=9, segments=4, takes=2))
    assert [[s.generated for s in sections] for sections in batched] == [[False, False]] * 2 + [[True, True]] * 2
    for take in range(2):
        assert [ids(sections[take]) for sections in batched] == one_take(eoa_model, resumed, settings, 9 + take, 4)


def test_keeping_a_take_carries_every_take_on_from_it(eoa_model, song_prompt):
    """After section 1, take 1 is kept: every take's section 2 is what a one-take continuation of take 1's section 1
    makes with that take's seed."""
    settings = Sampling(max_new_tokens=24, min_new_tokens=4)
    batched = list(stage1.generate_takes(eoa_model, song_prompt, settings, seed=3, segments=2, takes=3,
                                         keep=lambda sections: 1 if sections[0].index == 0 else None))
    first = np.asarray(ids(batched[0][1]))
    resumed = stage1.Stage1Prompt(song_prompt.pieces, (first,), False, song_prompt.labels)
    for take in range(3):
        assert ids(batched[1][take]) == one_take(eoa_model, resumed, settings, 3 + take, 2)[1]


def test_one_take_is_the_plain_run(stage1_model, song_prompt):
    settings = Sampling(max_new_tokens=20, min_new_tokens=4, do_sample=False)
    batched = [sections[0] for sections in stage1.generate_takes(stage1_model, song_prompt, settings, segments=2)]
    assert [ids(s) for s in batched] == one_take(stage1_model, song_prompt, settings, 42, 2)
