"""One run of the Space, in the app's process: the new sections in order, each in as many GPU calls as its deadlines
take, and every take's files after each section. Nothing made is lost: a call ZeroGPU killed (or whose worker
failed) is tried again once, with a fresh booking, from the last state it handed over; a refused call is booked
again within the quota spaces says is left; and when the run must end inside a section, every take's bundle keeps
that section's part, which continuing resumes exactly. Nothing here imports gradio or spaces."""
from __future__ import annotations

import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import gpu_time, zero_refusals
from .handover import STOPPED, Call, Handed, RunFiles, SectionDone, Started, take_part
from .jobs import Job
from .results import (Update, call_phrase, details, ended_text, kept_note, progress_text, step_detail, stopped_text,
                      summary, write_take, write_unfinished)
from .row_audio import Heard, RowHeard
from .song_progress import SongProgress, SongState, measured_costs
from yue.lm.stage1 import Stage1Tokens
from yue.song import Progress, SongCodes
from yue.text.prompt import FRAMES_PER_SECOND

RETRIES = 1  # a killed or failed call is tried again this many times in a row, each from its last handed-over state


def empty_song() -> SongCodes:
    """A song of no sections: what a bundle keeps when a run ends inside its first section."""
    empty = np.zeros(0, dtype=np.int64)
    return SongCodes(Stage1Tokens(empty, empty, (), ()))


