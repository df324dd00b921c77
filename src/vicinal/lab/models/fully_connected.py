"""Fully connected nets: the MLP of the toy and UCI experiments, random Fourier features (Carratino et al. 2020)."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from vicinal._checks import check_choice, check_int, check_positive_float

from .staged import StagedModel


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
    Sec. V-A; the authors' notebook runs ``MLP(2, (100, 100, 100), 2, output_softmax=True)``); the k-Mixup
    toy net ``MLP(2, (130, 120), 2)`` (Greenewald et al. 2023,
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

