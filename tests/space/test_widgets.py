"""widgets.py without a server: the words beside the inputs (lyrics check, continuation plan, sections hint,
reference window), as the page shows them."""
import gradio as gr
import pytest

from .helpers import LYRICS, codes
from space.widgets import continuation_plan, lyrics_status, reference_window, sections_info
from tests.bundles import with_stage2

FOUR = LYRICS + "\n[bridge]\nover the water\n\n[outro]\nbye\n"


def test_empty_lyrics_get_the_calm_hint_not_an_error():
    """No lyrics yet: the hint given (or nothing), never '✗ Lyrics are empty'; typed lyrics are checked."""
    assert lyrics_status("") == "" and lyrics_status(" \n ", empty="Write lyrics") == "Write lyrics"
    assert "✗ Lyrics have no section tags" in lyrics_status("la la", empty="Write lyrics")


@pytest.mark.parametrize("tab, lyrics, sections, kept, info, target", [
    ("lyrics", FOUR, 2, None, "2 of the lyrics' 4 sections (the first 2)", 4),
    ("style", FOUR, 4, None, "all 4 sections of the lyrics", None),
    ("lyrics", LYRICS, 3, None, "the lyrics have only 2 sections: set 2", 2),
    ("lyrics", "[verse]\nla\n", 1, None, "the 1 section of the lyrics", None),
    ("lyrics", "", 2, None, "how many lyric sections to make, from the first", None),
    ("continue", FOUR, 2, None, "continuing: at most this many new sections, after the kept ones", None),
    ("continue", FOUR, 1, 1, "continuing: 1 of the lyrics' 3 new sections", 3),
    ("continue", FOUR, 2, 3, "continuing: the 1 new section of the lyrics", None),
    ("continue", LYRICS, 2, 2, "continuing: the lyrics list no new section after the 2 kept sections: add one", None),
])
def test_sections_hint_says_how_many_of_the_lyrics_sections_are_made(tab, lyrics, sections, kept, info, target):
    """Each tab's hint under Sections to generate (continuing: new sections after the kept ones), and the number the
    'all sections' button sets when the lyrics hold another number than asked (None: no button)."""
    assert sections_info(tab, lyrics, sections, kept) == (info, target)


def test_only_the_continuation_tab_speaks_of_continuing():
    """The continuing hint shows on the continuation tab only."""
    for tab in ("lyrics", "style"):
        assert "continuing" not in sections_info(tab, FOUR, 2, None)[0]
    assert sections_info("continue", FOUR, 2, None)[0].startswith("continuing")


def test_continuation_plan_in_words_singular_and_plural(tmp_path):
    """A song of 2 sections: keeping 1 says 'this section', keeping both 'these 2 sections'; a 1-section song says
    '1 of 1 section'. The kept count comes back for the sections hint."""
    bundle = str(codes(5, 5).save(tmp_path / "song.npz", {"lyrics": LYRICS, "genres": "pop"}))
    _, _, text, kept, _ = continuation_plan(bundle, "section", 1, 0)
    assert text.startswith("Keeping **1** of 2 sections (0.1 of 0.2 s)") and "list this section first" in text
    assert kept == 1
    _, _, text, kept, _ = continuation_plan(bundle, "end", 1, 0)
    assert "Keeping **2** of 2 sections" in text and "list these 2 sections first" in text and kept == 2
    single = str(codes(5).save(tmp_path / "single.npz", {"lyrics": "[verse]\nla\n"}))
    assert "Keeping **1** of 1 section (" in continuation_plan(single, "end", 1, 0)[2]
    assert continuation_plan(None, "end", 1, 0)[3] is None


