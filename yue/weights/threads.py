"""How many CPU threads PyTorch uses, chosen once at the start of the CLI and the app (never at import).

PyTorch starts one OpenMP thread per core, and those threads spin while they wait for each other. When another
process keeps a core busy (another user, another app worker), a spinning thread waits for one that is not running:
on a busy 2-core machine the README's tiny `generate` took 187 s with PyTorch's default and 2.6 s with one thread.
So the default here is half the cores this process may use (at least 1): a second busy process then still leaves
PyTorch a core per thread (bench/bench_threads.py measures it). A GPU run hardly uses CPU threads. An explicit
OMP_NUM_THREADS (PyTorch read it when it started) or a `--threads` flag wins.
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


def default_threads(cpus: int) -> int:
    """Half the usable CPUs, at least 1: room for one other busy process without spinning threads waiting."""
    return max(cpus // 2, 1)


def choose_threads(flag: int | None, environ: Mapping[str, str], cpus: int) -> tuple[int | None, str]:
    """(threads to set, None: leave PyTorch as it is; the reason in words): `flag` (--threads) first, then an
    explicit OMP_NUM_THREADS (PyTorch already follows it), else `default_threads(cpus)`."""
    if flag is not None:
        # More threads than CPUs only wait for each other (and 10^5 of them exhaust memory: a MemoryError, or an
        # overflow in PyTorch for larger counts)
        if not 1 <= flag <= cpus:
            raise ValueError(f"--threads must be a whole number from 1 to {cpus} (the CPUs this process may use), "
                             f"not {flag}")
        return flag, f"{_threads(flag)} (--threads)"
    if environ.get(ENV, "").strip():
        return None, f"CPU threads from {ENV}={environ[ENV].strip()}"
    threads = default_threads(cpus)
    return threads, f"{_threads(threads)} (half of {cpus} usable CPUs; --threads N or {ENV} to change)"


def _threads(count: int) -> str:
    return f"{count} CPU thread{'' if count == 1 else 's'}"


def set_cpu_threads(flag: int | None = None) -> str:
    """Apply `choose_threads` to PyTorch (every thread of the process follows it); returns the reason in words."""
    threads, reason = choose_threads(flag, os.environ, usable_cpus())
    if threads is not None:
        import torch  # here, not at import: the CLI's --help must not wait for torch

        torch.set_num_threads(threads)
    return reason
