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
    padding : int
        Zero padding of both convolutions: 2 ("same" size, the default) or 0 (the
        original LeNet-5).

    Notes
    -----
    The default pads both convolutions by 2 so that 8x8 digits survive two 5x5
    convolutions; the first FC layer is sized from ``input_shape``. ``padding=0`` is
    the original LeNet-5 (LeCun et al. 1998) as in Greenewald et al.'s script: on
    28x28 grey images (MNIST) 16x4x4 features reach the FC layers (44,426 parameters
    with 10 classes), on 32x32 colour images (SVHN, CIFAR) 16x5x5 (62,006
    parameters); it needs images of at least 16x16.
    """

    def __init__(self, input_shape: Sequence[int], num_outputs: int, *, padding: int = 2):
        channels, height, width = _image_shape(input_shape, minimum_side=4)
        num_outputs = check_int("num_outputs", num_outputs, minimum=1)
        padding = check_int("padding", padding, minimum=0)
        if padding > 2:
            raise ValueError(f"padding must be 0 (original LeNet-5), 1 or 2 ('same' convolutions), got {padding}")
        # Each block: 5x5 convolution (side + 2 padding - 4), then 2x2 max-pooling (floor of half).
        sides = [(s + 2 * padding - 4) // 2 for s in (height, width)]
        sides = [(s + 2 * padding - 4) // 2 for s in sides]
        if min(sides) < 1:
            raise ValueError(f"input_shape {tuple(input_shape)} is too small for LeNet with padding={padding}: "
                             f"images of at least 16x16 are needed without padding; use padding=2")
        flat = 16 * sides[0] * sides[1]
        super().__init__([
            nn.Sequential(nn.Conv2d(channels, 6, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Conv2d(6, 16, 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.Flatten(), nn.Linear(flat, 120), nn.ReLU()),
            nn.Sequential(nn.Linear(120, 84), nn.ReLU()),
            nn.Linear(84, num_outputs),
        ])

