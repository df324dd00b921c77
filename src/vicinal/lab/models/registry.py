"""The name -> model registry: build_model, available_models, model_parameters."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Sequence

import torch

from vicinal._checks import check_int

from .densenet import DenseNetBC
from .fully_connected import MLP, RandomFourierFeatures
from .lenet import LeNet
from .resnets import PreActResNet18, ResNet34, WideResNet, WideResNet101
from .staged import StagedModel, _image_shape


def _flat_size(input_shape: Sequence[int]) -> int:
    return math.prod(input_shape)


def _build_mlp(input_shape, num_outputs, *, widths: Sequence[int] = (100, 100), activation: str = "relu",
               output_softmax: bool = False):
    return MLP(_flat_size(input_shape), widths, num_outputs, activation, output_softmax=output_softmax)


def _build_rff(input_shape, num_outputs, *, seed: int | None, n_features: int = 1000, sigma: float = 10.0):
    return RandomFourierFeatures(_flat_size(input_shape), num_outputs, n_features=n_features, sigma=sigma, seed=seed)


def _build_lenet(input_shape, num_outputs, *, padding: int = 2):
    return LeNet(input_shape, num_outputs, padding=padding)


def _build_preact_resnet18(input_shape, num_outputs, *, width: int = 64):
    channels, _, _ = _image_shape(input_shape, minimum_side=1)
    return PreActResNet18(num_outputs, in_channels=channels, width=width)


def _build_resnet34(input_shape, num_outputs, *, width: int = 64):
    channels, _, _ = _image_shape(input_shape, minimum_side=1)
    return ResNet34(num_outputs, in_channels=channels, width=width)


def _build_wide_resnet(input_shape, num_outputs, *, depth: int = 28, widen_factor: int = 10, dropout: float = 0.0):
    channels, _, _ = _image_shape(input_shape, minimum_side=1)
    return WideResNet(num_outputs, in_channels=channels, depth=depth, widen_factor=widen_factor, dropout=dropout)


def _build_wide_resnet101_2(input_shape, num_outputs, *, width: int = 64):
    channels, _, _ = _image_shape(input_shape, minimum_side=1)  # strided layers map a 1x1 map to 1x1
    return WideResNet101(num_outputs, in_channels=channels, width=width)


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
    "resnet34": _build_resnet34,
    "wide_resnet": _build_wide_resnet,
    "wide_resnet101_2": _build_wide_resnet101_2,
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
        ``preact_resnet18`` (:class:`PreActResNet18`), ``resnet34`` (:class:`ResNet34`),
        ``wide_resnet`` (:class:`WideResNet`, CIFAR WRN-depth-k), ``wide_resnet101_2``
        (:class:`WideResNet101`, the ImageNet Wide ResNet-101-2: the reading of k-Mixup's
        "WideResNet-101", Greenewald et al. 2023, Table 11(b)), ``densenet_bc`` (:class:`DenseNetBC`).
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
