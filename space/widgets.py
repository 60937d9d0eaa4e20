"""The Space's widgets and the small functions behind them (Gradio layer): lyric status, continuation plan, the
sections hint (how many of the lyrics' sections are made, per tab) and its "all sections" button, reference window,
tag picker, settings and the run buttons' busy state (the take rows: take_rows.py)."""

import os

import gradio as gr

from yue.text import tags
from yue.checks import SLIDERS
from yue.config import DEFAULT_SECTIONS, Limits, Sampling
from yue.text.prompt import FRAMES_PER_SECOND, LyricsError, parse_lyrics, split_lyrics
from space import gpu_time
from space.help import listen_help, precision_help, precision_table, setting_help
from space.jobs import FORMATS, LANGUAGES, PRECISIONS, choose_start, load_bundle, prefill_lyrics
from space.results import for_page, plural


def lyrics_status(lyrics: str, limits: Limits = Limits(), empty: str = "", kept: int | None = None) -> str:
    """The live check beside the lyrics editor, in words; `empty` (a calm hint, no error) while there are no lyrics
    yet: a run with empty lyrics is refused with the full message. `kept`: the sections a continuation keeps (the
    lyrics must go past them), None elsewhere."""
    if not (lyrics or "").strip():
        return empty
    try:
        parsed = parse_lyrics(lyrics, limits)
    except LyricsError as error:  # its example keeps its lines: Markdown would join them into one
        return f"<span class='status-error'>✗ {lines(str(error))}</span>"
    labels = ", ".join(s.label for s in parsed.sections)
    if kept is not None and len(parsed.sections) <= kept:  # continuing: nothing new to make is no success
        return (f"⚠ {plural(len(parsed.sections), 'section')}: {labels}, all kept from the song; add a new section "
                "after them")
    text = (f"<span class='status-ok'>✓ {len(parsed.sections)} sections: {labels}</span> "
            f"({len(lyrics)}/{limits.max_lyrics_chars} characters)")
    return text + "".join(f"<br>⚠ {warning}" for warning in parsed.warnings)


def lines(text: str) -> str:
    """`text` for a Markdown widget with its line breaks kept."""
    return text.replace("\n", "<br>")


NO_SONG_YET = ("Upload a song bundle (.npz) from this app, press **Continue this song** after making one, or "
               "upload a vocal and an instrumental stem (their lyrics are the first section).")


def continuation_plan(bundle: str | None, continue_from: str, keep_sections, cut_seconds):
    """What a continuation keeps, in words, the genres and lyrics to prefill from the bundle's settings, how many
    sections are kept (None: no song chosen, or a choice that does not work), and the cut time: a valid one
    (`default_cut`) when cutting at a time with none set yet (0 or empty), else left as it is."""
    skip = gr.skip()
    if not bundle:
        return skip, skip, NO_SONG_YET, None, skip
    cut = skip
    try:
        codes, settings = load_bundle(bundle)
        if continue_from == "time" and not cut_seconds:
            cut = cut_seconds = default_cut(codes)
        kept = choose_start(codes, continue_from, keep_sections, cut_seconds)
    except ValueError as error:
        return skip, skip, f"<span class='status-error'>✗ {lines(for_page(str(error)))}</span>", None, cut
    count, whole = len(kept.stage1.section_frames), len(codes.stage1.section_frames)
    labels = ", ".join(kept.stage1.labels) or "none"
    listed = "this section" if count == 1 else f"these {count} sections"
    text = (f"Keeping **{count}** of {plural(whole, 'section')} "
            f"({kept.frames / FRAMES_PER_SECOND:.1f} of {codes.frames / FRAMES_PER_SECOND:.1f} s): {labels}. "
            f"The lyrics must list {listed} first, then the new ones (at most *Sections to generate* of them are "
            "made).")
    if settings.get("language"):
        text += (f" The song was made with the **{settings['language']}** lyrics language: keep it for an exact "
                 "continuation.")
    if kept.unfinished is not None:  # a run ZeroGPU ended inside a section: the bundle holds its part
        seed = f" and seed {settings['seed']}" if isinstance(settings.get("seed"), int) else ""
        text += (f" Section {kept.unfinished.section + 1} was stopped part-way: it goes on exactly where it stopped "
                 f"with {plural(kept.unfinished.takes, 'take')}{seed}.")
    genres = settings.get("genres") or skip
    lyrics = prefill_lyrics(settings["lyrics"], count) if settings.get("lyrics") else skip
    return genres, lyrics, text, count, cut


