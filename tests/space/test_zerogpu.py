"""The ZeroGPU stand-in (tests/space/zerogpu.py) does what spaces 0.51.3 on ZeroGPU does to a GPU function: a worker
process per call, forked fresh or reused when idle; arguments and results pickled; the booked duration (x the
card's duration_factor) as a hard kill; the quota ledger with spaces' own refusal words; an error's class name; no
CUDA state inherited by a fresh worker."""
import os
import pickle
import time

import pytest

from .zerogpu import BLACKWELL, H200, Ledger, zero_gpu


def pids(count: int, note: list | None = None):
    """A GPU generator function: its worker's pid, `count` times; appends to `note` (in the worker's memory)."""
    for _ in range(count):
        if note is not None:
            note.append("seen")
        yield os.getpid()


def sleeper(seconds: float):
    yield os.getpid()
    time.sleep(seconds)
    yield "woke"


def raiser():
    yield 1
    raise KeyError("inside the worker")


def spaces_gpu(task, booked: int = 10):
    import spaces

    return spaces.GPU(duration=lambda *args: booked)(task)


def test_each_call_is_a_forked_worker_reused_only_when_idle_and_values_are_pickled():
    """Calls run in another process; with the GPU idle the same live worker serves the next call, else a fresh one
    is forked. What a call does to its arguments stays in the worker, and an argument that cannot be pickled is
    refused before any worker runs (spaces puts the arguments on a pickling queue)."""
    idle = iter([False, True, False, False, False])
    with zero_gpu(Ledger(left=1000), idle=lambda: next(idle)):
        call = spaces_gpu(pids)
        note: list = []
        workers = [list(call(2, note)) for _ in range(4)]
        assert all(len(set(pid)) == 1 and pid[0] != os.getpid() for pid in workers)
        assert workers[1] == workers[0] and len({w[0] for w in (workers[0], workers[2], workers[3])}) == 3
        assert note == []  # the worker appended to its own copy
        with pytest.raises(pickle.PicklingError):
            list(call(1, [lambda: None]))


def test_a_call_past_its_booked_duration_times_the_factor_is_killed_and_charged(monkeypatch):
    """A 2 s booking on the Blackwell (factor 1.5) is booked as 3 s of quota and kills the worker after 3 (scaled)
    seconds: spaces says "GPU task aborted" under "ZeroGPU worker error"; ZeroGPU charged what it used."""
    ledger = Ledger(left=1000)
    with zero_gpu(ledger, seconds_per_booked=0.5, card=BLACKWELL):
        events = []
        with pytest.raises(Exception) as error:
            for event in spaces_gpu(sleeper, 2)(30.0):
                events.append(event)
    assert (error.value.title, error.value.message) == ("ZeroGPU worker error", "GPU task aborted")
    assert len(events) == 1 and ledger.booked == [3] and ledger.aborted == 1 and 3 <= ledger.used[0] < 30


def test_quota_refusals_carry_spaces_words_with_what_is_left():
    """A booking over the visitor's quota left is refused before any worker starts, in spaces' words; on the
    H200 (factor 1.0) a 45 s booking is asked as 45 s."""
    ledger = Ledger(left=20)
    with zero_gpu(ledger, card=H200):
        with pytest.raises(Exception) as error:
            list(spaces_gpu(pids, 45)(1))
    assert error.value.title == "ZeroGPU quota exceeded" and ledger.refused == [45]
    assert error.value.message.startswith("You have exceeded your free ZeroGPU quota (45s requested vs. 20s left). "
                                          "Try again in 3:10:00.")


def test_an_error_in_the_worker_comes_back_as_its_class_name():
    with zero_gpu(Ledger(left=100)):
        with pytest.raises(Exception) as error:
            list(spaces_gpu(raiser)())
    assert (error.value.title, error.value.message) == ("ZeroGPU worker error", "KeyError")


def test_a_fresh_worker_refuses_cuda_state_from_its_parent(monkeypatch):
    """A process that initialised CUDA cannot give a forked worker the GPU (spaces refuses to start then):
    the stand-in's worker start fails the call."""
    import torch

    with zero_gpu(Ledger(left=100)):
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        with pytest.raises(Exception) as error:
            list(spaces_gpu(pids)(1))
    assert (error.value.title, error.value.message) == ("ZeroGPU worker error", "RuntimeError")
