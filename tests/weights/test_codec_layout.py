"""yue.weights.codec_layout: the official codec and Vocos files, loaded into transformers' modules under their names,
give the official outputs: decode, both upsamplers and encode equal our former re-implementation of the official
modules (tests/codec/reference) within 1e-5 max relative error, on full-size random official-layout checkpoints."""
import pytest
import torch

from tests.codec.reference.vocoder import Vocoder as ReferenceVocoder
from tests.codec.reference.xcodec import SoundStream as ReferenceSoundStream
from yue.codec.xcodec import SoundStream
from yue.weights import codec_layout, codec_loading

TOLERANCE = 1e-5  # max |library - reference| / max |reference| over a whole output


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return ((got - expected).abs().max() / expected.abs().max()).item()


@pytest.fixture(scope="module")
def reference(official_folder):
    """The reference codec with the official file loaded strictly under the official names."""
    model = ReferenceSoundStream(codec_loading.codec_config(official_folder),
                                 codec_loading.hubert_config(official_folder)).eval()
    state = torch.load(official_folder / codec_loading.CODEC_WEIGHTS, weights_only=True)["codec_model"]
    model.load_state_dict(codec_layout.pos_conv_as(state, set(model.state_dict())), strict=True)
    return model


@pytest.fixture(scope="module")
def library(official_folder):
    return codec_loading.load_codec(official_folder)


def test_decode_equals_the_official_modules(reference, library):
    """At full size, the summed embedding is the same and the 16 kHz decode of 8 codebooks is within 1e-5 (measured:
    0: the same operations, weight norm folded once by the same torch function)."""
    codes = torch.randint(0, 1024, (1, 8, 60), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(library.embed(codes), reference.embed(codes))
        error = relative_error(library.decode(codes), reference.decode(codes))
    assert error <= TOLERANCE, error


@pytest.mark.parametrize("which", ["vocal", "instrumental"])
def test_upsamplers_equal_the_official_modules(official_folder, which):
    """Each full-size Vocos upsampler (transformers' ISTFT head on our backbone) is within 1e-5 of the reference."""
    path = official_folder / codec_loading.VOCODER_WEIGHTS[which]
    reference = ReferenceVocoder(codec_loading.vocoder_config(official_folder)).eval()
    reference.load_state_dict(torch.load(path, weights_only=True), strict=True)
    library = codec_loading.load_vocoder(official_folder, which)
    embedding = torch.randn(1, 1024, 60, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        error = relative_error(library(embedding), reference(embedding))
    assert error <= TOLERANCE, error


def test_encode_equals_the_official_modules(reference, library):
    """At full size, the fused latent before quantisation is within 1e-5 and the 12 codebooks' codes are equal, for
    lengths on and off a frame boundary (the padded fallback). The codebook rows are first scaled to one norm in
    both models, so the codes follow the latent (random rows of unequal norm give one code for nearly any input)."""
    for codebook in (*[q.codebook for q in library.model.quantizer.quantizers],
                     *[layer._codebook for layer in reference.quantizer.vq.layers]):
        codebook.embed.div_(codebook.embed.norm(dim=1, keepdim=True))
    model = library.model
    for length, frames in ((320 * 40, 40), (32123, 101)):  # 32 123 samples: 101 frames after the fallback
        x = 0.1 * torch.randn(1, 1, length, generator=torch.Generator().manual_seed(length))
        with torch.inference_mode():
            semantic = reference.encoder_semantic(reference.semantic_features(x).transpose(1, 2))
            acoustic = reference.encoder(x if length % 320 == 0 else torch.nn.functional.pad(x, (160, 160)))
            expected = reference.fc_prior(torch.cat([acoustic, semantic], 1).transpose(1, 2))
            semantic = model.encoder_semantic(model._extract_semantic_features(x).transpose(1, 2))
            acoustic = model.acoustic_encoder(x if length % 320 == 0 else torch.nn.functional.pad(x, (160, 160)))
            latent = model.fc(torch.cat([acoustic, semantic], 1).transpose(1, 2))
            codes, expected_codes = library.encode(x, 12), reference.encode(x, 12)
        assert relative_error(latent, expected) <= TOLERANCE, relative_error(latent, expected)
        assert torch.equal(codes, expected_codes)
        assert codes.shape == (1, 12, frames) and codes[0, 0].unique().numel() > 5


@pytest.mark.filterwarnings("ignore:.*weight_norm.*deprecated:FutureWarning")
def test_weight_norm_is_folded_as_torch_computes_it():
    """A folded weight equals torch.nn.utils.weight_norm's (dim 0) on the same g and v, bit for bit, for a conv
    [out, in, k] and a transposed conv [in, out, k]; unfolding gives g = ‖v‖ and the weight back."""
    for conv in (torch.nn.Conv1d(4, 6, 3), torch.nn.ConvTranspose1d(6, 4, 10, stride=5)):
        legacy = torch.nn.utils.weight_norm(conv, dim=0)
        with torch.no_grad():
            legacy.weight_g.uniform_(0.5, 2.0)
        key = "decoder_2.model.0"
        folded = codec_layout.to_library({f"{key}.weight_g": legacy.weight_g, f"{key}.weight_v": legacy.weight_v},
                                         _config(), set())
        legacy(torch.randn(1, legacy.in_channels, 12))  # the hook computes `weight` as the official convs do
        assert torch.equal(folded["acoustic_decoder.conv1.weight"], legacy.weight)
        back = codec_layout.to_official(folded, _config())
        unfolded = torch._weight_norm(back[f"{key}.weight_v"], back[f"{key}.weight_g"], 0)
        torch.testing.assert_close(unfolded, legacy.weight)


def _config():
    from transformers import HubertConfig

    from yue.codec.xcodec import CodecConfig

    return CodecConfig().xcodec_config(HubertConfig())


def test_every_official_name_maps_to_a_library_name_and_back(tiny_dir):
    """Official -> library -> official gives every key back with its value (the tiny folder: the official layout)."""
    folder = tiny_dir / "xcodec_mini_infer"
    state = torch.load(folder / codec_loading.CODEC_WEIGHTS, weights_only=True)["codec_model"]
    with torch.device("meta"):
        model = SoundStream(codec_loading.codec_config(folder), codec_loading.hubert_config(folder)).model
    config = model.config
    library = codec_layout.to_library(state, config, set(model.state_dict()))
    assert set(library) == set(model.state_dict())
    assert len(library) == len(state) - 60  # the 30 + 30 DAC convs: one weight for each weight_g + weight_v pair
    back = codec_layout.to_official(library, config)
    assert set(back) == set(state)
    for key, value in state.items():
        torch.testing.assert_close(back[key], value, rtol=1e-6, atol=0)
