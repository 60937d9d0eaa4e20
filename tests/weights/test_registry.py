"""yue/weights/registry.py: which repository holds each checkpoint, the official sizes, and the memory plan that
picks precisions and offload from the free memory."""
import pytest

from yue.weights import registry
from yue.weights.registry import GB, plan_memory


# -- registry --------------------------------------------------------------------------------------------------------

def test_registry_picks_official_repos_and_community_quantized_exports():
    """Stage 1 is per language and mode; int8 exists for all six, nf4 only for English; the codec is pinned."""
    assert registry.stage1_checkpoint("icl", "jp-kr").repo == "m-a-p/YuE-s1-7B-anneal-jp-kr-icl"
    assert registry.stage1_checkpoint("cot", "zh", "int8").repo == "Alissonerdx/YuE-s1-7B-anneal-zh-cot-int8"
    assert registry.stage1_checkpoint("cot", "en", "nf4").stored == "nf4"
    zh_nf4 = registry.stage1_checkpoint("cot", "zh", "nf4")  # no export: the official repo, quantized on load
    assert (zh_nf4.repo, zh_nf4.stored) == ("m-a-p/YuE-s1-7B-anneal-zh-cot", "bf16")
    assert registry.stage2_checkpoint("int8").repo == "Alissonerdx/YuE-s2-1B-general-int8"
    assert registry.stage2_checkpoint("nf4").repo == registry.STAGE2_REPO
    codec = registry.codec_checkpoint()
    assert codec.revision == "fe781a67815ab47b4a3a5fce1e8d0a692da7e4e5"
    assert not any(f.endswith("pytorch_model.bin") for f in codec.files)
    assert registry.TASK_MODES["style_transfer"] == "icl"
    with pytest.raises(ValueError, match="mode must be one of"):
        registry.stage1_checkpoint("lyrics")


def test_size_formula_gives_the_official_parameter_count():
    """The official stage-1 config has 6.22 B parameters (SPEC §7.1), 12.45 GB in bf16."""
    assert registry.STAGE1_SIZE.parameters == 6_224_613_376
    assert registry.STAGE1_SIZE.weight_bytes("bf16") == 2 * 6_224_613_376


# -- the memory plan -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("free_gb, expected", [
    (80, ("bf16", "bf16", False)),  # A100/H100: everything resident
    (23, ("bf16", "bf16", True)),  # RTX 4090 / A10G (24 GB): resident needs 24.2 GB free with the 1.96 B stage 2
    (20, ("bf16", "bf16", True)),  # bf16 fits only if parts take turns
    (16, ("nf4", "bf16", False)),  # 16 GB cards: int8 stage 1 + bf16 stage 2 needs 16.9 GB even with offload
    (14, ("nf4", "bf16", True)),  # a T4 with some memory taken
    (13, ("nf4", "int8", True)),  # 13 GB free: stage 2 quantized as a last resort
    (6, ("nf4", "int8", True)),  # too small: the smallest plan, with a warning
])
def test_auto_plan_from_free_gpu_memory(free_gb, expected):
    """"auto" takes the best precision that fits 90% of the free memory, preferring bf16 with offload over int8."""
    plan = plan_memory("cuda", int(free_gb * GB))
    assert (plan.stage1, plan.stage2, plan.offload) == expected
    assert ("does NOT fit" in plan.reason) == (free_gb == 6)


def test_plan_on_cpu_and_explicit_choices():
    """CPU: fp32 (or as asked), never offloaded; an explicit precision/offload is kept even when it does not fit."""
    assert plan_memory("cpu", None).precision == ("fp32", "fp32")
    assert plan_memory("cpu", None, "bf16", offload=True).offload is False
    plan = plan_memory("cuda", int(8 * GB), "bf16", offload=False)
    assert (plan.stage1, plan.offload) == ("bf16", False) and "does NOT fit" in plan.reason
    pair = plan_memory("cuda", int(16 * GB), ("nf4", "bf16"), offload=True)
    assert pair.precision == ("nf4", "bf16") and pair.need_bytes < 0.9 * 16 * GB and pair.reason.endswith("fits")
    with pytest.raises(ValueError, match="precision must be"):
        plan_memory("cuda", None, "fp8")


# What the docs say `auto` picks on a card: (file, the words, the card's memory in GB, (stage 1, stage 2, offload)).
CARD_FREE_GB = 1.0  # a card's memory less what CUDA's context and the driver take before any model (an estimate)
CARD_CLAIMS = [
    ("docs/models.md", "on `a10g-large` or `l4x1` (24 GB) bf16 with stage 1 offloaded before stage 2", 24,
     ("bf16", "bf16", True)),
    ("docs/models.md", "on `t4-small` or `t4-medium` (16 GB) nf4 stage 1 with bf16 stage 2", 16, ("nf4", "bf16", None)),
    ("docs/models.md", "on `l40sx1` (48 GB) or `a100-large` (80 GB) bf16 with everything resident", 48,
     ("bf16", "bf16", False)),
    ("docs/space.md", "`a10g-large` (24 GB) fits the 7B stage-1 model in bf16 with offload", 24, ("bf16", "bf16", True)),
    ("docs/space.md", "`a10g-large` (24 GB, the front matter's `suggested_hardware`: bf16 with stage 1 offloaded "
                      "before stage 2)", 24, ("bf16", "bf16", True)),
    ("docs/space.md", "`l40sx1` (48 GB) or `a100-large` (80 GB: everything resident)", 48, ("bf16", "bf16", False)),
    ("docs/space.md", "`t4-small` (16 GB: nf4 stage 1 with bf16 stage 2, what `auto` picks there)", 16,
     ("nf4", "bf16", None)),
    ("README.md", "40 GB+ resident (A100, H100, L40S, ZeroGPU); 24 GB cards (4090, A10G, L4) with offload", 24,
     ("bf16", "bf16", True)),
    ("README.md", "| nf4 / bf16 | 13.6 GB | 12.6 GB | 16 GB GPUs (T4, 4080) |", 16, ("nf4", "bf16", None)),
]


@pytest.mark.parametrize("file, words, card_gb, expected", CARD_CLAIMS)
def test_what_the_docs_say_auto_picks_on_a_card_is_what_it_picks(file, words, card_gb, expected):
    """Issue 25: docs/models.md said `auto` runs bf16 fully resident on 24 GB and int8 on 16 GB, docs/space.md nf4
    on a T4; the plan picks bf16 with offload and nf4 / bf16. Each claim is in its doc and equals the plan for the
    card's memory (less CUDA's share); None: either offload."""
    from tests import ROOT

    text = " ".join((ROOT / file).read_text().split())
    assert words in text, f"{file} no longer says {words!r}: update CARD_CLAIMS with what it says now"
    plan = plan_memory("cuda", int((card_gb - CARD_FREE_GB) * GB))
    assert (plan.stage1, plan.stage2) == expected[:2], plan.reason
    assert expected[2] is None or plan.offload == expected[2], plan.reason
