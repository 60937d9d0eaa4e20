"""The one pipeline API: load once, then `stream` or `generate` songs. The CLI and the app only call this."""
from __future__ import annotations

import logging
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .checks import number
from .config import Limits, Stage2Config
from .request import check_request, check_takes_songs, kept_ids, kept_sections, request_prompt
from .song import Progress, Song, SongCodes, SongRequest, Unfinished
from .lm.deadline import Deadline, OutOfTime
from .lm.stage1 import Cancelled, SectionTokens, Stage1Tokens, TokenProgress, generate_takes
from .codec.stream import AudioStream, final_frames
from .rows import LISTEN_ROWS, Listening, RowAudio, move_spent
from .steps import Rate, cut_stage1, song_so_far, stage2_codes
from .weights.loading import Models

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, models: Models, stage2_config: Stage2Config = Stage2Config(), limits: Limits = Limits(),
                 cpu_threads: str = ""):
        self.models = models
        self.stage2_config = stage2_config
        self.limits = limits
        self.cpu_threads = cpu_threads  # the CPU threads PyTorch uses and why, in words (from_pretrained's choice)

    @classmethod
    def from_pretrained(cls, threads: int | None = None, **kwargs) -> "Pipeline":
        """Choose PyTorch's CPU threads as the CLI does (`threads`, then OMP_NUM_THREADS, then a count this process
        chose before, else half the usable CPUs: weights.threads.pipeline_threads; logged and kept in
        `pipeline.cpu_threads`), then load every part with `loading.load_models(**kwargs)`:

        stage1 / stage2 / codec: a local folder or Hub id (None = the official checkpoint; codec=False = no audio);
        mode "cot" (lyrics to song) | "icl" (audio reference); language "en" | "zh" | "jp-kr"; precision "auto" |
        one of weights.registry.PRECISIONS (fp32, bf16, int8, int4, nf4, bnb-int8; docs/models.md) or a (stage1,
        stage2) pair; device (default CUDA when present); offload
        "auto" | True | False; cache_dir (default HF_HUB_CACHE). What was chosen: `pipeline.models.report`.
        Raises loading.ModelLoadError with a message that says what to do.
        """
        from .weights.loading import load_models
        from .weights.threads import pipeline_threads

        cpu_threads = pipeline_threads(threads)  # before loading, which runs on the CPU too
        log.info("%s", cpu_threads)
        return cls(load_models(**kwargs), cpu_threads=cpu_threads)

    @classmethod
    def tiny(cls, folder: str | Path, device: str = "cpu", precision: str = "auto",
             threads: int | None = None) -> "Pipeline":
        """A pipeline on tiny random checkpoints written by `python -m yue tiny FOLDER` (noise, for tests and demos)."""
        folder = Path(folder)
        return cls.from_pretrained(stage1=folder / "s1", stage2=folder / "s2", codec=folder / "xcodec_mini_infer",
                                   device=device, precision=precision, threads=threads)

    # -- pieces of a run, usable on their own ------------------------------------------------------------------

    def check(self, request: SongRequest):
        """Validate a request before any model work; returns (sections, warnings). Raises ValueError with a message
        that names the field and what to do."""
        return check_request(request, self.limits, self.models.tokenizer)

    def prompt(self, request: SongRequest):
        """Stage-1 prompt pieces of every section (for inspection and for `stage1`)."""
        return request_prompt(self.models.tokenizer, request, self.limits)

    def render(self, codes: SongCodes, rescale: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage-2 codes -> (mix, vocal, instrumental) at 44.1 kHz."""
        from .codec.render import render_song

        m = self._audio_parts()
        return render_song(m.codec, m.vocal_vocoder, m.instrumental_vocoder, codes.vocal, codes.instrumental, rescale)

    def renderer(self, rescale: bool = False, state=None):
        """A `yue.incremental.SongRenderer` for one growing song: `renderer.render(vocal, instrumental)` gives what
        `render` gives, decoding again only the frames whose codes changed since its last song (and their context).
        `state`: a `song.render_state` (or `renderer.state`) to go on from, e.g. made in another process."""
        from .codec.incremental import SongRenderer

        m = self._audio_parts()
        return SongRenderer(m.codec, m.vocal_vocoder, m.instrumental_vocoder, rescale, state)

    def _audio_parts(self, purpose: str = "make audio") -> Models:
        if self.models.codec is None:
            raise RuntimeError(f"This pipeline was loaded without the codec; load it with codec=... to {purpose}")
        return self.models

    def encode(self, path: str | Path) -> np.ndarray:
        """Codebook-0 codes (T,) of an audio file (the ICL reference path, SPEC §3.3): the whole file is encoded,
        as the official code does, but in windows (`render.encode_codes`) so memory does not grow with its length;
        `Reference` picks the window."""
        self._audio_parts("encode audio")
        from .audio import read_audio
        from .codec.render import encode_codebook0

        self.models.prepare("audio")
        samples = read_audio(path, max_seconds=self.limits.max_reference_seconds)
        return encode_codebook0(self.models.codec, samples)

    # -- whole runs --------------------------------------------------------------------------------------------

    def stream(self, request: SongRequest, on_progress: Callable[[Progress], None] | None = None,
               cancel: Callable[[], bool] | None = None, audio: bool = True) -> Iterator[Song]:
        """Yield the song so far after every new section (stage 1 -> stage 2 -> audio), the last one complete.
        With `request.takes` > 1 this is take 1; `stream_takes` yields every take.

        `cancel()` returning True stops at the next token; sections already yielded stay valid.
        """
        for songs in self.stream_takes(request, on_progress, cancel, audio):
            yield songs[0]

    def stream_takes(self, request: SongRequest, on_progress: Callable[[Progress], None] | None = None,
                     cancel: Callable[[], bool] | None = None, audio: bool = True,
                     keep: Callable[[list[SectionTokens]], int | None] | None = None,
                     previous: list[SongCodes] | None = None,
                     render_states: list | None = None, deadline: Deadline | None = None,
                     resume: Unfinished | None = None,
                     on_unfinished: Callable[[Unfinished], None] | None = None,
                     on_row: Callable[[RowAudio], None] | None = None,
                     listen_rows: int = LISTEN_ROWS) -> Iterator[list[Song]]:
        """Like `stream`, for `request.takes` versions made in one batch: yields one Song per take after every new
        section. Take t has seed `seed + t` (`song.seed`) and is the song a one-take request with that seed makes.
        `keep(sections)` (stage-1 sections of every take) may return the index of a take that every take then
        continues from (best of N, section by section); None keeps them independent.
        `previous` (one song per take, in place of `request.previous`): each take continues its own song, as a
        one-take request continuing that song with the take's seed does (takes run section by section, one call
        each, as on ZeroGPU).
        `render_states` (one per take, each a `song.render_state` of an earlier call or None): each take's audio goes
        on from that state, decoding only frames whose codes differ from the state's, so a song made one call per
        section costs O(song) audio work in all. Every yielded Song carries its own `render_state` for the next call.
        A state of another song is safe (its codes differ, so more is decoded); the audio is the same either way.
        `deadline` (a GPU call's): once it has passed, stage 1 or stage 2 stops within `deadline.every` decode steps
        and this raises `yue.lm.deadline.OutOfTime` whose `state` is an `Unfinished` (the section under way; the
        songs yielded before stay valid); rendering a finished section's audio is not cut. `resume`: such a state,
        given with the songs so far (`previous`, `render_states`): the section goes on exactly where it stopped.
        In any precision the song is the same however it was cut (yue/lm/settle.py: settled decode steps).
        `on_unfinished` (with a deadline): given the section's `Unfinished` so far every few seconds
        (yue.lm.deadline.SAVE_EVERY_SECONDS), to go on from if the call is killed before its deadline.
        `on_row`: given every take's audio as it is made (`yue.rows.RowAudio`, about 2 s at a time, the first
        after one 6 s row of stage 1; yue/rows.py): stage 2 and the audio of each row run between stage-1 steps.
        The pieces of a take, joined, are its song (float rounding; loudness provisional until the song ends).
        The songs are those of a run without it (tests/test_rows.py: CPU, fp32 and bf16; docs/models.md for GPUs),
        and a `Cancelled` stop says what was made and heard. With offload, rows come at each section's end.
        `listen_rows` (>= 1): rows of each take per stage-2 batch after a section's first (`yue.rows.batch_end`).
        """
        listen_rows = number(listen_rows, "listen_rows", 1, whole=True)
        if previous is None and resume is None and getattr(request.previous, "unfinished", None) is not None:
            yield from self._finish_unfinished(request, on_progress, cancel, audio, keep, deadline=deadline,
                                               on_row=on_row, listen_rows=listen_rows)
            return
        if previous is not None:  # the request's checks look at take 1's song
            request = replace(request, previous=previous[0] if previous else None)
        sections, warnings = self.check(request)
        if previous is not None:
            check_takes_songs(request.takes, previous)
        seed = request.seed if request.seed is not None else secrets.randbelow(2**31)
        prompt = request_prompt(self.models.tokenizer, request, self.limits, sections)
        total = request.sections_total(len(sections))
        takes = request.takes
        songs = previous or [request.previous] * takes
        known = [[None, None] if song is None else [song.vocal, song.instrumental] for song in songs]
        done = None if previous is None else [kept_ids(song) for song in previous]
        finished: list[list[SectionTokens]] = [[] for _ in range(takes)]
        timings = {"stage1_s": 0.0, "stage2_s": 0.0, "audio_s": 0.0}
        rate = Rate(on_progress)
        # one incremental renderer per take: each decodes again only what changed in its own song
        if render_states is not None and len(render_states) != takes:
            raise ValueError(f"{len(render_states)} render states for {takes} takes: give one per take (or None)")
        states = render_states or [None] * takes
        renderers = [self.renderer(request.rescale, state) if audio and self.models.codec is not None else None
                     for state in states]

        listening = self._listening(request, songs, states, on_row, keep, deadline, cancel,
                                    listen_rows) if on_row else None

        def section_rows(index: int) -> tuple:
            """The rows an earlier call made of section `index`, and those this call made of it while streaming."""
            if listening is not None and listening.section == index:
                return listening.rows
            return resume.rows if resume is not None and resume.section == index else ()

        def begin(index: int) -> None:  # a section of a streaming run starts: what its rows go on from
            if listening.section != index:
                before = [(t.vocal, t.instrumental) for t in map(Stage1Tokens.from_sections, finished)]
                save = None if on_unfinished is None else (
                    lambda rows, partial: on_unfinished(Unfinished(index, stage1=partial, rows=rows)))
                listening.begin(index, before, known, section_rows(index), index == total - 1, save)

        def on_step(index: int, ids: list[list[int]], state) -> None:
            begin(index)
            listening.step(index, ids, state)

        def on_token(step: TokenProgress) -> None:
            if listening is None and cancel is not None and cancel():  # streaming: `on_step` stops, with a state
                raise Cancelled("stopped by the user")
            rate.report("stage1", step.section, total, step.new_tokens, step.max_new_tokens)

        kept = len(prompt.done if done is None else done[0])
        if resume is not None and (resume.section != kept or resume.sections and total != kept + 1):
            raise ValueError(f"this unfinished section is section {resume.section + 1} of the song: go on with the "
                             f"songs its call was given ({kept} sections here) and segments = {resume.section + 1}")
        started = time.perf_counter()
        if resume is not None and resume.sections:  # stage 1 of this section is done: on to stage 2
            made_sections = [[replace(section, label=prompt.labels[index]) for section in taken]
                             for index, taken in enumerate(zip(*map(kept_sections, songs)))]
            made_sections.append(list(resume.sections))
        else:
            self.models.prepare("stage1")
            save = None if on_unfinished is None else (
                lambda part: on_unfinished(Unfinished(part.section, stage1=part, rows=section_rows(part.section))))
            made_sections = generate_takes(self.models.stage1, prompt, request.sampling, seed, total, on_token, takes,
                                           keep, done, deadline, None if resume is None else resume.stage1, save,
                                           None if listening is None else on_step)
        for made in cut_stage1(made_sections, section_rows):
            for take, section in enumerate(made):
                finished[take].append(section)
            index = made[0].index
            if not made[0].generated and index < total - 1:
                continue  # kept sections are context: render once the first new section is in
            timings["stage1_s"] += time.perf_counter() - started
            tokens = [Stage1Tokens.from_sections(sections) for sections in finished]
            if listening is not None:
                begin(index)
                listening.stage1_done()
                move_spent(timings, listening, "stage1_s")  # the rows made inside stage 1 count as theirs
            save = None if on_unfinished is None else (
                lambda parts, made=tuple(made), index=index: on_unfinished(Unfinished(index, sections=made, rows=parts)))
            try:
                codes = stage2_codes(self.models, self.stage2_config, tokens, known, index, total, on_progress,
                                     cancel, timings, deadline, section_rows(index), save,
                                     None if listening is None else listening.hear)
            except OutOfTime as stop:
                raise OutOfTime(Unfinished(index, sections=tuple(made), rows=stop.state)) from None
            except Cancelled:
                if listening is None:
                    raise
                raise listening.stopped(sections=tuple(made)) from None
            if listening is not None:
                move_spent(timings, listening, "stage2_s")  # what was heard meanwhile counts as audio
                listening.end(codes)
                move_spent(timings, listening)
            known = [[c.vocal, c.instrumental] for c in codes]
            yield [song_so_far(self.models, c, request, seed + take, index + 1, total, timings, warnings,
                               renderers[take]) for take, c in enumerate(codes)]
            rate = Rate(on_progress)
            started = time.perf_counter()
            self.models.prepare("stage1")

    def _listening(self, request: SongRequest, songs, states, on_row, keep, deadline, cancel, listen_rows):
        """What streams a run's rows (`on_row`): an `AudioStream` per take going on from its render state, from the
        audio a run that stopped where this one begins had handed on."""
        if keep is not None:
            raise ValueError("on_row streams each take's own song, and keep makes every take go on from one take's "
                             "song: pass one of them")
        m = self._audio_parts("stream audio (on_row)")
        chunk = self.stage2_config.chunk_frames
        streams = [AudioStream(m.codec, m.vocal_vocoder, m.instrumental_vocoder, request.rescale, state,
                               final_frames(0 if song is None else song.frames // chunk * chunk, False))
                   for state, song in zip(states, songs)]
        return Listening(self.models, self.stage2_config, streams, on_row, deadline, cancel, listen_rows)

    def _finish_unfinished(self, request: SongRequest, *args, deadline: Deadline | None, **listening
                           ) -> Iterator[list[Song]]:
        """A song whose next section stopped part-way (`request.previous.unfinished`, a bundle's): that section is
        finished as the call it stopped in would have (exactly where it stopped), then the song goes on from it."""
        state = request.previous.unfinished.check_takes(request.takes)
        total = request.sections_total(len(self.check(request)[0]))
        songs = [request.previous] * request.takes
        for made in self.stream_takes(replace(request, segments=state.section + 1), *args, songs, None, deadline,
                                      state, **listening):
            yield made
        if total > state.section + 1:
            yield from self.stream_takes(request, *args, [song.codes for song in made],
                                         [song.render_state for song in made], deadline, **listening)

    def generate(self, request: SongRequest, on_progress: Callable[[Progress], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> Song:
        song = None
        for song in self.stream(request, on_progress, cancel):
            pass
        return song
