"""yue.weights.codec_loading: official-layout folders load strictly; the official sizes give the official keys and
shapes."""
import argparse
import math
import shutil
import sys
import types

import numpy as np
import pytest
import torch

from tests.codec.reference.folder import READ_CONFIGS
from yue.codec.xcodec import SoundStream
from yue.weights import codec_layout, codec_loading

# The whole official layout: nothing reads the HuBERT preprocessor config (the official code feeds HuBERT the
# waveform as it is), but the folder has it.
OFFICIAL_CONFIGS = (*READ_CONFIGS, "semantic_ckpts/hf_1_325000/preprocessor_config.json")


def _wn(prefix: str, out: int, inp: int, kernel: int, transposed: bool = False) -> dict:
    """Legacy weight-norm conv keys: v [out, in, k] (transposed: [in, out, k]), g over dim 0, bias [out]."""
    v = (inp, out, kernel) if transposed else (out, inp, kernel)
    return {f"{prefix}.weight_v": v, f"{prefix}.weight_g": (v[0], 1, 1), f"{prefix}.bias": (out,)}


def _dac_residual(prefix: str, dim: int) -> dict:
    return {f"{prefix}.block.0.alpha": (1, dim, 1), **_wn(f"{prefix}.block.1", dim, dim, 7),
            f"{prefix}.block.2.alpha": (1, dim, 1), **_wn(f"{prefix}.block.3", dim, dim, 1)}


def _repcodec(prefix: str) -> dict:
    keys = {}
    for b in (0, 1):
        for r in (0, 1):
            keys[f"{prefix}.conv_blocks.{b}.res_units.{r}.conv1.conv.weight"] = (768, 768, 3)
            keys[f"{prefix}.conv_blocks.{b}.res_units.{r}.conv2.weight"] = (768, 768, 1)
        keys[f"{prefix}.conv_blocks.{b}.conv.conv.weight"] = (768, 768, 3)
        keys[f"{prefix}.conv_blocks.{b}.conv.conv.bias"] = (768,)
    return keys


