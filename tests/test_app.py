"""app.py: the Space launched on 127.0.0.1 with tiny checkpoints, every endpoint called with gradio_client.

Stage-1 settings stay tiny (40 tokens a section) so each call takes seconds. Audio checks run once the codec is
in the tiny checkpoints; before that the pipeline is token-only and the songs have no audio.
"""
import os
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LYRICS = "[verse]\nsmall lights on the water\n\n[chorus]\nrise and shine\n"
# The shared settings of every endpoint, tiny: 40 tokens = 20 frames = 0.4 s per section.
SMALL = dict(language="en", sections=2, max_new_tokens=40, min_new_tokens=4, guidance_first=1.5, guidance_later=1.2,
             top_p=0.93, temperature=1.0, repetition_penalty=1.1, seed=42, random_seed=False, precision="auto",
             output_format="wav")
TEST_LIMITS = dict(max_reference_seconds=12.0)  # so a 15 s upload shows the length message


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def has_codec() -> bool:
    import app

    return app.codec_available()


def start_app(tmp_root: Path, **build):
    """Write tiny checkpoints, build the demo on them and launch it on a free local port; returns (url, demo)."""
    import app
    from yue.config import Limits
    from yue.loading import ModelCache

    get_pipeline = app.pipelines(ModelCache(), app.tiny_folder(str(tmp_root / "tiny")))
    demo = app.build_demo(get_pipeline, output_root=tmp_root / "outputs", tiny=True, limits=Limits(**TEST_LIMITS),
                          **build)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    return f"http://127.0.0.1:{port}/", demo


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    url, demo = start_app(root)
    yield url, root
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False, download_files=str(server[1] / "downloads"))


def song(client, **overrides):
    return client.predict(**{"genres": "pop piano uplifting", "lyrics": LYRICS, **SMALL, **overrides},
                          api_name="/lyrics_to_song")


def app_error(call) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as error:
        call()
    return str(error.value)


def check_audio(paths, frames: int, fmt: str = "wav") -> None:
    """Real 44.1 kHz files as long as the codes (50 frames a second)."""
    import soundfile

    for path in paths:
        assert path.endswith(f".{fmt}")
        info = soundfile.info(path)
        assert info.samplerate == 44100
        assert abs(info.duration - frames / 50) < 0.05, (path, info.duration, frames)


def test_lyrics_to_song_streams_one_update_per_section(client):
    from yue.song import SongCodes

    job = client.submit(genres="pop piano uplifting", lyrics=LYRICS, **SMALL, api_name="/lyrics_to_song")
    mix, vocal, instrumental, bundle, summary, seed = job.result(timeout=120)
    texts = [update[4] for update in job.outputs()]
    assert any("Section 1 of 2 done" in t for t in texts) and any(re.search(r"stage1 \d+/40 tokens", t) for t in texts)
    assert summary.startswith("Done: 2 of 2 sections") and seed == 42
    codes, settings = SongCodes.load(bundle)
    assert len(codes.stage1.section_frames) == 2 and codes.vocal.shape == (8, codes.frames)
    assert settings["lyrics"] == LYRICS and settings["seed"] == 42 and settings["mode"] == "cot"
    if has_codec():
        check_audio([mix, vocal, instrumental], codes.frames)
    else:
        assert mix is None and "token-only" in summary


def test_random_seed_is_reported_and_saved(client):
    from yue.song import SongCodes

    *_, bundle, summary, seed = song(client, random_seed=True, sections=1)
    assert isinstance(seed, int) and f"Seed {seed}." in summary
    assert SongCodes.load(bundle)[1]["seed"] == seed


