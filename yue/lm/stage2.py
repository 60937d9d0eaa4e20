"""Stage 2: teacher-forced filling of codebooks 1..7 from codebook 0 (SPEC §4).

Same sequences and greedy choices as the official per-frame loop, computed differently:
* a static KV cache is kept across frames (the official code re-prefills the whole row for every frame), and on
  CUDA each decode step is a replayed CUDA graph (yue/lm/decoder.py);
* all 6-second rows of every track run as one batch (rows of equal length share a batch; the tail row has its own);
* generated position k of a frame may only be a codebook-k id (the official code allows codebooks 1..7 anywhere and
  patches wrong picks afterwards), so the logits are computed for that codebook's 1024 ids only;
* tracks shorter than one chunk work (the official code crashes on them);
* the decode steps' slots are settled every SETTLE_STEPS steps (yue/lm/settle.py), so a row cut at any frame and
  resumed in another call (`_fill_rows(made=...)`) makes the same codes in any precision.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..config import Stage2Config
from .deadline import Deadline, OutOfTime, Saves, read_clock
from .decoder import StaticDecoder
from .lmhead import CodebookHeads
from ..text.tokens import CODEBOOK_SIZE, SOA, STAGE_1, STAGE_2, XCODEC_OFFSET


@dataclass(frozen=True)
class Row:
    """One stage-2 sequence: frames [start, start + length) of track `track`."""

    track: int
    start: int
    length: int


@dataclass(frozen=True)
class RowCodes:
    """The codes (codebooks, f) of the first f frames of a row, made before a call stopped at its deadline
    (f == row.length: the row is done). Picklable: a row and a numpy array."""

    row: Row
    codes: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.codes.shape[1])


@dataclass(frozen=True)
class FrameProgress:
    frames_done: int
    frames_total: int


def plan_rows(track_frames: list[int], chunk_frames: int) -> list[Row]:
    """Official row split per track: whole chunks, then one row with the remaining (< chunk) frames."""
    rows = []
    for track, frames in enumerate(track_frames):
        whole = frames // chunk_frames * chunk_frames
        rows += [Row(track, start, chunk_frames) for start in range(0, whole, chunk_frames)]
        if frames > whole:
            rows.append(Row(track, whole, frames - whole))
    return rows


def row_prompt(codebook0: np.ndarray) -> list[int]:
    """[<SOA>, <stage_1>] + codebook-0 ids + [<stage_2>] (SPEC §4.3)."""
    return [SOA, STAGE_1] + [int(c) + XCODEC_OFFSET for c in codebook0] + [STAGE_2]


# Decode steps (8 a frame) per settling prefill: a prefill of 128 ids x the batch's rows costs a few decode steps on a
# GPU (~2-3 % more work); a resumed row replays at most 15 frames as steps.
SETTLE_STEPS = 128
# Pieces a row's codes are handed on in while it is made (`make_rows(on_codes=)`): every 100 frames (2 s) a listener
# can hear what is made; each piece costs the host one wait for the device and its audio some context decoded again.
PIECES_PER_ROW = 3
# The share of the device's total memory stage 2's batch may fill with KV cache. From the total, not what is free,
# so the batch (and with it every row's rounding) is the same in every process and call: a song cut into GPU calls
# gets the codes of an uncut run. Both LMs in bf16 take ~19 GB of a 48 GB card; a quarter leaves room.
STAGE2_MEMORY_SHARE = 0.25


def kv_bytes_per_token(model) -> int:
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    dtype_bytes = torch.finfo(model.dtype).bits // 8 if model.dtype.is_floating_point else 2
    return 2 * config.num_hidden_layers * config.num_key_value_heads * head_dim * dtype_bytes


def memory_batch_size(model, row_tokens: int, share: float = STAGE2_MEMORY_SHARE) -> int:
    """Rows decoded at once: `share` of the device's total memory over one row's KV cache and working activations
    (the same in every call on a device), but never more than half of what is free now (a crowded device)."""
    device = model.device
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
    else:
        import psutil

        memory = psutil.virtual_memory()
        free, total = memory.available, memory.total
    config = model.config
    activation = 4 * (config.hidden_size + config.intermediate_size) * 2 * 4  # a few live vectors per row, fp32
    per_row = kv_bytes_per_token(model) * row_tokens + activation * 8 + CODEBOOK_SIZE * 4
    return max(1, int(min(total * share, free * 0.5) // per_row))


@torch.inference_mode()
def _fill_rows(model, heads: CodebookHeads, codebook0: torch.Tensor, codebooks: int,
               on_frame: Callable[[int], None], made: torch.Tensor | None = None,
               deadline: Deadline | None = None, saves: Saves | None = None,
               state: Callable[[torch.Tensor], object] = lambda codes: codes,
               on_codes: Callable[[torch.Tensor], None] | None = None, piece: int = 1) -> torch.Tensor:
    """Greedy teacher-forced decode of rows of equal length.

    codebook0: LongTensor[B, L] codes -> LongTensor[B, codebooks, L'] codes (row 0 = the input), L' = L unless the
    deadline passed (then the frames done, L' < L). made: LongTensor[B, codebooks, f], the first f frames made by an
    earlier call: they are fed again and the loop goes on at frame f. `saves`: given `state(codes so far)`
    (LongTensor[B, codebooks, f] -> the caller's state) on the deadline's clock reads (`deadline.Saves`).
    `on_codes`: given the codes made so far every `piece` frames and once all are (it may copy them off the device:
    the only waits for the device here). Otherwise nothing waits for it: every chosen code feeds the next step.
    """
    batch, frames = codebook0.shape
    device = codebook0.device
    prefix = torch.tensor([SOA, STAGE_1], device=device).expand(batch, 2)
    suffix = torch.full((batch, 1), STAGE_2, device=device)
    offsets = XCODEC_OFFSET + CODEBOOK_SIZE * torch.arange(codebooks, device=device)
    codes = torch.empty(batch, codebooks, frames, dtype=torch.long, device=device)
    codes[:, 0] = codebook0
    first = 0 if made is None else made.shape[2]
    if first:
        codes[:, :, :first] = made
    decoder = StaticDecoder(model, batch, 3 + frames * (codebooks + 1), settle_every=SETTLE_STEPS)

    # The prompt plus frame 0's codebook-0 id go in one prefill; then one decode step per fed id: the codebook-k
    # code just chosen (k = 1..7), then the next frame's codebook-0 id. A resumed row's frames made so far are fed
    # again as those steps fed them (`StaticDecoder.replay`: the same cache bits as an uncut run).
    prompt = torch.cat([prefix, codebook0 + XCODEC_OFFSET, suffix, codebook0[:, :1] + XCODEC_OFFSET], dim=1)
    slot = prompt.shape[1]
    hidden = decoder.prefill(prompt, torch.arange(slot, device=device).expand(batch, slot), 0)
    if first:
        fed = torch.cat([codes[:, 1:, :first] + offsets[1:, None], codebook0[:, None, 1:first + 1] + XCODEC_OFFSET],
                        dim=1).transpose(1, 2).reshape(batch, first * codebooks)
        positions = torch.arange(slot, slot + fed.shape[1], device=device).expand(batch, -1)
        hidden = decoder.replay(slot, fed, positions)
        slot += fed.shape[1]

    def feed(ids: torch.Tensor) -> torch.Tensor:
        nonlocal slot
        decoder.step_positions.fill_(slot)
        hidden = decoder.step(slot, ids)
        slot += 1
        return hidden

    every = deadline.stage2_every() if deadline is not None else 1
    for frame in range(first, frames):
        now = read_clock(deadline, frame, first, every)
        if now is not None and now >= deadline.at:
            return codes[:, :, :frame]
        if saves is not None:
            saves.check(now, lambda: state(codes[:, :, :frame]))
        for k in range(1, codebooks):
            codes[:, k, frame] = heads.argmax(hidden, k)
            if k + 1 < codebooks:
                hidden = feed(codes[:, k, frame] + offsets[k])
        if frame + 1 < frames:
            feed(codes[:, -1, frame] + offsets[-1])
            hidden = feed(codebook0[:, frame + 1] + XCODEC_OFFSET)
        on_frame(batch)
        if on_codes is not None and (frame + 1 == frames or (frame + 1) % piece == 0):
            on_codes(codes[:, :, :frame + 1])
    return codes


def reusable(row: Row, known: np.ndarray | None, codebook0: np.ndarray, chunk_frames: int) -> bool:
    """A row computed before (same start, length and codebook-0 codes) gives the same codes again."""
    if known is None or row.start + row.length > known.shape[1]:
        return False
    if (row.start, row.length) not in {(r.start, r.length) for r in plan_rows([known.shape[1]], chunk_frames)}:
        return False
    return bool((known[0, row.start:row.start + row.length] == codebook0[row.start:row.start + row.length]).all())


def _checked(tracks: list[np.ndarray]) -> list[np.ndarray]:
    """Codebook-0 tracks as flat int64 arrays, each code within the codebook (ValueError naming the track)."""
    tracks = [np.asarray(t, dtype=np.int64).reshape(-1) for t in tracks]
    for number, track in enumerate(tracks):
        if track.size and (track.min() < 0 or track.max() >= CODEBOOK_SIZE):
            bad = track[(track < 0) | (track >= CODEBOOK_SIZE)][0]
            raise ValueError(f"track {number}: codebook-0 code {int(bad)} is outside 0..{CODEBOOK_SIZE - 1}")
    return tracks


def generate(model, tracks: list[np.ndarray], config: Stage2Config = Stage2Config(),
             on_progress: Callable[[FrameProgress], None] | None = None,
             known: list[np.ndarray | None] | None = None, deadline: Deadline | None = None,
             made: tuple[RowCodes, ...] = (), on_state: Callable[[tuple[RowCodes, ...]], None] | None = None,
             on_codes: Callable[[list[RowCodes]], None] | None = None) -> list[np.ndarray]:
    """Fill codebooks 1..7 for every track at once.

    tracks: codebook-0 codes, each (T,) or (1, T) in 0..1023 -> list of (codebooks, T) int64 code arrays.
    known: codes from an earlier call on a prefix of the same tracks (a song growing section by section); its rows
    are copied instead of recomputed.
    deadline: once it has passed, a clock read (on frame boundaries) raises `OutOfTime` with a tuple of `RowCodes`,
    every row made so far in whole or in part; `made`: such a tuple, to go on from (rows done are copied, rows begun
    go on from their last frame made). `on_state`: with a deadline, given such a tuple on clock reads every
    SAVE_EVERY_SECONDS or so (`deadline.Saves`), to go on from should the call be killed before its deadline.
    `on_codes`: given the codes of rows as they are made (`make_rows`).
    """
    tracks = _checked(tracks)
    rows = plan_rows([t.size for t in tracks], config.chunk_frames)
    outputs = [np.zeros((config.codebooks, t.size), dtype=np.int64) for t in tracks]
    known = known or [None] * len(tracks)
    for row in [r for r in rows if reusable(r, known[r.track], tracks[r.track], config.chunk_frames)]:
        outputs[row.track][:, row.start:row.start + row.length] = known[row.track][:, row.start:row.start + row.length]
        rows.remove(row)
    for part in make_rows(model, tracks, rows, config, on_progress, deadline, made, on_state, on_codes):
        outputs[part.row.track][:, part.row.start:part.row.start + part.row.length] = part.codes
    return outputs


def make_rows(model, tracks: list[np.ndarray], rows: list[Row], config: Stage2Config = Stage2Config(),
              on_progress: Callable[[FrameProgress], None] | None = None, deadline: Deadline | None = None,
              made: tuple[RowCodes, ...] = (), on_state: Callable[[tuple[RowCodes, ...]], None] | None = None,
              on_codes: Callable[[list[RowCodes]], None] | None = None) -> list[RowCodes]:
    """The codes of `rows` of `tracks` (codebook-0 codes, flat int64 each), one RowCodes per row in their order.

    Rows of one length make one batch (as many as `memory_batch_size` allows); rows in `made` (RowCodes of an earlier
    call) are copied when done, and go on from their last frame when begun, first, in batches of rows begun as far.
    `deadline`, `on_state`: as `generate` (the states hold these rows only). `on_codes`: given each batch's rows
    as far as made every `config.chunk_frames // PIECES_PER_ROW` frames and when done (a copy off the device: the
    caller may hear them), in the batch's order.
    """
    tracks = _checked(tracks)
    begun = {part.row: part.codes for part in made if part.row in rows}
    finished: list[RowCodes] = []  # rows done, in this call or an earlier one: carried on if this call stops too
    for row, row_codes in list(begun.items()):
        if row_codes.shape[1] == row.length:  # done in an earlier call
            finished.append(RowCodes(row, row_codes))
            del begun[row]
    rest = [r for r in rows if r not in {part.row for part in finished}]
    total = sum(r.length for r in rest)
    done = sum(codes.shape[1] for codes in begun.values())
    heads = CodebookHeads(model.get_output_embeddings(), config.codebooks)

    def frame_done(batch: int) -> None:
        nonlocal done
        done += batch
        if on_progress is not None:
            on_progress(FrameProgress(done, total))

    saves = Saves(on_state, deadline)
    # Rows of one length batch together; rows an earlier call began go first, in batches of rows begun as far.
    starts = {row: begun[row].shape[1] if row in begun else 0 for row in rest}
    for length, start in sorted({(r.length, starts[r]) for r in rest}, key=lambda g: (-g[1], -g[0])):
        group = [r for r in rest if r.length == length and starts[r] == start]
        row_tokens = 3 + length * config.codebooks
        limit = config.max_batch or memory_batch_size(model, row_tokens)
        for first in range(0, len(group), limit):
            batch = group[first:first + limit]
            codebook0 = torch.tensor(np.stack([tracks[r.track][r.start:r.start + length] for r in batch]),
                                     device=model.device)
            earlier = torch.tensor(np.stack([begun.pop(r) for r in batch]), device=model.device) if start else None
            as_made = lambda codes, batch=batch: [RowCodes(row, row_codes) for row, row_codes in zip(
                batch, codes.cpu().numpy())]
            # every row made so far, whole or in part, with this batch's rows as far as `codes` go
            so_far = lambda codes, as_made=as_made: tuple(finished + as_made(codes) + [
                RowCodes(r, c) for r, c in begun.items()])
            heard = None if on_codes is None else lambda codes, as_made=as_made: on_codes(as_made(codes))
            filled = _fill_rows(model, heads, codebook0, config.codebooks, frame_done, earlier, deadline, saves,
                                so_far, heard, max(1, config.chunk_frames // PIECES_PER_ROW))
            if filled.shape[2] < length:  # stopped at the deadline: hand back every row made
                raise OutOfTime(so_far(filled))
            finished += as_made(filled)
    order = {part.row: part for part in finished}
    return [order[row] for row in rows]
