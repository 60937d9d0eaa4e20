"""yue.lm.compiled: the ahead-of-time compiled decode step (YUE_COMPILE=aot, AOTInductor's C++ backend here) gives
the eager step's greedy tokens, for stage 1 with guidance and stage 2 in fp32 and for stage 1 with torchao int8
weights, reading the model's own weights (a small package). Each compile takes 10-30 s on this machine: the songs
are short enough for one attention bucket and one batch shape each. ZeroGPU's spaces.aoti_* need a CUDA torch and
are not tested here."""
import numpy as np
import pytest
import torch

from yue.config import Sampling, Stage2Config
from yue.lm import compiled, stage2
from yue.lm.decoder import BUCKET, StaticDecoder
from yue.lm.stage1 import generate_sections
from yue.text.prompt import build_prompt, parse_lyrics


def stage1_tokens(model, tokenizer):
    prompt = build_prompt(tokenizer, "pop", parse_lyrics("[verse]\nhi\n\n[chorus]\nla").sections)
    settings = Sampling(max_new_tokens=24, min_new_tokens=24, do_sample=False)  # greedy, guidance 1.5 / 1.2
    sections = generate_sections(model, prompt, settings, seed=1, segments=1)
    return [(s.vocal.tolist(), s.instrumental.tolist()) for s in sections]


def stage2_tokens(model):
    return stage2.generate(model, [np.random.default_rng(4).integers(0, 1024, 8)], Stage2Config(chunk_frames=8))


def eager_and_compiled(model, run, monkeypatch):
    monkeypatch.setenv("YUE_COMPILE", "0")
    eager = run(model)
    monkeypatch.setenv("YUE_COMPILE", "aot")
    assert isinstance(StaticDecoder(model, 1, BUCKET).decode, compiled.AotStep)
    built = len(compiled.REPORTS)
    result = run(model)
    return eager, result, compiled.REPORTS[built:]


def test_compiled_step_gives_the_eager_tokens_in_fp32(stage1_model, stage2_model, tiny_tokenizer, monkeypatch):
    """Stage 1 with guidance (2 rows) and stage 2 (teacher-forced codebooks): the same greedy tokens; one package per
    shape, holding code, not the weights (they stay the model's: the tiny stage 1 alone is 43 MB in fp32)."""
    for model, run in ((stage1_model, lambda m: stage1_tokens(m, tiny_tokenizer)), (stage2_model, stage2_tokens)):
        eager, result, reports = eager_and_compiled(model, run, monkeypatch)
        assert len(result) == len(eager) and all(np.array_equal(a, b) for a, b in zip(result, eager))
        assert len(reports) == 1 and reports[0].package_bytes < 5e6


def test_compiled_step_gives_the_eager_tokens_with_torchao_int8(tiny_lm_dir, tiny_tokenizer, monkeypatch):
    """With int8 weights the package is handed their int8 rows and scales (user-managed constants) and gives the
    eager int8 step's tokens."""
    pytest.importorskip("torchao", reason="torchao is not installed")
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s1", precision="int8")
    eager, result, reports = eager_and_compiled(model, lambda m: stage1_tokens(m, tiny_tokenizer), monkeypatch)
    assert result == eager and len(reports) == 1 and not reports[0].weights_inside
    assert compiled._constant(compiled._Step(StaticDecoder(model, 1, BUCKET), BUCKET),
                              "decoder.layers.0.mlp.up_proj.parametrizations.weight.original0").dtype == torch.int8


def test_compiled_int4_step_on_the_cpu_packages_its_repacked_weights(tiny_lm_dir, monkeypatch):
    """Inductor's CPU int4 matmul repacks the weights into constants of its own, which the model cannot hand over:
    the package is compiled again with the weights inside, and gives the eager int4 stage 2's codes."""
    pytest.importorskip("torchao", reason="torchao is not installed")
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s2", precision="int4")
    eager, result, reports = eager_and_compiled(model, stage2_tokens, monkeypatch)
    assert all(np.array_equal(a, b) for a, b in zip(result, eager))
    assert len(reports) == 1 and reports[0].weights_inside
