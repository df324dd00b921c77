"""Residual networks for CIFAR-size images: PreAct ResNet-18 (Zhang et al. 2018; Greenewald et al. 2023)."""

from __future__ import annotations

import torch
from torch import nn

from vicinal._checks import check_int

from .staged import StagedModel, _head


class _PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus identity (He et al. 2016, Identity Mappings, Fig. 4e)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        # A 1x1 projection only where the shape changes; elsewhere the shortcut is the identity.
        self.shortcut = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            if stride != 1 or in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(StagedModel):
    """Pre-activation ResNet-18 for CIFAR-size images (Zhang et al. 2018; Greenewald et al. 2023, Sec. 5.2).

    conv3x3 stem, four stages of two pre-activation blocks with ``width * (1, 2, 4, 8)``
    channels (strides 1, 2, 2, 2), then BN-ReLU, global average pooling and a linear
    layer. Stages: stem, the four block stages, the head (six in all).

    Parameters
    ----------
    num_outputs : int
        Number of logits.
    in_channels : int
        Image channels (3 for CIFAR).
    width : int
        Channels of the first stage (64 in the standard network); small values give a
        tiny network for tests.

    Notes
    -----
    Follows He et al. 2016 (Identity Mappings): a final BN-ReLU before pooling and a
    bare convolutional stem. Differs from the authors' script (Greenewald et al.):
    its "ResNet18" puts BN-ReLU after the stem, omits the final BN-ReLU and pools
    with a fixed 4x4 window; global pooling here accepts any image size.
    """

    def __init__(self, num_outputs: int, *, in_channels: int = 3, width: int = 64):
        num_outputs = check_int("num_outputs", num_outputs, minimum=1)
        in_channels = check_int("in_channels", in_channels, minimum=1)
        width = check_int("width", width, minimum=1)
        stages: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False)]
        channels = width
        for multiplier, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            out = width * multiplier
            stages.append(nn.Sequential(_PreActBlock(channels, out, stride), _PreActBlock(out, out, 1)))
            channels = out
        stages.append(_head(channels, num_outputs))
        super().__init__(stages)