def default_cut(codes) -> float:
    """Where "a time" cuts when none is set: at the start of the song's last section (redo it), or in the middle
    of a one-section song; in seconds, to a tenth (at least one frame, so it is always valid)."""
    frames = codes.stage1.section_frames
    at = sum(frames[:-1]) if len(frames) > 1 else codes.frames // 2
    return max(round(at / FRAMES_PER_SECOND, 1), 0.1)


def sections_info(tab: str, lyrics: str, sections, kept: int | None,
                  limits: Limits = Limits()) -> tuple[str, int | None]:
    """The hint under *Sections to generate* for the tab in use (`lyrics`: that tab's lyrics; `kept`: the sections a
    continuation keeps, None: not known yet), and the number the "all sections" button sets (None: no button): the
    sections of the lyrics (new ones, continuing) when the lyrics hold another number than is asked for."""
    found = len(split_lyrics(lyrics or ""))
    asked = int(sections) if isinstance(sections, (int, float)) else 0
    if tab == "continue":
        new = None if kept is None else found - kept
        if new is None:
            info = "continuing: at most this many new sections, after the kept ones"
        elif new <= 0:
            info = f"continuing: the lyrics list no new section after the {plural(kept, 'kept section')}: add one"
        elif asked < new:
            info = f"continuing: {asked} of the lyrics' {plural(new, 'new section')}"
        else:
            info = f"continuing: {every(new, 'new section')} of the lyrics"
        target = new if new and new > 0 and asked < new else None
    else:
        if not found:
            info = "how many lyric sections to make, from the first"
        elif asked < found:
            info = f"{asked} of the lyrics' {plural(found, 'section')} (the first {asked})"
        elif asked == found:
            info = f"{every(found, 'section')} of the lyrics"
        else:
            info = f"the lyrics have only {plural(found, 'section')}: set {found}"
        target = found if found and asked != found else None
    return info, None if target is None else min(target, limits.max_sections)


def every(count: int, noun: str) -> str:
    """'the 1 section', 'all 3 sections'."""
    return f"the 1 {noun}" if count == 1 else f"all {count} {noun}s"


def sections_hint(tab: str, lyrics: str, sections, kept: int | None, limits: Limits = Limits()):
    """`sections_info` as updates of the sections slider (its hint) and of the "all sections" button."""
    info, target = sections_info(tab, lyrics, sections, kept, limits)
    return gr.Slider(info=info), gr.Button(every_label(tab, target), visible=target is not None)


def every_label(tab: str, target: int | None) -> str:
    """The "all sections" button: 'Make all 4 sections', 'Make the 1 new section'."""
    return f"Make {every(target, 'new section' if tab == 'continue' else 'section')}" if target else "All sections"


def follow_sections(tab: gr.State, lyrics: dict[str, gr.Textbox], sections: gr.Slider, kept: gr.State,
                    every_section: gr.Button, limits: Limits) -> dict:
    """The hint under *Sections to generate* follows the tab in use (`tab`: its name, a key of `lyrics`), that tab's
    lyrics and the number asked; `every_section` sets the number to them all. Returns the hint's event (fn, inputs,
    outputs) for what changes the tab or `kept` (the sections a continuation keeps) to run `.then`."""
    names, inputs = list(lyrics), [tab, *lyrics.values(), sections, kept]

    def read(name: str, *values) -> tuple:
        texts, (asked, kept_now) = dict(zip(names, values[:-2])), values[-2:]
        return name, texts.get(name, ""), asked, kept_now, limits

    hint = dict(fn=lambda *values: sections_hint(*read(*values)), inputs=inputs, outputs=[sections, every_section])
    gr.on([*(box.change for box in lyrics.values()), sections.change], **hint, **LIGHT)
    every_section.click(lambda *values: sections_info(*read(*values))[1] or gr.skip(), inputs, sections, **LIGHT)
    return hint


