"""space/serving.py's GPU calls without gradio: calls cut at their deadline, a killed call tried again, a refused
quota, what each call books (a model switch, listening) and what the page says of it."""
import os
import re

import numpy as np

from space import gpu_time, serving
from space.jobs import shared_settings
from space.store import OutputStore
from yue.config import Limits, Sampling
from yue.song import SongCodes

from .helpers import LYRICS, SMALL
from .test_serving import FakePipeline, Forked


# -- deadlines, failed calls and quota ---------------------------------------------------------------------------

def service_on(pipeline, tmp_path, clock=None, every: int = 1):
    """A service whose calls last ran the default models (as after the app's start-up on ZeroGPU)."""
    service = serving.Service(lambda choice: pipeline, OutputStore(tmp_path), Limits(), serving.ModelChoice())
    if clock is not None:
        service.clock, service.check_every = clock, every
    return service


def test_a_section_in_calls_cut_at_their_deadline_is_the_song_of_uncut_calls(tmp_path, tiny_lm_dir, monkeypatch):
    """On ZeroGPU, a clock always past every call's deadline: each call makes one step (a stage-1 token or a stage-2
    frame) and hands its state over in the run's folder; the sections take many calls, the progress says which call
    of how many of which section, and the songs equal those of calls that never stop."""
    from yue import Pipeline
    from yue.weights.loading import load_models

    monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
    pipeline = Pipeline(load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False))
    bundles, calls = [], []
    for name, clock in (("uncut", lambda: 0.0), ("cut", lambda: float("inf"))):
        service = service_on(pipeline, tmp_path / name, clock)
        job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 16, "takes": 2}))
        forked = Forked(service)
        updates = list(service.run(job, "wav", "session", forked))
        bundles.append([SongCodes.load(take.bundle)[0] for take in updates[-1].takes])
        calls.append((forked.calls, [u.text for u in updates]))
    (uncut_calls, _), (cut_calls, texts) = calls
    assert uncut_calls == 2 and cut_calls > 2 * 16
    assert any(re.search(r"\nGPU call 3 of \d+ of section 2$", text) for text in texts)
    for cut, uncut in zip(*reversed(bundles)):
        np.testing.assert_array_equal(cut.stage1.vocal, uncut.stage1.vocal)
        np.testing.assert_array_equal(cut.vocal, uncut.vocal)
        np.testing.assert_array_equal(cut.instrumental, uncut.instrumental)


class SpacesError(Exception):
    """What spaces raises (a gradio Error: a title and a message), without gradio."""

    def __init__(self, title: str, message: str):
        super().__init__(message)
        self.title, self.message = title, message


ABORTED = SpacesError("ZeroGPU worker error", "GPU task aborted")  # wrappers.py: the worker died
REFUSED = SpacesError("ZeroGPU quota exceeded", "You have exceeded your free ZeroGPU quota (60s requested vs. 0s "
                      "left). Try again in 3:10:00. ")


def failing(service, failures: dict):
    """The service's GPU call, raising `failures[n]` in place of the n-th call (1-based), after it began when the
    failure is a kill (its worker died part-way: what it handed over stays in the run's folder)."""
    calls = []

    def run_section(*args):
        calls.append(args[1])
        error = failures.get(len(calls))
        events = service.run_section(*args)
        if error is ABORTED:
            yield next(events)
        if error is not None:
            raise error
        yield from events

    run_section.calls = calls
    return run_section


def test_a_killed_call_is_tried_again_once_from_its_last_state_and_twice_ends_the_run(tmp_path):
    """A call ZeroGPU kills ("GPU task aborted") is made again with a fresh booking and the run goes on to the end;
    killed twice in a row, the run ends with the finished section kept, and the text says so."""
    pipeline = FakePipeline()
    service = service_on(pipeline, tmp_path)
    job = service.lyrics_job("pop", LYRICS, shared_settings(SMALL))
    once = failing(service, {2: ABORTED})
    updates = list(service.run(job, "wav", "session", once))
    assert [call.section for call in once.calls] == [0, 1, 1] and updates[-1].text.startswith("Done: 2 of 2")
    assert any("ZeroGPU stopped GPU call 1 of section 2 (GPU task aborted): trying again" in u.text for u in updates)
    twice = failing(service, {2: ABORTED, 3: ABORTED})
    last = list(service.run(job, "wav", "session", twice))[-1]
    assert len(twice.calls) == 3 and last.text.startswith("ZeroGPU stopped GPU call 2 of section 2 again")
    assert "Kept in the song bundle (.npz): 1 of 2 sections" in last.text and last.files[3].endswith("song-1of2.npz")


