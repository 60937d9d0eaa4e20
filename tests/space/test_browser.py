"""A real headless Chromium (Debian's, driven by Playwright) loads the app on tiny checkpoints, checks the lyrics
live, shows an error in one place, generates a song and finds it playable, continues it, picks tags and keeps a
take. The screenshots are kept in test-artifacts/browser*.png.
"""
import re
from pathlib import Path

import pytest

from tests import ROOT
from .helpers import has_codec, start_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
LYRICS = "[verse]\nlanterns on the river\n\n[chorus]\nrise, rise, rise\n"
# Whether a file's whole name shows: the text's boxes lie within its name's box (an ellipsis cut "take2-song-1of1"
# to "t .npz": the text ran on past it)
WHOLE_NAME = "stem => { const range = document.createRange(); range.selectNodeContents(stem); " \
             "const box = stem.closest('.filename').getBoundingClientRect(); return [...range.getClientRects()]" \
             ".every(line => line.left >= box.left - 1 && line.right <= box.right + 1); }"
# The lines each piece of text takes on screen
LINES = "element => { const range = document.createRange(); range.selectNodeContents(element); " \
        "return range.getClientRects().length; }"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import expect, sync_playwright

    # expect() waits 5 s by default, not the page's timeout: a busy machine (CI, or other tests' apps) can be slower
    expect.set_options(timeout=30_000)
    url, demo = start_app(tmp_path_factory.mktemp("browser"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        page.goto(url, wait_until="domcontentloaded")
        yield page
        browser.close()
    demo.close()


def test_page_generates_a_playable_song(page):
    try:
        check_page(page)
    finally:  # the screenshot is kept either way: it shows what went wrong
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "browser.png"), full_page=True)


def playable(page, elem_id: str, label: str) -> bool:
    """The player `elem_id` has fetched its file (Gradio 6 plays a blob of it) and knows its duration."""
    from playwright.sync_api import expect

    audio = page.locator(f"#{elem_id}").get_by_test_id(f"waveform-{label}").locator("audio")
    expect(audio).to_have_attribute("src", re.compile(r"^blob:"), timeout=30_000)
    ready = audio.evaluate("a => new Promise(done => a.readyState >= 1 ? done(a.readyState) : "
                           "a.addEventListener('loadedmetadata', () => done(a.readyState)))")
    return ready >= 1 and audio.evaluate("a => a.duration") > 0


