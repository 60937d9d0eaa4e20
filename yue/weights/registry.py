"""Which checkpoints exist, how much memory each needs, and which precision/offload plan fits a device.

Pure data and arithmetic: no Hub, no torch. `loading.py` turns a `Checkpoint` into files and a plan into placed
modules. Every size here is computed (parameters x bytes), not measured on a GPU; see docs/models.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import CONTEXT_TOKENS, LLAMA_SIZES

LANGUAGES = ("en", "zh", "jp-kr")  # the official stage-1 checkpoints come in these three language sets
MODES = ("cot", "icl")  # cot: lyrics only; icl: an audio reference in the prompt
TASK_MODES = {"lyrics_to_song": "cot", "style_transfer": "icl", "continuation": "icl"}
# The weights' precision (docs/models.md): fp32/bf16 as the checkpoint is; int8 / int4 weight-only with torchao (fast:
# CUDA graphs, compiled decode); bnb-int8 / nf4 with bitsandbytes (nf4: the only thing that holds the nf4 exports;
# bnb-int8 kept for comparison, bench/gpu measures both). The one list: the CLI, the API and the app offer these.
PRECISIONS = ("fp32", "bf16", "int8", "int4", "nf4", "bnb-int8")
QUANTIZED = ("int8", "int4", "nf4", "bnb-int8")
BITSANDBYTES = ("nf4", "bnb-int8")
EXPORTS = {"int8": "int8", "bnb-int8": "int8", "nf4": "nf4"}  # precision -> the community export that holds it

# The codec is pinned: its code and weights must match our re-implementation (SPEC §7.4).
CODEC_REPO = "m-a-p/xcodec_mini_infer"
CODEC_REVISION = "fe781a67815ab47b4a3a5fce1e8d0a692da7e4e5"
# Only what the pipeline reads; not semantic_ckpts/.../pytorch_model.bin: the HuBERT weights are inside the codec ckpt.
CODEC_FILES = ("final_ckpt/config.yaml", "final_ckpt/ckpt_00360000.pth", "decoders/config.yaml",
               "decoders/decoder_131000.pth", "decoders/decoder_151000.pth",
               "semantic_ckpts/hf_1_325000/config.json", "semantic_ckpts/hf_1_325000/preprocessor_config.json")
# An LM checkpoint in the Hugging Face layout; safetensors only (the official repos ship them, SPEC §7.1).
LM_FILES = ("config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json")
STAGE1_FILES = LM_FILES + ("tokenizer.model",)  # every stage-1 repo ships the multimodal tokenizer

STAGE2_REPO = "m-a-p/YuE-s2-1B-general"  # one stage-2 model for every language and mode
# Community bitsandbytes exports (SPEC §7.3); none is official.
PREQUANTIZED_STAGE1 = {"int8": {(lang, mode) for lang in LANGUAGES for mode in MODES},
                       "nf4": {("en", "cot"), ("en", "icl")}}
PREQUANTIZED_STAGE2 = {"int8": "Alissonerdx/YuE-s2-1B-general-int8"}


@dataclass(frozen=True)
class Checkpoint:
    """Where one part's files come from."""

    repo: str  # Hub id ("owner/name") or a local folder
    # A commit hash pins the files; None = the "main" branch as it is today. The LM repos are not pinned because we
    # have not verified their commit hashes; set this to pin them.
    revision: str | None = None
    files: tuple[str, ...] = ()  # allow_patterns: download only these (empty = everything)
    stored: str = "bf16"  # how the weights are stored: bf16, or int8/nf4 when exported already quantized (bitsandbytes)
    tokenizer_repo: str | None = None  # where tokenizer.model comes from if `repo` lacks it (community exports)