@pytest.mark.parametrize("overrides, message", [
    (dict(lyrics="no tags at all"), "Lyrics have no section tags"),
    (dict(lyrics="[verse]\n\n[chorus]\nla\n"), "Section 1 [verse] is empty"),
    (dict(lyrics="[verse]\n" + "la " * 3000), "the limit is 6000"),
    (dict(genres=" "), "Genre tags are empty"),
    (dict(sections=3), "segments is 3 but the lyrics have only 2 sections"),
    (dict(min_new_tokens=60), "min_new_tokens must be between 0 and max_new_tokens"),
    (dict(top_p=0), "Top-p (top_p) must be a number from 0.05 to 1; got 0"),
    (dict(output_format="ogg"), "output_format must be one of wav, flac, mp3; got 'ogg'"),
    # raw API values: None or text for a slider, a fraction for a whole number (NaN: test_serving.py)
    (dict(sections=None), "sections is empty: enter a whole number from 1 to 12"),
    (dict(temperature="hot"), "Temperature (temperature) must be a number from 0.1 to 2; got 'hot' (str)"),
    (dict(max_new_tokens=None), "Max tokens per section (max_new_tokens) is empty"),
    (dict(guidance_first=5), "Guidance, first section (guidance_first) must be a number from 1 to 3; got 5"),
    (dict(seed=1.5), "got 1.5 (fractions are not rounded)"),
    (dict(random_seed=None), "random_seed must be true or false; got None"),
    (dict(language=None), "language must be one of en, zh, jp-kr; got None"),
    (dict(takes=5), "takes must be a whole number from 1 to 4; got 5"),
    (dict(takes=0), "takes must be a whole number from 1 to 4; got 0"),
    (dict(takes="two"), "takes must be a whole number from 1 to 4; got 'two' (str)"),
    (dict(takes=None), "takes is empty: enter a whole number from 1 to 4"),
])
def test_bad_input_gives_a_clear_message(client, overrides, message):
    assert message in app_error(lambda: song(client, **overrides))


def every_take(client) -> list[dict]:
    """/takes of this client's last run: each take's number, seed and local files (by the names in its table)."""
    files, table = client.predict(api_name="/takes")
    local = {Path(path).name: path for path in files}
    assert len(local) == len(files)  # every file name is its own
    return [{key: local[value] if key in ("mix", "vocal", "instrumental", "bundle") and value else value
             for key, value in row.items()} for row in table]


def same_audio(first: str, second: str) -> bool:
    import soundfile

    return np.array_equal(soundfile.read(first)[0], soundfile.read(second)[0])


def test_two_takes_are_two_songs_and_take_2_is_the_one_take_song_of_the_next_seed(client):
    """takes=2, seed 20: the six outputs are take 1's; /takes gives both takes' files with seeds 20 and 21, two
    different songs; take 2's mix and codes equal those of a one-take run with seed 21."""
    from yue.song import SongCodes

    mix, vocal, instrumental, bundle, summary, seed = song(client, takes=2, seed=20)
    takes = every_take(client)
    assert seed == 20 and "2 takes, seeds 20 to 21" in summary
    assert [(take["take"], take["seed"]) for take in takes] == [(1, 20), (2, 21)]
    first, second = (SongCodes.load(take["bundle"]) for take in takes)
    assert (first[1]["take"], first[1]["seed"], second[1]["take"], second[1]["seed"]) == (1, 20, 2, 21)
    np.testing.assert_array_equal(first[0].vocal, SongCodes.load(bundle)[0].vocal)  # the outputs are take 1
    assert not np.array_equal(first[0].stage1.vocal, second[0].stage1.vocal)
    alone = song(client, seed=21)
    np.testing.assert_array_equal(second[0].vocal, SongCodes.load(alone[3])[0].vocal)
    np.testing.assert_array_equal(second[0].instrumental, SongCodes.load(alone[3])[0].instrumental)
    if has_codec():
        check_audio([takes[1][kind] for kind in ("mix", "vocal", "instrumental")], second[0].frames)
        assert same_audio(takes[1]["mix"], alone[0]) and same_audio(takes[0]["mix"], mix)
        assert not same_audio(takes[0]["mix"], takes[1]["mix"])
    else:
        assert takes[1]["mix"] is None