def check_page(page):
    from playwright.sync_api import expect

    expect(page.locator("#tiny-banner")).to_contain_text("Tiny offline mode: random weights, the output is noise")
    expect(page.locator("#seed-used textarea")).to_have_value("")  # no seed before a run
    # before any run: no bar that looks full, and nothing to stop or continue, said on the buttons
    expect(page.locator("#song-bar")).to_contain_text("No run yet")
    expect(page.locator("#song-bar progress")).to_have_count(0)
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#stop")).to_have_text("Nothing to stop")
    expect(page.locator("#again")).to_be_disabled()
    expect(page.locator("#again")).to_contain_text("make a song first")
    check_calm_continuation_tab(page)
    lyrics, status = page.locator("#lyrics textarea"), page.locator("#lyrics-status")
    sections, every_section = page.locator("#sections-setting"), page.locator("#all-sections")
    # the first example's 4 sections with 2 asked: said, and one click asks for all 4
    expect(sections).to_contain_text("2 of the lyrics' 4 sections (the first 2)")
    expect(sections).not_to_contain_text("continuing")
    every_section.click()
    expect(sections.locator("input[type=number]")).to_have_value("4")
    expect(sections).to_contain_text("all 4 sections of the lyrics")
    expect(every_section).to_be_hidden()

    lyrics.fill("")  # an error: in the progress text only, with its line breaks, and no error mark anywhere
    expect(status).not_to_contain_text("sections")  # the live check has seen the empty box, as a person would
    page.locator("#generate").click()
    progress = page.locator("#progress textarea")
    expect(progress).to_have_value(re.compile(r"^✗ Lyrics are empty\. .*e\.g\.\n\[verse\]\nfirst line", re.DOTALL))
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    expect(page.locator("#seed-used textarea")).to_have_value("")

    lyrics.fill("no section tags here")
    expect(status).to_contain_text("✗ Lyrics have no section tags")
    lyrics.fill(LYRICS)
    expect(status).to_contain_text("✓ 2 sections: verse, chorus")
    expect(sections).to_contain_text("the lyrics have only 2 sections: set 2")
    every_section.click()
    expect(sections.locator("input[type=number]")).to_have_value("2")

    page.locator("#generate").click()
    # while it runs: no second run can be started, nor the unfinished song continued; Stop stays
    for button in ("#generate", "#continue"):
        expect(page.locator(button)).to_be_disabled()
    expect(page.locator("#generate")).to_contain_text("⏳ Generate")
    expect(page.locator("#stop")).to_be_enabled()
    expect(page.locator("#stop")).to_have_text("Stop")
    # the time elapsed, apart from the audio made so far, and the whole song's share and time left
    expect(progress).to_have_value(re.compile(r"new sections? done \(\d+%\), (no audio yet|the song so far is "
                                              r"[\d.]+ s of audio); \d+ s elapsed, .* for the song"), timeout=120_000)
    expect(page.locator("#song-bar")).to_contain_text(re.compile(r"\d+% of the song"))
    expect(progress).to_have_value(re.compile(r"^Done: 2 of 2 sections"), timeout=120_000)
    expect(page.locator("#song-bar")).to_contain_text("100% of the song · done")
    expect(page.locator("#song-bar progress")).to_have_attribute("value", "1.000")
    for button in ("#generate", "#continue"):
        expect(page.locator(button)).to_be_enabled()
    expect(page.locator("#generate")).to_have_text("Generate")
    expect(page.locator("#seed-used textarea")).to_have_value("42")
    expect(page.locator("a[href$='song-2of2.npz']").first).to_be_visible()  # the code bundle to download
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    expect(page.locator("#stop")).to_be_disabled()  # nothing to stop again; a song to continue now
    expect(page.locator("#again")).to_be_enabled()
    # the summary in a musician's words; the model's names and units folded away in Details, still there
    expect(progress).to_have_value(re.compile(r"\(composing [\d.]+ s, adding detail [\d.]+ s"))
    expect(progress).not_to_have_value(re.compile(r"stage|token"))
    page.locator("#run-details").get_by_text("Details").click()
    expect(page.locator("#run-details textarea")).to_have_value(re.compile(r"stage 1 [\d.]+ s, stage 2 [\d.]+ s"))
    if not has_codec():  # a token-only pipeline until the codec lands: no audio to play yet
        return
    assert playable(page, "mix", "Song")  # the <audio> plays a blob of mix-2of2.wav
    expect(page.locator("#takes")).to_be_hidden()  # one take: no take rows


def in_view(page, element) -> bool:
    """The whole of `element` lies inside the window (its bounding box within the viewport)."""
    box, size = element.bounding_box(), page.viewport_size
    return box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] and (
        box["y"] + box["height"] <= size["height"])


@pytest.mark.parametrize("width, height", [(1400, 900), (390, 844)])
def test_progress_and_stop_stay_in_view_during_a_run(page, width, height):
    """At 1400x900 and on a 390 px phone, after Generate the song's bar (share done, time left) and Stop are wholly
    in the window during the run, at the Generate button and scrolled to the bottom of the page (before, they were
    above the players at 1400x900 and below every setting on a phone)."""
    from playwright.sync_api import expect

    window = page.context.browser.new_page(viewport={"width": width, "height": height})
    window.set_default_timeout(60_000)
    try:
        window.goto(page.url, wait_until="domcontentloaded")
        window.locator("#lyrics textarea").fill(LYRICS)
        window.locator("#generate").click()
        bar, stop = window.locator("#song-bar"), window.locator("#stop")
        expect(stop).to_be_enabled()  # the run is on (Stop is greyed out otherwise)
        expect(bar).to_contain_text("% of the song")
        assert in_view(window, bar) and in_view(window, stop)
        window.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        window.wait_for_function("window.scrollY > 0")
        assert in_view(window, bar) and in_view(window, stop)
        expect(window.locator("#progress textarea")).to_have_value(re.compile(r"^Done: "), timeout=120_000)
    finally:
        window.screenshot(path=str(ARTIFACTS / f"browser-{width}.png"))
        window.close()


