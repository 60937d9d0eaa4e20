"""A section cut part-way (what `Unfinished` holds: stage 1's `Stage1Partial`, or stage 1's sections and stage 2's
`RowCodes`) as plain integer arrays for a song bundle, and back with every field checked.

A bundle comes from a client, so nothing here is pickled and nothing read is trusted: each array's header is checked
before it is read (yue/arrays.py: the specs below), then shapes, ranges and their agreement with each other and with
the song before the section (its length, its section count): a record that passes resumes exactly, one that does not
is refused with a message naming the array.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..arrays import ArrayFileError, Spec
from ..config import CONTEXT_TOKENS, Limits, Stage2Config
from ..rates import CODEBOOK_SIZE
from ..text.tokens import codebook_range
from .stage1 import SectionTokens, Stage1Partial
from .stage2 import Row, RowCodes

PREFIX = "unfinished_"
DEVICE_TYPES = ("cpu", "cuda")  # where a sampler's state may come from (its bytes mean something only there)
CUDA_STATE_BYTES = 16  # a CUDA generator's state: seed and offset, 8 bytes each
MAX_STATE_BYTES = 8192  # any generator state: the CPU's Mersenne Twister is 5056 bytes
MAX_LABEL_BYTES = 256  # a section's label ("verse", "chorus" …) as UTF-8
MAX_TAKES = Limits().max_takes
MAX_SECTION_FRAMES = CONTEXT_TOKENS // 2 // 2  # a section's token budget is at most half the context, two ids a frame
CHUNK = Stage2Config.chunk_frames
MAX_ROWS = 2 * MAX_TAKES * (MAX_SECTION_FRAMES // CHUNK + 2)  # rows that may overlap one section, both tracks
SPECS = {
    f"{PREFIX}head": Spec((1,), 4),  # section, takes, step (-1: stage 1 is done), device type
    f"{PREFIX}ids": Spec((1,), MAX_TAKES * 2 * MAX_SECTION_FRAMES),  # every take's ids, one after another
    f"{PREFIX}id_counts": Spec((1,), MAX_TAKES),
    f"{PREFIX}active": Spec((1,), MAX_TAKES),
    f"{PREFIX}generators": Spec((2,), MAX_TAKES * MAX_STATE_BYTES, "u"),
    f"{PREFIX}section_frames": Spec((1,), MAX_TAKES),
    f"{PREFIX}section_vocal": Spec((1,), MAX_TAKES * MAX_SECTION_FRAMES),
    f"{PREFIX}section_instrumental": Spec((1,), MAX_TAKES * MAX_SECTION_FRAMES),
    f"{PREFIX}label": Spec((1,), MAX_LABEL_BYTES, "u"),
    f"{PREFIX}rows": Spec((2,), 4 * MAX_ROWS),  # track, start, length, frames made
    f"{PREFIX}row_codes": Spec((2,), Stage2Config.codebooks * MAX_ROWS * CHUNK),
}
SPECS = {name: replace(spec, optional=True) for name, spec in SPECS.items()}  # a bundle of whole sections has none
STAGE1 = ("ids", "id_counts", "active", "generators")
STAGE2 = ("section_frames", "section_vocal", "section_instrumental", "label", "rows", "row_codes")


def to_arrays(section: int, stage1: Stage1Partial | None, sections: tuple[SectionTokens, ...],
              rows: tuple[RowCodes, ...]) -> dict[str, np.ndarray]:
    """The record of a cut section (an `Unfinished`'s fields) as named arrays for np.savez."""
    if stage1 is not None:
        head = [section, len(stage1.ids), stage1.step, DEVICE_TYPES.index(stage1.device_type)]
        arrays = {"ids": np.concatenate([np.zeros(0, np.int64), *stage1.ids]).astype(np.int64),
                  "id_counts": np.array([ids.size for ids in stage1.ids], np.int64),
                  "active": np.array(stage1.active, np.int64),
                  "generators": np.stack([np.frombuffer(state, np.uint8) for state in stage1.generators])}
    else:
        codes = lambda parts: np.concatenate([np.zeros((Stage2Config.codebooks, 0), np.int64), *parts], axis=1)
        head = [section, len(sections), -1, 0]
        arrays = {"section_frames": np.array([s.frames for s in sections], np.int64),
                  "section_vocal": np.concatenate([s.vocal for s in sections]).astype(np.int64),
                  "section_instrumental": np.concatenate([s.instrumental for s in sections]).astype(np.int64),
                  "label": np.frombuffer(sections[0].label.encode("utf-8"), np.uint8),
                  "rows": np.array([(p.row.track, p.row.start, p.row.length, p.frames) for p in rows],
                                   np.int64).reshape(-1, 4),
                  "row_codes": codes([p.codes.astype(np.int64) for p in rows])}
    return {PREFIX + name: array for name, array in {"head": np.array(head, np.int64), **arrays}.items()}


def from_arrays(data: dict[str, np.ndarray], name: str, done_sections: int, tracks: tuple[np.ndarray, np.ndarray]):
    """(section, stage1, sections, rows) of the record in `data` (a bundle's arrays, read with SPECS), or None when
    it holds none. `done_sections`, `tracks`: the song's finished sections and its stage-1 (vocal, instrumental)
    codes, which the record must continue. Raises ArrayFileError naming the file and what is wrong."""
    present = {key.removeprefix(PREFIX) for key in data if key.startswith(PREFIX)}
    if not present:
        return None
    bad = lambda what: ArrayFileError(f"{name}: its unfinished section is damaged: {what}")
    if "head" not in present:
        raise bad("it lacks its head (section, takes, step)")
    head = data[PREFIX + "head"]
    if head.shape != (4,):
        raise bad(f"its head has shape {head.shape}, not (4,)")
    section, takes, step, device = (int(x) for x in head)
    stage = STAGE1 if step >= 0 else STAGE2
    if present != {"head", *stage}:
        raise bad(f"it holds {sorted(present - {'head'})}; stage {1 if step >= 0 else 2} needs {sorted(stage)}")
    if section != done_sections:
        raise bad(f"it is section {section + 1}, but the song has {done_sections} finished sections before it")
    if not 1 <= takes <= MAX_TAKES or not 0 <= device < len(DEVICE_TYPES):
        raise bad(f"{takes} takes on device {device} (1 to {MAX_TAKES} takes, device 0 to {len(DEVICE_TYPES) - 1})")
    get = lambda key: data[PREFIX + key]
    if step >= 0:
        return section, _stage1(get, section, takes, step, DEVICE_TYPES[device], bad), (), ()
    sections = _sections(get, section, takes, bad)
    return section, None, sections, _rows(get, sections, tracks, bad)


def _shape(array: np.ndarray, shape: tuple, what: str, bad) -> np.ndarray:
    if array.shape != shape:
        raise bad(f"{what} has shape {array.shape}, not {shape}")
    return array


def _within(array: np.ndarray, low: int, high: int, what: str, bad) -> np.ndarray:
    if array.size and (array.min() < low or array.max() >= high):
        raise bad(f"{what} holds values outside {low}..{high - 1}")
    return array


def _stage1(get, section: int, takes: int, step: int, device: str, bad) -> Stage1Partial:
    if step > 2 * MAX_SECTION_FRAMES:
        raise bad(f"stage 1 is at step {step}; a section has at most {2 * MAX_SECTION_FRAMES}")
    counts = _within(_shape(get("id_counts"), (takes,), "id_counts", bad), 0, step + 1, "id_counts", bad)
    active = _within(_shape(get("active"), (takes,), "active", bad), 0, 2, "active", bad).astype(bool)
    if any(on and count != step for on, count in zip(active, counts)):
        raise bad(f"a take still going has not made one id per step ({step}): {counts.tolist()}")
    ids = _within(_shape(get("ids"), (int(counts.sum()),), "ids", bad), *codebook_range(0), "ids", bad)
    state_bytes = torch.Generator().get_state().numel() if device == "cpu" else CUDA_STATE_BYTES
    generators = _shape(get("generators"), (takes, state_bytes), "generators", bad)
    split = np.split(ids, np.cumsum(counts)[:-1])
    return Stage1Partial(section, step, tuple(part.copy() for part in split), tuple(bool(a) for a in active),
                         tuple(bytes(state) for state in generators), device)


def _sections(get, section: int, takes: int, bad) -> tuple[SectionTokens, ...]:
    frames = _within(_shape(get("section_frames"), (takes,), "section_frames", bad), 1, MAX_SECTION_FRAMES + 1,
                     "section_frames", bad)
    tracks = [_within(_shape(get(f"section_{k}"), (int(frames.sum()),), f"section_{k}", bad), 0, CODEBOOK_SIZE,
                      f"section_{k}", bad) for k in ("vocal", "instrumental")]
    try:
        label = get("label").tobytes().decode("utf-8")
    except UnicodeDecodeError:
        raise bad("its label is not UTF-8 text") from None
    ends = np.cumsum(frames)[:-1]
    vocal, instrumental = (np.split(track, ends) for track in tracks)
    return tuple(SectionTokens(section, label, v.copy(), i.copy(), True) for v, i in zip(vocal, instrumental))


def _rows(get, sections: tuple[SectionTokens, ...], song: tuple[np.ndarray, np.ndarray], bad) -> tuple[RowCodes, ...]:
    """Stage-2 rows made so far: each within its track (the song's codes and the take's section), on a chunk
    boundary, once, and agreeing with the stage-1 codes it was made from (codebook 0 is the track itself)."""
    table = get("rows")
    if table.ndim != 2 or table.shape[1] != 4:
        raise bad(f"rows has shape {table.shape}, not (rows, 4)")
    made = int(table[:, 3].sum()) if table.size else 0
    codes = _within(_shape(get("row_codes"), (Stage2Config.codebooks, made), "row_codes", bad), 0, CODEBOOK_SIZE,
                    "row_codes", bad)
    tracks = [np.concatenate([song[k], getattr(s, ("vocal", "instrumental")[k])]) for s in sections for k in (0, 1)]
    rows, seen, offset = [], set(), 0
    for track, start, length, frames in (tuple(int(x) for x in row) for row in table):
        where = f"row (track {track}, start {start}, length {length}, {frames} frames made)"
        if not (0 <= track < len(tracks) and 0 <= start and start % CHUNK == 0 and 1 <= length <= CHUNK
                and start + length <= tracks[track].size and 0 <= frames <= length) or (track, start) in seen:
            raise bad(f"{where} does not fit its track ({len(tracks)} tracks)")
        part = codes[:, offset:offset + frames]
        if not np.array_equal(part[0], tracks[track][start:start + frames]):
            raise bad(f"{where} does not continue the song's stage-1 codes")
        seen.add((track, start))
        rows.append(RowCodes(Row(track, start, length), part.copy()))
        offset += frames
    return tuple(rows)
