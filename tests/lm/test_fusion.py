"""yue.lm.fusion: fused q/k/v and gate/up matmuls give the tokens the separate ones give, over the model's own weights
(state dict, memory and checkpoints unchanged); quantized layers are left alone; the compiled decode step
(YUE_COMPILE) gives the eager step's tokens."""
import copy

import numpy as np
import pytest
import torch

from yue.lm import stage2
from yue.config import LLAMA_SIZES, Sampling, Stage2Config
from yue.lm.decoder import BUCKET, StaticDecoder
from yue.lm.fusion import (FUSED_BY_DEFAULT, Fused, FusedMLP, Separate, compile_mode, fusion_enabled, joined,
                        layer_projections)
from yue.text.prompt import build_prompt, parse_lyrics
from yue.lm.stage1 import generate_sections


def projection_groups(model):
    for layer in model.get_decoder().layers:
        attention, mlp = layer.self_attn, layer.mlp
        yield [attention.q_proj, attention.k_proj, attention.v_proj]
        yield [mlp.gate_proj, mlp.up_proj]


def is_fused(model) -> bool:
    return all(joined([m.weight for m in group]) is not None for group in projection_groups(model))


def storage_bytes(model) -> int:
    """Bytes of the distinct storages behind the parameters (what the weights really occupy)."""
    storages = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()}
    return sum(storages.values())


def unfused_copy(model):
    copied = copy.deepcopy(model)  # a deepcopy gives every parameter its own tensor again
    assert not is_fused(copied)
    return copied


def stage1_song(model, tokenizer):
    lyrics = "[verse]\nhello there\n\n[chorus]\nla la la\n\n[outro]\nbye now"
    prompt = build_prompt(tokenizer, "pop", parse_lyrics(lyrics).sections)
    settings = Sampling(max_new_tokens=40, min_new_tokens=40, do_sample=False)  # greedy, guidance 1.5 / 1.2
    return [(s.vocal.tolist(), s.instrumental.tolist()) for s in generate_sections(model, prompt, settings, seed=1)]


def stage2_codes(model):
    rng = np.random.default_rng(4)
    tracks = [rng.integers(0, 1024, 21), rng.integers(0, 1024, 13)]
    return stage2.generate(model, tracks, Stage2Config(chunk_frames=8))


def test_fused_greedy_tokens_equal_separate_ones_in_fp32(stage1_model, stage2_model, tiny_tokenizer, monkeypatch):
    """Stage 1 with guidance (3 sections) and stage 2 (2 tracks, several rows): the same greedy tokens with fused
    projections as with the modules called one by one (YUE_FUSED=0), and only the fused run fuses the weights."""
    for model, run in ((stage1_model, lambda m: stage1_song(m, tiny_tokenizer)), (stage2_model, stage2_codes)):
        model = unfused_copy(model)
        monkeypatch.setenv("YUE_FUSED", "0")
        separate = run(model)
        assert not is_fused(model)
        monkeypatch.setenv("YUE_FUSED", "1")
        fused = run(model)
        assert is_fused(model)
        assert len(fused) == len(separate) and all(np.array_equal(a, b) for a, b in zip(fused, separate))


def test_fusing_keeps_state_dict_memory_and_checkpoints(stage1_model, tmp_path, monkeypatch):
    """After fusing: the same state-dict keys, shapes and values, each projection a row block of its group's one
    storage (no second copy: the weights occupy the bytes they did); strict loading writes into the fused tensor,
    and save_pretrained / from_pretrained round-trips the values."""
    from yue.weights.loading import load_lm

    monkeypatch.setenv("YUE_FUSED", "1")
    model = unfused_copy(stage1_model)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    bytes_before = storage_bytes(model)
    StaticDecoder(model, 1, BUCKET)
    after = model.state_dict()
    assert is_fused(model) and list(after) == list(before)
    assert all(after[name].shape == before[name].shape and torch.equal(after[name], before[name]) for name in before)
    assert storage_bytes(model) == bytes_before
    for group in projection_groups(model):
        start = group[0].weight.data_ptr()
        ends = np.cumsum([m.weight.numel() * m.weight.element_size() for m in group])
        assert [m.weight.data_ptr() - start for m in group] == [0, *ends[:-1]]

    changed = {name: tensor + 1 for name, tensor in before.items()}
    model.load_state_dict(changed, strict=True)
    fused = layer_projections(model.get_decoder().layers[0], True).qkv
    assert is_fused(model) and torch.equal(fused.weight[:model.config.hidden_size], changed[
        "model.layers.0.self_attn.q_proj.weight"])

    model.save_pretrained(tmp_path)
    reloaded = load_lm(tmp_path).state_dict()
    assert all(torch.equal(reloaded[name], changed[name]) for name in changed)


def test_fusing_twice_copies_nothing_and_a_moved_model_is_fused_again(stage1_model, monkeypatch):
    """A second decoder finds the weights fused already (same storage); after `.to(dtype)` each parameter has its own
    tensor again, and the next decoder fuses them anew, with the moved values."""
    monkeypatch.setenv("YUE_FUSED", "1")
    model = unfused_copy(stage1_model)
    first = StaticDecoder(model, 1, BUCKET).projections[0]
    second = StaticDecoder(model, 1, BUCKET).projections[0]
    assert isinstance(first.qkv, Fused) and isinstance(first.feed_forward, FusedMLP)
    assert second.qkv.weight.data_ptr() == first.qkv.weight.data_ptr()
    assert second.feed_forward.gate_up.weight.data_ptr() == first.feed_forward.gate_up.weight.data_ptr()
    model.to(torch.float64)
    assert not is_fused(model)
    again = StaticDecoder(model, 1, BUCKET).projections[0].qkv
    assert is_fused(model) and again.weight.dtype == torch.float64
    q = model.get_decoder().layers[0].self_attn.q_proj.weight
    assert torch.equal(again.weight[:q.shape[0]], q) and again.weight.data_ptr() == q.data_ptr()


