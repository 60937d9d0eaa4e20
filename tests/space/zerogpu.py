"""A ZeroGPU stand-in for tests: spaces 0.51.3's own wrapper code, with the two parts that live outside this machine
replaced by small stand-ins that follow what that code expects of them.

What runs unchanged, from the installed `spaces` (pinned in requirements.txt):
* spaces/zero/decorator.py `GPU`/`_GPU`: a generator function gets `generator_function_wrapper`, another function
  `regular_function_wrapper` (spaces/zero/wrappers.py).
* wrappers.py `gradio_handler`: books the call with `client.schedule` (the duration function is called with the
  call's own arguments: `static_duration`), then reuses the idle worker of that GPU (`workers.pop(nvidia_index)`,
  kept only after a call that ended well, and only when the schedule says `idle`) or forks a fresh one
  (`Worker.__init__`: `multiprocessing.get_context('fork').Process`); puts `((args, kwargs), context)` on the
  worker's `arg_queue` and reads `res_queue`: both are spaces.utils.SimpleQueue, so every argument and every yielded
  value is pickled across the process boundary. A worker that dies makes its sentinel thread put None
  (`Worker._close_on_exit`), read as `error("ZeroGPU worker error", "GPU task aborted")`; an exception in the task
  comes back as `error("ZeroGPU worker error", <its class name>)` (`exception_result`), a gradio Error as itself.
* wrappers.py `thread_wrapper` / `worker_init` in the worker: `client.allow(token)` with its pid, then the torch
  layer's `unpatch`, `init(nvidia_uuid)`, `size`, `move` before the task's first line (once per worker).
* client.py `schedule` (the refusal texts, e.g. "You have exceeded your free ZeroGPU quota (60s requested vs. 20s
  left). Try again in 3:10:00."), `get_duration_seconds` (the duration x zero/configs.json's `duration_factor`,
  except for 'xlarge'), `release`.

What stands in:
* `DeviceAPI` for the ZeroGPU device API that client.py talks to over HTTP (`api_client()`: spaces/zero/api.py
  `APIClient.schedule/allow/release`): a quota ledger in visitor seconds (a booking over what is left is refused
  with `QuotaInfos(left, wait)`, HTTP 429; a call is charged what it used, as ZeroGPU charges use), and the booked
  duration as a hard kill: SIGKILL to the worker once the call has run its booked seconds (x the factor), in scaled
  time (`seconds_per_booked`).
* `TorchLayer` for spaces/zero/torch (patching.py), which needs a CUDA build of PyTorch: `init` refuses a worker
  forked from a process that initialised CUDA (spaces' own rule: `is_in_bad_fork` at import, spaces/zero/__init__.py)
  and records each fresh worker's start; `move` has nothing to move (on the CPU the forked worker already holds the
  weights; on ZeroGPU it copies the packed tensors to the GPU: patching.py `_move`, packing.py `pack_to_cuda`).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import types
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

# The entries of spaces/zero/configs.json (0.51.3) this stand-in can pretend to run on
H200 = {"model": "NVIDIA H200", "memory": 74625056768, "sm_major": 9, "sm_minor": 0, "sm_count": 60,
        "xlarge_threshold": None, "duration_factor": 1.0}
BLACKWELL = {"model": "NVIDIA RTX PRO 6000 Blackwell Server Edition", "memory": 101973950464, "sm_major": 12,
             "sm_minor": 0, "sm_count": 188, "xlarge_threshold": 45097156608, "duration_factor": 1.5}


@dataclass
class Ledger:
    """The device API's books: visitor seconds left, and every call booked (for the tests to read)."""

    left: int
    wait: timedelta = timedelta(hours=3, minutes=10)
    booked: list[int] = field(default_factory=list)  # visitor seconds of each call granted, in order
    used: list[float] = field(default_factory=list)  # visitor seconds each call was charged
    refused: list[int] = field(default_factory=list)  # visitor seconds asked by each refused booking
    aborted: int = 0  # calls killed at their booked duration


