"""A real headless Chromium hears a song while it is made: the page's player (space/listen_player.py) receives the
first 6 s row's audio before the section is done, and every piece of every take's song by its end."""
import re

import pytest

from .helpers import has_codec, start_app
from .test_browser import CHROMIUM, CHROMIUM_ARGS, one_section_songs

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium")


def test_the_first_row_reaches_the_page_before_the_section_is_done(tmp_path_factory):
    """One section of 700 stage-1 tokens (a 6 s row and a bit), 2 takes: the player has a piece while the progress
    still shows the section under way, and by the end, per take, pieces adding up to its song (340-350 frames:
    6.8-7 s), with a button per take."""
    from playwright.sync_api import expect, sync_playwright

    from yue.config import Sampling

    if not has_codec():
        pytest.skip("rows are audio: needs the codec")
    expect.set_options(timeout=30_000)
    url, demo = start_app(tmp_path_factory.mktemp("rows"), defaults=Sampling(max_new_tokens=700,
                                                                              min_new_tokens=680))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.set_default_timeout(60_000)
                page.goto(url, wait_until="domcontentloaded")
                one_section_songs(page, takes=2)
                page.locator("#generate").click()
                player = page.locator("#listen [data-pieces], #listen[data-pieces]").first
                expect(player).to_have_attribute("data-pieces", re.compile(r"^[1-9]"), timeout=600_000)
                first = player.get_attribute("data-first-progress")
                assert first and "Section 1 of 1 done" not in first and not first.startswith("Done")
                progress = page.locator("#progress textarea")
                expect(progress).to_have_value(re.compile(r"^Done: 1 of 1 section"), timeout=600_000)
                seconds = r"(6\.[89]\d|7\.00)"
                expect(player).to_have_attribute("data-seconds", re.compile(rf"^{seconds} {seconds}$"))
                expect(page.locator("#listen .yue-take")).to_have_count(2)
            finally:
                browser.close()
    finally:
        demo.close()
