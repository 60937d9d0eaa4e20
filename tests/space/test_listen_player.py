"""space/listen_player.py: every take's pieces reach the page's player, each marked with its take, as the .wav's
bytes (a data URL: no server path in the page), and the player's script plays each take on its own lane."""
import base64
import re

import gradio as gr
import numpy as np
import pytest

from space.listen_player import PLAYER_JS, listen_value
from space.row_audio import Heard, write_row
from yue.rates import OUTPUT_HOP
from yue.rows import RowAudio


def piece(take: int, start: int, frames: int) -> RowAudio:
    mix = np.linspace(-0.5, 0.5, frames * OUTPUT_HOP, dtype=np.float32) * (take + 1) / 4
    return RowAudio(start, frames, mix, mix, mix, low_gain=1.0, provisional=True, during=True, take=take)


def test_every_takes_piece_reaches_the_player_marked_with_its_take(tmp_path):
    """Take 1's and take 3's pieces each become a span with their take, start and frames and their own file's
    bytes; no row leaves the player as it is."""
    for take in (0, 2):
        row = write_row(tmp_path, piece(take, 100, 40))
        span = listen_value(row)
        assert isinstance(span, str) and str(tmp_path) not in span
        fields = dict(re.findall(r"data-(take|start|frames)='(\d+)'", span))
        assert fields == {"take": str(take), "start": "100", "frames": "40"}
        assert f"Take {take + 1}:" in span
        src = re.search(r"data-src='data:audio/wav;base64,([^']+)'", span).group(1)
        assert base64.b64decode(src) == open(row.path, "rb").read()
    assert isinstance(listen_value(None), type(gr.skip()))


def test_each_take_is_trimmed_on_its_own_and_keyed_apart(tmp_path):
    """A resumed call hands take 1 and take 2 frames 20-60 again after take 1 heard 0-40 and take 2 0-20: the
    player gets take 1's 40-60 and take 2's 20-60, as two pieces with different keys."""
    heard = Heard(2)
    heard.new_part(write_row(tmp_path, piece(0, 0, 40)))
    heard.new_part(write_row(tmp_path, piece(1, 0, 20)))
    parts = [heard.new_part(write_row(tmp_path, piece(take, 20, 40))) for take in (0, 1)]
    assert [(p.take, p.start, p.frames) for p in parts] == [(0, 40, 20), (1, 20, 40)]
    keys = {re.search(r"data-key='(\w+)'", listen_value(p)).group(1) for p in parts}
    assert len(keys) == 2


def test_in_chromium_each_take_plays_on_its_own_lane_and_a_button_chooses_the_take_heard(tmp_path):
    """The player's script in a real Chromium, fed take 1's and take 2's pieces as Gradio would (the element's
    content replaced by each new piece): each take counts its own seconds (0.8 + 0.4 s and 0.8 s), a button per take
    appears, take 1 is heard first, a click on take 2's button makes it the one heard, and every piece is decoded
    and queued."""
    from .test_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    from playwright.sync_api import expect, sync_playwright

    spans = [listen_value(write_row(tmp_path, piece(take, start, frames)))
             for take, start, frames in ((0, 0, 40), (1, 0, 40), (0, 40, 20))]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page()
            page.set_content("<div id='listen'></div>")
            page.evaluate(f"(() => {{ const element = document.getElementById('listen'); {PLAYER_JS} }})()")
            for span in spans:
                page.evaluate("(html) => { document.getElementById('listen').innerHTML = html; }", span)
            player = page.locator("#listen")
            expect(player).to_have_attribute("data-seconds", "1.20 0.80")
            expect(player).to_have_attribute("data-pieces", "3")
            buttons = page.locator("#listen .yue-take")
            expect(buttons).to_have_count(2)
            expect(page.locator("#listen .yue-take.chosen")).to_have_attribute("data-take", "0")
            buttons.nth(1).click()
            expect(page.locator("#listen .yue-take.chosen")).to_have_attribute("data-take", "1")
            expect(buttons.nth(1)).to_contain_text("Take 2: 0.8 s")
            expect(player).to_have_attribute("data-scheduled", "3")  # every piece decoded and queued
            assert player.get_attribute("data-error") is None
        finally:
            browser.close()
