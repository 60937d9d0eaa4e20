"""A real headless Chromium (Debian's, driven by Playwright) loads the app on tiny checkpoints, checks the lyrics
live, generates a song and finds it playable. The screenshot is kept in test-artifacts/browser.png.
"""
import re
from pathlib import Path

import pytest

from test_app import has_codec, start_app

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]
LYRICS = "[verse]\nlanterns on the river\n\n[chorus]\nrise, rise, rise\n"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

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
    lyrics, status = page.locator("#lyrics textarea"), page.locator("#lyrics-status")
    lyrics.fill("no section tags here")
    expect(status).to_contain_text("✗ Lyrics have no section tags")
    lyrics.fill(LYRICS)
    expect(status).to_contain_text("✓ 2 sections: verse, chorus")

    page.locator("#generate").click()
    expect(page.locator("#progress textarea")).to_have_value(re.compile(r"^Done: 2 of 2 sections"), timeout=120_000)
    expect(page.locator("a[href$='song-2of2.npz']").first).to_be_visible()  # the code bundle to download
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    if not has_codec():  # a token-only pipeline until the codec lands: no audio to play yet
        return
    assert playable(page, "mix", "Song")  # the <audio> plays a blob of mix-2of2.wav
    expect(page.locator("#takes")).to_be_hidden()  # one take: no take rows


def test_continue_this_song_prefills_and_extends(page):
    """After the first test's song: 'Continue this song' opens the continuation tab with the bundle and the song's
    lyrics plus an empty new section, which the live check asks to fill; filled, the song grows to 3 sections."""
    from playwright.sync_api import expect

    try:
        page.get_by_role("button", name="Continue this song →").click()
        expect(page.locator("#continue-plan")).to_contain_text("Keeping 2 of 2 sections")
        lyrics = page.locator("#continue-lyrics textarea")
        expect(lyrics).to_have_value(LYRICS + "\n[verse]\n")
        expect(page.locator("#continue-lyrics-status")).to_contain_text("✗ Section 3 [verse] is empty")
        lyrics.fill(LYRICS + "\n[outro]\nsee you tomorrow\n")
        expect(page.locator("#continue-lyrics-status")).to_contain_text("✓ 3 sections: verse, chorus, outro")
        page.locator("#continue").click()
        expect(page.locator("#progress textarea")).to_have_value(re.compile(r"^Done: 3 of 3 sections"),
                                                                 timeout=120_000)
        expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-continue.png"), full_page=True)


def test_tag_picker_writes_into_the_genre_text(page):
    """Picking a tag adds it in category order, keeping the user's own words; typing a known tag ticks it."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Lyrics to song").click()
    genres = page.locator("#lyrics-genres textarea")
    genres.fill("pop my own words")
    page.locator("#lyrics-tags").get_by_text("Pick tags from our list").click()
    mood = page.locator("#lyrics-tags").get_by_label("Mood", exact=True)
    mood.click()
    page.get_by_role("option", name="dreamy", exact=True).click()
    expect(genres).to_have_value("pop dreamy my own words")
    genres.press_sequentially(" piano")
    expect(page.locator("#lyrics-tags").get_by_text("piano", exact=True)).to_be_visible()


def test_two_takes_give_two_playable_players_and_keeping_one_goes_on(page):
    """Takes 2, one section: two take players that play, with their seeds; 'Keep take 2 and go on' makes section 2
    of both takes from take 2's song (the progress says 2 of 2 sections)."""
    from playwright.sync_api import expect

    try:
        page.get_by_role("tab", name="Lyrics to song").click()
        page.locator("#lyrics textarea").fill(LYRICS)
        for setting, value in (("#takes-setting", "2"), ("#sections-setting", "1")):
            number = page.locator(f"{setting} input[type=number]")
            number.fill(value)
            number.press("Enter")
        page.locator("#generate").click()
        progress = page.locator("#progress textarea")
        expect(progress).to_have_value(re.compile(r"^Done: 1 of 1 sections[\s\S]*2 takes, seeds 42 to 43"),
                                       timeout=120_000)
        expect(page.locator("#takes")).to_be_visible()
        expect(page.locator("#take-3")).to_be_hidden()
        expect(page.locator("a[href$='take2-song-1of1.npz']").first).to_be_visible()
        if has_codec():
            assert playable(page, "take-1", "Take 1 · seed 42") and playable(page, "take-2", "Take 2 · seed 43")
        page.locator("#keep-2").click()
        expect(progress).to_have_value(re.compile(r"^Done: 2 of 2 sections"), timeout=120_000)
        expect(page.locator("a[href$='take2-song-2of2.npz']").first).to_be_visible()
        expect(page.get_by_text("Error", exact=True)).to_have_count(0)
    finally:
        page.screenshot(path=str(ARTIFACTS / "browser-takes.png"), full_page=True)