def official_codec_shapes() -> dict:
    """Every state-dict entry of the official codec with its shape, written from the table of SPEC §5.1."""
    keys = _wn("encoder.block.0", 64, 1, 7)
    for i, (dim, stride) in enumerate(((128, 8), (256, 5), (512, 4), (1024, 2)), start=1):
        for r in range(3):
            keys.update(_dac_residual(f"encoder.block.{i}.block.{r}", dim // 2))
        keys[f"encoder.block.{i}.block.3.alpha"] = (1, dim // 2, 1)
        keys.update(_wn(f"encoder.block.{i}.block.4", dim, dim // 2, 2 * stride))
    keys["encoder.block.5.alpha"] = (1, 1024, 1)
    keys.update(_wn("encoder.block.6", 256, 1024, 3))
    keys["encoder_semantic.conv.conv.weight"] = (768, 768, 3)
    keys.update(_repcodec("encoder_semantic"))
    keys.update({"decoder_semantic.conv1.conv.weight": (768, 768, 3), "decoder_semantic.conv2.conv.weight": (768, 768, 3)})
    keys.update(_repcodec("decoder_semantic"))
    for i in range(12):
        p = f"quantizer.vq.layers.{i}._codebook"
        keys.update({f"{p}.inited": (1,), f"{p}.cluster_size": (1024,), f"{p}.embed": (1024, 1024),
                     f"{p}.embed_avg": (1024, 1024)})
    keys.update(_wn("decoder_2.model.0", 1024, 256, 7))
    for i, (inp, out, stride) in enumerate(((1024, 512, 8), (512, 256, 5), (256, 128, 4), (128, 64, 2)), start=1):
        keys[f"decoder_2.model.{i}.block.0.alpha"] = (1, inp, 1)
        keys.update(_wn(f"decoder_2.model.{i}.block.1", out, inp, 2 * stride, transposed=True))
        for r in (2, 3, 4):
            keys.update(_dac_residual(f"decoder_2.model.{i}.block.{r}", out))
    keys["decoder_2.model.5.alpha"] = (1, 64, 1)
    keys.update(_wn("decoder_2.model.6", 1, 64, 7))
    h = "semantic_model"
    keys[f"{h}.masked_spec_embed"] = (768,)
    for i, kernel in enumerate((10, 3, 3, 3, 3, 2, 2)):
        keys[f"{h}.feature_extractor.conv_layers.{i}.conv.weight"] = (512, 1 if i == 0 else 512, kernel)
    keys.update({f"{h}.feature_extractor.conv_layers.0.layer_norm.weight": (512,),
                 f"{h}.feature_extractor.conv_layers.0.layer_norm.bias": (512,),
                 f"{h}.feature_projection.layer_norm.weight": (512,), f"{h}.feature_projection.layer_norm.bias": (512,),
                 f"{h}.feature_projection.projection.weight": (768, 512), f"{h}.feature_projection.projection.bias": (768,),
                 f"{h}.encoder.pos_conv_embed.conv.bias": (768,),
                 f"{h}.encoder.pos_conv_embed.conv.parametrizations.weight.original0": (1, 1, 128),
                 f"{h}.encoder.pos_conv_embed.conv.parametrizations.weight.original1": (768, 48, 128),
                 f"{h}.encoder.layer_norm.weight": (768,), f"{h}.encoder.layer_norm.bias": (768,)})
    for i in range(12):
        p = f"{h}.encoder.layers.{i}"
        for proj in ("q", "k", "v", "out"):
            keys.update({f"{p}.attention.{proj}_proj.weight": (768, 768), f"{p}.attention.{proj}_proj.bias": (768,)})
        keys.update({f"{p}.layer_norm.weight": (768,), f"{p}.layer_norm.bias": (768,),
                     f"{p}.feed_forward.intermediate_dense.weight": (3072, 768),
                     f"{p}.feed_forward.intermediate_dense.bias": (3072,),
                     f"{p}.feed_forward.output_dense.weight": (768, 3072), f"{p}.feed_forward.output_dense.bias": (768,),
                     f"{p}.final_layer_norm.weight": (768,), f"{p}.final_layer_norm.bias": (768,)})
    for name, out, inp in (("fc_prior", 1024, 1024), ("fc_post1", 768, 1024), ("fc_post2", 256, 1024)):
        keys.update({f"{name}.weight": (out, inp), f"{name}.bias": (out,)})
    return keys


def official_vocoder_shapes() -> dict:
    """Every entry of decoder_131000.pth / decoder_151000.pth with its shape (SPEC §6.1)."""
    keys = {"backbone.embed.weight": (512, 1024, 7), "backbone.embed.bias": (512,), "backbone.norm.weight": (512,),
            "backbone.norm.bias": (512,), "backbone.final_layer_norm.weight": (512,),
            "backbone.final_layer_norm.bias": (512,), "head.out.weight": (3530, 512), "head.out.bias": (3530,),
            "head.istft.window": (3528,)}
    for i in range(8):
        p = f"backbone.convnext.{i}"
        keys.update({f"{p}.gamma": (512,), f"{p}.dwconv.weight": (512, 1, 7), f"{p}.dwconv.bias": (512,),
                     f"{p}.norm.weight": (512,), f"{p}.norm.bias": (512,), f"{p}.pwconv1.weight": (1536, 512),
                     f"{p}.pwconv1.bias": (1536,), f"{p}.pwconv2.weight": (512, 1536), f"{p}.pwconv2.bias": (512,)})
    return keys


@pytest.fixture
def tiny_codec_copy(tiny_dir, tmp_path):
    """A private copy of the tiny codec folder, for tests that damage it."""
    folder = tmp_path / "xcodec_mini_infer"
    shutil.copytree(tiny_dir / "xcodec_mini_infer", folder)
    return folder


def official_layout(folder) -> dict:
    """The official names and shapes load_codec demands: its XcodecModel's, renamed (no weights built)."""
    with torch.device("meta"):
        model = SoundStream(codec_loading.codec_config(folder), codec_loading.hubert_config(folder)).model
    return {k: tuple(v.shape) for k, v in codec_layout.to_official(model.state_dict(), model.config).items()}


def test_official_sizes_have_the_official_keys_shapes_and_parameter_counts(official_folder):
    """The loader demands all 530 codec entries with the SPEC §5.1 shapes, 160 715 330 parameters split per module
    as in the table, and the official folder loads; Vocos: the 81 entries of SPEC §6.1 and 18 127 818 parameters."""
    layout = official_layout(official_folder)
    expected = official_codec_shapes()
    assert len(expected) == 530
    assert layout == expected
    per_module = {"encoder": 12_770_944, "encoder_semantic": 14_747_136, "decoder_semantic": 16_516_608,
                  "decoder_2": 20_209_730, "semantic_model": 94_371_712, "fc_prior": 1_049_600, "fc_post1": 787_200,
                  "fc_post2": 262_400}
    counts = {name: 0 for name in per_module}
    for key, shape in layout.items():
        if not key.startswith("quantizer."):  # the codebooks are buffers
            counts[key.split(".")[0]] += math.prod(shape)
    assert counts == per_module and sum(counts.values()) == 160_715_330
    codec = codec_loading.load_codec(official_folder)
    assert all(q.codebook.inited.item() == 1 for q in codec.model.quantizer.quantizers)
    for which in ("vocal", "instrumental"):
        vocoder = codec_loading.load_vocoder(official_folder, which)
        state = codec_layout.vocoder_to_official(vocoder.state_dict(), vocoder.head.window)
        assert {k: tuple(v.shape) for k, v in state.items()} == official_vocoder_shapes()
        assert sum(p.numel() for p in vocoder.parameters()) == 18_127_818


def test_decode_only_load_keeps_the_decoding_parts_and_loads_the_rest_once(official_folder, monkeypatch):
    """decode_only keeps only fc_post2, the acoustic decoder (its weight norms folded) and the codebooks: 20.5 M
    parameters of 160.7 M, no HuBERT; the first encode reads the encoding parts from the checkpoint, once."""
    codec = codec_loading.load_codec(official_folder, decode_only=True)
    assert codec.model.semantic_model is None and codec.model.acoustic_encoder is None
    decoding = sum(math.prod(shape) for key, shape in official_layout(official_folder).items()
                   if key.startswith(("decoder_2.", "fc_post2.")) and not key.endswith("weight_g"))
    assert sum(p.numel() for p in codec.parameters()) == decoding == 20_463_425
    reads = []
    read = codec_loading._codec_state
    monkeypatch.setattr(codec_loading, "_codec_state", lambda folder: reads.append(folder) or read(folder))
    with torch.inference_mode():
        for _ in range(2):
            assert codec.encode(torch.zeros(1, 1, 3200), 1).shape == (1, 1, 10)
    assert len(reads) == 1 and codec.model.semantic_model is not None
    assert not any(p.is_inference() for p in codec.parameters())  # loaded under encode's inference mode, yet movable


def test_both_hubert_pos_conv_namings_load(official_folder, tmp_path):
    """The fixture stored weight_g/weight_v (old transformers); the parametrization names load too, same values."""
    folder = tmp_path / "x"
    shutil.copytree(official_folder, folder)
    checkpoint = torch.load(folder / codec_loading.CODEC_WEIGHTS, weights_only=True)
    state = checkpoint["codec_model"]
    for old, new in codec_layout.POS_CONV_NAMES.items():
        state[codec_layout.POS_CONV + new] = state.pop(codec_layout.POS_CONV + old)
    torch.save(checkpoint, folder / codec_loading.CODEC_WEIGHTS)
    loaded = codec_loading.load_codec(folder).state_dict()
    for new in codec_layout.POS_CONV_NAMES.values():
        assert torch.equal(loaded["model." + codec_layout.POS_CONV + new], state[codec_layout.POS_CONV + new])


def test_tiny_folder_has_the_official_layout(tiny_dir):
    """write_tiny_codec writes every official file name; the ckpt keeps its weights under 'codec_model'."""
    folder = tiny_dir / "xcodec_mini_infer"
    for name in (*OFFICIAL_CONFIGS, codec_loading.CODEC_WEIGHTS, *codec_loading.VOCODER_WEIGHTS.values()):
        assert (folder / name).is_file(), name
    assert "codec_model" in torch.load(folder / codec_loading.CODEC_WEIGHTS, weights_only=True)
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 20_000_000


class _RunsACommand:
    def __reduce__(self):
        import os

        return os.system, ("touch PWNED",)


def test_training_objects_in_the_checkpoint_load_inert(tmp_path, monkeypatch, tiny_codec_copy):
    """Training state pickled with classes unknown here (config objects, list subclasses, numpy scalars) does not
    stop the load (torch's weights_only refuses it); nothing in it is executed."""
    training = types.ModuleType("training_code")
    training.Config = type("Config", (), {"__module__": "training_code"})
    training.Steps = type("Steps", (list,), {"__module__": "training_code"})
    config = training.Config()
    config.ratios = [8, 5, 4, 2]
    checkpoint = torch.load(tiny_codec_copy / codec_loading.CODEC_WEIGHTS, weights_only=True)
    checkpoint.update(config=config, steps=training.Steps([1, 2]), args=argparse.Namespace(lr=1e-4),
                      step=np.int64(360000), hook=_RunsACommand())
    monkeypatch.setitem(sys.modules, "training_code", training)
    torch.save(checkpoint, tiny_codec_copy / codec_loading.CODEC_WEIGHTS)
    monkeypatch.delitem(sys.modules, "training_code")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tiny_codec_copy / codec_loading.CODEC_WEIGHTS, weights_only=True)
    codec = codec_loading.load_codec(tiny_codec_copy)
    assert torch.equal(codec.model.fc2.weight, checkpoint["codec_model"]["fc_post2.weight"])
    assert not (tmp_path / "PWNED").exists()


def test_legacy_torch_save_format_loads(tiny_codec_copy):
    """A pre-zip torch.save file (cannot be memory-mapped) still loads."""
    path = tiny_codec_copy / codec_loading.VOCODER_WEIGHTS["vocal"]
    state = torch.load(path, weights_only=True)
    torch.save(state, path, _use_new_zipfile_serialization=False)
    vocoder = codec_loading.load_vocoder(tiny_codec_copy, "vocal")
    assert torch.equal(vocoder.head.linear.bias, state["head.out.bias"])


def test_truncated_checkpoint_names_the_file(tiny_codec_copy):
    """A cut-off download is reported with its path and what to do."""
    path = tiny_codec_copy / codec_loading.CODEC_WEIGHTS
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"ckpt_00360000.pth is not a readable PyTorch checkpoint.*download it again"):
        codec_loading.load_codec(tiny_codec_copy)


def test_missing_key_and_wrong_shape_are_named(tiny_codec_copy):
    """A strict-load failure lists the missing key and the key with the wrong shape."""
    checkpoint = torch.load(tiny_codec_copy / codec_loading.CODEC_WEIGHTS, weights_only=True)
    del checkpoint["codec_model"]["fc_post2.bias"]
    checkpoint["codec_model"]["fc_prior.bias"] = torch.zeros(3)
    torch.save(checkpoint, tiny_codec_copy / codec_loading.CODEC_WEIGHTS)
    with pytest.raises(ValueError, match=r"missing: fc_post2.bias.*wrong shape: fc_prior.bias"):
        codec_loading.load_codec(tiny_codec_copy)


def test_checkpoint_without_codec_model_entry_is_named(tiny_codec_copy):
    """A raw state dict in place of the training checkpoint is refused with the entry it lacks."""
    checkpoint = torch.load(tiny_codec_copy / codec_loading.CODEC_WEIGHTS, weights_only=True)
    torch.save(checkpoint["codec_model"], tiny_codec_copy / codec_loading.CODEC_WEIGHTS)
    with pytest.raises(ValueError, match="has no 'codec_model' entry"):
        codec_loading.load_codec(tiny_codec_copy)


def test_missing_file_names_the_layout(tmp_path):
    """An empty folder names the first missing file of the official layout."""
    with pytest.raises(FileNotFoundError, match="final_ckpt/config.yaml is missing"):
        codec_loading.load_codec(tmp_path)


def test_config_without_generator_section_is_named(tiny_codec_copy):
    """A config.yaml that is not the official one says which section it lacks."""
    (tiny_codec_copy / codec_loading.CODEC_CONFIG).write_text("model: {}\n")
    with pytest.raises(ValueError, match="no 'generator.config' section"):
        codec_loading.load_codec(tiny_codec_copy)


def test_unknown_upsampler_is_refused(tiny_dir):
    """Only the vocal and instrumental upsamplers exist."""
    with pytest.raises(ValueError, match="vocal, instrumental"):
        codec_loading.load_vocoder(tiny_dir / "xcodec_mini_infer", "drums")
