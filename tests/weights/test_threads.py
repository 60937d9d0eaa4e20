"""yue.weights.threads: PyTorch's CPU threads are chosen once at start-up: a --threads flag first, then an explicit
OMP_NUM_THREADS (left to PyTorch), else half the usable CPUs; the CLI refuses a bad count before any work."""
import pytest
import torch

from yue.cli.main import main
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
