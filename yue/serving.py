"""Serving the pipeline to many users, without a UI: model choice, per-request output folders, stop flags, one GPU
call per section, and the checks that turn raw endpoint values into a `SongRequest`.

`app.py` is the Gradio layer over this module: it maps widgets to these calls, applies `spaces.GPU` to
`Service.run_section` and `Service.encode_tracks`, and shows each `Update` of `Service.run`. Nothing here imports
gradio or spaces, and nothing runs at import.
"""
import importlib.util
import logging
import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

from . import checks, gpu_time
from .audio import check_finite, write_audio
from .config import Limits, Sampling
from .loading import ModelCache
from .pipeline import Pipeline, check_request
from .prompt import FRAMES_PER_SECOND, split_lyrics
from .song import Progress, Reference, Song, SongCodes, SongRequest
from .stage1 import Cancelled, Stage1Tokens

log = logging.getLogger("yue.app")

LANGUAGES = ("en", "zh", "jp-kr")
PRECISIONS = ("auto", "bf16", "int8", "nf4")
FORMATS = ("wav", "flac", "mp3")
CONTINUE_FROM = ("end", "section", "time")
OUTPUT_MAX_AGE_HOURS = 6.0  # outputs are for downloading now, not for keeping: free the disk of a shared Space
MAX_UPLOAD_MB = 50  # a 10-minute wav at 44.1 kHz/16-bit mono is ~50 MB
MAX_QUEUE = 16  # runs waiting for the GPU; a song takes minutes, so a longer line is better told "busy, try again"
EXAMPLE_LANGUAGE = {"en": "en", "zh": "zh", "ja": "jp-kr", "ko": "jp-kr"}  # example folder prefix -> checkpoint
STOPPED = "stopped"  # what a section run yields when the user pressed Stop (a str: it crosses the ZeroGPU process)

# ZeroGPU books a GPU per call for a duration we compute up front from measured speeds (yue/gpu_time.py).
GPU_MAX_SECONDS = gpu_time.MAX_SECONDS
ENCODE_GPU_SECONDS = 60  # codec encoding of at most two uploaded tracks


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


def codec_available() -> bool:
    return importlib.util.find_spec("yue.codec_loading") is not None


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


def tiny_folder(value: str) -> Path:
    """`--tiny auto`: a cache folder written once; `--tiny DIR`: that folder (written if empty)."""
    from .tiny import write_tiny

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "yue-space" / "tiny"
    folder = cache if value == "auto" else Path(value)
    complete = (folder / "README.txt").is_file()  # write_tiny writes it last
    if not complete or (codec_available() and not (folder / "xcodec_mini_infer").is_dir()):
        log.info("writing tiny checkpoints to %s", folder)
        write_tiny(folder, codec=codec_available())
    return folder


def load_examples(folder: Path) -> list[tuple[str, list[str]]]:
    """(name, [genres, lyrics, language]) of every example folder, e.g. examples/en-paper-lanterns/."""
    examples = []
    for song in sorted(folder.glob("*/lyrics.txt")):
        name = song.parent.name
        language = EXAMPLE_LANGUAGE.get(name.split("-")[0], "en")
        genres = (song.parent / "genre.txt").read_text(encoding="utf-8").strip()
        examples.append((name, [genres, song.read_text(encoding="utf-8").strip() + "\n", language]))
    return examples


# -- GPU work: one call per section ---------------------------------------------------------------------------------

def section_gpu_seconds(choice: ModelChoice, request: SongRequest, stop_file: str) -> int:
    """GPU time to book for one section, from its token budget and the measured speed of its precision (same
    arguments as the GPU function)."""
    precision = "bf16" if choice.precision == "auto" else choice.precision
    return gpu_time.section_seconds(request.sampling, precision)


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


# -- checks: raw endpoint values -> typed values, or a ValueError that says what to change -------------------------

@dataclass(frozen=True)
class Shared:
    """The settings every endpoint shares, checked."""

    language: str
    precision: str
    output_format: str
    sections: int
    sampling: Sampling
    seed: int | None  # None: draw a random one


def shared_settings(args: dict, limits: Limits = Limits()) -> Shared:
    """The shared settings from an endpoint's arguments (by parameter name), each checked with a message naming it."""
    choices = {name: checks.choice(args[name], name, allowed)
               for name, allowed in (("language", LANGUAGES), ("precision", PRECISIONS), ("output_format", FORMATS))}
    sampling = Sampling(**{name: slider.read(args[name], name) for name, slider in checks.SLIDERS.items()})
    seed = None if checks.flag(args["random_seed"], "random_seed") else checks.seed(args["seed"])
    sections = checks.number(args["sections"], "sections", 1, limits.max_sections, whole=True)
    return Shared(choices["language"], choices["precision"], choices["output_format"], sections, sampling, seed)


