"""yue.lm.decoder: our static-cache pass over the model's own modules equals the transformers forward, grows without
changing results, and never lets a query attend to nothing (the source of NaN on CUDA)."""
import importlib.util

import numpy as np
import pytest
import torch

from yue.lm import decoder as decoder_module
from yue.config import Sampling
from yue.lm.decoder import BUCKET, StaticDecoder
from yue.text.prompt import build_prompt, codes_to_stage1_ids, parse_lyrics
from yue.lm.guided import GuidedContext
from yue.lm.stage1 import Stage1Prompt, allowed_ids, generate_sections


def transformers_hidden(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.get_decoder()(input_ids=ids).last_hidden_state


@torch.inference_mode()
def test_prefill_then_steps_equal_the_transformers_forward(stage1_model):
    """Hidden states after a prefill and single-id steps (across a bucket boundary) equal one full forward."""
    ids = torch.randint(3, 30000, (2, BUCKET + 20), generator=torch.Generator().manual_seed(0))
    expected = transformers_hidden(stage1_model, ids)
    dec = StaticDecoder(stage1_model, 2, 64)  # grows while feeding
    first = BUCKET - 10
    positions = torch.arange(ids.shape[1]).expand(2, -1)
    got = [dec.prefill(ids[:, :first], positions[:, :first], 0)]
    for slot in range(first, ids.shape[1]):
        got.append(dec.step(slot, ids[:, slot], positions[:, slot]).clone())
    torch.testing.assert_close(got[0], expected[:, first - 1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.stack(got[1:], 1), expected[:, first:], rtol=1e-5, atol=1e-5)
    assert dec.capacity % BUCKET == 0 and dec.capacity >= ids.shape[1]


@torch.inference_mode()
def test_a_row_sees_only_its_visible_slots(stage1_model):
    """Row 1 fed only the last id of a prompt (at position 0) equals a fresh forward on that one id."""
    ids = torch.randint(3, 30000, (1, 30), generator=torch.Generator().manual_seed(1))
    dec = StaticDecoder(stage1_model, 2, BUCKET)
    dec.prefill(ids, torch.arange(30)[None], 0, slice(0, 1))
    alone = dec.prefill(ids[:, -1:], torch.zeros(1, 1, dtype=torch.long), 29, slice(1, 2))
    torch.testing.assert_close(alone, transformers_hidden(stage1_model, ids[:, -1:])[:, -1], rtol=1e-5, atol=1e-5)


@pytest.fixture
def no_empty_attention(monkeypatch):
    """Fail if any query row of any attention call has no visible key (CPU SDPA gives 0 there, CUDA kernels may
    give NaN, and a NaN in the value cache poisons every later step)."""
    real = decoder_module.F.scaled_dot_product_attention
    calls = []

    def checked(q, k, v, attn_mask=None, **kwargs):
        assert attn_mask is not None and bool(attn_mask.any(dim=-1).all()), "a query attends to no key at all"
        calls.append(q.shape)
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(decoder_module.F, "scaled_dot_product_attention", checked)
    return calls


def test_guidance_restarts_never_attend_to_nothing_and_keep_the_cache_finite(stage1_model, tiny_tokenizer,
                                                                            no_empty_attention):
    """A song with kept sections, guidance restarts at each new section and long chunked prompts: every query row
    sees at least one key, and no cache entry is ever NaN or infinite."""
    lyrics = "[verse]\nhello there\n\n[chorus]\nla la la\n\n[outro]\nbye now"
    prompt = build_prompt(tiny_tokenizer, "pop", parse_lyrics(lyrics).sections)
    rng = np.random.default_rng(0)
    done = (codes_to_stage1_ids(rng.integers(0, 1024, 1100), rng.integers(0, 1024, 1100)),)  # > one prefill chunk
    prompt = Stage1Prompt(prompt.pieces, done, False, prompt.labels)
    settings = Sampling(max_new_tokens=12, min_new_tokens=4)
    sections = list(generate_sections(stage1_model, prompt, settings, seed=3))
    assert [s.generated for s in sections] == [False, True, True] and no_empty_attention

    context = GuidedContext(stage1_model, allowed_ids("cpu"))
    cond, uncond = context.feed([list(prompt.pieces[0])], restart_uncond=True)
    for choice in [1, 67, 167]:
        cond, uncond = context.step([int(context.subset[choice])], [choice], [True])
    cond, uncond = context.feed([list(prompt.pieces[1])], restart_uncond=True)
    assert torch.isfinite(cond).all() and torch.isfinite(uncond).all()
    assert context.decoder.finite()


def test_takes_that_end_a_section_early_never_attend_to_nothing(stage1_model, tiny_tokenizer, no_empty_attention):
    """Takes stepping on slots they do not see (their section is over) still see their own earlier slots."""
    import copy

    from yue.text import tokens
    from yue.lm.stage1 import generate_takes

    model = copy.deepcopy(stage1_model)
    with torch.no_grad():
        model.lm_head.weight[tokens.EOA] = model.lm_head.weight[tokens.XCODEC_OFFSET + 3] * 4
    prompt = build_prompt(tiny_tokenizer, "pop", parse_lyrics("[verse]\nhello\n\n[chorus]\nla la\n\n[outro]\nbye").sections)
    sections = list(generate_takes(model, prompt, Sampling(max_new_tokens=30, min_new_tokens=4), seed=5, takes=3))
    assert len({2 * s.frames for s in sections[-1]}) > 1 or len({2 * s.frames for s in sections[0]}) > 1


class HostSyncs(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the ops that make a CUDA stream wait for the host, or the host for the GPU: reading a value back
    (`.item()`, `bool(tensor)`) and ops whose output size depends on the data. None may run in a captured graph."""

    SYNCING = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "item")

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in self.SYNCING:
            self.seen.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_the_host_sync_detector_sees_reads_and_data_dependent_shapes():
    x = torch.arange(4.0)
    with HostSyncs() as syncs:
        x.sum().item()
        bool(x.any())
        x.nonzero()
    assert syncs.seen == ["_local_scalar_dense", "_local_scalar_dense", "nonzero"]


@pytest.mark.parametrize("precision", ["fp32", "int8", "int4"])
@torch.inference_mode()
def test_a_decode_step_with_torchao_weights_never_syncs_with_the_host(tiny_lm_dir, precision):
    """The decode step's ops on plain and torchao int8/int4 weights include nothing that syncs, so CUDA graphs may
    capture it and the decoder allows them (bitsandbytes layers are refused by type: their CUDA path syncs)."""
    if precision != "fp32":
        pytest.importorskip("torchao", reason="torchao is not installed")
    from yue.weights.loading import load_lm

    model = load_lm(tiny_lm_dir / "s1", precision=precision)
    dec = StaticDecoder(model, 2, BUCKET)
    dec.prefill(torch.tensor([[5, 6, 7]] * 2), torch.arange(3).expand(2, -1), 0)
    dec.step_ids.fill_(8)
    dec.step_positions.fill_(3)
    with HostSyncs() as syncs:
        dec.step(3)
    assert syncs.seen == [] and decoder_module.graph_safe_weights(model)
    if importlib.util.find_spec("bitsandbytes"):
        assert not decoder_module.graph_safe_weights(load_lm(tiny_lm_dir / "s1", precision="bnb-int8"))
