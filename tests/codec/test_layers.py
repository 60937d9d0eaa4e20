"""yue.codec.layers: weight-normed convs keep the legacy parameters and compute g·v/‖v‖; Snake is x + sin²(αx)/α;
the DAC residual unit and the Vocos ConvNeXt block keep their official key names and lengths."""
import pytest
import torch
import torch.nn.functional as F

from yue.codec.layers import ConvNeXtBlock, ResidualUnit, Snake1d, WNConv1d, WNConvTranspose1d


def test_weight_norm_keys_and_value():
    """A weight-normed Conv1d stores exactly bias, weight_g [out,1,1], weight_v, and convolves with g·v/‖v‖."""
    conv = WNConv1d(3, 5, 7, padding=3)
    assert set(conv.state_dict()) == {"weight_g", "weight_v", "bias"}
    assert conv.weight_g.shape == (5, 1, 1)
    with torch.no_grad():
        conv.weight_g.mul_(2.0)
    v = conv.weight_v
    expected = 2.0 * v  # g was initialised to ‖v‖, then doubled
    torch.testing.assert_close(conv.weight, expected)
    x = torch.randn(2, 3, 40)
    torch.testing.assert_close(conv(x), F.conv1d(x, expected, conv.bias, padding=3))


@pytest.mark.filterwarnings("ignore:.*weight_norm.*deprecated:FutureWarning")
def test_weight_norm_matches_torch_legacy_weight_norm():
    """Same state-dict names and the same weight as torch.nn.utils.weight_norm(dim=0) on the same g and v."""
    ours = WNConv1d(4, 6, 3)
    legacy = torch.nn.utils.weight_norm(torch.nn.Conv1d(4, 6, 3), dim=0)
    assert set(ours.state_dict()) == set(legacy.state_dict())
    with torch.no_grad():
        ours.weight_g.uniform_(0.5, 2.0)
    legacy.load_state_dict(ours.state_dict())
    x = torch.randn(1, 4, 20)
    torch.testing.assert_close(ours(x), legacy(x), rtol=0, atol=0)


def test_transposed_weight_norm_is_over_input_channels():
    """ConvTranspose weights are [in, out, k]; the legacy dim-0 norm gives g of shape [in, 1, 1]."""
    conv = WNConvTranspose1d(6, 4, 10, stride=5, padding=3, output_padding=1)
    assert conv.weight_v.shape == (6, 4, 10) and conv.weight_g.shape == (6, 1, 1)
    assert conv(torch.randn(1, 6, 11)).shape[-1] == 55  # stride 5 with output_padding 1: exactly 5x longer


def test_snake_formula_with_and_without_autograd():
    """Snake is x + sin²(αx)/(α + 1e-9); the in-place inference path gives the same bits as the autograd path."""
    snake = Snake1d(2)
    with torch.no_grad():
        snake.alpha.copy_(torch.tensor([[[0.5], [2.0]]]))
    x = torch.randn(1, 2, 9)
    alpha = snake.alpha.detach()
    expected = x + torch.sin(alpha * x) ** 2 / (alpha + 1e-9)
    torch.testing.assert_close(snake(x), expected)
    with torch.inference_mode():
        fast = snake(x)
    assert torch.equal(fast, snake(x).detach())
    assert torch.equal(x, x.clone())  # the input is left untouched


def test_residual_unit_keeps_length_and_names():
    """DAC ResidualUnit: block.{0,2} Snake, block.1 dilated k7 conv, block.3 1x1 conv; output as long as input."""
    unit = ResidualUnit(4, 9)
    assert unit(torch.randn(1, 4, 100)).shape == (1, 4, 100)
    assert unit.state_dict()["block.1.weight_v"].shape == (4, 4, 7)
    assert unit.state_dict()["block.3.weight_v"].shape == (4, 4, 1)
    assert unit.state_dict()["block.0.alpha"].shape == (1, 4, 1)


def test_convnext_block_names_shapes_and_residual():
    """Vocos ConvNeXt block: official parameter names and shapes, γ = layer scale, and with γ = 0 it is identity."""
    block = ConvNeXtBlock(8, 24, layer_scale=1 / 8)
    shapes = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert shapes == {"gamma": (8,), "dwconv.weight": (8, 1, 7), "dwconv.bias": (8,), "norm.weight": (8,),
                      "norm.bias": (8,), "pwconv1.weight": (24, 8), "pwconv1.bias": (24,),
                      "pwconv2.weight": (8, 24), "pwconv2.bias": (8,)}
    assert torch.allclose(block.gamma, torch.full((8,), 1 / 8))
    x = torch.randn(2, 8, 30)
    assert block(x).shape == x.shape
    with torch.no_grad():
        block.gamma.zero_()
    assert torch.equal(block(x), x)
