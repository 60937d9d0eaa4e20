"""yue.lm.deadline: stage 1 and stage 2 stop at a call's deadline with what they made, and a run cut at every step
(each call making one step, its state pickled as across a ZeroGPU process) makes exactly what one uncut run makes."""
import itertools
import pickle

import numpy as np
import pytest

from yue.config import Sampling, Stage2Config
from yue.lm import stage1, stage2
from yue.lm.deadline import Deadline, OutOfTime, stop_now
from yue.text.prompt import build_prompt, codes_to_stage1_ids, parse_lyrics

LYRICS = "[verse]\nhello there\n\n[chorus]\nla la la\n"
PASSED = Deadline(-1.0, every=1)  # passed before any call: every call stops at its first clock read after a step


def test_a_deadline_reads_its_own_clock():
    """The clock is injectable: a fake one decides when the deadline has passed and what is left."""
    now = [10.0]
    deadline = Deadline.after(5, clock=lambda: now[0])
    assert deadline.at == 15 and deadline.left() == 5 and not deadline.passed()
    now[0] = 15.0
    assert deadline.passed() and deadline.left() == 0


def test_a_loop_stops_only_on_a_clock_read_after_some_work():
    """stop_now reads the clock every `every` counts, never at the count a call began with (so a call whose
    deadline has already passed still makes progress), and never without a deadline."""
    reads = itertools.count()
    deadline = Deadline(-1.0, clock=lambda: next(reads), every=4)
    assert [count for count in range(3, 13) if stop_now(deadline, count, 4, 4)] == [8, 12]
    assert not stop_now(None, 8, 0, 4) and not stop_now(deadline, 4, 4, 4)
    assert next(reads) == 2  # the clock was read twice, on counts 8 and 12 only
    with pytest.raises(ValueError, match="every >= 1"):
        Deadline.after(1, every=0)


def section_ids(sections):
    return [codes_to_stage1_ids(s.vocal, s.instrumental).tolist() for s in sections]


def stage1_in_steps(model, prompt, settings, seed, takes, done=None, segments=None):
    """Stage 1 made one decode step per call: each call gets the sections finished so far (`done`, per take) and
    the last call's state, pickled. Returns (sections per take, calls)."""
    finished = [[] for _ in range(takes)]
    resume, calls = None, 0
    while True:
        calls += 1
        kept = done if not finished[0] else [tuple(done[t] if done else ()) + tuple(
            codes_to_stage1_ids(s.vocal, s.instrumental) for s in finished[t]) for t in range(takes)]
        try:
            for made in stage1.generate_takes(model, prompt, settings, seed, segments, takes=takes, done=kept,
                                              deadline=PASSED, resume=resume):
                if made[0].generated:
                    for take, section in enumerate(made):
                        finished[take].append(section)
            return finished, calls
        except OutOfTime as stop:
            resume = pickle.loads(pickle.dumps(stop.state))
            assert isinstance(resume, stage1.Stage1Partial)


@pytest.mark.parametrize("takes, do_sample, min_new", [(2, True, 4), (1, False, 0), (3, True, 0)])
def test_stage1_cut_at_every_step_makes_the_uncut_sections(stage1_model, tiny_tokenizer, takes, do_sample, min_new):
    """Sampled (or greedy) with guidance, several takes (which end their sections at different steps), <EOA>
    allowed from the first step: a run that stops after every decode step and goes on from its pickled state (tokens,
    sampler states, active takes) makes every take's sections token for token."""
    prompt = build_prompt(tiny_tokenizer, "pop", parse_lyrics(LYRICS).sections)
    settings = Sampling(max_new_tokens=16, min_new_tokens=min_new, do_sample=do_sample)
    whole = list(stage1.generate_takes(stage1_model, prompt, settings, 5, None, takes=takes))
    cut, calls = stage1_in_steps(stage1_model, prompt, settings, 5, takes)
    for take in range(takes):
        assert section_ids(cut[take]) == section_ids([made[take] for made in whole])
    longest = [max(len(ids) for ids in section_ids(made)) for made in whole]
    steps = [min(length + 1, 16) for length in longest]  # the last take's <EOA> is a step too
    assert calls == 1 + sum(count - 1 for count in steps)  # a cut after every step but a section's last


