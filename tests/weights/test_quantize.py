"""yue.weights.quantize: torchao int8 / int4 weight-only on load, bitsandbytes int8 exports carried over exactly, and
the combinations that cannot run refused before loading."""
import json
import sys

import numpy as np
import pytest
import torch

from yue import Pipeline
from yue.config import Sampling, Stage2Config
from yue.lm import stage2
from yue.lm.stage1 import generate_sections
from yue.text.prompt import build_prompt, parse_lyrics
from yue.weights import quantize, registry
from yue.weights.devices import check_precision
from yue.weights.hub import ModelLoadError
from yue.weights.loading import load_lm

pytest.importorskip("torchao", reason="torchao is not installed")


def decoder_linears(model):
    return {name: m for name, m in model.named_modules() if quantize.quantized_linear(name, m)}


@pytest.fixture(scope="module")
def bnb_export(tiny_lm_dir, tmp_path_factory):
    """The tiny stage 1 saved as bitsandbytes int8 (int8 rows, SCB row maxima), like the community exports."""
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is not installed")
    folder = tmp_path_factory.mktemp("bnb_int8")
    load_lm(tiny_lm_dir / "s1", precision="bnb-int8").save_pretrained(folder)
    return folder


@pytest.mark.parametrize("precision, weight", [("int8", "Int8Tensor"), ("int4", "Int4OpaqueTensor")])
def test_torchao_quantizes_the_decoder_linears_on_load_and_both_stages_run(tiny_lm_dir, tiny_tokenizer, precision,
                                                                           weight):
    """Every decoder projection of both tiny LMs gets a torchao weight inside a plain nn.Linear; lm_head and the
    embeddings stay as they were (full logits, per-codebook slices); stage 1 and stage 2 decode on them."""
    s1, s2 = load_lm(tiny_lm_dir / "s1", precision=precision), load_lm(tiny_lm_dir / "s2", precision=precision)
    for model in (s1, s2):
        linears = decoder_linears(model)
        assert len(linears) == 7 * model.config.num_hidden_layers
        assert {type(m).__name__ for m in linears.values()} == {"Linear"}
        assert {type(m.weight).__name__ for m in linears.values()} == {weight}
        assert type(model.lm_head.weight) is torch.nn.Parameter and model.lm_head.weight.dtype == torch.float32
    prompt = build_prompt(tiny_tokenizer, "pop", parse_lyrics("[verse]\nhello\n\n[chorus]\nla la").sections)
    sections = list(generate_sections(s1, prompt, Sampling(max_new_tokens=8, min_new_tokens=4), seed=1, segments=1))
    assert sections[0].frames >= 2 and ((sections[0].vocal >= 0) & (sections[0].vocal < 1024)).all()
    codes = np.arange(12) % 1024
    vocal, _ = stage2.generate(s2, [codes, codes], Stage2Config(chunk_frames=8))
    assert vocal.shape == (8, 12) and (vocal[0] == codes).all() and ((vocal >= 0) & (vocal < 1024)).all()


def test_int8_weights_dequantize_to_what_was_quantized(tiny_lm_dir):
    """Each row is rounded to the nearest multiple of its scale, absolute maximum / 127.5 (torchao's symmetric int8
    spans -128..127): dequantized, every weight is within half a step of the fp32 checkpoint's, the row's largest
    weight lands on the range's end, and the stored size is the registry's."""
    plain, int8 = load_lm(tiny_lm_dir / "s1", precision="fp32"), load_lm(tiny_lm_dir / "s1", precision="int8")
    original = decoder_linears(plain)
    stored = 0
    for name, module in decoder_linears(int8).items():
        w, q = original[name].weight.detach(), module.weight
        step = w.abs().amax(dim=1, keepdim=True) / 127.5
        assert q.qdata.dtype == torch.int8 and torch.allclose(q.scale, step, rtol=1e-6)
        assert ((q.dequantize(torch.float32) - w).abs() <= step * (0.5 + 1e-4)).all()  # + float32 rounding of w / step
        assert (q.qdata.int().abs().amax(dim=1) >= 127).all()
        stored += q.qdata.numel() + 4 * q.scale.numel()
    size = registry.llama_size(int8.config.to_dict())
    assert stored == size.weight_bytes("int8") - 2 * size.other