def duration_s(path: str) -> float:
    import soundfile

    return soundfile.info(path).duration


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
    check_finite(path)
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
    if checks.choice(continue_from, "continue_from", CONTINUE_FROM) == "end":
        return codes
    if continue_from == "section":
        keep = checks.number(keep_sections, "sections to keep (keep_sections)", whole=True)
        if keep < 1:
            raise ValueError("Keep at least 1 section; to start over, use the Lyrics to song tab")
        return codes.keep_sections(keep)
    cut = checks.number(cut_seconds, "cut time (cut_seconds)")
    length = codes.frames / FRAMES_PER_SECOND
    if not 0 < cut <= length:
        raise ValueError(f"The cut time must be between 0 and {length:.1f} s (the song's length); got {cut:g}")
    return codes.cut(round(cut * FRAMES_PER_SECOND))


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


# -- results: files and words -----------------------------------------------------------------------------------------

def write_song(folder: Path, song: Song, done: int, total: int, fmt: str, settings: dict) -> list[str | None]:
    """Files of the song so far: [mix, vocal, instrumental, bundle]. Names carry 'done of total' so a partial song
    is not mistaken for a finished one."""
    name = f"{done}of{total}"
    bundle = str(song.codes.save(folder / f"song-{name}.npz", {**settings, "sections_done": done}))
    if song.mix.size == 0:  # a token-only pipeline (no codec): codes, no audio
        return [None, None, None, bundle]
    tracks = (("mix", song.mix), ("vocal", song.vocal), ("instrumental", song.instrumental))
    audio = [write_audio(folder / f"{kind}-{name}.{fmt}", samples, song.sample_rate) for kind, samples in tracks]
    return [str(path) for path in audio] + [bundle]


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


@dataclass(frozen=True)
class Update:
    """What a run shows next: always a text; the seed once it is known; the files when a section is done."""

    text: str
    seed: int | None = None
    files: list[str | None] | None = None  # [mix, vocal, instrumental, bundle]; the bundle is the song to continue


Job = tuple[ModelChoice, Callable[[], SongRequest]]  # the models, and the request (built once they are loaded)


