"""Exact resume in any precision: the settling and replay half of `yue.lm.decoder.StaticDecoder`.

A decode step and a prefill round differently in bf16, so a resumed run, which must re-create its cache by prefill,
would otherwise sample other tokens than the uncut run (tests/lm/test_settle.py shows both). So with `settle_every`
= B the slots of every B decode steps are written again by one prefill of those tokens (and the rest of a block when
the next prefill comes): the cache then holds the same bits whether a run was cut and resumed (`replay`) or not.
"""
from __future__ import annotations

import torch


class Settling:
    """Settled decode steps and their replay, mixed into StaticDecoder: it provides `prefill`, `step` and the static
    step inputs (`step_ids`, `step_positions`, `step_sees`, `step_hidden`) these methods read and write."""

    def __init__(self, settle_every: int | None):
        self.settle_every = settle_every
        # Decode steps since the last prefill: (slot, ids, positions, sees) each, for `settle`.
        self.unsettled: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def _record_step(self, slot: int) -> torch.Tensor:
        """Note the decode step just run into `slot` and settle every `settle_every` of them. Returns the hidden
        states the next step goes on from, Tensor[rows, H]."""
        if not self.settle_every:
            return self.step_hidden
        self.unsettled.append((slot, self.step_ids[:, 0].clone(), self.step_positions[:, 0].clone(),
                               self.step_sees.clone()))
        return self.settle() if len(self.unsettled) == self.settle_every else self.step_hidden

    def settle(self) -> torch.Tensor | None:
        """Write the slots of the decode steps since the last prefill again, as one prefill of their tokens
        (positions and seen slots as the steps had them). Returns the last hidden state of each row, Tensor[rows, H]
        (None when there was nothing to settle): what the next step goes on from."""
        if not self.unsettled:
            return None
        steps, self.unsettled = self.unsettled, []
        ids, positions, sees = (torch.stack([step[part] for step in steps], 1) for part in (1, 2, 3))
        return self.prefill(ids, positions, steps[0][0], sees=sees)

    def replay(self, slot: int, ids: torch.Tensor, positions: torch.Tensor, sees: torch.Tensor | None = None,
               final: bool = False) -> torch.Tensor:
        """Make the cache hold exactly what n decode steps from `slot` (one per column of ids, positions and sees,
        each [rows, n]) and their settling made in an uncut run: every whole block of `settle_every` steps, and with
        `final` the rest too (a finished section, settled by the next prefill), as the one prefill settling made of
        it; the rest of a block under way as the decode steps themselves. Returns the last hidden state of each row.
        Cost: n / settle_every prefills and at most settle_every - 1 steps."""
        self.settle()
        n = ids.shape[1]
        block = self.settle_every or n
        whole = n if final else n // block * block
        hidden = None
        for first in range(0, whole, block):
            part = slice(first, min(first + block, whole))
            hidden = self.prefill(ids[:, part], positions[:, part], slot + first,
                                  sees=None if sees is None else sees[:, part])
        for column in range(whole, n):
            if sees is None:
                self.step_sees.fill_(True)
            else:
                self.step_sees.copy_(sees[:, column])
            hidden = self.step(slot + column, ids[:, column], positions[:, column])
        return hidden
