"""space/serving.py without gradio and without models: GPU sizing, the section loop of every take, its calls and
their deadlines."""
import os
import re

import numpy as np
import pytest

from space import gpu_time, serving
from space.jobs import shared_settings
from space.song_progress import SongState
from space.store import OutputStore
from yue.config import Limits, Sampling
from yue.song import Progress, SongCodes, SongRequest
from yue.lm.stage1 import Cancelled

from tests import ROOT
from .helpers import LYRICS, SMALL, codes, token_only_song

# -- GPU sizing ------------------------------------------------------------------------------------------------------

def test_section_gpu_seconds_ask_spaces_for_the_booking_divided_by_its_factor(monkeypatch):
    """The duration given to spaces.GPU is the call's booking (Service.run's, else gpu_time.call_seconds of the
    work left; "auto" books as bf16) divided by spaces' duration_factor, which spaces multiplies back."""
    request = SongRequest("pop", LYRICS, sampling=Sampling(max_new_tokens=1000), takes=3)
    seconds = lambda precision, *args: serving.section_gpu_seconds(serving.ModelChoice(precision=precision), request,
                                                                   "STOP", *args)
    assert seconds("auto") == seconds("bf16") == gpu_time.call_seconds(request.sampling, "bf16", 3)
    monkeypatch.setattr(gpu_time, "duration_factor", lambda: 1.5)
    assert seconds("auto", None, None, None, 45) == 30


def test_encode_gpu_seconds_is_a_constant():
    """Encoding books the same time whatever is uploaded (at most two tracks, length already limited)."""
    assert serving.encode_gpu_seconds(serving.ModelChoice(), ["a.wav", "b.wav"]) == serving.ENCODE_GPU_SECONDS


# -- the section loop --------------------------------------------------------------------------------------------------

class FakePipeline:
    """Checks like the pipeline (one section per lyric tag) and makes each section of `frames` token-only frames
    (`frames + t` for take t), with seed 42 + t."""

    def __init__(self, frames: int = 4, stop_after: int | None = None):
        self.frames, self.stop_after, self.calls, self.previous = frames, stop_after, [], []

    def check(self, request):
        return ["verse", "chorus"], []

    def stream_takes(self, request, on_progress, cancel, previous=None, render_states=None, **deadline):
        self.calls.append(request.segments)
        self.previous.append(previous)
        if self.stop_after is not None and len(self.calls) > self.stop_after:
            raise Cancelled("stopped")
        on_progress(Progress("stage1", request.segments - 1, request.segments, 1, 1))
        done = request.segments
        yield [token_only_song(codes(*[self.frames + take] * done), done, done, 42 + take)
               for take in range(request.takes)]


def run(tmp_path, pipeline: FakePipeline, **shared) -> list:
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, **shared}))
    return list(service.run(job, "wav", "session", service.run_section))


def test_run_makes_one_call_per_section_and_writes_after_each(tmp_path):
    """Each section is its own call with segments = sections so far; files and the final summary follow."""
    pipeline = FakePipeline()
    updates = run(tmp_path, pipeline)
    assert pipeline.calls == [1, 2]
    assert updates[0] == serving.Update("Loading the models…", song=SongState(0.0, None))
    assert [u.text for u in updates if u.files] == ["Section 1 of 2 done.", "Section 2 of 2 done.",
                                                    updates[-1].text]
    assert updates[-1].text.startswith("Done: 2 of 2 sections") and updates[-1].files[3].endswith("song-2of2.npz")
    assert all(u.seed == 42 for u in updates[1:])


def test_progress_says_time_elapsed_and_the_audio_made_so_far_apart(tmp_path):
    """The progress text of a run names its step, the time left in it (estimating at first), the new sections done,
    the song's audio so far (none before the first section, 4 frames = 0.1 s after it), the time elapsed, and the
    whole song's share done and time left (estimating in the first seconds)."""
    progress = [u.text for u in run(tmp_path, FakePipeline()) if u.text.startswith("Section ") and "/" in u.text]
    assert len(progress) == 2
    first, second = (text.splitlines() for text in progress)
    assert first[0] == "Section 1/2: stage1 1/1 tokens, estimating the time left…"
    whole = r"\d+ s elapsed, estimating the time left for the song"
    assert re.fullmatch(r"0 of 2 new sections done \(([1-4]\d|[1-9])%\), no audio yet; " + whole, first[1])
    assert re.fullmatch(r"1 of 2 new sections done \(([5-9]\d)%\), the song so far is 0\.1 s of audio; " + whole,
                        second[1])


