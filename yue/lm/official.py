"""The official algorithms, written plainly on transformers' `generate`: the oracles our fast paths are tested and
benchmarked against. Nothing in the pipeline calls this module.

Both use the bug fixes we keep everywhere (stage-1 allowed ids with whole frames, stage-2 per-position codebooks),
so the comparison isolates what our code changes: caching and batching.
"""
from __future__ import annotations

import numpy as np
import torch

from ..config import CONTEXT_TOKENS, Sampling
from ..text.prompt import Stage1Prompt
from .stage2 import plan_rows, row_prompt
from ..text.tokens import EOA, XCODEC_OFFSET, codebook_range, ids_to_codes


class _Stage1Mask:
    """Only <EOA> and codebook-0 ids; <EOA> only after whole (vocal, instrumental) frames."""

    def __init__(self, prompt_length: int):
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        start, end = codebook_range(0)
        allowed = torch.full_like(scores, float("-inf"))
        allowed[:, start:end] = 0
        if (input_ids.shape[1] - self.prompt_length) % 2 == 0:
            allowed[:, EOA] = 0
        return scores + allowed


class _Stage2Mask:
    """Generated position k (0-based) of a frame may only be an id of codebook k + 1."""

    def __init__(self, prompt_length: int):
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        start, end = codebook_range(1 + input_ids.shape[1] - self.prompt_length)
        allowed = torch.full_like(scores, float("-inf"))
        allowed[:, start:end] = 0
        return scores + allowed


@torch.inference_mode()
def stage1_generate(model, prompt: Stage1Prompt, sampling: Sampling, segments: int | None = None) -> list[list[int]]:
    """The official section loop (SPEC §3.4): every section re-prefills the whole (left-truncated) history and calls
    `generate` with guidance, repetition penalty and min_new_tokens. Greedy only (sampling RNG differs anyway).

    Returns the generated ids of each section (without <EOA>).
    """
    from transformers import LogitsProcessorList

    raw: list[int] = []
    outputs = []
    total = len(prompt.pieces) if segments is None else min(segments, len(prompt.pieces))
    max_context = CONTEXT_TOKENS - sampling.max_new_tokens - 1
    for index in range(total):
        if index < len(prompt.done):  # continuation: a kept section enters the history as if generated
            outputs.append([int(i) for i in prompt.done[index]])
            raw = raw + list(prompt.pieces[index]) + outputs[-1] + [EOA]
            continue
        input_ids = (raw + list(prompt.pieces[index]))[-max_context:]
        tensor = torch.tensor([input_ids], device=model.device)
        out = model.generate(
            tensor,
            attention_mask=torch.ones_like(tensor),
            max_new_tokens=sampling.max_new_tokens,
            min_new_tokens=sampling.min_new_tokens,
            do_sample=False,
            repetition_penalty=sampling.repetition_penalty,
            guidance_scale=sampling.guidance(index),
            eos_token_id=EOA,
            pad_token_id=EOA,
            logits_processor=LogitsProcessorList([_Stage1Mask(len(input_ids))]),
        )[0, len(input_ids):].tolist()
        if out and out[-1] == EOA:
            out = out[:-1]
        outputs.append(out)
        raw = raw + list(prompt.pieces[index]) + out + [EOA]
    return outputs


@torch.inference_mode()
def stage2_generate(model, codebook0: np.ndarray, chunk_frames: int = 300, batch_size: int = 4) -> np.ndarray:
    """The official per-frame loop (SPEC §4.2-4.3): rows of `chunk_frames` in batches of `batch_size`, the tail as
    one row, and for every frame a fresh `generate` of 7 tokens over the whole growing row.

    codebook0: (T,) codes -> (8, T) codes.
    """
    from transformers import LogitsProcessorList

    codebook0 = np.asarray(codebook0, dtype=np.int64).reshape(-1)
    rows = plan_rows([codebook0.size], chunk_frames)
    full = [r for r in rows if r.length == chunk_frames]
    batches = [full[i:i + batch_size] for i in range(0, len(full), batch_size)] + [[r] for r in rows if r not in full]
    pieces = []
    for batch in batches:
        frames = np.stack([codebook0[r.start:r.start + r.length] for r in batch])
        prompt = torch.tensor([row_prompt(f) for f in frames], device=model.device)
        prompt_length = prompt.shape[1]
        for f in range(frames.shape[1]):
            column = torch.tensor(frames[:, f:f + 1] + XCODEC_OFFSET, device=model.device)
            prompt = torch.cat([prompt, column], dim=1)
            out = model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                min_new_tokens=7,
                max_new_tokens=7,
                do_sample=False,
                eos_token_id=EOA,
                pad_token_id=EOA,
                logits_processor=LogitsProcessorList([_Stage2Mask(prompt.shape[1])]),
            )
            assert out.shape[1] - prompt.shape[1] == 7
            prompt = out
        pieces += [row for row in prompt[:, prompt_length:].cpu().numpy()]
    return ids_to_codes(np.concatenate(pieces), 8)
