"""Weight-only int8 and int4 with torchao: quantized on load from bf16/fp32 checkpoints, or carried over exactly from
the community bitsandbytes int8 exports.

Why torchao and not bitsandbytes: a torchao weight is a tensor subclass inside a plain `nn.Linear`. Its matmul has
no host sync and no data-dependent branch, so it runs inside the decoder's CUDA graphs and compiles (fused
dequantization); bitsandbytes' int8 layer splits outliers on the host each call (measured 0.09x bf16 on an H200).

* int8: one int8 row per output channel and one fp32 scale per row (torchao `Int8Tensor`, per row).
* int4: groups of INT4_GROUP_SIZE inputs share a scale and zero point, in the layout of PyTorch's
  `_weight_int4pack_mm` (CUDA: torchao's `tile_packed_to_4d`, bf16 only; CPU: its prototype CPU packing).
* lm_head stays as it is: stage 1 needs the full logits and stage 2 slices its weight per codebook (lmhead.py).

Only this module imports torchao, inside functions (it is optional until a torchao precision is asked for).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..lm.decoder import GRAPH_SAFE_WEIGHTS as TORCHAO_WEIGHTS  # the weight types made here
from .hub import ModelLoadError

TORCHAO_PRECISIONS = ("int8", "int4")
# 128 inputs per int4 scale/zero: torchao's and gpt-fast's default, the published speeds are for it, and every
# width of the 7B and the 1B (4096, 11008, 2048, 5504) is a multiple. A narrower layer (the tiny models) takes the
# largest of INT4_GROUP_SIZES that divides its input width.
INT4_GROUP_SIZE = 128
INT4_GROUP_SIZES = (INT4_GROUP_SIZE, 64, 32)  # the group sizes _weight_int4pack_mm supports, largest first
BNB_ROW_MAX = 127.0  # bitsandbytes int8 rows: weight = CB * SCB / 127 (SCB is each row's absolute maximum)


def quantized_linear(name: str, module) -> bool:
    """Which layers we quantize: the decoder's nn.Linear projections, never lm_head."""
    return isinstance(module, torch.nn.Linear) and name.startswith("model.layers.")


def int4_group_size(in_features: int) -> int | None:
    """The int4 group size for a layer this many inputs wide, or None when none of INT4_GROUP_SIZES divides it."""
    return next((size for size in INT4_GROUP_SIZES if in_features % size == 0), None)


def is_torchao(model) -> bool:
    """Whether `model`'s decoder linears hold torchao quantized weights."""
    return any(type(m.weight).__name__ in TORCHAO_WEIGHTS for name, m in model.named_modules()
               if quantized_linear(name, m))


def _torchao():
    try:
        import torchao.quantization as quantization
    except ImportError as e:
        raise ModelLoadError(f"precisions int8 and int4 need torchao ({e}): pip install 'torchao==0.18.*', or use "
                             "precision bf16 (or bnb-int8 / nf4 with bitsandbytes).") from e
    return quantization


def quantize(model, precision: str, device: torch.device | None = None) -> None:
    """Quantize `model`'s decoder linears in place, in the compute dtype; with `device`, each layer is moved there
    just before it is quantized (the rest of the model stays where it is: move it after)."""
    quantization = _torchao()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if precision == "int8":
        quantization.quantize_(model, quantization.Int8WeightOnlyConfig(set_inductor_config=False),
                               filter_fn=lambda m, name: quantized_linear(name, m), device=device)
        return
    if precision != "int4":
        raise ValueError(f"torchao precisions are {TORCHAO_PRECISIONS}, got {precision!r}")
    on_cuda = device.type == "cuda"
    if not on_cuda:
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
    for size in INT4_GROUP_SIZES:  # one pass per group size (quantize_ takes one config per call)
        if on_cuda:
            config = quantization.Int4WeightOnlyConfig(group_size=size, int4_packing_format="tile_packed_to_4d",
                                                       set_inductor_config=False)
        else:
            config = PrototypeInt4WeightOnlyConfig(group_size=size, set_inductor_config=False)
        quantization.quantize_(model, config, device=device, filter_fn=lambda m, name, size=size: (
            quantized_linear(name, m) and type(m.weight).__name__ not in TORCHAO_WEIGHTS
            and int4_group_size(m.in_features) == size))


def int8_from_bitsandbytes(rows: torch.Tensor, row_max: torch.Tensor, dtype: torch.dtype):
    """A torchao int8 weight holding bitsandbytes' int8 rows (`CB`, Int8[out, in]) as they are, with the scale
    `SCB / 127` per row (SCB: Float[out], each row's absolute maximum). No value is rounded again; dequantized it
    differs from bitsandbytes' own `CB * SCB / 127` only by the order of the two float32 operations (<= 1 ulp)."""
    quantization = _torchao()
    if rows.dtype != torch.int8 or rows.ndim != 2 or row_max.shape != rows.shape[:1]:
        raise ValueError(f"bitsandbytes int8 weights are Int8[out, in] rows and Float[out] row maxima, got "
                         f"{rows.dtype}{tuple(rows.shape)} and {tuple(row_max.shape)}")
    scale = (row_max.float() / BNB_ROW_MAX).reshape(-1, 1)
    return quantization.Int8Tensor(rows, scale, [1, rows.shape[1]], dtype)


def _read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{folder} has no .safetensors weights file.")
    tensors = {}
    for file in files:
        tensors.update(load_file(file))
    return tensors


def load_bitsandbytes_int8(folder: Path, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """A bitsandbytes int8 export (`<layer>.weight` int8 rows, `<layer>.SCB`, `<layer>.weight_format`) as a
    LlamaForCausalLM with torchao int8 decoder linears, without bitsandbytes. Strict: every parameter of the model
    must come from the file, and every tensor in the file must be used."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(folder)
    config.quantization_config = None
    del config.quantization_config
    with init_empty_weights():  # parameters on the meta device; buffers (rotary tables) real
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
    stored = _read_safetensors(folder)
    quantized = {}
    for name in [n for n in stored if n.endswith(".SCB")]:
        layer = name[:-len(".SCB")]
        stored.pop(f"{layer}.weight_format", None)
        rows, row_max = stored.pop(f"{layer}.weight").to(device), stored.pop(name).to(device)
        quantized[f"{layer}.weight"] = int8_from_bitsandbytes(rows, row_max, dtype)
    expected = set(model.state_dict())
    missing, unexpected = expected - set(stored) - set(quantized), (set(stored) | set(quantized)) - expected
    if missing or unexpected:
        raise ModelLoadError(f"{folder} is not an int8 export of this architecture: missing {sorted(missing)[:4]}, "
                             f"unexpected {sorted(unexpected)[:4]}.")
    model.load_state_dict({n: t.to(device, dtype) for n, t in stored.items()}, strict=False, assign=True)
    for name, weight in quantized.items():
        module = model.get_submodule(name[:-len(".weight")])
        module.weight = torch.nn.Parameter(weight, requires_grad=False)
    return model.to(device).eval()
