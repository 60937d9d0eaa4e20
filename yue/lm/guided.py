"""The stage-1 model's view of the song so far, for one or several takes (independent samples of the same song).

One static cache (yue/lm/decoder.py) holds 2 rows per take: row 2t is take t's conditional context, row 2t+1 its
unconditional (guidance) context, which restarts at every generated section from the last prompt token, exactly like
transformers' `UnbatchedClassifierFreeGuidanceLogitsProcessor`.

Every row writes the same slot at each call, so the takes stay aligned: the next section's prompt, the same text for
every take, is one prefill for all of them. Each row *sees* only its own slots and counts its own rotary positions;
a take that ended its section early keeps stepping on slots it does not see (its output is not used), and a
take's refilled window shorter than the others' is left-padded with slots it does not see. So each take computes
what a one-take run computes; only the float rounding of batched products may differ.

The decode steps' slots are settled every SETTLE_STEPS steps (yue/lm/settle.py): a run cut at any step and resumed
in another process (`replay`) holds the same cache bits, so it samples the same tokens in any precision.
"""
from __future__ import annotations

import torch

from ..config import CONTEXT_TOKENS
from .decoder import StaticDecoder
from .lmhead import full_logits
from ..text.tokens import EOA

PREFILL_CHUNK = 2048  # ids per model call when feeding a long prompt (a refill can be 13k ids)
# Decode steps per settling prefill. Settling costs about one decode step on a GPU (a 64-token prefill reads the
# weights once, as a step does): ~1.5 % more work; a resumed call re-creates the cache with one prefill per block
# and at most SETTLE_STEPS - 1 decode steps (bench/bench_lm.py "cut" measures both).
SETTLE_STEPS = 64


