"""Stage 1: section-by-section generation of interleaved (vocal, instrumental) codebook-0 ids (SPEC §3.4).

Differences from the official loop, none of which change what the model computes:
* one static KV cache is kept across sections (the official code re-prefills the whole history for every section),
  and on CUDA each decode step is a replayed CUDA graph (yue/lm/decoder.py);
* the conditional and the unconditional (guidance) branch run as two rows of one batch (yue/lm/guided.py): the
  unconditional row sees only its own tokens through the attention mask and restarts at each section from the last
  prompt token, exactly like transformers' `UnbatchedClassifierFreeGuidanceLogitsProcessor`;
* several takes (independent samples, seed + t for take t) can run as further row pairs of the same batch;
* only <EOA> and codebook-0 ids are allowed, and <EOA> only after a whole (vocal, instrumental) pair;
* every section is generated (the official loop drops the last one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from ..config import CONTEXT_TOKENS, Sampling
from .deadline import Deadline, OutOfTime, Saves, read_clock
from .guided import GuidedContext
from ..text.prompt import Stage1Prompt
from .sampling import guided_scores, penalize_repeats, pick
from ..text.tokens import EOA, XCODEC_OFFSET, codebook_range, deinterleave, ids_to_codes


class Cancelled(Exception):
    """Raised from a progress callback to stop generation; sections finished before it are kept by the caller.
    A run that streams its rows (`Pipeline.stream_takes(on_row=)`) stops between two decode steps and says where:
    `state`, the section under way (a `yue.song.Unfinished`: going on from it makes the song of an uncut run), and
    `heard`, per take, the audio (mix, vocal, instrumental) of the song through the rows a listener heard of that
    section, rendered as a song ending there (None where a take heard none of it)."""

    def __init__(self, message: str = "stopped by the user", state=None, heard: list | None = None):
        super().__init__(message)
        self.state, self.heard = state, heard


@dataclass(frozen=True)
class TokenProgress:
    section: int  # 0-based index among all sections
    sections: int
    new_tokens: int  # tokens generated so far in this section
    max_new_tokens: int


@dataclass(frozen=True)
class SectionTokens:
    """One finished section: codebook-0 codes of each track, (T,) int64 in 0..1023."""

    index: int
    label: str
    vocal: np.ndarray
    instrumental: np.ndarray
    generated: bool  # False for a section given as already made (continuation)

    @property
    def frames(self) -> int:
        return int(self.vocal.shape[0])


@dataclass(frozen=True)
class Stage1Tokens:
    """Stage-1 result: codebook-0 codes of both tracks, (T,) each, and where each section ends."""

    vocal: np.ndarray
    instrumental: np.ndarray
    section_frames: tuple[int, ...]
    labels: tuple[str, ...] = ()

    @classmethod
    def from_sections(cls, sections: list[SectionTokens]) -> "Stage1Tokens":
        empty = np.zeros(0, dtype=np.int64)
        return cls(
            np.concatenate([s.vocal for s in sections]) if sections else empty,
            np.concatenate([s.instrumental for s in sections]) if sections else empty,
            tuple(s.frames for s in sections),
            tuple(s.label for s in sections),
        )


@dataclass(frozen=True)
class Stage1Partial:
    """A section cut at its call's deadline (picklable: numpy arrays, bytes and ints cross a ZeroGPU process): after
    `step` decode steps, take t has made `ids[t]` (interleaved audio ids, int64), is still going when `active[t]`, and
    its sampler's random state is `generators[t]` (torch.Generator.get_state() bytes, of a generator on a device of
    type `device_type`). `generate_takes(..., resume=)` feeds the ids again as the uncut run settled them and goes
    on to make what an uncut run makes."""

    section: int
    step: int
    ids: tuple[np.ndarray, ...]
    active: tuple[bool, ...]
    generators: tuple[bytes, ...]
    device_type: str

    @property
    def tokens(self) -> int:
        """New ids made so far in the section, over every take."""
        return sum(int(ids.size) for ids in self.ids)

    def check(self, takes: int, max_new: int, device) -> None:
        """That this state (which may come from a file) is one a run of `takes` takes and `max_new` new ids a section
        on `device` can go on from; raises ValueError saying what does not fit."""
        if self.device_type != device.type:  # a sampler's state is only meaningful on its kind of device
            raise ValueError(f"this unfinished section was sampled on {self.device_type}: go on with it on "
                             f"{self.device_type}, not {device.type}, or make the section again")
        problem = None
        state_bytes = len(torch.Generator(device=device).get_state())
        low, high = codebook_range(0)
        if not len(self.ids) == len(self.active) == len(self.generators) == takes:
            problem = f"it holds {len(self.ids)} takes' ids for {takes} takes"
        elif not 0 < self.step < max_new or not any(self.active):
            problem = f"it stopped at step {self.step} of {max_new} with no take going"
        elif any(len(state) != state_bytes for state in self.generators):
            problem = "a sampler state is not one of this device's"
        for ids, on in zip(self.ids, self.active):
            ids = np.asarray(ids)
            if ids.ndim != 1 or (len(ids) == self.step) != bool(on) or len(ids) > self.step:
                problem = problem or f"a take's {len(ids)} ids do not agree with step {self.step}"
            elif ids.size and (ids.min() < low or ids.max() >= high):
                problem = problem or "it holds ids that are not codebook-0 audio ids"
        if problem:
            raise ValueError(f"this unfinished section cannot be continued: {problem}; make the section again")


def _restore(generator: torch.Generator, state: bytes) -> None:
    generator.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))


def section_seed(seed: int, index: int) -> int:
    return (seed + 7919 * index) % 2**63


def allowed_ids(device) -> torch.Tensor:
    """The ids stage 1 may emit: <EOA> first, then codebook-0 ids in order (index i >= 1 is code i - 1)."""
    start, end = codebook_range(0)
    return torch.cat([torch.tensor([EOA]), torch.arange(start, end)]).to(device)


def context_needed(prompt: Stage1Prompt, sections: int, max_new_tokens: int,
                   done: list[tuple[np.ndarray, ...]] | None = None) -> int:
    """Slots a run of `sections` sections can fill at most: every prompt piece, kept section (the longest take's,
    when each take keeps its own: `done`) and new section, plus one <EOA> each (capped at the model's context, where
    left truncation takes over)."""
    done = [prompt.done] if done is None else done
    kept = sum(max(len(take[index]) for take in done) for index in range(len(done[0])))
    ids = sum(len(p) for p in prompt.pieces[:sections]) + kept
    return min(CONTEXT_TOKENS, ids + sections * (max_new_tokens + 1) + 1)


@torch.inference_mode()
def generate_takes(
    model,
    prompt: Stage1Prompt,
    sampling: Sampling,
    seed: int = 42,
    segments: int | None = None,
    on_token: Callable[[TokenProgress], None] | None = None,
    takes: int = 1,
    keep: Callable[[list[SectionTokens]], int | None] | None = None,
    done: list[tuple[np.ndarray, ...]] | None = None,
    deadline: Deadline | None = None,
    resume: Stage1Partial | None = None,
    on_state: Callable[[Stage1Partial], None] | None = None,
    on_step: Callable[[int, list[list[int]], Callable[[], Stage1Partial]], None] | None = None,
) -> Iterator[list[SectionTokens]]:
    """Run stage 1 for `takes` independent samples at once (rows of one batch) and yield each section as soon as
    every take has finished it: a list with one SectionTokens per take (already-made sections first, the same for
    every take).

    Take t samples with seed `seed + t`, so it makes what a one-take run with that seed makes. `keep(sections)`, if
    given, is called after each generated section; an index it returns makes every take continue from that take's
    song so far (pick the best take of a section and go on; the section is then yielded as that take's for every
    take), None keeps the takes independent. `done[t]`, if given, holds take t's own already-made sections (the same
    count for every take, in place of `prompt.done`): each take then continues its own song, as a one-take run
    continuing that song with seed `seed + t` does.
    model: a transformers causal LM; prompt: from `prompt.build_prompt`; segments: how many sections to run in all
    (None = every section of the lyrics).
    `deadline`: once it has passed, a clock read (every `deadline.every` steps) raises `OutOfTime(Stage1Partial)`;
    `resume`: such a state, to go on with its section (the sections before it given in `done` or `prompt.done`).
    `on_state`: with a deadline, given the section's state so far on clock reads every SAVE_EVERY_SECONDS or so
    (`deadline.Saves`), to go on from should the call be killed before its deadline.
    `on_step(section, ids, state)`: called before every decode step of a new section (after the deadline's clock
    read) with each take's new interleaved ids so far and a function giving the state to go on from there (a
    `Stage1Partial`); it may do other work meanwhile (the pipeline makes finished rows' stage 2 and audio). An
    `OutOfTime` it raises stops the section there, as the deadline does.
    """
    sampling.check()
    device = model.device
    subset = allowed_ids(device)
    subset_ids = subset.tolist()  # on the host: a token's id needs no device round trip per step
    total = len(prompt.pieces) if segments is None else min(segments, len(prompt.pieces))
    done = [prompt.done] * takes if done is None else done
    if len(done) != takes or len({len(take) for take in done}) != 1:
        raise ValueError(f"done: one tuple of kept sections per take ({takes}), each as long; got "
                         f"{[len(take) for take in done]}")
    total = max(total, len(done[0]))
    context = GuidedContext(model, subset, takes, context_needed(prompt, total, sampling.max_new_tokens, done))
    max_context = CONTEXT_TOKENS - sampling.max_new_tokens - 1  # the official bound: prompt + new tokens fit in 16384
    max_new = sampling.max_new_tokens // 2 * 2  # whole frames only
    pending: list[int] = []  # ids in every take's history that the model has not seen yet
    live = _first_seen_section(prompt, done, sampling.max_new_tokens, subset)
    saves = Saves(on_state, deadline)

    for index in range(total):
        label = prompt.labels[index] if index < len(prompt.labels) else ""
        piece = list(prompt.pieces[index])
        if index < len(done[0]):  # fed as its generation fed it: the same cache bits as an uncut run
            audio = [[int(i) for i in take[index]] for take in done]
            context.counting = index < live
            _feed_kept(context, pending + piece, audio, sampling.max_new_tokens)
            pending = [EOA]
            yield [_kept_section(index, label, ids) for ids in audio]
            continue
        context.counting = False
        cond, uncond = context.feed(context.refill(max_context, [pending + piece] * takes), restart_uncond=True)
        # One seed per section, so a song made section by section (one GPU call each) equals one made at once.
        generators = [torch.Generator(device=device).manual_seed(section_seed(seed + take, index))
                      for take in range(takes)]
        scale = sampling.guidance(index)
        new_ids: list[list[int]] = [[] for _ in range(takes)]
        active = [True] * takes
        first = 0
        if resume is not None and resume.section == index:  # go on where an earlier call stopped
            resume.check(takes, max_new, device)
            new_ids, active, first = [[int(i) for i in ids] for ids in resume.ids], list(resume.active), resume.step
            for generator, state in zip(generators, resume.generators):
                _restore(generator, state)
            if first:
                cond, uncond = context.replay(new_ids, final=False)
        for step in range(first, max_new):
            state = lambda: Stage1Partial(index, step, tuple(np.asarray(ids, dtype=np.int64) for ids in new_ids),
                                          tuple(active), tuple(bytes(g.get_state().numpy()) for g in generators),
                                          device.type)
            now = read_clock(deadline, step, first, deadline.every if deadline else 1)
            if now is not None:
                if now >= deadline.at:
                    raise OutOfTime(state())
                saves.check(now, state)
            if on_step is not None:
                try:
                    on_step(index, new_ids, state)
                except OutOfTime:
                    raise OutOfTime(state()) from None
            scores = guided_scores(cond, uncond, scale, subset)
            scores = penalize_repeats(scores, context.seen, sampling.repetition_penalty)
            if step < sampling.min_new_tokens or step % 2:
                scores[:, 0] = float("-inf")  # <EOA> only after min_new_tokens and on a frame boundary
            choices = [int(pick(scores[take:take + 1], sampling.do_sample, sampling.temperature, sampling.top_k,
                                sampling.top_p, generators[take])[0]) if active[take] else 0
                       for take in range(takes)]
            tokens = [subset_ids[choice] for choice in choices]
            if on_token is not None:
                on_token(TokenProgress(index, total, step + 1, max_new))
            active = [on and token != EOA for on, token in zip(active, tokens)]
            if not any(active):
                break
            for take in range(takes):
                if active[take]:
                    new_ids[take].append(tokens[take])
            cond, uncond = context.step(tokens, choices, active)
        pending = [EOA]  # fed with the next section's prompt, saving a forward pass
        sections = []
        for ids in new_ids:
            codes = np.asarray(ids, dtype=np.int64) - XCODEC_OFFSET
            sections.append(SectionTokens(index, label, codes[0::2], codes[1::2], True))
        chosen = keep(sections) if keep is not None else None
        if chosen is not None:  # every take's song now holds the kept take's section
            context.adopt(chosen)
            sections = [sections[chosen]] * takes
        yield sections


def _feed_kept(context: GuidedContext, prompt_ids: list[int], audio: list[list[int]], max_new_tokens: int) -> None:
    """Feed a kept section (its prompt ids, then each take's audio ids) as its generation fed it."""
    # (a section longer than this run's budget, from a bundle made with a larger one, needs more room)
    room = CONTEXT_TOKENS - max(max_new_tokens, *map(len, audio)) - 1
    context.feed(context.refill(room, [prompt_ids] * context.takes), restart_uncond=True)
    context.replay(audio, final=True)


def _first_seen_section(prompt: Stage1Prompt, done: list[tuple[np.ndarray, ...]], max_new_tokens: int,
                        subset: torch.Tensor) -> int:
    """The first kept section whose ids the model must see: the one where the window last restarts (the left
    truncation) before the first new section. Feeding the kept sections before it would be thrown away at that
    restart, which feeds their ids again, so they are only counted. 0 when the window never restarts."""
    plan = GuidedContext(None, subset, len(done))
    live, pending = 0, []
    for index in range(min(len(done[0]) + 1, len(prompt.pieces))):
        restarts = plan.restarts
        if index < len(done[0]):
            _feed_kept(plan, pending + list(prompt.pieces[index]), [list(take[index]) for take in done], max_new_tokens)
        else:  # the first new section's own window check
            plan.refill(CONTEXT_TOKENS - max_new_tokens - 1, [pending + list(prompt.pieces[index])] * len(done))
        live, pending = index if plan.restarts > restarts else live, [EOA]
    return live


def _kept_section(index: int, label: str, ids: list[int]) -> SectionTokens:
    """An already-made section from its interleaved audio ids."""
    vocal, instrumental = deinterleave(np.asarray(ids))
    return SectionTokens(index, label, ids_to_codes(vocal, 1)[0], ids_to_codes(instrumental, 1)[0], False)


def generate_sections(model, prompt: Stage1Prompt, sampling: Sampling, seed: int = 42, segments: int | None = None,
                      on_token: Callable[[TokenProgress], None] | None = None) -> Iterator[SectionTokens]:
    """Run stage 1 (one take) and yield each section as soon as it is finished (already-made sections first)."""
    for sections in generate_takes(model, prompt, sampling, seed, segments, on_token):
        yield sections[0]
