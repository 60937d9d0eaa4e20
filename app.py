"""The YuE Space: a web app (and API) over the pipeline. Widgets become a `SongRequest`, a `Song` becomes players.

    python app.py                 # the official checkpoints (GPU)
    python app.py --tiny auto     # offline, tiny random weights: the whole app works, the output is noise

No generation logic lives here, and no serving logic either: `yue.serving` keeps the model cache, one GPU call per
section for every take (ZeroGPU allows a few minutes per call), per-request output folders and a stop flag;
`yue.jobs` checks the inputs, `yue.results` writes the files. This file is the Gradio layer: the layout, the
endpoints' signatures, `spaces.GPU`, errors as gr.Error, and start-up.
"""
import argparse
import functools
import importlib.util
import logging
import os
import runpy
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import gradio as gr

from yue import tags
from yue.checks import SLIDERS
from yue.config import Limits, Sampling
from yue.loading import ModelCache
from yue.pipeline import Pipeline
from yue.prompt import FRAMES_PER_SECOND, LyricsError, parse_lyrics
from yue.jobs import (FORMATS, LANGUAGES, MAX_UPLOAD_MB, PRECISIONS, Job, ModelChoice, choose_start, load_bundle,
                      prefill_lyrics, shared_settings)
from yue.results import Update, listing
from yue.serving import (MAX_QUEUE, OUTPUT_MAX_AGE_HOURS, OutputStore, Service, encode_gpu_seconds, load_examples,
                         pipelines, section_gpu_seconds, tiny_folder)
# Names app.py had before the serving split, still importable from it (tests and notebooks use them):
from yue.serving import GPU_MAX_SECONDS, STOPPED, codec_available, section_events  # noqa: F401

log = logging.getLogger("yue.app")

APP_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = APP_DIR / "examples"
TINY_BANNER = "Tiny offline mode: random weights, the output is noise"
OFFICIAL = Sampling()  # the endpoints' Python defaults (the UI shows its own, tiny ones in tiny mode)

CSS = """
#tiny-banner {background: #fff3cd; border: 2px solid #e0a800; border-radius: 8px; padding: 0.5em 1em;}
#tiny-banner p {color: #5c4400; font-size: 1.1em; font-weight: 600; margin: 0;}
.status-ok {color: #1b7f3b;} .status-error {color: #b00020;}
"""


# -- the three endpoints ---------------------------------------------------------------------------------------------

def gpu(duration: Callable[..., int]):
    """`spaces.GPU(duration=...)` when the package is installed (a no-op off ZeroGPU), else nothing at all."""
    try:
        import spaces
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


# One line per argument and per returned value: Gradio's API page and its MCP tool schemas read the docstring
# line by line (a continued line is lost).
SETTINGS_DOC = """language: the lyrics' language: "en", "zh" (Mandarin, Cantonese) or "jp-kr" (Japanese, Korean).
            sections: how many lyric sections to generate, from the first (continuing: new sections after the kept).
            max_new_tokens: stage-1 token budget per section; 100 tokens are 1 s of audio (official: 3000 = 30 s).
            min_new_tokens: a section may not end before this many tokens (official: 100).
            guidance_first: classifier-free guidance scale of the first section (official 1.5; 1.0 = off).
            guidance_later: guidance scale of every later section (official 1.2).
            top_p: nucleus sampling mass (official 0.93).
            temperature: sampling temperature (official 1.0).
            repetition_penalty: penalty on audio tokens already used (official 1.1).
            seed: a whole number from 0 to 2**53 - 1, used as given unless random_seed is true (the seed is returned).
            random_seed: true to draw a fresh seed for this run.
            precision: model weights: "auto" (bf16 on a GPU), "bf16", "int8" or "nf4" (less memory, lower quality).
            output_format: audio file format: "wav", "flac" or "mp3".
            takes: how many versions to make at once in one batch (1 to 4); take t has seed + t - 1; /takes lists them.

        Returns:
            mix: the song, vocals and accompaniment together (44.1 kHz audio file).
            vocal: the vocal stem (audio file).
            instrumental: the instrumental stem (audio file).
            bundle: the song's code bundle (.npz); give it to continue_song to continue this song exactly.
            summary: what was made (sections, seconds, seed) and warnings about lines of the lyrics that were dropped.
            seed: the seed used.
        The song streams in: an update after every section (the summary shows the progress). With takes > 1 the
        outputs are take 1's; every take's files come from the /takes endpoint, after (or during) the run."""


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
        yield skip, skip, skip, skip, f"✗ {message}", skip  # stays beside the outputs after the toast is gone
        raise gr.Error(message, print_exception=False)

    guarded.__doc__ = fn.__doc__.replace("{settings}", SETTINGS_DOC)
    return guarded