def check_calm_continuation_tab(page):
    """Before anything was done the continuation tab shows no error, speaks of continuing in the sections hint, and
    shows the number of sections to keep and the cut time only with the choice each belongs to."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Continue a song").click()
    expect(page.locator("#continue-lyrics-status")).to_contain_text("The lyrics fill in when you choose a song")
    expect(page.locator("#continue-lyrics-status")).not_to_contain_text("✗")
    expect(page.locator("#continue-plan")).not_to_contain_text("✗")
    expect(page.locator("#sections-setting")).to_contain_text("continuing: at most this many new sections")
    keep, cut = page.locator("#continue-keep"), page.locator("#continue-cut")
    expect(keep).to_be_hidden()
    expect(cut).to_be_hidden()
    for choice, shown, hidden in (("after section N", keep, cut), ("a time", cut, keep)):
        page.get_by_text(choice).click()
        expect(shown).to_be_visible()
        expect(hidden).to_be_hidden()
    page.get_by_text("the end", exact=True).click()
    expect(cut).to_be_hidden()
    page.get_by_role("tab", name="Lyrics to song").click()
    expect(page.locator("#sections-setting")).not_to_contain_text("continuing")


def test_continue_this_song_prefills_and_extends(page):
    """After the first test's song: 'Continue this song' opens the continuation tab with the bundle and the song's
    lyrics plus an empty new section, which the live check asks to fill; the plan says what is kept (this section,
    these 2 sections); filled, the song grows to 3 sections, and the tab's bundle becomes the new song's."""
    from playwright.sync_api import expect

    try:
        page.get_by_role("button", name="Continue this song →").click()
        plan = page.locator("#continue-plan")
        expect(plan).to_contain_text("Keeping 2 of 2 sections")
        expect(plan).to_contain_text("must list these 2 sections first")
        page.get_by_text("after section N").click()
        expect(plan).to_contain_text("Keeping 1 of 2 sections")
        expect(plan).to_contain_text("must list this section first")
        page.get_by_text("a time").click()  # opens with a valid cut (the last section's start), not 0 and an error
        expect(plan).to_contain_text("Keeping 1 of 2 sections")
        expect(page.locator("#continue-cut input")).not_to_have_value("0")
        expect(plan).not_to_contain_text("✗")
        page.get_by_text("the end", exact=True).click()
        expect(plan).to_contain_text("Keeping 2 of 2 sections")
        lyrics = page.locator("#continue-lyrics textarea")
        expect(lyrics).to_have_value(LYRICS + "\n[verse]\n")
        expect(page.locator("#continue-lyrics-status")).to_contain_text("✗ Section 3 [verse] is empty")
        lyrics.fill(LYRICS + "\n[outro]\nsee you tomorrow\n")
        expect(page.locator("#continue-lyrics-status")).to_contain_text("✓ 3 sections: verse, chorus, outro")
        expect(page.locator("#sections-setting")).to_contain_text("continuing: the 1 new section of the lyrics")
        page.locator("#continue").click()
        expect(page.locator("#progress textarea")).to_have_value(re.compile(r"^Done: 3 of 3 sections"),
                                                                 timeout=120_000)
        expect(page.get_by_text("Error", exact=True)).to_have_count(0)
        # continuing again goes on from the new song: the tab now holds its bundle
        expect(page.locator("#continue-bundle a[href$='song-3of3.npz']")).to_be_visible()
        expect(plan).to_contain_text("Keeping 3 of 3 sections")
        # the same lyrics now hold no new section: a warning, not a green count beside the hint to add one
        expect(page.locator("#continue-lyrics-status")).to_contain_text("all kept from the song; add a new section")
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-continue.png"), full_page=True)


def test_tag_picker_writes_into_the_genre_text(page):
    """Picking a tag adds it in category order, keeping the user's own words; typing a known tag ticks it. A picked
    tag wraps between words only ('acoustic guitar' may take 2 lines, 'country' 1)."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Lyrics to song").click()
    genres = page.locator("#lyrics-genres textarea")
    genres.fill("country acoustic guitar harmonica nostalgic male warm vocal")
    page.locator("#lyrics-tags").get_by_text("Pick tags from our list").click()
    expect(page.locator("#lyrics-tags .token span")).to_have_count(6)
    for tag in page.locator("#lyrics-tags .token span").all():
        assert tag.evaluate(LINES) <= len(tag.inner_text().split()), tag.inner_text()
    genres.fill("pop my own words")
    mood = page.locator("#lyrics-tags").get_by_label("Mood", exact=True)
    mood.click()
    page.get_by_role("option", name="dreamy", exact=True).click()
    expect(genres).to_have_value("pop dreamy my own words")
    genres.press_sequentially(" piano")
    expect(page.locator("#lyrics-tags").get_by_text("piano", exact=True)).to_be_visible()


