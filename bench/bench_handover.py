"""What a section's end hands to the next GPU call, at full size (CPU, no models): bytes and seconds, by path (now)
and through spaces' queues (before).

    python -m bench.bench_handover            # 1 and 12 sections of 30 s, 1 and 4 takes (~1 minute, 5 GB of disk)

For each song (sections of 30 s so far, takes) it builds every take's Song as the pipeline makes it: 44.1 kHz mix and
stems (float32), stage-2 codes, and a render state of the real size (16 kHz reconstructions, 44.1 kHz stems and
filter bands; yue.codec.incremental.RenderState), random values. Then, side by side:
* by path (space/handover.py, now): the call writes every take's files into the run's folder
  (RunFiles.save_songs), the app reads the songs (RunFiles.songs) and the next call the states (RunFiles.states);
  through the queues go a Call and a SectionDone (their pickled bytes are printed);
* through the queues (before): the next call's arguments (every take's codes and render state) and the call's result
  (every take's Song with its state) pickled through a fork context's SimpleQueue (what spaces.utils.SimpleQueue
  is) from a forked process and back, as spaces' wrappers did with them.
"""
from __future__ import annotations

import argparse
import multiprocessing
import pickle
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

SECTION_S = 30.0
FRAMES_PER_SECOND = 50


def songs(seconds: float, takes: int) -> list:
    """Every take's Song of `seconds` with a render state, at full size (random values)."""
    from yue.codec.incremental import RenderState
    from yue.lm.stage1 import Stage1Tokens
    from yue.rates import CODEC_HOP, OUTPUT_HOP
    from yue.song import Song, SongCodes

    frames = int(seconds * FRAMES_PER_SECOND)
    rng = np.random.default_rng(0)
    audio = lambda n: rng.standard_normal(n, dtype=np.float32)
    made = []
    for take in range(takes):
        codes = [rng.integers(0, 1024, (8, frames)) for _ in range(2)]
        stage1 = Stage1Tokens(codes[0][0], codes[1][0], (frames,), ("verse",))
        state = RenderState(False, tuple(codes), tuple(audio(frames * CODEC_HOP) for _ in range(2)),
                            tuple(audio(frames * OUTPUT_HOP) for _ in range(2)),
                            tuple(audio(frames * OUTPUT_HOP) for _ in range(3)), decoded_frames=frames)
        made.append(Song(44100, *(audio(frames * OUTPUT_HOP) for _ in range(3)), SongCodes(stage1, *codes),
                         42 + take, 1, 1, render_state=state))
    return made


def by_path(made: list, folder: Path) -> dict:
    from space.handover import Call, RunFiles, SectionDone

    files = RunFiles(folder)
    started = time.perf_counter()
    files.save_songs(0, made)
    written = time.perf_counter()
    shown = files.songs(0, len(made))
    read = time.perf_counter()
    files.states(0, len(made))
    loaded = time.perf_counter()
    assert shown is not None
    size = sum(path.stat().st_size for path in files.root.glob("*.pkl"))
    queue = len(pickle.dumps((None, Call(str(folder), 1, 60, 1)))) + len(pickle.dumps(SectionDone(0)))
    return {"bytes": size, "write_s": written - started, "app_read_s": read - written, "call_read_s": loaded - read,
            "queue_bytes": queue}


def _echo(inbox, outbox) -> None:
    """A worker: take the arguments, hand the result back (as spaces' thread_wrapper does, without the work)."""
    args = inbox.get()
    outbox.put(args)


def through_queues(made: list) -> dict:
    """The arguments (codes and render states) into a forked worker and the songs back, through queues like spaces'
    (spaces.utils.SimpleQueue is multiprocessing's SimpleQueue of the fork context, with its error words)."""
    context = multiprocessing.get_context("fork")
    inbox, outbox = context.SimpleQueue(), context.SimpleQueue()
    arguments = ([s.codes for s in made], [s.render_state for s in made])
    worker = context.Process(target=_echo, args=(inbox, outbox), daemon=True)
    worker.start()
    started = time.perf_counter()
    inbox.put(arguments)
    outbox.get()  # (its way back is the arguments' size again; the result below is what a call returned)
    there = time.perf_counter()
    worker.join()
    worker = context.Process(target=_echo, args=(inbox, outbox), daemon=True)
    worker.start()
    back = time.perf_counter()
    inbox.put(made)
    outbox.get()
    done = time.perf_counter()
    worker.join()
    return {"in_bytes": len(pickle.dumps(arguments)), "out_bytes": len(pickle.dumps(made)),
            "in_out_s": (there - started) / 2 + (done - back) / 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", type=int, nargs="+", default=[1, 12])
    parser.add_argument("--takes", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    print("| song so far | takes | files written (once) | write, in the call | read by the app | read by the next call "
          "| through the queues now | through the queues before (in / out) | before: one way, each |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sections in args.sections:
        for takes in args.takes:
            made = songs(sections * SECTION_S, takes)
            with tempfile.TemporaryDirectory() as folder:
                path = by_path(made, Path(folder))
            queues = through_queues([replace(s) for s in made])
            print(f"| {sections} x 30 s | {takes} | {path['bytes'] / 1e6:.0f} MB | {path['write_s']:.2f} s | "
                  f"{path['app_read_s']:.2f} s | {path['call_read_s']:.2f} s | {path['queue_bytes']} B | "
                  f"{queues['in_bytes'] / 1e6:.0f} MB / {queues['out_bytes'] / 1e6:.0f} MB | "
                  f"{queues['in_out_s']:.2f} s |", flush=True)
            del made


if __name__ == "__main__":
    main()