def test_stage2_cut_at_every_frame_makes_the_uncut_codes(stage2_model):
    """Rows of two lengths (a whole 6-frame row and a 4-frame tail per track), two tracks, one row already known from
    an earlier song: stopping after every frame and going on from the pickled rows gives the uncut codes."""
    rng = np.random.default_rng(3)
    config = Stage2Config(chunk_frames=6)
    tracks = [rng.integers(0, 1024, 10), rng.integers(0, 1024, 10)]
    whole = stage2.generate(stage2_model, tracks, config)
    known = [codes[:, :6] for codes in whole]
    made, calls = (), 0
    while True:
        calls += 1
        try:
            cut = stage2.generate(stage2_model, tracks, config, known=known, deadline=PASSED, made=made)
            break
        except OutOfTime as stop:
            made = pickle.loads(pickle.dumps(stop.state))
            assert all(isinstance(part, stage2.RowCodes) for part in made)
    for got, expected in zip(cut, whole):
        np.testing.assert_array_equal(got, expected)
    assert calls == 4  # the two 4-frame tails batched together: one frame per call


def test_stage1_cut_at_every_step_after_the_16k_left_truncation(stage1_model, tiny_tokenizer):
    """Kept sections long enough that the model sees only the last 16384 - max_new_tokens - 1 ids: each call
    re-prefills the same truncated window, so the sampled sections cut at every step equal the uncut ones."""
    import copy

    import torch

    from yue.text import tokens

    model = copy.deepcopy(stage1_model)
    with torch.no_grad():  # <EOA> likely: sections stop soon after min_new_tokens
        model.lm_head.weight[tokens.EOA] = model.lm_head.weight[tokens.XCODEC_OFFSET + 3] * 4
    rng = np.random.default_rng(0)
    done = tuple(codes_to_stage1_ids(rng.integers(0, 1024, 2100), rng.integers(0, 1024, 2100)) for _ in range(2))
    lyrics = LYRICS + "\n[bridge]\noh oh\n\n[outro]\nbye now\n"
    base = build_prompt(tiny_tokenizer, "pop", parse_lyrics(lyrics).sections)
    prompt = stage1.Stage1Prompt(base.pieces, done, False, base.labels)
    settings = Sampling(max_new_tokens=8192, min_new_tokens=4)
    assert sum(len(p) for p in prompt.pieces[:3]) + sum(map(len, done)) > 16384 - 8192 - 1  # truncated
    whole = [made for made in stage1.generate_takes(model, prompt, settings, 9, 3) if made[0].generated]
    cut, calls = stage1_in_steps(model, prompt, settings, 9, 1, done=[done], segments=3)
    assert section_ids(cut[0]) == section_ids([made[0] for made in whole]) and len(cut[0]) == 1
    assert calls == len(section_ids(cut[0])[0]) + 1  # a call per step: one per id, one for the <EOA>


def test_a_state_goes_on_only_on_its_kind_of_device(stage1_model, tiny_tokenizer):
    """A sampler state taken on one kind of device (here said to be CUDA) is refused on another, with what to do."""
    from dataclasses import replace

    prompt = build_prompt(tiny_tokenizer, "pop", parse_lyrics(LYRICS).sections)
    settings = Sampling(max_new_tokens=8, min_new_tokens=8)
    with pytest.raises(OutOfTime) as stop:
        list(stage1.generate_takes(stage1_model, prompt, settings, 1, None, deadline=PASSED))
    elsewhere = replace(stop.value.state, device_type="cuda")
    with pytest.raises(ValueError, match="was sampled on cuda: go on with it on cuda, not cpu"):
        list(stage1.generate_takes(stage1_model, prompt, settings, 1, None, resume=elsewhere))


class Killed(Exception):
    """A call that died where it stood (ZeroGPU's "GPU task aborted"): it hands nothing over."""


