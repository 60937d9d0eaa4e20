"""The Space's endpoints (Gradio layer): each translates its inputs into a job of `yue.serving.Service` and streams
the song back as output values; `spaces.GPU` is applied here, the only place that knows about ZeroGPU."""
import logging
from dataclasses import replace
import secrets
import time
from typing import Callable, Iterator

import gradio as gr

from yue.config import DEFAULT_SECTIONS, Limits, Sampling
from yue.pipeline import Pipeline
from space.jobs import Job, ModelChoice, shared_settings
from space.endpoints import endpoint, outputs
from space.listeners import Listeners
from space.results import listing
from space.row_audio import row_listing
from space.serving import Service, encode_gpu_seconds, section_gpu_seconds
from space.store import SESSIONS_KEPT, OutputStore, Recent

log = logging.getLogger("yue.app")

OFFICIAL = Sampling()  # the endpoints' Python defaults (the UI shows its own, tiny ones in tiny mode)


def gpu(duration: Callable[..., int]):
    """`spaces.GPU(duration=...)` when the package is installed (a no-op off ZeroGPU), else nothing at all."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


class Studio:
    """The endpoints: each translates its inputs into a job of `yue.serving.Service` and streams the song back as
    output values. `spaces.GPU` is applied here, the only place that knows about ZeroGPU."""

    def __init__(self, get_pipeline: Callable[[ModelChoice], Pipeline], store: OutputStore, limits: Limits,
                 precision: str | None = None):
        self.service = Service(get_pipeline, store, limits)
        self.precision = precision  # the one precision every run uses (tiny mode), None: the one asked for
        self.listeners: Listeners | None = None  # set once the page exists: runs nobody listens for are dropped
        self.made = Recent(SESSIONS_KEPT)  # session -> every take's files of its latest run (the latest sessions)
        self.heard = Recent(SESSIONS_KEPT)  # session -> the pieces heard so far in its latest run (RowHeard each)
        # Wrapped here, not at import: ZeroGPU needs them wrapped before launch, and nothing may run at import.
        self.run_section = gpu(section_gpu_seconds)(self.service.run_section)
        self.encode_tracks = gpu(encode_gpu_seconds)(self.service.encode_tracks)

    @endpoint
    def lyrics_to_song(self, genres: str = "", lyrics: str = "",
                       language: str = "en", sections: int = DEFAULT_SECTIONS,
                       max_new_tokens: int = OFFICIAL.max_new_tokens, min_new_tokens: int = OFFICIAL.min_new_tokens,
                       guidance_first: float = OFFICIAL.guidance_first, guidance_later: float = OFFICIAL.guidance_later,
                       top_p: float = OFFICIAL.top_p, temperature: float = OFFICIAL.temperature,
                       repetition_penalty: float = OFFICIAL.repetition_penalty,
                       seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                       takes: int = 1, listen: bool = True, request: gr.Request = None):
        """Make a song (sung vocals and accompaniment, several minutes long if asked) from genre tags and lyrics.
        Each lyric section becomes about max_new_tokens / 100 seconds of music (30 s by default).

        Args:
            genres: style tags (genre, instruments, mood, vocal gender, timbre), e.g. "pop piano uplifting female".
            lyrics: sections, each a tag line ([verse], [chorus], [bridge] …) and its lines; blank lines between.
            {settings}
        """
        started, shared = time.perf_counter(), shared_settings(locals(), self.service.limits)
        yield from self._run(self.service.lyrics_job(genres, lyrics, shared), output_format, request, started)

    @endpoint
    def style_transfer(self, reference_mix: str | None = None, reference_vocal: str | None = None,
                       reference_instrumental: str | None = None, start_s: float = 0.0, end_s: float = 30.0,
                       genres: str = "", lyrics: str = "",
                       language: str = "en", sections: int = DEFAULT_SECTIONS,
                       max_new_tokens: int = OFFICIAL.max_new_tokens, min_new_tokens: int = OFFICIAL.min_new_tokens,
                       guidance_first: float = OFFICIAL.guidance_first, guidance_later: float = OFFICIAL.guidance_later,
                       top_p: float = OFFICIAL.top_p, temperature: float = OFFICIAL.temperature,
                       repetition_penalty: float = OFFICIAL.repetition_penalty,
                       seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                       takes: int = 1, listen: bool = True, request: gr.Request = None):
        """Make a song in the style of a reference recording (in-context learning), from genre tags and lyrics.

        Args:
            reference_mix: one mixed reference track (audio file); or leave empty and give both stems below.
            reference_vocal: the vocal stem of the reference (with reference_instrumental, instead of a mix).
            reference_instrumental: the instrumental stem of the reference.
            start_s: start of the reference window the model hears, in seconds.
            end_s: end of the window in seconds (about 30 s after the start is recommended).
            genres: style tags (genre, instruments, mood, vocal gender, timbre), e.g. "pop piano uplifting female".
            lyrics: sections, each a tag line ([verse], [chorus], [bridge] …) and its lines; blank lines between.
            {settings}
        """
        started, shared = time.perf_counter(), shared_settings(locals(), self.service.limits)
        job = self.service.style_job(reference_mix, reference_vocal, reference_instrumental, start_s, end_s, genres,
                                     lyrics, shared, self.encode_tracks)
        yield from self._run(job, output_format, request, started)

    @endpoint
    def continue_song(self, bundle: str | None = None, vocal_stem: str | None = None,
                      instrumental_stem: str | None = None, continue_from: str = "end", keep_sections: int = 1,
                      cut_seconds: float = 0.0, genres: str = "", lyrics: str = "",
                      language: str = "en", sections: int = DEFAULT_SECTIONS,
                      max_new_tokens: int = OFFICIAL.max_new_tokens, min_new_tokens: int = OFFICIAL.min_new_tokens,
                      guidance_first: float = OFFICIAL.guidance_first, guidance_later: float = OFFICIAL.guidance_later,
                      top_p: float = OFFICIAL.top_p, temperature: float = OFFICIAL.temperature,
                      repetition_penalty: float = OFFICIAL.repetition_penalty,
                      seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                      takes: int = 1, listen: bool = True, last_song: str | None = None,
                      request: gr.Request = None):
        """Continue a song made by this app (from its .npz bundle: exact) or uploaded vocal + instrumental stems; or
        regenerate a song from a section on, keeping the sections before it.

        Args:
            bundle: the code bundle (.npz) a run returned: its URL or data:application/zip;base64,…; empty: the stems.
            vocal_stem: vocal stem to continue (with instrumental_stem, instead of a bundle).
            instrumental_stem: instrumental stem to continue.
            continue_from: "end" (keep it all), "section" (keep keep_sections sections) or "time" (cut at cut_seconds).
            keep_sections: with continue_from="section": how many sections to keep.
            cut_seconds: with continue_from="time": where to cut, in seconds.
            genres: style tags (the song's own tags give the most coherent continuation).
            lyrics: the kept sections' lyrics first, then the new sections'.
            {settings}
        """
        started, shared = time.perf_counter(), shared_settings(locals(), self.service.limits)
        job = self.service.continue_job(bundle, vocal_stem, instrumental_stem, continue_from, keep_sections,
                                        cut_seconds, genres, lyrics, last_song, shared, self.encode_tracks)
        yield from self._run(job, output_format, request, started)

    @endpoint
    def keep_take(self, made: list | None = None, take: int = 1,
                  language: str = "en", sections: int = 1, max_new_tokens: int = OFFICIAL.max_new_tokens,
                  min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                  guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                  temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                  seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                  takes: int = 1, listen: bool = True, request: gr.Request = None):
        """Keep one take of this session's last run and go on: every take continues from that take's song with the
        next section of its lyrics (a continuation of the take's bundle; the page's buttons, not an API endpoint).

        Args:
            made: the files of every take of the last run (the session's state).
            take: which take to keep (1-based).
            {settings}
        """
        started, shared = time.perf_counter(), shared_settings(locals(), self.service.limits)
        job = self.service.keep_job(made, take, shared, self.encode_tracks)
        yield from self._run(job, output_format, request, started)

    def takes(self, request: gr.Request = None) -> tuple[list[str], list[dict]]:
        """Every take of this client's latest run (or the one running): the files of each (mix, vocal, instrumental
        and bundle, named take<t>-…; only the bundle without audio) and a table of each take's number, seed and
        file names."""
        return listing(self.session_takes(request))

    def session_takes(self, request: gr.Request = None) -> list | None:
        """Every take's files (TakeFiles.as_dict() each) of this session's latest run, as recorded by `_run`."""
        return self.made.get(_session(request))

    def rows(self, first: float = 0, request: gr.Request = None) -> tuple[list[str], list[dict]]:
        """The audio made so far in this client's run that goes on, piece by piece, every take's (about 2 s each
        as its codes become final, before the section is done): the .wav files of the pieces from number `first` on
        (0: all; pass the number of pieces you have to get only the new ones) and a table of each: its number, take,
        section, start_s, seconds and file name. Empty before a run, with the audio codec off, and once the run has
        ended (the song is in the outputs then)."""
        return row_listing(self.heard.get(_session(request), []), int(first or 0))

    def stop(self, request: gr.Request = None) -> None:
        """Stop the current run of this session after the current token; what is done is kept."""
        if self.service.stops.stop(_session(request)):
            gr.Info("Stopping: what is made so far is kept.")

    def _run(self, job: Job, fmt: str, http, started: float) -> Iterator:
        """The service's updates of this session's run, as output values (`started`: when the endpoint began, so the
        summary's time includes reading a reference). With a fixed precision (tiny mode), another one asked for is
        refused (it would be ignored) and the bundles record the one used."""
        if self.precision is not None:
            if job.choice.precision not in ("auto", self.precision):
                raise ValueError(f"This app runs its tiny checkpoints in {self.precision} on the cpu: precision "
                                 f"{job.choice.precision} would be ignored. Leave precision at auto.")
            job = replace(job, choice=replace(job.choice, precision=self.precision))
        session = _session(http)
        if self.listeners is not None and self.listeners.gone(session):
            log.info("a run of session %s was dropped before it started: its client never read its messages",
                     session)
            raise ValueError("Nobody listened for this run (its client left before it started), so it was not run.")
        self.heard[session] = heard = []  # this run's pieces, for /rows
        for update in self.service.run(job, fmt, session, self.run_section, started):
            if update.takes is not None:  # kept here, not sent as an output: MCP tools fail on a State output
                self.made[session] = [take.as_dict() for take in update.takes]
            if update.row is not None:
                heard.append(update.row)
            yield outputs(update)


def _session(http) -> str:
    """The session a request belongs to (API clients have one too); without one, a stop cannot reach the run.

    Stop, /takes and a run's files are keyed by Gradio's session hash: in Gradio 6.31 it is the one key of a
    session (whoever sends it reads the session's event stream and may cancel its runs through Gradio itself), so a
    key of ours, sent to the page in that stream, would guard nothing more (tests/space/test_listeners.py)."""
    return getattr(http, "session_hash", None) or f"anonymous-{secrets.token_hex(8)}"