def stage1_repo(mode: str = "cot", language: str = "en") -> str:
    """The official stage-1 repo id of a mode and language."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES} (cot: lyrics to song; icl: with an audio reference), "
                         f"got {mode!r}")
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
    return f"m-a-p/YuE-s1-7B-anneal-{language}-{mode}"


def stage1_checkpoint(mode: str = "cot", language: str = "en", precision: str = "bf16") -> Checkpoint:
    """The stage-1 checkpoint to download: a pre-quantized export when one exists for this precision, else the
    official bf16 repo (quantized on load). The int8 exports serve both int8 (carried into torchao) and bnb-int8."""
    official = stage1_repo(mode, language)
    export = EXPORTS.get(precision)
    if (language, mode) in PREQUANTIZED_STAGE1.get(export, ()):
        name = official.split("/")[1]
        return Checkpoint(f"Alissonerdx/{name}-{export}", files=STAGE1_FILES, stored=export,
                          tokenizer_repo=official)
    return Checkpoint(official, files=STAGE1_FILES)


def stage2_checkpoint(precision: str = "bf16") -> Checkpoint:
    export = EXPORTS.get(precision)
    if export in PREQUANTIZED_STAGE2:
        return Checkpoint(PREQUANTIZED_STAGE2[export], files=LM_FILES, stored=export)
    return Checkpoint(STAGE2_REPO, files=LM_FILES)


def codec_checkpoint() -> Checkpoint:
    return Checkpoint(CODEC_REPO, CODEC_REVISION, CODEC_FILES, stored="fp32")


def pinned_revision(repo: str) -> str | None:
    """The revision we pin for a known repo id (so an explicit `codec="m-a-p/xcodec_mini_infer"` stays pinned)."""
    return CODEC_REVISION if repo == CODEC_REPO else None


# -- sizes ----------------------------------------------------------------------------------------------------------

GB = 1e9
BYTES = {"fp32": 4, "bf16": 2}  # compute dtype of unquantized weights; the quantized precisions keep them in 2 bytes
INT4_GROUP = 128  # inputs per int4 scale + zero point (quantize.INT4_GROUP_SIZE; this module imports no torch)
NF4_BLOCK = 64  # bitsandbytes 4-bit block size: one absmax per 64 weights
NF4_NESTED_BLOCK = 256  # double quant: absmax quantized to 8 bit, one fp32 scale per 256 of them


@dataclass(frozen=True)
class LmSize:
    """Parameter counts of a LLaMA, split by what bitsandbytes does with them."""

    linear: int  # decoder nn.Linear weights: quantized by int8/int4/nf4
    other: int  # embeddings, lm_head (kept unquantized: full logits, per-codebook slices) and norms
    out_rows: int  # sum of the quantized layers' output rows: int8 keeps one fp32 scale per row
    kv_bytes_per_token: int  # keys + values of all layers for one token, 2-byte dtype

    @property
    def parameters(self) -> int:
        return self.linear + self.other

    def weight_bytes(self, precision: str) -> int:
        """Bytes of the weights as loaded (fp32/bf16 whole; quantized linears + 2-byte rest). int4: half a byte per
        weight and a 2-byte scale and zero point per group (CUDA pads each layer's inputs to a multiple of 1024:
        ~1% more for the 7B, not counted)."""
        if precision in BYTES:
            return self.parameters * BYTES[precision]
        if precision in ("int8", "bnb-int8"):
            return self.linear + 4 * self.out_rows + 2 * self.other
        if precision == "int4":
            return self.linear // 2 + 4 * (self.linear // INT4_GROUP) + 2 * self.other
        if precision == "nf4":
            blocks = self.linear // NF4_BLOCK
            return self.linear // 2 + blocks + 4 * (blocks // NF4_NESTED_BLOCK) + 2 * self.other
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def llama_size(config: dict) -> LmSize:
    """Sizes from a LLaMA config.json dict."""
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv = config.get("num_key_value_heads") or heads
    q_rows, kv_rows = heads * head_dim, kv * head_dim
    rows = q_rows + 2 * kv_rows + hidden + 2 * inter + hidden  # q, k, v, o, gate, up, down
    linear = layers * (hidden * (q_rows + 2 * kv_rows) + q_rows * hidden + 3 * hidden * inter)
    embeddings = config["vocab_size"] * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return LmSize(linear, embeddings + (2 * layers + 1) * hidden, layers * rows, 2 * layers * kv_rows * 2)


# The official stage-1 config (SPEC §7.1): 6.22 B parameters.
STAGE1_SIZE = llama_size(LLAMA_SIZES["s1-7b"].to_hf_dict())
# Stage 2's config is not known (SPEC §7.2): the ESTIMATE in config.LLAMA_SIZES (1.96 B parameters, 16 heads of 128).
STAGE2_SIZE = llama_size(LLAMA_SIZES["s2-estimate"].to_hf_dict())
CODEC_BYTES = int(1.0 * GB)  # estimate: 160.7 M fp32 codec params (0.64 GB) + two Vocos upsamplers + decode buffers
STAGE1_CONTEXT = CONTEXT_TOKENS  # both guidance rows may grow to the full context
STAGE1_ACTIVATIONS = int(0.5 * GB)  # estimate: prefill of a few thousand tokens, logits, masks
# Stage 2's batch grows into whatever is free (stage2.memory_batch_size); plan for two 6 s rows of KV cache at least
# (2403 ids x 0.26 MB each with the estimate) plus activations. Measured on an H200 (bench/gpu, bf16): a 30 s
# section (10 rows) with everything resident peaked at 24.5 GiB.
STAGE2_WORK = 2 * 2403 * STAGE2_SIZE.kv_bytes_per_token + int(0.5 * GB)
SAFETY = 0.9  # plan for 90% of the free memory: allocator fragmentation, CUDA kernels loaded later


def stage1_work(size: LmSize = STAGE1_SIZE) -> int:
    """Stage-1 working memory: the KV cache of both guidance rows at full context, plus activations."""
    return 2 * STAGE1_CONTEXT * size.kv_bytes_per_token + STAGE1_ACTIVATIONS


def movable(precision: str) -> bool:
    """Whether the offload plan moves a model between CPU and GPU. bitsandbytes models stay where they were
    quantized: transformers >= 5 with bitsandbytes >= 0.48 allows `.to()` on them, but we have not verified the
    round trip on a GPU, and a quantized model is small anyway."""
    return precision not in QUANTIZED


# -- the memory plan ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemoryPlan:
    """What precision each LM gets and whether parts take turns on the device."""

    stage1: str  # precision of stage 1
    stage2: str
    offload: bool  # move each part to the device only for its stage (stage 1 goes to the CPU for stage 2 and audio)
    need_bytes: int  # computed peak device memory of this plan
    free_bytes: int | None  # device memory free when planned (None: unknown, e.g. CPU)
    reason: str  # one line for logs and the UI

    @property
    def precision(self) -> tuple[str, str]:
        return self.stage1, self.stage2


# Tried in order until one fits: best quality first; bf16 with offload beats int8 kept resident, and stage 2 (small)
# is quantized only as a last resort. The 4-bit choice is nf4, not int4: int4's CUDA kernel needs an sm80+ GPU and
# this plan knows only the free memory (int4 is there when asked for).
AUTO_CHOICES = (("bf16", "bf16"), ("int8", "bf16"), ("nf4", "bf16"), ("nf4", "int8"))


def peak_bytes(stage1: str, stage2: str, offload: bool, s1: LmSize = STAGE1_SIZE, s2: LmSize = STAGE2_SIZE) -> int:
    """Computed peak device bytes over the three phases of a run (stage 1, stage 2, audio).

    The stage-1 KV cache stays alive across phases (one cache for the whole song). With offload, a movable part is
    on the device only during its phase; a quantized part is always there.
    """
    w1, w2, kv1 = s1.weight_bytes(stage1), s2.weight_bytes(stage2), stage1_work(s1)
    if not offload:
        return w1 + w2 + CODEC_BYTES + kv1 + STAGE2_WORK
    fixed = (0 if movable(stage1) else w1) + (0 if movable(stage2) else w2)
    phases = [kv1 + fixed + (w1 if movable(stage1) else 0),
              kv1 + fixed + (w2 if movable(stage2) else 0) + STAGE2_WORK,
              kv1 + fixed + CODEC_BYTES]
    return max(phases)


def _precisions(precision: str | tuple[str, str]) -> tuple[str, str]:
    pair = (precision, precision) if isinstance(precision, str) else tuple(precision)
    for p in pair:
        if p not in PRECISIONS:
            raise ValueError(f"precision must be 'auto' or one of {PRECISIONS} (or a (stage1, stage2) pair), got {p!r}")
    return pair


def plan_memory(device_type: str, free_bytes: int | None, precision: str | tuple[str, str] = "auto",
                offload: bool | str = "auto", s1: LmSize = STAGE1_SIZE, s2: LmSize = STAGE2_SIZE) -> MemoryPlan:
    """Pick precisions and the offload policy from the device's free memory.

    device_type: "cuda", "cpu", ...; precision: "auto", one of PRECISIONS, or a (stage1, stage2) pair; offload:
    "auto", True (parts take turns on the device) or False (all resident).
    """
    if offload not in ("auto", True, False):
        raise ValueError(f"offload must be 'auto', True or False, got {offload!r}")
    gb = lambda n: f"{n / GB:.1f} GB"
    if device_type != "cuda":
        pair = ("fp32", "fp32") if precision == "auto" else _precisions(precision)
        # Everything already lives in RAM; moving parts around would only cost time.
        return MemoryPlan(*pair, False, peak_bytes(*pair, False, s1, s2), free_bytes,
                          f"{device_type}: {'/'.join(pair)}, all parts in RAM (no offload on CPU)")
    budget = None if free_bytes is None else int(free_bytes * SAFETY)
    choices = AUTO_CHOICES if precision == "auto" else (_precisions(precision),)
    offloads = (False, True) if offload == "auto" else (offload,)
    tried = [(pair, off, peak_bytes(*pair, off, s1, s2)) for pair in choices for off in offloads]
    fits = [t for t in tried if budget is None or t[2] <= budget]
    (pair, off, need), fit = (fits[0], True) if fits else (tried[-1], False)
    how = "offload (parts take turns on the GPU)" if off else "all parts resident"
    free = "free memory unknown" if free_bytes is None else f"{gb(free_bytes)} free"
    verdict = "fits" if fit else "does NOT fit: expect out-of-memory errors; free the GPU or use a bigger one"
    mode = "auto" if precision == "auto" else "asked"
    return MemoryPlan(*pair, off, need, free_bytes,
                      f"cuda: {'/'.join(pair)} ({mode}), {how}; needs ~{gb(need)}, {free}: {verdict}")
