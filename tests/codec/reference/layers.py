"""Conv building blocks of the tests' xcodec oracle (tests/codec/reference/xcodec.py).

Weight-normed convolutions keep the legacy `weight_g` / `weight_v` parameters of `torch.nn.utils.weight_norm`
(dim 0), so the official checkpoints load with their key names unchanged.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Snake1d(nn.Module):
    """x + sin²(αx) / α, one α per channel (DAC)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tensor[B, C, T] -> Tensor[B, C, T]."""
        inverse = (self.alpha + 1e-9).reciprocal()
        if torch.is_grad_enabled() and (x.requires_grad or self.alpha.requires_grad):
            return x + inverse * torch.sin(self.alpha * x).pow(2)
        # Inference: the same operations in place on one buffer (bit-identical, ~1.7x faster; Snake is ~40% of
        # the decoder's CPU time at 16 kHz).
        return torch.sin_(self.alpha * x).square_().mul_(inverse).add_(x)


class _WeightNorm(nn.Module):
    """weight = g · v / ‖v‖, the norm over every dim but 0 (legacy weight_norm layout)."""

    def _init_weight_norm(self, shape: tuple[int, ...], out_channels: int, bias: bool) -> None:
        v = torch.empty(shape)
        nn.init.kaiming_uniform_(v, a=math.sqrt(5))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(v.reshape(shape[0], -1), dim=1).reshape(-1, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    @property
    def weight(self) -> torch.Tensor:
        return torch._weight_norm(self.weight_v, self.weight_g, 0)


class WNConv1d(_WeightNorm):
    """Conv1d with legacy weight norm: weight_v [out, in, k], weight_g [out, 1, 1]. (B, in, L) -> (B, out, L')."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, bias: bool = True):
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self._init_weight_norm((out_channels, in_channels, kernel_size), out_channels, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class WNConvTranspose1d(_WeightNorm):
    """ConvTranspose1d with legacy weight norm: weight_v [in, out, k], weight_g [in, 1, 1] (dim 0 is `in` here)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 output_padding: int = 0):
        super().__init__()
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self._init_weight_norm((in_channels, out_channels, kernel_size), out_channels, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)


class ResidualUnit(nn.Module):
    """DAC residual unit: x + conv1x1(snake(conv7_dilated(snake(x)))), (B, C, L) -> (B, C, L)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            Snake1d(channels),
            WNConv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation),
            Snake1d(channels),
            WNConv1d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        trim = (x.shape[-1] - y.shape[-1]) // 2
        if trim > 0:
            x = x[..., trim:-trim]
        return x + y


class Conv(nn.Module):
    """RepCodec's Conv1d wrapper (state-dict prefix `.conv`), 'same' padding for odd kernels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2 * dilation,
                              dilation=dilation, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
