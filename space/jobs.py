"""What each endpoint of the Space asks for, checked: raw endpoint values -> a `Job` (the models it needs and how to
build its `SongRequest`), or a ValueError that names the field and says what to change. Nothing here loads a model
or imports gradio; `yue.serving.Service` runs the jobs.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from yue import checks
from yue.audio import check_audio, check_float_samples
from yue.config import Limits, Sampling
from yue.request import check_reference_window, check_request
from yue.text.prompt import FRAMES_PER_SECOND, LyricsError, parse_lyrics, split_lyrics
from yue.song import Reference, SongCodes, SongRequest
from yue.lm.stage1 import Stage1Tokens
from yue.weights import registry

LANGUAGES = ("en", "zh", "jp-kr")
# The shared list (fp32 left out: a GPU Space runs bf16 or less); "auto" is bf16 on ZeroGPU's card.
PRECISIONS = ("auto",) + tuple(p for p in registry.PRECISIONS if p != "fp32")
FORMATS = ("wav", "flac", "mp3")
CONTINUE_FROM = ("end", "section", "time")
MAX_UPLOAD_MB = 50  # a 10-minute wav at 44.1 kHz/16-bit mono is ~50 MB
# Bundles read at once. The page's upload helpers skip the queue (so they work while it is full), which also
# skips Gradio's concurrency limits: this is their limit. One read is bounded (yue.arrays: its directory before it
# is parsed, each member at its declared size; docs/bad-inputs.md): the largest bundle the app writes takes 0.12 s
# and 19 MB, so four at once hold at most 4 x 64 MB and a fifth upload waits for one short read, never a slow one.
BUNDLE_READS_AT_ONCE = 4
BUNDLE_READS = threading.BoundedSemaphore(BUNDLE_READS_AT_ONCE)


@dataclass(frozen=True)
class ModelChoice:
    """Which checkpoints a request needs: they are loaded once and kept while requests ask for the same."""

    language: str = "en"  # en | zh | jp-kr
    mode: str = "cot"  # cot (lyrics only) | icl (with an audio reference)
    precision: str = "auto"


@dataclass(frozen=True)
class Job:
    """The models a run needs, how to build its request once they are loaded (encoding uploads needs them), and
    what a continuation continues (the source bundle's take and seed, written into the new bundles)."""

    choice: ModelChoice
    build: Callable[[], SongRequest]
    source: dict = field(default_factory=dict)
    listen: bool = True  # every take's audio is heard while a section is made (costs GPU time: space/gpu_time.py)


@dataclass(frozen=True)
class Shared:
    """The settings every endpoint shares, checked."""

    language: str
    precision: str
    output_format: str
    sections: int
    sampling: Sampling
    seed: int | None  # None: draw a random one
    takes: int = 1  # versions made at once; take t has seed + t - 1
    listen: bool = True  # hear every take's audio while each section is made (more GPU time: space/gpu_time.py)


def shared_settings(args: dict, limits: Limits = Limits()) -> Shared:
    """The shared settings from an endpoint's arguments (by parameter name), each checked with a message naming it."""
    choices = {name: checks.choice(args[name], name, allowed)
               for name, allowed in (("language", LANGUAGES), ("precision", PRECISIONS), ("output_format", FORMATS))}
    sampling = Sampling(**{name: slider.read(args[name], name) for name, slider in checks.SLIDERS.items()})
    if sampling.min_new_tokens > sampling.max_new_tokens:  # named as the page names them (Sampling.check: flags)
        low, high = checks.SLIDERS["min_new_tokens"].label, checks.SLIDERS["max_new_tokens"].label
        raise ValueError(f"{low} (min_new_tokens) must be at most {high} (max_new_tokens); got "
                         f"{sampling.min_new_tokens} > {sampling.max_new_tokens}")
    seed = None if checks.flag(args["random_seed"], "random_seed") else checks.seed(args["seed"])
    sections = checks.number(args["sections"], "sections", 1, limits.max_sections, whole=True)
    takes = checks.number(args.get("takes", 1), "takes", 1, limits.max_takes, whole=True)  # absent: one take
    listen = checks.flag(args.get("listen", True), "listen")  # absent: on, as on the page
    return Shared(choices["language"], choices["precision"], choices["output_format"], sections, sampling, seed, takes,
                  listen)


def duration_s(path: str) -> float:
    import soundfile

    return soundfile.info(path).duration


def check_upload(path: str | None, what: str, limits: Limits) -> str | None:
    """Refuse an upload that is too big or too long before any GPU time is spent on it."""
    if not path:
        return None
    import soundfile

    if not os.path.isfile(path):
        raise ValueError(f"The {what} is no longer on the server (uploaded files are deleted after a while): "
                         "upload it again (the built-in example: click it again).")
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
    try:  # too short to encode, or too many samples to decode (small on disk, huge decoded)
        check_audio(path, limits.max_reference_seconds)
    except ValueError as error:
        raise ValueError(f"The {what}: {error}") from None
    check_float_samples(path)
    return path


def load_bundle(path: str) -> tuple[SongCodes, dict]:
    if not os.path.isfile(path):
        raise ValueError(f"The song bundle {Path(path).name} is no longer on the server (files are deleted after a "
                         "while): upload the .npz again.")
    try:
        with BUNDLE_READS:
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
    frame = 1 / FRAMES_PER_SECOND  # a cut keeping no frame would quietly start a new song (as keeping 0 sections)
    if not frame <= cut <= length:
        raise ValueError(f"The cut time (cut_seconds) must be between {frame:g} s (one frame) and {length:.1f} s (the "
                         f"song's length); got {cut:g}. To start over, use the Lyrics to song tab.")
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


class Jobs:
    """The endpoints' jobs: each checks what it can before any model is loaded or any audio encoded. `encode(choice,
    paths)` turns uploads into codes once the models are loaded (a GPU call on ZeroGPU)."""

    def __init__(self, limits: Limits):
        self.limits = limits

    def precheck(self, genres, lyrics, shared: Shared, sections: int | None) -> None:
        """What can be checked before any model is loaded or any audio encoded: text, sampling, seed, sections."""
        self.check_sections(lyrics, sections)
        check_request(SongRequest(genres, lyrics, sections, shared.sampling, shared.seed, takes=shared.takes),
                      self.limits)

    def check_sections(self, lyrics, sections: int | None) -> None:
        """More sections asked for than the lyrics hold, said with the page's words (*Sections to generate*, not the
        pipeline's `segments`) and with the lines the official rule drops (a [pre-chorus] is no section)."""
        if sections is None or not isinstance(lyrics, str):  # not text: the request check refuses it by name
            return
        try:
            parsed = parse_lyrics(lyrics, self.limits)
        except LyricsError:  # the request check says what is wrong with the lyrics themselves
            return
        if sections > len(parsed.sections):
            found = len(parsed.sections)
            dropped = "".join(f" {warning}" for warning in parsed.warnings if " dropped: " in warning)
            raise ValueError(f"Sections to generate (sections) is {sections} but the lyrics have only {found} "
                             f"section{'s' if found != 1 else ''}: set it to {found} or add sections.{dropped}")

    def lyrics_job(self, genres: str, lyrics: str, shared: Shared) -> Job:
        self.precheck(genres, lyrics, shared, shared.sections)
        build = lambda: SongRequest(genres, lyrics, shared.sections, shared.sampling, shared.seed, takes=shared.takes)
        return Job(ModelChoice(shared.language, "cot", shared.precision), build, listen=shared.listen)

    def style_job(self, mix: str | None, vocal: str | None, instrumental: str | None, start_s, end_s, genres: str,
                  lyrics: str, shared: Shared, encode: Callable) -> Job:
        longest = self.limits.max_reference_seconds
        window = dict(start_s=checks.number(start_s, "window start (start_s)", 0, longest),
                      end_s=checks.number(end_s, "window end (end_s)", 0, longest))
        if window["end_s"] <= window["start_s"]:
            raise ValueError("The reference window must end after it starts (about 30 s is recommended)")
        mix = check_upload(mix, "reference track", self.limits)
        pair = [check_upload(vocal, "reference vocal", self.limits),
                check_upload(instrumental, "reference instrumental", self.limits)]
        length = min(duration_s(path) for path in ([mix] if mix else pair) if path) if mix or any(pair) else None
        if length is not None and window["start_s"] >= length:
            raise ValueError(f"The window start (start_s) must be below the reference's length ({length:.1f} s); "
                             f"got {window['start_s']:g}")
        if mix and any(pair):
            raise ValueError("Give either one mixed reference track or a vocal + instrumental pair, not both")
        if not mix and not all(pair):
            raise ValueError("Upload a reference: one mixed track, or both a vocal and an instrumental track")
        if not mix:
            checks.same_length(("reference vocal", duration_s(pair[0])), ("reference instrumental", duration_s(pair[1])))
        # a window too long for any prompt is refused before it is encoded (599 s took 8.7 s to encode first)
        check_reference_window(min(window["end_s"], length) - window["start_s"], 1 if mix else 2, shared.sampling)
        self.precheck(genres, lyrics, shared, shared.sections)
        choice = ModelChoice(shared.language, "icl", shared.precision)

        def build() -> SongRequest:  # after the models are loaded: encoding runs on the GPU
            if mix:
                reference = Reference(codes=encode(choice, [mix])[0], **window)
            else:
                vocal_codes, instrumental_codes = encode(choice, pair)
                reference = Reference(vocal_codes=vocal_codes, instrumental_codes=instrumental_codes, **window)
            return SongRequest(genres, lyrics, shared.sections, shared.sampling, shared.seed, reference,
                               takes=shared.takes)

        return Job(choice, build, listen=shared.listen)

    def continue_job(self, bundle: str | None, vocal: str | None, instrumental: str | None, continue_from: str,
                     keep_sections, cut_seconds, genres: str, lyrics: str, last_song: str | None, shared: Shared,
                     encode: Callable) -> Job:
        if shared.sections < 1:
            raise ValueError("Generate at least 1 new section")
        checks.choice(continue_from, "continue_from", CONTINUE_FROM)
        if bundle and (vocal or instrumental):  # as style transfer refuses a mix with stems: nothing is ignored
            raise ValueError("Give either a song bundle (.npz) or a vocal and an instrumental stem to continue, not "
                             "both: remove the one you do not mean")
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
            return SongRequest(genres, lyrics, total, shared.sampling, shared.seed, previous=previous,
                               takes=shared.takes)

        made_by = {key: settings[key] for key in ("take", "seed") if key in settings} if source else {"stems": True}
        return Job(choice, build, made_by, shared.listen)

    def keep_job(self, made: list[dict] | None, take, shared: Shared, encode: Callable) -> Job:
        """Keep a take and go on: every take continues from take `take` (1-based) of the last run (`made`: its
        takes' files) with the next section of that song's lyrics, with `shared` (its seed, its number of takes)."""
        if not made:
            raise ValueError("Make a song with 2 or more takes first, then keep the take you like best")
        take = checks.number(take, "take", 1, len(made), whole=True)
        bundle = made[take - 1]["bundle"]
        codes, settings = load_bundle(bundle)
        lyrics, genres = settings.get("lyrics") or "", settings.get("genres") or ""
        sections = len(codes.stage1.section_frames)
        if len(split_lyrics(lyrics)) <= sections:
            raise ValueError(f"Take {take} already has every section of its lyrics ({sections}). To add more, upload "
                             f"its bundle ({Path(bundle).name}) in the Continue a song tab and write the new sections.")
        job = self.continue_job(bundle, None, None, "end", 1, 0, genres, lyrics, None, replace(shared, sections=1),
                                encode)
        return replace(job, source={**job.source, "kept": take})  # the take kept: the page and summary name it