def reference_window(path: str | None):
    """On upload: the window is the first 30 s (or the whole track if shorter), and the track's length in words."""
    if not path:
        return gr.skip(), gr.skip(), ""
    import soundfile

    if not os.path.isfile(path):
        return gr.skip(), gr.skip(), ("<span class='status-error'>✗ This file is no longer on the server: upload it "
                                      "again (the example: click it again).</span>")
    try:
        seconds = soundfile.info(path).duration
    except Exception:
        return gr.skip(), gr.skip(), ("<span class='status-error'>✗ This file cannot be read as audio: upload a wav, "
                                      "flac or mp3.</span>")
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
    # raw: a list or dict sent by an API client reaches the check (refused), not its Python repr (sung)
    box = raw(gr.Textbox(value, label="Genre tags", info="genre, instruments, mood, gender, timbre; any words work",
                         elem_id=f"{elem_id}-genres"))
    found = tags.find_tags(value)
    with gr.Accordion("Pick tags from our list", open=False, elem_id=f"{elem_id}-tags"):
        with gr.Row():
            pickers = [gr.Dropdown(list(tags.TAGS[c]), value=found[c], multiselect=True, label=c.title(), min_width=160,
                                   elem_classes="tag-picker") for c in tags.CATEGORIES]
    for category, picker in zip(tags.CATEGORIES, pickers):
        set_tags = lambda text, picked, category=category: tags.set_category(text, category, picked)
        picker.input(set_tags, [box, picker], box, **LIGHT)
    box.change(picked_tags, box, pickers, **LIGHT)  # also when an example or a picker sets the text
    return box


def lyrics_box(value: str, limits: Limits, elem_id: str, empty: str = "", kept: gr.State | None = None) -> gr.Textbox:
    """The lyrics editor and its live check below it (`empty`: the calm hint while there are no lyrics; `kept`: the
    sections a continuation keeps, which the check follows too)."""
    box = raw(gr.Textbox(value, label="Lyrics", lines=12, max_lines=30, elem_id=elem_id,  # raw: as genre_box
                         info="each section starts with a tag line: [verse], [chorus], [bridge], [outro] …"))
    status = gr.Markdown(lyrics_status(value, limits, empty), elem_id=f"{elem_id}-status")
    if kept is None:
        box.change(lambda text: lyrics_status(text, limits, empty), box, status, **LIGHT)
    else:  # `box.check`: the check as an event, for what changes `kept` and not the lyrics (a continuation's end)
        box.check = dict(fn=lambda text, count: lyrics_status(text, limits, empty, count), inputs=[box, kept],
                         outputs=status)
        box.change(**box.check, **LIGHT)
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
    slider = lambda name: raw(gr.Slider(SLIDERS[name].lo, SLIDERS[name].hi, value=getattr(defaults, name),
                                        step=SLIDERS[name].step, label=SLIDERS[name].label, info=setting_help(name),
                                        **hidden))
    return [
        raw(gr.Radio(list(LANGUAGES), value="en", label="Lyrics language", info=setting_help("language"), **hidden)),
        raw(gr.Slider(1, limits.max_sections, value=DEFAULT_SECTIONS, step=1, label="Sections to generate",
                      info="continuing: at most this many new ones", elem_id="sections-setting", **hidden)),
        *(slider(name) for name in ("max_new_tokens", "min_new_tokens", "guidance_first", "guidance_later", "top_p",
                                    "temperature", "repetition_penalty")),
        raw(gr.Number(42, label="Seed", info=setting_help("seed"), **hidden)),
        gr.Checkbox(False, label="Random seed", **hidden),
        raw(gr.Radio(list(PRECISIONS), value="auto", label="Precision", info=precision_help(gpu_time.current_card()),
                     elem_id="precision-setting", **hidden)),
        raw(gr.Radio(list(FORMATS), value="wav", label="Output format", **hidden)),
        raw(gr.Slider(1, limits.max_takes, value=1, step=1, label="Takes", elem_id="takes-setting",
                      info=f"{setting_help('takes')} {TAKES_ONE_SECTION}", **hidden)),
        gr.Checkbox(True, label="Listen while it is made", info=listen_help(gpu_time.current_card()),
                    elem_id="listen-setting", **hidden),
    ]


