"""Residual networks of the three papers: PreAct ResNet-18, ResNet-34, WideResNet (CIFAR stems) and the ImageNet
Wide ResNet-101-2 read for k-Mixup's "WideResNet-101"."""

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



def _projection_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Option B of He et al. 2016 (Deep Residual Learning, Sec. 3.3): a strided 1x1 convolution with BN where the
    shape changes, the identity elsewhere (post-activation blocks)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class _BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut, then ReLU (He et al. 2016, Deep Residual Learning, Fig. 2).

    The shortcut is :func:`_projection_shortcut` (option B of Sec. 3.3).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = _projection_shortcut(in_channels, out_channels, stride)

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


class _Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1-BN plus shortcut, then ReLU (He et al. 2016, Deep Residual
    Learning, Fig. 5 right).

    ``inner`` channels in the 3x3 convolution, ``out_channels`` after the last 1x1. The stride sits on the 3x3
    convolution (as torchvision places it, "ResNet v1.5"; He et al. put it on the first 1x1: same parameters).
    The shortcut is :func:`_projection_shortcut`.
    """

    def __init__(self, in_channels: int, inner: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.conv3 = nn.Conv2d(inner, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = _projection_shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class WideResNet101(StagedModel):
    """Wide ResNet-101-2, the ImageNet network (He et al. 2016, Table 1, 101 layers; bottlenecks widened 2x as in
    Zagoruyko & Komodakis 2016, WRN-50-2-bottleneck): the "WideResNet-101" of Greenewald et al. 2023, Table 11(b).

    conv7x7 stride 2 - BN - ReLU - maxpool 3x3 stride 2 stem with ``width`` channels, four stages of
    ``(3, 4, 23, 3)`` bottleneck blocks with ``p = width * (1, 2, 4, 8)`` (strides 1, 2, 2, 2), each
    1x1 to ``2 p``, 3x3 at ``2 p``, 1x1 to ``4 p`` channels, then global average pooling and a linear layer.
    Stages: stem, the four block stages, the head (six in all).

    Parameters
    ----------
    num_outputs, in_channels : int
        Number of logits; image channels (3 for CIFAR).
    width : int
        Channels of the stem and ``p`` of the first stage (64 in the standard network, the bottlenecks then
        128 / 256 / 512 / 1024 wide); small values give a tiny network for tests.

    Notes
    -----
    A reading: Greenewald et al. name a "WideResNet-101" for CIFAR-10 (Table 1; Table 11(b)) and define it
    nowhere. A CIFAR WRN-depth-k cannot have depth 101 (its depth is 6 n + 4) and would err on about 4 %
    (WRN-28-10, Zagoruyko & Komodakis 2016, Table 4), while their ERM error is 11.6 %. That fits
    torchvision's ``wide_resnet101_2``, the ImageNet network as is, run on 32x32 images: the stem leaves
    8x8 maps, and the four stages 8x8, 4x4, 2x2 and 1x1 (the last stage's later 3x3 convolutions use only
    their centre weights). It has 126,886,696 parameters with 1000 classes, torchvision's published count,
    and 124,858,186 with 10. Initialisation is PyTorch's default, as for the other networks here
    (torchvision draws Kaiming fan-out normals for its convolutions).
    """

    def __init__(self, num_outputs: int, *, in_channels: int = 3, width: int = 64):
        num_outputs, in_channels = _check_head_and_input(num_outputs, in_channels)
        width = check_int("width", width, minimum=1)
        stages: list[nn.Module] = [nn.Sequential(
            nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )]
        channels = width
        for blocks, multiplier, stride in ((3, 1, 1), (4, 2, 2), (23, 4, 2), (3, 8, 2)):
            planes = width * multiplier
            stages.append(nn.Sequential(
                _Bottleneck(channels, 2 * planes, 4 * planes, stride),
                *(_Bottleneck(4 * planes, 2 * planes, 4 * planes, 1) for _ in range(blocks - 1)),
            ))
            channels = 4 * planes
        stages.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs)))
        super().__init__(stages)
