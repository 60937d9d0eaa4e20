"""Rendering a history a client sends: seconds, components made and peak memory added, for histories of 12, 1 000
and 20 000 entries (each with 6 000 characters of lyrics), the page already built, in a fresh process each.

    python -m bench.bench_history_render                     # this checkout
    python -m bench.bench_history_render --code /tmp/old     # another checkout's code (e.g. `git archive` of main)
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tests.memory import measure

ROOT = Path(__file__).resolve().parent.parent

SETUP = """
import json
import gradio as gr, app
demo = app.build_demo(lambda choice: None, output_root={out!r}, tiny=True)
renderable = demo.default_config.renderables[0]
sent = json.loads(open({sent!r}).read())

def render(entries):
    with gr.Blocks() as probe:
        renderable.fn(entries)
    return len(probe.blocks)

render(sent[:1])  # Gradio's own first-render costs
"""


def entry(index: int) -> dict:
    """An entry as the page stores one (its files need not exist: the panel says they are gone)."""
    take = {"take": 1, "seed": index, "mix": f"/outputs/song-{index}/mix.wav", "vocal": None, "instrumental": None,
            "bundle": f"/outputs/song-{index}/song-1of1.npz"}
    return {"id": take["bundle"], "tab": "lyrics", "when": "08:41", "summary": "Done: 1 of 1 sections",
            "genres": "pop piano", "lyrics": "[verse]\n" + "la " * 1997, "sig": "0" * 64,
            "settings": {"language": "en", "sections": 1, "max_new_tokens": 300, "seed": index, "takes": 1},
            "takes": [take]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose page renders the history")
    parser.add_argument("--sizes", type=int, nargs="+", default=[12, 1000, 20_000])
    args = parser.parse_args()
    print(f"code: {args.code}\n\n| entries sent | seconds | components | peak memory added |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            sent = Path(folder) / f"history-{size}.json"
            sent.write_text(json.dumps([entry(index) for index in range(size)]))
            setup = SETUP.format(out=str(Path(folder) / "out"), sent=str(sent))
            result = measure(setup, "render(sent)", args.code)
            print(f"| {size} | {result['seconds']:.2f} | {result['value']} | {result['growth_mb']:.0f} MB |")


if __name__ == "__main__":
    main()