class Studio:
    """The endpoints: each translates its inputs into a job of `yue.serving.Service` and streams the song back as
    output values. `spaces.GPU` is applied here, the only place that knows about ZeroGPU."""

    def __init__(self, get_pipeline: Callable[[ModelChoice], Pipeline], store: OutputStore, limits: Limits):
        self.service = Service(get_pipeline, store, limits)
        self.made: dict[str, list] = {}  # session -> every take's files of its latest run
        # Wrapped here, not at import: ZeroGPU needs them wrapped before launch, and nothing may run at import.
        self.run_section = gpu(section_gpu_seconds)(self.service.run_section)
        self.encode_tracks = gpu(encode_gpu_seconds)(self.service.encode_tracks)

    @endpoint
    def lyrics_to_song(self, genres: str = "", lyrics: str = "",
                       language: str = "en", sections: int = 2, max_new_tokens: int = OFFICIAL.max_new_tokens,
                       min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                       guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                       temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                       seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                       takes: int = 1, request: gr.Request = None):
        """Make a song (sung vocals and accompaniment, several minutes long if asked) from genre tags and lyrics.
        Each lyric section becomes about max_new_tokens / 100 seconds of music (30 s by default).

        Args:
            genres: style tags (genre, instruments, mood, vocal gender, timbre), e.g. "pop piano uplifting female".
            lyrics: sections, each a tag line ([verse], [chorus], [bridge] …) and its lines; blank lines between.
            {settings}
        """
        shared = shared_settings(locals(), self.service.limits)
        yield from self._run(self.service.lyrics_job(genres, lyrics, shared), output_format, request)

    @endpoint
    def style_transfer(self, reference_mix: str | None = None, reference_vocal: str | None = None,
                       reference_instrumental: str | None = None, start_s: float = 0.0, end_s: float = 30.0,
                       genres: str = "", lyrics: str = "",
                       language: str = "en", sections: int = 2, max_new_tokens: int = OFFICIAL.max_new_tokens,
                       min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                       guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                       temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                       seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                       takes: int = 1, request: gr.Request = None):
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
        shared = shared_settings(locals(), self.service.limits)
        job = self.service.style_job(reference_mix, reference_vocal, reference_instrumental, start_s, end_s, genres,
                                     lyrics, shared, self.encode_tracks)
        yield from self._run(job, output_format, request)

    @endpoint
    def continue_song(self, bundle: str | None = None, vocal_stem: str | None = None,
                      instrumental_stem: str | None = None, continue_from: str = "end", keep_sections: int = 1,
                      cut_seconds: float = 0.0, genres: str = "", lyrics: str = "",
                      language: str = "en", sections: int = 2, max_new_tokens: int = OFFICIAL.max_new_tokens,
                      min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                      guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                      temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                      seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                      takes: int = 1, last_song: str | None = None, request: gr.Request = None):
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
        shared = shared_settings(locals(), self.service.limits)
        job = self.service.continue_job(bundle, vocal_stem, instrumental_stem, continue_from, keep_sections,
                                        cut_seconds, genres, lyrics, last_song, shared, self.encode_tracks)
        yield from self._run(job, output_format, request)

    @endpoint
    def keep_take(self, made: list | None = None, take: int = 1,
                  language: str = "en", sections: int = 1, max_new_tokens: int = OFFICIAL.max_new_tokens,
                  min_new_tokens: int = OFFICIAL.min_new_tokens, guidance_first: float = OFFICIAL.guidance_first,
                  guidance_later: float = OFFICIAL.guidance_later, top_p: float = OFFICIAL.top_p,
                  temperature: float = OFFICIAL.temperature, repetition_penalty: float = OFFICIAL.repetition_penalty,
                  seed: int = 42, random_seed: bool = False, precision: str = "auto", output_format: str = "wav",
                  takes: int = 1, request: gr.Request = None):
        """Keep one take of this session's last run and go on: every take continues from that take's song with the
        next section of its lyrics (a continuation of the take's bundle; the page's buttons, not an API endpoint).

        Args:
            made: the files of every take of the last run (the session's state).
            take: which take to keep (1-based).
            {settings}
        """
        shared = shared_settings(locals(), self.service.limits)
        yield from self._run(self.service.keep_job(made, take, shared, self.encode_tracks), output_format, request)

    def takes(self, request: gr.Request = None) -> tuple[list[str], list[dict]]:
        """Every take of this client's latest run (or the one running): the files of each (mix, vocal, instrumental
        and bundle, named take<t>-…; only the bundle without audio) and a table of each take's number, seed and
        file names."""
        return listing(self.session_takes(request))

    def session_takes(self, request: gr.Request = None) -> list | None:
        """Every take's files (TakeFiles.as_dict() each) of this session's latest run, as recorded by `_run`."""
        return self.made.get(_session(request))

    def stop(self, request: gr.Request = None) -> None:
        """Stop the current run of this session after the current token; what is done is kept."""
        if self.service.stops.stop(_session(request)):
            gr.Info("Stopping: the sections already made are kept.")

    def _run(self, job: Job, fmt: str, http) -> Iterator:
        """The service's updates of this session's run, as output values."""
        session = _session(http)
        for update in self.service.run(job, fmt, session, self.run_section):
            if update.takes is not None:  # kept here, not sent as an output: MCP tools fail on a State output
                self.made[session] = [take.as_dict() for take in update.takes]
            yield outputs(update)


