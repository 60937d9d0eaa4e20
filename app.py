"""The YuE Space: a web app (and API) over the pipeline. Widgets become a `SongRequest`, a `Song` becomes players.

    python app.py                 # the official checkpoints (GPU)
    python app.py --tiny auto     # offline, tiny random weights: the whole app works, the output is noise

No generation logic lives here, and no serving logic either: `space.serving` keeps the model cache, GPU calls per
section for every take (ZeroGPU allows a few minutes per call), per-request output folders and a stop flag;
`space.jobs` checks the inputs, `space.results` writes the files. This file is the Gradio layer: the layout, the
events (each endpoint once for API and MCP callers, which get errors raised, and once for the page's button, which
shows an error in the progress text), and `main`; start-up's flags, its Gradio temp folder of its own per copy and
the exit are `space.startup`'s, the models loaded before launch and the launch settings `space.launch`'s.
"""
import logging
import runpy
import sys
import tempfile
from pathlib import Path
from typing import Callable

# gradio-free: before gradio below
from space.startup import check_start, leave, own_gradio_folder, parse_args, stop_on_signals

if __name__ == "__main__":  # started as the app (not imported): before gradio and transformers are imported below
    own_gradio_folder()
    from yue.weights.console import import_torchao_quietly

    import_torchao_quietly()  # its optional kernels' lines stay off the console

import gradio as gr  # noqa: E402

from yue.config import Limits, Sampling  # noqa: E402
from yue.weights.loading import ModelCache  # noqa: E402
from yue.weights.threads import set_cpu_threads  # noqa: E402
from yue.pipeline import Pipeline  # noqa: E402
from space.jobs import ModelChoice  # noqa: E402
from space.gpu_time import on_zero_gpu  # noqa: E402
from space.launch import launch, preload  # noqa: E402
from space.serving import MAX_QUEUE  # noqa: E402
from space.store import (OUTPUT_MAX_AGE_HOURS, TINY_PRECISION, OutputStore,  # noqa: F401,E402
                         codec_available, load_examples, pipelines, start_words, tiny_folder)
from space.history import Signer  # noqa: E402
from space.listeners import Listeners  # noqa: E402
from space.listen_player import listen_box, rows_endpoint  # noqa: E402
from space.history_panel import history_panel, recorder  # noqa: E402
from space.endpoints import on_page, song_bar  # noqa: E402
from space.studio import OFFICIAL, Studio, gpu  # noqa: F401,E402  (gpu: tests wrap with it)
from space.widgets import (INTRO, LIGHT, again_button, busy_buttons, continuation_plan, genre_box,  # noqa: F401,E402
                           lyrics_box, lyrics_status, follow_sections, place_settings, raw, reference_window,
                           sections_info, settings_components, stop_button)
from space.style import SHOW_TABS  # noqa: E402
from space.take_rows import show_takes, take_rows  # noqa: E402
# Names app.py had before the serving split, still importable from it (tests and notebooks use them):
from space.jobs import prefill_lyrics  # noqa: F401,E402
from space.serving import section_gpu_seconds  # noqa: F401,E402
from space.serving import GPU_MAX_SECONDS, STOPPED, section_events  # noqa: F401,E402

log = logging.getLogger("yue.app")

APP_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = APP_DIR / "examples"
TINY_BANNER = "Tiny offline mode: random weights, the output is noise"



# -- the three endpoints ---------------------------------------------------------------------------------------------