def test_bitsandbytes_int8_export_carries_its_rows_exactly(bnb_export):
    """precision int8 on a bitsandbytes export: the int8 rows are the file's, bit for bit (no second rounding), and
    the weights equal bitsandbytes' own dequantization `CB * SCB / 127` within one float32 ulp (the two products are
    rounded in another order). (The logits are not compared: LLM.int8 also rounds the activations to int8.)"""
    import bitsandbytes as bnb
    from safetensors.torch import load_file

    stored = load_file(bnb_export / "model.safetensors")
    model = load_lm(bnb_export, precision="int8")
    assert model.dtype == torch.float32
    for name, module in decoder_linears(model).items():
        rows, row_max = stored[f"{name}.weight"], stored[f"{name}.SCB"]
        assert torch.equal(module.weight.qdata, rows)
        theirs = bnb.functional.int8_vectorwise_dequant(rows, row_max)
        ours = module.weight.dequantize(torch.float32)
        assert ((ours - theirs).abs() <= torch.finfo(torch.float32).eps * theirs.abs()).all()
    assert torch.equal(model.model.embed_tokens.weight, stored["model.embed_tokens.weight"].float())


def test_an_export_with_missing_or_extra_tensors_is_refused(bnb_export, tmp_path):
    """Strict: a tensor missing from the file, or one the model does not have, is an error naming it."""
    from safetensors.torch import load_file, save_file

    stored = load_file(bnb_export / "model.safetensors")
    for name in ("config.json", "generation_config.json"):
        (tmp_path / name).write_text((bnb_export / name).read_text())
    del stored["model.layers.1.post_attention_layernorm.weight"]
    stored["model.layers.0.extra.weight"] = torch.zeros(2)
    save_file(stored, tmp_path / "model.safetensors")
    with pytest.raises(ModelLoadError, match=r"not an int8 export .*missing \['model.layers.1.post_attention_"
                                             r"layernorm.weight'\], unexpected \['model.layers.0.extra.weight'\]"):
        load_lm(tmp_path, precision="int8")


def test_the_pipeline_loads_int4_and_reports_it(tiny_lm_dir):
    """Pipeline.from_pretrained takes the new precision names through to both LMs and the load report."""
    pipeline = Pipeline.from_pretrained(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False,
                                        device="cpu", precision=("int4", "int8"))
    assert pipeline.models.report.precision == ("int4", "int8")
    assert type(pipeline.models.stage2.model.layers[0].mlp.up_proj.weight).__name__ == "Int8Tensor"
    assert "int4" in registry.PRECISIONS and registry.stage1_checkpoint("cot", "en", "int4").stored == "bf16"


def write_config(folder, **sizes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(sizes))
    return folder


def test_int4_refuses_widths_no_group_divides_and_old_gpus(tmp_path, monkeypatch):
    """int4 needs layer widths that are multiples of a group size, and on CUDA an sm80+ GPU: both refused before
    loading with what to use instead (the GPU is simulated: this machine has none)."""
    odd = write_config(tmp_path / "odd", hidden_size=48, intermediate_size=96)
    with pytest.raises(ModelLoadError, match="cannot run as int4: its layers are 48 wide.*Use precision int8"):
        check_precision(odd, torch.device("cpu"), "int4")
    check_precision(odd, torch.device("cpu"), "int8")
    ok = write_config(tmp_path / "ok", hidden_size=4096, intermediate_size=11008)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    with pytest.raises(ModelLoadError, match="compute capability 8.0 or newer.*Tesla T4 is 7.5. Use precision nf4"):
        check_precision(ok, torch.device("cuda"), "int4")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    check_precision(ok, torch.device("cuda"), "int4")


def test_missing_torchao_is_an_actionable_error(tiny_lm_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)  # import fails as if not installed
    with pytest.raises(ModelLoadError, match="need torchao .*pip install 'torchao==0.18.\\*', or use precision bf16"):
        load_lm(tiny_lm_dir / "s1", precision="int8")


def test_sizes_per_precision_for_the_7b():
    """The 7B's weights: 12.45 GB bf16, 6.92 GB int8, 4.32 GB int4 (not a half and a quarter: the 0.69 B parameters
    of the embeddings and lm_head stay 2-byte)."""
    size = registry.STAGE1_SIZE
    bf16, int8, int4 = (size.weight_bytes(p) for p in ("bf16", "int8", "int4"))
    assert int4 < int8 < bf16 and size.weight_bytes("bnb-int8") == int8
    assert int4 == size.linear // 2 + 4 * (size.linear // 128) + 2 * size.other
    assert (round(bf16 / 1e9, 2), round(int8 / 1e9, 2), round(int4 / 1e9, 2)) == (12.45, 6.92, 4.32)
