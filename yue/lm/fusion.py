"""Fewer kernels per decode step, on request: fused projections (YUE_FUSED=1) and a compiled step (YUE_COMPILE=1).

Fused projections: one matmul for q/k/v and one for gate/up, over the checkpoint's own weights.

A decode step of the 7B runs ~1,100 small kernels; q, k and v read the same input, as do gate and up, so each group
can be one matmul whose output is split. To get there without a second copy of the weights and without touching
checkpoints, `fuse` concatenates a group's weights once and points each module's own parameter (`param.data`) at its
row block of the result: the parameters stay the same objects with the same names, shapes and values, so
`state_dict()`, strict `load_state_dict` (it copies into the block, in place) and `save_pretrained` (transformers
clones disjoint views of one storage) behave as before, and the memory is the same.

Only plain `nn.Linear` layers with plain floating weights on a real device and no hooks are fused (bitsandbytes layers
are subclasses with their own weight formats; accelerate's offload hooks swap weights in on call). torchao int8/int4
weights (tensor subclasses in a plain nn.Linear) are left unfused too: concatenating them would need a new quantized
tensor per group, not views of the layers' own, and compiling the step fuses their dequantization anyway. Biases are
fused too when every layer of the group has one; a group mixing biased and unbiased layers stays as it is. A group whose
weights are already row blocks of one tensor is not copied again (fusing is idempotent), and one that stopped being
(`model.to(...)` or a deepcopy gives each parameter its own tensor) is fused again the next time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# YUE_COMPILE values -> torch.compile modes. Only modes without their own CUDA graphs: the decoder captures its own.
# "aot": the step exported and compiled ahead of time with AOTInductor (yue/lm/compiled.py).
COMPILE_MODES = {"1": "default", "default": "default", "max-autotune-no-cudagraphs": "max-autotune-no-cudagraphs",
                 "aot": "aot"}


# Off until a GPU run shows it faster. On the CPU (bench/bench_fusion.py, 2 runs of 3 rounds) it is no win: stage 1
# 6-8% faster, stage 2 3-10% slower (fused prefills ~10% slower: silu x up on the strided halves of one output).
FUSED_BY_DEFAULT = False


def fusion_enabled() -> bool:
    """Fused q/k/v and gate/up matmuls in the decoder: YUE_FUSED=1 on, YUE_FUSED=0 off, unset FUSED_BY_DEFAULT."""
    value = os.environ.get("YUE_FUSED")
    if value is None:
        return FUSED_BY_DEFAULT
    if value not in ("0", "1"):
        raise ValueError(f"YUE_FUSED={value!r} is not a setting here: use 1 (fused projections) or 0 (separate).")
    return value == "1"


def fusable(linears) -> bool:
    """Plain floating-point `nn.Linear`s (plain weight tensors, not quantized subclasses) on one real device and dtype,
    same input size, all with or all without bias, and no hooks that a direct matmul would skip."""
    if not all(type(m) is torch.nn.Linear and type(m.weight) is torch.nn.Parameter for m in linears):
        return False
    first = linears[0].weight
    if first.device.type == "meta" or not first.dtype.is_floating_point:
        return False
    same = all(m.weight.device == first.device and m.weight.dtype == first.dtype
               and m.in_features == linears[0].in_features for m in linears)
    bias_kinds = {m.bias is None for m in linears}
    hooked = any(m._forward_hooks or m._forward_pre_hooks or hasattr(m, "_hf_hook") for m in linears)
    return same and len(bias_kinds) == 1 and not hooked


def joined(tensors) -> torch.Tensor | None:
    """The tensors as one tensor (concatenated along dim 0) without a copy, when they are consecutive contiguous
    blocks of one storage; else None."""
    first = tensors[0]
    storage = first.untyped_storage().data_ptr()
    offset = first.storage_offset()
    for tensor in tensors:
        if (not tensor.is_contiguous() or tensor.untyped_storage().data_ptr() != storage
                or tensor.storage_offset() != offset or tensor.shape[1:] != first.shape[1:]):
            return None
        offset += tensor.numel()
    rows = sum(tensor.shape[0] for tensor in tensors)
    return first.detach().as_strided((rows, *first.shape[1:]), first.stride(), first.storage_offset())


def _one_tensor(params) -> torch.Tensor:
    """The parameters as one tensor: their shared storage if they are row blocks of it already, else a new tensor
    holding all of them, with each parameter's data pointed at its row block (the old tensors are freed)."""
    whole = joined(params)
    if whole is not None:
        return whole
    # Outside inference mode: the new tensor must be a normal one, as parameters are.
    with torch.inference_mode(False), torch.no_grad():
        whole = torch.cat([p.detach() for p in params])
        start = 0
        for param in params:
            param.data = whole[start:start + param.shape[0]]
            start += param.shape[0]
    return whole