def outputs(update: Update) -> tuple:
    """(mix, vocal, instrumental, bundle, progress, seed): gr.skip() for what the update leaves as is."""
    skip = gr.skip()
    files = [skip] * 4 if update.files is None else update.files
    return *files, update.text, skip if update.seed is None else update.seed


def _session(http) -> str:
    """The session a request belongs to (API clients have one too); without one, a stop cannot reach the run."""
    return getattr(http, "session_hash", None) or f"anonymous-{secrets.token_hex(8)}"


# -- small UI helpers (not API endpoints) --------------------------------------------------------------------------

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


# -- layout ------------------------------------------------------------------------------------------------------------

# Small UI helpers skip the queue, like Stop: a queue full of runs must not freeze the page or the Stop button.
LIGHT = dict(show_progress="hidden", queue=False, api_visibility="private", trigger_mode="always_last")
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


def raw(component: gr.components.Component) -> gr.components.Component:
    """`component`, handing API values to the endpoint as sent: the endpoint's checks (yue.checks) then name the
    field and its range for None, text, NaN or an out-of-range number, where Gradio's preprocessing raises an
    anonymous TypeError or a message without the field. (Set on the instance: a subclass would make Gradio write
    a .pyi file beside this one.)"""
    component.preprocess = lambda payload: payload
    return component