class CallClock:
    """One call's fake clock: every read is a second later; the deadline passes at read `reads`, or with `kill` the
    call dies at that read instead. The loops' saves (`on_state`) come every SAVE_EVERY_SECONDS (5) reads."""

    def __init__(self, reads: int, kill: bool):
        self.now, self.reads, self.kill = 0.0, reads, kill

    def __call__(self) -> float:
        self.now += 1
        if self.kill and self.now >= self.reads:
            raise Killed
        return self.now

    def deadline(self, every: int) -> Deadline:
        return Deadline(float("inf") if self.kill else self.reads, self, every)


def random_calls(seed: int):
    """Calls of 1-30 clock reads each; every third one is killed."""
    rng = np.random.default_rng(seed)
    for call in itertools.count():
        yield int(rng.integers(1, 31)), call % 3 == 2


def stage1_in_calls(model, prompt, settings, seed, takes, calls):
    """Stage 1 as the Space makes it: every call gets the sections finished so far (`done`) and goes on from the
    last state handed over (pickled): its OutOfTime state, or after a kill the last state it saved."""
    finished, resume, count = [[] for _ in range(takes)], None, 0
    while True:
        count += 1
        clock, saved = CallClock(*next(calls)), []
        done = [tuple(codes_to_stage1_ids(s.vocal, s.instrumental) for s in finished[t]) for t in range(takes)]
        try:
            for made in stage1.generate_takes(model, prompt, settings, seed, None, takes=takes, done=done,
                                              deadline=clock.deadline(1), resume=resume, on_state=saved.append):
                if made[0].generated:
                    for take, section in enumerate(made):
                        finished[take].append(section)
            return finished, count
        except OutOfTime as stop:
            resume = stop.state
        except Killed:
            resume = saved[-1] if saved else resume
        resume = pickle.loads(pickle.dumps(resume)) if resume and resume.section == len(finished[0]) else None


@pytest.fixture(scope="module")
def bf16_models(tiny_lm_dir):
    import torch

    from yue.weights.loading import load_lm

    return load_lm(tiny_lm_dir / "s1", dtype=torch.bfloat16), load_lm(tiny_lm_dir / "s2", dtype=torch.bfloat16)


@pytest.mark.parametrize("takes, do_sample, min_new", [(2, True, 60), (1, False, 140)])
def test_bf16_stage1_cut_and_killed_at_random_steps_makes_the_uncut_sections(bf16_models, tiny_tokenizer, takes,
                                                                            do_sample, min_new):
    """bf16, two sections of up to 140 ids (past two 64-step settling blocks), sampled with 2 takes that end at
    different steps (or greedy): calls of random length, every third killed and resumed from its last save, make
    every take's sections token for token as one uncut run."""
    prompt = build_prompt(tiny_tokenizer, "pop", parse_lyrics(LYRICS).sections)
    settings = Sampling(max_new_tokens=140, min_new_tokens=min_new, do_sample=do_sample)
    whole = list(stage1.generate_takes(bf16_models[0], prompt, settings, 5, None, takes=takes))
    cut, calls = stage1_in_calls(bf16_models[0], prompt, settings, 5, takes, random_calls(takes))
    for take in range(takes):
        assert section_ids(cut[take]) == section_ids([made[take] for made in whole])
    assert calls > 10  # every third one killed


def test_bf16_stage2_cut_and_killed_at_random_frames_makes_the_uncut_codes(bf16_models):
    """bf16, rows of 40 frames (past two 128-step settling blocks) and a tail: calls of random length, every third
    killed and resumed from its last save, give the uncut codes."""
    rng = np.random.default_rng(4)
    config = Stage2Config(chunk_frames=40)
    tracks = [rng.integers(0, 1024, 70), rng.integers(0, 1024, 70)]
    whole = stage2.generate(bf16_models[1], tracks, config)
    calls, made, count = random_calls(7), (), 0
    while True:
        count += 1
        clock, saved = CallClock(*next(calls)), []
        try:
            cut = stage2.generate(bf16_models[1], tracks, config, deadline=clock.deadline(8), made=made,
                                  on_state=saved.append)
            break
        except OutOfTime as stop:
            made = stop.state
        except Killed:
            made = saved[-1] if saved else made
        made = pickle.loads(pickle.dumps(made))
    for got, expected in zip(cut, whole):
        np.testing.assert_array_equal(got, expected)
    assert count >= 4  # the third call was killed
