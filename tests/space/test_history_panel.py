"""space/history_panel.py: the page's song history, rendered from whatever a client sends as its history: at most
history.MAX_ENTRIES entries become components, the rest and the unreadable ones are one calm line, and the render
stays within a stated bound of components and memory."""
import json

import gradio as gr
import pytest

from bench.bench_history_render import SETUP
from space import history
from tests.memory import measure

from .test_history import entry_of

# docs/bad-inputs.md: rendering any history a client sends adds at most this much to the app's peak memory
HISTORY_RENDER_MB = 16
# and at most this many components: the panel's head, the calm line, and MAX_ENTRIES entries of a few each
MOST_COMPONENTS = 2 + history.MAX_ENTRIES * 16


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """The history panel's render function of the real page (app.build_demo, no model loaded)."""
    import app

    demo = app.build_demo(lambda choice: None, output_root=tmp_path_factory.mktemp("app") / "out", tiny=True)
    (renderable,) = demo.default_config.renderables
    return renderable.fn


def rendered(render, sent) -> tuple[int, str]:
    """(components made, the Markdown text shown) when the page renders the history `sent`."""
    with gr.Blocks() as probe:
        render(sent)
    texts = [block.value for block in probe.blocks.values() if isinstance(block, gr.Markdown)]
    return len(probe.blocks), "\n".join(str(text) for text in texts)


@pytest.mark.parametrize("sent", ["hello", 5, {"a": 1}, [{"a": 1}], [{"settings": 5, "takes": "abc"}],
                                  [None, "x", 5.5, ["nested"]]])
def test_wrong_types_are_one_calm_line_not_a_traceback(render, sent):
    """Weak answer 13 and defect 2: a history of the wrong types answered with raw Python text and a traceback."""
    count, text = rendered(render, sent)
    assert "could not be read: the browser's copy was changed" in text and "No songs yet" in text
    assert "Traceback" not in text and "Error" not in text and count <= MOST_COMPONENTS


def test_twenty_thousand_entries_render_as_the_twelve_the_page_keeps(render, tmp_path):
    """Defect 2: 1 000 entries took 38.8 s, 10 001 components and ~170 MB; 20 000 came back as sent. Now the first
    MAX_ENTRIES are shown (their files only as signed) and the others are counted in one line."""
    (tmp_path / "outputs").mkdir()
    entry = entry_of(tmp_path / "outputs")
    count, text = rendered(render, [entry] * 20_000)
    assert count <= MOST_COMPONENTS and text.count("Lyrics to song") == history.MAX_ENTRIES
    assert f"{20_000 - history.MAX_ENTRIES} saved song(s) could not be read" in text


def test_rendering_any_history_raises_peak_memory_by_less_than_the_stated_bound(tmp_path):
    """20 000 entries of the longest lyrics (a 130 MB history) are rendered in a fresh process, the page already
    built (bench/bench_history_render.py's set-up): its peak RSS grows by less than HISTORY_RENDER_MB, with at most
    MOST_COMPONENTS components (the history itself is already in memory, as Gradio's request parser holds it)."""
    (tmp_path / "outputs").mkdir()
    entry = {**entry_of(tmp_path / "outputs"), "lyrics": "[verse]\n" + "la " * 1990}
    sent = tmp_path / "history.json"
    sent.write_text(json.dumps([entry] * 20_000))
    result = measure(SETUP.format(out=str(tmp_path / "app"), sent=str(sent)), "render(sent)")
    assert result["outcome"] == "returned" and result["value"] <= MOST_COMPONENTS, result
    assert result["growth_mb"] < HISTORY_RENDER_MB, result