class GuidedContext:
    """`histories[t]` is take t's whole untruncated id list; the model sees `histories[t][window_starts[t]:]` (the
    official left truncation). `seen[t]` marks the allowed ids in take t's window (for the repetition penalty)."""

    def __init__(self, model, subset: torch.Tensor, takes: int = 1, capacity: int = 4096):
        """model None: a plan of the windows only (every id is counted, nothing is computed)."""
        self.takes = takes
        self.head = None if model is None else model.get_output_embeddings()
        self.decoder = None if model is None else StaticDecoder(model, 2 * takes, min(capacity, CONTEXT_TOKENS),
                                                                 settle_every=SETTLE_STEPS)
        self.device = subset.device
        self.subset = subset
        self.histories: list[list[int]] = [[] for _ in range(takes)]
        self.window_starts = [0] * takes
        self.restarts = 0  # times `refill` restarted the window
        # While True, ids are only counted: what the model would see now goes again, with the window, into the
        # cache at the window's next restart, so feeding it would be work thrown away (kept sections before it).
        self.counting = model is None
        self.reset()

    def reset(self) -> None:
        """An empty cache (histories are kept: `refill` decides what goes back in)."""
        if self.decoder is not None:
            self.decoder.clear()
        self.slot = 0  # slots in use, shared by every row
        self.positions = torch.zeros(2 * self.takes, dtype=torch.long, device=self.device)  # next rotary position
        self.seen = torch.zeros(self.takes, self.subset.shape[0], dtype=torch.bool, device=self.device)

    # -- feeding ---------------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def feed(self, per_take: list[list[int]], restart_uncond: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Append ids to every take (one list per take); return the last (cond, uncond) logits, Tensor[takes, V].

        With `restart_uncond` each unconditional row forgets everything and starts again from the last id of its
        take (it computes only that token: a row is never run on a token it may not see).
        """
        longest = max(len(ids) for ids in per_take)
        if self.slot + longest > CONTEXT_TOKENS:
            raise ValueError(f"stage-1 context overflow: {self.slot + longest} > {CONTEXT_TOKENS} tokens")
        if self.counting:
            return self._count(per_take, longest)
        if restart_uncond:
            self.decoder.settle()  # before the rows forget: settling marks its slots seen again
            self.decoder.visible[1::2] = False
            self.positions[1::2] = 0
        hidden = torch.zeros(2 * self.takes, self.decoder.step_hidden.shape[1], dtype=self.decoder.dtype,
                             device=self.device)  # a take fed nothing keeps zeros: its caller does not use them
        if all(ids == per_take[0] for ids in per_take):  # the usual case: one prefill for every take
            self._prefill_rows(per_take[0], slice(0, None), self.slot, restart_uncond, hidden)
        else:  # different windows after a refill: each take right-aligned to the longest
            for take, ids in enumerate(per_take):
                if not ids:
                    continue
                rows = slice(2 * take, 2 * take + 2)
                self._prefill_rows(ids, rows, self.slot + longest - len(ids), restart_uncond, hidden[rows])
        self.slot += longest
        for take, ids in enumerate(per_take):
            self.histories[take].extend(ids)
            self.seen[take] |= torch.isin(self.subset, torch.as_tensor(ids, dtype=torch.long, device=self.device))
        logits = full_logits(self.head, hidden)
        return logits[0::2], logits[1::2]

    def _prefill_rows(self, ids: list[int], rows: slice, slot: int, restart_uncond: bool, out: torch.Tensor) -> None:
        """Feed `ids` to the takes of `rows` (pairs of rows) from `slot`; write each row's last hidden state to
        `out` ([rows, H])."""
        tensor = torch.tensor(ids, device=self.device)
        cond_rows = slice(rows.start, rows.stop, 2) if restart_uncond else rows
        count = len(range(2 * self.takes)[cond_rows])
        for first in range(0, len(ids), PREFILL_CHUNK):
            chunk = tensor[first:first + PREFILL_CHUNK]
            positions = self.positions[cond_rows, None] + torch.arange(chunk.shape[0], device=self.device)
            last = self.decoder.prefill(chunk.expand(count, -1), positions, slot + first, cond_rows)
            self.positions[cond_rows] += chunk.shape[0]
        if not restart_uncond:
            out.copy_(last)
            return
        out[0::2] = last
        uncond_rows = slice(rows.start + 1, rows.stop, 2)
        restart = tensor[-1:].expand(count, 1)
        out[1::2] = self.decoder.prefill(restart, self.positions[uncond_rows, None], slot + len(ids) - 1, uncond_rows)
        self.positions[uncond_rows] += 1

    @torch.inference_mode()
    def step(self, tokens: list[int], choices: list[int], active: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
        """One token per take (`choices`: its index in `subset`); takes not `active` step on a slot they do not
        see. Returns the (cond, uncond) logits, Tensor[takes, V] each."""
        decoder = self.decoder
        for take, (token, on) in enumerate(zip(tokens, active)):
            decoder.step_ids[2 * take:2 * take + 2].fill_(token)
            decoder.step_sees[2 * take:2 * take + 2].fill_(on)
        decoder.step_positions.copy_(self.positions[:, None])
        hidden = decoder.step(self.slot)
        self.positions += decoder.step_sees
        self.slot += 1
        for take, (token, choice, on) in enumerate(zip(tokens, choices, active)):
            if on:
                self.histories[take].append(token)
                self.seen[take, choice] = True
        logits = full_logits(self.head, hidden)
        return logits[0::2], logits[1::2]

    @torch.inference_mode()
    def replay(self, made: list[list[int]], final: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Feed each take's ids made so far in a section (one list per take, after the section's prompt) as the
        section's decode steps fed them: every take's rows step together, take t seeing its own id j at step j while
        it was going and an unseen <EOA> after it stopped; the cache then holds exactly what those steps and their
        settling left (`StaticDecoder.replay`). `final`: the section is finished (all of it settles). Returns the
        (cond, uncond) logits after the last step, Tensor[takes, V] each; None with `final` or nothing to feed."""
        steps = max(len(ids) for ids in made)
        if steps == 0:
            return None
        if self.slot + steps > CONTEXT_TOKENS:
            raise ValueError(f"stage-1 context overflow: {self.slot + steps} > {CONTEXT_TOKENS} tokens")
        if self.counting:
            return self._count(made, steps)
        ids = torch.full((2 * self.takes, steps), EOA, dtype=torch.long)
        sees = torch.zeros(2 * self.takes, steps, dtype=torch.bool)
        for take, taken in enumerate(made):
            ids[2 * take:2 * take + 2, :len(taken)] = torch.tensor(taken, dtype=torch.long)
            sees[2 * take:2 * take + 2, :len(taken)] = True
        ids, sees = ids.to(self.device), sees.to(self.device)
        positions = self.positions[:, None] + sees.cumsum(1) - sees.long()  # a row's position moves on its seen ids
        hidden = self.decoder.replay(self.slot, ids, positions, sees, final)
        self.positions += sees.sum(1)
        self.slot += steps
        for take, taken in enumerate(made):
            self.histories[take].extend(taken)
            self.seen[take] |= torch.isin(self.subset, torch.as_tensor(taken, dtype=torch.long, device=self.device))
        if final:
            return None
        logits = full_logits(self.head, hidden)
        return logits[0::2], logits[1::2]

    def _count(self, per_take: list[list[int]], slots: int) -> None:
        """Feeding while `counting`: the histories and the shared slots move on, the model sees nothing."""
        for take, ids in enumerate(per_take):
            self.histories[take].extend(ids)
        self.slot += slots

    # -- windows and takes -----------------------------------------------------------------------------------------

    def refill(self, max_context: int, pending: list[list[int]]) -> list[list[int]]:
        """What to feed next for each take, given the ids `pending` for it.

        When a take's window plus its pending ids would pass `max_context`, its window restarts on the last
        `max_context` ids (the official left truncation); when the shared slots would pass it (takes whose sections
        had different lengths leave unseen slots), every window is fed again without its holes. In both cases the
        cache restarts and every take's whole window is returned; otherwise `pending` as it is.
        """
        totals = [len(h) + len(p) for h, p in zip(self.histories, pending)]
        over = [total - start > max_context for total, start in zip(totals, self.window_starts)]
        if not any(over) and self.slot + max(len(p) for p in pending) <= max_context:
            return pending
        feed = []
        for take, (history, ids) in enumerate(zip(self.histories, pending)):
            whole = history + ids
            if over[take]:
                self.window_starts[take] = totals[take] - max_context
            self.histories[take] = whole[:self.window_starts[take]]
            feed.append(whole[self.window_starts[take]:])
        self.reset()
        self.restarts += 1
        return feed

    def adopt(self, take: int) -> None:
        """Every take continues from take `take`'s song so far (keep one take's section, go on with all)."""
        for other in range(self.takes):
            if other == take:
                continue
            for offset in (0, 1):
                self.decoder.copy_row(2 * take + offset, 2 * other + offset)
            self.histories[other] = list(self.histories[take])
            self.window_starts[other] = self.window_starts[take]
            self.seen[other] = self.seen[take]
            self.positions[2 * other:2 * other + 2] = self.positions[2 * take:2 * take + 2]