def test_keep_a_take_and_go_on_continues_every_take_from_it_exactly(client):
    """The best-of-N step as an API client does it: after section 1 of 2 takes (seed 30), take 2's bundle is
    continued with takes=2 and seed 30. Both takes start with take 2's section 1, take 2 goes on exactly as in a
    2-section run, and the new bundles record the kept take and its seed; take 2's bundle continued alone with its
    own seed (31) makes the same song."""
    from gradio_client import handle_file
    from yue.song import SongCodes

    song(client, takes=2, seed=30, sections=1)
    kept = every_take(client)[1]["bundle"]
    song(client, takes=2, seed=30)
    whole = SongCodes.load(every_take(client)[1]["bundle"])[0]
    common = dict(vocal_stem=None, instrumental_stem=None, continue_from="end", keep_sections=1, cut_seconds=0,
                  genres="pop piano uplifting", lyrics=LYRICS, **{**SMALL, "sections": 1})
    *_, summary, _ = client.predict(bundle=handle_file(kept), **{**common, "seed": 30, "takes": 2},
                                    api_name="/continue_song")
    assert summary.startswith("Done: 2 of 2")
    went_on = [SongCodes.load(take["bundle"]) for take in every_take(client)]
    first = SongCodes.load(kept)[0].frames
    for codes, settings in went_on:
        np.testing.assert_array_equal(codes.stage1.vocal[:first], SongCodes.load(kept)[0].stage1.vocal)
        assert settings["continued_from"] == {"take": 2, "seed": 31, "sections": 1}
    np.testing.assert_array_equal(went_on[1][0].vocal, whole.vocal)
    *_, alone, _, _ = client.predict(bundle=handle_file(kept), **{**common, "seed": 31}, api_name="/continue_song")
    np.testing.assert_array_equal(SongCodes.load(alone)[0].vocal, whole.vocal)


def test_takes_of_a_client_without_a_run_are_empty(server):
    from gradio_client import Client

    assert Client(server[0], verbose=False).predict(api_name="/takes") == ([], [])


def test_a_seed_outside_the_range_is_refused_and_the_client_stays_usable(client):
    """2**64 and 1e30 get the documented range (not a serialisation TypeError); the same client's next call works,
    and the top of the range is used and reported as given."""
    from yue.checks import SEED_MAX

    for seed in (2**64, 1e30, -1):
        assert "seed must be a whole number from 0 to 9007199254740991 (2**53 - 1)" in app_error(
            lambda: song(client, seed=seed, sections=1))
    *_, summary, seed = song(client, seed=SEED_MAX, sections=1)
    assert seed == SEED_MAX and f"Seed {SEED_MAX}." in summary


def test_too_few_raw_inputs_get_a_message_not_a_null_error(server):
    """A raw HTTP call with 3 of the 16 inputs: the error event carries Gradio's message (show_error is on)."""
    import httpx

    url = server[0] + "gradio_api/call/lyrics_to_song"
    event = httpx.post(url, json={"data": ["pop", LYRICS, "en"]}, timeout=30).json()["event_id"]
    stream = httpx.get(f"{url}/{event}", timeout=60).text
    assert "event: error" in stream and "didn't receive enough input values (needed: 16, got: 3)" in stream


def test_continue_regenerates_exactly_and_extends(client):
    """Keeping section 1 and regenerating section 2 with the same seed gives the same song (seeds are per section);
    continuing from the end adds a third section after the two kept ones."""
    from gradio_client import handle_file
    from yue.song import SongCodes

    first = SongCodes.load(song(client, seed=7)[3])[0]
    common = dict(vocal_stem=None, instrumental_stem=None, genres="pop piano uplifting", cut_seconds=0,
                  **{**SMALL, "seed": 7, "sections": 1})
    *_, bundle, summary, _ = client.predict(bundle=handle_file(song(client, seed=7)[3]), continue_from="section",
                                            keep_sections=1, lyrics=LYRICS, **common, api_name="/continue_song")
    again = SongCodes.load(bundle)[0]
    assert summary.startswith("Done: 2 of 2")
    np.testing.assert_array_equal(again.stage1.vocal, first.stage1.vocal)
    np.testing.assert_array_equal(again.vocal, first.vocal)

    longer = LYRICS + "\n[outro]\ngoodnight\n"
    *_, bundle, summary, _ = client.predict(bundle=handle_file(bundle), continue_from="end", keep_sections=1,
                                            lyrics=longer, **common, api_name="/continue_song")
    extended, settings = SongCodes.load(bundle)
    assert summary.startswith("Done: 3 of 3") and settings["lyrics"] == longer
    assert extended.stage1.labels == ("verse", "chorus", "outro")
    np.testing.assert_array_equal(extended.stage1.vocal[:first.frames], first.stage1.vocal)


