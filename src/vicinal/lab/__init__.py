"""The experiment system: datasets, models, trainer, sweeps, result store, reports, reproductions.

Needs the ``lab`` extra (matplotlib, scikit-learn, tqdm); Ray is the optional ``ray`` extra. The names
below are imported on first use, so that ``vicinal --help`` works (and says which extra to install)
on a machine with the library only.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Python modules of the ``lab`` extra; a ModuleNotFoundError for one of them means "install vicinal[lab]".
LAB_EXTRA_MODULES = ("matplotlib", "sklearn", "tqdm", "tomli")

_EXPORTS = {
    "RunConfig": "config", "train": "trainer",
    "Dataset": "datasets", "available_datasets": "datasets", "dataset_parameters": "datasets",
    "load_dataset": "datasets",
    **{name: "models" for name in ("MLP", "DenseNetBC", "LeNet", "PreActResNet18", "RandomFourierFeatures",
                                   "StagedModel", "available_models", "build_model", "model_parameters")},
}

__all__ = sorted(_EXPORTS)


def missing_extra_message(error: ModuleNotFoundError) -> str | None:
    """What to install when ``error`` is a missing module of the ``lab`` extra, else None."""
    root = (error.name or "").split(".")[0]
    if root not in LAB_EXTRA_MODULES:
        return None
    return (f"the experiment system needs the 'lab' extra (module {root!r} is not installed); install it with: "
            f'pip install "vicinal[lab]"  (from a checkout: pip install -e ".[lab]" -c constraints.txt)')


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vicinal.lab' has no attribute {name!r}")
    try:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
    except ModuleNotFoundError as error:
        message = missing_extra_message(error)
        if message is None:
            raise
        raise ModuleNotFoundError(message, name=error.name) from error
    return getattr(module, name)