def build_demo(get_pipeline: Callable[[ModelChoice], Pipeline], *, output_root: Path | None = None,
               limits: Limits = Limits(), tiny: bool = False, defaults: Sampling | None = None,
               max_queue: int = MAX_QUEUE, served: ModelChoice | None = None) -> gr.Blocks:
    """The whole app over `get_pipeline(choice) -> Pipeline` (the model cache); at most `max_queue` runs wait, the
    next one is told the queue is full and to try again. `served`: the models loaded before launch (`preload`)."""
    store = OutputStore(output_root or Path(tempfile.gettempdir()) / "yue-space")
    studio = Studio(get_pipeline, store, limits, TINY_PRECISION if tiny else None)
    studio.service.served = served  # a run of other models books an allowance for them (space/song_run.py)
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
        tab = gr.State("lyrics")  # the tab in use: the sections hint depends on it
        # The song's progress bar (share done, time left) and Stop: fixed at the bottom of the window (CSS), so they
        # stay in view during a run at any width and scroll position
        with gr.Row(elem_id="run-dock"):
            bar = gr.HTML(song_bar(None), elem_id="song-bar")
            stop = stop_button()
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Tabs(elem_id="song-tabs") as tabs:
                    with gr.Tab("Lyrics to song", id="lyrics") as l_tab:
                        l_genres, l_lyrics = genre_box(first[0], "lyrics"), lyrics_box(first[1], limits, "lyrics")
                        l_go = gr.Button("Generate", variant="primary", elem_id="generate")
                        if examples:
                            gr.Examples([row for _, row in examples], [l_genres, l_lyrics, settings[0]],
                                        example_labels=[name for name, _ in examples], label="Examples")
                    with gr.Tab("Style transfer", id="style") as s_tab:
                        gr.Markdown("A reference recording sets the style (in-context learning): one mixed track, "
                                    "or its vocal and instrumental stems. About 30 s of it is enough.")
                        s_mix = gr.Audio(type="filepath", sources=["upload"], label="Reference track (mixed)")
                        with gr.Accordion("…or a vocal + instrumental pair", open=False):
                            with gr.Row():
                                s_vocal = gr.Audio(type="filepath", sources=["upload"], label="Reference vocal")
                                s_inst = gr.Audio(type="filepath", sources=["upload"], label="Reference instrumental")
                        s_info = gr.Markdown(elem_id="style-info")
                        with gr.Row():
                            s_start = raw(gr.Number(0, label="Window start (s)", minimum=0))
                            s_end = raw(gr.Number(30, label="Window end (s)", minimum=0))
                        s_genres, s_lyrics = genre_box(first[0], "style"), lyrics_box(first[1], limits, "style-lyrics")
                        s_go = gr.Button("Generate in this style", variant="primary")
                        # a label, not a table: a table squeezes the lyrics column to a word a line
                        label = f"Our synth, 0–10 s, with the {examples[0][0] if examples else 'default'} lyrics"
                        gr.Examples([[reference, 0, 10, first[0], first[1]]],
                                    [s_mix, s_start, s_end, s_genres, s_lyrics], example_labels=[label],
                                    label="Example reference", api_name="style_example", elem_id="style-examples")
                    with gr.Tab("Continue a song", id="continue") as c_tab:
                        # .zip too: an .npz is a zip archive, and Gradio names a file sent as a data: URI (MCP
                        # clients) after its MIME type, application/zip (the bundle's content is checked on load)
                        c_bundle = gr.File(label="Song bundle (.npz) from this app", file_types=[".npz", ".zip"],
                                           elem_id="continue-bundle")
                        with gr.Accordion("…or a vocal + instrumental pair to continue", open=False):
                            with gr.Row():
                                c_vocal = gr.Audio(type="filepath", sources=["upload"], label="Vocal stem")
                                c_inst = gr.Audio(type="filepath", sources=["upload"], label="Instrumental stem")
                        with gr.Row():
                            c_from = raw(gr.Radio([("the end", "end"), ("after section N (regenerate the rest)",
                                                                    "section"), ("a time", "time")],
                                                  value="end", label="Continue from"))
                            # each shown only with the choice it belongs to
                            c_keep = raw(gr.Number(1, label="N: sections to keep", precision=0, minimum=1,
                                                   visible=False, elem_id="continue-keep"))
                            c_cut = raw(gr.Number(0, label="Cut time (s)", minimum=0, visible=False,
                                                  elem_id="continue-cut"))
                        c_plan = gr.Markdown(continuation_plan(None, "end", 1, 0)[2], elem_id="continue-plan")
                        c_kept = gr.State(None)  # how many sections the continuation keeps (None: no song yet)
                        c_genres = genre_box(first[0], "continue")
                        c_lyrics = lyrics_box("", limits, "continue-lyrics", "The lyrics fill in when you choose a "
                                              "song: the kept sections first, then write the new ones.", c_kept)
                        c_go = gr.Button("Continue", variant="primary", elem_id="continue")
                every_section = place_settings(settings, sections_info("lyrics", first[1], settings[1].value, None,
                                                                       limits))
            with gr.Column(scale=2):
                listen = listen_box()  # plays every take's rows while a section is made (space/listen_player.py)
                progress = gr.Textbox(label="Progress", lines=4, interactive=False, elem_id="progress")
                with gr.Accordion("Details", open=False, elem_id="run-details"):  # the model's units and names
                    details = gr.Textbox(show_label=False, lines=4, interactive=False, placeholder="set by a run")
                # the page shows the seed as text: Gradio 6.31's Number shows 0 when empty, before any run
                seed_shown = gr.Textbox(label="Seed used", interactive=False, placeholder="set by a run",
                                        elem_id="seed-used")
                seed_used = gr.Number(label="Seed used", precision=0, visible=False)  # the API's output
                again = again_button(None)
                takes_box, rows = take_rows(limits.max_takes)  # above the one song's players: in view
                with gr.Column(elem_id="one-take") as one_take:  # hidden for several takes: take 1 is in its row
                    mix = gr.Audio(label="Song", type="filepath", interactive=False, elem_id="mix",
                                   buttons=["download"])
                    vocal = gr.Audio(label="Vocal stem", type="filepath", interactive=False, buttons=["download"])
                    instrumental = gr.Audio(label="Instrumental stem", type="filepath", interactive=False,
                                            buttons=["download"])
                    bundle = gr.File(label="Song file to continue later (.npz)", interactive=False)

        made = gr.State(None)  # every take's files of this session's last run (TakeFiles.as_dict() each)
        # No gr.State among the endpoints' outputs: Gradio 6.31's MCP tool calls fail on one ("pop index out of
        # range"). The page keeps its last song from the bundle it shows; API and MCP callers pass the bundle back.
        outputs = [mix, vocal, instrumental, bundle, progress, seed_used]
        shown = [mix, vocal, instrumental, bundle, progress, seed_shown]  # the page's (on_page adds the bar, the player)
        run = dict(concurrency_id="gpu", show_progress="minimal")  # one GPU: one run at a time
        hint = follow_sections(tab, {"lyrics": l_lyrics, "style": s_lyrics, "continue": c_lyrics}, settings[1],
                               c_kept, every_section, limits)
        inputs = {"lyrics_to_song": [l_genres, l_lyrics, *settings],
                  "style_transfer": [s_mix, s_vocal, s_inst, s_start, s_end, s_genres, s_lyrics, *settings],
                  "continue_song": [c_bundle, c_vocal, c_inst, c_from, c_keep, c_cut, c_genres, c_lyrics, *settings,
                                    last_song]}
        # Each endpoint twice: for API and MCP callers on a hidden trigger (errors are raised: the caller gets an
        # error), and for the page's button (on_page: an error is the progress text only, the outputs stay).
        # API and MCP callers must give genres and lyrics: hidden boxes without a value stand in for the page's, whose
        # example text the schema would offer as a default (an omitted lyrics sang the example)
        required = {id(box): raw(gr.Textbox(None, visible=False)) for box in (l_genres, l_lyrics, s_genres, s_lyrics,
                                                                            c_genres, c_lyrics)}
        for name in inputs:
            # The page's own memory (continue_song's last_song, a gr.State, last) is no API input: API and MCP
            # callers have none, so the function's default (None) stands, and MCP serves no tool of a State input
            api_inputs = [required.get(id(part), part) for part in inputs[name] if not isinstance(part, gr.State)]
            gr.Button(visible=False).click(getattr(studio, name), api_inputs, outputs, api_name=name, **run)
        page = dict(api_visibility="private", **run)
        # While a run goes on every button that starts one shows it is busy and cannot be pressed (Stop stays):
        # set at once, before the run waits in the queue, and set back when it ends, however it ends.
        starters = [l_go, s_go, c_go, *(row[-1] for row in rows)]
        busy, idle = busy_buttons(starters, stop, again, bundle)
        # every song that ends (done or stopped) goes into the browser's history, with the tab it came from
        history = gr.BrowserState([], storage_key="yue-song-history")
        signer = Signer()  # this launch's key: the history's entries name only files this app made for them
        record = recorder(history, progress, studio.session_takes, signer)
        l_go.click(**busy).then(on_page(studio.lyrics_to_song), inputs["lyrics_to_song"], shown + [bar, details, listen],
                                **page).then(**idle).then(**record("lyrics"))
        s_go.click(**busy).then(on_page(studio.style_transfer), inputs["style_transfer"], shown + [bar, details, listen],
                                **page).then(**idle).then(**record("style"))
        # A continuation's new bundle becomes the song to continue: continuing again goes on from the newest song.
        c_go.click(**busy).then(on_page(studio.continue_song, copy_bundle=True), inputs["continue_song"],
                                shown + [c_bundle, bar, details, listen], **page).then(**idle).then(**record("continue")).then(
            lambda *args: continuation_plan(*args)[2:], [c_bundle, c_from, c_keep, c_cut], [c_plan, c_kept, c_cut],
            **LIGHT).then(**hint, **LIGHT).then(**c_lyrics.check, **LIGHT)
        bundle.change(lambda song: (song, again_button(song)), bundle, [last_song, again], **LIGHT)
        # The takes of the run reach the page from the server's record of this session, not as an endpoint output.
        def session_rows(request: gr.Request):
            made_now = studio.session_takes(request)
            return [made_now, *show_takes(made_now, len(rows))]

        bundle.change(session_rows, None, [made, one_take, takes_box, *(part for row in rows for part in row[:-1])],
                      **LIGHT)
        for take, (*_, keep) in enumerate(rows, start=1):
            keep.click(**busy).then(on_page(studio.keep_take), [made, gr.State(take), *settings],
                                    shown + [bar, details, listen], **page).then(**idle).then(**record("keep"))
        listed = [gr.File(file_count="multiple", visible=False), gr.JSON(visible=False)]
        # Undocumented like /stop: gradio_client callers have a session; MCP callers would share one.
        gr.Button(visible=False).click(studio.takes, None, listed, api_name="takes", queue=False,
                                       api_visibility="undocumented")
        rows_endpoint(studio.rows)  # /rows: the pieces heard so far, for gradio_client callers (like /takes)
        # Undocumented: gradio_client can call /stop (same session), MCP callers have no session for it to reach.
        stop.click(studio.stop, None, None, api_name="stop", queue=False, show_progress="hidden",
                   api_visibility="undocumented")
        # The plan (and the prefilled lyrics) follow user actions only: a programmatic change of the bundle
        # field must not overwrite lyrics the user is editing.
        plan = dict(fn=continuation_plan, inputs=[c_bundle, c_from, c_keep, c_cut],
                    outputs=[c_genres, c_lyrics, c_plan, c_kept, c_cut])
        again.click(lambda song: (song, gr.Tabs(selected="continue"), "continue"), bundle, [c_bundle, tabs, tab],
                    **LIGHT).then(**plan, **LIGHT).then(**hint, **LIGHT).then(None, js=SHOW_TABS, **LIGHT)
        for event in (c_bundle.upload, c_bundle.clear, c_from.input, c_keep.input, c_cut.input):
            event(**plan, **LIGHT).then(**hint, **LIGHT)
        c_from.change(lambda choice: (gr.Number(visible=choice == "section"), gr.Number(visible=choice == "time")),
                      c_from, [c_keep, c_cut], **LIGHT)
        for name, tab_widget in (("lyrics", l_tab), ("style", s_tab), ("continue", c_tab)):
            tab_widget.select(lambda name=name: name, None, tab, **LIGHT).then(**hint, **LIGHT)
        for audio in (s_mix, s_vocal):
            audio.change(reference_window, audio, [s_start, s_end, s_info], **LIGHT)
        history_panel(history, store.root, signer, [c_bundle, tabs, tab], [plan, hint], tabs, tab, SHOW_TABS,
                      {"lyrics": (l_genres, l_lyrics), "style": (s_genres, s_lyrics), "continue": (c_genres, c_lyrics)},
                      settings)
    demo.queue(default_concurrency_limit=1, max_size=max_queue)
    studio.listeners = Listeners(demo)  # a run nobody listens for is dropped when its turn comes
    return demo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_start(args)
    except (ValueError, RuntimeError) as error:  # ModelLoadError is a RuntimeError
        print(f"error: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    log.info("%s", set_cpu_threads(args.threads))  # here, once, before any work (not at import); checked above
    tiny = tiny_folder(args.tiny) if args.tiny else None
    log.info("%s", start_words(tiny, args.device, on_zero_gpu()))
    get_pipeline = pipelines(ModelCache(), tiny, args.device)
    served = preload(get_pipeline)
    demo = build_demo(get_pipeline, output_root=args.outputs, tiny=bool(args.tiny), served=served)
    stop = stop_on_signals()  # Ctrl-C or SIGTERM, at any moment from here: the server closes, the exit hooks run
    try:
        launch(demo, args.host, args.port, args.share, args.mcp, prevent_thread_lock=True)
        while demo.is_running and not stop.wait(0.1):
            pass
    except KeyboardInterrupt:  # also a stop while Gradio still checks its own server (launch has not returned yet)
        pass
    demo.close()
    return 0


if __name__ == "__main__":
    leave(main())
