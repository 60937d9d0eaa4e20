"""yue.lm.compiled: the ahead-of-time compiled decode step (YUE_COMPILE=aot, AOTInductor's C++ backend here) gives
the eager step's greedy tokens, for stage 1 with guidance and stage 2 in fp32 and for stage 1 with torchao int8
weights, reading the model's own weights (a small package). Every run crosses attention buckets (256 slots): one
package serves them all (the length is a dynamic dimension of the exported step). Each compile takes 10-30 s on this
machine. ZeroGPU's spaces.aoti_* need a CUDA torch and are not tested here."""
import numpy as np
import pytest
import torch

from yue.config import Sampling, Stage2Config
from yue.lm import compiled, stage2
from yue.lm.decoder import BUCKET, StaticDecoder
from yue.lm.stage1 import generate_sections
from yue.text.prompt import build_prompt, parse_lyrics

NEW_TOKENS = 300  # stage 1: the prompt and these cross from the first attention bucket into the second
FRAMES = 40  # stage 2: 3 + 40 prompt ids and 320 decode steps cross one bucket (the cache holds 512 slots)


def stage1_tokens(model, tokenizer):
    prompt = build_prompt(tokenizer, "pop", parse_lyrics("[verse]\nhi\n\n[chorus]\nla").sections)
    settings = Sampling(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)  # guidance 1.5 / 1.2
    sections = generate_sections(model, prompt, settings, seed=1, segments=1)
    return [(s.vocal.tolist(), s.instrumental.tolist()) for s in sections]


def stage2_tokens(model):
    codes = np.random.default_rng(4).integers(0, 1024, FRAMES)
    return stage2.generate(model, [codes], Stage2Config(chunk_frames=FRAMES))


def eager_and_compiled(model, run, monkeypatch):
    """Both runs, the lengths the compiled one attended over, and the packages it built."""
    monkeypatch.setenv("YUE_COMPILE", "0")
    eager = run(model)
    monkeypatch.setenv("YUE_COMPILE", "aot")
    assert isinstance(StaticDecoder(model, 1, BUCKET).decode, compiled.AotStep)
    lengths = set()
    call = compiled.AotStep.__call__

    def counting(self, length):
        lengths.add(length)
        return call(self, length)

    monkeypatch.setattr(compiled.AotStep, "__call__", counting)
    built = len(compiled.REPORTS)
    result = run(model)
    return eager, result, lengths, compiled.REPORTS[built:]


def test_compiled_step_gives_the_eager_tokens_in_fp32(stage1_model, stage2_model, tiny_lm_dir, tiny_tokenizer,
                                                      monkeypatch):
    """Stage 1 with guidance (2 rows) and stage 2 (teacher-forced codebooks): the same greedy tokens across two
    attention buckets, with ONE package per model, holding code, not the weights (they stay the model's: the tiny
    stage 1 alone is 43 MB in fp32)."""
    for model, run in ((stage1_model, lambda m: stage1_tokens(m, tiny_tokenizer)), (stage2_model, stage2_tokens)):
        eager, result, lengths, reports = eager_and_compiled(model, run, monkeypatch)
        assert len(result) == len(eager) and all(np.array_equal(a, b) for a, b in zip(result, eager))
        assert sorted(lengths)[:2] == [BUCKET, 2 * BUCKET]
        assert len(reports) == 1 and reports[0].package_bytes < 5e6


def test_one_package_serves_every_bucket_of_a_cache(stage2_model, monkeypatch):
    """A decoder stepped through four buckets of a 1024-slot cache compiles once, each bucket's output is the eager
    step's (same cache, same inputs), and a second decoder of the same shape reuses the package."""
    slots = (5, BUCKET + 5, 2 * BUCKET + 5, 4 * BUCKET - 1)  # attention lengths 256, 512, 768, 1024
    built = len(compiled.REPORTS)

    def run(mode):
        monkeypatch.setenv("YUE_COMPILE", mode)
        decoder = StaticDecoder(stage2_model, 2, 4 * BUCKET)
        decoder.visible[:] = True  # every slot seen: the attention length decides what a step reads
        for cache in decoder.keys + decoder.values:  # the same contents (an AOT cache has a spare bucket after them)
            used = cache[:, :, : 4 * BUCKET]
            used.copy_(torch.randn(used.shape, generator=torch.Generator().manual_seed(0)))
        return [decoder.step(slot, torch.tensor([7, 9]), torch.tensor([slot, slot])).clone() for slot in slots]

    with torch.inference_mode():
        eager, aot, again = run("0"), run("aot"), run("aot")
    assert len(compiled.REPORTS) - built == 1
    for a, b, c in zip(eager, aot, again):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        assert torch.equal(b, c)
    assert not torch.allclose(eager[0], eager[-1])


def test_compiled_step_gives_the_eager_tokens_with_torchao_int8(tiny_lm_dir, tiny_tokenizer, monkeypatch):
    """With int8 weights the package is handed their int8 rows and scales (user-managed constants) and gives the
    eager int8 step's tokens across two buckets, from one package."""
    pytest.importorskip("torchao", reason="torchao is not installed")
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s1", precision="int8")
    eager, result, lengths, reports = eager_and_compiled(model, lambda m: stage1_tokens(m, tiny_tokenizer),
                                                         monkeypatch)
    assert result == eager and len(lengths) >= 2 and len(reports) == 1 and not reports[0].weights_inside
    assert compiled._constant(compiled._Step(StaticDecoder(model, 1, BUCKET), BUCKET),
                              "decoder.layers.0.mlp.up_proj.parametrizations.weight.original0").dtype == torch.int8


def test_compiled_int4_step_on_the_cpu_packages_its_repacked_weights(tiny_lm_dir, monkeypatch):
    """Inductor's CPU int4 matmul repacks the weights into constants of its own, which the model cannot hand over:
    the package is compiled again with the weights inside, and gives the eager int4 stage 2's codes (two buckets,
    one package)."""
    pytest.importorskip("torchao", reason="torchao is not installed")
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s2", precision="int4")
    eager, result, lengths, reports = eager_and_compiled(model, stage2_tokens, monkeypatch)
    assert all(np.array_equal(a, b) for a, b in zip(result, eager)) and len(lengths) >= 2
    assert len(reports) == 1 and reports[0].weights_inside
