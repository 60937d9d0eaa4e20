"""A full-size official-layout codec folder: the official config files (tests/data) with random weights written in
the official checkpoint formats by the reference modules (official names, official init)."""
import shutil
from pathlib import Path

import torch

from yue.weights import codec_layout, codec_loading

from .vocoder import Vocoder
from .xcodec import SoundStream

# The config files the loaders read (tests/data keeps the official ones)
READ_CONFIGS = ("final_ckpt/config.yaml", "decoders/config.yaml", "semantic_ckpts/hf_1_325000/config.json")


def write_official_folder(folder: Path, data_dir: Path) -> Path:
    for name in READ_CONFIGS:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / "xcodec_mini_infer" / name, folder / name)
    torch.manual_seed(0)
    state = SoundStream(codec_loading.codec_config(folder), codec_loading.hubert_config(folder)).state_dict()
    # older transformers (as in the official 2024 training code) saved HuBERT's pos-conv as weight_g / weight_v
    for old, new in codec_layout.POS_CONV_NAMES.items():
        state[codec_layout.POS_CONV + old] = state.pop(codec_layout.POS_CONV + new)
    torch.save({"codec_model": state, "optimizer_g": {"state": {}}}, folder / codec_loading.CODEC_WEIGHTS)
    for name in codec_loading.VOCODER_WEIGHTS.values():  # two different upsamplers, as the official files are
        torch.save(Vocoder(codec_loading.vocoder_config(folder)).state_dict(), folder / name)
    return folder
