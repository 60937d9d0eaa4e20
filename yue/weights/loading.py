"""Everything about weights: where they come from (local folder or Hub), precision, device and the memory plan.

Generation code never imports this module: it takes loaded modules. Downloads live in `hub.py`, the only
other module that touches huggingface_hub; bitsandbytes is used only here and in `lm_loading.py` (through transformers),
torchao only in `quantize.py`, inside functions.
"""
from __future__ import annotations

import gc
import inspect
import json
import logging
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from . import registry
from .quantize import is_torchao
from .registry import Checkpoint, MemoryPlan
from ..text.tokens import Tokenizer
from .devices import check_device, check_precision, check_stage2
from .hub import ModelLoadError, _checkpoint, fetch  # noqa: F401 (ModelLoadError: re-exported)
# The language models and the tokenizer (lm_loading.py), re-exported: callers and tests know them from here.
from .lm_loading import (  # noqa: F401
    COMPUTE_DTYPES, _load_lm_folder, _tokenizer, compute_dtype, default_precision, load_lm, load_tokenizer,
    loaded_precision, quantization_config, stored_precision,
)

log = logging.getLogger(__name__)


# -- loaded parts and the memory plan ------------------------------------------------------------------------------

PARTS = ("stage1", "stage2", "codec", "vocal_vocoder", "instrumental_vocoder")
STAGE_PARTS = {"stage1": ("stage1",), "stage2": ("stage2",),
               "audio": ("codec", "vocal_vocoder", "instrumental_vocoder")}


def is_quantized(module) -> bool:
    """bitsandbytes (transformers' quantizer) or torchao weights: such a model stays where it was quantized."""
    return getattr(module, "hf_quantizer", None) is not None or is_torchao(module)


def free_device_cache(device: torch.device | None) -> None:
    """Return freed blocks to the driver, so the next part (or another process) can use them."""
    gc.collect()
    if device is not None and device.type == "cuda":
        torch.cuda.empty_cache()


def peak_rss_bytes() -> int:
    """The process's peak resident set size (Linux/macOS), else its current RSS."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
    except ImportError:
        import psutil

        return psutil.Process().memory_info().rss


@dataclass(frozen=True)
class LoadReport:
    """What was loaded from where, and why (for logs and the UI)."""

    device: str
    stage1: str  # source: folder, or repo@revision
    stage2: str
    codec: str | None
    precision: tuple[str, str]  # (stage 1, stage 2) as loaded
    plan: MemoryPlan

    def summary(self) -> str:
        codec = self.codec or "no codec"
        return (f"stage 1 {self.precision[0]} ({self.stage1}), stage 2 {self.precision[1]} ({self.stage2}), {codec}; "
                f"{self.plan.reason}")


@dataclass
class Models:
    """Loaded parts. `codec` and the vocoders may be None for a token-only pipeline (no audio).

    With `offload`, each part sits on `device` only while its stage runs and waits on `home` (the CPU) otherwise;
    `placement` says where each part is ("device" or "home"). bitsandbytes models never move (registry.movable).
    """

    stage1: torch.nn.Module | None
    stage2: torch.nn.Module | None
    tokenizer: Tokenizer
    codec: torch.nn.Module | None = None
    vocal_vocoder: torch.nn.Module | None = None
    instrumental_vocoder: torch.nn.Module | None = None
    report: LoadReport | None = None
    device: torch.device | None = None  # None: nothing is ever moved
    offload: bool = False
    home: torch.device = torch.device("cpu")
    placement: dict[str, str] = field(default_factory=dict)

    def prepare(self, stage: str) -> None:
        """Called before each stage ("stage1", "stage2", "audio"): with offload, move what this stage does not need
        to `home` first (and free the CUDA cache), then move what it needs to the device."""
        if stage not in STAGE_PARTS:
            raise ValueError(f"stage must be one of {tuple(STAGE_PARTS)}, got {stage!r}")
        if not self.offload or self.device is None:
            return
        needed = STAGE_PARTS[stage]
        if any([self._place(name, "home") for name in PARTS if name not in needed]):
            free_device_cache(self.device)
        for name in needed:
            self._place(name, "device")

    def _place(self, name: str, where: str) -> bool:
        module = getattr(self, name)
        if module is None or is_quantized(module) or self.placement.get(name) == where:
            return False
        module.to(self.device if where == "device" else self.home)
        self.placement[name] = where
        return True

    def peak_memory(self) -> int:
        """Peak bytes so far: torch.cuda.max_memory_allocated on a CUDA device, else the process's peak RSS."""
        if self.device is not None and self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return peak_rss_bytes()

    def reset_peak_memory(self) -> None:
        """Start a new CUDA peak measurement (e.g. per run). The CPU peak RSS cannot be reset."""
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def close(self) -> None:
        """Drop every part and free the device memory they held."""
        for name in PARTS:
            setattr(self, name, None)
        self.placement.clear()
        free_device_cache(self.device)


