"""Language models and the tokenizer from a folder or the Hub: precision (fp32 / bf16, torchao int8 / int4,
bitsandbytes bnb-int8 / nf4, or as stored), device, strict loads of the official layouts. `loading.py` builds the
whole set of models (and the memory plan) from these.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from . import registry
from .devices import check_device, check_precision
from .hub import ModelLoadError, _checkpoint, fetch
from .quantize import TORCHAO_PRECISIONS, load_bitsandbytes_int8, quantize
from .registry import Checkpoint
from ..text.tokens import Tokenizer

log = logging.getLogger(__name__)


# Dtype of the unquantized weights and activations. bnb-int8: LLM.int8 casts every matmul input to fp16 anyway (and
# logs a warning per call otherwise); nf4: the bf16 compute dtype of the official weights. The torchao precisions
# (int8, int4) compute in the device's default dtype (compute_dtype).
COMPUTE_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "bnb-int8": torch.float16, "nf4": torch.bfloat16}


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of a model's activations and unquantized weights at `precision` on `device`."""
    if precision in TORCHAO_PRECISIONS:  # bf16 on CUDA (int4's CUDA kernel is bf16 only), fp32 on the CPU
        return COMPUTE_DTYPES[default_precision(device)]
    return COMPUTE_DTYPES[precision]


def default_precision(device: torch.device) -> str:
    """bf16 on GPUs (the official precision); fp32 on CPU, where bf16 matmuls are slow and tests want exactness."""
    return "bf16" if torch.device(device).type == "cuda" else "fp32"


def quantization_config(precision: str):
    """bitsandbytes settings for quantize-on-load. lm_head stays unquantized: stage 1 needs full logits and stage 2
    slices `lm_head.weight` per codebook (lmhead.py)."""
    from transformers import BitsAndBytesConfig

    if precision == "bnb-int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=["lm_head"])
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16, llm_int8_skip_modules=["lm_head"])


def stored_precision(folder: Path) -> str | None:
    """int8/nf4 for a checkpoint exported already quantized with bitsandbytes, else None. "int8" names how it is
    stored (int8 rows and row scales): it loads as torchao int8, or as bitsandbytes when asked for bnb-int8."""
    quant = json.loads((folder / "config.json").read_text()).get("quantization_config") or {}
    if quant.get("load_in_8bit") or quant.get("_load_in_8bit"):
        return "int8"
    if (quant.get("load_in_4bit") or quant.get("_load_in_4bit")) and quant.get("bnb_4bit_quant_type") == "nf4":
        return "nf4"
    if quant:
        raise ModelLoadError(f"{folder} is quantized with {quant.get('quant_method')!r} "
                             f"({quant.get('bnb_4bit_quant_type', '')}); only bitsandbytes int8/nf4 exports or "
                             "unquantized checkpoints load here.")
    return None


def loaded_precision(stored: str | None, asked: str) -> str | None:
    """The precision a pre-quantized checkpoint loads at (None: not pre-quantized, it loads as asked). A
    bitsandbytes int8 export loads as torchao int8 unless bitsandbytes is asked for (bnb-int8)."""
    if stored == "int8" and asked == "bnb-int8":
        return "bnb-int8"
    return stored


def _load_lm_folder(folder: Path, device: torch.device, precision: str) -> tuple[torch.nn.Module, str]:
    """(model in eval mode on `device`, the precision it really has)."""
    from transformers import AutoModelForCausalLM

    stored = loaded_precision(stored_precision(folder), precision)
    if stored and stored != precision:
        log.info("%s is stored as %s; loading it as stored (asked for %s)", folder, stored, precision)
    precision = stored or precision
    dtype = compute_dtype(precision, device)
    # torchao: read on the CPU, then each layer goes to the device and is quantized there, so the device never holds
    # more than the quantized model and one unquantized layer (a 12 GB card can load the 7B as int4).
    staging = torch.device("cpu") if precision in TORCHAO_PRECISIONS else device
    kwargs = dict(dtype=dtype, device_map={"": staging},
                  attn_implementation="sdpa")  # sdpa, not the official hard-coded flash_attention_2
    if precision in registry.BITSANDBYTES and not stored:
        kwargs["quantization_config"] = quantization_config(precision)
    try:
        if stored == "int8":  # bitsandbytes' int8 rows and scales, carried into torchao as they are
            return load_bitsandbytes_int8(folder, device, dtype), precision
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        if precision in TORCHAO_PRECISIONS:
            quantize(model, precision, device)
            model.to(device)
    except ModelLoadError:
        raise
    except ImportError as e:
        raise ModelLoadError(f"{precision} precision needs bitsandbytes ({e}): pip install bitsandbytes, or use "
                             "precision='bf16'.") from e
    except Exception as e:
        raise ModelLoadError(f"could not load the LM in {folder} as {precision} ({type(e).__name__}: {e}). A truncated "
                             "weights file means an interrupted download or copy: delete it and fetch it again.") from e
    return model.eval(), precision


def load_lm(source: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
            precision: str | None = None, cache_dir=None) -> torch.nn.Module:
    """A LlamaForCausalLM in eval mode on `device` from a folder or Hub id; precision one of registry.PRECISIONS
    (default: from `dtype`, else bf16 on CUDA and fp32 on CPU). A checkpoint stored quantized loads as stored."""
    device = check_device(device)
    if precision is None and dtype is not None:
        precision = {torch.float32: "fp32", torch.bfloat16: "bf16"}.get(dtype)
        if precision is None:
            raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    precision = precision or default_precision(device)
    folder = fetch(_checkpoint(source, Checkpoint("", files=registry.LM_FILES)), "lm", cache_dir)
    check_precision(folder, device, loaded_precision(stored_precision(folder), precision) or precision)
    return _load_lm_folder(folder, device, precision)[0]


def _tokenizer(folder: Path, ck: Checkpoint, cache_dir=None) -> Tokenizer:
    if not (folder / "tokenizer.model").is_file() and ck.tokenizer_repo:
        folder = fetch(Checkpoint(ck.tokenizer_repo, files=("tokenizer.model",)), cache_dir=cache_dir)
    return Tokenizer(folder / "tokenizer.model")


def load_tokenizer(stage1_source: str | Path, cache_dir=None) -> Tokenizer:
    """The multimodal tokenizer shipped with every stage-1 checkpoint (`tokenizer.model`)."""
    ck = _checkpoint(stage1_source, Checkpoint("", files=("config.json", "tokenizer.model")))
    folder = fetch(ck, cache_dir=cache_dir)
    if not (folder / "tokenizer.model").is_file():
        raise ModelLoadError(f"{stage1_source} ({folder}) has no tokenizer.model: give a stage-1 checkpoint.")
    return Tokenizer(folder / "tokenizer.model")
