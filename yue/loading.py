"""Everything about LM weights: where they come from (local folder or Hub), precision, device.

Generation code never imports this module: it takes loaded modules.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .tokens import Tokenizer


def resolve(source: str | Path, allow_patterns: list[str] | None = None) -> Path:
    """A local folder as is; anything else is a Hub repo id, downloaded (or taken from the cache when offline)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{source} is a file; give a checkpoint folder or a Hub repo id")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(source), allow_patterns=allow_patterns))


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs (the official precision); fp32 on CPU, where bf16 matmuls are slow and tests want exactness."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def load_lm(source: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """A LlamaForCausalLM in eval mode on `device`."""
    from transformers import AutoModelForCausalLM

    device = torch.device(device)
    folder = resolve(source, ["*.json", "*.safetensors", "*.model"])
    attention = "sdpa"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or default_dtype(device), attn_implementation=attention)
    return model.to(device).eval()


def load_tokenizer(stage1_source: str | Path) -> Tokenizer:
    """The multimodal tokenizer shipped with every stage-1 checkpoint (`tokenizer.model`)."""
    return Tokenizer(resolve(stage1_source, ["*.json", "*.model"]) / "tokenizer.model")


@dataclass
class Models:
    """Loaded parts. `codec` and the vocoders may be None for a token-only pipeline (no audio)."""

    stage1: torch.nn.Module
    stage2: torch.nn.Module
    tokenizer: Tokenizer
    codec: torch.nn.Module | None = None
    vocal_vocoder: torch.nn.Module | None = None
    instrumental_vocoder: torch.nn.Module | None = None

    def prepare(self, stage: str) -> None:
        """Called before each stage ("stage1", "stage2", "audio"): the place for the memory plan (what lives on
        the device). Everything stays where it was loaded for now."""


CODEC_FILES = ["final_ckpt/config.yaml", "final_ckpt/ckpt_00360000.pth", "decoders/config.yaml",
               "decoders/decoder_131000.pth", "decoders/decoder_151000.pth", "semantic_ckpts/hf_1_325000/*.json"]


def load_models(stage1: str | Path, stage2: str | Path, codec: str | Path | None = None,
                device: str | torch.device | None = None, dtype: torch.dtype | None = None):
    """Every part of the pipeline, on one device (default: CUDA when present, else CPU)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    models = Models(load_lm(stage1, device, dtype), load_lm(stage2, device, dtype), load_tokenizer(stage1))
    if codec is not None:
        from .codec_loading import load_codec, load_vocoder

        folder = resolve(codec, CODEC_FILES)
        models.codec = load_codec(folder, device)
        models.vocal_vocoder = load_vocoder(folder, "vocal", device)
        models.instrumental_vocoder = load_vocoder(folder, "instrumental", device)
    return models
