"""StagedModel: a network as a list of stages, with every stage boundary reachable (manifold mixup)."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from vicinal._checks import check_int


class StagedModel(nn.Module):
    """A network that is a sequence of stages, with access to every stage boundary.

    Boundary 0 is the input and boundary ``num_stages`` the output, so
    ``forward_from(features(x, b), b) == forward(x)`` for every ``b``. Manifold mixup
    (Verma et al. 2019; Greenewald et al. 2023, Sec. 5) mixes at such a boundary.

    Parameters
    ----------
    stages : sequence of nn.Module
        The stages, applied in order; kept in ``self.stages`` (an ``nn.ModuleList``).
    """

    def __init__(self, stages: Sequence[nn.Module]):
        super().__init__()
        stages = list(stages)
        if not stages or not all(isinstance(s, nn.Module) for s in stages):
            raise TypeError(f"stages must be a non-empty sequence of nn.Module, got {stages!r}")
        self.stages = nn.ModuleList(stages)

    @property
    def num_stages(self) -> int:
        """Number of stages; valid boundaries are ``0 .. num_stages``."""
        return len(self.stages)

    def _boundary(self, name: str, value: Any) -> int:
        value = check_int(name, value, minimum=0)
        if value > self.num_stages:
            raise ValueError(f"{name} must be a stage boundary in [0, {self.num_stages}], got {value}")
        return value

    def features(self, x: torch.Tensor, end: int) -> torch.Tensor:
        """Apply stages ``0 .. end - 1``: the hidden representation at boundary ``end``."""
        for stage in self.stages[: self._boundary("end", end)]:
            x = stage(x)
        return x

    def forward_from(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """Apply stages ``start ..`` to a representation ``h`` taken at boundary ``start``."""
        for stage in self.stages[self._boundary("start", start):]:
            h = stage(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply all stages in order."""
        return self.forward_from(x, 0)



def _image_shape(input_shape: Any, *, minimum_side: int) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ValueError(f"input_shape must be (channels, height, width) of positive ints, got {input_shape!r}")
    if min(shape[1:]) < minimum_side:
        raise ValueError(f"images must be at least {minimum_side}x{minimum_side}, got input_shape {shape}")
    return shape



def _head(channels: int, num_outputs: int) -> nn.Module:
    """BN-ReLU, global average pooling, linear: the classifier of pre-activation nets."""
    return nn.Sequential(
        nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs)
    )



def _check_head_and_input(num_outputs: Any, in_channels: Any) -> tuple[int, int]:
    """The two sizes every image network takes: logits and image channels, both positive ints."""
    return check_int("num_outputs", num_outputs, minimum=1), check_int("in_channels", in_channels, minimum=1)


def _blocks_per_group(depth: Any, examples: str) -> int:
    """Blocks (or dense layers) in each of the three groups of a net of ``depth`` = 6 n + 4 layers.

    Both DenseNet-BC (Huang et al. 2017) and WideResNet (Zagoruyko & Komodakis 2016)
    count depth this way: three groups of ``n`` two-convolution units plus 4.
    """
    depth = check_int("depth", depth, minimum=10)
    if (depth - 4) % 6:
        raise ValueError(f"depth - 4 must be a multiple of 6 (e.g. {examples}), got depth={depth}")
    return (depth - 4) // 6
