"""The whole Space flow through the ZeroGPU stand-in (tests/space/zerogpu.py: spaces 0.51.3's own wrappers, a
forked worker per call, its pickling, the booked duration as a kill, the quota ledger): songs made in GPU calls cut
at random points, with a call killed and one refused, end as exactly the CLI's song (codes equal, audio within
1e-6). Each call's deadline counts clock reads (one per decode step), so the cuts fall where the random budgets say
whatever the machine's load; each budget is its call's booking (random) less a fixed number of reads."""
import os
import random
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from space import gpu_time
from space.handover import RunFiles, SectionDone
from space.jobs import ModelChoice, shared_settings
from space.serving import Service, section_gpu_seconds
from space.store import OutputStore
from yue import Pipeline, SongRequest
from yue.config import Limits
from yue.song import SongCodes
from yue.text.tokens import XCODEC_OFFSET

from .helpers import SMALL
from .zerogpu import Ledger, zero_gpu

GENRES = "pop piano"
LYRICS = "[verse]\nsmall lights\n\n[chorus]\nrise and shine\n\n[outro]\ngood night\n"
SETTINGS = {**SMALL, "sections": 3, "takes": 2, "max_new_tokens": 40, "min_new_tokens": 4}
FIXED_READS = 22  # a call's booking less this many clock reads is its budget (bookings of 30-60 s: 8-38 reads)


class Reads:
    """The calls' deadline clock: one second per read. In a worker, `kill` = (section, call, read) makes that
    read of that call end its own process, as ZeroGPU ends a call past its booking."""

    def __init__(self, kill: tuple[int, int, int] | None = None):
        self.now, self.call, self.reads, self.kill, self.app = 0.0, None, 0, kill, os.getpid()

    def __call__(self) -> float:
        self.now, self.reads = self.now + 1.0, self.reads + 1
        if self.kill == (*self.call, self.reads):
            assert os.getpid() != self.app, "a GPU call ran in the app's own process, not in a worker"
            os.kill(os.getpid(), signal.SIGKILL)
        return self.now


@pytest.fixture(scope="module")
def pipeline(tiny_dir):
    """bf16, where a resumed call that rounded otherwise than the uncut run would sample another song."""
    return Pipeline.tiny(tiny_dir, precision="bf16")


def space_on_zerogpu(pipeline, tmp_path, monkeypatch, seed: int, kill=None):
    """(service, its GPU call, a random generator) for the stand-in: random bookings of 30-60 s, each call a budget
    of its booking less FIXED_READS clock reads; the service's calls last ran the default models (packed at
    start-up). Call the GPU call made inside `zero_gpu` (spaces.GPU wraps only there)."""
    from space.studio import gpu

    rng = random.Random(seed)
    monkeypatch.setattr(gpu_time, "call_seconds", lambda *args, **kwargs: rng.randint(30, 60))
    monkeypatch.setattr(gpu_time, "deadline_seconds", lambda booked, *args, **kwargs: max(1, booked - FIXED_READS))
    service = Service(lambda choice: pipeline, OutputStore(tmp_path / "outputs"), Limits(), ModelChoice())
    service.clock, service.check_every = Reads(kill), 1

    def run_section(choice, call):  # in the worker: the clock learns which call reads it
        service.clock.call, service.clock.reads = (call.section, call.number), 0
        yield from service.run_section(choice, call)

    return service, lambda: Watched(gpu(section_gpu_seconds)(run_section)), rng


class Watched:
    """A GPU call as the app's process sees it, keeping the last songs each run's folder handed over (every take's,
    float audio included: the folder's hand-over goes when the run ends)."""

    def __init__(self, gpu_call):
        self.gpu_call, self.songs = gpu_call, {}

    def __call__(self, choice, call):
        for event in self.gpu_call(choice, call):
            if isinstance(event, SectionDone):
                files = RunFiles(call.folder)
                self.songs[call.folder] = files.songs(event.section, files.request().takes)
            yield event


def the_clis_songs(pipeline, tmp_path, request: SongRequest, takes: int) -> list:
    """Every take's song as `python -m yue generate` makes it (codes from its bundles) with the continuous run's
    float audio (the CLI writes 16-bit files; it streams the same songs: Pipeline.stream_takes)."""
    from yue.cli.main import main

    out = tmp_path / "cli"
    assert main(["generate", "--tiny", str(pipeline.tiny_folder), "--genre", request.genres, "--lyrics",
                 request.lyrics, "--segments", str(request.segments), "--max-new-tokens",
                 str(request.sampling.max_new_tokens), "--min-new-tokens", str(request.sampling.min_new_tokens),
                 "--seed", str(request.seed), "--takes", str(takes), "--precision", "bf16", "--threads", "1",
                 "--out", str(out)]) == 0
    songs = list(pipeline.stream_takes(replace(request, takes=takes)))[-1]
    for take, song in enumerate(songs):
        codes, _ = SongCodes.load(out / f"take{take + 1}" / "song.npz" if takes > 1 else out / "song.npz")
        assert_same_codes(codes, song.codes)
    return songs


