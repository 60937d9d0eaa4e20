"""The session's songs, kept in the browser: every finished or stopped song stays on the page, newest first, with its
players, bundle, seed, settings and the tab it came from, and survives a reload (Gradio's BrowserState: the
browser's localStorage, encrypted with a key of this server's launch).

The browser keeps only the entries (file paths on the server, settings, words); the audio stays on the server for
as long as two rules allow, and an entry whose files are gone says so and keeps its settings:
- `space.store.OutputStore`: a run's folder is deleted once it is OUTPUT_MAX_AGE_HOURS (6 h) old, when a later
  run starts;
- Gradio's cache (the copies it serves): `gr.Blocks(delete_cache=(3600, 6 h))` deletes files older than 6 h every
  hour, and app.py removes the app's own Gradio folder when the app exits (a restart also changes the key, so the
  browser starts a new history).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from .jobs import load_bundle
from .results import KINDS

MAX_ENTRIES = 12  # songs the browser keeps (an entry is a few kB, mostly its lyrics); the oldest goes first
TABS = {"lyrics": "Lyrics to song", "style": "Style transfer", "continue": "Continue a song", "keep": "Kept take"}
ENDED = ("Done:", "Stopped:")  # how a run's summary starts when it made something (not an error, not nothing)
# the settings "Use these settings" gives back, by the name of each shared setting, in app.py's order
SAMPLING = ("max_new_tokens", "min_new_tokens", "guidance_first", "guidance_later", "top_p", "temperature",
            "repetition_penalty")


def new_entry(made: list[dict] | None, summary: str, tab: str, now: float | None = None) -> dict | None:
    """The history entry of a run that just ended (`made`: its takes' files, `summary`: its last progress text,
    `tab`: where it was started), or None when it made nothing to keep (an error, or stopped before a section)."""
    if not made or not (summary or "").startswith(ENDED):
        return None
    try:
        _, settings = load_bundle(made[0]["bundle"])
    except ValueError:
        return None
    sampling = settings.get("sampling") or {}
    kept = (settings.get("continued_from") or {}).get("sections", 0)
    shared = {"language": settings.get("language", "en"), "sections": max(settings.get("segments", 1) - kept, 1),
              **{name: sampling[name] for name in SAMPLING if name in sampling},
              "seed": made[0]["seed"], "precision": settings.get("precision", "auto"), "takes": len(made)}
    return {"id": made[0]["bundle"], "tab": tab, "when": time.strftime("%H:%M", time.localtime(now)),
            "summary": summary.splitlines()[0], "genres": settings.get("genres", ""),
            "lyrics": settings.get("lyrics", ""), "settings": shared,
            "takes": [{key: take.get(key) for key in ("take", "seed", *KINDS)} for take in made]}


def remember(history: list | None, entry: dict | None) -> list:
    """`history` with `entry` first (once: the same song again is not added twice), at most MAX_ENTRIES."""
    history = [item for item in (history or []) if isinstance(item, dict)]
    if entry is None or any(item.get("id") == entry["id"] for item in history):
        return history
    return [entry, *history][:MAX_ENTRIES]


def files_of(entry: dict, root: Path) -> list[dict] | None:
    """The entry's takes with their files, or None when any is gone (or not one of this app's outputs under
    `root`: the browser's copy is not trusted to name server files)."""
    root = Path(root).resolve()
    for take in entry.get("takes") or []:
        for kind in KINDS:
            path = take.get(kind)
            if path is None and kind != "bundle":
                continue  # a token-only run has no audio
            if not isinstance(path, str) or not Path(path).resolve().is_relative_to(root) or not os.path.isfile(path):
                return None
    return entry.get("takes") or None


def title(entry: dict) -> str:
    """'**08:41 · Lyrics to song** · seed 42 · Done: 2 of 2 sections, 6.0 s of audio …'"""
    tab = TABS.get(entry.get("tab"), "Song")
    return f"**{entry.get('when', '')} · {tab}** · seed {entry['settings'].get('seed')} · {entry.get('summary', '')}"


def settings_line(entry: dict) -> str:
    """The settings in words: genres, sections, takes, tokens, language."""
    shared = entry["settings"]
    takes = f", {shared['takes']} takes" if shared.get("takes", 1) > 1 else ""
    return (f"*{entry.get('genres', '')}* · {shared.get('sections')} new section(s){takes}, "
            f"{shared.get('max_new_tokens')} tokens per section, {shared.get('language')}")