def test_style_example_is_a_label_and_its_file_is_read(page):
    """The style tab's example is one label (not a table squeezing the lyrics); a click on it loads the reference,
    whose length the tab then shows."""
    from playwright.sync_api import expect

    try:
        page.get_by_role("tab", name="Style transfer").click()
        examples = page.locator("#style-examples")
        expect(examples.locator("table")).to_have_count(0)
        examples.get_by_text("Our synth, 0–10 s, with the").click()
        expect(page.locator("#style-info")).to_contain_text("The track is 10.0 s long")
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-style.png"), full_page=True)


def one_section_songs(page, takes: int) -> None:
    """The lyrics tab set to make `takes` takes of one section of LYRICS."""
    page.get_by_role("tab", name="Lyrics to song").click()
    page.locator("#lyrics textarea").fill(LYRICS)
    for setting, value in (("#takes-setting", str(takes)), ("#sections-setting", "1")):
        number = page.locator(f"{setting} input[type=number]")
        number.fill(value)
        number.press("Enter")


def test_two_takes_give_two_playable_players_and_keeping_one_goes_on(page):
    """Takes 2, one section: a row per take above the one-song players (hidden: take 1 is not shown twice), each with
    a mix and both stems that play and its seed; 'Keep take 2 and go on' makes section 2 of both takes from take 2's
    song: the progress text and the summary name the kept take, and its row is marked."""
    from playwright.sync_api import expect

    try:
        one_section_songs(page, takes=2)
        page.locator("#generate").click()
        progress = page.locator("#progress textarea")
        expect(progress).to_have_value(re.compile(r"^Done: 1 of 1 sections[\s\S]*2 takes, seeds 42 to 43"),
                                       timeout=120_000)
        expect(page.locator("#takes")).to_be_visible()
        expect(page.locator("#take-3")).to_be_hidden()
        expect(page.locator("#one-take")).to_be_hidden()  # take 1 is shown once: in its row
        expect(page.locator("a[href$='take2-song-1of1.npz']").first).to_be_visible()
        expect(page.locator("#take-title-2")).to_have_text("Take 2 · seed 43")
        name = page.locator("#take-row-2 .filename .stem").first
        expect(name).to_have_text("take2-song-1of1")
        assert name.evaluate(WHOLE_NAME)  # readable whole, not clipped to ".npz"
        # a take is kept between runs, not between the sections of one: the page says so, beside both
        expect(page.locator("#takes-head")).to_contain_text("To choose after each section, make 1 section a run")
        expect(page.locator("#takes-setting")).to_contain_text("make 1 section a run")
        if has_codec():
            assert playable(page, "take-1", "Take 1 · seed 42") and playable(page, "take-2", "Take 2 · seed 43")
            assert playable(page, "take-2-vocal", "Vocal stem") and playable(page, "take-2-instrumental",
                                                                              "Instrumental stem")
        page.locator("#keep-2").click()
        expect(progress).to_have_value(re.compile(r"Went on from take 2 \(seed 43\), the take you kept\."),
                                       timeout=120_000)
        expect(progress).to_have_value(re.compile(r"^Done: 2 of 2 sections[\s\S]*Went on from take 2"),
                                       timeout=120_000)
        expect(page.locator("a[href$='take2-song-2of2.npz']").first).to_be_visible()
        expect(page.locator("#take-title-2")).to_have_text("Take 2 · seed 43 · ✓ the take you kept, gone on")
        expect(page.locator("#take-title-1")).to_have_text("Take 1 · seed 42 · from take 2, the one kept")
        expect(page.locator("#seed-used textarea")).to_have_value("43")  # the kept song's seed, take 2's
        expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-takes.png"), full_page=True)


