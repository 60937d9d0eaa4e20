"""app.py's pieces: a full queue, output folders, GPU durations, lyrics helpers, an import that does no work, the
section events' worker thread."""
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from tests import ROOT
from .helpers import LYRICS, SMALL, song, start_app


def test_a_full_queue_says_busy_try_again(tmp_path):
    """With one run working and one waiting, a third is refused at once with "Queue is full … try again"."""
    from gradio_client import Client
    from gradio_client.utils import QueueError

    url, demo = start_app(tmp_path, max_queue=1)
    try:
        slow = {**SMALL, "sections": 3, "max_new_tokens": 2000, "min_new_tokens": 2000}
        clients = [Client(url, verbose=False) for _ in range(3)]
        lyrics = LYRICS + "\n[outro]\nbye\n"
        submit = lambda c: c.submit(genres="pop", lyrics=lyrics, **slow, api_name="/lyrics_to_song")
        jobs = [submit(clients[0])]
        deadline = time.time() + 60
        while not any(update[4].startswith("Section 1/3") for update in jobs[0].outputs()):
            assert time.time() < deadline, "the first run did not start"
            time.sleep(0.1)
        jobs.append(submit(clients[1]))
        while jobs[1].status().code.name != "IN_QUEUE":
            assert time.time() < deadline, "the second run was not queued"
            time.sleep(0.1)
        with pytest.raises(QueueError, match="Queue is full! Please try again."):
            song(clients[2], sections=1)
        # no worker may go on decoding after the test: cancel the first run (gradio_client queues /stop too, and the
        # queue is full; the page's Stop button skips the queue), then stop the second once it runs
        jobs[0].cancel()
        while not jobs[1].outputs():
            assert time.time() < deadline + 60, "the second run did not start"
            time.sleep(0.1)
        clients[1].predict(api_name="/stop")
        assert jobs[1].result(timeout=60)[4].startswith("Stopped")
    finally:
        demo.close()


def test_output_folders_are_private_and_old_ones_are_deleted(tmp_path):
    import app

    store = app.OutputStore(tmp_path / "out", max_age_hours=1)
    old = store.new_folder()
    assert stat.S_IMODE(old.stat().st_mode) == 0o700 and stat.S_IMODE(store.root.stat().st_mode) == 0o700
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    new = store.new_folder()
    assert new.is_dir() and not old.exists()


def test_gpu_duration_is_the_calls_booking_up_to_zerogpus_limit():
    """app.py gives spaces.GPU the call's own booking (space/song_run.py decides it: a chunk at most)."""
    import app
    from space import gpu_time
    from space.handover import Call

    assert app.section_gpu_seconds(app.ModelChoice(), Call("folder", 0, 45)) == 45
    assert gpu_time.CHUNK_SECONDS < app.GPU_MAX_SECONDS


def test_prefill_lists_the_song_sections_then_a_new_one():
    import app

    assert app.prefill_lyrics(LYRICS, 1) == "[verse]\nsmall lights on the water\n\n[chorus]\nrise and shine\n\n"
    assert app.prefill_lyrics(LYRICS, 2).endswith("[chorus]\nrise and shine\n\n[verse]\n")


def test_lyrics_status_in_words():
    import app

    assert "✓ 2 sections: verse, chorus" in app.lyrics_status(LYRICS)
    assert "✗ Lyrics have no section tags" in app.lyrics_status("la la")
    assert "⚠ Text before the first section tag is ignored" in app.lyrics_status("intro\n" + LYRICS)
    status = app.lyrics_status(LYRICS + "\n[pre-chorus]\nup we go\n")
    assert "✓ 2 sections: verse, chorus" in status
    assert "⚠ Line 7: '[pre-chorus]' is not a section tag" in status and "Write [prechorus]" in status


