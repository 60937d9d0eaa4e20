"""Serving the pipeline to many users, without a UI: GPU calls per section for every take of a run, each stopping at
its own deadline on ZeroGPU (space/gpu_time.py) and handing over by path (space/handover.py); the output folders,
stop flags and model choice are in space/store.py.

`app.py` is the Gradio layer over this module: it maps widgets to these calls, applies `spaces.GPU` to
`Service.run_section` and `Service.encode_tracks`, and shows each `Update` of `Service.run`. The endpoints' checks
and jobs are in `space.jobs`, the files and words a run shows in `space.results`. Nothing here imports gradio or
spaces, and nothing runs at import.
"""
import logging
import os
import queue
import threading
import time
from dataclasses import replace
from typing import Callable, Iterator

from . import gpu_time
from yue.config import Limits
from .handover import STOPPED, Call, Handed, RunFiles, SectionDone, Started
from .jobs import Job, Jobs, ModelChoice
from yue.pipeline import Pipeline
from yue.text.prompt import FRAMES_PER_SECOND
from .results import Update
from .row_audio import write_row
from .song_run import SongRun
from .store import OutputStore, Stops
from yue.song import SongCodes, SongRequest, Unfinished
from yue.lm.deadline import CHECK_EVERY, Deadline, OutOfTime
from yue.lm.stage1 import Cancelled
from yue.rows import RowAudio

log = logging.getLogger("yue.app")

MAX_QUEUE = 16  # runs waiting for the GPU; a song takes minutes, so a longer line is better told "busy, try again"
GPU_MAX_SECONDS = gpu_time.MAX_SECONDS
ENCODE_GPU_SECONDS = 60  # visitor seconds for codec encoding of at most two uploaded tracks


# -- GPU work: calls of a section --------------------------------------------------------------------------------

def section_gpu_seconds(choice: ModelChoice, call: Call) -> int:
    """The duration to give spaces.GPU for one call (same arguments as the GPU function): the seconds it booked
    (space/song_run.py decides), divided by spaces' own duration_factor, which spaces multiplies back."""
    return gpu_time.request_seconds(call.booked if call.booked is not None else gpu_time.CHUNK_SECONDS)


def encode_gpu_seconds(choice: ModelChoice, paths: list[str]) -> int:
    return gpu_time.request_seconds(gpu_time.granted(ENCODE_GPU_SECONDS))


_FORK = {"at": None, "served": False}  # in a forked worker: when it was forked, and whether it ran a call yet


def _forked() -> None:
    _FORK.update(at=time.monotonic(), served=False)


def watch_forks() -> None:
    """Note the time each forked child of this process starts (once per process): a GPU call measures how long its
    worker took from there to the call's first line."""
    if not _FORK.get("watched"):
        os.register_at_fork(after_in_child=_forked)
        _FORK["watched"] = True


def worker_start(now: float) -> Started:
    """Whether this call is its worker's first since the fork, and the seconds from the fork to `now`."""
    fresh = _FORK["at"] is not None and not _FORK["served"]
    _FORK["served"] = True
    return Started(fresh, now - _FORK["at"] if fresh else 0.0)


def listens(pipeline) -> bool:
    """Whether a run of `pipeline` streams its rows' audio: it has the codec and does not offload (with offload
    stage 2 waits for stage 1's end, so rows would come with the section anyway)."""
    models = getattr(pipeline, "models", None)
    return models is not None and models.codec is not None and not models.offload


def section_events(pipeline: Pipeline, request: SongRequest, stop_file: str,
                   previous: list[SongCodes] | None = None, render_states: list | None = None,
                   unfinished: Unfinished | None = None, deadline: Deadline | None = None,
                   on_unfinished: Callable[[Unfinished], None] | None = None,
                   on_row: Callable[[RowAudio], object] | None = None) -> Iterator:
    """Run `pipeline.stream_takes(request, previous=previous, render_states=render_states, deadline=deadline,
    resume=unfinished, on_unfinished=on_unfinished)` on a worker thread; yield its `Progress` events and lists of
    `Song`s (one per take) as they come, an `Unfinished` when the deadline stopped it, and STOPPED when the stop flag
    ended it (after the section's `Unfinished` where the run streams its rows: a stop there says where it was).
    `on_unfinished` gets the section's state every few seconds on the worker thread. `on_row`: given each piece of
    audio heard while the section is made (`stream_takes(on_row=, listen_rows=gpu_time.LISTEN_ROWS)`, on the worker
    thread); what it returns is yielded in order with the rest; None: nothing is heard before the section is done.
    Closing this generator (client gone) stops the worker at the next token."""
    events: queue.Queue = queue.Queue()
    closed = threading.Event()
    done = object()

    def cancel() -> bool:
        return closed.is_set() or os.path.exists(stop_file)

    # the Space's batch of rows (gpu_time.LISTEN_ROWS): fewer stage-2 batches, less GPU time
    heard = {} if on_row is None else {"on_row": lambda piece: events.put(on_row(piece)),
                                       "listen_rows": gpu_time.LISTEN_ROWS}

    def work() -> None:
        try:
            for songs in pipeline.stream_takes(request, events.put, cancel, previous=previous,
                                               render_states=render_states, deadline=deadline, resume=unfinished,
                                               on_unfinished=on_unfinished, **heard):
                events.put(songs)
        except OutOfTime as stop:
            events.put(stop.state)
        except Cancelled as stop:
            if stop.state is not None:  # a streaming run says where it stopped: handed over like a deadline's state
                events.put(stop.state)
            events.put(STOPPED)
        except BaseException as error:  # handed to the consumer, which raises it on its own thread
            events.put(error)
        finally:
            events.put(done)

    threading.Thread(target=work, name="yue-section", daemon=True).start()
    try:
        while (event := events.get()) is not done:
            if isinstance(event, BaseException):
                raise event
            yield event
    finally:
        closed.set()


