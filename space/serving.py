"""Serving the pipeline to many users, without a UI: GPU calls per section for every take of a run, each stopping at
its own deadline on ZeroGPU (space/gpu_time.py); the output folders, stop flags and model choice are in space/store.py.

`app.py` is the Gradio layer over this module: it maps widgets to these calls, applies `spaces.GPU` to
`Service.run_section` and `Service.encode_tracks`, and shows each `Update` of `Service.run`. The endpoints' checks
and jobs are in `space.jobs`, the files and words a run shows in `space.results`. Nothing here imports gradio or
spaces, and nothing runs at import.
"""
import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import replace
from typing import Callable, Iterator

from . import gpu_time
from yue.config import Limits
from .jobs import Job, Jobs, ModelChoice
from yue.pipeline import Pipeline
from yue.text.prompt import FRAMES_PER_SECOND
from .results import Update, call_phrase, kept_note, progress_text, quota_text, summary, write_take
from .song_progress import SongProgress, SongState, measured_costs
from .store import OutputStore, Stops
from yue.song import Progress, SongCodes, SongRequest, Unfinished
from yue.lm.deadline import CHECK_EVERY, Deadline, OutOfTime
from yue.lm.stage1 import Cancelled

log = logging.getLogger("yue.app")

MAX_QUEUE = 16  # runs waiting for the GPU; a song takes minutes, so a longer line is better told "busy, try again"
STOPPED = "stopped"  # what a section run yields when the user pressed Stop (a str: it crosses the ZeroGPU process)

# ZeroGPU books a GPU per call: each section call books a chunk and stops at its own deadline (space/gpu_time.py).
GPU_MAX_SECONDS = gpu_time.MAX_SECONDS
ENCODE_GPU_SECONDS = 60  # visitor seconds for codec encoding of at most two uploaded tracks


# -- GPU work: one call per section ---------------------------------------------------------------------------------

def gpu_precision(choice: ModelChoice) -> str:
    return "bf16" if choice.precision == "auto" else choice.precision  # "auto" is bf16 on ZeroGPU's card


def section_gpu_seconds(choice: ModelChoice, request: SongRequest, stop_file: str,
                        previous: list[SongCodes] | None = None, render_states: list | None = None,
                        unfinished: Unfinished | None = None, booked: int | None = None) -> float:
    """The duration to give spaces.GPU for one call of a section (same arguments as the GPU function): the visitor
    seconds the call booked (`booked`, from `Service.run`; else gpu_time.call_seconds of the work left), divided by
    spaces' own duration_factor, which spaces multiplies back."""
    if booked is None:
        booked = gpu_time.granted(gpu_time.call_seconds(request.sampling, gpu_precision(choice), request.takes,
                                                        unfinished))
    return gpu_time.request_seconds(booked)


def encode_gpu_seconds(choice: ModelChoice, paths: list[str]) -> int:
    return gpu_time.request_seconds(gpu_time.granted(ENCODE_GPU_SECONDS))


