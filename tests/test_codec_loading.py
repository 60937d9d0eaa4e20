"""yue.codec_loading: official-layout folders load strictly; the official sizes give the official keys and shapes."""
import shutil

import pytest
import torch

from yue import codec_loading
from yue.codec import SoundStream
from yue.vocoder import Vocoder

OFFICIAL_CONFIGS = ("final_ckpt/config.yaml", "decoders/config.yaml", "semantic_ckpts/hf_1_325000/config.json",
                    "semantic_ckpts/hf_1_325000/preprocessor_config.json")


@pytest.fixture(scope="module")
def official_folder(reference_dir, tmp_path_factory):
    """The official config files with full-size random weights written in the official checkpoint formats."""
    folder = tmp_path_factory.mktemp("xcodec_full")
    for name in OFFICIAL_CONFIGS:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(reference_dir / "xcodec_mini_infer" / name, folder / name)
    model = SoundStream(codec_loading.codec_config(folder), codec_loading.hubert_config(folder))
    state = model.state_dict()
    # older transformers (as in the official 2024 training code) saved HuBERT's pos-conv as weight_g / weight_v
    for new, old in (("parametrizations.weight.original0", "weight_g"), ("parametrizations.weight.original1", "weight_v")):
        state[codec_loading.POS_CONV + old] = state.pop(codec_loading.POS_CONV + new)
    torch.save({"codec_model": state, "optimizer_g": {"state": {}}}, folder / codec_loading.CODEC_WEIGHTS)
    vocoder = Vocoder(codec_loading.vocoder_config(folder)).state_dict()
    for name in codec_loading.VOCODER_WEIGHTS.values():
        torch.save(vocoder, folder / name)
    return folder


def test_official_sizes_have_the_official_keys_and_parameter_counts(official_folder):
    """530 state-dict entries and 160 715 330 parameters (SPEC §5.1); Vocos 81 entries, 18 127 818 (SPEC §6.1)."""
    codec = codec_loading.load_codec(official_folder)
    state = codec.state_dict()
    assert len(state) == 530
    assert sum(p.numel() for p in codec.parameters()) == 160_715_330
    shapes = {"encoder.block.1.block.0.block.1.weight_v": (64, 64, 7), "encoder.block.4.block.4.weight_v": (1024, 512, 4),
              "encoder.block.6.weight_v": (256, 1024, 3), "decoder_2.model.2.block.1.weight_v": (512, 256, 10),
              "decoder_2.model.1.block.1.weight_g": (1024, 1, 1), "decoder_2.model.6.weight_v": (1, 64, 7),
              "encoder_semantic.conv_blocks.1.res_units.0.conv2.weight": (768, 768, 1),
              "decoder_semantic.conv2.conv.weight": (768, 768, 3), "quantizer.vq.layers.11._codebook.embed": (1024, 1024),
              "quantizer.vq.layers.0._codebook.inited": (1,), "fc_prior.weight": (1024, 1024),
              "fc_post1.weight": (768, 1024), "fc_post2.weight": (256, 1024),
              "semantic_model.feature_extractor.conv_layers.0.conv.weight": (512, 1, 10)}
    for key, shape in shapes.items():
        assert tuple(state[key].shape) == shape, key
    for which in ("vocal", "instrumental"):
        vocoder = codec_loading.load_vocoder(official_folder, which)
        assert len(vocoder.state_dict()) == 81 and sum(p.numel() for p in vocoder.parameters()) == 18_127_818


def test_both_hubert_pos_conv_namings_load(official_folder, tmp_path):
    """The fixture stored weight_g/weight_v; the current parametrization names load too."""
    folder = tmp_path / "x"
    shutil.copytree(official_folder, folder)
    checkpoint = torch.load(folder / codec_loading.CODEC_WEIGHTS, weights_only=True)
    state = checkpoint["codec_model"]
    for old, new in codec_loading.POS_CONV_NAMES.items():
        state[codec_loading.POS_CONV + new] = state.pop(codec_loading.POS_CONV + old)
    torch.save(checkpoint, folder / codec_loading.CODEC_WEIGHTS)
    codec_loading.load_codec(folder)


def test_tiny_folder_has_the_official_layout(tiny_dir):
    folder = tiny_dir / "xcodec_mini_infer"
    for name in (*OFFICIAL_CONFIGS, codec_loading.CODEC_WEIGHTS, *codec_loading.VOCODER_WEIGHTS.values()):
        assert (folder / name).is_file(), name
    assert "codec_model" in torch.load(folder / codec_loading.CODEC_WEIGHTS, weights_only=True)


def test_missing_key_and_wrong_shape_are_named(tiny_dir, tmp_path):
    folder = tmp_path / "x"
    shutil.copytree(tiny_dir / "xcodec_mini_infer", folder)
    checkpoint = torch.load(folder / codec_loading.CODEC_WEIGHTS, weights_only=True)
    del checkpoint["codec_model"]["fc_post2.bias"]
    checkpoint["codec_model"]["fc_prior.bias"] = torch.zeros(3)
    torch.save(checkpoint, folder / codec_loading.CODEC_WEIGHTS)
    with pytest.raises(ValueError, match=r"missing: fc_post2.bias.*wrong shape: fc_prior.bias"):
        codec_loading.load_codec(folder)


def test_missing_file_names_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="final_ckpt/config.yaml is missing"):
        codec_loading.load_codec(tmp_path)


def test_unknown_upsampler_is_refused(tiny_dir):
    with pytest.raises(ValueError, match="vocal, instrumental"):
        codec_loading.load_vocoder(tiny_dir / "xcodec_mini_infer", "drums")
