"""Stage 1: section-by-section generation of interleaved (vocal, instrumental) codebook-0 ids (SPEC §3.4).

Differences from the official loop, none of which change what the model computes:
* one static KV cache is kept across sections (the official code re-prefills the whole history for every section),
  and on CUDA each decode step is a replayed CUDA graph (yue/decoder.py);
* the conditional and the unconditional (guidance) branch run as the two rows of one batch: the unconditional row
  sees only its own tokens through the attention mask and restarts at each section from the last prompt token,
  exactly like transformers' `UnbatchedClassifierFreeGuidanceLogitsProcessor`;
* only <EOA> and codebook-0 ids are allowed, and <EOA> only after a whole (vocal, instrumental) pair;
* every section is generated (the official loop drops the last one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from .config import CONTEXT_TOKENS, Sampling
from .decoder import StaticDecoder
from .lmhead import full_logits
from .prompt import Stage1Prompt
from .sampling import guided_scores, penalize_repeats, pick
from .tokens import EOA, XCODEC_OFFSET, codebook_range, deinterleave, ids_to_codes


PREFILL_CHUNK = 2048  # ids per model call when feeding a long prompt


class Cancelled(Exception):
    """Raised from a progress callback to stop generation; sections finished before it are kept by the caller."""


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


def section_seed(seed: int, index: int) -> int:
    return (seed + 7919 * index) % 2**63


def allowed_ids(device) -> torch.Tensor:
    """The ids stage 1 may emit: <EOA> first, then codebook-0 ids in order (index i >= 1 is code i - 1)."""
    start, end = codebook_range(0)
    return torch.cat([torch.tensor([EOA]), torch.arange(start, end)]).to(device)


class GuidedContext:
    """The model's view of the song so far: one static cache whose row 0 is the conditional context and row 1 the
    unconditional (guidance) context, plus what the repetition penalty needs (which ids are in the window).

    Both rows write every fed id into the same slot; row 1 only *sees* the slots since its last restart, and counts
    its own rotary positions. `history` is the whole untruncated id list; the model sees `history[window_start:]`
    (left truncation).
    """

    def __init__(self, model, subset: torch.Tensor, capacity: int = 4096):
        self.head = model.get_output_embeddings()
        self.decoder = StaticDecoder(model, 2, min(capacity, CONTEXT_TOKENS))
        self.device = subset.device
        self.subset = subset
        self.history: list[int] = []
        self.reset(0)

    def reset(self, window_start: int) -> None:
        self.decoder.clear()
        self.window_start = window_start
        self.cond_len = 0  # slots in use; row 0 sees all of them
        self.uncond_len = 0  # slots row 1 sees (its next rotary position)
        self.seen = torch.zeros(self.subset.shape[0], dtype=torch.bool, device=self.device)

    @torch.inference_mode()
    def feed(self, ids: list[int], restart_uncond: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ids to both rows; return the last (cond, uncond) logits, Tensor[V] each.

        With `restart_uncond` the unconditional row forgets everything and starts again from the last of `ids`
        (it computes only that token: a row is never run on a token it may not see). Long inputs go in chunks of
        PREFILL_CHUNK, which bounds activation memory (a refill can be 13k ids).
        """
        if self.cond_len + len(ids) > CONTEXT_TOKENS:
            raise ValueError(f"stage-1 context overflow: {self.cond_len + len(ids)} > {CONTEXT_TOKENS} tokens")
        if len(ids) == 1 and not restart_uncond:
            hidden = self._step(ids[0])
        else:
            hidden = self._prefill(ids, restart_uncond)
        self.history.extend(ids)
        self._mark_seen(ids)
        logits = full_logits(self.head, hidden)
        return logits[0], logits[1]

    def _prefill(self, ids: list[int], restart_uncond: bool) -> torch.Tensor:
        if restart_uncond:
            self.decoder.hide(1)
            self.uncond_len = 0
        rows = slice(0, 1) if restart_uncond else slice(0, 2)
        for first in range(0, len(ids), PREFILL_CHUNK):
            chunk = torch.tensor(ids[first:first + PREFILL_CHUNK], device=self.device)
            n = chunk.shape[0]
            positions = torch.stack([torch.arange(n, device=self.device) + start
                                     for start in (self.cond_len, self.uncond_len)][rows])
            hidden = self.decoder.prefill(chunk.expand(positions.shape[0], n), positions, self.cond_len, rows)
            self.cond_len += n
            if not restart_uncond:
                self.uncond_len += n
        if restart_uncond:  # row 1 restarts at position 0 on the last id, in that id's slot
            last = torch.tensor([[ids[-1]]], device=self.device)
            start = torch.zeros(1, 1, dtype=torch.long, device=self.device)
            hidden = torch.cat([hidden, self.decoder.prefill(last, start, self.cond_len - 1, slice(1, 2))])
            self.uncond_len = 1
        return hidden

    def _step(self, token: int) -> torch.Tensor:
        decoder = self.decoder
        decoder.step_ids.fill_(token)
        decoder.step_positions[0].fill_(self.cond_len)
        decoder.step_positions[1].fill_(self.uncond_len)
        hidden = decoder.step(self.cond_len)
        self.cond_len += 1
        self.uncond_len += 1
        return hidden

    def _mark_seen(self, ids) -> None:
        seen_ids = torch.as_tensor(ids, device=self.device)
        self.seen |= torch.isin(self.subset, seen_ids)

    def refill(self, max_context: int, pending: list[int]) -> list[int]:
        """If history + pending exceeds `max_context`, restart the cache on the last `max_context` ids (the official
        left truncation) and return the ids still to feed; else return `pending` unchanged."""
        total = len(self.history) + len(pending)
        if total - self.window_start <= max_context:
            return pending
        whole = self.history + pending
        self.reset(total - max_context)
        self.history = whole[: self.window_start]
        return whole[self.window_start:]