# -- runs ------------------------------------------------------------------------------------------------------------

class Service(Jobs):
    """The app's behaviour without its widgets: each job (`yue.jobs.Jobs`) checks its inputs and says how to build
    its `SongRequest`; `run` streams every take of the song as `Update`s, in GPU calls per section. `run_section`
    and `encode_tracks` are the GPU work: app.py wraps them in `spaces.GPU` and passes the wrapped ones back
    (`run(..., run_section)`, `encode`)."""

    def __init__(self, get_pipeline: Callable[[ModelChoice], Pipeline], store: OutputStore, limits: Limits,
                 served: ModelChoice | None = None):
        super().__init__(limits)
        self.get_pipeline, self.store = get_pipeline, store
        self.stops = Stops()
        self.clock, self.check_every = time.monotonic, CHECK_EVERY  # a GPU call's deadline clock (tests: a fake)
        self.served = served  # the models the last GPU call ran (at start: those packed before launch)
        watch_forks()

    def run_section(self, choice: ModelChoice, call: Call) -> Iterator:
        """One GPU call of a section of every take (one batch), going on from what the run's folder holds (the
        request, every take's song so far, the section's unfinished state) and leaving there what it makes. With a
        booking it stops at its deadline: the booking less its startup (measured from its worker's fork) and what
        must happen after. Yields `Started`, `Progress`, `SectionDone`, `Handed` and STOPPED."""
        first_line, started = self.clock(), worker_start(time.monotonic())  # the deadline counts from here
        yield started
        files = RunFiles(call.folder)
        request = files.request()
        kept = 0 if request.previous is None else len(request.previous.stage1.section_frames)
        previous, states = files.states(call.section - 1, request.takes) if call.section > kept else (None, None)
        song = previous[0] if previous else request.previous
        end = gpu_time.song_at_end(0.0 if song is None else song.frames / FRAMES_PER_SECOND, request.sampling)
        deadline = None if call.booked is None else Deadline(
            first_line + gpu_time.deadline_seconds(call.booked, request.takes, end, started.startup_s), self.clock,
            self.check_every)
        pipeline = self.get_pipeline(choice)  # after the deadline is set: a model loaded here eats into the call
        step = replace(request, segments=call.section + 1)
        # rows are heard while the section is made (space/row_audio.py) when the visitor listens and the pipeline
        # makes audio; their files go with the hand-over, removed when the run ends (the page has them by then)
        on_row = (lambda piece: write_row(files.root, piece)) if call.listen and listens(pipeline) else None
        # the section's state is saved every few seconds too: a killed call is tried again from the last save
        for event in section_events(pipeline, step, str(files.folder / "STOP"), previous, states,
                                    files.unfinished(call.section), deadline, files.save_unfinished, on_row):
            if isinstance(event, list):
                files.save_songs(call.section, event)
                files.drop_unfinished()
                yield SectionDone(call.section)
            elif isinstance(event, Unfinished):
                files.save_unfinished(event)
                yield Handed(call.section, event.stage)
            else:
                yield event

    def encode_tracks(self, choice: ModelChoice, paths: list[str]) -> list:
        pipeline = self.get_pipeline(choice)
        if pipeline.models.codec is None:
            raise ValueError("This app runs without the audio codec (token-only models): it cannot read reference "
                             "or stem audio")
        return [pipeline.encode(path) for path in paths]

    def run(self, job: Job, fmt: str, session: str, run_section: Callable[..., Iterator],
            started: float | None = None) -> Iterator[Update]:
        """Load, check, then `run_section` calls for each new section of every take (on ZeroGPU as many as its
        deadlines take, each going on from the last one's state); after each section, write every take's files
        and yield them (space/song_run.py). A run ZeroGPU ends inside a section says what it kept and how to go
        on. `started`: when the run began (its summary's time counts from there), None: now."""
        folder = self.store.new_folder()
        flag = self.stops.start(session, folder)
        try:
            yield from SongRun(self, job, fmt, folder, flag, run_section, started).updates()
        finally:
            self.stops.finish(session, flag)
            RunFiles(folder).remove()

    def log_start(self, started: Started) -> None:
        """A fresh worker's first call: how long spaces took from its fork to the call's first line."""
        log.info("fresh ZeroGPU worker: %.1f s from its fork to the call's first line (STARTUP_SECONDS %.1f)",
                 started.startup_s, gpu_time.STARTUP_SECONDS)