class SongRun:
    """The updates of one run of `job` (`updates()`): `service` gives the pipelines and the models its calls last
    ran; `run_section` is the GPU call (Service.run_section wrapped by spaces.GPU on ZeroGPU); `started`: when the
    run began (time.perf_counter(): before a reference was read), None: now."""

    def __init__(self, service, job: Job, fmt: str, folder: Path, flag: Path, run_section: Callable[..., Iterator],
                 started: float | None = None):
        self.service, self.job, self.fmt, self.folder, self.flag = service, job, fmt, folder, flag
        self.started = time.perf_counter() if started is None else started  # the summary's time counts from here
        self.run_section = run_section
        self.files = RunFiles(folder)
        self.zero_gpu = gpu_time.on_zero_gpu()
        self.precision = "bf16" if job.choice.precision == "auto" else job.choice.precision  # auto: bf16 on ZeroGPU
        self.songs = self.take_files = self.unfinished = None  # every take's songs and files so far; the section's state
        self.timings: dict[str, float] = {}
        self.stopped = False
        self.heard = None  # every take's frames heard while made (space/row_audio.py), from the first call on

    def updates(self) -> Iterator[Update]:
        yield Update("Loading the models…", song=SongState(0.0, None))
        # Loaded here first: a worker forked after this holds the models; a reused one loads them inside its call,
        # which then books an allowance for it (`booking`).
        pipeline = self.service.get_pipeline(self.job.choice)
        request = self.job.build()
        sections, _ = pipeline.check(request)
        self.request = request = request.with_seed(request.seed if request.seed is not None else
                                                   secrets.randbelow(2**31))
        previous = request.previous
        self.unfinished = None if previous is None else previous.unfinished
        if self.unfinished is not None:
            self.unfinished.check_takes(request.takes)
        self.total, self.kept = request.sections_total(len(sections)), 0 if previous is None else len(
            previous.stage1.section_frames)
        self.settings = {**request.settings(), "segments": self.total, "language": self.job.choice.language,
                         "mode": self.job.choice.mode, "precision": self.job.choice.precision}
        if previous is not None:  # which song (and take) this continues, and how much of it
            self.settings["continued_from"] = {**self.job.source, "sections": self.kept}
        self.files.save_request(request)
        if self.unfinished is not None:
            self.files.save_unfinished(self.unfinished)
        self.text = f"Section {self.kept + 1} of {self.total}"  # the last progress text
        self.audio_s = 0.0 if previous is None else previous.frames / FRAMES_PER_SECOND
        self.whole = SongProgress(self.total - self.kept, measured_costs(request.sampling, self.precision,
                                                                          request.takes, self.job.listen))
        self.chosen = self.job.source.get("kept")  # the take kept in the run before (Keep take t and go on)
        self.note = kept_note(self.chosen, self.job.source.get("seed"))
        # the seed the page shows: the song's; going on from a kept take, that take's (take 1's is the run's seed)
        self.seed = self.job.source["seed"] if isinstance(self.job.source.get("seed"), int) and self.chosen else \
            request.seed
        self.heard = Heard(request.takes)
        if self.zero_gpu:
            minutes = gpu_time.song_seconds(request.sampling, self.precision, request.takes,
                                            self.total - self.kept, listen=self.job.listen) / 60
            yield Update(f"Loading the models… This song books at most about {minutes:.0f} GPU-minutes of your "
                         "ZeroGPU quota (ZeroGPU charges what the calls use, which is less).", self.seed)
        for index in range(self.kept, self.total):
            if (yield from self.section(index)):  # the run ended inside it
                return
            if self.stopped or self.flag.exists():
                self.stopped = True
                break
        song = self.songs[0] if self.songs else None
        done = len(song.codes.stage1.section_frames) if song else self.kept
        text = summary(song, done, self.total, time.perf_counter() - self.started, self.timings, self.stopped,
                       request.takes, self.note)
        files = self.take_files
        if self.stopped and self.unfinished is not None:  # stopped inside a section: its part is kept as well
            files = self.part_files()
            text = stopped_text(text if song else f"Stopped: {done} of {self.total} sections.", self.unfinished,
                                request.sampling.max_new_tokens, [request.seed + t for t in range(request.takes)])
        yield Update(text, self.seed, files, SongState(self.whole.shown if self.stopped else 1.0, None,
                                                      ended=True), details=self.details())

    def section(self, index: int) -> Iterator[Update]:
        """The calls of section `index` until it is done, stopped or the run must end (returns True then)."""
        call, failures, limit, fitted = 0, 0, gpu_time.MAX_SECONDS, False
        while True:
            call += 1
            booked, calls = self.booking(limit, call)
            phrase = call_phrase(call, calls, index)
            extra = "\n".join(line for line in (phrase, self.note) if line)  # under the progress line
            if call > 1:  # a new call may wait for a GPU: say which, under the last progress
                yield Update(f"{self.text}\n{phrase}", self.seed, call=(call, calls))
            done = False
            try:
                asked = Call(str(self.folder), index, booked, call, self.job.listen)
                for event in self.run_section(self.job.choice, asked):
                    done = (yield from self.on_event(event, index, extra, (call, calls))) or done
            except Exception as error:
                refused, failed = zero_refusals.quota_refused(error), zero_refusals.failed_call(error)
                if not (refused or failed):
                    raise
                done = done or (yield from self.section_done(index))  # it may have finished before it was stopped
                if done:
                    return False
                self.unfinished = self.files.unfinished(index) or self.unfinished  # the last state it handed over
                reason = zero_refusals.message(error)
                if failed and failures < RETRIES:
                    failures += 1
                    yield Update(f"{self.text}\nZeroGPU stopped GPU call {call} of section {index + 1} ({reason}): "
                                 "trying again from where it last handed over.", self.seed)
                    continue
                left = zero_refusals.quota_left(error)
                fits = None if left is None else left // gpu_time.current_card().quota_factor
                least = gpu_time.least_booking(self.request.takes, self.song_at_end())
                if refused and not fitted and fits is not None and booked is not None and least <= fits < booked:
                    limit, fitted = fits, True  # the next booking fits what is left
                    continue
                why = (f"ZeroGPU refused the next GPU call: {reason}" if refused else
                       f"ZeroGPU stopped GPU call {call} of section {index + 1} again ({reason}).")
                yield self.ended(why)
                return True
            self.service.served = self.job.choice  # its worker holds these models now
            failures, fitted = 0, False
            if done or self.stopped or self.flag.exists():
                return False

    def booking(self, limit: int, call: int) -> tuple[int | None, int]:
        """(seconds call `call` books, the section's calls in all as planned), on ZeroGPU; else (None, 1). A call
        after a model switch (the last call ran other models) adds LOAD_SECONDS: its own allowance for them."""
        if not self.zero_gpu:
            return None, 1
        sampling, takes, end = self.request.sampling, self.request.takes, self.song_at_end()
        load = gpu_time.LOAD_SECONDS if self.job.choice != self.service.served else 0
        work = gpu_time.call_seconds(sampling, self.precision, takes, self.unfinished,
                                     min(limit, gpu_time.CHUNK_SECONDS), audio_s=end, listen=self.job.listen)
        booked = gpu_time.granted(min(max(limit, work), gpu_time.MAX_SECONDS, work + load))
        planned = gpu_time.planned_calls(sampling, self.precision, takes, self.unfinished, audio_s=end,
                                         listen=self.job.listen)
        return booked, call - 1 + len(planned)

    def song_at_end(self) -> float:
        return gpu_time.song_at_end(self.audio_s, self.request.sampling)

    def on_event(self, event, index: int, extra: str, call: tuple[int, int]) -> Iterator[Update]:
        """Show one event of a call; returns True when it finished the section."""
        if isinstance(event, Progress):
            now = time.perf_counter()
            state = self.whole.step(index - self.kept, event, now)
            event = replace(event, sections=self.total)
            self.text = progress_text(event, index - self.kept, self.total - self.kept, self.audio_s,
                                      now - self.started, state)
            yield Update(f"{self.text}\n{extra}" if extra else self.text, self.seed, song=state, call=call,
                         details=self.details(step_detail(event)))
        elif isinstance(event, RowHeard):
            row = self.heard.new_part(event)
            if row is not None:
                yield Update(f"{self.text}\n{extra}" if extra else self.text, self.seed, call=call, row=row)
        elif isinstance(event, SectionDone):
            return (yield from self.section_done(index))
        elif isinstance(event, Handed):
            self.unfinished = self.files.unfinished(index)
        elif event == STOPPED:
            self.stopped = True
        elif isinstance(event, Started) and event.fresh:
            self.service.log_start(event)
        return False

    def section_done(self, index: int) -> Iterator[Update]:
        """Every take's song with section `index`, when the run's folder holds them: write and show their files."""
        songs = self.files.songs(index, self.request.takes)
        if songs is None:
            return False
        self.songs, self.audio_s, self.unfinished = songs, songs[0].seconds, None
        for key, value in songs[0].timings.items():
            self.timings[key] = self.timings.get(key, 0.0) + value
        self.take_files = [write_take(self.folder, song, take + 1, len(songs), index + 1, self.total, self.fmt,
                                      self.settings, self.chosen) for take, song in enumerate(songs)]
        state = self.whole.section_done(index - self.kept, songs[0].timings, time.perf_counter())
        yield Update(f"Section {index + 1} of {self.total} done.", self.seed, self.take_files, state,
                     details=self.details())
        return True

    def details(self, step: str = "") -> str:
        """The run's technical detail so far (the page folds it away)."""
        return details(self.timings, self.request.sampling.max_new_tokens, self.job.choice.precision, step)

    def ended(self, why: str) -> Update:
        """The run ends inside a section: every take's bundle keeps its finished sections and its part of this
        one; the text says what is kept and how to go on."""
        takes, seed, part = self.request.takes, self.request.seed, self.unfinished
        done = self.kept if self.songs is None else len(self.songs[0].codes.stage1.section_frames)
        files = self.take_files if part is None else self.part_files()
        text = ended_text(why, done, self.total, self.audio_s, part, self.request.sampling.max_new_tokens,
                          [seed + take for take in range(takes)])
        return Update(text, self.seed, files, SongState(self.whole.shown, None, ended=True))

    def part_files(self) -> list:
        """Every take's bundle of its finished sections and its part of the section under way (`self.unfinished`),
        which continuing resumes exactly, with the audio files of its finished sections."""
        takes, part = self.request.takes, self.unfinished
        done = self.kept if self.songs is None else len(self.songs[0].codes.stage1.section_frames)
        codes = [s.codes for s in self.songs] if self.songs else [self.request.previous or empty_song()] * takes
        return [write_unfinished(self.folder, codes[t], take_part(part, t), t + 1, takes, done, self.total,
                                 self.settings, self.request.seed + t, self.take_files[t] if self.take_files else None)
                for t in range(takes)]
