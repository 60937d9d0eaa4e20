"""Stage 1: section-by-section generation of interleaved (vocal, instrumental) codebook-0 ids (SPEC §3.4).

Differences from the official loop, none of which change what the model computes:
* one KV cache is kept across sections (the official code re-prefills the whole history for every section);
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
from .kvcache import growing_cache
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
    """The model's view of the song so far: one KV cache whose row 0 is the conditional context and row 1 the
    unconditional (guidance) context, plus what the repetition penalty needs (which ids are in the window).

    `history` is the whole untruncated id list; the model sees `history[window_start:]` (left truncation).
    """

    def __init__(self, model, subset: torch.Tensor):
        self.model = model
        self.decoder, self.head = model.get_decoder(), model.get_output_embeddings()
        self.device = subset.device
        self.subset = subset
        self.history: list[int] = []
        self.reset(0)

    def reset(self, window_start: int) -> None:
        self.cache = growing_cache(self.model.config, 4096)
        # Preallocated so a decode step does not copy the whole mask; columns [0, cond_len) are in use.
        self.mask_buffer = torch.zeros(2, CONTEXT_TOKENS, dtype=torch.long, device=self.device)
        self.window_start = window_start
        self.cond_len = 0  # positions used by row 0
        self.uncond_len = 0
        self.seen = torch.zeros(self.subset.shape[0], dtype=torch.bool, device=self.device)

    @torch.inference_mode()
    def feed(self, ids: list[int], restart_uncond: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ids to both rows; return the last (cond, uncond) logits, Tensor[V] each.

        With `restart_uncond` the unconditional row forgets everything and starts again from the last of `ids`.
        Long inputs go in chunks of PREFILL_CHUNK, which bounds activation memory (a refill can be 13k ids).
        """
        if self.cond_len + len(ids) > CONTEXT_TOKENS:
            raise ValueError(f"stage-1 context overflow: {self.cond_len + len(ids)} > {CONTEXT_TOKENS} tokens")
        if restart_uncond:
            self.mask_buffer[1, :self.cond_len] = 0
            self.uncond_len = 0
        for first in range(0, len(ids), PREFILL_CHUNK):
            chunk = ids[first:first + PREFILL_CHUNK]
            last = first + PREFILL_CHUNK >= len(ids)
            hidden = self._forward(chunk, "all" if not restart_uncond else "last" if last else "none")
        self.history.extend(ids)
        self._mark_seen(ids)
        logits = full_logits(self.head, hidden)
        return logits[0], logits[1]

    def _forward(self, ids: list[int], uncond_sees: str) -> torch.Tensor:
        """One model call on both rows. The unconditional row sees "all" of `ids`, "none", or only the "last" (its
        restart token). Returns the last hidden state of each row, Tensor[2, H]."""
        n, start = len(ids), self.cond_len
        self.mask_buffer[0, start:start + n] = 1
        uncond_mask = self.mask_buffer[1, start:start + n]
        uncond_mask.fill_(1 if uncond_sees == "all" else 0)
        if uncond_sees == "last":
            uncond_mask[-1] = 1
        seen_before = self.uncond_len
        self.uncond_len += int(uncond_mask.sum())
        # positions of the unconditional row count only what it sees (masked ids get any position: never attended)
        uncond_positions = (seen_before + uncond_mask.cumsum(0) - 1).clamp(min=0)
        hidden = self.decoder(
            input_ids=torch.tensor([ids, ids], device=self.device),
            attention_mask=self.mask_buffer[:, :start + n],
            position_ids=torch.stack([torch.arange(start, start + n, device=self.device), uncond_positions]),
            past_key_values=self.cache,
            use_cache=True,
        ).last_hidden_state[:, -1]
        self.cond_len += n
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
    context = GuidedContext(model, subset)
    total = len(prompt.pieces) if segments is None else min(segments, len(prompt.pieces))
    total = max(total, len(prompt.done))
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