def test_run_of_takes_goes_on_from_each_takes_own_song_and_writes_every_take(tmp_path):
    """takes=2: section 2's call continues take 1 and take 2 from their own section-1 songs; every update after a
    section holds both takes' files (take<t>- names), and each bundle records its take and its own seed."""
    pipeline = FakePipeline()
    updates = run(tmp_path, pipeline, takes=2)
    first, second = pipeline.previous
    assert first is None and [song.frames for song in second] == [4, 5]  # take t's section 1 has 4 + t - 1 frames
    final = updates[-1]
    assert [take.take for take in final.takes] == [1, 2] and [take.seed for take in final.takes] == [42, 43]
    assert [os.path.basename(take.bundle) for take in final.takes] == ["take1-song-2of2.npz", "take2-song-2of2.npz"]
    settings = [SongCodes.load(take.bundle)[1] for take in final.takes]
    assert [(s["take"], s["seed"], s["takes"]) for s in settings] == [(1, 42, 2), (2, 43, 2)]
    assert final.files == final.takes[0].files and "2 takes, seeds 42 to 43" in final.text


def test_run_stopped_keeps_the_sections_made(tmp_path):
    """A run stopped in section 2 ends with the files of section 1 and a 'Stopped: 1 of 2' summary."""
    updates = run(tmp_path, FakePipeline(stop_after=1))
    assert updates[-1].text.startswith("Stopped: 1 of 2 sections") and updates[-1].files[3].endswith("song-1of2.npz")


def test_run_stopped_before_any_section_has_no_files(tmp_path):
    """Stopped in the first section: no files to show, and the summary says nothing is kept."""
    updates = run(tmp_path, FakePipeline(stop_after=0))
    assert updates[-1].files is None and updates[-1].text.startswith("Stopped before the first section")


def test_section_events_raise_the_workers_error_on_the_callers_thread(tmp_path):
    """An error inside the pipeline's stream reaches whoever iterates the events, as the same exception."""

    class Broken:
        def stream_takes(self, request, on_progress, cancel, previous=None, render_states=None, **deadline):
            raise RuntimeError("out of memory")
            yield

    with pytest.raises(RuntimeError, match="out of memory"):
        list(serving.section_events(Broken(), None, str(tmp_path / "STOP")))


def test_serving_does_not_import_gradio_or_spaces(tmp_path):
    """Only app.py imports gradio and spaces: importing space.serving loads neither and writes no file."""
    import subprocess
    import sys

    env = {**os.environ, "TMPDIR": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code = "import sys, space.serving; assert not {'gradio', 'spaces'} & set(sys.modules); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_run_on_the_tiny_pipeline_decodes_only_new_frames_per_section(tmp_path, tiny_dir):
    """Three sections of 300 frames (one whole stage-2 row each), 2 takes, every call's arguments and events
    pickled as a ZeroGPU worker's are: each call resumes each take's audio from its last song's render state, so
    a section decodes its new frames and CONTEXT_FRAMES before them (964 frames in all, where a whole re-render per
    section decodes 300 + 600 + 900), and the last song sounds as a whole render of its codes."""
    import pickle

    from yue import Pipeline
    from yue.codec.render import CONTEXT_FRAMES

    pipeline = Pipeline.tiny(tiny_dir)
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    lyrics = "[verse]\nsmall lights\n\n[chorus]\nrise and shine\n\n[outro]\ngood night\n"
    job = service.lyrics_job("pop", lyrics, shared_settings({**SMALL, "sections": 3, "max_new_tokens": 600,
                                                             "min_new_tokens": 600, "takes": 2}))
    calls, songs = [], []

    def forked_call(*args):
        args = pickle.loads(pickle.dumps(args))
        calls.append(args[4])  # the render states
        for event in service.run_section(*args):
            event = pickle.loads(pickle.dumps(event))
            if isinstance(event, list):
                songs.append(event)
            yield event

    updates = list(service.run(job, "wav", "session", forked_call))
    assert updates[-1].text.startswith("Done: 3 of 3 sections")
    assert calls[0] is None and [len(states) for states in calls[1:]] == [2, 2]  # off ZeroGPU: a call a section
    for take, song in enumerate(songs[-1]):
        assert song.codes.frames == 900
        decoded = [section[take].render_state.decoded_frames for section in songs]
        per_section = np.diff([0, *decoded]).tolist()  # the state counts frames decoded over the whole run
        assert per_section == [300, 300 + CONTEXT_FRAMES, 300 + CONTEXT_FRAMES] and decoded[-1] < 300 + 600 + 900
        mix, vocal, instrumental = pipeline.render(song.codes)
        for got, expected in ((song.mix, mix), (song.vocal, vocal), (song.instrumental, instrumental)):
            assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-5


# -- deadlines and quota ---------------------------------------------------------------------------------------------

def service_on(pipeline, tmp_path, clock=None, every: int = 1):
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits())
    if clock is not None:
        service.clock, service.check_every = clock, every
    return service