def _lm_size(source, default: registry.LmSize) -> registry.LmSize:
    """Exact sizes from a local folder's config.json; the registry's (official) sizes for Hub ids."""
    config = Path(str(source)).expanduser() / "config.json" if source is not None else None
    if config is None or not config.is_file():
        return default
    try:
        return registry.llama_size(json.loads(config.read_text()))
    except (KeyError, ValueError):
        return default


def _where(ck: Checkpoint, folder: Path) -> str:
    return str(folder) if Path(ck.repo).expanduser().is_dir() else f"{ck.repo}@{ck.revision or 'main'}"


def plan_for(device: torch.device, precision="auto", offload="auto", stage1=None, stage2=None) -> MemoryPlan:
    """The memory plan for this device now (CUDA: from its free memory) and these checkpoints."""
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    return registry.plan_memory(device.type, free, precision, offload, _lm_size(stage1, registry.STAGE1_SIZE),
                                _lm_size(stage2, registry.STAGE2_SIZE))


def load_models(stage1=None, stage2=None, codec=None, mode: str = "cot", language: str = "en",
                precision: str | tuple[str, str] = "auto", device=None, offload: bool | str = "auto",
                cache_dir=None) -> Models:
    """Every part of the pipeline, placed by the memory plan.

    stage1, stage2, codec: a local folder or Hub id; None = the registry's choice for mode/language/precision;
    codec=False: no codec (a token-only pipeline). precision: "auto" (from the GPU's free memory; fp32 on CPU),
    one of registry.PRECISIONS (docs/models.md), or a (stage1, stage2) pair. device: default CUDA when present, else
    CPU. offload: "auto" | True | False (see registry.plan_memory). cache_dir: the Hugging Face cache (default
    HF_HUB_CACHE).
    Raises ModelLoadError; on failure nothing stays loaded.
    """
    device = check_device(device)
    registry.stage1_repo(mode, language)  # validates both
    plan = plan_for(device, precision, offload, stage1, stage2)
    log.info("memory plan: %s", plan.reason)
    checkpoints = {"stage1": _checkpoint(stage1, registry.stage1_checkpoint(mode, language, plan.stage1)),
                   "stage2": _checkpoint(stage2, registry.stage2_checkpoint(plan.stage2))}
    if codec is not False:
        checkpoints["codec"] = _checkpoint(codec, registry.codec_checkpoint())
    # Every download first: a network or disk failure then happens before any memory is taken.
    kinds = {"stage1": "stage1", "stage2": "lm", "codec": "codec"}
    folders = {name: fetch(ck, kinds[name], cache_dir) for name, ck in checkpoints.items()}
    check_stage2(folders["stage2"])
    for name, wanted in (("stage1", plan.stage1), ("stage2", plan.stage2)):
        check_precision(folders[name], device, loaded_precision(stored_precision(folders[name]), wanted) or wanted)
    tokenizer = _tokenizer(folders["stage1"], checkpoints["stage1"], cache_dir)
    models = Models(None, None, tokenizer, device=device, offload=plan.offload)
    try:
        # Stage 1 runs first, so it goes straight to the device; with offload the rest waits at home, except
        # bitsandbytes models, which are quantized where they will stay.
        start = lambda precision: device if not plan.offload or not registry.movable(precision) else models.home
        models.stage1, p1 = _load_lm_folder(folders["stage1"], device, plan.stage1)
        stage2_precision = loaded_precision(stored_precision(folders["stage2"]), plan.stage2) or plan.stage2
        models.stage2, p2 = _load_lm_folder(folders["stage2"], start(stage2_precision), plan.stage2)
        if "codec" in folders:
            from .codec_loading import load_codec, load_vocoder

            codec_device = start("fp32")
            models.codec = load_codec(folders["codec"], codec_device, torch.float32)
            models.vocal_vocoder = load_vocoder(folders["codec"], "vocal", codec_device)
            models.instrumental_vocoder = load_vocoder(folders["codec"], "instrumental", codec_device)
    except BaseException:
        models.close()  # no half-loaded set stays in (GPU) memory
        raise
    for name in PARTS:
        module = getattr(models, name)
        if module is not None:
            stays = name == "stage1" or not plan.offload or is_quantized(module)
            models.placement[name] = "device" if stays else "home"
    models.report = LoadReport(str(device), _where(checkpoints["stage1"], folders["stage1"]),
                               _where(checkpoints["stage2"], folders["stage2"]),
                               _where(checkpoints["codec"], folders["codec"]) if "codec" in folders else None,
                               (p1, p2), plan)
    log.info("loaded: %s", models.report.summary())
    return models


