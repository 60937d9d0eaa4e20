"""Audio costs that must not grow with the song or the upload (issue 10), at full size with random weights, CPU.

    python -m bench.bench_stream_audio                  # all four (~25 minutes on 2 cores)
    python -m bench.bench_stream_audio --only sections  # sections | reference | agreement | app

sections: a 6-section song streamed as the app grows it, one call per section (stage 2 keeps whole 6 s rows and
  recomputes the last partial row: here its codes are all new, the worst case). Per section: the audio time of a
  fresh incremental renderer (yue.incremental.SongRenderer) resumed from the pickled state of the section before (as
  a ZeroGPU call gets it) next to a whole re-render (yue.render.render_song, the path before), the frames each
  decoded, the pickled state's size and round-trip time, and how far apart their songs are.
app: the frames decoded per section by the app's own path (yue.serving.Service.run on tiny checkpoints, every
  call's arguments and songs pickled), with each take's render state passed on (now) and dropped (before).
reference: peak RSS and time of Pipeline.encode's path (read_audio + encode_codebook0, in windows) on a 10-minute
  44.1 kHz stereo file, with the whole codec and both upsamplers loaded, in its own process.
agreement: codebook-0 codes of a 2-minute reference encoded in windows, and of its first 30 s (the prompt's default
  window) encoded alone with the window's context, against one pass over the whole file.
"""
from __future__ import annotations

import argparse
import multiprocessing
import pickle
import resource
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.bench_codec import _parts, _timed

ROW = 300  # stage 2's 6 s rows