def assert_same_codes(got: SongCodes, expected: SongCodes) -> None:
    assert got.stage1.section_frames == expected.stage1.section_frames
    for a, b in ((got.stage1.vocal, expected.stage1.vocal), (got.stage1.instrumental, expected.stage1.instrumental),
                 (got.vocal, expected.vocal), (got.instrumental, expected.instrumental)):
        np.testing.assert_array_equal(a, b)


def assert_same_songs(got: list, expected: list) -> None:
    """Codes equal, audio within 1e-6, take by take."""
    assert len(got) == len(expected)
    for song, want in zip(got, expected):
        assert_same_codes(song.codes, want.codes)
        for a, b in ((song.mix, want.mix), (song.vocal, want.vocal), (song.instrumental, want.instrumental)):
            assert a.shape == b.shape and np.abs(a - b).max() <= 1e-6


def test_a_song_with_a_kill_and_a_refusal_on_zerogpu_is_the_clis_song(pipeline, tiny_dir, tmp_path, monkeypatch):
    """bf16, 3 sections, 2 takes, random call budgets and fresh or reused workers at random: section 2's second
    call is killed at its 12th clock read (tried again from the last state it saved, every 5 reads), and section
    3's second call is refused (the visitor's quota is gone). Every take's bundle then holds sections 1-2 and the
    part of section 3 made so far, a prefix of the CLI's; continuing each bundle (1 take, its seed) the next day
    through the stand-in ends with exactly the CLI's take."""
    pipeline.tiny_folder = tiny_dir
    service, wrapped, rng = space_on_zerogpu(pipeline, tmp_path, monkeypatch, 7, kill=(1, 2, 12))
    ledger = Ledger(left=10**6)

    def refusing(choice, call):
        if (call.section, call.number) == (2, 2):
            ledger.left = 0  # the visitor's quota ran out
        return gpu_call(choice, call)

    with zero_gpu(ledger, idle=lambda: rng.random() < 0.5):
        gpu_call = wrapped()
        job = service.lyrics_job(GENRES, LYRICS, shared_settings(SETTINGS))
        updates = list(service.run(job, "wav", "session", refusing))
        ended = updates[-1]
        assert ledger.refused and any("ZeroGPU stopped GPU call 2 of section 2 (GPU task aborted)" in u.text
                                      for u in updates)
        assert ended.text.startswith("ZeroGPU refused the next GPU call: You have exceeded your free ZeroGPU quota")
        assert "Kept in each take's song bundle (.npz): 2 of 3 sections" in ended.text
        cli = the_clis_songs(pipeline, tmp_path, SongRequest(GENRES, LYRICS, 3, job.build().sampling, 42), 2)
        ledger.left = 10**6  # the next day
        for take, files in enumerate(ended.takes):
            kept, settings = SongCodes.load(files.bundle)
            part = kept.unfinished
            assert len(kept.stage1.section_frames) == 2 and part.section == 2 and settings["seed"] == 42 + take
            made = cli[take].codes.stage1
            if part.stage1 is not None:  # the ids kept are the start of the CLI's section 3
                section3 = np.stack([made.vocal, made.instrumental], 1)[sum(made.section_frames[:2]):].reshape(-1)
                assert part.stage1.ids[0].tolist() == (section3[:part.stage1.step] + XCODEC_OFFSET).tolist()
            continued = service.continue_job(files.bundle, None, None, "end", 1, 0, GENRES, LYRICS, None,
                                             shared_settings({**SETTINGS, "takes": 1, "seed": 42 + take,
                                                              "sections": 1}), service.encode_tracks)
            last = list(service.run(continued, "wav", "session", gpu_call))[-1]
            assert last.text.startswith("Done: 3 of 3 sections"), last.text
            assert_same_songs(gpu_call.songs[os.path.dirname(last.takes[0].bundle)], [cli[take]])