class Service:
    """The app's behaviour without its widgets: each job checks its inputs and says how to build its `SongRequest`;
    `run` streams the song as `Update`s, one GPU call per section. `run_section` and `encode_tracks` are the GPU
    work: app.py wraps them in `spaces.GPU` and passes the wrapped ones back (`run(..., run_section)`, `encode`)."""

    def __init__(self, get_pipeline: Callable[[ModelChoice], Pipeline], store: OutputStore, limits: Limits):
        self.get_pipeline, self.store, self.limits = get_pipeline, store, limits
        self.stops = Stops()

    def run_section(self, choice: ModelChoice, request: SongRequest, stop_file: str) -> Iterator:
        yield from section_events(self.get_pipeline(choice), request, stop_file)

    def encode_tracks(self, choice: ModelChoice, paths: list[str]) -> list:
        pipeline = self.get_pipeline(choice)
        if pipeline.models.codec is None:
            raise ValueError("This app runs without the audio codec (token-only models): it cannot read reference "
                             "or stem audio")
        return [pipeline.encode(path) for path in paths]

    def precheck(self, genres, lyrics, shared: Shared, sections: int | None) -> None:
        """What can be checked before any model is loaded or any audio encoded: text, sampling, seed, sections."""
        check_request(SongRequest(genres, lyrics, sections, shared.sampling, shared.seed), self.limits)

    def lyrics_job(self, genres: str, lyrics: str, shared: Shared) -> Job:
        self.precheck(genres, lyrics, shared, shared.sections)
        build = lambda: SongRequest(genres, lyrics, shared.sections, shared.sampling, shared.seed)
        return ModelChoice(shared.language, "cot", shared.precision), build

    def style_job(self, mix: str | None, vocal: str | None, instrumental: str | None, start_s, end_s, genres: str,
                  lyrics: str, shared: Shared, encode: Callable) -> Job:
        window = dict(start_s=checks.number(start_s, "window start (start_s)", 0),
                      end_s=checks.number(end_s, "window end (end_s)", 0))
        if window["end_s"] <= window["start_s"]:
            raise ValueError("The reference window must end after it starts (about 30 s is recommended)")
        mix = check_upload(mix, "reference track", self.limits)
        pair = [check_upload(vocal, "reference vocal", self.limits),
                check_upload(instrumental, "reference instrumental", self.limits)]
        if mix and any(pair):
            raise ValueError("Give either one mixed reference track or a vocal + instrumental pair, not both")
        if not mix and not all(pair):
            raise ValueError("Upload a reference: one mixed track, or both a vocal and an instrumental track")
        if not mix:
            checks.same_length(("reference vocal", duration_s(pair[0])), ("reference instrumental", duration_s(pair[1])))
        self.precheck(genres, lyrics, shared, shared.sections)
        choice = ModelChoice(shared.language, "icl", shared.precision)

        def build() -> SongRequest:  # after the models are loaded: encoding runs on the GPU
            if mix:
                reference = Reference(codes=encode(choice, [mix])[0], **window)
            else:
                vocal_codes, instrumental_codes = encode(choice, pair)
                reference = Reference(vocal_codes=vocal_codes, instrumental_codes=instrumental_codes, **window)
            return SongRequest(genres, lyrics, shared.sections, shared.sampling, shared.seed, reference)

        return choice, build

    def continue_job(self, bundle: str | None, vocal: str | None, instrumental: str | None, continue_from: str,
                     keep_sections, cut_seconds, genres: str, lyrics: str, last_song: str | None, shared: Shared,
                     encode: Callable) -> Job:
        if shared.sections < 1:
            raise ValueError("Generate at least 1 new section")
        checks.choice(continue_from, "continue_from", CONTINUE_FROM)
        source, stems = bundle or last_song, None
        if not bundle and (vocal or instrumental):
            source = None
            stems = [check_upload(vocal, "vocal stem", self.limits),
                     check_upload(instrumental, "instrumental stem", self.limits)]
            if not all(stems):
                raise ValueError("Upload both stems (vocal and instrumental) to continue from stems")
            checks.same_length(("vocal stem", duration_s(stems[0])), ("instrumental stem", duration_s(stems[1])))
        elif not source:
            raise ValueError("Nothing to continue: upload a song bundle (.npz) saved by this app, or a vocal and an "
                             "instrumental stem, or make a song first")
        # The model that made the song continues it exactly; uploaded stems get the lyrics-only model.
        self.precheck(genres, lyrics, shared, None)
        codes, settings = load_bundle(source) if source else (None, {})
        choice = ModelChoice(shared.language, settings.get("mode", "cot"), shared.precision)

        def build() -> SongRequest:  # after the models are loaded: stems are encoded on the GPU
            song = codes if codes is not None else stems_codes(*encode(choice, stems))
            previous = choose_start(song, continue_from, keep_sections, cut_seconds)
            kept = len(previous.stage1.section_frames)
            # The new sections are those the lyrics list after the kept ones, at most `shared.sections`; when
            # there are none, the pipeline's check says what to write.
            found = len(split_lyrics(lyrics or ""))
            total = min(kept + shared.sections, found) if found > kept else None
            return SongRequest(genres, lyrics, total, shared.sampling, shared.seed, previous=previous)

        return choice, build

    def run(self, job: Job, fmt: str, session: str, run_section: Callable[..., Iterator]) -> Iterator[Update]:
        """Load, check, then one `run_section` call per new section; after each, write the files and yield them."""
        choice, build = job
        folder = self.store.new_folder()
        flag = self.stops.start(session, folder)
        try:
            yield Update("Loading the models…")
            pipeline = self.get_pipeline(choice)  # in this process: ZeroGPU workers fork from it
            request = build()
            sections, _ = pipeline.check(request)
            request = request.with_seed(request.seed if request.seed is not None else secrets.randbelow(2**31))
            total = request.segments or len(sections)
            kept = 0 if request.previous is None else len(request.previous.stage1.section_frames)
            settings = {**request.settings(), "segments": total, "language": choice.language, "mode": choice.mode,
                        "precision": choice.precision}
            song, files, timings, started, stopped = None, None, {}, time.perf_counter(), False
            for index in range(kept, total):
                step = replace(request, previous=song.codes if song else request.previous, segments=index + 1)
                for event in run_section(choice, step, str(flag)):
                    if isinstance(event, Progress):
                        text = (f"{replace(event, sections=total).describe()}\n{index - kept} of {total - kept} "
                                f"new sections done, {time.perf_counter() - started:.0f} s so far")
                        yield Update(text, request.seed)
                    elif isinstance(event, Song):
                        song = event
                        for key, value in song.timings.items():
                            timings[key] = timings.get(key, 0.0) + value
                        files = write_song(folder, song, index + 1, total, fmt, settings)
                        yield Update(f"Section {index + 1} of {total} done.", request.seed, files)
                    else:
                        stopped = True
                if stopped or flag.exists():
                    stopped = True
                    break
            done = len(song.codes.stage1.section_frames) if song else kept
            yield Update(summary(song, done, total, time.perf_counter() - started, timings, stopped), request.seed, files)
        finally:
            self.stops.finish(session, flag)