def test_continue_cut_at_a_time_keeps_the_part_before_it(client):
    from gradio_client import handle_file
    from yue.song import SongCodes

    bundle = song(client, seed=3)[3]
    whole = SongCodes.load(bundle)[0]
    cut_s = (whole.stage1.section_frames[0] + 2) / 50  # two frames into section 2
    *_, out, summary, _ = client.predict(
        bundle=handle_file(bundle), vocal_stem=None, instrumental_stem=None, continue_from="time", keep_sections=1,
        cut_seconds=cut_s, genres="pop", lyrics=LYRICS + "\n[outro]\nbye\n", **{**SMALL, "sections": 1},
        api_name="/continue_song")
    made = SongCodes.load(out)[0]
    assert made.stage1.section_frames[:2] == (whole.stage1.section_frames[0], 2)
    np.testing.assert_array_equal(made.stage1.vocal[:whole.stage1.section_frames[0] + 2],
                                  whole.stage1.vocal[:whole.stage1.section_frames[0] + 2])


def test_continue_without_a_song_or_with_bad_input(client, server):
    from gradio_client import handle_file

    base = dict(vocal_stem=None, instrumental_stem=None, continue_from="end", keep_sections=1, cut_seconds=0,
                genres="pop", lyrics=LYRICS, **SMALL)
    call = lambda **kw: client.predict(**{**base, **kw}, api_name="/continue_song")
    # A fresh client has a fresh session: no last song to fall back on.
    from gradio_client import Client

    fresh = Client(server[0], verbose=False)
    assert "Nothing to continue" in app_error(lambda: fresh.predict(bundle=None, **base, api_name="/continue_song"))
    junk = server[1] / "junk.npz"
    junk.write_bytes(b"not a zip")
    assert "is not a song bundle" in app_error(lambda: call(bundle=handle_file(str(junk))))
    bundle = handle_file(song(client)[3])
    assert "cannot keep 5" in app_error(lambda: call(bundle=bundle, continue_from="section", keep_sections=5))
    assert "sections to keep (keep_sections) must be a whole number; got 'two'" in app_error(
        lambda: call(bundle=bundle, continue_from="section", keep_sections="two"))
    assert "continue_from must be one of end, section, time; got None" in app_error(
        lambda: call(bundle=bundle, continue_from=None))
    assert "between 0 and" in app_error(lambda: call(bundle=bundle, continue_from="time", cut_seconds=99))
    assert "must list those sections followed by at least one new section" in app_error(lambda: call(bundle=bundle))


def test_stop_keeps_the_sections_already_made(client):
    from yue.song import SongCodes

    slow = {**SMALL, "sections": 3, "max_new_tokens": 600, "min_new_tokens": 600}
    lyrics = LYRICS + "\n[outro]\nbye\n"
    job = client.submit(genres="pop", lyrics=lyrics, **slow, api_name="/lyrics_to_song")
    deadline = time.time() + 120
    while not any("Section 1 of 3 done" in update[4] for update in job.outputs()):
        assert time.time() < deadline and not job.done(), "the first section did not finish"
        time.sleep(0.1)
    client.predict(api_name="/stop")  # same client = same session as the running job
    *_, bundle, summary, _ = job.result(timeout=60)
    assert summary.startswith("Stopped: ") and "of 3 sections" in summary
    kept = len(SongCodes.load(bundle)[0].stage1.section_frames)
    assert 1 <= kept < 3 and summary.startswith(f"Stopped: {kept} of 3")


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


def test_style_transfer(client, server):
    from gradio_client import handle_file

    reference = server[1] / "outputs" / "reference-example.wav"  # written by build_demo from examples/
    base = dict(reference_vocal=None, reference_instrumental=None, start_s=0, end_s=8, genres="pop",
                lyrics=LYRICS, **SMALL)
    call = lambda **kw: client.predict(**{**base, **kw}, api_name="/style_transfer")
    assert "Upload a reference" in app_error(lambda: call(reference_mix=None))
    assert "window start (start_s) is empty" in app_error(lambda: call(reference_mix=None, start_s=None))
    assert "window end (end_s) must be a number >= 0; got 'end'" in app_error(lambda: call(end_s="end"))
    assert "must end after it starts" in app_error(lambda: call(reference_mix=handle_file(str(reference)), end_s=0))
    long = server[1] / "long.wav"
    import soundfile

    soundfile.write(long, np.zeros(15 * 8000, dtype=np.float32), 8000)
    assert "is 15 s long; the limit is 12 s" in app_error(lambda: call(reference_mix=handle_file(str(long))))
    if not has_codec():
        assert "without the audio codec" in app_error(lambda: call(reference_mix=handle_file(str(reference))))
        return
    from yue.song import SongCodes

    nan = server[1] / "nan.wav"
    soundfile.write(nan, np.where(np.arange(8000) % 100 == 0, np.nan, 0.2), 8000, subtype="FLOAT")
    assert "nan.wav holds 80 NaN or infinite samples" in app_error(lambda: call(reference_mix=handle_file(str(nan))))
    mix, vocal, instrumental, bundle, summary, _ = call(reference_mix=handle_file(str(reference)), takes=2)
    codes, settings = SongCodes.load(bundle)
    assert summary.startswith("Done: 2 of 2") and settings["mode"] == "icl" and settings["reference"]["end_s"] == 8
    check_audio([mix, vocal, instrumental], codes.frames)
    takes = every_take(client)  # both takes in this style, with their own seeds
    assert [(take["take"], take["seed"], SongCodes.load(take["bundle"])[1]["mode"]) for take in takes] == [
        (1, 42, "icl"), (2, 43, "icl")]


