"""Codec and upsampler weights on disk, in the official xcodec_mini_infer folder layout:

    final_ckpt/config.yaml, final_ckpt/ckpt_00360000.pth ({"codec_model": state_dict, ...training state})
    semantic_ckpts/hf_1_325000/config.json (+ preprocessor_config.json)   HuBERT config; weights are in the ckpt
    decoders/config.yaml, decoders/decoder_131000.pth (vocal), decoders/decoder_151000.pth (instrumental)

Loads are strict: every official key name and shape, checked before anything is kept. The weights go into
transformers' XcodecModel and the Vocos head under their names there (yue.weights.codec_layout); decoding loads
only the decoding parts. The tiny writer produces the same layout with small sizes.
"""
from __future__ import annotations

import functools
import json
import pickle
from pathlib import Path

import torch
import yaml

from ..codec.xcodec import DECODE_PARTS, ENCODE_PARTS, CodecConfig, SoundStream
from ..codec.vocoder import Vocoder, VocoderConfig
from . import codec_layout

CODEC_CONFIG = "final_ckpt/config.yaml"
CODEC_WEIGHTS = "final_ckpt/ckpt_00360000.pth"
HUBERT_CONFIG = "semantic_ckpts/hf_1_325000/config.json"
HUBERT_PREPROCESSOR = "semantic_ckpts/hf_1_325000/preprocessor_config.json"
VOCODER_CONFIG = "decoders/config.yaml"
VOCODER_WEIGHTS = {"vocal": "decoders/decoder_131000.pth", "instrumental": "decoders/decoder_151000.pth"}
TINY_KEY = "tiny_dims"  # extra config.yaml key of tiny test folders; absent in the official file = official sizes