@dataclass(frozen=True)
class Fused:
    """Several linear layers reading the same input, as one matmul split by output."""
    weight: torch.Tensor  # [sum of outputs, in], a view of the layers' own weights
    bias: torch.Tensor | None
    sizes: tuple[int, ...]

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return F.linear(x, self.weight, self.bias).split(self.sizes, dim=-1)


def fuse(linears) -> Fused | None:
    """One matmul for `linears` (their weights made row blocks of one tensor, once), or None if they are not fusable."""
    if not fusable(linears):
        return None
    weight = _one_tensor([m.weight for m in linears])
    bias = None if linears[0].bias is None else _one_tensor([m.bias for m in linears])
    return Fused(weight, bias, tuple(m.out_features for m in linears))


class Separate:
    """The layers called one by one (quantized, hooked or mixed-bias layers, or YUE_FUSED=0)."""

    def __init__(self, linears):
        self.linears = tuple(linears)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(m(x) for m in self.linears)


@dataclass(frozen=True)
class FusedMLP:
    """LlamaMLP's forward, down_proj(act_fn(gate) * up), with gate and up from one matmul."""
    gate_up: Fused
    mlp: torch.nn.Module

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x)
        return self.mlp.down_proj(self.mlp.act_fn(gate) * up)


@dataclass(frozen=True)
class LayerProjections:
    """What the decoder calls for one LLaMA layer: q/k/v from the attention input, the MLP on its input."""
    qkv: Fused | Separate
    feed_forward: FusedMLP | torch.nn.Module  # the module itself when not fused


def layer_projections(layer, fused: bool) -> LayerProjections:
    """A decoder layer's projections, fused where `fused` and its layers allow (fusing the model's weights once)."""
    attention, mlp = layer.self_attn, layer.mlp
    qkv = [attention.q_proj, attention.k_proj, attention.v_proj]
    gate_up = fuse([mlp.gate_proj, mlp.up_proj]) if fused else None
    return LayerProjections((fuse(qkv) if fused else None) or Separate(qkv),
                            FusedMLP(gate_up, mlp) if gate_up is not None else mlp)


def compile_mode() -> str | None:
    """The torch.compile mode for the decode step from YUE_COMPILE, or None (unset or "0": not compiled).

    Off by default: compiling takes minutes and needs a C++ compiler (CPU) or Triton (GPU), and ZeroGPU does not
    allow compiling inside its GPU calls. For dedicated GPUs only."""
    value = os.environ.get("YUE_COMPILE", "0")
    if value == "0":
        return None
    if value not in COMPILE_MODES:
        raise ValueError(f"YUE_COMPILE={value!r} is not a setting here: use 0 (off), 1 (torch.compile's default mode), "
                         "max-autotune-no-cudagraphs or aot (AOTInductor packages); modes with their own CUDA "
                         "graphs (reduce-overhead, max-autotune) clash with the decoder's graphs.")
    return COMPILE_MODES[value]


def compiled(step, mode: str):
    """`step` compiled whole (fullgraph: a graph break would be a silent slow path). Shapes that change (rows, cache
    capacity, attention bucket) recompile once, then are treated as dynamic by torch.compile."""
    return torch.compile(step, mode=None if mode == "default" else mode, fullgraph=True)
