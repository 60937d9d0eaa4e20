"""How many CPU threads PyTorch uses, chosen once at the start of the CLI and the app (never at import).

PyTorch starts one OpenMP thread per core, and those threads spin while they wait for each other. When another
process keeps a core busy (another user, another app worker), a spinning thread waits for one that is not running:
on a busy 2-core machine the README's tiny `generate` took 187 s with PyTorch's default and 2.6 s with one thread.
So the default here is half the cores this process may use (at least 1): a second busy process then still leaves
PyTorch a core per thread (bench/bench_threads.py measures it). A GPU run hardly uses CPU threads. An explicit
OMP_NUM_THREADS (PyTorch read it when it started) or a `--threads` flag wins. The Python API chooses the same way
when its first Pipeline loads (`pipeline_threads`), and leaves a count chosen before alone.
"""
from __future__ import annotations

import os
from typing import Mapping

ENV = "OMP_NUM_THREADS"


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's or taskset's limit), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # no affinity call on this platform (macOS, Windows)
        return max(os.cpu_count() or 1, 1)


def pytorch_defaults() -> set[int]:
    """The thread counts PyTorch starts with, unasked: one per usable CPU (OpenMP), or per physical core (MKL's
    count, which some builds take). PyTorch cannot say whether set_num_threads was called; any other count was."""
    import psutil

    return {usable_cpus(), min(psutil.cpu_count(logical=False) or usable_cpus(), usable_cpus())}


def default_threads(cpus: int) -> int:
    """Half the usable CPUs, at least 1: room for one other busy process without spinning threads waiting."""
    return max(cpus // 2, 1)


def choose_threads(flag: int | None, environ: Mapping[str, str], cpus: int,
                   name: str = "--threads") -> tuple[int | None, str]:
    """(threads to set, None: leave PyTorch as it is; the reason in words): `flag` (--threads, or the argument
    `name` says) first, then an explicit OMP_NUM_THREADS (PyTorch already follows it), else `default_threads(cpus)`."""
    if flag is not None:
        # More threads than CPUs only wait for each other (and 10^5 of them exhaust memory: a MemoryError, or an
        # overflow in PyTorch for larger counts)
        if isinstance(flag, bool) or not isinstance(flag, int) or not 1 <= flag <= cpus:
            raise ValueError(f"{name} must be a whole number from 1 to {cpus} (the CPUs this process may use), "
                             f"not {flag!r}")
        return flag, f"{_threads(flag)} ({name})"
    if environ.get(ENV, "").strip():
        return None, f"CPU threads from {ENV}={environ[ENV].strip()}"
    threads, ask = default_threads(cpus), f"{name} N" if name.startswith("-") else f"{name}=N"
    return threads, f"{_threads(threads)} (half of {cpus} usable CPUs; {ask} or {ENV} to change)"


def _threads(count: int) -> str:
    return f"{count} CPU thread{'' if count == 1 else 's'}"


# The counts set_cpu_threads gave PyTorch in this process, the last one last (a Pipeline keeps it).
_APPLIED: list[int] = []


def set_cpu_threads(flag: int | None = None, name: str = "--threads") -> str:
    """Apply `choose_threads` to PyTorch (every thread of the process follows it); returns the reason in words."""
    threads, reason = choose_threads(flag, os.environ, usable_cpus(), name)
    if threads is not None:
        import torch  # here, not at import: the CLI's --help must not wait for torch

        torch.set_num_threads(threads)
        _APPLIED.append(threads)
    return reason


def pipeline_threads(threads: int | None) -> str:
    """A Pipeline's CPU threads, chosen as the CLI chooses them: its `threads=` argument first, then OMP_NUM_THREADS,
    then a count this process chose already, which it keeps (the CLI's or the app's, an earlier Pipeline's, or the
    caller's own torch.set_num_threads: anything but PyTorch's default), else half the usable CPUs.
    torch.set_num_threads is process-wide, so a choice made once holds for every later Pipeline. Chosen whatever
    the device: a GPU run still reads, resamples and mixes audio on the CPU. Returns the reason in words."""
    import torch

    now = torch.get_num_threads()
    if threads is None and not os.environ.get(ENV, "").strip() and (
            now not in pytorch_defaults() or (_APPLIED and _APPLIED[-1] == now)):
        return f"{_threads(now)} (chosen before in this process; threads=N or {ENV} to change)"
    return set_cpu_threads(threads, "threads")
