"""Listening while a song is made (yue/rows.py): time to first audio and the stream's real-time factor, tiny
checkpoints on the CPU (1 thread), as ratios of what one 6 s row costs measured in the same run.

    python -m bench.bench_stream            # a 3-row section, ~4 minutes on 2 busy CPU cores
    python -m bench.bench_stream --rows 5   # a 30 s section, as docs/models.md shows (~5 minutes)

1. one row: a plain run of a one-row section (600 stage-1 tokens): its stage 1, stage 2 and audio seconds (the
   song's timings), the cost a streamed listener must wait for at least.
2. the section (`--rows` rows, ~6 s each): a plain run (first sound when the section is done) and streamed runs
   (`stream_takes(on_row=, listen_rows=)`, listen_rows 1, 2 and the section's rows, side by side): seconds to the
   first piece of audio, to the end, the real-time factor (seconds of audio made per second of wall time: < 1 is
   slower than playback) and the stage-2 batches run while stage 1 went on (`yue.rows.listen_batches`).
The tiny LMs are far cheaper than the codec next to the full-size models, so the shares differ from a GPU's; the
ratios say whether streaming adds waiting beyond one row's work (first audio / one row should stay within ~1.5).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROW_TOKENS = 600  # one 6 s row of both tracks: 300 frames, 2 ids each


def _request(rows: int, seed: int = 1):
    from yue import Sampling, SongRequest

    tokens = rows * ROW_TOKENS
    return SongRequest("pop", "[verse]\nhello there", segments=1, seed=seed,
                       sampling=Sampling(max_new_tokens=tokens, min_new_tokens=tokens))


@contextmanager
def counting_batches():
    """A list that gets (section, its rows) of each stage-2 batch `yue.rows.Listening` runs while stage 1 goes on
    (one `Listening._make` each; the real one runs)."""
    from yue.rows import Listening

    made, real = [], Listening._make

    def counted(self, tracks, rows, state):
        made.append((self.section, tuple(rows)))
        return real(self, tracks, rows, state)

    Listening._make = counted
    try:
        yield made
    finally:
        Listening._make = real


def streamed(pipeline, request, listen_rows: int) -> dict:
    """A streamed run: seconds to its first piece and to its end, its pieces, its stage-2 batches during stage 1,
    and its last songs."""
    firsts: list[float] = []
    with counting_batches() as batches:
        started = time.perf_counter()
        songs = list(pipeline.stream_takes(request, on_row=lambda piece: firsts.append(time.perf_counter() - started),
                                           listen_rows=listen_rows))[-1]
        seconds = time.perf_counter() - started
    return {"first_s": firsts[0], "section_s": seconds, "pieces": len(firsts), "batches": len(batches),
            "songs": songs}


def measure(pipeline, rows: int) -> dict:
    """Seconds of a plain run of one row, and of a section of `rows` rows plain and streamed with listen_rows 1, 2
    and `rows`."""
    one = list(pipeline.stream_takes(_request(1)))[-1][0].timings
    started = time.perf_counter()
    plain = list(pipeline.stream_takes(_request(rows)))[-1][0]
    plain_s = time.perf_counter() - started
    runs = {listen: streamed(pipeline, _request(rows), listen) for listen in sorted({1, 2, rows})}
    for run in runs.values():
        codes = run.pop("songs")[0].codes
        run["same"] = all(np.array_equal(a, b) for a, b in ((codes.vocal, plain.codes.vocal),
                                                             (codes.instrumental, plain.codes.instrumental)))
    return {"row_stage1_s": one["stage1_s"], "row_stage2_s": one["stage2_s"], "row_audio_s": one["audio_s"],
            "plain_s": plain_s, "song_s": plain.seconds, "rows": rows, "runs": runs}


def table(m: dict) -> str:
    row = m["row_stage1_s"] + m["row_stage2_s"] + m["row_audio_s"]
    lines = ["| measure | seconds | / one row's work | / the plain section |", "|---|---|---|---|"]
    for name, seconds in (("one row: stage 1", m["row_stage1_s"]), ("one row: stage 2", m["row_stage2_s"]),
                          ("one row: audio", m["row_audio_s"]), ("one row's work", row),
                          ("plain section: first (and all) audio", m["plain_s"])):
        lines.append(f"| {name} | {seconds:.1f} | {seconds / row:.2f} | {seconds / m['plain_s']:.2f} |")
    lines += ["", f"streamed, a {m['rows']}-row section ({m['song_s']:.1f} s of song):", "",
              "| listen_rows | stage-2 batches during stage 1 | first audio s | / one row's work | whole section s "
              "| / the plain section | pieces | real-time factor | codes = plain |", "|---" * 9 + "|"]
    for listen, run in m["runs"].items():
        lines.append(f"| {listen} | {run['batches']} | {run['first_s']:.1f} | {run['first_s'] / row:.2f} "
                     f"| {run['section_s']:.1f} | {run['section_s'] / m['plain_s']:.2f} | {run['pieces']} "
                     f"| {m['song_s'] / run['section_s']:.2f} | {'yes' if run['same'] else 'NO'} |")
    lines.append(f"\nplain real-time factor (audio s per wall s): {m['song_s'] / m['plain_s']:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3, help="rows (6 s) in the section (default 3)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    from yue import Pipeline
    from yue.weights.tiny import write_tiny

    with tempfile.TemporaryDirectory() as folder:
        write_tiny(Path(folder))
        pipeline = Pipeline.tiny(folder)
        list(pipeline.stream_takes(_request(1, seed=2)))  # warm-up: first calls pay for allocations and imports
        print(table(measure(pipeline, args.rows)))


if __name__ == "__main__":
    main()
