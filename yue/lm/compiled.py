"""An ahead-of-time compiled decode step (YUE_COMPILE=aot): torch.export + AOTInductor, one package per cache shape.

Why: a decode step of the 7B is ~1,100 small kernels; compiled, the elementwise work (norms, rotary, the dequantizing
of int8/int4 weights) fuses into few kernels. Unlike `torch.compile` (YUE_COMPILE=1) there is no Python guard or
re-tracing at call time, and the package is a plain C++ shared library, the form ZeroGPU's `spaces.aoti_*` load
(not wired here: space/ would do it at start-up).

What is exported is `StaticDecoder.step_function` for the rows, one token each, and the cache capacity; the
attention length (a multiple of the decoder's bucket, up to the capacity) is a DYNAMIC dimension, carried by the
shape of an empty input, so one package serves every bucket: a 12k-token stage-1 song compiles once per cache
capacity (the cache doubles as it grows: a handful), not once per 256-slot bucket (~48). The decoder keeps one spare
bucket of cache beyond its capacity in this mode: a slice as long as the whole cache would be contiguous where the
shorter ones are not, and one program cannot cover both. Its inputs are the decoder's own static step tensors, the
rotary tables and every layer's key and value cache; the caches and `visible` are written in place by the package,
as by the eager step. The weights are not copied into the package: they are handed to it as "user managed"
constants, the model's own tensors (torchao weights as their inner int8/int4 data and scales), so a package is small
and the memory is the model's. (Where the compiler derives constants of its own, as its CPU int4 matmul does by
repacking the weights, the package is compiled again with the weights inside: a copy, on the CPU only so far.)
Packages are per model (shared by every decoder of it). On CUDA the decoder still captures one CUDA graph per bucket
(capture is cheap), each replaying the same package (not yet run on a GPU: bench/gpu measures it).

The step runs separate q/k/v and gate/up matmuls even with YUE_FUSED=1: the fused tensor of a group has no name in
the checkpoint, so the package could not be handed it as a constant.
"""
from __future__ import annotations

import logging
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch

from .fusion import layer_projections

log = logging.getLogger(__name__)

# model -> {shape key: loaded package}: packages are per model (their constants are its tensors), shared by decoders.
_PACKAGES: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()
REPORTS: list = []  # every package built in this process (CompileReport), for logs and bench/gpu


@dataclass(frozen=True)
class CompileReport:
    """One package built: for logs and bench/gpu."""

    key: tuple  # (rows, capacity, dtype, fast kernels, device)
    export_s: float
    compile_s: float
    package_bytes: int
    weights_inside: bool = False  # True: the package holds a copy of the weights (see _build)


class _Step(torch.nn.Module):
    """The decode step as a module whose only parameters are the decoder's (names as in the checkpoint).

    The attention length is an input's shape, not a constant: `blocks` is an empty tensor [length / bucket, 0], so
    one exported program (one package) serves every bucket of a cache; its first dimension is exported dynamic."""

    def __init__(self, decoder, bucket: int):
        super().__init__()
        self.decoder = decoder.decoder  # the transformers LlamaModel: its parameters become the package's constants
        self.static = [decoder]  # a list: not a submodule
        self.bucket = bucket

    def forward(self, ids, positions, slot, sees, visible, cos, sin, blocks, *caches):
        half = len(caches) // 2
        return self.static[0].step_function(ids, positions, slot, sees, visible, list(caches[:half]),
                                            list(caches[half:]), blocks.shape[0] * self.bucket, (cos, sin))


def _constant(root: torch.nn.Module, name: str) -> torch.Tensor | None:
    """The tensor AOTInductor calls `name`: a parameter or buffer of `root`, or (`<module>.parametrizations.<attr>.
    original<i>`) the i-th inner tensor of a tensor-subclass weight such as torchao's Int8Tensor; None for a constant
    the compiler derived itself (its CPU int4 matmul repacks the weights into new ones)."""
    if ".parametrizations." in name:
        owner, rest = name.split(".parametrizations.")
        attr, index = rest.split(".original")
        weight = getattr(root.get_submodule(owner), attr)
        inner_names, _ = weight.__tensor_flatten__()
        return getattr(weight, inner_names[int(index)])
    tensors = dict(root.named_parameters()) | dict(root.named_buffers())
    return tensors.get(name)