class DeviceAPI:
    """Stands in for `spaces.zero.api.APIClient` (the ZeroGPU device API). One GPU (nvidia index 0)."""

    def __init__(self, ledger: Ledger, seconds_per_booked: float, idle: Callable[[], bool] = lambda: True):
        from spaces.utils import SimpleQueue

        self.ledger, self.scale, self.idle = ledger, seconds_per_booked, idle
        self.allowed = SimpleQueue()  # (token, pid) from a worker's `allow`, which runs in the worker process
        self.pids: dict[str, int] = {}
        self.lock = threading.Lock()
        self.calls: dict[str, tuple[float, threading.Timer]] = {}  # token -> (start, its hard-kill timer)
        self.last_pid: int | None = None  # the worker that last ran on the GPU (a reused one makes no `allow`)

    def schedule(self, cgroup_path, task_id=0, token=None, token_version=1, duration_seconds=None,
                 enable_queue=True, gpu_size=None):
        from spaces.zero.api import QuotaInfos, ScheduleMetadata, ScheduleResponse

        cost = duration_seconds * (2 if gpu_size == "xlarge" else 1)  # client.py: an xlarge second counts twice
        meta = ScheduleMetadata(auth="regular")
        with self.lock:
            if cost > self.ledger.left:
                self.ledger.refused.append(cost)
                return QuotaInfos(left=self.ledger.left, wait=self.ledger.wait), meta
            self.ledger.booked.append(cost)
            allow_token = uuid.uuid4().hex
            timer = threading.Timer(duration_seconds * self.scale, self._kill, (allow_token,))
            self.calls[allow_token] = (time.monotonic(), timer)
            timer.daemon = True
            timer.start()
        return ScheduleResponse(idle=self.idle(), nvidiaIndex=0, nvidiaUUID="GPU-stand-in",
                                allowToken=allow_token), meta

    def allow(self, allow_token: str, pid: int):
        import httpx

        self.allowed.put((allow_token, pid))  # in the worker: over the queue to the device API's side
        return httpx.codes.OK

    def release(self, allow_token: str, fail: bool = False):
        import httpx

        with self.lock:
            start, timer = self.calls.pop(allow_token, (None, None))
        if timer is None:
            return httpx.codes.NOT_FOUND
        timer.cancel()
        with self.lock:
            used = (time.monotonic() - start) / self.scale
            self.ledger.used.append(used)
            self.ledger.left = max(0, self.ledger.left - int(used + 0.999))
        return httpx.codes.OK

    def startup_report(self):
        import httpx

        return httpx.codes.OK

    def _worker_pid(self, allow_token: str) -> int | None:
        while not self.allowed.empty():
            token, pid = self.allowed.get()
            self.pids[token], self.last_pid = pid, pid
        return self.pids.get(allow_token, self.last_pid)

    def _kill(self, allow_token: str) -> None:
        """The booked duration is over: ZeroGPU takes the GPU back, killing the call's worker."""
        with self.lock:
            if allow_token not in self.calls:
                return
            self.ledger.aborted += 1
        pid = self._worker_pid(allow_token)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def workers(self) -> set[int]:
        self._worker_pid("")
        return set(self.pids.values())


class TorchLayer(types.ModuleType):
    """Stands in for spaces.zero.torch (what wrappers.py calls: enter_mode, unpatch, init, size, move)."""

    def __init__(self):
        super().__init__("spaces.zero.torch")
        self.fresh_workers = 0

    def enter_mode(self):
        pass  # main process: PyTorch's CUDA emulation (needs a CUDA build); the CPU needs none

    patch = unpatch = enter_mode

    def pack(self):
        return 0

    def is_in_bad_fork(self):
        return False

    def init(self, nvidia_uuid: str):
        torch = sys.modules.get("torch")  # the worker runs what its parent imported: nothing more
        os.environ["CUDA_VISIBLE_DEVICES"] = nvidia_uuid
        if torch is not None and torch.cuda.is_initialized():  # a fork of a process holding CUDA state cannot use the GPU
            raise RuntimeError("CUDA was initialised in the main process before this worker was forked")
        self.fresh_workers += 1  # (counted in the worker: for its own asserts)

    def size(self):
        return 0

    def move(self, callback=None):
        pass


@contextmanager
def zero_gpu(ledger: Ledger, seconds_per_booked: float = 1.0, card: dict = BLACKWELL,
             idle: Callable[[], bool] = lambda: True, visitor: str = "regular"):
    """Inside: `spaces.GPU` makes spaces' own ZeroGPU wrappers, talking to a `DeviceAPI` over `ledger`, on `card`
    (its duration_factor); `idle()` says whether the GPU's last worker may be reused (spaces reuses a live worker
    only when the schedule says idle); a visitor with an IP token (`x-ip-token`, as Gradio passes one for a page's
    visitor), so spaces' refusals say how much quota is left. Yields the DeviceAPI. Every worker started is killed
    on the way out."""
    import gradio  # noqa: F401  (spaces' wrappers need it imported first)
    from gradio.context import LocalContext
    from spaces.config import Config

    saved_modules = {name: sys.modules.get(name) for name in ("spaces.zero.torch", "spaces.zero.wrappers")}
    import spaces.zero as zero
    from spaces.zero import client, config

    saved = (Config.zero_gpu, Config.zero_device_api_url, client.api_client, config.get_config,
             getattr(zero, "torch", None))
    api = DeviceAPI(ledger, seconds_per_booked, idle)
    torch_layer = TorchLayer()
    sys.modules["spaces.zero.torch"] = zero.torch = torch_layer
    sys.modules.pop("spaces.zero.wrappers", None)  # imported anew: it binds spaces.zero.torch at import
    Config.zero_gpu, Config.zero_device_api_url = True, "http://zero-gpu-stand-in"
    client.api_client = lambda: api
    config.get_config = lambda: card
    request = LocalContext.request.set(_Visitor(visitor))
    try:
        yield api
    finally:
        LocalContext.request.reset(request)
        Config.zero_gpu, Config.zero_device_api_url, client.api_client, config.get_config, old_torch = saved
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        if old_torch is None:
            del zero.torch
        else:
            zero.torch = old_torch
        from spaces.zero import decorator

        decorator.decorated_cache.clear()  # its wrappers talk to this stand-in's device API
        for pid in api.workers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class _Headers(dict):
    """Request headers as spaces reads them (client.py `_get_headers` wants an object with a __dict__)."""


class _Visitor:
    """A Gradio request of a page visitor: an IP token (JWT; spaces reads its payload only) and Gradio's own
    'x-gradio-user: app' header (so spaces words a refusal for a page, not for an API caller)."""

    def __init__(self, auth: str):
        import base64
        import json

        payload = base64.urlsafe_b64encode(json.dumps({"auth": auth}).encode()).decode().rstrip("=")
        self.headers = _Headers({"x-ip-token": f"header.{payload}.signature", "x-gradio-user": "app"})
