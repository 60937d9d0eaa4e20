"""The page's song history (Gradio layer over `space.history`): a panel rendered from the browser's entries, each
with its players, bundle, seed and settings, and buttons to continue it or to use its settings again."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import gradio as gr

from .history import UNREAD, Signer, files_of, new_entry, readable, remember, settings_line, title
from .results import KINDS
from .widgets import LIGHT

GONE = ("The files of this song are no longer on the server (a song's files are kept about 6 hours, and not after "
        "the app restarts). Its settings are still here: **Use these settings** puts them back.")
LABELS = {"mix": "Song", "vocal": "Vocal stem", "instrumental": "Instrumental stem",
          "bundle": "Song file to continue later (.npz)"}


def keyed(name: str) -> dict:
    """A rendered component's id and key: Gradio keeps every component a render makes in the session's state, so
    without a key each render of the history added ~70 more (0.25 MB a render, never freed); with one, a render
    reuses the ids of the last. Nothing is carried over from the last render (preserved_by_key): each shows its
    entry."""
    return dict(elem_id=name, key=name, preserved_by_key=None)


def recorder(history: gr.BrowserState, progress: gr.Textbox, session_takes: Callable,
             signer: Signer) -> Callable[[str], dict]:
    """`record(tab)`: the event (fn, inputs, outputs, LIGHT) that adds the run that just ended on `tab` to the history
    (from the session's takes and the progress text's summary; nothing for an error or an empty stop), signed."""

    def record(tab: str) -> dict:
        def add(entries, summary: str, request: gr.Request):
            return remember(entries, new_entry(session_takes(request), summary, tab), signer)

        return dict(fn=add, inputs=[history, progress], outputs=history, **LIGHT)

    return record


def history_panel(history: gr.BrowserState, root: Path, signer: Signer, to_continue: list, after_continue: list[dict],
                  tabs: gr.Tabs, tab: gr.State, show_tabs: str, boxes: dict[str, tuple], settings: list) -> None:
    """Render the readable entries of `history` (newest first; at most history.MAX_ENTRIES, each checked, whatever a
    client sends) where this is called; an entry's files only when `signer` signed them. "Continue this one" puts
    the entry's bundle into `to_continue` ([bundle field, tabs, tab state]) and runs `after_continue` (the plan, the
    hint); "Use these settings" opens the entry's tab with its genres and lyrics (`boxes`: tab -> (genres, lyrics))
    and sets `settings` (app.py's shared settings, in the endpoints' order). Both then run `show_tabs` (JavaScript
    that scrolls the tabs into view: they are above the history, out of sight)."""
    gr.Markdown("### Your songs\nEvery song this browser made, newest first; a reload keeps them.",
                elem_id="history-head")
    targets = [tabs, tab, *(box for pair in boxes.values() for box in pair), *settings]

    def use(entry: dict) -> list:
        name = entry.get("tab") if entry.get("tab") in boxes else "lyrics"
        values = [gr.Tabs(selected=name), name]
        for key, (genres, lyrics) in boxes.items():
            values += [entry.get("genres", ""), entry.get("lyrics", "")] if key == name else [gr.skip(), gr.skip()]
        shared = entry["settings"]
        names = ("language", "sections", "max_new_tokens", "min_new_tokens", "guidance_first", "guidance_later",
                 "top_p", "temperature", "repetition_penalty", "seed")
        values += [shared.get(key, gr.skip()) for key in names]
        # random seed off (the entry's seed is the one used); the format and listening stay as the page has them
        return values + [False, shared.get("precision", gr.skip()), gr.skip(), shared.get("takes", 1), gr.skip()]

    @gr.render(inputs=history)
    def show(sent) -> None:
        entries, unread = readable(sent)  # before any work: what a client sends is checked and capped
        if unread:
            gr.Markdown(UNREAD.format(count=unread), **keyed("history-unread"))
        if not entries:
            gr.Markdown("No songs yet: the songs you make appear here.", **keyed("history-empty"))
        for index, entry in enumerate(entries):
            with gr.Column(variant="panel", elem_classes="history-entry", **keyed(f"history-{index}")):
                gr.Markdown(f"{title(entry)}\n\n{settings_line(entry)}", **keyed(f"history-{index}-title"))
                takes = files_of(entry, root, signer)
                if takes is None:
                    gr.Markdown(GONE, **keyed(f"history-{index}-gone"))
                for take in takes or []:
                    several = len(takes) > 1
                    name = f"history-{index}" + (f"-take-{take['take']}" if several else "")
                    with gr.Row(key=f"{name}-files"):
                        for kind in KINDS:
                            if take.get(kind) is None:
                                continue
                            label = f"Take {take['take']}: {LABELS[kind].lower()}" if several else LABELS[kind]
                            make = gr.File if kind == "bundle" else gr.Audio
                            extra = {} if kind == "bundle" else {"type": "filepath", "buttons": ["download"]}
                            make(take[kind], label=label, interactive=False, **keyed(f"{name}-{kind}"), **extra)
                with gr.Row(key=f"history-{index}-buttons"):
                    go_on = gr.Button("Continue this one →", size="sm", interactive=takes is not None,
                                      **keyed(f"history-{index}-continue"))
                    again = gr.Button("Use these settings", size="sm", **keyed(f"history-{index}-settings"))
                bundle = takes[0]["bundle"] if takes else None
                event = go_on.click(lambda bundle=bundle: (bundle, gr.Tabs(selected="continue"), "continue"), None,
                                    to_continue, **LIGHT)
                for step in after_continue:
                    event = event.then(**step, **LIGHT)
                event.then(None, js=show_tabs, **LIGHT)
                again.click(lambda entry=entry: use(entry), None, targets, **LIGHT).then(None, js=show_tabs, **LIGHT)
