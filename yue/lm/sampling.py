"""Pure functions on logits, each matching the transformers processor the official run used (SPEC §3.4).

They work on a *subset* of the vocabulary (the ids stage 1 may emit): classifier-free guidance needs the log-softmax
normaliser of the full row, which `guided_scores` takes from the full logits; every later step only ever touches
allowed ids, so computing them on the subset gives the same result as on the full row with the rest at -inf.
"""
from __future__ import annotations

import torch

NEG_INF = float("-inf")


def guided_scores(cond_logits: torch.Tensor, uncond_logits: torch.Tensor, scale: float, subset: torch.Tensor) -> torch.Tensor:
    """transformers' `UnbatchedClassifierFreeGuidanceLogitsProcessor` on `subset` ids.

    cond_logits, uncond_logits: Tensor[B, V] (full vocabulary); subset: LongTensor[S] -> Tensor[B, S] float32.
    """
    cond = cond_logits.float()
    cond = cond.index_select(-1, subset) - torch.logsumexp(cond, dim=-1, keepdim=True)
    if scale == 1:
        return cond
    uncond = uncond_logits.float()
    uncond = uncond.index_select(-1, subset) - torch.logsumexp(uncond, dim=-1, keepdim=True)
    return scale * (cond - uncond) + uncond


def penalize_repeats(scores: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """`RepetitionPenaltyLogitsProcessor`: ids already in the context get score*p if negative, score/p otherwise.

    scores: Tensor[B, S]; seen: BoolTensor[S] (or [B, S]).
    """
    if penalty == 1.0:
        return scores
    penalized = torch.where(scores < 0, scores * penalty, scores / penalty)
    return torch.where(seen, penalized, scores)


def top_k_filter(scores: torch.Tensor, k: int) -> torch.Tensor:
    """`TopKLogitsWarper`: keep the k best (ties with the k-th kept)."""
    if not k or k >= scores.shape[-1]:
        return scores
    kth_best = torch.topk(scores, k, dim=-1).values[..., -1:]
    return scores.masked_fill(scores < kth_best, NEG_INF)


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """`TopPLogitsWarper`: keep the smallest set of best ids whose probability reaches top_p (at least one)."""
    if top_p >= 1.0:
        return scores
    sorted_scores, order = torch.sort(scores, descending=False, dim=-1)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative <= (1 - top_p)
    drop_sorted[..., -1:] = False
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, NEG_INF)


def pick(scores: torch.Tensor, do_sample: bool, temperature: float, top_k: int, top_p: float,
         generator: torch.Generator | None) -> torch.Tensor:
    """Index of the chosen id per row: argmax when greedy, else temperature -> top-k -> top-p -> multinomial."""
    if not do_sample:
        return scores.argmax(dim=-1)
    if temperature != 1.0:
        scores = scores / temperature
    scores = top_p_filter(top_k_filter(scores, top_k), top_p)
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(-1)
