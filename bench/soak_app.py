"""The app's memory over many runs, as the page makes them: `app.py --tiny` in its own process, and for each run the
page's three calls over raw HTTP (the song, the history's record of it, the history's render), a new session every
few runs; the app's RSS after each. tests/space/test_soak.py runs a short soak with a stated bound.

    python -m bench.soak_app --runs 600 --every 1          # a long soak, a new session for every run
    python -m bench.soak_app --code /tmp/old --runs 150    # another checkout's app (e.g. `git archive` of main)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
LYRICS = "[verse]\nsmall lights on the water\n\n[chorus]\nrise and shine\n"
# /lyrics_to_song's inputs after genres and lyrics: one section of two tokens (one frame), as cheap as a run gets
SETTINGS = ["en", 1, 2, 2, 1.5, 1.2, 0.93, 1.0, 1.1, 42, False, "auto", "wav", 1, True]  # ... takes, listen (the page's default)


class App:
    """`app.py --tiny` started from `code` on a free port (tiny checkpoints in `tiny`, written there if missing),
    stopped (SIGINT) on exit, also when it fails to start; `rss_mb()` its memory."""

    def __init__(self, code: Path, folder: Path, tiny: Path | None = None):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url, self.log = f"http://127.0.0.1:{port}/", open(folder / "app.log", "w")
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code)}
        self.process = subprocess.Popen(
            [sys.executable, "app.py", "--tiny", str(tiny or folder / "tiny"), "--port", str(port), "--no-mcp",
             "--outputs", str(folder / "outputs"), "--threads", "1"], cwd=code, env=env, stdout=self.log,
            stderr=subprocess.STDOUT)
        try:
            self._wait_until_up(folder / "app.log")
            self.calls = Calls(self.url)
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self, log: Path) -> None:
        deadline = time.monotonic() + 600
        while True:
            assert self.process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the app did not start"
            try:
                if httpx.get(self.url, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.5)

    def rss_mb(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc) -> None:
        self.calls.http.close()
        self.stop()


class Calls:
    """The page's events of the app at `url`, by what they do (found in its config, as the page finds them)."""

    def __init__(self, url: str):
        self.url, self.http = url, httpx.Client(timeout=300)  # one connection pool: a new one per call costs 0.1 s
        config = self.http.get(url + "config").json()
        kinds = {component["id"]: component.get("type") for component in config["components"]}
        history = next(id_ for id_, kind in kinds.items() if kind == "browserstate")
        dependencies = config["dependencies"]
        self.song = next(d["id"] for d in dependencies if d.get("api_name") == "lyrics_to_song")
        self.render = next(d["id"] for d in dependencies if [history, "change"] in map(list, d["targets"]))
        self.record = next(d["id"] for d in dependencies
                           if d["outputs"] == [history] and d["inputs"][:1] == [history] and len(d["inputs"]) == 2)

    def call(self, fn: int, data: list, session: str) -> list:
        """Join the queue as `session` and read its stream until the event completes; its output data."""
        body = {"data": data, "fn_index": fn, "session_hash": session}
        event = self.http.post(self.url + "gradio_api/queue/join", json=body).json()["event_id"]
        with self.http.stream("GET", self.url + "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                message = json.loads(line[6:]) if line.startswith("data: ") else {}
                if message.get("msg") == "process_completed" and message.get("event_id") == event:
                    assert message["success"], message
                    return message["output"]["data"]
        raise AssertionError("the stream ended before the event completed")

    def run(self, session: str, history: list, shown: bool = True) -> list:
        """One song, then (`shown`) the page's record of it in the history and the history's render; the history."""
        summary = self.call(self.song, ["pop", LYRICS, *SETTINGS], session)[4]
        if shown:
            history = self.call(self.record, [history, summary], session)[0]
            self.call(self.render, [history], session)
        return history


def soak(code: Path, runs: int, every: int, show_every: int = 1, on_run=None, tiny: Path | None = None) -> list[float]:
    """The app's RSS (MB) after each of `runs` runs, a new session (with its own history) every `every` runs, the
    history recorded and rendered after every `show_every`-th run (the page does after each)."""
    with tempfile.TemporaryDirectory() as folder, App(code, Path(folder), tiny) as app:
        rss, history, session = [], [], None
        for index in range(runs):
            if index % every == 0:
                session, history = uuid.uuid4().hex, []
            history = app.calls.run(session, history, shown=index % show_every == 0)
            rss.append(app.rss_mb())
            if on_run is not None:
                on_run(index, rss[-1])
        return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose app.py runs")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--every", type=int, default=1, help="runs per session (1: a new visitor every run)")
    parser.add_argument("--show-every", type=int, default=1, help="runs per history record and render (1: each)")
    args = parser.parse_args()
    print(f"code: {args.code}; {args.runs} runs, a new session every {args.every}\n\n| runs | app RSS | s |\n|---|---|---|")
    started = time.perf_counter()
    shown = lambda index, mb: (index + 1) % 25 == 0 and print(
        f"| {index + 1} | {mb:.0f} MB | {time.perf_counter() - started:.0f} |", flush=True)
    soak(args.code, args.runs, args.every, args.show_every, shown)


if __name__ == "__main__":
    main()
