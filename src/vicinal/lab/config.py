"""One training run, fully described by a validated, JSON-serialisable configuration.

The configuration is what the sweep runner hashes and stores, so every field that changes the
result lives here, and unknown keys are refused (a misspelt ``epsilon`` must not silently run
with the default ``eps``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import inspect
import numbers
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

import vicinal as v
from vicinal._checks import check_int, check_nonnegative_float, check_positive_float

from .datasets import dataset_parameters
from .datasets.cifar_corrupted import CORRUPTED_VARIANTS
from .models import model_parameters
from .suggest import check_name, did_you_mean

METHODS = ("erm", "mixup", "local_mixup", "kmixup", "modified_data", "approx_mixup")
MIXING_METHODS = ("mixup", "local_mixup", "kmixup")
GRAPHS = ("threshold", "quantile", "knn", "exponential")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "step", "multistep", "cosine")
#: Loss reductions of mixing methods: ``vicinal.losses.reduce_weighted``'s, and
#: "mean_times_mean_weight", the Local Mixup authors' spirals loss (mean CE over the batch times
#: the batch's mean pair weight: eq. 2's per-pair weighting is lost; kept to reproduce their recipe).
REDUCTIONS = ("mean", "normalized", "sum", "mean_times_mean_weight")
LOOPS = ("host", "device", "loader")
#: Methods that refuse ``label_smoothing``, and why: their targets are set by their own equations.
SMOOTHING_REFUSED = {
    "modified_data": "its targets are already Carratino et al.'s eq. 20 shrinkage towards the mean label, a label "
                     "smoothing of weight 1 - theta_bar set by alpha",
    "approx_mixup": "Carratino et al.'s Theorem 2 risk is derived for the modified data of eq. 20, whose targets "
                    "alpha already smooths",
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run (see ``vicinal sweep --help`` for the TOML form).

    Method-specific fields are ignored by other methods but kept in the hash, so leave them at their
    defaults when they do not apply (the sweep expansion does this).

    Methods: ``erm`` (plain training), ``mixup`` (Zhang et al. 2018), ``local_mixup`` (Baena et al.
    2022, eq. 2; ``graph``: "threshold" (``eps``), "quantile" (``quantile``: a threshold at that quantile of each
    batch's pair distances), "knn" (``n_neighbors``) or "exponential" (``decay``, ``relative``); ``sampling``), ``kmixup``
    (Greenewald et al. 2023; ``k``), ``modified_data`` (ERM on the shrunk data of Carratino et al. 2020,
    eq. 20) and ``approx_mixup`` (the approximate mixup risk, Carratino et al. 2020, Theorem 2, trained
    without the R2 term as in the paper's Fig. 2: with R2 the objective is unbounded below).

    Training loops (``loop``; each trains one run at a time, on ``device``: "cpu", "cuda", "cuda:N"):

    * ``"host"`` (default): the CPU trainer (:mod:`vicinal.lab.trainer`); its runs are batched into
      ensembles by ``vicinal sweep``;
    * ``"device"``: the training set held on ``device``, bf16 autocast on CUDA and, with ``crop_flip``,
      random crops (pad 4) and flips drawn on the device (:mod:`vicinal.lab.device_loop`);
    * ``"loader"``: for data that do not fit in device memory, batches from a DataLoader with
      ``workers`` worker processes (0: in the training process), crop + flip and mixing in the
      workers (:class:`vicinal.MixCollate`), copied to ``device`` (:mod:`vicinal.lab.loader_loop`).
      Its mixing draws come from per-worker streams seeded by (seed, epoch, worker), so it is not
      bitwise equal to the host loop, but the same config gives the same numbers (for any
      ``workers``), and a resumed run those of an uninterrupted one; ERM without crop_flip equals the
      host loop.

    ``compile_model`` wraps the model in ``torch.compile`` for the device and loader loops (the stored
    weights and checkpoints are the plain module's). The loop settings are left out of the config hash
    at their defaults.

    ``eval_corrupted``: the local directory holding CIFAR-10-C (dataset ``cifar10``) or CIFAR-100-C
    (``cifar100``) as distributed (Hendrycks & Dietterich 2019: ``<corruption>.npy`` and ``labels.npy``,
    or the ``CIFAR-10-C`` / ``CIFAR-100-C`` folder holding them). The trained model is then also
    evaluated on all 19 corruptions x 5 severities, plain and rescaled, averaged as in Carratino et al.
    2020, Fig. 5 (over the 95 sets) and Fig. 6 (per severity): see :mod:`vicinal.lab.corrupted_eval`.
    The files are checked when the run starts. Empty (the default): no corrupted evaluation.

    ``label_smoothing`` (s in [0, 1)) trains classification against smoothed class targets
    (1 - s) onehot(y) + s / C (Szegedy et al. 2016, Sec. 7): ERM's cross-entropy, and the targets the
    mixing methods interpolate (Carratino et al. 2020, Fig. 7 compares ERM with and without it).
    """

    dataset: str = "spirals"
    dataset_params: dict = field(default_factory=dict)
    model: str = "mlp"
    model_params: dict = field(default_factory=dict)
    method: str = "erm"
    alpha: float = 1.0
    graph: str = "threshold"
    eps: float = 1.0
    n_neighbors: int = 10
    decay: float = 1e-3
    quantile: float = 0.25
    relative: bool = False
    sampling: str = "uniform"
    k: int = 16
    lam_mode: str = "batch"
    truncate: bool = False
    mix_layers: tuple = (0,)
    reduction: str = "mean"
    approx_estimator: str = "exact"
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    step_size: int = 30
    gamma: float = 0.1
    milestones: tuple = ()
    epochs: int = 10
    batch_size: int = 128
    kept_pairs: int = 0
    seed: int = 0
    data_seed: int = -1
    eval_rescaled: bool = True
    eval_every: int = 0
    n_bins: int = 15
    noise_stds: tuple = ()
    fgsm_eps: tuple = ()
    eval_corrupted: str = ""
    loop: str = "host"
    device: str = "cpu"
    crop_flip: bool = False
    workers: int = 0
    compile_model: bool = False
    label_smoothing: float = 0.0

    def __post_init__(self):
        self._normalise_types()
        for name, choices in (("method", METHODS), ("graph", GRAPHS), ("sampling", ("uniform", "weighted")),
                              ("lam_mode", ("batch", "sample")), ("reduction", REDUCTIONS),
                              ("approx_estimator", ("exact", "stochastic")), ("optimizer", OPTIMIZERS),
                              ("schedule", SCHEDULES), ("loop", LOOPS)):
            check_name(f"{name}", getattr(self, name), choices)
        check_positive_float("alpha", self.alpha)
        check_nonnegative_float("eps", self.eps)
        check_int("n_neighbors", self.n_neighbors, minimum=0)
        check_nonnegative_float("decay", self.decay)
        check_nonnegative_float("quantile", self.quantile)
        if not 0 < self.quantile <= 1:
            raise ValueError(f"quantile must be in (0, 1], got {self.quantile!r}; for plain training use eps = 0")
        check_int("k", self.k, minimum=1)
        check_positive_float("lr", self.lr)
        check_nonnegative_float("momentum", self.momentum)
        check_nonnegative_float("weight_decay", self.weight_decay)
        check_int("step_size", self.step_size, minimum=1)
        check_positive_float("gamma", self.gamma)
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("kept_pairs", self.kept_pairs, minimum=0)
        check_int("seed", self.seed, minimum=0)
        check_int("data_seed", self.data_seed, minimum=-1)
        check_int("eval_every", self.eval_every, minimum=0)
        check_int("n_bins", self.n_bins, minimum=1)
        if self.method == "kmixup" and self.k > 1 and self.batch_size // self.k < 2:
            raise ValueError(f"k-Mixup setting k={self.k} needs batches of at least 2k={2 * self.k} samples to match "
                             f"two disjoint blocks, but batch_size={self.batch_size}; use k <= "
                             f"{max(self.batch_size // 2, 1)} or a larger batch_size")
        self._check_loop()
        self._check_eval_corrupted()
        self._check_label_smoothing()
        if not self.mix_layers:
            raise ValueError("mix_layers must be a non-empty list of stage boundaries (0 = input), got []")
        for boundary in self.mix_layers:
            check_int("mix_layers entry", boundary, minimum=0)
        for name in ("noise_stds", "fgsm_eps"):
            for value in getattr(self, name):
                check_nonnegative_float(f"{name} entry", value)
        object.__setattr__(self, "dataset_params",
                           _known_params("dataset", self.dataset, self.dataset_params, dataset_parameters))
        object.__setattr__(self, "model_params",
                           _known_params("model", self.model, self.model_params, model_parameters))

    def _check_loop(self) -> None:
        """The device and loader loops (lab/device_loop.py, lab/loader_loop.py) train on ``device``; the host loop
        on the CPU, plain."""
        check_int("workers", self.workers, minimum=0)
        if not (self.device == "cpu" or self.device == "cuda" or
                (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if self.loop == "host" and (self.device != "cpu" or self.crop_flip or self.compile_model):
            setting = (f"device={self.device!r}" if self.device != "cpu" else "crop_flip=true" if self.crop_flip
                       else "compile_model=true")
            raise ValueError(f"{setting} needs the device or the loader loop: set loop='device' (data on the device) or "
                             f"loop='loader' (a DataLoader) as well; the host loop, which sweeps batch into ensembles, "
                             f"runs on the CPU, uncompiled, without augmentation")
        if self.workers and self.loop != "loader":
            raise ValueError(f"workers={self.workers} sets the DataLoader worker processes of the loader loop: set "
                             f"loop='loader' as well, or workers=0")
        if self.loop != "host" and self.method in ("modified_data", "approx_mixup"):
            raise ValueError(f"method {self.method!r} trains from statistics held on the host; use loop='host' for it "
                             f"(the {self.loop} loop runs erm, mixup, local_mixup and kmixup)")
        if self.loop == "loader" and self.method in MIXING_METHODS and tuple(self.mix_layers) != (0,):
            raise ValueError(f"mix_layers={list(self.mix_layers)} mixes hidden features, but the loader loop mixes inputs "
                             f"in the DataLoader: use mix_layers=[0], or loop='device' / 'host' for manifold mixing")

    def _check_eval_corrupted(self) -> None:
        """CIFAR-10-C / 100-C corrupt the CIFAR-10 / 100 test images, so only runs trained on those sets take them."""
        if not self.eval_corrupted:
            return
        if not self.eval_corrupted.strip():
            raise ValueError(f"eval_corrupted must be a directory or empty, got {self.eval_corrupted!r}")
        if self.dataset not in CORRUPTED_VARIANTS:
            raise ValueError(f"eval_corrupted evaluates on CIFAR-10-C / CIFAR-100-C, the corrupted CIFAR-10 / CIFAR-100 "
                             f"test images, so it needs dataset 'cifar10' (with CIFAR-10-C) or 'cifar100' (with "
                             f"CIFAR-100-C), got dataset {self.dataset!r}; leave eval_corrupted empty for it")

    def _check_label_smoothing(self) -> None:
        """Label smoothing (Szegedy et al. 2016) for the methods that train on class targets as given."""
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}; 0.1 is the usual "
                             f"amount (Szegedy et al. 2016), 0 turns it off")
        if self.label_smoothing > 0 and self.method in SMOOTHING_REFUSED:
            raise ValueError(f"label_smoothing={self.label_smoothing!r} has no meaning for method {self.method!r}: "
                             f"{SMOOTHING_REFUSED[self.method]}; set label_smoothing=0, or use method 'erm' or "
                             f"one of {', '.join(MIXING_METHODS)}")

    def _normalise_types(self) -> None:
        """Refuse a wrong-typed setting by name (``truncate = "yes"`` is not true) and store numbers in one
        form: a float setting given as ``1`` becomes ``1.0``, so both spellings hash to one run."""
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), f.type
            if kind == "float":
                if isinstance(value, bool) or not isinstance(value, numbers.Real):
                    raise TypeError(f"setting {f.name!r} must be a number, got {value!r} ({type(value).__name__})")
                value = float(value)
            elif kind == "int":
                if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                    raise TypeError(f"setting {f.name!r} must be an integer, got {value!r} ({type(value).__name__})")
                value = int(value)
            elif kind == "bool" and not isinstance(value, bool):
                raise TypeError(f"setting {f.name!r} must be true or false, got {value!r} ({type(value).__name__})")
            elif kind == "str" and not isinstance(value, str):
                raise TypeError(f"setting {f.name!r} must be a string, got {value!r} ({type(value).__name__})")
            elif kind == "dict" and not isinstance(value, dict):
                raise TypeError(f"setting {f.name!r} must be a table of settings ({{...}} or [{f.name}]), "
                                f"got {value!r} ({type(value).__name__})")
            elif kind == "tuple":
                if not isinstance(value, (list, tuple)):
                    raise TypeError(f"setting {f.name!r} must be a list (e.g. {f.name} = [1, 2]), got {value!r} "
                                    f"({type(value).__name__})")
                cast = float if f.name in _FLOAT_LISTS else int
                kinds = numbers.Real if cast is float else numbers.Integral
                bad = [v for v in value if isinstance(v, bool) or not isinstance(v, kinds)]
                if bad:
                    raise TypeError(f"setting {f.name!r} must be a list of {cast.__name__}s, got {list(value)!r}")
                value = tuple(cast(v) for v in value)
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        """Build from a plain dict (a TOML table, a stored row), refusing unknown keys by name."""
        if not isinstance(values, dict):
            raise TypeError(f"run settings must be a dict, got {type(values).__name__}: {values!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            hints = "".join(did_you_mean(name, names) for name in unknown)
            raise ValueError(f"unknown run setting(s) {', '.join(map(repr, unknown))}{hints}; "
                             f"valid settings: {', '.join(sorted(names))}")
        return cls(**values)  # lists become tuples in _normalise_types

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (tuples become lists).

        The settings added after runs were first stored (the loops', ``eval_corrupted``, label smoothing) are
        left out at their defaults, so that every run stored before they existed keeps its config hash
        (``from_dict`` fills them back in)."""
        values = {key: list(value) if isinstance(value, tuple) else value for key, value in dataclasses.asdict(self).items()}
        for name, default in _LATER_DEFAULTS.items():
            if values[name] == default:
                del values[name]
        return values

    @property
    def effective_data_seed(self) -> int:
        """Seed of the data draw/split: ``data_seed``, or ``seed`` when ``data_seed = -1`` (fresh data per run)."""
        return self.seed if self.data_seed < 0 else self.data_seed


_FLOAT_LISTS = ("noise_stds", "fgsm_eps")
#: Settings added after runs were stored, left out of ``to_dict`` at their defaults (the dataclass's own) so
#: older hashes stay.
_LATER_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)
                   if f.name in ("loop", "device", "crop_flip", "workers", "compile_model", "eval_corrupted",
                                 "label_smoothing")}


def _known_params(kind: str, name: str, params: dict, accepted_by) -> dict:
    """Refuse an unknown dataset/model name, an unknown parameter or a missing required one before any run
    starts (naming the valid ones); an integer given where the default is a float becomes a float, so
    ``noise=1`` and ``noise=1.0`` are one run."""
    try:
        accepted = accepted_by(name)
    except ValueError:
        from .datasets import available_datasets
        from .models import available_models
        valid = available_datasets() if kind == "dataset" else available_models()
        raise ValueError(f"unknown {kind} {name!r}{did_you_mean(name, valid)}; valid names: {', '.join(valid)}") from None
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        hints = "".join(did_you_mean(key, accepted) for key in unknown)
        raise ValueError(f"{kind} {name!r} has no parameter(s) {', '.join(map(repr, unknown))}{hints}; "
                         f"it accepts: {', '.join(sorted(accepted)) or 'none'}")
    missing = sorted(key for key, default in accepted.items() if default is inspect.Parameter.empty and key not in params)
    if missing:
        raise ValueError(f"{kind} {name!r} needs {kind}_params.{missing[0]}"
                         + (f" (and {', '.join(missing[1:])})" if missing[1:] else "")
                         + f", e.g. --set {kind}_params.{missing[0]}=/path/to/data (see `vicinal list`)")
    return {key: _param_value(kind, key, value, accepted[key]) for key, value in params.items()}


def _param_value(kind: str, key: str, value: Any, default: Any) -> Any:
    """A parameter value of the type its default has (an int for a float default becomes a float), refused
    by name otherwise, so that ``noise=abc`` fails here and not once per run."""
    where = f"{kind}_params.{key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(f"{where} must be true or false, got {value!r} ({type(value).__name__})")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{where} must be a number, got {value!r} ({type(value).__name__})")
        return float(value)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{where} must be an integer, got {value!r} ({type(value).__name__})")
    elif isinstance(default, str) and not isinstance(value, str):
        raise TypeError(f"{where} must be a string, got {value!r} ({type(value).__name__})")
    elif isinstance(default, (tuple, list)) and not isinstance(value, (tuple, list)):
        raise TypeError(f"{where} must be a list (e.g. [64, 64]), got {value!r} ({type(value).__name__})")
    elif default is inspect.Parameter.empty and key in ("root", "path") and not isinstance(value, str):
        raise TypeError(f"{where} must be a path, got {value!r} ({type(value).__name__})")
    return value


def canonical_config(config: dict[str, Any]) -> dict[str, Any]:
    """The one stored form of a run's settings (defaults filled in, ``1`` -> ``1.0`` for float settings), so
    that every spelling of one run has one config hash. An integration step with no paper."""
    return RunConfig.from_dict(config).to_dict()


def stream_seed(seed: int, stream: str) -> int:
    """An independent 63-bit seed per named random stream ("init", "data", "mix", ...) of a run.

    sha256 of "seed:stream", the runs' randomness protocol (changing it would change every stored result);
    :func:`vicinal.seeding.derive_seed` is the library's SplitMix64 helper for ranks and workers.
    """
    digest = hashlib.sha256(f"{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_graph(config: RunConfig) -> v.LocalityGraph:
    """The locality graph a config names (Baena et al. 2022, Sec. IV-A)."""
    if config.graph == "threshold":
        return v.Threshold(eps=config.eps)
    if config.graph == "quantile":
        return v.Threshold(quantile=config.quantile)
    if config.graph == "knn":
        return v.KNN(n_neighbors=config.n_neighbors)
    return v.Exponential(decay=config.decay, relative=config.relative)


def make_mixer(config: RunConfig, num_classes: int | None, *, check_finite: bool = True) -> v.Mixer | None:
    """The mixer of a mixing method (Mixup / LocalMixup / KMixup), or None for the other methods.

    ``check_finite=False`` drops the mixer's per-call value checks (finite inputs, label range, empty-graph
    warning), each a host synchronisation on a GPU; the trainer turns them off on CUDA only (see _Step).
    """
    common = dict(alpha=config.alpha, num_classes=num_classes, lam_mode=config.lam_mode, truncate=config.truncate,
                  check_finite=check_finite, label_smoothing=config.label_smoothing)
    if config.method == "mixup":
        return v.Mixup(**common)
    if config.method == "local_mixup":
        return v.LocalMixup(graph=make_graph(config), sampling=config.sampling, **common)
    if config.method == "kmixup":
        return v.KMixup(k=config.k, **common)
    return None


def make_optimizer(parameters, config: RunConfig) -> torch.optim.Optimizer:
    """SGD with momentum / weight decay (k-Mixup Sec. 5, Zhang et al.) or Adam (Local Mixup Sec. V-A)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, config: RunConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch learning-rate schedule: constant, step (StepLR), multi-step (k-Mixup: /10 at 100, 150), cosine."""
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.gamma)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def apply_settings(settings: dict[str, Any], items: Sequence[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides (``model_params.widths=[64,64]`` reaches into tables) to run settings.

    Values are parsed like TOML values (``1``, ``0.5``, ``true``, ``[1, 2]``), bare words stay strings
    (``method=mixup``), so the command line reads like the sweep files.
    """
    from .sweep import parse_value  # one value syntax for sweep files and the command line

    result = copy.deepcopy(dict(settings))
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE (e.g. epochs=20), got {item!r}")
        *parents, leaf = key.strip().split(".")
        table = result
        for parent in parents:
            table = table.setdefault(parent, {})
            if not isinstance(table, dict):
                raise ValueError(f"override {item!r}: {parent!r} is not a table of settings")
        table[leaf] = parse_value(text, item)
    return result


_LOCAL_ONLY = {"graph", "eps", "quantile", "n_neighbors", "decay", "relative", "sampling", "kept_pairs"}
_GRAPH_PARAMETERS = {"threshold": {"eps"}, "quantile": {"quantile"}, "knn": {"n_neighbors"},
                     "exponential": {"decay", "relative"}}


def unused_settings(config: dict[str, Any]) -> set[str]:
    """Settings a run's method ignores (e.g. ``eps`` for ERM), so reports can leave them blank."""
    method = config.get("method")
    unused = set()
    if method != "local_mixup":
        unused |= _LOCAL_ONLY
    else:
        unused |= set().union(*_GRAPH_PARAMETERS.values()) - _GRAPH_PARAMETERS[config.get("graph", "threshold")]
    if method != "kmixup":
        unused.add("k")
    if method not in MIXING_METHODS:
        unused |= {"lam_mode", "truncate", "mix_layers"}
    if method != "approx_mixup":
        unused.add("approx_estimator")
    if method == "erm":
        unused.add("alpha")
    if method in SMOOTHING_REFUSED:
        unused.add("label_smoothing")
    return unused


def used_settings(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the settings its method ignores."""
    unused = unused_settings(config)
    return {key: value for key, value in config.items() if key not in unused}
