"""Networks used in the three papers, each split into stages for manifold mixup.

Every model is a :class:`StagedModel`: a list of stages applied in order. Stage
boundary ``b`` is the representation after ``b`` stages (0 = the input,
``num_stages`` = the output), so mixing hidden states at boundary ``b``
(manifold mixup, Verma et al. 2019, used by Greenewald et al. 2023, Sec. 5) is::

    h = model.features(x, b)
    h_mixed = lam * h + (1 - lam) * h[partner]
    logits = model.forward_from(h_mixed, b)

:func:`build_model` makes any of them from a name, the input shape and a seed.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Sequence

import torch
from torch import nn

from vicinal._checks import check_choice, check_int, check_positive_float

__all__ = [
    "StagedModel",
    "MLP",
    "RandomFourierFeatures",
    "LeNet",
    "PreActResNet18",
    "DenseNetBC",
    "build_model",
    "available_models",
    "model_parameters",
]


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


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
}


class MLP(StagedModel):
    """Fully connected network; one stage per hidden layer plus the output layer.

    The Local Mixup spirals net is ``MLP(2, (100, 100), 2)`` (Baena et al. 2022,
    Sec. V-A; the authors' notebook runs ``MLP(2, (100, 100, 100), 2, output_softmax=True)``); the k-Mixup toy net ``MLP(2, (130, 120), 2)`` (Greenewald et al. 2023,
    App. B); its UCI nets use widths ``(120, 84)`` for Iris and ``(120, 120, 84)`` for
    Breast Cancer (Sec. 5.2). Inputs of any shape ``(B, ...)`` are flattened first.

    Parameters
    ----------
    in_features : int
        Number of input values per sample (product of the input shape).
    widths : sequence of int
        Hidden layer sizes; empty gives a linear model.
    num_outputs : int
        Number of outputs (logits, or regression outputs).
    activation : {"relu", "tanh", "gelu", "sigmoid", "elu"}
        Non-linearity after every hidden layer.
    output_softmax : bool
        End in a softmax, as the Local Mixup authors' spirals ``Net`` does (default False: logits).
        Every loss of the trainer then applies a second softmax to these probabilities: the double
        softmax of the authors' notebook, kept only to reproduce their recipe. It flattens the
        loss surface (outputs in [0, 1], so CE stays between log(1 + e^-1) and log(1 + e)) and can
        stop plain training from fitting. Test error is unaffected (argmax is kept); NLL and ECE
        of such a model are those of softmax(probabilities) and not meaningful.
    """

    def __init__(self, in_features: int, widths: Sequence[int], num_outputs: int, activation: str = "relu",
                 output_softmax: bool = False):
        in_features = check_int("in_features", in_features, minimum=1)
        num_outputs = check_int("num_outputs", num_outputs, minimum=1)
        activation = check_choice("activation", activation, _ACTIVATIONS)
        if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
            raise TypeError(f"widths must be a sequence of positive ints such as (100, 100), got {widths!r}")
        widths = [check_int(f"widths[{i}]", w, minimum=1) for i, w in enumerate(widths)]
        sizes = [in_features, *widths]
        stages: list[nn.Module] = [
            nn.Sequential(nn.Linear(a, b), _ACTIVATIONS[activation]()) for a, b in zip(sizes, sizes[1:])
        ]
        if not isinstance(output_softmax, bool):
            raise TypeError(f"output_softmax must be true or false, got {output_softmax!r}")
        head = nn.Linear(sizes[-1], num_outputs)
        stages.append(nn.Sequential(head, nn.Softmax(dim=-1)) if output_softmax else head)
        stages[0] = nn.Sequential(nn.Flatten(), stages[0])  # accept images: (B, C, H, W) -> (B, C*H*W)
        super().__init__(stages)


class RandomFourierFeatures(StagedModel):
    """Logistic regression on fixed random Fourier features (Carratino et al. 2020, App. B.3).

    .. math:: \\phi(x) = \\cos(S x + b) / \\sqrt{M}, \\quad f(x) = W \\phi(x)

    with ``S_ij ~ N(0, sigma^2)`` and ``b_i ~ U(0, 2 pi)`` drawn once from ``seed``
    and stored as buffers (not trained); only the linear head ``W`` learns. The
    features approximate a Gaussian kernel ``exp(-sigma^2 ||x - x'||^2 / 2)``, so
    ``sigma`` is an inverse bandwidth. Stage 0 is ``phi`` (inputs flattened first),
    stage 1 the head.

    Parameters
    ----------
    in_features : int
        Input dimension ``d`` (product of the input shape).
    num_outputs : int
        Outputs of the head. The paper's scalar ``w^T phi(x)`` with a logistic loss
        is the same model as two logits with softmax cross-entropy.
    n_features : int
        Number of random features ``M`` (paper: 1000).
    sigma : float
        Standard deviation of the random frequencies (paper: 10).
    seed : int or None
        Seed of the projection ``(S, b)``; ``None`` draws it from torch's global RNG.

    Notes
    -----
    As in the paper, ``f`` has no bias term. The head starts at zero: the problem is
    convex, so the start does not change the optimum, and every run starts alike.
    """

    def __init__(self, in_features: int, num_outputs: int, *, n_features: int = 1000, sigma: float = 10.0,
                 seed: int | None = 0):
        in_features = check_int("in_features", in_features, minimum=1)
        num_outputs = check_int("num_outputs", num_outputs, minimum=1)
        n_features = check_int("n_features", n_features, minimum=1)
        sigma = check_positive_float("sigma", sigma)
        generator = None if seed is None else torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        head = nn.Linear(n_features, num_outputs, bias=False)
        nn.init.zeros_(head.weight)
        super().__init__([_FourierFeatures(
            sigma * torch.randn(n_features, in_features, generator=generator),
            2 * math.pi * torch.rand(n_features, generator=generator),
        ), head])


class _FourierFeatures(nn.Module):
    """``cos(flatten(x) S^T + b) / sqrt(M)`` with a fixed projection (Carratino et al. 2020, App. B.3)."""

    def __init__(self, projection: torch.Tensor, offset: torch.Tensor):
        super().__init__()
        self.register_buffer("projection", projection)
        self.register_buffer("offset", offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return torch.cos(x @ self.projection.T + self.offset) / math.sqrt(len(self.offset))


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


def _image_shape(input_shape: Any, *, minimum_side: int) -> tuple[int, int, int]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list, torch.Size)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ValueError(f"input_shape must be (channels, height, width) of positive ints, got {input_shape!r}")
    if min(shape[1:]) < minimum_side:
        raise ValueError(f"images must be at least {minimum_side}x{minimum_side}, got input_shape {shape}")
    return shape


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


def _head(channels: int, num_outputs: int) -> nn.Module:
    """BN-ReLU, global average pooling, linear: the classifier of pre-activation nets."""
    return nn.Sequential(
        nn.BatchNorm2d(channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_outputs)
    )


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
        num_outputs = check_int("num_outputs", num_outputs, minimum=1)
        in_channels = check_int("in_channels", in_channels, minimum=1)
        depth = check_int("depth", depth, minimum=10)
        if (depth - 4) % 6:
            raise ValueError(f"depth - 4 must be a multiple of 6 (e.g. 10, 40, 100), got depth={depth}")
        growth_rate = check_int("growth_rate", growth_rate, minimum=1)
        compression = check_positive_float("compression", compression)
        if compression > 1:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        layers_per_block = (depth - 4) // 6
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


# --------------------------------------------------------------------------- registry


def _flat_size(input_shape: Sequence[int]) -> int:
    return math.prod(input_shape)


def _build_mlp(input_shape, num_outputs, *, widths: Sequence[int] = (100, 100), activation: str = "relu",
               output_softmax: bool = False):
    return MLP(_flat_size(input_shape), widths, num_outputs, activation, output_softmax=output_softmax)


def _build_rff(input_shape, num_outputs, *, seed: int | None, n_features: int = 1000, sigma: float = 10.0):
    return RandomFourierFeatures(_flat_size(input_shape), num_outputs, n_features=n_features, sigma=sigma, seed=seed)


def _build_lenet(input_shape, num_outputs):
    return LeNet(input_shape, num_outputs)


def _build_preact_resnet18(input_shape, num_outputs, *, width: int = 64):
    channels, _, _ = _image_shape(input_shape, minimum_side=1)
    return PreActResNet18(num_outputs, in_channels=channels, width=width)


def _build_densenet_bc(input_shape, num_outputs, *, depth: int = 100, growth_rate: int = 12,
                       compression: float = 0.5):
    channels, _, _ = _image_shape(input_shape, minimum_side=4)  # two 2x2 poolings
    return DenseNetBC(num_outputs, in_channels=channels, depth=depth, growth_rate=growth_rate,
                      compression=compression)


_REGISTRY: dict[str, Callable[..., StagedModel]] = {
    "mlp": _build_mlp,
    "rff": _build_rff,
    "lenet": _build_lenet,
    "preact_resnet18": _build_preact_resnet18,
    "densenet_bc": _build_densenet_bc,
}


def available_models() -> tuple[str, ...]:
    """Names accepted by :func:`build_model`, sorted."""
    return tuple(sorted(_REGISTRY))


def model_parameters(name: str) -> dict[str, Any]:
    """The extra parameters model ``name`` accepts, with their defaults."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(available_models())}")
    skip = {"input_shape", "num_outputs", "seed"}
    return {p.name: p.default for p in inspect.signature(_REGISTRY[name]).parameters.values() if p.name not in skip}


