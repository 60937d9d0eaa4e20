"""The official xcodec_mini and Vocos checkpoint names (SPEC §5.1, §6.1) and the names of the transformers modules
that run them. The official files stay as they are; a load renames each entry on the way in:

* DAC acoustic encoder and decoder: the official nn.Sequential indices (`encoder.block.N.block.M`,
  `decoder_2.model.N.block.M`) become DacEncoder's / DacDecoder's named layers, and each conv's legacy weight norm
  (`weight_g`, `weight_v`) is folded into one `weight` = g · v / ‖v‖, computed once by torch's own `_weight_norm`
  (the value the official convs compute at every call).
* RepCodec convs lose their wrapper level (`….conv1.conv.weight` -> `….conv1.weight`).
* RVQ: `quantizer.vq.layers.K._codebook.*` -> `quantizer.quantizers.K.codebook.*`.
* `fc_prior`, `fc_post1`, `fc_post2` -> `fc`, `fc1`, `fc2`. HuBERT's names are transformers' own; its positional
  conv is weight-normed, saved as weight_g / weight_v by older transformers and as parametrizations by newer ones.
* Vocos: `head.out` -> `head.linear`; the Hann window `head.istft.window` fills the head's window buffer.
"""
from __future__ import annotations

import torch

RESIDUAL_LAYERS = ("snake1", "conv1", "snake2", "conv2")  # a DAC ResidualUnit, in the official Sequential's order
DAC_UNITS = 3  # residual units per DAC encoder or decoder block (dilations 1, 3, 9)
WEIGHT_NORMED = ("acoustic_encoder.", "acoustic_decoder.")  # every conv in these is weight-normed in the official files
POS_CONV = "semantic_model.encoder.pos_conv_embed.conv."
POS_CONV_NAMES = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
VOCODER_NAMES = {"head.out": "head.linear"}
VOCODER_WINDOW = "head.istft.window"


def module_names(config) -> dict[str, str]:
    """Official module path -> XcodecModel module path, for every module whose path differs. `config`: the
    XcodecConfig."""
    blocks = len(config.acoustic_model_config.downsampling_ratios)
    names = {"fc_prior": "fc", "fc_post1": "fc1", "fc_post2": "fc2",
             "encoder.block.0": "acoustic_encoder.conv1", f"encoder.block.{blocks + 1}": "acoustic_encoder.snake1",
             f"encoder.block.{blocks + 2}": "acoustic_encoder.conv2", "decoder_2.model.0": "acoustic_decoder.conv1",
             f"decoder_2.model.{blocks + 1}": "acoustic_decoder.snake1",
             f"decoder_2.model.{blocks + 2}": "acoustic_decoder.conv2",
             "encoder_semantic.conv.conv": "encoder_semantic.conv",
             "decoder_semantic.conv1.conv": "decoder_semantic.conv1",
             "decoder_semantic.conv2.conv": "decoder_semantic.conv2"}

    def residual(official: str, library: str) -> None:
        names.update({f"{official}.block.{i}": f"{library}.{layer}" for i, layer in enumerate(RESIDUAL_LAYERS)})

    for b in range(blocks):
        encoder, decoder = f"encoder.block.{b + 1}.block", f"decoder_2.model.{b + 1}.block"
        to_encoder, to_decoder = f"acoustic_encoder.block.{b}", f"acoustic_decoder.block.{b}"
        # encoder block: residual units, snake, strided conv; decoder block: snake, transposed conv, residual units
        names.update({f"{encoder}.{DAC_UNITS}": f"{to_encoder}.snake1",
                      f"{encoder}.{DAC_UNITS + 1}": f"{to_encoder}.conv1",
                      f"{decoder}.0": f"{to_decoder}.snake1", f"{decoder}.1": f"{to_decoder}.conv_t1"})
        for r in range(DAC_UNITS):
            residual(f"{encoder}.{r}", f"{to_encoder}.res_unit{r + 1}")
            residual(f"{decoder}.{r + 2}", f"{to_decoder}.res_unit{r + 1}")
    for part in ("encoder_semantic", "decoder_semantic"):
        for b in range(len(config.strides)):
            block = f"{part}.conv_blocks.{b}"
            names[f"{block}.conv.conv"] = f"{block}.conv"
            for r in range(len(config.block_dilations)):
                names[f"{block}.res_units.{r}.conv1.conv"] = f"{block}.res_units.{r}.conv1"
    for k in range(config.num_quantizers):
        names[f"quantizer.vq.layers.{k}._codebook"] = f"quantizer.quantizers.{k}.codebook"
    return names


def _rename(key: str, names: dict[str, str]) -> tuple[str, str]:
    """(renamed module path, parameter name) of a state-dict key."""
    module, _, leaf = key.rpartition(".")
    return names.get(module, module), leaf


def pos_conv_as(state: dict, expected: set[str]) -> dict:
    """HuBERT's pos-conv entries under whichever of the two namings `expected` uses."""
    flipped = {**POS_CONV_NAMES, **{v: k for k, v in POS_CONV_NAMES.items()}}
    renamed = {}
    for key, value in state.items():
        if key.startswith(POS_CONV) and key not in expected:
            key = POS_CONV + flipped.get(key[len(POS_CONV):], key[len(POS_CONV):])
        renamed[key] = value
    return renamed


def to_library(state: dict, config, expected: set[str], parts: tuple[str, ...] | None = None) -> dict:
    """An official codec state dict -> XcodecModel's names, weight norm folded. `expected`: the library's keys
    (for HuBERT's pos-conv naming); `parts`: the XcodecModel parts to keep (default all: nothing else is computed)."""
    names, library = module_names(config), {}
    state = pos_conv_as(state, expected)
    for key, value in state.items():
        module, leaf = _rename(key, names)
        if parts is not None and module.split(".")[0] not in parts:
            continue
        if leaf == "weight_g" and module.startswith(WEIGHT_NORMED):
            continue
        if leaf == "weight_v" and module.startswith(WEIGHT_NORMED):
            library[f"{module}.weight"] = torch._weight_norm(value, state[key[:-1] + "g"], 0)
        else:
            library[f"{module}.{leaf}"] = value
    return library


def to_official(state: dict, config) -> dict:
    """XcodecModel's state dict -> the official names and legacy weight norm (v = the weight, g = its norm over
    every dim but 0, so g · v / ‖v‖ gives the weight back). Works on meta tensors too (shapes only)."""
    names = {library: official for official, library in module_names(config).items()}
    official = {}
    for key, value in state.items():
        module, leaf = _rename(key, names)
        if leaf == "weight" and key.startswith(WEIGHT_NORMED):
            official[f"{module}.weight_g"] = torch.linalg.vector_norm(value.flatten(1), dim=1).reshape(-1, 1, 1)
            official[f"{module}.weight_v"] = value
        else:
            official[f"{module}.{leaf}"] = value
    return official


def vocoder_to_library(state: dict) -> tuple[dict, torch.Tensor | None]:
    """An official Vocos state dict -> (the Vocoder's names, the stored ISTFT window)."""
    state = dict(state)
    window = state.pop(VOCODER_WINDOW, None)
    return {".".join(_rename(key, VOCODER_NAMES)): value for key, value in state.items()}, window


def vocoder_to_official(state: dict, window: torch.Tensor) -> dict:
    """The Vocoder's state dict (+ its ISTFT window) -> the official names."""
    names = {library: official for official, library in VOCODER_NAMES.items()}
    return {**{".".join(_rename(key, names)): value for key, value in state.items()}, VOCODER_WINDOW: window}
