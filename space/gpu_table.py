"""The booking tables the docs show, one per card: for each precision the GPU memory, the time of a 30 s section
and the seconds a 30 s section books, without and with listening while it is made (the page's switch, on by
default), all made from space/gpu_time.py's numbers. README.md, docs/space.md and docs/models.md hold them between
`<!-- gpu-table: CARD -->` and `<!-- /gpu-table -->` lines, and tests/space/test_gpu_table.py keeps each equal to
`markdown(CARD)`; `python -m space.gpu_table` prints them."""
from __future__ import annotations

import re
import sys

from . import gpu_time
from yue.config import Sampling
from yue.weights import registry

PRECISIONS = ("bf16", "int8", "int4", "nf4", "bnb-int8")  # what the Space offers (fp32 is the CPU's)
MARKER = re.compile(r"<!-- gpu-table: (\w+) -->\n.*?<!-- /gpu-table -->", re.DOTALL)


def rows(card: gpu_time.Card, sampling: Sampling = Sampling()) -> list[tuple[str, ...]]:
    """(precision, memory, time per section, booked per section, both with listening while it is made, speed's
    source) of one take of a song's first section of `sampling` (official: 3000 tokens, 30 s) on `card`."""
    table = []
    for precision in PRECISIONS:
        peak = registry.peak_bytes(precision, precision, False) / registry.GB
        plain, listening = (cost(sampling, precision, card, listen) for listen in (False, True))
        source = ("measured (bench/gpu)" if precision in gpu_time.MEASURED else "bf16's: not measured yet")
        table.append((f"`{precision}`", f"{peak:.1f} GB", *plain, ", ".join(listening), source))
    return table


def cost(sampling: Sampling, precision: str, card: gpu_time.Card, listen: bool) -> tuple[str, str]:
    """(time, booked in calls) of one take of a song's first section, in words."""
    seconds = gpu_time.work_seconds(sampling, precision, 1, card=card, listen=listen)
    calls = gpu_time.planned_calls(sampling, precision, 1, card=card, audio_s=gpu_time.song_at_end(0, sampling),
                                   listen=listen)
    booked = gpu_time.song_seconds(sampling, precision, 1, 1, card, listen)  # a song's first section
    return f"{seconds:.0f} s", f"{booked} s in {len(calls)} call{'s' if len(calls) > 1 else ''}"


def markdown(key: str) -> str:
    """The table of card `key` (a gpu_time.CARDS key) between its markers."""
    card = gpu_time.CARDS[key]
    speed = "measured" if card.measured else f"an estimate: {card.slowdown}x the H200's time"
    head = (f"**{card.name}**, {card.memory_gb:.0f} GB ({speed}; a booked second costs {card.quota_factor} s of "
            "quota)")
    lines = [f"<!-- gpu-table: {key} -->", head, "",
             "| precision | GPU memory (peak, all resident) | time per 30 s section, not listening | booked per 30 s "
             "section (at most), not listening | listening while it is made (the default): time, booked | speed from |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(card)]
    return "\n".join(lines + ["<!-- /gpu-table -->"])


def tables_in(text: str) -> list[tuple[str, str]]:
    """(card key, the table as written) of every marked table in a document."""
    return [(found.group(1), found.group(0)) for found in MARKER.finditer(text)]


if __name__ == "__main__":
    sys.stdout.write("\n\n".join(markdown(key) for key in gpu_time.CARDS) + "\n")