def build_model(name: str, *, input_shape: Sequence[int], num_outputs: int, seed: int | None = None,
                **params: Any) -> StagedModel:
    """Build model ``name`` for inputs of ``input_shape``, with a reproducible initialisation.

    Parameters
    ----------
    name : str
        One of :func:`available_models`: ``mlp`` (:class:`MLP`), ``rff``
        (:class:`RandomFourierFeatures`), ``lenet`` (:class:`LeNet`),
        ``preact_resnet18`` (:class:`PreActResNet18`), ``densenet_bc`` (:class:`DenseNetBC`).
    input_shape : sequence of int
        Shape of one input, e.g. ``dataset.input_shape``; image models need ``(C, H, W)``.
    num_outputs : int
        Number of outputs (classes, or regression outputs).
    seed : int or None
        Seed of the initial weights (and of the random features of ``rff``): the same
        seed gives identical parameters. The global torch RNG state is left as it was.
        ``None`` draws from the global torch RNG.
    **params
        Options of that model (see :func:`model_parameters`), e.g. ``widths=(130, 120)``.

    Returns
    -------
    StagedModel

    Raises
    ------
    ValueError
        Unknown name, unknown parameter or invalid value.
    """
    accepted = model_parameters(name)
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"model {name!r} has no parameter(s) {unknown}; it accepts {sorted(accepted)}")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or not input_shape:
        raise ValueError(f"input_shape must be a non-empty sequence of positive ints, got {input_shape!r}")
    input_shape = tuple(check_int(f"input_shape[{i}]", s, minimum=1) for i, s in enumerate(input_shape))
    factory = _REGISTRY[name]
    if "seed" in inspect.signature(factory).parameters:
        params = {**params, "seed": seed}
    if seed is None:
        return factory(input_shape, num_outputs, **params)
    with torch.random.fork_rng(devices=[]):  # seed the default initialisers without touching the caller's RNG
        torch.manual_seed(seed)
        return factory(input_shape, num_outputs, **params)