def section_events(pipeline: Pipeline, request: SongRequest, stop_file: str,
                   previous: list[SongCodes] | None = None, render_states: list | None = None,
                   unfinished: Unfinished | None = None, deadline: Deadline | None = None) -> Iterator:
    """Run `pipeline.stream_takes(request, previous=previous, render_states=render_states, deadline=deadline,
    resume=unfinished)` on a worker thread; yield its `Progress` events and lists of `Song`s (one per take) as they
    come, an `Unfinished` when the deadline stopped it, and STOPPED when the stop flag ended it. Closing this
    generator (client gone) stops the worker at the next token."""
    events: queue.Queue = queue.Queue()
    closed = threading.Event()
    done = object()

    def cancel() -> bool:
        return closed.is_set() or os.path.exists(stop_file)

    def work() -> None:
        try:
            for songs in pipeline.stream_takes(request, events.put, cancel, previous=previous,
                                               render_states=render_states, deadline=deadline, resume=unfinished):
                events.put(songs)
        except OutOfTime as stop:
            events.put(stop.state)
        except Cancelled:
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
    its `SongRequest`; `run` streams every take of the song as `Update`s, one GPU call per section. `run_section`
    and `encode_tracks` are the GPU work: app.py wraps them in `spaces.GPU` and passes the wrapped ones back
    (`run(..., run_section)`, `encode`)."""

    def __init__(self, get_pipeline: Callable[[ModelChoice], Pipeline], store: OutputStore, limits: Limits):
        super().__init__(limits)
        self.get_pipeline, self.store = get_pipeline, store
        self.stops = Stops()
        self.clock, self.check_every = time.monotonic, CHECK_EVERY  # a GPU call's deadline clock (tests: a fake)

    def run_section(self, choice: ModelChoice, request: SongRequest, stop_file: str,
                    previous: list[SongCodes] | None = None, render_states: list | None = None,
                    unfinished: Unfinished | None = None, booked: int | None = None) -> Iterator:
        """One call of a section of every take (one batch), each take continuing its own song (`previous`, None:
        the request's own `previous` for every take) and its audio from its song's `render_state`
        (`render_states`); `unfinished`: where the section's last call stopped. With `booked` (the visitor seconds
        this call booked) it stops at its deadline, gpu_time.deadline_seconds from its first line, and yields an
        `Unfinished` to go on from."""
        deadline = None if booked is None else Deadline.after(gpu_time.deadline_seconds(booked, request.takes),
                                                              self.clock, self.check_every)
        yield from section_events(self.get_pipeline(choice), request, stop_file, previous, render_states, unfinished,
                                  deadline)

    def encode_tracks(self, choice: ModelChoice, paths: list[str]) -> list:
        pipeline = self.get_pipeline(choice)
        if pipeline.models.codec is None:
            raise ValueError("This app runs without the audio codec (token-only models): it cannot read reference "
                             "or stem audio")
        return [pipeline.encode(path) for path in paths]

    def run(self, job: Job, fmt: str, session: str, run_section: Callable[..., Iterator]) -> Iterator[Update]:
        """Load, check, then `run_section` calls for each new section of every take (on ZeroGPU as many as its
        deadlines take, each going on from the last one's `Unfinished`); after each section, write every take's files
        and yield them. A call ZeroGPU refuses for quota ends the run with what is finished and how to go on."""
        folder = self.store.new_folder()
        flag = self.stops.start(session, folder)
        try:
            yield Update("Loading the models…", song=SongState(0.0, None))
            pipeline = self.get_pipeline(job.choice)  # in this process: ZeroGPU workers fork from it
            request = job.build()
            sections, _ = pipeline.check(request)
            request = request.with_seed(request.seed if request.seed is not None else secrets.randbelow(2**31))
            total = request.sections_total(len(sections))
            kept = 0 if request.previous is None else len(request.previous.stage1.section_frames)
            settings = {**request.settings(), "segments": total, "language": job.choice.language,
                        "mode": job.choice.mode, "precision": job.choice.precision}
            if request.previous is not None:  # which song (and take) this continues, and how much of it
                settings["continued_from"] = {**job.source, "sections": kept}
            songs, takes, timings, started, stopped = None, None, {}, time.perf_counter(), False
            text = f"Section {kept + 1} of {total}"  # the last progress text
            audio_s = 0.0 if request.previous is None else request.previous.frames / FRAMES_PER_SECOND
            precision, zero_gpu = gpu_precision(job.choice), gpu_time.on_zero_gpu()
            whole = SongProgress(total - kept, measured_costs(request.sampling, precision, request.takes))
            chosen = job.source.get("kept")  # the take kept in the run before (Keep take t and go on)
            note = kept_note(chosen, job.source.get("seed"))
            if zero_gpu:
                minutes = gpu_time.song_seconds(request.sampling, precision, request.takes, total - kept) / 60
                yield Update(f"Loading the models… This song will use about {minutes:.0f} GPU-minutes of your "
                             "ZeroGPU quota.", request.seed)
            for index in range(kept, total):
                step = replace(request, segments=index + 1)
                previous = None if songs is None else [song.codes for song in songs]  # each take goes on from its own
                states = None if songs is None else [song.render_state for song in songs]  # decode new frames only
                unfinished, call = None, 0
                while True:  # a section's calls: each stops at its deadline, the next goes on from its Unfinished
                    call += 1
                    # only ZeroGPU kills a call at its booking: elsewhere a section is one call without a deadline
                    booked = gpu_time.granted(gpu_time.call_seconds(request.sampling, precision, request.takes,
                                                                    unfinished)) if zero_gpu else None
                    calls = call - 1 + len(gpu_time.planned_calls(request.sampling, precision, request.takes,
                                                                  unfinished)) if zero_gpu else 1
                    phrase = call_phrase(call, calls, index)
                    extra = "\n".join(line for line in (phrase, note) if line)  # under the progress line
                    if call > 1:  # a new call may wait for a GPU: say which, under the last progress
                        yield Update(f"{text}\n{phrase}", request.seed, call=(call, calls))
                    try:
                        for event in run_section(job.choice, step, str(flag), previous, states, unfinished, booked):
                            now = time.perf_counter()
                            if isinstance(event, Progress):
                                state = whole.step(index - kept, event, now)
                                text = progress_text(replace(event, sections=total), index - kept, total - kept,
                                                     audio_s, now - started, state)
                                yield Update(f"{text}\n{extra}" if extra else text, request.seed, song=state,
                                             call=(call, calls))
                            elif isinstance(event, list):
                                songs, audio_s, unfinished = event, event[0].seconds, None
                                for key, value in songs[0].timings.items():
                                    timings[key] = timings.get(key, 0.0) + value
                                takes = [write_take(folder, song, take + 1, len(songs), index + 1, total, fmt,
                                                    settings, chosen) for take, song in enumerate(songs)]
                                state = whole.section_done(index - kept, songs[0].timings, time.perf_counter())
                                yield Update(f"Section {index + 1} of {total} done.", request.seed, takes, state)
                            elif isinstance(event, Unfinished):
                                unfinished = event
                            else:
                                stopped = True
                    except Exception as error:
                        if not gpu_time.quota_refused(error):
                            raise
                        done = kept if songs is None else len(songs[0].codes.stage1.section_frames)
                        yield Update(quota_text(str(error), done, total, audio_s, unfinished is not None,
                                                takes is not None), request.seed, takes,
                                     SongState(whole.shown, None, ended=True))
                        return
                    if stopped or flag.exists() or unfinished is None:
                        break
                if stopped or flag.exists():
                    stopped = True
                    break
            song = songs[0] if songs else None
            done = len(song.codes.stage1.section_frames) if song else kept
            text = summary(song, done, total, time.perf_counter() - started, timings, stopped, request.takes, note)
            yield Update(text, request.seed, takes, SongState(whole.shown if stopped else 1.0, None, ended=True))
        finally:
            self.stops.finish(session, flag)