@pytest.mark.skipif("not has_codec()", reason="encoding stems needs the codec (yue/codec_loading.py)")
def test_continue_from_uploaded_stems(client, server):
    from gradio_client import handle_file
    from yue.song import SongCodes

    reference = handle_file(str(server[1] / "outputs" / "reference-example.wav"))
    mix, *_, bundle, summary, _ = client.predict(
        bundle=None, vocal_stem=reference, instrumental_stem=reference, continue_from="end", keep_sections=1,
        cut_seconds=0, genres="pop", lyrics=LYRICS, **{**SMALL, "sections": 1, "output_format": "flac"},
        api_name="/continue_song")
    codes = SongCodes.load(bundle)[0]
    assert summary.startswith("Done: 2 of 2") and codes.stage1.section_frames[0] == 500  # the 10 s stems
    check_audio([mix], codes.frames, "flac")


# -- pieces without a server --------------------------------------------------------------------------------------

def test_output_folders_are_private_and_old_ones_are_deleted(tmp_path):
    import app

    store = app.OutputStore(tmp_path / "out", max_age_hours=1)
    old = store.new_folder()
    assert stat.S_IMODE(old.stat().st_mode) == 0o700 and stat.S_IMODE(store.root.stat().st_mode) == 0o700
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    new = store.new_folder()
    assert new.is_dir() and not old.exists()


def test_gpu_duration_grows_with_the_token_budget_and_is_capped():
    import app
    from yue.config import Sampling
    from yue.song import SongRequest

    seconds = lambda tokens, precision="auto": app.section_gpu_seconds(
        app.ModelChoice(precision=precision), SongRequest("pop", LYRICS, sampling=Sampling(max_new_tokens=tokens)),
        "STOP")
    assert seconds(40) < seconds(3000) < app.GPU_MAX_SECONDS == seconds(8000, "int8")


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


def test_dropped_lines_are_in_the_api_summary(client):
    """The song is made from the official sections, and the summary says which lines were dropped and why."""
    *_, summary, _ = song(client, lyrics=LYRICS + "\n[Verse 2]\nup we go\n", sections=1)
    assert summary.startswith("Done: 1 of 1") and "⚠ Line 7: '[Verse 2]' is not a section tag" in summary


def test_import_does_no_work(tmp_path):
    """Importing app.py defines things only: no folders, no models, no server, no argument parsing."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import sys, app; assert 'spaces' not in sys.modules; print('ok')"
    result = subprocess.run([sys.executable, "-c", code, "--port", "bogus"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
    assert list(tmp_path.iterdir()) == []


def test_mcp_is_on_by_default_and_the_app_runs_without_the_extra(monkeypatch, caplog):
    """--mcp is the default (--no-mcp switches it off); without the mcp package the app still starts, without MCP,
    and the log says what to install."""
    import importlib.util

    import app

    assert app.parse_args([]).mcp is True and app.parse_args(["--no-mcp"]).mcp is False
    assert app.mcp_server(True) is (importlib.util.find_spec("mcp") is not None) and app.mcp_server(False) is False
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mcp" else find_spec(name, *a))
    assert app.mcp_server(True) is False
    assert 'MCP is off: the mcp package is missing; pip install "gradio[mcp]==6.31.*"' in caplog.text


def mcp_session(url: str, work, transport: str = "http"):
    """Runs `work(session)` in a real MCP client session (the `mcp` package) with the app's MCP server."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    async def run():
        connect = (streamable_http_client(url + "gradio_api/mcp/") if transport == "http"
                   else sse_client(url + "gradio_api/mcp/sse"))
        async with connect as streams:
            async with ClientSession(*streams[:2]) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(run())