def test_history_keeps_the_songs_across_a_reload_plays_one_and_continues_another(page):
    """Three one-section songs (seeds 11, 12, 13) go into the history, newest first, with their tab and seed; after
    a reload they are still there; one plays, one gives its settings back, another is continued from its entry (the
    continuation tab gets its bundle) and the continuation becomes the newest entry."""
    from playwright.sync_api import expect

    try:
        one_section_songs(page, takes=1)
        progress, seed = page.locator("#progress textarea"), page.get_by_label("Seed", exact=True)
        for value in ("11", "12", "13"):
            seed.fill(value)
            page.locator("#generate").click()
            expect(page.locator("#generate")).to_be_disabled()
            expect(progress).to_have_value(re.compile(r"^Done: 1 of 1 sections[\s\S]*Seed " + value),
                                           timeout=120_000)
            expect(page.locator("#generate")).to_be_enabled()
            expect(page.locator("#history-0-title")).to_contain_text(f"seed {value}")
        page.reload(wait_until="domcontentloaded")
        for index, value in enumerate(("13", "12", "11")):
            expect(page.locator(f"#history-{index}-title")).to_contain_text(f"Lyrics to song · seed {value}")
            expect(page.locator(f"#history-{index}-title")).to_contain_text("Done: 1 of 1 sections")
        if has_codec():
            assert playable(page, "history-1-mix", "Song")
        seed.fill("99")
        lyrics_tab, continue_tab = (page.get_by_role("tab", name=name) for name in ("Lyrics to song",
                                                                                     "Continue a song"))
        page.get_by_role("tab", name="Style transfer").click()
        page.locator("#history-1-settings").scroll_into_view_if_needed()
        expect(lyrics_tab).not_to_be_in_viewport()  # the tabs are out of sight from the history
        page.locator("#history-1-settings").click()  # seed 12's settings back, its tab brought into view
        expect(seed).to_have_value("12")
        expect(lyrics_tab).to_be_in_viewport()
        expect(lyrics_tab).to_have_attribute("aria-selected", "true")
        page.locator("#history-2-continue").scroll_into_view_if_needed()
        expect(continue_tab).not_to_be_in_viewport()
        page.locator("#history-2-continue").click()
        expect(continue_tab).to_be_in_viewport()
        expect(page.locator("#continue-plan")).to_contain_text("Keeping 1 of 1 section")
        page.locator("#continue-lyrics textarea").fill(LYRICS)
        page.locator("#continue").click()
        expect(progress).to_have_value(re.compile(r"^Done: 2 of 2 sections"), timeout=120_000)
        expect(page.locator("#history-0-title")).to_contain_text("Continue a song · seed")
        expect(page.locator("#history-3-title")).to_contain_text("seed 11")
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-history.png"), full_page=True)
