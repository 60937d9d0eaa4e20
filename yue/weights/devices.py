"""What can run, checked before anything is loaded: the device, the precision on it, and that a checkpoint fits its
stage. A run that cannot work is refused with what to use instead, not after minutes of loading with a kernel's
error (or, for a stage-1 model given as stage 2, none at all: both are LLaMAs and it would make noise)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import LLAMA_SIZES
from .hub import ModelLoadError
from .quantize import INT4_GROUP_SIZES, int4_group_size

# bitsandbytes' CPU nf4 kernel quantizes a layer's inputs in blocks of 64: a narrower layer (the tiny stage 2 is 32
# wide) loads, then fails at the first matmul, after stage 1 has run. CUDA has no such limit.
NF4_CPU_MIN_WIDTH = 64
INT4_CUDA_CAPABILITY = (8, 0)  # torch's _weight_int4pack_mm (tensor-core tiles) runs on Ampere and newer, in bf16


def _layer_widths(folder: Path) -> tuple[int, int]:
    config = json.loads((folder / "config.json").read_text())
    return config.get("hidden_size", 0), config.get("intermediate_size", 0)


def check_device(device=None) -> torch.device:
    """The device to run on (default: CUDA when present), or ModelLoadError saying what to use instead."""
    try:
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError):
        raise ModelLoadError(f"device {device!r} is not a device name: use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):  # mps, xpu …: the models were never run there (failures came much later)
        raise ModelLoadError(f"device {device} is not supported: this program runs on cpu or cuda (cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device} was asked for, but this PyTorch ({torch.__version__}) sees no CUDA GPU: "
                             "use device cpu (--device cpu), or a CUDA build of torch on a machine with an NVIDIA GPU.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ModelLoadError(f"device {device} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                             "GPU(s), numbered from cuda:0.")
    return device


def check_precision(folder: Path, device: torch.device, precision: str) -> None:
    """Refuse, before loading, a precision this checkpoint cannot run at on this device."""
    if precision == "int4":
        _check_int4(folder, device)
    if precision != "nf4" or device.type == "cuda":
        return
    width = min(_layer_widths(folder))
    if width < NF4_CPU_MIN_WIDTH:
        raise ModelLoadError(f"{folder} cannot run as nf4 on the {device.type}: bitsandbytes' CPU 4-bit kernel needs "
                             f"layers at least {NF4_CPU_MIN_WIDTH} wide and this model's are {width}. Use precision "
                             "int8 or fp32 (the CPU default), or a CUDA GPU.")


def _check_int4(folder: Path, device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.get_device_capability(device) < INT4_CUDA_CAPABILITY:
        major, minor = torch.cuda.get_device_capability(device)
        raise ModelLoadError(f"int4 needs an NVIDIA GPU of compute capability 8.0 or newer (Ampere: A10, A100, "
                             f"RTX 30xx and later) running bf16; {torch.cuda.get_device_name(device)} is "
                             f"{major}.{minor}. Use precision nf4 (4-bit, bitsandbytes) or int8.")
    if device.type not in ("cuda", "cpu"):
        raise ModelLoadError(f"int4 runs on CUDA GPUs and the CPU, not on {device.type}: use precision bf16 or int8.")
    narrow = [w for w in _layer_widths(folder) if int4_group_size(w) is None]
    if narrow:
        raise ModelLoadError(f"{folder} cannot run as int4: its layers are {narrow[0]} wide, not a multiple of any "
                             f"int4 group size {INT4_GROUP_SIZES}. Use precision int8 or bf16.")


def check_stage2(folder: Path) -> None:
    """Refuse a stage-1 checkpoint (the official 7B, or the tiny one) given as stage 2."""
    config = json.loads((folder / "config.json").read_text())
    shape = tuple(config.get(key) for key in ("hidden_size", "intermediate_size", "num_hidden_layers"))
    for name in ("s1-7b", "tiny-s1"):
        size = LLAMA_SIZES[name]
        if shape == (size.hidden_size, size.intermediate_size, size.num_hidden_layers):
            raise ModelLoadError(f"{folder} is a stage-1 checkpoint ({name} architecture), given as stage 2: stage 2 "
                                 "is m-a-p/YuE-s2-1B-general (with --tiny DIR: DIR/s2).")


def check_environment() -> None:
    """The YUE_* settings read from the environment when the models load (YUE_COMPILE, YUE_FUSED), checked at
    start-up instead: a wrong value is said before minutes of loading, not after."""
    from ..lm.fusion import compile_mode, fusion_enabled

    compile_mode()
    fusion_enabled()
