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

import hashlib
import hmac
import json
import math
import os
import secrets
import time
from pathlib import Path

from yue import checks
from yue.config import Limits
from .jobs import LANGUAGES, PRECISIONS, load_bundle
from .results import KINDS

MAX_ENTRIES = 12  # songs the browser keeps (an entry is a few kB, mostly its lyrics); the oldest goes first
TABS = {"lyrics": "Lyrics to song", "style": "Style transfer", "continue": "Continue a song", "keep": "Kept take"}
ENDED = ("Done:", "Stopped:")  # how a run's summary starts when it made something (not an error, not nothing)
# the settings "Use these settings" gives back, by the name of each shared setting, in app.py's order
SAMPLING = ("max_new_tokens", "min_new_tokens", "guidance_first", "guidance_later", "top_p", "temperature",
            "repetition_penalty")


# What an entry holds, each field's type and its longest text: the browser's copy is checked against it before any
# work (a client may send anything: 20 000 entries, numbers for text, lone surrogates no response can carry).
TEXTS = {"id": 4096, "tab": 16, "when": 8, "summary": 1000, "genres": Limits().max_genre_chars,
         "lyrics": Limits().max_lyrics_chars, "sig": 64}
SETTINGS = {"language": LANGUAGES, "precision": PRECISIONS, "sections": int, "takes": int, "seed": int,
            "max_new_tokens": int, "min_new_tokens": int, **{name: float for name in SAMPLING[2:]}}
UNREAD = ("{count} saved song(s) could not be read: the browser's copy was changed, or comes from another version "
          "of this app. They are not shown.")


class Signer:
    """Signs the files of each entry this server makes (an HMAC with a key of this launch), so the page serves only
    files its own runs made for this browser: an entry whose files a client changed or made up shows none (a
    song's random folder name is not enough to be served it). A restart changes the key, as it does Gradio's."""

    def __init__(self, key: bytes | None = None):
        self.key = key or secrets.token_bytes(32)

    def sign(self, entry: dict) -> dict:
        return {**entry, "sig": self._mac(entry)}

    def signed(self, entry: dict) -> bool:
        return hmac.compare_digest(str(entry.get("sig", "")), self._mac(entry))

    def _mac(self, entry: dict) -> str:
        files = json.dumps([entry.get("id"), entry.get("takes")], sort_keys=True, ensure_ascii=True)
        return hmac.new(self.key, files.encode(), hashlib.sha256).hexdigest()


def readable(history) -> tuple[list[dict], int]:
    """The entries of a client's history this page can show, and how many others it sent: at most MAX_ENTRIES are
    looked at (the rest are counted, not read), each checked against TEXTS, SETTINGS and the takes' shape; settings
    the page cannot show are left out of an entry, an entry with any other problem is left out whole."""
    if not isinstance(history, list):
        return [], 0 if history is None else 1
    kept = [entry for entry in map(checked, history[:MAX_ENTRIES]) if entry is not None]
    return kept, len(history) - len(kept)


def checked(entry) -> dict | None:
    """`entry` as the page may use it (see `readable`), or None."""
    if not (isinstance(entry, dict) and all(isinstance(entry.get(key), str) and len(entry[key]) <= most and
                                            checks.is_text(entry[key]) for key, most in TEXTS.items())):
        return None
    settings, takes = entry.get("settings"), entry.get("takes")
    if not isinstance(settings, dict) or not isinstance(takes, list) or not 1 <= len(takes) <= Limits().max_takes:
        return None
    if not all(isinstance(take, dict) and _whole(take.get("take")) and _whole(take.get("seed")) and
               all(_path(take.get(kind), kind == "bundle") for kind in KINDS) for take in takes):
        return None
    shown = {key: value for key, value in settings.items() if key in SETTINGS and _setting(value, SETTINGS[key])}
    return {**{key: entry[key] for key in TEXTS}, "settings": shown,
            "takes": [{key: take.get(key) for key in ("take", "seed", *KINDS)} for take in takes]}


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= checks.SEED_MAX


def _path(value, needed: bool) -> bool:
    return (value is None and not needed) or (isinstance(value, str) and len(value) <= TEXTS["id"] and
                                              checks.is_text(value))


def _setting(value, kind) -> bool:
    if isinstance(kind, tuple):
        return value in kind
    if kind is int:
        return _whole(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


def remember(history, entry: dict | None, signer: Signer) -> list:
    """The readable entries of `history` with `entry` first, signed (once: the same song again is not added
    twice), at most MAX_ENTRIES."""
    history, _ = readable(history)
    if entry is None or any(item["id"] == entry["id"] for item in history):
        return history
    return [signer.sign(entry), *history][:MAX_ENTRIES]


def files_of(entry: dict, root: Path, signer: Signer) -> list[dict] | None:
    """The entry's takes with their files, or None when any is gone, or the entry's files are not as this server
    signed them, or one is not under `root`: the browser's copy is not trusted to name server files."""
    if not signer.signed(entry):
        return None
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