def test_continuation_plan_of_a_song_stopped_inside_a_section_says_how_it_resumes(tmp_path):
    """A bundle holding section 3 stopped part-way: continuing from the end resumes it exactly with its takes and
    seed, which the plan says; keeping fewer sections drops it and the plan says nothing of it."""
    import numpy as np
    from dataclasses import replace

    from yue.lm.stage1 import Stage1Partial
    from yue.song import Unfinished

    state = Unfinished(2, stage1=Stage1Partial(2, 2, (np.full(2, 45400),), (True,), (bytes(5056),), "cpu"))
    song = replace(codes(5, 5), unfinished=state)
    bundle = str(song.save(tmp_path / "song.npz", {"lyrics": LYRICS, "seed": 43}))
    text = continuation_plan(bundle, "end", 1, 0)[2]
    assert text.endswith("Section 3 was stopped part-way: it goes on exactly where it stopped with 1 take and seed 43.")
    assert "stopped part-way" not in continuation_plan(bundle, "section", 1, 0)[2]


def test_reference_window_of_a_file_gone_from_the_server_says_upload_it_again(tmp_path):
    """A reference the server no longer has says so and what to do (not 'cannot be read as audio'), with no path."""
    *_, text = reference_window(str(tmp_path / "gone" / "reference-example.wav"))
    assert "no longer on the server: upload it again" in text and str(tmp_path) not in text


def test_busy_buttons_grey_out_every_run_button_and_give_back_their_labels():
    """While a run goes on, each button that starts one is not pressable and marked busy, and Stop is pressable;
    after, each is pressable with its own label again, Stop is greyed out and says there is nothing to stop, and
    "Continue this song" is pressable only when there is a song, its label saying why not."""
    import gradio as gr

    from space.widgets import AGAIN, BUSY, NO_SONG_TO_CONTINUE, NOTHING_TO_STOP, STOP, again_button, busy_buttons

    with gr.Blocks():
        buttons = [gr.Button("Generate"), gr.Button("Continue")]
        stop, again, song = gr.Button(), again_button(None), gr.File()
        busy, idle = busy_buttons(buttons, stop, again, song)
    assert busy["outputs"] == idle["outputs"] == [*buttons, stop, again] and busy["queue"] is False
    assert idle["inputs"] == song and (again.value, again.interactive) == (NO_SONG_TO_CONTINUE, False)
    assert [(b.value, b.interactive) for b in busy["fn"]()] == [
        (f"{BUSY} Generate", False), (f"{BUSY} Continue", False), (STOP, True), (f"{BUSY} {AGAIN}", False)]
    assert [(b.value, b.interactive) for b in idle["fn"](None)] == [
        ("Generate", True), ("Continue", True), (NOTHING_TO_STOP, False), (NO_SONG_TO_CONTINUE, False)]
    assert [(b.value, b.interactive) for b in idle["fn"]("song-1of1.npz")][-1] == (AGAIN, True)


def test_cutting_at_a_time_opens_with_a_valid_cut_and_no_api_names(tmp_path):
    """"a time" with the untouched cut (0, or empty) sets a valid one, the start of the last section (0.1 s of a
    0.2 s song of two sections; the middle of a one-section song), and plans with it: no red error. A cut set by
    hand is left as it is, and its error names the page's field, not the API's (cut_seconds)."""
    bundle = str(codes(5, 5).save(tmp_path / "song.npz", {"lyrics": LYRICS}))
    for untouched in (0, None):
        _, _, text, kept, cut = continuation_plan(bundle, "time", 1, untouched)
        assert cut == 0.1 and kept == 1 and text.startswith("Keeping **1** of 2 sections")
    single = str(codes(10).save(tmp_path / "single.npz", {"lyrics": "[verse]\nla\n"}))
    assert continuation_plan(single, "time", 1, 0)[4] == 0.1  # 5 of 10 frames at 50 frames a second
    _, _, text, kept, cut = continuation_plan(bundle, "time", 1, 9.0)
    assert cut == gr.skip() and kept is None
    assert "The cut time must be between" in text and "cut_seconds" not in text
    assert continuation_plan(bundle, "end", 1, 0)[4] == gr.skip()  # only the time choice touches the cut