def test_a_refused_quota_keeps_the_finished_sections_and_says_how_to_go_on(tmp_path):
    """ZeroGPU refuses section 2's call for quota (spaces' words): the run ends with section 1's files, and the text
    says what is kept and how to go on; refused at once, it says nothing is kept."""
    service = service_on(FakePipeline(), tmp_path)
    job = service.lyrics_job("pop", LYRICS, shared_settings(SMALL))
    last = list(service.run(job, "wav", "session", failing(service, {2: REFUSED})))[-1]
    assert last.text.startswith("ZeroGPU refused the next GPU call: You have exceeded your free ZeroGPU quota")
    assert "Kept in the song bundle (.npz): 1 of 2 sections (0 s of audio)." in last.text
    assert "press Continue this song" in last.text
    assert last.files[3].endswith("song-1of2.npz") and os.path.isfile(last.files[3])
    first = list(service.run(job, "wav", "session", failing(service, {1: REFUSED})))[-1]
    assert "nothing to keep" in first.text and first.files is None


def test_a_refusal_that_says_what_is_left_books_the_next_call_within_it(tmp_path, monkeypatch):
    """On ZeroGPU, refused with "(60s requested vs. 25s left)": the next call books 25 s, and the song is made."""
    monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
    service = service_on(FakePipeline(), tmp_path)
    job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 3000}))
    left = SpacesError("ZeroGPU quota exceeded", "You have exceeded your free ZeroGPU quota (60s requested vs. 25s "
                       "left). Try again in 3:10:00. ")
    calls = failing(service, {2: left})
    updates = list(service.run(job, "wav", "session", calls))
    assert updates[-1].text.startswith("Done: 2 of 2")
    assert [call.booked for call in calls.calls] == [60, 60, 25]  # section 1; section 2 refused, then within it


def test_a_model_switch_books_its_own_allowance(tmp_path, monkeypatch):
    """On ZeroGPU, a run whose models are not those the last call ran books LOAD_SECONDS more in its first call (a
    reused worker loads them inside it); the calls after it book without."""
    monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
    service = service_on(FakePipeline(), tmp_path)  # its calls last ran English CoT (packed at start-up)
    for language, first in (("en", 60), ("zh", 60 + gpu_time.LOAD_SECONDS)):
        job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 3000,
                                                                 "language": language}))
        calls = failing(service, {})
        list(service.run(job, "wav", "session", calls))
        assert [call.booked for call in calls.calls] == [first, 60]


def test_on_zero_gpu_the_page_says_at_most_how_many_gpu_minutes_the_song_books(tmp_path, monkeypatch):
    """Before the first call, on ZeroGPU only: the planned bookings of every new section, in minutes, as an upper
    bound (ZeroGPU charges use), with the stage-2 batches of listening while it is made when the visitor listens
    (the default: 7 minutes for two 30 s sections on ZeroGPU's default card), without when not (5)."""
    service = service_on(FakePipeline(), tmp_path)
    job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 3000}))
    assert not any("GPU-minutes" in u.text for u in service.run(job, "wav", "session", service.run_section))
    monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
    monkeypatch.setattr(gpu_time, "current_card", lambda: gpu_time.CARDS["large"])  # whatever spaces says here
    for listen, shown in ((True, 7), (False, 5)):
        job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 3000, "listen": listen}))
        minutes = gpu_time.song_seconds(Sampling(max_new_tokens=3000, min_new_tokens=4), "bf16", 1, 2,
                                        listen=listen) / 60
        texts = [u.text for u in service.run(job, "wav", "session", service.run_section)]
        assert texts[1] == (f"Loading the models… This song books at most about {minutes:.0f} GPU-minutes of your "
                            "ZeroGPU quota (ZeroGPU charges what the calls use, which is less).")
        assert round(minutes) == shown


def test_the_listening_switch_reaches_every_gpu_call_and_its_booking(tmp_path, monkeypatch):
    """On ZeroGPU, 3000-token sections: each GPU call carries the visitor's choice (`Call.listen`, which decides
    whether the call hears rows), and a section books the calls its work plans with listening's stage-2 batches
    when listening (4 calls on ZeroGPU's default card), without them when not (3)."""
    monkeypatch.setattr(gpu_time, "on_zero_gpu", lambda: True)
    monkeypatch.setattr(gpu_time, "current_card", lambda: gpu_time.CARDS["large"])
    for listen, planned in ((True, 4), (False, 3)):
        service = service_on(FakePipeline(), tmp_path / str(listen))
        job = service.lyrics_job("pop", LYRICS, shared_settings({**SMALL, "max_new_tokens": 3000, "listen": listen}))
        calls = failing(service, {})
        texts = [u.text for u in service.run(job, "wav", "session", calls)]
        assert [call.listen for call in calls.calls] == [listen, listen]
        plan = gpu_time.planned_calls(Sampling(max_new_tokens=3000, min_new_tokens=4), audio_s=30.0, listen=listen)
        assert calls.calls[0].booked == gpu_time.granted(plan[0]) and len(plan) == planned
        assert f"GPU call 1 of {planned}" in "\n".join(texts)