def swap_stage1(models: Models, stage1=None, mode: str = "cot", language: str = "en", cache_dir=None) -> Models:
    """Replace only the stage-1 LM (and tokenizer) in place, at the same precision: e.g. cot <-> icl. The new files
    are fetched before the old model is freed, so a failed download keeps the old one."""
    precision = models.report.precision[0]
    ck = _checkpoint(stage1, registry.stage1_checkpoint(mode, language, precision))
    folder = fetch(ck, "stage1", cache_dir)
    tokenizer = _tokenizer(folder, ck, cache_dir)
    models.stage1 = None
    models.placement.pop("stage1", None)
    free_device_cache(models.device)
    models.prepare("stage1")  # with offload: the other parts go home before the new model arrives
    models.stage1, p1 = _load_lm_folder(folder, models.device, precision)
    models.placement["stage1"] = "device"
    models.tokenizer = tokenizer
    models.report = replace(models.report, stage1=_where(ck, folder), precision=(p1, models.report.precision[1]))
    log.info("stage 1 swapped: %s", models.report.summary())
    return models


class ModelCache:
    """The app's one explicit model cache: the `Models` of the last `load_models` arguments.

    The same arguments return the loaded models. A change of stage-1 choice only (mode cot <-> icl, language, or
    stage1) swaps just the stage-1 LM; any other change frees everything and reloads (one set fits the GPU).
    A swap changes the models in place: call `get` between runs, not during one (the app runs one at a time).
    """

    STAGE1_ARGS = ("stage1", "mode", "language")

    def __init__(self):
        self._lock = threading.Lock()
        self._key: dict | None = None
        self.models: Models | None = None

    @staticmethod
    def _arguments(kwargs: dict) -> tuple[dict, dict]:
        """(all load_models arguments with defaults, the cache key: those that change what gets loaded)."""
        bound = inspect.signature(load_models).bind(**kwargs)
        bound.apply_defaults()
        args = dict(bound.arguments)
        key = {k: str(v) if isinstance(v, Path) else v for k, v in args.items()}
        if key["stage1"] is not None:  # an explicit stage 1 ignores mode and language
            key["mode"] = key["language"] = None
        return args, key

    def get(self, **kwargs) -> Models:
        """`load_models(**kwargs)`, or the models already loaded for them."""
        args, key = self._arguments(kwargs)
        rest = lambda k: {name: v for name, v in k.items() if name not in self.STAGE1_ARGS}
        with self._lock:
            if self.models is not None and key == self._key:
                return self.models
            if self.models is not None and rest(key) == rest(self._key):
                try:
                    swap_stage1(self.models, args["stage1"], args["mode"], args["language"], args["cache_dir"])
                except BaseException:
                    self.clear()
                    raise
            else:
                self.clear()
                self.models = load_models(**args)
            self._key = key
            return self.models

    def clear(self) -> None:
        """Free the cached models."""
        if self.models is not None:
            self.models.close()
        self.models, self._key = None, None
