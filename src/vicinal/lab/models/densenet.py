"""DenseNet-BC (Huang et al. 2017) for small images: Baena et al. 2022 (Fashion-MNIST), Greenewald et al. 2023 (CIFAR-10)."""

from __future__ import annotations

import math

import torch
from torch import nn

from vicinal._checks import check_int, check_positive_float

from .staged import StagedModel, _blocks_per_group, _check_head_and_input, _head


class _DenseLayer(nn.Module):
    """Bottleneck layer BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k), output concatenated to its input (Huang et al. 2017)."""

    def __init__(self, in_channels: int, growth_rate: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(), nn.Conv2d(in_channels, 4 * growth_rate, 1, bias=False),
            nn.BatchNorm2d(4 * growth_rate), nn.ReLU(),
            nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.layers(x)], dim=1)


class DenseNetBC(StagedModel):
    """DenseNet-BC for small images (Huang et al. 2017; Baena et al. 2022, Table I, Fashion-MNIST).

    conv3x3 stem with ``2 * growth_rate`` channels, three dense blocks of
    ``(depth - 4) // 6`` bottleneck layers, a compressing transition (BN-ReLU-conv1x1
    to ``floor(compression * C)`` channels, 2x2 average pooling) after the first two
    blocks, then BN-ReLU, global average pooling and a linear layer. Stages: stem,
    block 1 + transition, block 2 + transition, block 3, head.

    Parameters
    ----------
    num_outputs : int
        Number of logits.
    in_channels : int
        Image channels (1 for Fashion-MNIST, 3 for CIFAR).
    depth : int
        Total depth; ``depth - 4`` must be a positive multiple of 6 (100 gives the
        DenseNet-BC-100 of Huang et al.; 10 a tiny one).
    growth_rate : int
        Channels each bottleneck layer adds (``k``; 12 in DenseNet-BC-100).
    compression : float
        Channel reduction of the transitions, in (0, 1] (0.5 for "-BC").

    Notes
    -----
    Baena et al. do not give the DenseNet's depth; the default is the smallest
    DenseNet-BC of Huang et al. (depth 100, k = 12).
    """

    def __init__(self, num_outputs: int, *, in_channels: int = 3, depth: int = 100, growth_rate: int = 12,
                 compression: float = 0.5):
        num_outputs, in_channels = _check_head_and_input(num_outputs, in_channels)
        layers_per_block = _blocks_per_group(depth, "10, 40, 100, 190")
        growth_rate = check_int("growth_rate", growth_rate, minimum=1)
        compression = check_positive_float("compression", compression)
        if compression > 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        channels = 2 * growth_rate
        stages: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
        for block in range(3):
            modules: list[nn.Module] = []
            for _ in range(layers_per_block):
                modules.append(_DenseLayer(channels, growth_rate))
                channels += growth_rate
            if block < 2:
                reduced = max(1, math.floor(compression * channels))
                modules += [nn.BatchNorm2d(channels), nn.ReLU(), nn.Conv2d(channels, reduced, 1, bias=False),
                            nn.AvgPool2d(2)]
                channels = reduced
            stages.append(nn.Sequential(*modules))
        stages.append(_head(channels, num_outputs))
        super().__init__(stages)