def test_mcp_lists_the_three_endpoints_as_described_tools(server):
    """Over streamable HTTP and SSE the tools are the three endpoints (not /stop or the page's helpers), each with
    a description and every parameter described, so an assistant can call them without the API page."""

    async def tools(session):
        return (await session.list_tools()).tools

    for transport in ("http", "sse"):
        listed = {tool.name: tool for tool in mcp_session(server[0], tools, transport)}
        assert sorted(listed) == ["continue_song", "lyrics_to_song", "style_transfer"]
    assert listed["lyrics_to_song"].description.startswith("Make a song (sung vocals and accompaniment")
    assert "give it to continue_song to continue this song exactly" in listed["lyrics_to_song"].description
    for tool in listed.values():
        properties = tool.inputSchema["properties"]
        assert {"genres", "lyrics", "sections", "seed"} <= set(properties)
        assert not [name for name, schema in properties.items() if not schema.get("description")], tool.name
    seed = listed["continue_song"].inputSchema["properties"]["seed"]["description"]
    assert seed.endswith("used as given unless random_seed is true (the seed is returned).")


def test_mcp_client_makes_a_song_and_continues_it(server):
    """A real MCP client calls lyrics_to_song (with progress notifications: one content per output, files as URLs)
    and continues the song from its bundle with continue_song (without progress: Gradio answers with one text
    holding every output); the bundle goes as a data: URI, since Gradio fetches no URL of a private address such as
    127.0.0.1. A bad input comes back as the app's message."""
    import base64
    from yue.song import SongCodes

    progress = []

    async def on_progress(done, total, message):
        progress.append(message)

    async def work(session):
        made = await session.call_tool("lyrics_to_song", {"genres": "pop piano", "lyrics": LYRICS, **SMALL},
                                       progress_callback=on_progress)
        bundle = download(made.content[3].text, server[1] / "mcp-first.npz")
        data = "data:application/zip;base64," + base64.b64encode(bundle.read_bytes()).decode()
        longer = await session.call_tool("continue_song", {
            "bundle": data, "genres": "pop piano", "lyrics": LYRICS + "\n[outro]\nbye\n",
            **{**SMALL, "sections": 1}})
        refused = await session.call_tool("lyrics_to_song", {"genres": "pop", "lyrics": "[verse]\nla <EOA>\n"})
        return made, longer, refused

    made, longer, refused = mcp_session(server[0], work)
    assert not made.isError and [c.text.rsplit(".", 1)[-1] for c in made.content[:4]] == ["wav", "wav", "wav", "npz"]
    assert made.content[3].text.startswith(server[0] + "gradio_api/file=")
    assert made.content[4].text.startswith("Done: 2 of 2 sections") and made.content[5].text == "42"
    assert "Processing" in progress
    assert not longer.isError and "'Done: 3 of 3 sections" in longer.content[0].text, longer.content
    first = SongCodes.load(server[1] / "mcp-first.npz")[0]
    url = re.search(r"'url': '([^']+/song-3of3\.npz)'", longer.content[0].text).group(1)
    continued = SongCodes.load(download(url, server[1] / "mcp-longer.npz"))[0]
    assert continued.stage1.section_frames[:2] == first.stage1.section_frames  # the two sections kept as made
    assert refused.isError and "Lyrics hold '<EOA>' on line 2" in refused.content[0].text


def download(url: str, path: Path) -> Path:
    import httpx

    path.write_bytes(httpx.get(url).raise_for_status().content)
    return path


def test_gpu_wrapper_is_a_no_op_off_zerogpu():
    import app

    def work(choice, request, stop_file):
        yield 1

    assert app.gpu(app.section_gpu_seconds)(work) is work


class FakePipeline:
    """Streams one song after `cancel()` has been asked `steps` times, like a section that takes that many tokens."""

    def __init__(self, steps: int):
        self.steps, self.asked = steps, 0

    def stream_takes(self, request, on_progress, cancel, previous=None, render_states=None):
        from yue.song import Progress
        from yue.stage1 import Cancelled

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
    time.sleep(0.2)
    asked = pipeline.asked
    time.sleep(0.2)
    assert pipeline.asked == asked < 100