def settings_components(defaults: Sampling, limits: Limits) -> list:
    """The settings every endpoint shares, in the endpoints' parameter order (created unrendered: the examples of
    the first tab refer to the language before the panel is placed under the tabs)."""
    hidden = dict(render=False)
    slider = lambda name, **kw: raw(gr.Slider(SLIDERS[name].lo, SLIDERS[name].hi, value=getattr(defaults, name),
                                              step=SLIDERS[name].step, label=SLIDERS[name].label, **kw, **hidden))
    return [
        raw(gr.Radio(list(LANGUAGES), value="en", label="Language checkpoint", **hidden)),
        raw(gr.Slider(1, limits.max_sections, value=2, step=1, label="Sections to generate",
                      info="continuing: at most this many new ones", elem_id="sections-setting", **hidden)),
        slider("max_new_tokens", info="100 tokens = 1 s of audio"), slider("min_new_tokens"),
        slider("guidance_first"), slider("guidance_later"), slider("top_p"), slider("temperature"),
        slider("repetition_penalty"),
        raw(gr.Number(42, label="Seed", info="0 to 2**53 - 1", **hidden)),
        gr.Checkbox(False, label="Random seed", **hidden),
        raw(gr.Radio(list(PRECISIONS), value="auto", label="Precision", info="int8/nf4 need less GPU memory",
                     **hidden)),
        raw(gr.Radio(list(FORMATS), value="wav", label="Output format", **hidden)),
        raw(gr.Slider(1, limits.max_takes, value=1, step=1, label="Takes", elem_id="takes-setting",
                      info="versions made at once; take t has seed + t - 1", **hidden)),
    ]


def place_settings(settings: list) -> None:
    (language, sections, max_new, min_new, g_first, g_later, top_p, temp, rep, seed, random_seed, precision, fmt,
     takes) = settings
    for row in ((language, sections, takes), (seed, random_seed)):
        with gr.Row():
            for component in row:
                component.render()
    with gr.Accordion("Sampling, precision and format", open=False):
        for row in ((max_new, min_new, g_first, g_later), (top_p, temp, rep), (precision, fmt)):
            with gr.Row():
                for component in row:
                    component.render()


def take_rows(count: int) -> tuple[gr.Column, list[tuple]]:
    """A player row per take (shown for runs of 2 or more takes): its mix, its bundle and its keep button."""
    rows = []
    with gr.Column(visible=False, elem_id="takes") as box:
        gr.Markdown("**Takes**: the same song with the next seeds. Keep the take you like best: every take then goes "
                    "on from it with the next section (the best of each section, one section at a time).")
        for take in range(1, count + 1):
            with gr.Column(visible=False, variant="panel") as row:
                player = gr.Audio(label=f"Take {take}", type="filepath", interactive=False, buttons=["download"],
                                  elem_id=f"take-{take}")
                bundle = gr.File(label=f"Take {take}: code bundle", interactive=False)
                keep = gr.Button(f"Keep take {take} and go on →", elem_id=f"keep-{take}", size="sm")
            rows.append((row, player, bundle, keep))
    return box, rows


def show_takes(made: list | None, count: int) -> list:
    """The take rows for the last run's takes: the box when there are several, then (row, player, bundle) of each
    of the `count` rows."""
    made = made or []
    updates = [gr.Column(visible=len(made) > 1)]
    for take in made[:count]:
        updates += [gr.Column(visible=True), gr.Audio(take["mix"], label=f"Take {take['take']} · seed {take['seed']}"),
                    gr.File(take["bundle"])]
    for _ in range(len(made), count):
        updates += [gr.Column(visible=False), gr.skip(), gr.skip()]
    return updates