def test_every_sampling_control_and_the_precision_have_help_from_one_table():
    """Each sampling slider, the language, seed, takes and precision have help text; the official values in it
    come from Sampling, the precision's memory and time from gpu_table's rows of this Space's card (the docs'
    table); the takes' help says a run makes all its sections before a take can be kept; listening (on) says what
    it does and the GPU time it adds."""
    from space import gpu_table, gpu_time
    from space.help import precision_table
    from space.widgets import settings_components
    from yue.config import Limits, Sampling

    with gr.Blocks():
        settings = settings_components(Sampling(), Limits())
    named = dict(zip(("language", "sections", "max_new_tokens", "min_new_tokens", "guidance_first", "guidance_later",
                      "top_p", "temperature", "repetition_penalty", "seed", "random_seed", "precision", "format",
                      "takes", "listen"), settings))
    for name in ("language", "max_new_tokens", "min_new_tokens", "guidance_first", "guidance_later", "top_p",
                 "temperature", "repetition_penalty", "seed", "precision", "takes"):
        assert named[name].info, name
    assert "3000 = 30 s" in named["max_new_tokens"].info and "official 0.93" in named["top_p"].info
    assert named["language"].label == "Lyrics language" and "checkpoint" not in named["language"].info
    card = gpu_time.current_card()
    for precision, memory, seconds, *_ in gpu_table.rows(card):
        assert f"{precision.strip('`')} {memory}, {seconds}" in named["precision"].info
    assert precision_table(card) == gpu_table.markdown("large")  # off ZeroGPU: the default card's
    assert "make 1 section a run" in named["takes"].info
    # listening: on by default, its cost a 30 s section on this Space's card from the bookings' own numbers
    extra = gpu_time.listen_seconds(Sampling()) * card.slowdown
    assert named["listen"].value is True and named["listen"].label == "Listen while it is made"
    assert named["listen"].info.startswith("plays each part of every take as soon as it is made")
    assert f"about {extra:.0f} s more a 30 s section here" in named["listen"].info


def test_the_lyrics_check_keeps_the_example_lines_and_warns_when_a_continuation_adds_nothing():
    """An error's example keeps its line breaks on the page; on the continuation tab, lyrics that hold only the kept
    sections are no green success but a warning to add a section (more sections than kept: the usual check)."""
    assert "e.g.<br>[verse]<br>" in lyrics_status("la la")
    assert lyrics_status(LYRICS, kept=2) == ("⚠ 2 sections: verse, chorus, all kept from the song; add a new "
                                             "section after them")
    assert "status-ok'>✓ 2 sections" in lyrics_status(LYRICS, kept=1)


def test_a_bundle_with_settings_of_the_wrong_type_is_a_status_line_not_a_server_error(tmp_path):
    """`lyrics: 5` in a bundle's settings was an HTTP 500 from the Continue tab's upload helper ('int' object has no
    attribute 'removeprefix'): it is refused on load and shown as the plan's error, fields left as they are."""
    bundle = str(codes(3, 2).save(tmp_path / "odd.npz", {"lyrics": 5, "genres": "pop"}))
    genres, lyrics, text, kept, _ = continuation_plan(bundle, "end", 1, 0)
    assert "odd.npz is not a song bundle saved by this app: its setting 'lyrics' must be text; got 5 (int)" in text
    assert kept is None and text.startswith("<span class='status-error'>")


@pytest.mark.parametrize("rows", [1, 3, 9])
def test_the_continue_tabs_plan_refuses_stage2_codes_without_8_codebooks(tmp_path, rows):
    """Defect 1: the plan accepted bundles of 1, 3 or 9 stage-2 rows (the run then copied codebook 0 into all 8, or
    failed after stage 1); now the plan's error line names the field, and nothing is kept."""
    bundle = str(with_stage2(rows).save(tmp_path / "rows.npz", {"lyrics": LYRICS}))
    _, _, text, kept, _ = continuation_plan(bundle, "end", 1, 0)
    assert text.startswith("<span class='status-error'>✗ rows.npz: its stage-2 vocal codes have shape") and kept is None
