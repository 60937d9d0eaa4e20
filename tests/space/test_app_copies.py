"""Two copies of the app (`python app.py`, real processes) on one machine: one stopping must not break the other.

Gradio names a cached file by its content, so by default every copy keeps the built-in style example at the same
path under <tmp>/gradio, and a copy that stopped deleted it under the feet of one still running. Each copy now has
its own Gradio folder, which it removes when it stops.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests import ROOT, WARNING_LINE
from .helpers import LYRICS, SMALL, free_port, has_codec


def start_copy(tiny: Path, temp: Path, port: int, log: Path, mcp: bool = False) -> subprocess.Popen:
    # one temp dir for both (where they used to collide); faulthandler: a copy that does not stop dumps its threads
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONFAULTHANDLER": "1"}
    env.pop("GRADIO_TEMP_DIR", None)
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "app.py", "--tiny", str(tiny), "--port", str(port),
                                 "--mcp" if mcp else "--no-mcp"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def exit_code(copy: subprocess.Popen, log: Path, timeout: float = 120) -> int:
    """The copy's exit status once it has stopped; one still running after `timeout` s is aborted (faulthandler
    writes every thread's stack to its log) and the log's end says where it hung."""
    try:
        return copy.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        copy.send_signal(signal.SIGABRT)
        copy.wait(timeout=30)
        raise AssertionError(f"the copy did not stop within {timeout} s: {log.read_text()[-6000:]}") from None


def wait_until_up(url: str, copy: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert copy.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise AssertionError(f"the app did not start: {log.read_text()[-3000:]}")


def style_transfer_events(url: str, reference: dict) -> str:
    """/style_transfer called as the page calls it after a click on the example: with the example's file as the
    copy's cache holds it (gradio_client would upload a fresh copy of the file instead). The event stream's text."""
    data = [reference, None, None, 0, 10, "pop", LYRICS, *{**SMALL, "sections": 1}.values(), 1, True]  # takes, listen
    call = url + "gradio_api/call/style_transfer"
    event = httpx.post(call, json={"data": data}, timeout=30).json()["event_id"]
    return httpx.get(f"{call}/{event}", timeout=300).text


def test_a_copy_that_stops_leaves_the_style_example_of_another_working(tmp_path):
    """Two copies share a temp dir; each makes its own Gradio folder in it. The second stops (Ctrl-C) and removes
    its folder; the first still has its style example (what a click on it puts in the reference field, fetched
    with gradio_client) and makes a song from it; stopped with SIGTERM, it removes its folder too."""
    import app
    from gradio_client import Client

    tiny, temp = app.tiny_folder(str(tmp_path / "tiny")), tmp_path / "tmp"
    temp.mkdir()
    ports = [free_port(), free_port()]
    logs = [tmp_path / f"copy{index}.log" for index in range(2)]
    # the first as the README starts it (MCP on: its console is checked for warnings below), the second without
    copies = [start_copy(tiny, temp, port, log, mcp=index == 0) for index, (port, log) in enumerate(zip(ports, logs))]
    urls = [f"http://127.0.0.1:{port}/" for port in ports]
    try:
        for url, copy, log in zip(urls, copies, logs):
            wait_until_up(url, copy, log)
        assert len(list(temp.glob("yue-gradio-*"))) == 2
        started = logs[0].read_text()  # weak answer 14: torchao's start-up lines stay off the console
        assert not [line for line in started.splitlines() if "Failed to load" in line or "Enum subclass" in line], \
            started[-3000:]
        # issue 25: no warning of a library at all (Python's "...Warning:", a logger's "W1204 ..." or "WARNING"),
        # and the app says which mode it runs
        assert not [line for line in started.splitlines() if WARNING_LINE.search(line)], started[-3000:]
        assert f"TINY OFFLINE MODE: random checkpoints in {tiny}" in started, started[-3000:]
        copies[1].send_signal(signal.SIGINT)
        assert exit_code(copies[1], logs[1]) == 0, logs[1].read_text()[-3000:]
        assert len(list(temp.glob("yue-gradio-*"))) == 1  # the stopped copy removed its own folder, only that

        clicked = Client(urls[0], verbose=False, download_files=False).predict(0, api_name="/style_example")[0]
        reference = clicked["value"]
        assert Path(reference["path"]).is_file() and reference["orig_name"] == "reference-example.wav"
        stream = style_transfer_events(urls[0], reference)
        if not has_codec():  # a token-only pipeline refuses references, but the file itself was found
            assert "without the audio codec" in stream and "no longer on the server" not in stream, stream[-2000:]
            return
        assert "event: complete" in stream, stream[-2000:]
        summary = json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])[4]
        assert summary.startswith("Done: 1 of 1 sections"), summary
        copies[0].send_signal(signal.SIGTERM)  # a process manager's stop: the same clean exit
        assert exit_code(copies[0], logs[0]) == 0, logs[0].read_text()[-3000:]
        assert list(temp.glob("yue-gradio-*")) == []
    finally:
        for copy in copies:
            if copy.poll() is None:
                copy.send_signal(signal.SIGINT)
                try:
                    copy.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    copy.kill()
