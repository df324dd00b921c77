"""LeNet-5 style CNNs for 28x28 grey and 32x32 colour images (all three papers)."""

from __future__ import annotations

from typing import Sequence

from torch import nn

from vicinal._checks import check_int

from .staged import StagedModel, _image_shape


class LeNet(StagedModel):
    """LeNet-5 style CNN for small grey or colour images (used by all three papers).

    conv 5x5 (6) - ReLU - max-pool 2 - conv 5x5 (16) - ReLU - max-pool 2 - FC 120 - FC 84
    - FC ``num_outputs``. Stages: the two conv blocks, the two hidden FC layers, the
    output layer.

    Parameters
    ----------
    input_shape : tuple of int
        ``(channels, height, width)``, e.g. ``(1, 8, 8)``, ``(1, 28, 28)``, ``(3, 32, 32)``;
        height and width at least 4.
    num_outputs : int
        Number of logits.

    Notes
    -----
    Both convolutions are zero-padded by 2 ("same" size) so that 8x8 digits survive
    two 5x5 convolutions; the first FC layer is sized from ``input_shape``. The
    original LeNet-5 (and Greenewald et al.'s script) uses unpadded convolutions.
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int):
        channels, height, width = _image_shape(input_shape, minimum_side=4)
        num_outputs = check_int("num_outputs", num_outputs, minimum=1)
        flat = 16 * (height // 4) * (width // 4)
        super().__init__([
            nn.Sequential(nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Flatten(), nn.Linear(flat, 120), nn.ReLU()),
            nn.Sequential(nn.Linear(120, 84), nn.ReLU()),
            nn.Linear(84, num_outputs),
        ])