def _compile(program, path: Path, weights_inside: bool):
    torch._inductor.aoti_compile_and_package(program, package_path=str(path),
                                             inductor_configs={"aot_inductor.package_constants_in_so": weights_inside})
    return torch._inductor.aoti_load_package(str(path))


def _fake_like(tensors) -> tuple:
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):
        return tuple(torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=t.device) for t in tensors)


class AotStep:
    """Replaces `StaticDecoder._decode(length)`: runs the package of this (rows, capacity), compiling it the first
    time; every attention length (a multiple of `bucket` up to the capacity) runs the same package."""

    def __init__(self, decoder, bucket: int, folder: str | Path | None = None):
        self.decoder = decoder
        self.bucket = bucket
        self._tmp = None if folder else tempfile.TemporaryDirectory(prefix="yue-aot-")
        self.folder = Path(folder or self._tmp.name)
        self._blocks: dict[int, torch.Tensor] = {}  # length -> its empty shape carrier (kept: graphs replay them)

    def inputs(self, length: int) -> tuple:
        d = self.decoder
        blocks = self._blocks.get(length)
        if blocks is None:
            blocks = self._blocks[length] = torch.empty(length // self.bucket, 0, device=d.device)
        return (d.step_ids, d.step_positions, d.step_slot, d.step_sees, d.visible, d.cos, d.sin, blocks, *d.keys,
                *d.values)

    def __call__(self, length: int) -> None:
        d = self.decoder
        key = (d.rows, d.capacity, d.dtype, d.fast, str(d.device))
        packages = _PACKAGES.setdefault(d.decoder, {})
        if key not in packages:
            packages[key] = self._build(key)
        d.step_hidden.copy_(packages[key](*self.inputs(length)))

    def _build(self, key: tuple):
        d = self.decoder
        step = _Step(d, self.bucket)
        most = d.capacity // self.bucket
        # Traced at the longest length (a dimension traced at 1 would be specialised to 1); a one-bucket cache has
        # nothing to vary.
        inputs = self.inputs(most * self.bucket)
        blocks = torch.export.Dim("blocks", min=1, max=most) if most > 1 else None
        shapes = (None,) * 7 + ({0: blocks} if blocks is not None else None, (None,) * (len(inputs) - 8))  # *caches
        fused, d.projections = d.projections, [layer_projections(layer, False) for layer in d.layers]
        start = time.perf_counter()
        try:
            # Traced outside inference mode (the decode loop runs in it: torchao's weights cannot be re-wrapped from
            # inference tensors while tracing) on fake inputs of the same shapes (no memory; the real ones are
            # inference tensors, which may not be written outside it).
            with torch.inference_mode(False), torch.no_grad():
                program = torch.export.export(step, _fake_like(inputs), dynamic_shapes=shapes)
        finally:
            d.projections = fused
        exported = time.perf_counter()
        path = self.folder / f"step-{d.rows}x{d.capacity}-{len(REPORTS)}.pt2"
        runner = _compile(program, path, weights_inside=False)
        constants = {name: _constant(step, name) for name in runner.get_constant_fqns()}
        derived = sorted(name for name, tensor in constants.items() if tensor is None)
        if derived:  # the compiler made constants of its own from the weights: they must travel in the package
            log.info("the compiled step derives constants %s from the weights: packaging the weights", derived[:3])
            runner = _compile(program, path, weights_inside=True)
        else:  # the model's own tensors, not copies: the package reads the weights where they are
            runner.load_constants(constants, check_full_update=True, user_managed=True)
        report = CompileReport(key, exported - start, time.perf_counter() - exported, path.stat().st_size,
                               weights_inside=bool(derived))
        REPORTS.append(report)
        log.info("compiled decode step %s: export %.1f s, compile %.1f s, package %.1f MB", key, report.export_s,
                 report.compile_s, report.package_bytes / 1e6)
        return runner
