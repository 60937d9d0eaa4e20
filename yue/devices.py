"""Which device and precision can run where, checked before anything is loaded: a run that cannot work is refused
with what to use instead, not after minutes of loading with a kernel's error."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .hub import ModelLoadError

# bitsandbytes' CPU nf4 kernel quantizes a layer's inputs in blocks of 64: a narrower layer (the tiny stage 2 is 32
# wide) loads, then fails at the first matmul, after stage 1 has run. CUDA has no such limit.
NF4_CPU_MIN_WIDTH = 64


def check_device(device=None) -> torch.device:
    """The device to run on (default: CUDA when present), or ModelLoadError saying what to use instead."""
    try:
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError):
        raise ModelLoadError(f"device {device!r} is not a device name: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device} was asked for, but this PyTorch ({torch.__version__}) sees no CUDA GPU: "
                             "use device cpu (--device cpu), or a CUDA build of torch on a machine with an NVIDIA GPU.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ModelLoadError(f"device {device} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                             "GPU(s), numbered from cuda:0.")
    return device


def check_precision(folder: Path, device: torch.device, precision: str) -> None:
    """Refuse, before loading, a precision this checkpoint cannot run at on this device."""
    if precision != "nf4" or device.type == "cuda":
        return
    config = json.loads((folder / "config.json").read_text())
    width = min(config.get("hidden_size", 0), config.get("intermediate_size", 0))
    if width < NF4_CPU_MIN_WIDTH:
        raise ModelLoadError(f"{folder} cannot run as nf4 on the {device.type}: bitsandbytes' CPU 4-bit kernel needs "
                             f"layers at least {NF4_CPU_MIN_WIDTH} wide and this model's are {width}. Use precision "
                             "int8 or fp32 (the CPU default), or a CUDA GPU.")
