"""The YuE Space: a web app (and API) over the pipeline. Widgets become a `SongRequest`, a `Song` becomes players.

    python app.py                 # the official checkpoints (GPU)
    python app.py --tiny auto     # offline, tiny random weights: the whole app works, the output is noise

No generation logic lives here. The app adds what serving needs: one model cache, one GPU call per section
(ZeroGPU allows a few minutes per call), per-request output folders, a stop flag, input limits with clear messages.
"""
import argparse
import functools
import importlib.util
import logging
import os
import queue
import runpy
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import gradio as gr

from yue import tags
from yue.config import Limits, Sampling
from yue.loading import ModelCache
from yue.pipeline import Pipeline
from yue.prompt import FRAMES_PER_SECOND, LyricsError, parse_lyrics, split_lyrics
from yue.song import Progress, Reference, Song, SongCodes, SongRequest
from yue.stage1 import Cancelled, Stage1Tokens

log = logging.getLogger("yue.app")

APP_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = APP_DIR / "examples"
LANGUAGES = ("en", "zh", "jp-kr")
PRECISIONS = ("auto", "bf16", "int8", "nf4")
FORMATS = ("wav", "flac", "mp3")
CONTINUE_FROM = ("end", "section", "time")
EXAMPLE_LANGUAGE = {"en": "en", "zh": "zh", "ja": "jp-kr", "ko": "jp-kr"}  # example folder prefix -> checkpoint
OUTPUT_MAX_AGE_HOURS = 6.0  # outputs are for downloading now, not for keeping: free the disk of a shared Space
MAX_UPLOAD_MB = 50  # a 10-minute wav at 44.1 kHz/16-bit mono is ~50 MB
TINY_BANNER = "Tiny offline mode: random weights, the output is noise"
OFFICIAL = Sampling()  # the endpoints' Python defaults (the UI shows its own, tiny ones in tiny mode)
STOPPED = "stopped"  # what a section run yields when the user pressed Stop (a str: it crosses the ZeroGPU process)

# ZeroGPU books a GPU per call for a duration we estimate up front; a call may last at most ~300 s.
GPU_MAX_SECONDS = 300
GPU_FIXED_SECONDS = 40  # model moves, the prompt prefill, stage 2 of one section, rendering the song so far
STAGE1_TOKENS_PER_SECOND = 25.0  # guided 7B decoding on one H200 is faster; the estimate must not run short
ENCODE_GPU_SECONDS = 60  # codec encoding of at most two uploaded tracks

CSS = """
#tiny-banner {background: #fff3cd; border: 2px solid #e0a800; border-radius: 8px; padding: 0.5em 1em;}
#tiny-banner p {color: #5c4400; font-size: 1.1em; font-weight: 600; margin: 0;}
.status-ok {color: #1b7f3b;} .status-error {color: #b00020;}
"""


# -- serving state: model choice, output folders, stop flags ------------------------------------------------------

@dataclass(frozen=True)
class ModelChoice:
    """Which checkpoints a request needs: they are loaded once and kept while requests ask for the same."""

    language: str = "en"  # en | zh | jp-kr
    mode: str = "cot"  # cot (lyrics only) | icl (with an audio reference)
    precision: str = "auto"


class OutputStore:
    """One private folder (mode 0o700) per request under one root; folders older than `max_age_hours` are deleted
    whenever a new one is made, so a long-running Space does not fill its disk."""

    def __init__(self, root: Path, max_age_hours: float = OUTPUT_MAX_AGE_HOURS):
        self.root, self.max_age_s = Path(root), max_age_hours * 3600
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)  # also when it already existed; fails loudly if another user owns it

    def new_folder(self) -> Path:
        self.clean()
        return Path(tempfile.mkdtemp(prefix="song-", dir=self.root))  # mkdtemp makes it 0o700

    def clean(self) -> None:
        limit = time.time() - self.max_age_s
        for folder in self.root.glob("song-*"):
            try:
                if folder.stat().st_mtime < limit:
                    shutil.rmtree(folder, ignore_errors=True)
            except FileNotFoundError:  # another request cleaned it first
                pass


class Stops:
    """Each session's stop flag for its current run. The flag is a file in the run's folder, so a ZeroGPU worker (a
    forked process) sees it too; the pipeline's `cancel()` looks at it between tokens."""

    def __init__(self):
        self._lock = threading.Lock()
        self._flags: dict[str, Path] = {}

    def start(self, session: str, folder: Path) -> Path:
        with self._lock:
            self._flags[session] = folder / "STOP"
        return folder / "STOP"

    def stop(self, session: str) -> bool:
        with self._lock:
            flag = self._flags.get(session)
        if flag is None:
            return False
        flag.touch()
        return True

    def finish(self, session: str, flag: Path) -> None:
        with self._lock:
            if self._flags.get(session) == flag:
                del self._flags[session]


# -- GPU work: one call per section ---------------------------------------------------------------------------------

