"""Token id layout of the YuE multimodal vocabulary, the tokenizer, and codes <-> ids (SPEC §2).

Every magic id of the pipeline is named here once.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

# Special ids of the multimodal SentencePiece vocabulary (SPEC §2.1).
EOD = 32000
SOA = 32001  # start of audio
EOA = 32002  # end of audio; also the stage-1 stop token
STAGE_1 = 32013
XCODEC = 32016  # the xcodec "sep" token that opens every audio block
STAGE_2 = 32017

# xcodec ids: codebook k, code c -> XCODEC_OFFSET + CODEBOOK_SIZE * k + c (SPEC §2.3).
XCODEC_OFFSET = 45334
CODEBOOK_SIZE = 1024
XCODEC_CODEBOOKS = 12
XCODEC_END = XCODEC_OFFSET + CODEBOOK_SIZE * XCODEC_CODEBOOKS  # one past the last xcodec id

SENTENCEPIECE_PIECES = 83734
# Strings the official wrapper cuts out of text before SentencePiece; new strings get ids after the pieces.
SPECIAL_STRINGS = (
    "<CLS>", "<SEP>", "<EOD>", "<MASK>", "<SOA>", "<EOA>", "<SOV>", "<EOV>", "<SOI>", "<EOI>",
    "<s_local>", "<e_local>", "<s_global>", "<e_global>", "<stage_1>", "<stage_2>", "<PAD>", "<s>", "</s>",
)
TOKENIZER_VOCAB = 83738  # pieces + <CLS>, <SEP>, <MASK>, <PAD>

# Text naming a control or audio-code token. The wrapper turns every SPECIAL_STRINGS occurrence into its control id
# ('<SOA>' in lyrics became id 32001), and pieces EOD..83733 of the vocabulary are the model's control and audio-code
# pieces (<xcodec>, <xcodec/0/5>, <semantic/s/9> ...). SentencePiece never forms those from text (no such piece is two
# pieces merged), but no lyric means them either; text holding any of these names is refused (yue.text.prompt), so every
# other text keeps its official prompt. tests/test_tokens.py checks this list against the official tokenizer.model.
CONTROL_PIECE = re.compile(
    r"<(?:/s|s|CLS|SEP|MASK|PAD|EOD|[SE]O[AVI]|[se]_(?:local|global)|stage_[0-9]+|acoustic|visual|xcodec"
    r"|semantic(?:_mert|_hubert|odec)?|dac_[0-9]+k|(?:dac[0-9]+k|xcodec)/[0-9]+/[0-9]+|(?:mert|hubert)/[0-9]+"
    r"|semantic/[sa]/[0-9]+)>")


def codebook_range(k: int) -> tuple[int, int]:
    """[first, last + 1) ids of xcodec codebook k."""
    start = XCODEC_OFFSET + CODEBOOK_SIZE * k
    return start, start + CODEBOOK_SIZE


class Tokenizer:
    """The official `_MMSentencePieceTokenizer.tokenize` rule on a SentencePiece model file.

    Text is cut at registered special strings; each piece in between is encoded on its own (so SentencePiece adds
    its dummy "▁" prefix to each), no BOS/EOS is added.
    """

    def __init__(self, model_file: str | Path):
        import sentencepiece

        path = Path(model_file)
        if not path.is_file():
            raise FileNotFoundError(f"Tokenizer file not found: {path} (a stage-1 checkpoint folder holds tokenizer.model)")
        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
        pieces = self.sp.get_piece_size()
        if pieces != SENTENCEPIECE_PIECES:
            raise ValueError(f"{path} has {pieces} pieces; the YuE multimodal tokenizer has {SENTENCEPIECE_PIECES}")
        self.special_ids: dict[str, int] = {}
        next_id = pieces
        for text in SPECIAL_STRINGS:
            piece_id = self.sp.piece_to_id(text)
            if piece_id == self.sp.unk_id() and text != "<unk>":
                piece_id, next_id = next_id, next_id + 1
            self.special_ids[text] = piece_id
        for text, expected in (("<SOA>", SOA), ("<EOA>", EOA), ("<stage_1>", STAGE_1), ("<stage_2>", STAGE_2)):
            if self.special_ids[text] != expected:
                raise ValueError(f"{path}: {text} has id {self.special_ids[text]}, YuE expects {expected}")
        self.vocab_size = next_id

    def tokenize(self, text: str) -> list[int]:
        ids: list[int] = []
        while text:
            hits = [(text.find(s), s) for s in self.special_ids if s in text]
            if not hits:
                break
            start, special = min(hits)
            if start > 0:
                ids.extend(self.sp.encode_as_ids(text[:start]))
            ids.append(self.special_ids[special])
            text = text[start + len(special):]
        if text:
            ids.extend(self.sp.encode_as_ids(text))
        return ids

    def piece(self, token_id: int) -> str:
        return self.sp.id_to_piece(token_id)


def codes_to_ids(codes: np.ndarray) -> np.ndarray:
    """Codes (K, T) of codebooks 0..K-1 -> frame-major ids (T*K,): [t0k0, t0k1, ..., t1k0, ...]."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must have shape (codebooks, frames), got {codes.shape}")
    bad = (codes < 0) | (codes >= CODEBOOK_SIZE)
    if bad.any():
        k, t = np.argwhere(bad)[0]
        raise ValueError(f"code {int(codes[k, t])} at codebook {k}, frame {t} is outside 0..{CODEBOOK_SIZE - 1}")
    offsets = XCODEC_OFFSET + CODEBOOK_SIZE * np.arange(codes.shape[0], dtype=np.int64)[:, None]
    return (codes.astype(np.int64) + offsets).T.reshape(-1)


def ids_to_codes(ids, codebooks: int) -> np.ndarray:
    """Frame-major ids -> codes (codebooks, T) int64; every id must lie in its own codebook's range."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if ids.size % codebooks:
        raise ValueError(f"{ids.size} ids do not make whole frames of {codebooks} codebooks")
    frames = ids.reshape(-1, codebooks).T
    codes = frames - (XCODEC_OFFSET + CODEBOOK_SIZE * np.arange(codebooks, dtype=np.int64)[:, None])
    bad = (codes < 0) | (codes >= CODEBOOK_SIZE)
    if bad.any():
        k, t = np.argwhere(bad)[0]
        lo, hi = codebook_range(int(k))
        raise ValueError(f"id {int(frames[k, t])} at frame {t} is not an xcodec codebook-{k} id ({lo}..{hi - 1})")
    return codes


def interleave(vocal_ids, instrumental_ids) -> np.ndarray:
    """Stage-1 layout: v0, i0, v1, i1, ... (vocal first)."""
    vocal_ids, instrumental_ids = np.asarray(vocal_ids).reshape(-1), np.asarray(instrumental_ids).reshape(-1)
    if vocal_ids.shape != instrumental_ids.shape:
        raise ValueError(f"vocal ({vocal_ids.size}) and instrumental ({instrumental_ids.size}) tracks differ in length")
    return np.stack([vocal_ids, instrumental_ids], axis=1).reshape(-1)


def deinterleave(ids) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `interleave`; an odd trailing id (an unfinished frame) is dropped, as the official code does."""
    ids = np.asarray(ids).reshape(-1)
    ids = ids[: ids.size // 2 * 2]
    return ids[0::2], ids[1::2]
