"""Residual networks for CIFAR-size images: PreAct ResNet-18, ResNet-34, WideResNet (the three papers' CIFAR nets)."""

from __future__ import annotations

import torch
from torch import nn

from vicinal._checks import check_fraction, check_int

from .staged import StagedModel, _blocks_per_group, _check_head_and_input, _head


class _PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus identity (He et al. 2016, Identity Mappings, Fig. 4e).

    With ``dropout > 0`` it is the wide block of Zagoruyko & Komodakis 2016 (Fig. 1d):
    dropout between the two convolutions.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
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
        out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
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
        num_outputs, in_channels = _check_head_and_input(num_outputs, in_channels)
        width = check_int("width", width, minimum=1)
        stages: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False)]
        channels = width
        for multiplier, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            out = width * multiplier
            stages.append(nn.Sequential(_PreActBlock(channels, out, stride), _PreActBlock(out, out, 1)))
            channels = out
        stages.append(_head(channels, num_outputs))
        super().__init__(stages)



class _BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU (He et al. 2016, Deep Residual Learning, Fig. 2).

    The shortcut is a 1x1 convolution with BN where the shape changes (option B of
    Sec. 3.3), the identity elsewhere.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                          nn.BatchNorm2d(out_channels))
            if stride != 1 or in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet34(StagedModel):
    """ResNet-34 with a CIFAR stem (He et al. 2016, Table 1; Carratino et al. 2020, Sec. 5, CIFAR-10/100).

    conv3x3-BN-ReLU stem with ``width`` channels (no 7x7 convolution, no max-pooling:
    32x32 inputs keep their resolution in the first stage), four stages of
    ``(3, 4, 6, 3)`` basic blocks with ``width * (1, 2, 4, 8)`` channels (strides 1,
    2, 2, 2), global average pooling and a linear layer. Stages: stem, the four
    block stages, the head (six in all).

    Parameters
    ----------
    num_outputs, in_channels, width : int
        Logits, image channels and channels of the first stage, as for
        :class:`PreActResNet18` (``width=64`` is the standard network).

    Notes
    -----
    Carratino et al. do not describe their ResNet-34 beyond its name; the 3x3 stem
    is the usual adaptation of He et al.'s ImageNet network to 32x32 images (the
    ImageNet stem would shrink CIFAR images to 8x8 before the first block). With 10
    classes it has 21.28 M parameters (the ImageNet ResNet-34's 21.8 M less the
    1000-class head and 7x7 stem).
    """

    def __init__(self, num_outputs: int, *, in_channels: int = 3, width: int = 64):
        num_outputs, in_channels = _check_head_and_input(num_outputs, in_channels)
        width = check_int("width", width, minimum=1)
        stages: list[nn.Module] = [nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
        )]
        channels = width
        for blocks, multiplier, stride in ((3, 1, 1), (4, 2, 2), (6, 4, 2), (3, 8, 2)):
            out = width * multiplier
            stages.append(nn.Sequential(
                _BasicBlock(channels, out, stride), *(_BasicBlock(out, out, 1) for _ in range(blocks - 1))
            ))
            channels = out
        stages.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs)))
        super().__init__(stages)


class WideResNet(StagedModel):
    """Wide residual network WRN-depth-k (Zagoruyko & Komodakis 2016; Greenewald et al. 2023, Table 2).

    conv3x3 stem with 16 channels, three groups of ``(depth - 4) // 6`` wide
    pre-activation blocks with ``16k, 32k, 64k`` channels (strides 1, 2, 2), then
    BN-ReLU, global average pooling and a linear layer. Stages: stem, the three
    groups, the head (five in all).

    Parameters
    ----------
    num_outputs, in_channels : int
        Number of logits; image channels (3 for CIFAR).
    depth : int
        Total depth; ``depth - 4`` must be a positive multiple of 6 (28 for WRN-28-10,
        10 for a tiny one).
    widen_factor : int
        The width multiplier ``k`` (10 for WRN-28-10).
    dropout : float
        Dropout probability between the two convolutions of a block, in [0, 1)
        (Zagoruyko & Komodakis use 0.3 in some runs; 0 turns it off).

    Notes
    -----
    WRN-28-10 has 36.5 M parameters (Zagoruyko & Komodakis 2016, Table 4); this one
    has 36.48 M with 10 classes.
    """

    def __init__(self, num_outputs: int, *, in_channels: int = 3, depth: int = 28, widen_factor: int = 10,
                 dropout: float = 0.0):
        num_outputs, in_channels = _check_head_and_input(num_outputs, in_channels)
        blocks = _blocks_per_group(depth, "10, 16, 28, 40")
        widen_factor = check_int("widen_factor", widen_factor, minimum=1)
        dropout = check_fraction("dropout", dropout, closed=False)
        stages: list[nn.Module] = [nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)]
        channels = 16
        for multiplier, stride in ((1, 1), (2, 2), (4, 2)):
            out = 16 * multiplier * widen_factor
            stages.append(nn.Sequential(
                _PreActBlock(channels, out, stride, dropout),
                *(_PreActBlock(out, out, 1, dropout) for _ in range(blocks - 1)),
            ))
            channels = out
        stages.append(_head(channels, num_outputs))
        super().__init__(stages)
