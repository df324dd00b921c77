"""Networks used in the three papers, each split into stages for manifold mixup.

Every model is a :class:`StagedModel`: a list of stages applied in order. Stage
boundary ``b`` is the representation after ``b`` stages (0 = the input,
``num_stages`` = the output), so mixing hidden states at boundary ``b``
(manifold mixup, Verma et al. 2019, used by Greenewald et al. 2023, Sec. 5) is::

    h = model.features(x, b)
    h_mixed = lam * h + (1 - lam) * h[partner]
    logits = model.forward_from(h_mixed, b)

:func:`build_model` makes any of them from a name, the input shape and a seed.

Modules: staged (StagedModel), fully_connected (MLP, RFF), lenet, resnets,
densenet, registry (build_model).
"""

from .densenet import DenseNetBC
from .fully_connected import MLP, RandomFourierFeatures, _FourierFeatures
from .lenet import LeNet
from .registry import available_models, build_model, model_parameters
from .resnets import PreActResNet18, ResNet34, WideResNet, WideResNet101
from .staged import StagedModel


__all__ = [
    "StagedModel",
    "MLP",
    "RandomFourierFeatures",
    "LeNet",
    "PreActResNet18",
    "ResNet34",
    "WideResNet",
    "WideResNet101",
    "DenseNetBC",
    "build_model",
    "available_models",
    "model_parameters",
]