def _file(folder: Path, name: str) -> Path:
    path = Path(folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is missing in {folder} (expected the m-a-p/xcodec_mini_infer layout)")
    return path


class _Inert:
    """Stands in for an object of the training code pickled beside the weights: takes any arguments and state,
    runs nothing, holds nothing."""

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __setitem__(self, key, value):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass


class _InertUnpickler(pickle.Unpickler):
    """Resolves only the globals torch's weights-only loader allows (tensor rebuilding, storages, OrderedDict...);
    every other class or function becomes an `_Inert` stand-in, so nothing from the file is ever executed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from torch import _weights_only_unpickler  # torch's own allowlist (private, but it is the weights-only rule)

        self.allowed = _weights_only_unpickler._get_allowed_globals()

    def find_class(self, module: str, name: str):
        if f"{module}.{name}" in self.allowed:
            return self.allowed[f"{module}.{name}"]
        return type(name, (_Inert,), {"__module__": module})


class _InertPickle:
    """A `pickle_module` for torch.load built on `_InertUnpickler`."""

    __name__ = "yue_inert_pickle"
    Unpickler = _InertUnpickler

    @staticmethod
    def load(file, **kwargs):
        return _InertUnpickler(file, **kwargs).load()


def _torch_load(path: Path, **kwargs) -> dict:
    try:
        # mmap: the official codec file also holds training state we never read; it stays on disk
        return torch.load(path, map_location="cpu", mmap=True, **kwargs)
    except RuntimeError as error:
        if "mmap" not in str(error):
            raise
        return torch.load(path, map_location="cpu", **kwargs)  # a legacy (pre-zip) torch.save file cannot be mapped


def _load_torch(path: Path) -> dict:
    """The object saved in a torch.save file, executing nothing from the file."""
    try:
        try:
            return _torch_load(path, weights_only=True)
        except pickle.UnpicklingError:
            # The official ckpt_00360000.pth pickles training-time objects beside the weights (the official YuE code
            # had to switch to weights_only=False for torch >= 2.6, YuE PR #42); load them as inert stand-ins.
            return _torch_load(path, weights_only=False, pickle_module=_InertPickle)
    except Exception as error:  # a truncated download or a foreign file: say which file
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}: {error}); "
                         "delete it and download it again") from None


def _read_yaml(folder: Path, name: str, *keys: str) -> dict:
    """The mapping at raw[keys[0]][keys[1]]... of a YAML config, or a ValueError naming the file and the key."""
    path = _file(folder, name)
    node = yaml.safe_load(path.read_text())
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise ValueError(f"{path} has no '{'.'.join(keys)}' section; is it the official config file?")
        node = node[key]
    return node


def codec_config(folder: Path) -> CodecConfig:
    """`generator.config` of final_ckpt/config.yaml (+ the `tiny_dims` of tiny folders) as a CodecConfig."""
    generator = dict(_read_yaml(folder, CODEC_CONFIG, "generator", "config"))
    generator.update(_read_yaml(folder, CODEC_CONFIG).get(TINY_KEY) or {})
    fields = CodecConfig.__dataclass_fields__
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in generator.items() if k in fields}
    return CodecConfig(**values)


def hubert_config(folder: Path):
    """semantic_ckpts/hf_1_325000/config.json as a transformers HubertConfig (the weights are in the codec ckpt)."""
    from transformers import HubertConfig

    return HubertConfig(**json.loads(_file(folder, HUBERT_CONFIG).read_text()))


def vocoder_config(folder: Path) -> VocoderConfig:
    """The backbone and head `init_args` of decoders/config.yaml as a VocoderConfig."""
    backbone = _read_yaml(folder, VOCODER_CONFIG, "backbone", "init_args")
    head = _read_yaml(folder, VOCODER_CONFIG, "head", "init_args")
    return VocoderConfig(**backbone, n_fft=head["n_fft"], hop_length=head["hop_length"])


def _check_layout(state: dict, expected: dict, source: Path) -> None:
    """Every key of `expected` (name -> shape) in `state` with that shape, and nothing else, or a ValueError that
    lists the missing, unexpected and mis-shaped keys."""
    if not isinstance(state, dict):
        raise ValueError(f"{source} holds a {type(state).__name__}, not a state dict of tensors")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k]) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        details = "; ".join(f"{what}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''} ({len(keys)})"
                            for what, keys in (("missing", missing), ("unexpected", unexpected),
                                               ("wrong shape", wrong)) if keys)
        raise ValueError(f"{source} does not match the model built from its config: {details}")


def _codec_state(folder: Path) -> dict:
    """The official state dict inside final_ckpt/ckpt_00360000.pth (memory-mapped where the file allows)."""
    checkpoint = _load_torch(_file(folder, CODEC_WEIGHTS))
    if not isinstance(checkpoint, dict) or "codec_model" not in checkpoint:
        keys = ", ".join(map(str, list(checkpoint)[:5])) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{folder / CODEC_WEIGHTS} has no 'codec_model' entry (found: {keys})")
    return checkpoint["codec_model"]


def _assign(model: torch.nn.Module, state: dict, parts: tuple[str, ...], copy: bool) -> None:
    """Fill `model`'s parts with the tensors of `state` (library names), strictly. Parts not named are never read
    from the memory-mapped file. `copy`: weights that stay on the CPU get memory of their own rather than pages of
    the mapped file (which the kernel may drop and read again, and may not back with huge pages); for another
    device, the move copies them anyway."""
    for name in parts:
        prefix = name + "."
        getattr(model, name).load_state_dict({k[len(prefix):]: v.clone() if copy else v
                                              for k, v in state.items() if k.startswith(prefix)},
                                             strict=True, assign=True)


def _load_encoding_parts(folder: Path, codec: SoundStream) -> None:
    """Read the encoding parts (HuBERT, both encoders, fc_prior) from the checkpoint into a decode-only codec, on
    its device and in its dtype."""
    from transformers import XcodecModel

    config = codec.model.config
    with torch.device("meta"):
        donor = XcodecModel(config)
    state = codec_layout.to_library(_codec_state(folder), config, set(donor.state_dict()), ENCODE_PARTS)
    where = next(codec.parameters())
    _assign(donor, state, ENCODE_PARTS, copy=where.device.type == "cpu")
    for name in ENCODE_PARTS:
        setattr(codec.model, name, getattr(donor, name).to(device=where.device, dtype=where.dtype).eval())


def load_codec(folder: str | Path, device="cpu", dtype: torch.dtype = torch.float32,
               decode_only: bool = False) -> SoundStream:
    """The xcodec model from an official-layout folder, strictly checked, in eval mode. `decode_only` loads only
    the decoding parts (13% of the weights; no HuBERT); its first encode then loads the rest, once."""
    folder = Path(folder)
    with torch.device("meta"):  # names and shapes only: the tensors come from the checkpoint
        codec = SoundStream(codec_config(folder), hubert_config(folder))
    xconfig, expected = codec.model.config, codec.model.state_dict()
    state = codec_layout.pos_conv_as(_codec_state(folder), set(expected))
    _check_layout(state, {k: v.shape for k, v in codec_layout.to_official(expected, xconfig).items()},
                  folder / CODEC_WEIGHTS)
    parts = DECODE_PARTS if decode_only else DECODE_PARTS + ENCODE_PARTS
    _assign(codec.model, codec_layout.to_library(state, xconfig, set(expected), parts), parts,
            copy=torch.device(device).type == "cpu")
    codec.keep(parts)  # the training-only parts (decoder_semantic, fc_post1) were checked above, never kept
    if decode_only:
        codec.drop_encoder(functools.partial(_load_encoding_parts, folder))
    return codec.to(device=device, dtype=dtype).eval()


def load_vocoder(folder: str | Path, which: str, device="cpu", dtype: torch.dtype = torch.float32) -> Vocoder:
    """The vocal or instrumental Vocos upsampler from `decoders/`, strictly loaded, in eval mode."""
    if which not in VOCODER_WEIGHTS:
        raise ValueError(f"upsampler must be one of {', '.join(VOCODER_WEIGHTS)}, got {which!r}")
    folder = Path(folder)
    model = Vocoder(vocoder_config(folder))
    path = _file(folder, VOCODER_WEIGHTS[which])
    state = _load_torch(path)
    expected = codec_layout.vocoder_to_official(model.state_dict(), model.head.window)
    _check_layout(state, {k: v.shape for k, v in expected.items()}, path)
    weights, window = codec_layout.vocoder_to_library(state)
    model.load_state_dict(weights, strict=True)
    model.head.window.copy_(window)
    return model.to(device=device, dtype=dtype).eval()


TINY_CODEC = {"D": 16, "encoder_dim": 4, "decoder_channels": 32, "semantic_dim": 32}
TINY_HUBERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                   conv_dim=[32] * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
TINY_VOCODER = {"dim": 32, "intermediate_dim": 64, "num_layers": 2}


def write_tiny_codec(folder: str | Path, seed: int = 0) -> Path:
    """A small random codec + upsamplers in the official layout (configs, ckpt with 'codec_model', decoders)."""
    folder = Path(folder)
    torch.manual_seed(seed)
    for sub in ("final_ckpt", "decoders", "semantic_ckpts/hf_1_325000"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    official = CodecConfig()
    generator = {"n_filters": official.n_filters, "D": official.D, "target_bandwidths": list(official.target_bandwidths),
                 "ratios": list(official.ratios), "sample_rate": official.sample_rate, "bins": official.bins}
    (folder / CODEC_CONFIG).write_text(yaml.safe_dump({"generator": {"name": "SoundStream", "config": generator},
                                                       TINY_KEY: TINY_CODEC}, sort_keys=False))
    hubert = {"model_type": "hubert", "architectures": ["HubertModel"], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
              "conv_stride": [5, 2, 2, 2, 2, 2, 2], "conv_bias": False, "feat_extract_norm": "group",
              "feat_proj_layer_norm": True, "do_stable_layer_norm": False, "mask_time_prob": 0.05, **TINY_HUBERT}
    (folder / HUBERT_CONFIG).write_text(json.dumps(hubert, indent=1))
    (folder / HUBERT_PREPROCESSOR).write_text(json.dumps({"feature_extractor_type": "Wav2Vec2FeatureExtractor",
                                                          "sampling_rate": official.sample_rate, "do_normalize": True}))
    config = codec_config(folder)
    model = SoundStream(config, hubert_config(folder)).model
    torch.save({"codec_model": codec_layout.to_official(model.state_dict(), model.config)}, folder / CODEC_WEIGHTS)
    vocoder = VocoderConfig(**TINY_VOCODER)  # n_fft and hop stay official: 882 samples per frame at 44.1 kHz
    (folder / VOCODER_CONFIG).write_text(yaml.safe_dump({
        "backbone": {"class_path": "vocos.models.VocosBackbone",
                     "init_args": {"input_channels": config.codebook_dim, "dim": vocoder.dim,
                                   "intermediate_dim": vocoder.intermediate_dim, "num_layers": vocoder.num_layers}},
        "head": {"class_path": "vocos.heads.ISTFTHead",
                 "init_args": {"dim": vocoder.dim, "n_fft": vocoder.n_fft, "hop_length": vocoder.hop_length,
                               "padding": "same"}}}, sort_keys=False))
    for name in VOCODER_WEIGHTS.values():
        model = Vocoder(vocoder_config(folder))
        torch.save(codec_layout.vocoder_to_official(model.state_dict(), model.head.window), folder / name)
    return folder