def music(seconds: float, rate: int, seed: int = 0):
    """A music-like test signal: a chord of 3 harmonic tones changing every half second, plus a little noise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    notes = 110 * 2 ** (rng.integers(0, 24, (int(seconds * 2) + 1, 3)) / 12)
    chord = notes[(t * 2).astype(int)]
    signal = sum(np.sin(2 * np.pi * chord[:, i] * h * t) / h for i in range(3) for h in (1, 2, 3))
    return (0.1 * signal + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def sections_case(section_seconds: float, threads: int, repeats: int):
    import numpy as np
    import torch

    from yue.codec import incremental, render

    torch.set_num_threads(threads)
    parts = _parts()  # the whole codec, as Pipeline loads it
    state = blob = None  # the state a section's call gets, pickled as ZeroGPU passes it
    totals: dict = defaultdict(float)
    _timed(incremental, ("decode_16k", "upsample_44k"), totals)
    for name in ("_filter_from", "_finish"):
        method = getattr(incremental.SongRenderer, name)

        def wrapper(self, *args, _method=method, _name=name):
            start = time.perf_counter()
            try:
                return _method(self, *args)
            finally:
                totals[_name] += time.perf_counter() - start

        setattr(incremental.SongRenderer, name, wrapper)
    rng = np.random.default_rng(0)
    warm = [rng.integers(0, 1024, (8, 300)) for _ in range(2)]  # first calls load scipy, soxr and torch's kernels
    incremental.SongRenderer(*parts).render(*warm), render.render_song(*parts, *warm)
    codes = [np.zeros((8, 0), np.int64)] * 2
    frames, rows = int(section_seconds * 50), []
    for section in range(1, 7):
        kept = codes[0].shape[1] // ROW * ROW
        codes = [np.concatenate([c[:, :kept], rng.integers(0, 1024, (8, section * frames - kept))], axis=1)
                 for c in codes]
        runs = []
        for _ in range(repeats):  # the fastest of `repeats` runs: other jobs on a shared machine only slow runs down
            renderer = incremental.SongRenderer(*parts, state=None if state is None else pickle.loads(blob))
            totals.clear()
            start, cpu = time.perf_counter(), time.process_time()
            streamed = renderer.render(*codes)
            runs.append((time.perf_counter() - start, time.process_time() - cpu, dict(totals)))
        incremental_s, incremental_cpu, split = min(runs, key=lambda run: run[0])
        whole_s = []
        for _ in range(repeats):
            start = time.perf_counter()
            whole = render.render_song(*parts, *codes)
            whole_s.append(time.perf_counter() - start)
        difference = max(float(np.abs(a - b).max()) for a, b in zip(streamed, whole))
        decoded = renderer.decoded_frames - (0 if state is None else state.decoded_frames)
        start, state = time.perf_counter(), renderer.state
        blob = pickle.dumps(state)
        pickle.loads(blob)
        pickled = (len(blob) / 2**20, time.perf_counter() - start)
        rows.append((section, codes[0].shape[1], decoded, incremental_s, incremental_cpu, split, min(whole_s),
                     difference, pickled))
        print(f"section {section}: {incremental_s:.1f} s incremental, {min(whole_s):.1f} s whole", flush=True)
    return rows


def app_case(section_seconds: float, threads: int) -> dict:
    """Service.run on tiny checkpoints, 6 sections, one take, each section a call whose arguments and events are
    pickled as a ZeroGPU worker's are: (frames decoded, song frames) per section, with the last songs' render
    states handed on to the next call (in the run's folder) and with them dropped (every call renders its song
    whole, as before)."""
    import torch

    from yue import Pipeline
    from yue.config import Limits
    from space.jobs import shared_settings
    from dataclasses import replace

    from space.handover import RunFiles, SectionDone
    from space.serving import Service
    from space.store import OutputStore
    from yue.weights.tiny import write_tiny

    torch.set_num_threads(threads)
    tokens = int(section_seconds * 100)  # 2 ids a frame, 50 frames a second
    settings = dict(language="en", sections=6, max_new_tokens=tokens, min_new_tokens=tokens, guidance_first=1.5,
                    guidance_later=1.2, top_p=0.93, temperature=1.0, repetition_penalty=1.1, seed=42,
                    random_seed=False, precision="auto", output_format="wav")
    lyrics = "\n\n".join(f"[{tag}]\nline {i}" for i, tag in enumerate(("verse", "chorus") * 3))
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        write_tiny(Path(folder) / "tiny")
        pipeline = Pipeline.tiny(Path(folder) / "tiny")
        service = Service(lambda choice: pipeline, OutputStore(Path(folder) / "out"), Limits())
        for name, pass_states in (("render states dropped (before)", False), ("render states passed on (now)", True)):
            run = []

            def forked_call(choice, call):
                files = RunFiles(call.folder)
                handed = files.states(call.section - 1, 1) if call.section else None
                if handed and not pass_states:  # the next call finds no render state: it renders the song whole
                    files.save_songs(call.section - 1, [replace(song, render_state=None)
                                                        for song in files.songs(call.section - 1, 1)])
                before = handed[1][0].decoded_frames if handed and pass_states else 0
                for event in service.run_section(*pickle.loads(pickle.dumps((choice, call)))):
                    event = pickle.loads(pickle.dumps(event))
                    if isinstance(event, SectionDone):
                        codes, states = files.states(event.section, 1)
                        run.append((states[0].decoded_frames - before, codes[0].frames))
                    yield event

            for _ in service.run(service.lyrics_job("pop", lyrics, shared_settings(settings)), "wav", "bench",
                                 forked_call):
                pass
            runs[name] = run
    return runs


def write_reference(path: Path, seconds: float) -> Path:
    """A 44.1 kHz stereo 16-bit wav of the test signal, written in the parent process (not counted in the peak)."""
    import numpy as np
    import soundfile

    left = music(seconds, 44100)
    soundfile.write(str(path), np.stack([left, np.roll(left, 441)], axis=1), 44100, subtype="PCM_16")
    return path


def reference_case(path: Path, threads: int):
    import torch

    from yue.audio import read_audio
    from yue.codec.render import encode_codebook0

    torch.set_num_threads(threads)
    parts = _parts()  # the upsamplers stay loaded, as in the app: they count in the peak
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    codes = encode_codebook0(parts[0], read_audio(path, max_seconds=None))
    return time.perf_counter() - start, codes.size, loaded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def agreement_case(seconds: float, threads: int):
    import numpy as np
    import torch

    from yue.codec import render

    torch.set_num_threads(threads)
    codec = _parts()[0]
    # Random codebooks give nearly one code for any input (the rows of smallest norm win the nearest-neighbour
    # search); rows of one norm make the codes follow the latent, so that a changed latent shows.
    for layer in codec.model.quantizer.quantizers:
        embed = layer.codebook.embed
        embed.mul_(embed.norm(dim=1, keepdim=True).mean() / embed.norm(dim=1, keepdim=True))
    samples = music(seconds, 16000)
    whole = render.encode_codes(codec, samples, window=10**9)[0]  # one pass, as the official code encodes
    windowed = render.encode_codes(codec, samples)[0]
    bare = render.encode_codes(codec, samples, context=0)[0]
    window, context = 1500, render.ENCODE_CONTEXT_FRAMES  # the prompt's default window, 0-30 s, and its context
    alone = render.encode_codes(codec, samples[:(window + context) * 320], window=10**9)[0][:window]
    return (float(np.mean(windowed == whole)), float(np.mean(bare == whole)), float(np.mean(alone == whole[:window])),
            int(np.unique(whole).size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--only", choices=("sections", "reference", "agreement", "app"))
    parser.add_argument("--section-seconds", type=float, default=10.0, help="length of each section (default 10)")
    parser.add_argument("--repeats", type=int, default=2, help="sections: the fastest of this many runs (default 2)")
    args = parser.parse_args()
    pool = lambda: multiprocessing.get_context("spawn").Pool(1)  # each case's peak RSS is its own
    if args.only != "app":
        print(f"full-size xcodec_mini + 2 Vocos upsamplers, random weights, fp32, CPU, {args.threads} threads\n")
    if args.only in (None, "sections"):
        with pool() as workers:
            rows = workers.apply(sections_case, (args.section_seconds, args.threads, args.repeats))
        print(f"\n6 sections of {args.section_seconds:g} s; the last partial 6 s row recomputed at every section; "
              f"times: the fastest of {args.repeats} runs\n")
        print("| section | song s | frames decoded (whole) | incremental s | CPU s | decode s | upsample s | filters s "
              "| finish s | whole re-render s | max abs difference | state MiB | pickle round trip s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for section, frames, decoded, seconds, cpu, split, whole, difference, (mib, pickle_s) in rows:
            parts = " | ".join(f"{split.get(name, 0.0):.2f}"
                               for name in ("decode_16k", "upsample_44k", "_filter_from", "_finish"))
            print(f"| {section} | {frames / 50:.0f} | {decoded} ({frames}) | {seconds:.2f} | {cpu:.2f} | {parts} "
                  f"| {whole:.2f} | {difference:.1e} | {mib:.1f} | {pickle_s:.2f} |")
        for name, column in (("incremental wall", 3), ("incremental CPU", 4), ("whole re-render wall", 6)):
            times = [row[column] for row in rows]
            print(f"{name}: section 6 / section 1 {times[-1] / times[0]:.2f}, max / min {max(times) / min(times):.2f}")
    if args.only in (None, "reference"):
        with tempfile.TemporaryDirectory() as folder, pool() as workers:
            path = write_reference(Path(folder) / "reference.wav", 600.0)
            elapsed, frames, loaded, peak = workers.apply(reference_case, (path, args.threads))
        print(f"\n10-minute reference (44.1 kHz stereo wav) read and encoded in windows: {frames} frames in "
              f"{elapsed:.0f} s, peak RSS {peak:.0f} MiB ({loaded:.0f} MiB with the models loaded, before encoding)")
    if args.only in (None, "agreement"):
        with pool() as workers:
            windowed, bare, alone, distinct = workers.apply(agreement_case, (120.0, args.threads))
        print(f"\ncodebook-0 codes equal to one pass over a 2-minute reference ({distinct} distinct codes in it): "
              f"in windows {windowed:.1%} of frames (windows without context: {bare:.1%}); its first 30 s (the "
              f"prompt's default window) encoded alone with its context: {alone:.1%}")

    if args.only in (None, "app"):
        with pool() as workers:
            runs = workers.apply(app_case, (args.section_seconds, args.threads))
        print(f"\nThe app's path (Service.run, tiny checkpoints, 6 sections of {args.section_seconds:g} s, every call "
              "pickled): frames decoded per section (song frames)")
        for name, run in runs.items():
            print(f"{name}: " + ", ".join(f"{decoded} ({frames})" for decoded, frames in run)
                  + f"; {sum(decoded for decoded, _ in run)} in all")


if __name__ == "__main__":
    main()
