"""yue.layers: weight-normed convs keep the legacy parameters and compute g·v/‖v‖; Snake is x + sin²(αx)/α."""
import torch
import torch.nn.functional as F

from yue.layers import ResidualUnit, Snake1d, WNConv1d, WNConvTranspose1d


def test_weight_norm_keys_and_value():
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


def test_transposed_weight_norm_is_over_input_channels():
    """ConvTranspose weights are [in, out, k]; the legacy dim-0 norm gives g of shape [in, 1, 1]."""
    conv = WNConvTranspose1d(6, 4, 10, stride=5, padding=3, output_padding=1)
    assert conv.weight_v.shape == (6, 4, 10) and conv.weight_g.shape == (6, 1, 1)
    assert conv(torch.randn(1, 6, 11)).shape[-1] == 55  # stride 5 with output_padding 1: exactly 5x longer


def test_snake_formula():
    snake = Snake1d(2)
    with torch.no_grad():
        snake.alpha.copy_(torch.tensor([[[0.5], [2.0]]]))
    x = torch.randn(1, 2, 9)
    alpha = snake.alpha
    torch.testing.assert_close(snake(x), x + torch.sin(alpha * x) ** 2 / (alpha + 1e-9))


def test_residual_unit_keeps_length():
    assert ResidualUnit(4, 9)(torch.randn(1, 4, 100)).shape == (1, 4, 100)
