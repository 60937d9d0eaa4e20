"""Settings as small frozen dataclasses; every official default is named once, here.

Token ids and the codec id layout live in `tokens.py`; this file holds the knobs a user may turn.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

# Both LMs were trained with a 16384-token context (max_position_embeddings of the s1 config).
CONTEXT_TOKENS = 16384
# Lyric sections a run generates unless told otherwise: the official infer.py's `--run_n_segments 2` (new sections
# after any kept ones; fewer when the lyrics have fewer). The Python API (SongRequest.segments=None), the CLI
# (--segments) and the app (Sections to generate) all start from it; "all" generates every lyric section.
DEFAULT_SECTIONS = 2
ALL_SECTIONS = "all"


@dataclass(frozen=True)
class Sampling:
    """Stage-1 sampling settings; defaults are the official infer.py run (SPEC §3.4)."""

    top_p: float = 0.93  # nucleus size used by the official run
    temperature: float = 1.0
    # Not passed by infer.py, so transformers 4.x applied its GenerationConfig default of 50 (before top-p).
    top_k: int = 50
    repetition_penalty: float = 1.1  # official --repetition_penalty default
    guidance_first: float = 1.5  # CFG scale for the first lyric section
    guidance_later: float = 1.2  # CFG scale for every later section
    max_new_tokens: int = 3000  # per section: 1500 frames = 30 s of audio
    min_new_tokens: int = 100  # <EOA> is banned before this many new tokens
    do_sample: bool = True  # False = greedy (argmax), for reproducible checks

    def guidance(self, section_index: int) -> float:
        """CFG scale for the section at 0-based `section_index` of this run."""
        return self.guidance_first if section_index == 0 else self.guidance_later

    def greedy(self) -> "Sampling":
        return replace(self, do_sample=False)

    def check(self) -> None:
        """Raise ValueError naming the bad field and its command-line flag (`top_p (--top-p)`); the UI and the CLI
        show the message as is."""
        flag = lambda name: f"{name} (--{name.replace('_', '-')})"
        problems = []
        for name in ("top_k", "max_new_tokens", "min_new_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                problems.append(f"{flag(name)} must be a whole number, got {value!r}")
        for name in ("top_p", "temperature", "repetition_penalty", "guidance_first", "guidance_later"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                problems.append(f"{flag(name)} must be a finite number, got {value!r}")
        if not isinstance(self.do_sample, bool):
            problems.append(f"do_sample (--greedy switches it off) must be True or False, got {self.do_sample!r}")
        if problems:  # the range checks below need numbers
            raise ValueError("Invalid sampling settings: " + "; ".join(problems))
        if not 0.0 < self.top_p <= 1.0:
            problems.append(f"{flag('top_p')} must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            problems.append(f"{flag('top_k')} must be >= 0 (0 switches it off), got {self.top_k}")
        if not self.temperature > 0.0:
            problems.append(f"{flag('temperature')} must be > 0, got {self.temperature}")
        if not self.repetition_penalty > 0.0:
            problems.append(f"{flag('repetition_penalty')} must be > 0, got {self.repetition_penalty}")
        for name in ("guidance_first", "guidance_later"):
            if not getattr(self, name) >= 1.0:
                problems.append(f"{flag(name)} must be >= 1.0 (1.0 switches guidance off), got {getattr(self, name)}")
        if not 2 <= self.max_new_tokens <= CONTEXT_TOKENS // 2:
            problems.append(f"{flag('max_new_tokens')} must be between 2 and {CONTEXT_TOKENS // 2}, "
                            f"got {self.max_new_tokens}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            problems.append(f"{flag('min_new_tokens')} must be between 0 and max_new_tokens (--max-new-tokens), "
                            f"got {self.min_new_tokens}")
        if problems:
            raise ValueError("Invalid sampling settings: " + "; ".join(problems))


@dataclass(frozen=True)
class Stage2Config:
    """Stage-2 settings (SPEC §4)."""

    chunk_frames: int = 300  # the 1B model was trained on 6-second (300-frame) chunks
    codebooks: int = 8  # stage 2 outputs codebooks 0..7 (4 kbps)
    max_batch: int | None = None  # rows decoded at once; None = derive from free memory


@dataclass(frozen=True)
class LlamaSize:
    """Architecture of a LLaMA LM; the tiny presets exist for offline tests and demos."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int = 83968  # official s1 vocab: tokenizer's 83 738 ids padded to a multiple of 256
    max_position_embeddings: int = CONTEXT_TOKENS
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5

    def to_hf_dict(self) -> dict:
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.hidden_size // self.num_attention_heads,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rope_scaling": None,
            "rms_norm_eps": self.rms_norm_eps,
            "vocab_size": self.vocab_size,
            "tie_word_embeddings": False,
            "attention_bias": False,
            "mlp_bias": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pretraining_tp": 1,
            "initializer_range": 0.02,
        }


LLAMA_SIZES = {
    # The official stage-1 7B (SPEC §7.1).
    "s1-7b": LlamaSize(4096, 11008, 32, 32, 4),
    # Stage 2's config is not public (SPEC §7.2). ESTIMATE: public GGUF copies (Q8_0 2.09 GB, Q4_0 1.15 GB) imply
    # ~1.96 B parameters, which a LLaMA of this shape with the official vocab has (heads: 16 x 128, no GQA, assumed).
    "s2-estimate": LlamaSize(2048, 5504, 32, 16, 16),
    # Tiny random models: same vocab and id layout, a few MB, for tests and the offline demo.
    "tiny-s1": LlamaSize(64, 128, 2, 4, 2),
    "tiny-s2": LlamaSize(32, 64, 2, 4, 2),
    # A small model for the benchmarks (hidden 256, 4 layers).
    "bench": LlamaSize(256, 688, 4, 8, 2),
}


@dataclass(frozen=True)
class Limits:
    """Input limits shared by the CLI and the app, so both say the same thing."""

    max_sections: int = 12
    max_takes: int = 4  # versions of a song made in one batch (each costs a row pair of the stage-1 batch)
    max_lyrics_chars: int = 6000
    max_genre_chars: int = 400
    max_reference_seconds: float = 600.0