def test_import_does_no_work(tmp_path):
    """Importing app.py defines things only: no folders, no models, no server, no argument parsing."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import sys, app; assert 'spaces' not in sys.modules; print('ok')"
    result = subprocess.run([sys.executable, "-c", code, "--port", "bogus"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
    assert list(tmp_path.iterdir()) == []


def test_gpu_wrapper_is_a_no_op_off_zerogpu():
    import app

    def work(choice, call):
        yield 1

    assert app.gpu(app.section_gpu_seconds)(work) is work


class FakePipeline:
    """Streams one song after `cancel()` has been asked `steps` times, like a section that takes that many tokens."""

    def __init__(self, steps: int):
        self.steps, self.asked = steps, 0

    def stream_takes(self, request, on_progress, cancel, previous=None, render_states=None, **deadline):
        from yue.song import Progress
        from yue.lm.stage1 import Cancelled

        for step in range(self.steps):
            self.asked += 1
            if cancel():
                raise Cancelled("stopped")
            on_progress(Progress("stage1", 0, 1, step + 1, self.steps))
            time.sleep(0.01)
        yield ["song"]


def test_section_events_stream_progress_then_the_song_and_stop_on_the_flag(tmp_path):
    import app
    from yue.song import Progress

    events = list(app.section_events(FakePipeline(3), None, str(tmp_path / "STOP")))
    assert [type(e) for e in events[:3]] == [Progress] * 3 and events[3:] == [["song"]]
    (tmp_path / "STOP").touch()
    assert list(app.section_events(FakePipeline(3), None, str(tmp_path / "STOP"))) == [app.STOPPED]


def test_closing_section_events_stops_the_worker(tmp_path):
    """A client that goes away closes the generator: the worker thread must stop at its next token, not run on."""
    import app

    pipeline = FakePipeline(10_000)
    events = app.section_events(pipeline, None, str(tmp_path / "STOP"))
    next(events)
    events.close()
    # stopped = no new token for 0.5 s (a token takes 10 ms); a busy machine may take a while to get there
    deadline, asked = time.monotonic() + 30, -1
    while pipeline.asked != asked:
        assert time.monotonic() < deadline, "the worker did not stop"
        asked = pipeline.asked
        time.sleep(0.5)
    assert asked < 1_000  # of 10_000: it stopped near where the client left, it did not run on


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"], "sees no CUDA GPU: use device cpu"),
    (["--device", "mps"], "device mps is not supported"),
    (["--tiny", "auto", "--device", "cuda"], "--tiny runs on the cpu; --device cuda would be ignored"),
])
def test_the_app_checks_its_device_at_start_up(argv, message, capsys):
    """`app.py --device cuda` on a CPU build started, then failed every request; --tiny ignored --device: both are
    refused at start-up, exit code 2, before any model, page or server."""
    import torch

    import app

    if torch.cuda.is_available() and argv == ["--device", "cuda"]:
        pytest.skip("this machine has CUDA")
    assert app.main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, environ, message", [
    (["--port", "99999"], {}, "--port must be a whole number from 1 to 65535; got 99999"),
    (["--port", "0"], {}, "--port must be a whole number from 1 to 65535; got 0"),
    ([], {"GRADIO_SERVER_PORT": "http"}, "GRADIO_SERVER_PORT must be a whole number from 1 to 65535; got 'http'"),
    ([], {"GRADIO_SERVER_PORT": "70000"}, "GRADIO_SERVER_PORT must be a whole number from 1 to 65535; got 70000"),
    (["--host", "my host!"], {}, "--host must be a host name or an address such as 127.0.0.1 or 0.0.0.0"),
    (["--threads", "100000"], {}, "--threads must be a whole number from 1 to"),
    (["--outputs", "/proc/yue-out"], {}, "--outputs /proc/yue-out: cannot write in /proc"),
    (["--tiny", "/proc/yue-tiny"], {}, "--tiny /proc/yue-tiny: cannot write in /proc"),
    ([], {"YUE_COMPILE": "yes"}, "YUE_COMPILE='yes' is not a setting here"),
])
def test_every_start_up_flag_is_checked_before_anything_starts(argv, environ, message, capsys, monkeypatch):
    """Defect 7 and weak answer 1: `app.py --port 99999` ended in an OverflowError traceback once the models and
    the page were built, and YUE_COMPILE was read only when the models loaded: each flag (and the variable standing
    in for it) is refused at start-up, exit code 2, before any model, page or server."""
    import app

    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app, "build_demo", lambda *a, **k: pytest.fail("the app was built"))
    assert app.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_stop_that_launch_swallowed_still_ends_the_app(tmp_path):
    """A Ctrl-C whose KeyboardInterrupt was caught inside launch (a library's broad except while Gradio makes its
    start-up requests) left the app serving on (a copy stopped at once did not exit within 120 s): the stop also
    sets the event main waits on, so the app closes its server and exits 0."""
    import app

    closed = []

    def swallowing(demo, *args, **kwargs):
        demo.close = lambda: closed.append(demo)
        demo.is_running = True  # as after Gradio's launch with prevent_thread_lock
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass  # swallowed

    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    argv = ["--tiny", str(tmp_path / "tiny"), "--outputs", str(tmp_path / "out"), "--threads", "1", "--no-mcp"]
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(app, "launch", swallowing)
            assert app.main(argv) == 0 and len(closed) == 1
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def test_a_stop_while_the_app_starts_ends_it_cleanly(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM after Gradio's server is up but while launch() still makes its own start-up requests ended
    the app with a KeyboardInterrupt traceback and exit code 1 (seen under load when a copy was stopped at once): it
    closes the server and exits 0, as a stop after start-up does."""
    import app

    closed = []

    def interrupted(demo, *args, **kwargs):
        demo.close = lambda: closed.append(demo)
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "launch", interrupted)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the test process keeps its own SIGTERM handler
    argv = ["--tiny", str(tmp_path / "tiny"), "--outputs", str(tmp_path / "out"), "--threads", "1", "--no-mcp"]
    try:
        code = app.main(argv)
    except KeyboardInterrupt:  # caught here: escaping, it would end the whole test run
        pytest.fail("the stop escaped app.main as a KeyboardInterrupt")
    assert code == 0 and len(closed) == 1