# A run with takes makes every section it is asked for before a take can be kept: said beside the setting
TAKES_ONE_SECTION = "To keep the best take after each section, make 1 section a run."


def place_settings(settings: list, first_hint: tuple[str, int | None]) -> gr.Button:
    """The settings under the tabs; returns the button under *Sections to generate* that sets it to every section
    of the lyrics (hidden unless the lyrics hold another number of sections). `first_hint`: `sections_info` of the
    first tab, shown until the first change."""
    (language, sections, max_new, min_new, g_first, g_later, top_p, temp, rep, seed, random_seed, precision, fmt,
     takes, listen) = settings
    with gr.Row():
        language.render()
        with gr.Column(min_width=160):
            sections.info = first_hint[0]  # (set before it is rendered, like a constructor argument)
            sections.render()
            every_section = gr.Button(every_label("lyrics", first_hint[1]), size="sm",
                                      visible=first_hint[1] is not None, elem_id="all-sections")
        with gr.Column(min_width=160):
            takes.render()
            listen.render()
    with gr.Row():
        seed.render()
        random_seed.render()
    with gr.Accordion("Sampling, precision and format", open=False):
        # two wide sliders a row: four in a row clip their end labels at common widths ("2…800" for 2…8000)
        for row in ((max_new, min_new), (g_first, g_later), (top_p, temp, rep), (precision, fmt)):
            with gr.Row():
                for component in row:
                    component.render()
        gr.Markdown(precision_table(gpu_time.current_card()), elem_id="precision-table")
    return every_section


BUSY = "⏳"  # before a run button's label while a run goes on
STOP, NOTHING_TO_STOP = "Stop", "Nothing to stop"  # Stop's label during a run, and while none runs
AGAIN, NO_SONG_TO_CONTINUE = "Continue this song →", "Continue this song → (make a song first)"


def stop_button() -> gr.Button:
    """Stop: usable only while a run goes on (`busy_buttons`); its label says so."""
    return gr.Button(NOTHING_TO_STOP, variant="stop", interactive=False, elem_id="stop", scale=0, min_width=120)


def again_button(song: str | None) -> gr.Button:
    """"Continue this song →": usable only when this page has a song (`song`: its bundle), and its label says why
    not."""
    return gr.Button(AGAIN if song else NO_SONG_TO_CONTINUE, interactive=bool(song), elem_id="again")


def busy_buttons(buttons: list[gr.Button], stop: gr.Button, again: gr.Button, song) -> tuple[dict, dict]:
    """Two events (fn, inputs, outputs and LIGHT's options): `busy` greys out the buttons that start a run and marks
    their labels, so a second run cannot be started (nor a continuation of the unfinished song), and makes Stop
    usable; `idle` gives the buttons back their own labels, `again` only when there is a song (`song`: the
    component holding its bundle), and greys Stop out again."""
    labels = [button.value for button in buttons]
    busy = lambda: [*(gr.Button(f"{BUSY} {label}", interactive=False) for label in labels),
                    gr.Button(STOP, interactive=True), gr.Button(f"{BUSY} {AGAIN}", interactive=False)]
    idle = lambda made: [*(gr.Button(label, interactive=True) for label in labels),
                         gr.Button(NOTHING_TO_STOP, interactive=False), again_button(made)]
    outputs = [*buttons, stop, again]
    return dict(fn=busy, inputs=None, outputs=outputs, **LIGHT), dict(fn=idle, inputs=song, outputs=outputs, **LIGHT)