def test_a_section_in_calls_cut_at_their_deadline_is_the_song_of_uncut_calls(tmp_path, tiny_lm_dir, monkeypatch):
    """On ZeroGPU, a clock always past every call's deadline: each call makes one step (a stage-1 token or a stage-2
    frame) and hands back an Unfinished, pickled as a ZeroGPU call's results are; the sections take many calls, the
    progress says which call of how many of which section, and the songs equal those of calls that never stop."""
    import pickle

    from yue import Pipeline
    from yue.weights.loading import load_models

    monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
    pipeline = Pipeline(load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False))
    bundles, calls = [], []
    for name, clock in (("uncut", lambda: 0.0), ("cut", lambda: float("inf"))):
        service = service_on(pipeline, tmp_path / name, clock)
        job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 16, "takes": 2}))
        count = [0]

        def forked_call(*args):
            count[0] += 1
            for event in service.run_section(*pickle.loads(pickle.dumps(args))):
                yield pickle.loads(pickle.dumps(event))

        updates = list(service.run(job, "wav", "session", forked_call))
        bundles.append([SongCodes.load(take.bundle)[0] for take in updates[-1].takes])
        calls.append((count[0], [u.text for u in updates]))
    (uncut_calls, _), (cut_calls, texts) = calls
    assert uncut_calls == 2 and cut_calls > 2 * 16
    assert any(re.search(r"\nGPU call 3 of \d+ of section 2$", text) for text in texts)
    for cut, uncut in zip(*reversed(bundles)):
        np.testing.assert_array_equal(cut.stage1.vocal, uncut.stage1.vocal)
        np.testing.assert_array_equal(cut.vocal, uncut.vocal)
        np.testing.assert_array_equal(cut.instrumental, uncut.instrumental)


def test_a_refused_quota_keeps_the_finished_sections_and_says_how_to_go_on(tmp_path):
    """ZeroGPU refuses section 2's call for quota (spaces' words): the run ends with section 1's files, and the text
    says how much is finished and that the bundle continues it later; refused at once, it says nothing is kept."""
    pipeline = FakePipeline()

    def refusing(after: int):
        calls = []

        def run_section(*args):
            calls.append(1)
            if len(calls) > after:
                raise RuntimeError("You have exceeded your free ZeroGPU quota (60s requested vs. 20s left). "
                                   "Try again in 3:10:00.")
            yield from service.run_section(*args)

        return run_section

    service = service_on(pipeline, tmp_path)
    job = service.lyrics_job("pop", LYRICS, shared_settings(SMALL))
    last = list(service.run(job, "wav", "session", refusing(1)))[-1]
    assert last.text.startswith("ZeroGPU refused the next GPU call: You have exceeded your free ZeroGPU quota")
    assert "1 of 2 sections are finished (0 s of audio) and kept: download the song bundle" in last.text
    assert last.files[3].endswith("song-1of2.npz") and os.path.isfile(last.files[3])
    first = list(service.run(job, "wav", "session", refusing(0)))[-1]
    assert "nothing to keep" in first.text and first.files is None


def test_on_zero_gpu_the_page_says_how_many_gpu_minutes_the_song_uses(tmp_path, monkeypatch):
    """Before the first call, on ZeroGPU only: about the planned bookings of every new section, in minutes."""
    service = service_on(FakePipeline(), tmp_path)
    job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 3000}))
    assert not any("GPU-minutes" in u.text for u in service.run(job, "wav", "session", service.run_section))
    monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
    minutes = gpu_time.song_seconds(Sampling(max_new_tokens=3000, min_new_tokens=4), "bf16", 1, 2) / 60
    texts = [u.text for u in service.run(job, "wav", "session", service.run_section)]
    assert texts[1] == (f"Loading the models… This song will use about {minutes:.0f} GPU-minutes of your ZeroGPU "
                        "quota.")