def build_demo(get_pipeline: Callable[[ModelChoice], Pipeline], *, output_root: Path | None = None,
               limits: Limits = Limits(), tiny: bool = False, defaults: Sampling | None = None,
               max_queue: int = MAX_QUEUE) -> gr.Blocks:
    """The whole app over `get_pipeline(choice) -> Pipeline` (the model cache); at most `max_queue` runs wait, the
    next one is told the queue is full and to try again."""
    store = OutputStore(output_root or Path(tempfile.gettempdir()) / "yue-space")
    studio = Studio(get_pipeline, store, limits)
    defaults = defaults or (Sampling(max_new_tokens=300, min_new_tokens=50) if tiny else Sampling())
    examples = load_examples(EXAMPLES_DIR)
    first = examples[0][1] if examples else ["pop piano uplifting female bright vocal", "[verse]\n…\n", "en"]
    reference = runpy.run_path(str(EXAMPLES_DIR / "make_reference.py"))["write_reference"](
        (store.root / "reference-example.wav"))
    settings = settings_components(defaults, limits)

    with gr.Blocks(title="YuE: lyrics to song", delete_cache=(3600, int(OUTPUT_MAX_AGE_HOURS * 3600))) as demo:
        if tiny:
            gr.Markdown(f"⚠ {TINY_BANNER}", elem_id="tiny-banner")
        gr.Markdown(INTRO)
        last_song = gr.State(None)  # the code bundle (path) of this page's last song, for continuing it
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
                            s_start = raw(gr.Number(0, label="Window start (s)", minimum=0))
                            s_end = raw(gr.Number(30, label="Window end (s)", minimum=0))
                        s_genres, s_lyrics = genre_box(first[0], "style"), lyrics_box(first[1], limits, "style-lyrics")
                        s_go = gr.Button("Generate in this style", variant="primary")
                        gr.Examples([[reference, 0, 10, first[0], first[1]]],
                                    [s_mix, s_start, s_end, s_genres, s_lyrics], label="Example reference (our synth)")
                    with gr.Tab("Continue a song", id="continue"):
                        # .zip too: an .npz is a zip archive, and Gradio names a file sent as a data: URI (MCP
                        # clients) after its MIME type, application/zip (the bundle's content is checked on load)
                        c_bundle = gr.File(label="Song bundle (.npz) from this app", file_types=[".npz", ".zip"])
                        with gr.Accordion("…or a vocal + instrumental pair to continue", open=False):
                            with gr.Row():
                                c_vocal = gr.Audio(type="filepath", sources=["upload"], label="Vocal stem")
                                c_inst = gr.Audio(type="filepath", sources=["upload"], label="Instrumental stem")
                        with gr.Row():
                            c_from = raw(gr.Radio([("the end", "end"), ("after section N (regenerate the rest)",
                                                                    "section"), ("a time", "time")],
                                                  value="end", label="Continue from"))
                            c_keep = raw(gr.Number(1, label="N: sections to keep", precision=0, minimum=1))
                            c_cut = raw(gr.Number(0, label="Cut time (s)", minimum=0))
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
                takes_box, rows = take_rows(limits.max_takes)

        made = gr.State(None)  # every take's files of this session's last run (TakeFiles.as_dict() each)
        # No gr.State among the endpoints' outputs: Gradio 6.31's MCP tool calls fail on one ("pop index out of
        # range"). The page keeps its last song from the bundle it shows; API and MCP callers pass the bundle back.
        outputs = [mix, vocal, instrumental, bundle, progress, seed_used]
        run = dict(outputs=outputs, concurrency_id="gpu", show_progress="minimal")  # one GPU: one run at a time
        l_go.click(studio.lyrics_to_song, [l_genres, l_lyrics, *settings], api_name="lyrics_to_song", **run)
        s_go.click(studio.style_transfer, [s_mix, s_vocal, s_inst, s_start, s_end, s_genres, s_lyrics, *settings],
                   api_name="style_transfer", **run)
        c_go.click(studio.continue_song, [c_bundle, c_vocal, c_inst, c_from, c_keep, c_cut, c_genres, c_lyrics,
                                          *settings, last_song], api_name="continue_song", **run)
        bundle.change(lambda song: song, bundle, last_song, **LIGHT)
        # The takes of the run reach the page from the server's record of this session, not as an endpoint output.
        def session_rows(request: gr.Request):
            made_now = studio.session_takes(request)
            return [made_now, *show_takes(made_now, len(rows))]

        bundle.change(session_rows, None, [made, takes_box, *(part for row in rows for part in row[:3])], **LIGHT)
        for take, (*_, keep) in enumerate(rows, start=1):
            keep.click(studio.keep_take, [made, gr.State(take), *settings], api_visibility="private", **run)
        listed = [gr.File(file_count="multiple", visible=False), gr.JSON(visible=False)]
        # Undocumented like /stop: gradio_client callers have a session; MCP callers would share one.
        gr.Button(visible=False).click(studio.takes, None, listed, api_name="takes", queue=False,
                                       api_visibility="undocumented")
        # Undocumented: gradio_client can call /stop (same session), MCP callers have no session for it to reach.
        stop.click(studio.stop, None, None, api_name="stop", queue=False, show_progress="hidden",
                   api_visibility="undocumented")
        # The plan (and the prefilled lyrics) follow user actions only: a programmatic change of the bundle
        # field must not overwrite lyrics the user is editing.
        plan = dict(fn=continuation_plan, inputs=[c_bundle, c_from, c_keep, c_cut],
                    outputs=[c_genres, c_lyrics, c_plan])
        again.click(lambda song: (song, gr.Tabs(selected="continue")), bundle, [c_bundle, tabs],
                    **LIGHT).then(**plan, **LIGHT)
        for event in (c_bundle.upload, c_bundle.clear, c_from.input, c_keep.input, c_cut.input):
            event(**plan, **LIGHT)
        for audio in (s_mix, s_vocal):
            audio.change(reference_window, audio, [s_start, s_end, s_info], **LIGHT)
    demo.queue(default_concurrency_limit=1, max_size=max_queue)
    return demo