def made_here(pipeline, tmp_path, kind: str):
    """(the Space's job, the same song's request for one continuous run) of a 2-section, 2-take song: greedy, in
    the style of a reference (ICL: encoded in a GPU call of its own), or continuing a 1-section song."""
    import runpy

    from space.jobs import Job
    from tests import ROOT
    from yue.song import Reference

    shared = shared_settings({**SETTINGS, "sections": 2, "max_new_tokens": 30})
    request = SongRequest(GENRES, LYRICS, 2, shared.sampling, 42, takes=2)
    if kind == "greedy":
        request = replace(request, sampling=shared.sampling.greedy())
        return Job(ModelChoice(), lambda: request), request
    if kind == "icl":
        write = runpy.run_path(str(ROOT / "examples" / "make_reference.py"))["write_reference"]
        path = str(write(tmp_path / "reference.wav", 4.0))
        window = dict(start_s=0.0, end_s=3.0)
        return (lambda service, encode: service.style_job(path, None, None, 0.0, 3.0, GENRES, LYRICS, shared, encode),
                replace(request, reference=Reference(codes=pipeline.encode(path), **window)))
    first = list(pipeline.stream(replace(request, segments=1, takes=1)))[-1]
    bundle = str(first.codes.save(tmp_path / "first.npz", {"seed": 42}))
    return (lambda service, encode: service.continue_job(bundle, None, None, "end", 1, 0, GENRES, LYRICS, None,
                                                         replace(shared, sections=1), encode),
            replace(request, previous=first.codes))


@pytest.mark.parametrize("kind", ["greedy", "icl", "continuation"])
def test_songs_cut_at_random_points_on_zerogpu_are_the_continuous_runs(pipeline, tmp_path, monkeypatch, kind):
    """Greedy, in a reference's style (its encoding a regular GPU call), or continuing a song: 2 takes cut at random
    points through the stand-in equal one continuous run (Pipeline.stream_takes, what the CLI streams): codes equal,
    audio within 1e-6."""
    job, request = made_here(pipeline, tmp_path, kind)
    expected = list(pipeline.stream_takes(request))[-1]
    service, wrapped, rng = space_on_zerogpu(pipeline, tmp_path, monkeypatch, 11)
    with zero_gpu(Ledger(left=10**6), idle=lambda: rng.random() < 0.5) as api:
        from space.studio import gpu
        from space.serving import encode_gpu_seconds

        encode = gpu(encode_gpu_seconds)(service.encode_tracks)
        job = job if kind == "greedy" else job(service, encode)
        gpu_call = wrapped()
        last = list(service.run(job, "wav", "session", gpu_call))[-1]
    assert last.text.startswith("Done: 2 of 2 sections") and len(api.ledger.booked) > 2, last.text
    assert_same_songs(gpu_call.songs[os.path.dirname(last.takes[0].bundle)], expected)
    assert not (Path(last.takes[0].bundle).parent / "handover").exists()  # gone with the run


def test_a_refusal_inside_the_first_section_keeps_its_part_and_continuing_finishes_it(pipeline, tmp_path,
                                                                                      monkeypatch):
    """One take, refused at the section's second call (the case that kept nothing before: a 30 s bf16 section
    plans 60 + 60 + 20 s, over an anonymous visitor's day): the bundle holds no finished section and the part made,
    and continuing it (its seed, 1 take) ends with the song of one continuous run."""
    settings = {**SETTINGS, "sections": 1, "takes": 1}
    service, wrapped, rng = space_on_zerogpu(pipeline, tmp_path, monkeypatch, 3)
    ledger = Ledger(left=10**6)

    def refusing(choice, call):
        if (call.section, call.number) == (0, 2):
            ledger.left = 0
        return gpu_call(choice, call)

    with zero_gpu(ledger, idle=lambda: rng.random() < 0.5):
        gpu_call = wrapped()
        ended = list(service.run(service.lyrics_job(GENRES, LYRICS, shared_settings(settings)), "wav", "session",
                                 refusing))[-1]
        assert "Kept in the song bundle (.npz): the part of section 1 up to token" in ended.text, ended.text
        assert ended.takes[0].mix is None and ended.takes[0].bundle.endswith("song-0of1-unfinished.npz")
        ledger.left = 10**6
        continued = service.continue_job(ended.takes[0].bundle, None, None, "end", 1, 0, GENRES, LYRICS, None,
                                         shared_settings(settings), service.encode_tracks)
        last = list(service.run(continued, "wav", "session", gpu_call))[-1]
    assert last.text.startswith("Done: 1 of 1 sections"), last.text
    request = SongRequest(GENRES, LYRICS, 1, shared_settings(settings).sampling, 42)
    assert_same_songs(gpu_call.songs[os.path.dirname(last.takes[0].bundle)], list(pipeline.stream_takes(request))[-1])
