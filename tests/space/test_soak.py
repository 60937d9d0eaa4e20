"""The app's memory over 200 tiny runs as the page makes them (bench/soak_app.py): a new visitor (session) every
run, the history recorded and rendered after every fourth, the app in its own process. Gradio kept every session's
state (10 000 sessions by default) and every component of every history render (~0.25 MB a render, never freed):
the app now keeps the state of the SESSIONS_KEPT sessions used last and renders its history with keyed
components, so a render reuses the last one's."""
import uuid

import httpx

from bench.soak_app import soak
from space.store import SESSIONS_KEPT, Recent
from tests import ROOT

from .helpers import start_app

# docs/bad-inputs.md: after its first 40 runs (models, caches, Gradio's first renders), 160 more runs by 160 new
# visitors raise the app's RSS by at most this much (measured 60-100 MB on a busy 2-core machine, most of it the
# state of the 128 sessions kept)
SOAK_GROWTH_MB = 150


def test_two_hundred_runs_hold_the_apps_memory_within_the_stated_bound(tiny_dir):
    """Weak answer 15: the app went from 521 MB to 1 660 MB over ~150 runs and renders, and gave nothing back."""
    rss = soak(ROOT, runs=200, every=1, show_every=4, tiny=tiny_dir)
    warm, most = rss[39], max(rss[40:])
    assert most - warm < SOAK_GROWTH_MB, f"RSS {warm:.0f} MB after 40 runs, up to {most:.0f} MB after 200"


def test_the_app_keeps_the_state_of_the_last_sessions_only(tmp_path):
    """A session's state costs the app ~0.7 MB (Gradio's copy of the page's config, its rendered history): after
    SESSIONS_KEPT + 20 visitors (each one call of /takes), SESSIONS_KEPT states are kept, the newest."""
    url, demo = start_app(tmp_path)
    try:
        takes = next(dependency["id"] for dependency in httpx.get(url + "config").json()["dependencies"]
                     if dependency.get("api_name") == "takes")
        sessions = [uuid.uuid4().hex for _ in range(SESSIONS_KEPT + 20)]
        with httpx.Client(timeout=60) as http:
            for session in sessions:
                body = {"data": [], "fn_index": takes, "session_hash": session}
                assert http.post(url + "gradio_api/run/predict", json=body).status_code == 200
        assert list(demo.state_holder.session_data) == sessions[-SESSIONS_KEPT:]
    finally:
        demo.close()


def test_recent_keeps_the_newest_keys():
    """Studio's record of each session's last run (for /takes and Keep take) keeps the sessions set last."""
    recent = Recent(2)
    for key in "abc":
        recent[key] = key.upper()
    recent["b"] = "B2"
    assert list(recent.items()) == [("c", "C"), ("b", "B2")]