def theme() -> gr.themes.Base:
    """Soft, with system fonts: the default Google fonts are fetched by the browser, which hangs offline."""
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def mcp_server(wanted: bool) -> bool:
    """MCP is on unless switched off; without the extra installed the app still runs, and the log says how to add it."""
    if wanted and importlib.util.find_spec("mcp") is None:
        log.warning('MCP is off: the mcp package is missing; pip install "gradio[mcp]==6.31.*" (requirements.txt) '
                    "serves the endpoints as MCP tools too")
        return False
    return wanted


def launch(demo: gr.Blocks, host: str | None = None, port: int | None = None, share: bool = False,
           mcp: bool = True, **kwargs):
    """Launch with the app's theme, CSS and upload limit (host/port None: Gradio's defaults or its env vars), and the
    endpoints as MCP tools at /gradio_api/mcp/ (streamable HTTP; /gradio_api/mcp/sse for SSE clients)."""
    return demo.launch(server_name=host, server_port=port, share=share, mcp_server=mcp_server(mcp),
                       theme=theme(), css=CSS, max_file_size=f"{MAX_UPLOAD_MB}mb", show_error=True, **kwargs)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="YuE lyrics-to-song web app (a Hugging Face Space)")
    env_tiny = os.environ.get("YUE_TINY", "").lower() in ("1", "true", "yes")
    parser.add_argument("--tiny", metavar="DIR|auto", default="auto" if env_tiny else None,
                        help="tiny random checkpoints (offline; the output is noise); env YUE_TINY=1 = auto")
    parser.add_argument("--host", help="default 127.0.0.1 (or $GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, help="default 7860 (or $GRADIO_SERVER_PORT)")
    parser.add_argument("--share", action="store_true", help="a public gradio.live link (off by default)")
    parser.add_argument("--mcp", action=argparse.BooleanOptionalAction, default=True,
                        help="serve the endpoints as MCP tools too (default; needs gradio[mcp]): --no-mcp switches off")
    parser.add_argument("--outputs", type=Path, help="root of the per-request output folders")
    parser.add_argument("--device", help="cpu, cuda … (default: cuda when present)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    get_pipeline = pipelines(ModelCache(), tiny_folder(args.tiny) if args.tiny else None, args.device)
    demo = build_demo(get_pipeline, output_root=args.outputs, tiny=bool(args.tiny))
    launch(demo, args.host, args.port, args.share, args.mcp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