def context_needed(prompt: Stage1Prompt, sections: int, max_new_tokens: int) -> int:
    """Slots a run of `sections` sections can fill at most: every prompt piece, kept section and new section, plus
    one <EOA> each (capped at the model's context, where left truncation takes over)."""
    ids = sum(len(p) for p in prompt.pieces[:sections]) + sum(len(d) for d in prompt.done)
    return min(CONTEXT_TOKENS, ids + sections * (max_new_tokens + 1) + 1)


@torch.inference_mode()
def generate_sections(
    model,
    prompt: Stage1Prompt,
    sampling: Sampling,
    seed: int = 42,
    segments: int | None = None,
    on_token: Callable[[TokenProgress], None] | None = None,
) -> Iterator[SectionTokens]:
    """Run stage 1 and yield each section as soon as it is finished (already-made sections first).

    model: a transformers causal LM; prompt: from `prompt.build_prompt`; segments: how many sections to run in all
    (None = every section of the lyrics).
    """
    sampling.check()
    device = model.device
    subset = allowed_ids(device)
    total = len(prompt.pieces) if segments is None else min(segments, len(prompt.pieces))
    total = max(total, len(prompt.done))
    context = GuidedContext(model, subset, context_needed(prompt, total, sampling.max_new_tokens))
    max_context = CONTEXT_TOKENS - sampling.max_new_tokens - 1  # the official bound: prompt + new tokens fit in 16384
    max_new = sampling.max_new_tokens // 2 * 2  # whole frames only
    pending: list[int] = []  # ids in the history that the model has not seen yet

    for index in range(total):
        label = prompt.labels[index] if index < len(prompt.labels) else ""
        piece = list(prompt.pieces[index])
        if index < len(prompt.done):
            audio = [int(i) for i in prompt.done[index]]
            context.feed(context.refill(max_context, pending + piece + audio))
            pending = [EOA]
            vocal, instrumental = deinterleave(np.asarray(audio))
            yield SectionTokens(index, label, ids_to_codes(vocal, 1)[0], ids_to_codes(instrumental, 1)[0], False)
            continue
        cond, uncond = context.feed(context.refill(max_context, pending + piece), restart_uncond=True)
        # One seed per section, so a song made section by section (one GPU call each) equals one made at once.
        generator = torch.Generator(device=device).manual_seed(section_seed(seed, index))
        scale = sampling.guidance(index)
        new_ids: list[int] = []
        while len(new_ids) < max_new:
            scores = guided_scores(cond[None], uncond[None], scale, subset)
            scores = penalize_repeats(scores, context.seen, sampling.repetition_penalty)
            if len(new_ids) < sampling.min_new_tokens or len(new_ids) % 2:
                scores[:, 0] = float("-inf")  # <EOA> only after min_new_tokens and on a frame boundary
            choice = int(pick(scores, sampling.do_sample, sampling.temperature, sampling.top_k, sampling.top_p, generator)[0])
            token = int(subset[choice])
            if on_token is not None:
                on_token(TokenProgress(index, total, len(new_ids) + 1, max_new))
            if token == EOA:
                break
            new_ids.append(token)
            cond, uncond = context.feed([token])
        pending = [EOA]  # fed with the next section's prompt, saving a forward pass
        codes = np.asarray(new_ids, dtype=np.int64) - XCODEC_OFFSET
        yield SectionTokens(index, label, codes[0::2], codes[1::2], True)