def decode(model, ids: torch.Tensor) -> torch.Tensor:
    """Hidden states of a prefill of all but 3 ids, then 3 decode steps."""
    rows, n = ids.shape
    positions = torch.arange(n).expand(rows, -1)
    with torch.inference_mode():
        dec = StaticDecoder(model, rows, BUCKET)
        out = [dec.prefill(ids[:, :-3], positions[:, :-3], 0)]
        out += [dec.step(slot, ids[:, slot], positions[:, slot]).clone() for slot in range(n - 3, n)]
    return torch.stack(out, 1)


def test_biases_are_fused_too_and_a_mixed_group_is_left_alone(monkeypatch):
    """A LLaMA with attention and MLP biases: fused (biases as row blocks of one tensor too) equals separate; a group
    where one layer has no bias stays separate and still computes the same."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**{**LLAMA_SIZES["tiny-s1"].to_hf_dict(), "attention_bias": True, "mlp_bias": True})
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 0.15)
    ids = torch.randint(3, 30000, (2, 12), generator=torch.Generator().manual_seed(2))
    monkeypatch.setenv("YUE_FUSED", "0")
    separate = decode(model, ids)
    monkeypatch.setenv("YUE_FUSED", "1")
    fused = decode(model, ids)
    torch.testing.assert_close(fused, separate, rtol=1e-5, atol=1e-5)
    attention = model.get_decoder().layers[0].self_attn
    assert joined([attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias]) is not None

    attention.k_proj.bias = None
    monkeypatch.setenv("YUE_FUSED", "0")
    separate = decode(model, ids)
    monkeypatch.setenv("YUE_FUSED", "1")
    dec = StaticDecoder(model, 1, BUCKET)
    assert isinstance(dec.projections[0].qkv, Separate) and isinstance(dec.projections[0].feed_forward, FusedMLP)
    torch.testing.assert_close(decode(model, ids), separate, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("precision, weight", [("bnb-int8", "Int8Params"), ("int8", "Int8Tensor"),
                                               ("int4", "Int4OpaqueTensor")])
def test_a_quantized_model_is_left_unfused_and_still_runs(tiny_lm_dir, tiny_tokenizer, monkeypatch, precision, weight):
    """With fusion on, quantized layers are called as they are: bitsandbytes layers (their own format) and torchao
    weights (tensor subclasses in a plain nn.Linear; fusing them would need new quantized tensors). Stage 1 gives
    the tokens it gives with fusion off."""
    if precision == "bnb-int8":
        pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s1", precision=precision)
    monkeypatch.setenv("YUE_FUSED", "0")
    separate = stage1_song(model, tiny_tokenizer)
    monkeypatch.setenv("YUE_FUSED", "1")
    projections = StaticDecoder(model, 1, BUCKET).projections
    assert all(isinstance(p.qkv, Separate) and p.feed_forward is layer.mlp
               for p, layer in zip(projections, model.get_decoder().layers))
    assert type(model.get_decoder().layers[0].self_attn.q_proj.weight).__name__ == weight
    sections = stage1_song(model, tiny_tokenizer)
    assert len(sections) == 3 and all(len(vocal) == 20 for vocal, _ in sections) and sections == separate


def test_settings_refuse_unknown_values_by_name(monkeypatch):
    """YUE_COMPILE takes 0, 1 or max-autotune-no-cudagraphs (reduce-overhead, with its own CUDA graphs, is refused by
    name); YUE_FUSED takes 0 or 1 and is off when unset (FUSED_BY_DEFAULT)."""
    for value, mode in (("0", None), ("1", "default"), ("max-autotune-no-cudagraphs", "max-autotune-no-cudagraphs")):
        monkeypatch.setenv("YUE_COMPILE", value)
        assert compile_mode() == mode
    monkeypatch.setenv("YUE_COMPILE", "reduce-overhead")
    with pytest.raises(ValueError, match="YUE_COMPILE='reduce-overhead'.*use 0"):
        compile_mode()
    monkeypatch.delenv("YUE_FUSED", raising=False)
    assert fusion_enabled() is FUSED_BY_DEFAULT is False
    for value, enabled in (("0", False), ("1", True)):
        monkeypatch.setenv("YUE_FUSED", value)
        assert fusion_enabled() is enabled
    monkeypatch.setenv("YUE_FUSED", "yes")
    with pytest.raises(ValueError, match="YUE_FUSED='yes'.*use 1"):
        fusion_enabled()


@pytest.fixture
def fresh_dynamo():
    yield
    torch._dynamo.reset()


def test_compiled_decode_step_gives_the_eager_tokens(stage1_model, stage2_model, tiny_tokenizer, monkeypatch,
                                                     fresh_dynamo):
    """YUE_COMPILE=1 (inductor; here its C++ backend): stage 1 with guidance and stage 2 give the greedy tokens of the
    eager step in fp32 (fused projections in both)."""
    monkeypatch.setenv("YUE_FUSED", "1")
    for model, run in ((stage1_model, lambda m: stage1_song(m, tiny_tokenizer)), (stage2_model, stage2_codes)):
        monkeypatch.setenv("YUE_COMPILE", "0")
        eager = run(model)
        monkeypatch.setenv("YUE_COMPILE", "1")
        probe = StaticDecoder(model, 1, BUCKET)
        assert probe.decode != probe._decode  # really the compiled step
        compiled = run(model)
        assert len(compiled) == len(eager) and all(np.array_equal(a, b) for a, b in zip(compiled, eager))
