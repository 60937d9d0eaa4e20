"""yue.weights.threads: PyTorch's CPU threads are chosen once at start-up: a --threads flag first, then an explicit
OMP_NUM_THREADS (left to PyTorch), else half the usable CPUs; the CLI refuses a bad count before any work."""
import pytest
import torch

from yue.cli.main import main
from yue.weights import threads
from yue.weights.threads import choose_threads, default_threads, set_cpu_threads, usable_cpus


def test_the_default_is_half_the_usable_cpus_and_at_least_one():
    assert [default_threads(cpus) for cpus in (1, 2, 3, 4, 16)] == [1, 1, 1, 2, 8]
    assert choose_threads(None, {}, 2) == (1, "1 CPU thread (half of 2 usable CPUs; --threads N or "
                                               "OMP_NUM_THREADS to change)")


def test_the_flag_wins_then_an_explicit_omp_num_threads_is_left_to_pytorch():
    assert choose_threads(3, {"OMP_NUM_THREADS": "1"}, 4)[0] == 3
    assert choose_threads(None, {"OMP_NUM_THREADS": "4"}, 2) == (None, "CPU threads from OMP_NUM_THREADS=4")
    assert choose_threads(None, {"OMP_NUM_THREADS": " "}, 8)[0] == 4  # set but empty: not a choice
    with pytest.raises(ValueError, match=r"--threads must be a whole number from 1 to 2 \(the CPUs this process "
                                         r"may use\), not 0"):
        choose_threads(0, {}, 2)


@pytest.mark.parametrize("count", [3, 100_000, 99_999_999_999])
def test_more_threads_than_usable_cpus_are_refused_naming_the_bound(count):
    """Defect 6: --threads 100000 ended in a MemoryError traceback, 99999999999 in 'Overflow when unpacking long'."""
    with pytest.raises(ValueError, match=rf"--threads must be a whole number from 1 to 2 .*, not {count}"):
        choose_threads(count, {}, 2)


def test_set_cpu_threads_sets_pytorch(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert set_cpu_threads(None).startswith(f"{default_threads(usable_cpus())} CPU thread")
        assert torch.get_num_threads() == default_threads(usable_cpus())
        set_cpu_threads(usable_cpus())
        assert torch.get_num_threads() == usable_cpus()
    finally:
        torch.set_num_threads(before)


def test_the_cli_refuses_a_bad_thread_count_before_any_work(tmp_path, capsys):
    for count in ("0", "100000", "99999999999"):
        assert main(["tiny", str(tmp_path / "tiny"), "--threads", count]) == 2
        assert f"error: --threads must be a whole number from 1 to {usable_cpus()} (the CPUs this process may use), " \
               f"not {count}" in capsys.readouterr().err
    assert not (tmp_path / "tiny").exists()


@pytest.fixture
def pytorch_default(monkeypatch):
    """PyTorch at its own default thread count, as in a fresh Python (restored after), OMP_NUM_THREADS unset."""
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_APPLIED", [])
    torch.set_num_threads(usable_cpus())
    yield
    torch.set_num_threads(before)


def test_a_pipeline_chooses_as_the_cli_does_the_argument_then_half_the_cpus(pytorch_default):
    """Issue 25: the Python API ran with PyTorch's thread per core (392.8 s for the README's block on a busy 2-core
    machine, 44.0 s with one thread). Its argument wins, named as the API names it; else half the usable CPUs."""
    assert threads.pipeline_threads(1) == "1 CPU thread (threads)"
    assert torch.get_num_threads() == 1
    torch.set_num_threads(usable_cpus())
    threads._APPLIED.clear()
    assert threads.pipeline_threads(None) == (f"{_count(default_threads(usable_cpus()))} (half of {usable_cpus()} "
                                              f"usable CPUs; threads=N or OMP_NUM_THREADS to change)")
    assert torch.get_num_threads() == default_threads(usable_cpus())
    with pytest.raises(ValueError, match=rf"threads must be a whole number from 1 to {usable_cpus()} \(the CPUs "
                                         r"this process may use\), not 2.5"):
        threads.pipeline_threads(2.5)


def test_a_pipeline_keeps_a_count_chosen_before_and_leaves_omp_num_threads_to_pytorch(pytorch_default, monkeypatch):
    """A count the CLI, the app, an earlier Pipeline or the caller set (not PyTorch's default) stays; so does the
    one OMP_NUM_THREADS gave PyTorch."""
    threads.set_cpu_threads(usable_cpus())  # --threads N: N is also PyTorch's default, still kept
    assert threads.pipeline_threads(None).startswith(f"{_count(usable_cpus())} (chosen before in this process")
    assert torch.get_num_threads() == usable_cpus()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.pipeline_threads(None) == "CPU threads from OMP_NUM_THREADS=1"
    assert torch.get_num_threads() == usable_cpus()


def test_a_count_set_by_the_caller_is_kept(pytorch_default):
    """torch.set_num_threads(N) before the first Pipeline, N no default of PyTorch's: the Pipeline leaves it."""
    chosen = next((n for n in range(1, usable_cpus() + 1) if n not in threads.pytorch_defaults()), None)
    if chosen is None:
        pytest.skip("every count this machine allows is one of PyTorch's defaults")
    torch.set_num_threads(chosen)
    assert threads.pipeline_threads(None).startswith(f"{_count(chosen)} (chosen before")
    assert torch.get_num_threads() == chosen


def _count(n: int) -> str:
    return f"{n} CPU thread{'' if n == 1 else 's'}"
