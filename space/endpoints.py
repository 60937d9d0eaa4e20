"""How an endpoint's values reach its callers: API callers get its outputs with errors as one clear gr.Error (never
a traceback, never a server path), the page gets the same values with the error in its progress text, the whole
song's progress bar, the run's details and the player of rows heard while a section is made."""
import functools
import logging
import re
from typing import Callable

import gradio as gr

from yue.eta import describe_left
from space.listen_player import listen_value
from space.results import Update, for_page
from space.row_audio import RowHeard
from space.song_progress import SongState

log = logging.getLogger("yue.app")


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
            seed: a whole number 0 to 9007199254740991, used as given unless random_seed is true (the seed is returned).
            random_seed: true to draw a fresh seed for this run.
            precision: model weights: "auto" (bf16 on a GPU), "bf16", "int8", "int4", "nf4" or "bnb-int8"
                (less memory, lower quality; docs/models.md).
            output_format: audio file format: "wav", "flac" or "mp3".
            takes: versions made at once in one batch (1 to 4): take 1 has the seed, take 2 the next …; see /takes.
            listen: true (default) to hear each take's audio while its section is made (/rows): more GPU time.

        Returns:
            mix: the song, vocals and accompaniment together (44.1 kHz audio file)
            vocal: the vocal stem (audio file)
            instrumental: the instrumental stem (audio file)
            bundle: the song's code bundle (.npz); give it to continue_song to continue this song exactly
            summary: what was made (sections, seconds, seed) and dropped lyric lines; while running, the progress
            seed: the seed used
            updates: the song streams in, an update after every section (the summary shows the progress)
            takes: with takes > 1 the outputs are take 1's; /takes gives every take's files, during or after the run"""


def endpoint(fn):
    """An API endpoint: the shared settings go into its docstring (Gradio shows the Args on the API page) and its
    errors reach the caller as one clear gr.Error, never a traceback; the error is also the last progress text.
    Outputs already shown stay. The page's buttons call `on_page(endpoint)`, which shows the error only there."""

    @functools.wraps(fn)  # Gradio reads the wrapped signature (gr.Request injection) and the docstring
    def guarded(*args, **kwargs):
        made = False  # whether any section's files were sent: only then are they "kept"
        shown = ["", None]  # the last progress text and seed sent
        try:
            for values in fn(*args, **kwargs):
                made = made or isinstance(values[3], str)
                shown = [new if new != gr.skip() else old for new, old in zip(values[4:], shown)]
                yield values
            if not made:  # stopped before a section was done: API clients get None for the files, not an update
                yield None, None, None, None, *shown
            return
        except gr.Error as error:
            message = str(error.message)
        except ValueError as error:  # LyricsError included: the message says what to change
            message = without_paths(str(error))
        except Exception as error:
            log.exception("generation failed")
            message = f"Generation failed ({type(error).__name__}: {without_paths(str(error))})."
            if made:
                message += " The sections finished before this are kept in the outputs."
        skip = gr.skip()
        yield skip, skip, skip, skip, f"✗ {message}", skip  # stays beside the outputs after the toast is gone
        raise gr.Error(message, print_exception=False)

    guarded.__doc__ = fn.__doc__.replace("{settings}", SETTINGS_DOC)
    return guarded


def on_page(api_endpoint: Callable, copy_bundle: bool = False) -> Callable:
    """The page's version of an endpoint: an error is the progress text, in one place with its line breaks, and every
    other output keeps what it showed (a raised gr.Error would put an error mark on every output and a toast
    without line breaks). `copy_bundle`: the bundle output is sent once more (the continuation tab's song field, so
    that continuing again goes on from the newest song). Last, the page's whole-song progress bar (`song_bar`),
    which API callers do not get (they read the same share and time left in the progress text), the run's
    technical detail (the page's folded Details), and the player of rows heard while a section is made
    (space/listen_player.py)."""

    @functools.wraps(api_endpoint)
    def shown(*args, **kwargs):
        try:
            for values in api_endpoint(*args, **kwargs):
                song, detail = getattr(values, "song", None), getattr(values, "details", None)
                heard = listen_value(getattr(values, "row", None))
                page = (song_bar(song) if song is not None else gr.skip(), gr.skip() if detail is None else detail)
                if all(value is None for value in values[:4]):  # nothing made: the page keeps what it shows
                    values = (gr.skip(),) * 4 + tuple(values[4:])
                if isinstance(values[4], str) and values[4].startswith("✗"):  # an error: in the page's words
                    values = (*values[:4], for_page(values[4]), *values[5:])
                yield (*values, values[3], *page, heard) if copy_bundle else (*values, *page, heard)
        except gr.Error:
            return  # the endpoint's last update already put the message in the progress text

    return shown


PATH = re.compile(r"(?<![\w:/.])/(?:[^\s'\"/]+/)+([^\s'\"/]+)")  # an absolute path (not inside a URL)


def without_paths(text: str) -> str:
    """`text` with every absolute file path shortened to its file name: the server's folders mean nothing to a user
    (URLs are left as they are)."""
    return PATH.sub(lambda match: match.group(1), text)


class Outputs(tuple):
    """An endpoint's output values, carrying the whole song's progress (`song`) for the page's bar and the run's
    technical detail (`details`) for the page's Details."""

    song: SongState | None = None
    details: str | None = None
    row: RowHeard | None = None  # a piece of audio heard while a section is made (the page's player plays it)


def outputs(update: Update) -> Outputs:
    """(mix, vocal, instrumental, bundle, progress, seed): gr.skip() for what the update leaves as is."""
    skip = gr.skip()
    files = [skip] * 4 if update.files is None else update.files
    values = Outputs((*files, update.text, skip if update.seed is None else update.seed))
    values.song, values.details, values.row = update.song, update.details, update.row
    return values


NO_RUN = "No run yet: the song's progress, time left and Stop show here during a run."


def song_bar(song: SongState | None) -> str:
    """The whole song's progress bar (HTML): the share done and the time left for the song."""
    if song is None:  # no bar at all: an empty bar read as a full grey one
        return f"<div class='song-bar idle'><span>{NO_RUN}</span></div>"
    ended = "done" if song.fraction >= 1.0 else "stopped"
    left = ended if song.ended else describe_left(song.left_s).replace("…", "")
    return (f"<div class='song-bar'><progress value='{song.fraction:.3f}' max='1'></progress> "
            f"<span>{song.fraction:.0%} of the song · {left}</span></div>")
