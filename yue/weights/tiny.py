"""Tiny randomly initialised checkpoints in the official file layouts, written offline in seconds.

They let every test and the offline demo run the real loading and generation code without the real weights. The
tokenizer is a SentencePiece model built piece by piece: same size (83 734 pieces), the same special and codec piece
ids as the official one, byte fallback and dummy prefix, but only single characters as text pieces.
"""
from __future__ import annotations

import json
import string
from pathlib import Path

from ..config import LLAMA_SIZES, LlamaSize
from ..text.tokens import SENTENCEPIECE_PIECES

BYTE_PIECES = 256
FIRST_SPECIAL = 32000
SPECIAL_PIECES = (
    "<EOD>", "<SOA>", "<EOA>", "<SOI>", "<EOI>", "<SOV>", "<EOV>", "<s_local>", "<e_local>", "<s_global>",
    "<e_global>", "<semantic>", "<acoustic>", "<stage_1>", "<dac_16k>", "<dac_44k>", "<xcodec>", "<stage_2>",
    "<semantic_mert>", "<semantic_hubert>", "<visual>", "<semanticodec>",
)
# (family, codebooks, codes per codebook) in vocabulary order, starting at id 32022 (SPEC §2.3).
CODEC_FAMILIES = (("dac16k", 4, 1024), ("dac44k", 9, 1024), ("xcodec", 12, 1024), ("mert", 1, 1024),
                  ("hubert", 1, 512), ("semantic/s", 1, 16384), ("semantic/a", 1, 8192))


def _codec_piece(family: str, codebooks: int, k: int, code: int) -> str:
    return f"<{family}/{k}/{code}>" if codebooks > 1 else f"<{family}/{code}>"


def write_tokenizer(path: Path) -> Path:
    """Write a YuE-layout SentencePiece model file (needs the protobuf package)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = pb.ModelProto()
    piece_type = pb.ModelProto.SentencePiece

    def add(text: str, kind=piece_type.NORMAL, score: float = 0.0) -> None:
        entry = model.pieces.add()
        entry.piece, entry.type, entry.score = text, kind, score

    add("<unk>", piece_type.UNKNOWN)
    add("<s>", piece_type.CONTROL)
    add("</s>", piece_type.CONTROL)
    for byte in range(BYTE_PIECES):
        add(f"<0x{byte:02X}>", piece_type.BYTE)
    text_pieces = ["▁"] + [c for c in string.ascii_letters + string.digits + string.punctuation]
    for rank, text in enumerate(text_pieces):
        add(text, score=-float(rank))
    while len(model.pieces) < FIRST_SPECIAL:
        add(f"<tiny_unused_{len(model.pieces)}>")
    for text in SPECIAL_PIECES:
        add(text)
    for family, codebooks, size in CODEC_FAMILIES:
        for k in range(codebooks):
            for code in range(size):
                add(_codec_piece(family, codebooks, k, code))
    assert len(model.pieces) == SENTENCEPIECE_PIECES, len(model.pieces)

    model.trainer_spec.model_type = pb.TrainerSpec.BPE
    model.trainer_spec.vocab_size = SENTENCEPIECE_PIECES
    model.trainer_spec.byte_fallback = True
    model.trainer_spec.split_digits = True
    model.trainer_spec.unk_id, model.trainer_spec.bos_id, model.trainer_spec.eos_id = 0, 1, 2
    model.trainer_spec.pad_id = -1
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = False
    model.normalizer_spec.escape_whitespaces = True
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def write_llama(folder: Path, size: LlamaSize, seed: int, with_tokenizer: bool) -> Path:
    """A randomly initialised LlamaForCausalLM saved like a Hub checkpoint (config.json + model.safetensors)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(**size.to_hf_dict())
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # wider weights than the 0.02 default so random logits are far apart (no near-ties)
        for name, param in model.named_parameters():
            if param.ndim == 2:
                param.normal_(0.0, 0.15)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2)
    model.save_pretrained(folder)
    if with_tokenizer:
        write_tokenizer(folder / "tokenizer.model")
    return folder


def write_tiny(folder: str | Path, seed: int = 0, codec: bool = True) -> dict[str, Path]:
    """Write tiny stage-1 (with tokenizer), stage-2 and codec checkpoints below `folder`; return their paths."""
    folder = Path(folder)
    paths = {
        "stage1": write_llama(folder / "s1", LLAMA_SIZES["tiny-s1"], seed, with_tokenizer=True),
        "stage2": write_llama(folder / "s2", LLAMA_SIZES["tiny-s2"], seed + 1, with_tokenizer=False),
    }
    if codec:
        from .codec_loading import write_tiny_codec

        paths["codec"] = write_tiny_codec(folder / "xcodec_mini_infer", seed=seed + 2)
    (folder / "README.txt").write_text(
        "Tiny randomly initialised YuE checkpoints written by `python -m yue tiny`. They produce noise, not music;\n"
        "they exist to test and demo the pipeline offline.\n" + json.dumps({k: str(v) for k, v in paths.items()}, indent=1)
    )
    return paths