def gpu(duration: Callable[..., int]):
    """`spaces.GPU(duration=...)` when the package is installed (a no-op off ZeroGPU), else nothing at all."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


def section_gpu_seconds(choice: ModelChoice, request: SongRequest, stop_file: str) -> int:
    """GPU time to book for one section, from its token budget (same arguments as the GPU function)."""
    return int(min(GPU_MAX_SECONDS, GPU_FIXED_SECONDS + request.sampling.max_new_tokens / STAGE1_TOKENS_PER_SECOND))


def encode_gpu_seconds(choice: ModelChoice, paths: list[str]) -> int:
    return ENCODE_GPU_SECONDS


def section_events(pipeline: Pipeline, request: SongRequest, stop_file: str) -> Iterator:
    """Run `pipeline.stream(request)` on a worker thread; yield its `Progress` events and `Song`s as they come, and
    STOPPED when the stop flag ended it. Closing this generator (client gone) stops the worker at the next token."""
    events: queue.Queue = queue.Queue()
    closed = threading.Event()
    done = object()

    def cancel() -> bool:
        return closed.is_set() or os.path.exists(stop_file)

    def work() -> None:
        try:
            for song in pipeline.stream(request, events.put, cancel):
                events.put(song)
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


# -- translation: widgets -> request, song -> files ----------------------------------------------------------------

def _number(value, name: str, kind=float):
    if value is None or value == "":
        raise ValueError(f"{name} is empty: enter a number")
    return kind(value)


def make_sampling(max_new_tokens, min_new_tokens, guidance_first, guidance_later, top_p, temperature,
                  repetition_penalty) -> Sampling:
    return Sampling(top_p=_number(top_p, "top-p"), temperature=_number(temperature, "temperature"),
                    repetition_penalty=_number(repetition_penalty, "repetition penalty"),
                    guidance_first=_number(guidance_first, "guidance (first section)"),
                    guidance_later=_number(guidance_later, "guidance (later sections)"),
                    max_new_tokens=_number(max_new_tokens, "max tokens per section", int),
                    min_new_tokens=_number(min_new_tokens, "min tokens per section", int))


def check_choice(language: str, precision: str, output_format: str) -> None:
    for value, allowed, name in ((language, LANGUAGES, "language"), (precision, PRECISIONS, "precision"),
                                 (output_format, FORMATS, "output format")):
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_upload(path: str | None, what: str, limits: Limits) -> str | None:
    """Refuse an upload that is too big or too long before any GPU time is spent on it."""
    if not path:
        return None
    import soundfile

    size_mb = os.path.getsize(path) / 2**20
    if size_mb > MAX_UPLOAD_MB:
        raise ValueError(f"The {what} is {size_mb:.0f} MB; the limit is {MAX_UPLOAD_MB} MB. Upload a shorter clip.")
    try:
        seconds = soundfile.info(path).duration
    except Exception:
        raise ValueError(f"The {what} is not an audio file this app can read; upload a wav, flac or mp3.") from None
    if seconds > limits.max_reference_seconds:
        raise ValueError(f"The {what} is {seconds:.0f} s long; the limit is {limits.max_reference_seconds:.0f} s. "
                         "Trim it first.")
    return path


def load_bundle(path: str) -> tuple[SongCodes, dict]:
    try:
        return SongCodes.load(path)
    except ValueError:
        raise
    except Exception:  # e.g. a file that is not a zip at all
        raise ValueError(f"{Path(path).name} is not a song bundle (.npz) saved by this app") from None


def choose_start(codes: SongCodes, continue_from: str, keep_sections, cut_seconds) -> SongCodes:
    """Where a continuation resumes: the end, after the first `keep_sections` sections, or at `cut_seconds`."""
    if continue_from == "end":
        return codes
    if continue_from == "section":
        keep = _number(keep_sections, "sections to keep", int)
        if keep < 1:
            raise ValueError("Keep at least 1 section; to start over, use the Lyrics to song tab")
        return codes.keep_sections(keep)
    if continue_from == "time":
        cut = _number(cut_seconds, "cut time")
        length = codes.frames / FRAMES_PER_SECOND
        if not 0 < cut <= length:
            raise ValueError(f"The cut time must be between 0 and {length:.1f} s (the song's length); got {cut:g}")
        return codes.cut(round(cut * FRAMES_PER_SECOND))
    raise ValueError(f"continue_from must be one of {', '.join(CONTINUE_FROM)}; got {continue_from!r}")


def stems_codes(vocal, instrumental) -> SongCodes:
    """Uploaded stems as a one-section song to continue (the lyrics' first section is what they sing)."""
    frames = min(vocal.size, instrumental.size)
    return SongCodes(Stage1Tokens(vocal[:frames], instrumental[:frames], (frames,), ("verse",)))


def prefill_lyrics(lyrics: str, kept: int) -> str:
    """Lyrics for a continuation: the song's sections (the kept ones first, then the ones to regenerate); an empty
    new section at the end when the song used them all, which the live check asks the user to fill."""
    sections = split_lyrics(lyrics or "")
    text = "".join(s.text for s in sections)
    return text + ("[verse]\n" if len(sections) <= kept else "")


def write_audio(path: Path, samples, sample_rate: int) -> str:
    try:
        from yue.audio import write_audio as write
    except ImportError:  # until yue/audio.py lands: soundfile writes wav, flac and mp3 (libsndfile >= 1.1)
        import soundfile

        soundfile.write(path, samples, sample_rate)
    else:
        write(path, samples, sample_rate)
    return str(path)


def write_song(folder: Path, song: Song, done: int, total: int, fmt: str, settings: dict) -> list[str | None]:
    """Files of the song so far: [mix, vocal, instrumental, bundle]. Names carry 'done of total' so a partial song
    is not mistaken for a finished one."""
    name = f"{done}of{total}"
    bundle = str(song.codes.save(folder / f"song-{name}.npz", {**settings, "sections_done": done}))
    if song.mix.size == 0:  # a token-only pipeline (no codec): codes, no audio
        return [None, None, None, bundle]
    tracks = (("mix", song.mix), ("vocal", song.vocal), ("instrumental", song.instrumental))
    audio = [write_audio(folder / f"{kind}-{name}.{fmt}", samples, song.sample_rate) for kind, samples in tracks]
    return audio + [bundle]


def lyrics_status(lyrics: str, limits: Limits = Limits()) -> str:
    """The live check beside the lyrics editor, in words."""
    try:
        parsed = parse_lyrics(lyrics, limits)
    except LyricsError as error:
        return f"<span class='status-error'>✗ {error}</span>"
    labels = ", ".join(s.label for s in parsed.sections)
    text = (f"<span class='status-ok'>✓ {len(parsed.sections)} sections: {labels}</span> "
            f"({len(lyrics)}/{limits.max_lyrics_chars} characters)")
    return text + "".join(f"<br>⚠ {warning}" for warning in parsed.warnings)


def summary(song: Song | None, done: int, total: int, elapsed: float, timings: dict, stopped: bool) -> str:
    if song is None:
        return "Stopped before the first section was finished; nothing to keep." if stopped else "Nothing was made."
    head = "Stopped" if stopped else "Done"
    parts = ", ".join(f"{k.removesuffix('_s').replace('stage', 'stage ')} {v:.1f} s" for k, v in timings.items())
    lines = [f"{head}: {done} of {total} sections, {song.seconds:.1f} s of audio in {elapsed:.1f} s ({parts}).",
             f"Seed {song.seed}."]
    if song.mix.size == 0:
        lines.append("No audio: this pipeline has no codec loaded (token-only); the code bundle holds the result.")
    return "\n".join(lines + [f"⚠ {w}" for w in song.warnings])


# -- the three endpoints ---------------------------------------------------------------------------------------------

SETTINGS_DOC = """language: stage-1 checkpoint: "en", "zh" (Mandarin, Cantonese) or "jp-kr" (Japanese, Korean).
            sections: how many lyric sections to generate (continuing: at most this many new ones after the kept).
            max_new_tokens: stage-1 token budget per section; 100 tokens are 1 s of audio (official: 3000 = 30 s).
            min_new_tokens: a section may not end before this many tokens (official: 100).
            guidance_first: classifier-free guidance scale of the first section (official 1.5; 1.0 = off).
            guidance_later: guidance scale of every later section (official 1.2).
            top_p: nucleus sampling mass (official 0.93).
            temperature: sampling temperature (official 1.0).
            repetition_penalty: penalty on audio tokens already used (official 1.1).
            seed: the random seed, used unless random_seed is true; the seed used is returned either way.
            random_seed: draw a fresh seed for this run.
            precision: model weights: "auto" (bf16 on a GPU), "bf16", "int8" or "nf4" (less memory, lower quality).
            output_format: audio file format: "wav", "flac" or "mp3".

        Returns:
            The mix, vocal stem and instrumental stem (44.1 kHz audio files), the code bundle (.npz: codes and
            settings, for an exact continuation), a progress or summary text, and the seed used. Streams an update
            after every section."""


def endpoint(fn):
    """An API endpoint: the shared settings go into its docstring (Gradio shows the Args on the API page) and its
    errors reach the user as one clear gr.Error, never a traceback. Outputs already shown stay."""

    @functools.wraps(fn)  # Gradio reads the wrapped signature (gr.Request injection) and the docstring
    def guarded(*args, **kwargs):
        try:
            yield from fn(*args, **kwargs)
            return
        except gr.Error:
            raise
        except ValueError as error:  # LyricsError included: the message says what to change
            message = str(error)
        except Exception as error:
            log.exception("generation failed")
            message = (f"Generation failed ({type(error).__name__}: {error}). Sections finished before this are "
                       "kept in the outputs.")
        skip = gr.skip()
        yield skip, skip, skip, skip, f"✗ {message}", skip, skip  # stays beside the outputs after the toast is gone
        raise gr.Error(message, print_exception=False)

    guarded.__doc__ = fn.__doc__.replace("{settings}", SETTINGS_DOC)
    return guarded


class Studio:
    """The app's behaviour without its layout: each endpoint translates its inputs into a `SongRequest` and
    streams the song back as output values, one GPU call per section."""

    def __init__(self, get_pipeline: Callable[[ModelChoice], Pipeline], store: OutputStore, limits: Limits):
        self.get_pipeline, self.store, self.limits = get_pipeline, store, limits
        self.stops = Stops()
        # Wrapped here, not at import: ZeroGPU needs them wrapped before launch, and nothing may run at import.
        self.run_section = gpu(section_gpu_seconds)(self._run_section)
        self.encode_tracks = gpu(encode_gpu_seconds)(self._encode_tracks)

    def _run_section(self, choice: ModelChoice, request: SongRequest, stop_file: str) -> Iterator:
        yield from section_events(self.get_pipeline(choice), request, stop_file)

    def _encode_tracks(self, choice: ModelChoice, paths: list[str]) -> list:
        pipeline = self.get_pipeline(choice)
        if pipeline.models.codec is None:
            raise ValueError("This app runs without the audio codec (token-only models): it cannot read reference "
                             "or stem audio")
        return [pipeline.encode(path) for path in paths]

    @endpoint
    def lyrics_to_song(self, genres: str = "", lyrics: str = "",
                       language: str = "en", sections: int = 2, max_new_tokens: int = OFFICIAL.max_new_tokens,
                       min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                       guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                       temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                       seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                       request: gr.Request = None):
        """Make a song from genre tags and lyrics.

        Args:
            genres: style tags (genre, instrument, mood, gender, timbre), e.g. "pop piano uplifting female vocal".
            lyrics: sections that each start with a tag line such as [verse] or [chorus].
            {settings}
        """
        sampling, chosen_seed = self._sampling_seed(locals())
        count = _number(sections, "sections", int)
        build = lambda: SongRequest(genres, lyrics, count, sampling, chosen_seed)
        yield from self._run(ModelChoice(language, "cot", precision), build, output_format, request)

    @endpoint
    def style_transfer(self, reference_mix: str | None = None, reference_vocal: str | None = None,
                       reference_instrumental: str | None = None, start_s: float = 0.0, end_s: float = 30.0,
                       genres: str = "", lyrics: str = "",
                       language: str = "en", sections: int = 2, max_new_tokens: int = OFFICIAL.max_new_tokens,
                       min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                       guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                       temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                       seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                       request: gr.Request = None):
        """Make a song in the style of a reference recording (in-context learning), from genre tags and lyrics.

        Args:
            reference_mix: one mixed reference track (audio file); or leave empty and give both stems below.
            reference_vocal: the vocal stem of the reference (with reference_instrumental, instead of a mix).
            reference_instrumental: the instrumental stem of the reference.
            start_s: start of the reference window the model hears, in seconds.
            end_s: end of the window in seconds (about 30 s after the start is recommended).
            genres: style tags, e.g. "pop piano uplifting female bright vocal".
            lyrics: sections that each start with a tag line such as [verse] or [chorus].
            {settings}
        """
        sampling, chosen_seed = self._sampling_seed(locals())
        count = _number(sections, "sections", int)
        window = dict(start_s=_number(start_s, "window start"), end_s=_number(end_s, "window end"))
        if window["end_s"] <= window["start_s"]:
            raise ValueError("The reference window must end after it starts (about 30 s is recommended)")
        mix = check_upload(reference_mix, "reference track", self.limits)
        pair = [check_upload(reference_vocal, "reference vocal", self.limits),
                check_upload(reference_instrumental, "reference instrumental", self.limits)]
        if mix and any(pair):
            raise ValueError("Give either one mixed reference track or a vocal + instrumental pair, not both")
        if not mix and not all(pair):
            raise ValueError("Upload a reference: one mixed track, or both a vocal and an instrumental track")
        choice = ModelChoice(language, "icl", precision)

        def build() -> SongRequest:  # after the models are loaded: encoding runs on the GPU
            if mix:
                reference = Reference(codes=self.encode_tracks(choice, [mix])[0], **window)
            else:
                vocal, instrumental = self.encode_tracks(choice, pair)
                reference = Reference(vocal_codes=vocal, instrumental_codes=instrumental, **window)
            return SongRequest(genres, lyrics, count, sampling, chosen_seed, reference)

        yield from self._run(choice, build, output_format, request)

    @endpoint
    def continue_song(self, bundle: str | None = None, vocal_stem: str | None = None,
                      instrumental_stem: str | None = None, continue_from: str = "end", keep_sections: int = 1,
                      cut_seconds: float = 0.0, genres: str = "", lyrics: str = "",
                      language: str = "en", sections: int = 2, max_new_tokens: int = OFFICIAL.max_new_tokens,
                      min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                      guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                      temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                      seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                      last_song: str | None = None, request: gr.Request = None):
        """Continue a song made by this app (from its .npz bundle: exact) or uploaded vocal + instrumental stems; or
        regenerate a song from a section on, keeping the sections before it.

        Args:
            bundle: the song's code bundle (.npz) from this app; if empty: the stems, else this session's last song.
            vocal_stem: vocal stem to continue (with instrumental_stem, instead of a bundle).
            instrumental_stem: instrumental stem to continue.
            continue_from: "end" (keep it all), "section" (keep keep_sections sections) or "time" (cut at cut_seconds).
            keep_sections: with continue_from="section": how many sections to keep.
            cut_seconds: with continue_from="time": where to cut, in seconds.
            genres: style tags (the song's own tags give the most coherent continuation).
            lyrics: the kept sections' lyrics first, then the new sections'.
            {settings}
        """
        sampling, chosen_seed = self._sampling_seed(locals())
        count = _number(sections, "sections", int)
        if count < 1:
            raise ValueError("Generate at least 1 new section")
        if continue_from not in CONTINUE_FROM:
            raise ValueError(f"continue_from must be one of {', '.join(CONTINUE_FROM)}; got {continue_from!r}")
        source, stems = bundle or last_song, None
        if not bundle and (vocal_stem or instrumental_stem):
            source = None
            stems = [check_upload(vocal_stem, "vocal stem", self.limits),
                     check_upload(instrumental_stem, "instrumental stem", self.limits)]
            if not all(stems):
                raise ValueError("Upload both stems (vocal and instrumental) to continue from stems")
        elif not source:
            raise ValueError("Nothing to continue: upload a song bundle (.npz) saved by this app, or a vocal and an "
                             "instrumental stem, or make a song first")
        # The model that made the song continues it exactly; uploaded stems get the lyrics-only model.
        codes, settings = load_bundle(source) if source else (None, {})
        choice = ModelChoice(language, settings.get("mode", "cot"), precision)

        def build() -> SongRequest:  # after the models are loaded: stems are encoded on the GPU
            song = codes if codes is not None else stems_codes(*self.encode_tracks(choice, stems))
            previous = choose_start(song, continue_from, keep_sections, cut_seconds)
            kept = len(previous.stage1.section_frames)
            # The new sections are those the lyrics list after the kept ones, at most `count`; when there are
            # none, the pipeline's check says what to write.
            found = len(split_lyrics(lyrics or ""))
            total = min(kept + count, found) if found > kept else None
            return SongRequest(genres, lyrics, total, sampling, chosen_seed, previous=previous)

        yield from self._run(choice, build, output_format, request)

    def stop(self, request: gr.Request = None) -> None:
        """Stop the current run of this session after the current token; what is done is kept."""
        if self.stops.stop(_session(request)):
            gr.Info("Stopping: the sections already made are kept.")

    # -- the streaming core ----------------------------------------------------------------------------------------

    def _sampling_seed(self, args: dict) -> tuple[Sampling, int | None]:
        check_choice(args["language"], args["precision"], args["output_format"])
        sampling = make_sampling(*(args[name] for name in ("max_new_tokens", "min_new_tokens", "guidance_first",
                                                           "guidance_later", "top_p", "temperature",
                                                           "repetition_penalty")))
        return sampling, None if args["random_seed"] else _number(args["seed"], "seed", int)

    def _run(self, choice: ModelChoice, build: Callable[[], SongRequest], fmt: str, http) -> Iterator:
        """Load, check, then one GPU call per new section; after each, write the files and yield the outputs
        (mix, vocal, instrumental, bundle, progress text, seed, last-song state)."""
        skip = gr.skip()
        session = _session(http)
        folder = self.store.new_folder()
        flag = self.stops.start(session, folder)
        try:
            yield skip, skip, skip, skip, "Loading the models…", skip, skip
            pipeline = self.get_pipeline(choice)  # in this process: ZeroGPU workers fork from it
            request = build()
            sections, _ = pipeline.check(request)
            request = request.with_seed(request.seed if request.seed is not None else secrets.randbelow(2**31))
            total = request.segments or len(sections)
            kept = 0 if request.previous is None else len(request.previous.stage1.section_frames)
            settings = {**request.settings(), "segments": total, "language": choice.language, "mode": choice.mode,
                        "precision": choice.precision}
            song, files, timings, started, stopped = None, [skip] * 4, {}, time.perf_counter(), False
            for index in range(kept, total):
                step = replace(request, previous=song.codes if song else request.previous, segments=index + 1)
                for event in self.run_section(choice, step, str(flag)):
                    if isinstance(event, Progress):
                        text = (f"{replace(event, sections=total).describe()}\n{index - kept} of {total - kept} "
                                f"new sections done, {time.perf_counter() - started:.0f} s so far")
                        yield skip, skip, skip, skip, text, request.seed, skip
                    elif isinstance(event, Song):
                        song = event
                        for key, value in song.timings.items():
                            timings[key] = timings.get(key, 0.0) + value
                        files = write_song(folder, song, index + 1, total, fmt, settings)
                        yield *files, f"Section {index + 1} of {total} done.", request.seed, files[3]
                    else:
                        stopped = True
                if stopped or flag.exists():
                    stopped = True
                    break
            done = len(song.codes.stage1.section_frames) if song else kept
            text = summary(song, done, total, time.perf_counter() - started, timings, stopped)
            yield *files, text, request.seed, files[3]
        finally:
            self.stops.finish(session, flag)


def _session(http) -> str:
    """The session a request belongs to (API clients have one too); without one, a stop cannot reach the run."""
    return getattr(http, "session_hash", None) or f"anonymous-{secrets.token_hex(8)}"


# -- small UI helpers (not API endpoints) --------------------------------------------------------------------------

def continuation_plan(bundle: str | None, continue_from: str, keep_sections, cut_seconds):
    """What a continuation keeps, in words, and the genres and lyrics to prefill from the bundle's settings."""
    skip = gr.skip()
    if not bundle:
        return skip, skip, ("Upload a song bundle (.npz) from this app, press **Continue this song** after making "
                            "one, or upload a vocal and an instrumental stem (their lyrics are the first section).")
    try:
        codes, settings = load_bundle(bundle)
        kept = choose_start(codes, continue_from, keep_sections, cut_seconds)
    except ValueError as error:
        return skip, skip, f"<span class='status-error'>✗ {error}</span>"
    count = len(kept.stage1.section_frames)
    labels = ", ".join(kept.stage1.labels) or "none"
    text = (f"Keeping **{count}** of {len(codes.stage1.section_frames)} sections "
            f"({kept.frames / FRAMES_PER_SECOND:.1f} of {codes.frames / FRAMES_PER_SECOND:.1f} s): {labels}. "
            f"The lyrics must list these {count} sections first, then the new ones (at most *Sections to generate* "
            "of them are made).")
    if settings.get("language"):
        text += f" The song was made with the **{settings['language']}** checkpoint: use it for an exact continuation."
    genres = settings.get("genres") or skip
    lyrics = prefill_lyrics(settings["lyrics"], count) if settings.get("lyrics") else skip
    return genres, lyrics, text


def reference_window(path: str | None):
    """On upload: the window is the first 30 s (or the whole track if shorter), and the track's length in words."""
    if not path:
        return gr.skip(), gr.skip(), ""
    import soundfile

    try:
        seconds = soundfile.info(path).duration
    except Exception:
        return gr.skip(), gr.skip(), "<span class='status-error'>✗ This file cannot be read as audio.</span>"
    return 0, round(min(30.0, seconds), 1), f"The track is {seconds:.1f} s long; the model hears the window below."


def picked_tags(text: str):
    found = tags.find_tags(text)
    return [found[category] for category in tags.CATEGORIES]


def load_examples(folder: Path = EXAMPLES_DIR) -> list[tuple[str, list[str]]]:
    """(name, [genres, lyrics, language]) of every example folder, e.g. examples/en-paper-lanterns/."""
    examples = []
    for song in sorted(folder.glob("*/lyrics.txt")):
        name = song.parent.name
        language = EXAMPLE_LANGUAGE.get(name.split("-")[0], "en")
        genres = (song.parent / "genre.txt").read_text(encoding="utf-8").strip()
        examples.append((name, [genres, song.read_text(encoding="utf-8").strip() + "\n", language]))
    return examples


# -- layout ------------------------------------------------------------------------------------------------------------

LIGHT = dict(show_progress="hidden", concurrency_limit=None, api_visibility="private", trigger_mode="always_last")
INTRO = """# YuE: lyrics to song
Write lyrics in sections that each start with a tag line (`[verse]`, `[chorus]`, `[bridge]` …), choose genre tags,
and generate. The song streams in section by section; **Stop** keeps what is done. Every tab is also an API endpoint
(see *Use via API* at the bottom of the page)."""


def genre_box(value: str, elem_id: str) -> gr.Textbox:
    """Genre tags as free text, plus a picker per tag category that writes into it (and follows what is typed)."""
    box = gr.Textbox(value, label="Genre tags", info="genre, instruments, mood, gender, timbre; any words work",
                     elem_id=f"{elem_id}-genres")
    found = tags.find_tags(value)
    with gr.Accordion("Pick tags from our list", open=False, elem_id=f"{elem_id}-tags"):
        with gr.Row():
            pickers = [gr.Dropdown(list(tags.TAGS[c]), value=found[c], multiselect=True, label=c.title(), min_width=120)
                       for c in tags.CATEGORIES]
    for category, picker in zip(tags.CATEGORIES, pickers):
        set_tags = lambda text, picked, category=category: tags.set_category(text, category, picked)
        picker.input(set_tags, [box, picker], box, **LIGHT)
    box.change(picked_tags, box, pickers, **LIGHT)  # also when an example or a picker sets the text
    return box


def lyrics_box(value: str, limits: Limits, elem_id: str) -> gr.Textbox:
    box = gr.Textbox(value, label="Lyrics", lines=12, max_lines=30, elem_id=elem_id,
                     info="each section starts with a tag line: [verse], [chorus], [bridge], [outro] …")
    status = gr.Markdown(lyrics_status(value, limits), elem_id=f"{elem_id}-status")
    box.change(lambda text: lyrics_status(text, limits), box, status, **LIGHT)
    return box


def settings_components(defaults: Sampling, limits: Limits) -> list:
    """The settings every endpoint shares, in the endpoints' parameter order (created unrendered: the examples of
    the first tab refer to the language before the panel is placed under the tabs)."""
    hidden = dict(render=False)
    return [
        gr.Radio(list(LANGUAGES), value="en", label="Language checkpoint", **hidden),
        gr.Slider(1, limits.max_sections, value=2, step=1, label="Sections to generate",
                  info="continuing: at most this many new ones", **hidden),
        gr.Slider(2, 8000, value=defaults.max_new_tokens, step=2, label="Max tokens per section",
                  info="100 tokens = 1 s of audio", **hidden),
        gr.Slider(0, 2000, value=defaults.min_new_tokens, step=2, label="Min tokens per section", **hidden),
        gr.Slider(1.0, 3.0, value=defaults.guidance_first, step=0.05, label="Guidance, first section", **hidden),
        gr.Slider(1.0, 3.0, value=defaults.guidance_later, step=0.05, label="Guidance, later sections", **hidden),
        gr.Slider(0.05, 1.0, value=defaults.top_p, step=0.01, label="Top-p", **hidden),
        gr.Slider(0.1, 2.0, value=defaults.temperature, step=0.05, label="Temperature", **hidden),
        gr.Slider(1.0, 2.0, value=defaults.repetition_penalty, step=0.01, label="Repetition penalty", **hidden),
        gr.Number(42, label="Seed", precision=0, **hidden),
        gr.Checkbox(False, label="Random seed", **hidden),
        gr.Radio(list(PRECISIONS), value="auto", label="Precision", info="int8/nf4 need less GPU memory", **hidden),
        gr.Radio(list(FORMATS), value="wav", label="Output format", **hidden),
    ]


def place_settings(settings: list) -> None:
    language, sections, max_new, min_new, g_first, g_later, top_p, temp, rep, seed, random_seed, precision, fmt = (
        settings)
    with gr.Row():
        for component in (language, sections, seed, random_seed):
            component.render()
    with gr.Accordion("Sampling, precision and format", open=False):
        for row in ((max_new, min_new, g_first, g_later), (top_p, temp, rep), (precision, fmt)):
            with gr.Row():
                for component in row:
                    component.render()


def build_demo(get_pipeline: Callable[[ModelChoice], Pipeline], *, output_root: Path | None = None,
               limits: Limits = Limits(), tiny: bool = False, defaults: Sampling | None = None) -> gr.Blocks:
    """The whole app over `get_pipeline(choice) -> Pipeline` (the model cache)."""
    store = OutputStore(output_root or Path(tempfile.gettempdir()) / "yue-space")
    studio = Studio(get_pipeline, store, limits)
    defaults = defaults or (Sampling(max_new_tokens=300, min_new_tokens=50) if tiny else Sampling())
    examples = load_examples()
    first = examples[0][1] if examples else ["pop piano uplifting female bright vocal", "[verse]\n…\n", "en"]
    reference = runpy.run_path(str(EXAMPLES_DIR / "make_reference.py"))["write_reference"](
        (store.root / "reference-example.wav"))
    settings = settings_components(defaults, limits)

    with gr.Blocks(title="YuE: lyrics to song", delete_cache=(3600, int(OUTPUT_MAX_AGE_HOURS * 3600))) as demo:
        if tiny:
            gr.Markdown(f"⚠ {TINY_BANNER}", elem_id="tiny-banner")
        gr.Markdown(INTRO)
        last_song = gr.State(None)  # the code bundle (path) of this session's last song, for continuing it
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Tabs() as tabs:
                    with gr.Tab("Lyrics to song", id="lyrics"):
                        l_genres, l_lyrics = genre_box(first[0], "lyrics"), lyrics_box(first[1], limits, "lyrics")
                        l_go = gr.Button("Generate", variant="primary", elem_id="generate")
                        if examples:
                            gr.Examples([row for _, row in examples], [l_genres, l_lyrics, settings[0]],
                                        example_labels=[name for name, _ in examples], label="Examples")
                    with gr.Tab("Style transfer", id="style"):
                        gr.Markdown("A reference recording sets the style (in-context learning): one mixed track, "
                                    "or its vocal and instrumental stems. About 30 s of it is enough.")
                        s_mix = gr.Audio(type="filepath", sources=["upload"], label="Reference track (mixed)")
                        with gr.Accordion("…or a vocal + instrumental pair", open=False):
                            with gr.Row():
                                s_vocal = gr.Audio(type="filepath", sources=["upload"], label="Reference vocal")
                                s_inst = gr.Audio(type="filepath", sources=["upload"], label="Reference instrumental")
                        s_info = gr.Markdown()
                        with gr.Row():
                            s_start = gr.Number(0, label="Window start (s)", minimum=0)
                            s_end = gr.Number(30, label="Window end (s)", minimum=0)
                        s_genres, s_lyrics = genre_box(first[0], "style"), lyrics_box(first[1], limits, "style-lyrics")
                        s_go = gr.Button("Generate in this style", variant="primary")
                        gr.Examples([[reference, 0, 10, first[0], first[1]]],
                                    [s_mix, s_start, s_end, s_genres, s_lyrics], label="Example reference (our synth)")
                    with gr.Tab("Continue a song", id="continue"):
                        c_bundle = gr.File(label="Song bundle (.npz) from this app", file_types=[".npz"])
                        with gr.Accordion("…or a vocal + instrumental pair to continue", open=False):
                            with gr.Row():
                                c_vocal = gr.Audio(type="filepath", sources=["upload"], label="Vocal stem")
                                c_inst = gr.Audio(type="filepath", sources=["upload"], label="Instrumental stem")
                        with gr.Row():
                            c_from = gr.Radio([("the end", "end"), ("after section N (regenerate the rest)", "section"),
                                               ("a time", "time")], value="end", label="Continue from")
                            c_keep = gr.Number(1, label="N: sections to keep", precision=0, minimum=1)
                            c_cut = gr.Number(0, label="Cut time (s)", minimum=0)
                        c_plan = gr.Markdown(continuation_plan(None, "end", 1, 0)[2], elem_id="continue-plan")
                        c_genres, c_lyrics = genre_box(first[0], "continue"), lyrics_box("", limits, "continue-lyrics")
                        c_go = gr.Button("Continue", variant="primary", elem_id="continue")
                place_settings(settings)
            with gr.Column(scale=2):
                progress = gr.Textbox(label="Progress", lines=4, interactive=False, elem_id="progress")
                seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
                mix = gr.Audio(label="Song", type="filepath", interactive=False, elem_id="mix",
                               buttons=["download"])
                vocal = gr.Audio(label="Vocal stem", type="filepath", interactive=False, buttons=["download"])
                instrumental = gr.Audio(label="Instrumental stem", type="filepath", interactive=False,
                                        buttons=["download"])
                bundle = gr.File(label="Code bundle", interactive=False)
                with gr.Row():
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                    again = gr.Button("Continue this song →")

        outputs = [mix, vocal, instrumental, bundle, progress, seed_used, last_song]
        run = dict(outputs=outputs, concurrency_id="gpu", show_progress="minimal")  # one GPU: one run at a time
        l_go.click(studio.lyrics_to_song, [l_genres, l_lyrics, *settings], api_name="lyrics_to_song", **run)
        s_go.click(studio.style_transfer, [s_mix, s_vocal, s_inst, s_start, s_end, s_genres, s_lyrics, *settings],
                   api_name="style_transfer", **run)
        c_go.click(studio.continue_song, [c_bundle, c_vocal, c_inst, c_from, c_keep, c_cut, c_genres, c_lyrics,
                                          *settings, last_song], api_name="continue_song", **run)
        stop.click(studio.stop, None, None, api_name="stop", concurrency_limit=None, show_progress="hidden")
        # The plan (and the prefilled lyrics) follow user actions only: a programmatic change of the bundle
        # field must not overwrite lyrics the user is editing.
        plan = dict(fn=continuation_plan, inputs=[c_bundle, c_from, c_keep, c_cut],
                    outputs=[c_genres, c_lyrics, c_plan])
        again.click(lambda song: (song, gr.Tabs(selected="continue")), last_song, [c_bundle, tabs],
                    **LIGHT).then(**plan, **LIGHT)
        for event in (c_bundle.upload, c_bundle.clear, c_from.input, c_keep.input, c_cut.input):
            event(**plan, **LIGHT)
        for audio in (s_mix, s_vocal):
            audio.change(reference_window, audio, [s_start, s_end, s_info], **LIGHT)
    demo.queue(default_concurrency_limit=1)
    return demo


# -- start-up ----------------------------------------------------------------------------------------------------------

def codec_available() -> bool:
    return importlib.util.find_spec("yue.codec_loading") is not None


def tiny_folder(value: str) -> Path:
    """`--tiny auto`: a cache folder written once; `--tiny DIR`: that folder (written if empty)."""
    from yue.tiny import write_tiny

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "yue-space" / "tiny"
    folder = cache if value == "auto" else Path(value)
    complete = (folder / "README.txt").is_file()  # write_tiny writes it last
    if not complete or (codec_available() and not (folder / "xcodec_mini_infer").is_dir()):
        log.info("writing tiny checkpoints to %s", folder)
        write_tiny(folder, codec=codec_available())
    return folder


def pipelines(cache: ModelCache, tiny: Path | None = None, device: str | None = None):
    """`get_pipeline(choice)` over the one model cache: the same choice gets the loaded models back; another
    language or mode swaps only the stage-1 LM. Tiny checkpoints serve every choice (on the CPU)."""

    def get(choice: ModelChoice) -> Pipeline:
        if tiny is None:
            return Pipeline(cache.get(mode=choice.mode, language=choice.language, precision=choice.precision,
                                      device=device))
        codec = tiny / "xcodec_mini_infer"  # until the codec lands: a token-only pipeline (no audio)
        codec = codec if codec_available() and codec.is_dir() else False
        return Pipeline(cache.get(stage1=tiny / "s1", stage2=tiny / "s2", codec=codec, device="cpu"))

    return get


def theme() -> gr.themes.Base:
    """Soft, with system fonts: the default Google fonts are fetched by the browser, which hangs offline."""
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False,
           mcp: bool = False, **kwargs):
    """Launch with the app's theme, CSS and upload limit (host/port None: Gradio's defaults or its env vars)."""
    return demo.launch(server_name=host, server_port=port, share=share, mcp_server=True if mcp else None,
                       theme=theme(), css=CSS, max_file_size=f"{MAX_UPLOAD_MB}mb", **kwargs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="YuE lyrics-to-song web app (a Hugging Face Space)")
    env_tiny = os.environ.get("YUE_TINY", "").lower() in ("1", "true", "yes")
    parser.add_argument("--tiny", metavar="DIR|auto", default="auto" if env_tiny else None,
                        help="tiny random checkpoints (offline; the output is noise); env YUE_TINY=1 = auto")
    parser.add_argument("--host", help="default 127.0.0.1 (or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, help="default 7860 (or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="a public gradio.live link (off by default)")
    parser.add_argument("--mcp", action="store_true", help="also serve the endpoints as MCP tools (needs gradio[mcp])")
    parser.add_argument("--outputs", type=Path, help="root of the per-request output folders")
    parser.add_argument("--device", help="cpu, cuda … (default: cuda when present)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if args.mcp and importlib.util.find_spec("mcp") is None:
        print('error: --mcp needs the MCP extra: pip install "gradio[mcp]"', file=sys.stderr)
        return 2
    get_pipeline = pipelines(ModelCache(), tiny_folder(args.tiny) if args.tiny else None, args.device)
    demo = build_demo(get_pipeline, output_root=args.outputs, tiny=bool(args.tiny))
    launch(demo, args.host, args.port, args.share, args.mcp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
