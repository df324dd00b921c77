"""Train one model with one method, evaluate it, return its metrics.

Randomness protocol (the batched ensemble trainer reproduces it member by member):

* ``stream_seed(seed, "init")`` seeds the model's initial weights (``build_model(seed=...)``);
* ``stream_seed(seed, "data")`` seeds a generator that draws one ``randperm`` of the training set per
  epoch; batches are consecutive slices of it (the short last slice is dropped);
* ``stream_seed(seed, "mix")`` seeds the generator given to the mixer at every step (after one
  ``randint`` choosing the mixing layer, only when several layers are allowed). Each mixer call
  draws a fixed number of float64 uniforms from it, lambdas first (1 per batch, or B), then the B
  of the random order or of the weighted partner draws (:func:`vicinal.lam.sample_lam`,
  :func:`vicinal.pairing.random_order`, :class:`vicinal.GraphPairing`). Consecutive ``torch.rand``
  calls continue one stream, so the ensemble draws a whole epoch per member in one call;
* the data themselves come from ``load_dataset(..., seed=config.effective_data_seed)``;
* ``loop = "loader"`` draws the same permutations, but mixes (and crops / flips) in the DataLoader
  from streams seeded per epoch from ``stream_seed(seed, "mix")`` (``"augment"``) and the worker
  (:mod:`vicinal.lab.loader_loop`): repeatable and resumable, other draws than the host loop's.

This is protocol 3 (:data:`RANDOMNESS_PROTOCOL`). Protocol 1 drew lambdas by Gamma variates and
partners by ``randperm`` / ``multinomial``, one generator call each per step, which kept the batched
trainer calling every member's generator at every step. Protocol 2 drew as protocol 3 but Local
Mixup's "uniform" partners followed a random cycle (never self), which dropped eq. 2's diagonal;
protocol 3 draws them uniformly over the batch, self included (:class:`vicinal.UniformPairing`),
from the same uniforms. Other protocols give other numbers (protocol 2 only for uniform Local
Mixup): result stores and checkpoints of earlier protocols are refused (store schema 3,
checkpoint version 3).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import vicinal as v
from vicinal._checks import all_finite
from vicinal.approx import approximate_mixup_loss
from vicinal.rescale import RescaledPredictor, fit_stats, modified_data

from .config import MIXING_METHODS, RunConfig, stream_seed, make_graph, make_mixer, make_optimizer, make_schedule
from .corrupted_eval import check_corrupted_files, run_corrupted_metrics
from .datasets import Dataset, load_dataset
from .evaluate import classification_metrics, fgsm_error, module_device, noisy_error, predict, regression_metrics
from .models import build_model

#: Version of the randomness protocol above; results of another protocol are other random draws.
RANDOMNESS_PROTOCOL = 3
CHECKPOINT_VERSION = 3  # 3: randomness protocol 3

logger = logging.getLogger(__name__)


def kept_pairs_batch_size(x: torch.Tensor, config: RunConfig, *, n_pairs: int = 20000) -> int:
    """Batch size that keeps about ``config.kept_pairs`` virtual samples per step (Baena et al. 2022, Sec. V-A).

    Local Mixup with a sparse graph discards most random pairs, so the paper grows the batch as eps
    shrinks to keep the average number of kept pairs per step constant. The kept fraction is the mean
    graph weight of ``n_pairs`` random distinct pairs of training inputs (seeded by the run's data seed).
    """
    n = x.shape[0]
    generator = torch.Generator().manual_seed(stream_seed(config.effective_data_seed, "kept_pairs"))
    i = torch.randint(0, n, (n_pairs,), generator=generator)
    j = (i + torch.randint(1, n, (n_pairs,), generator=generator)) % n  # j != i
    graph = make_graph(config)
    if graph.needs_full_matrix:
        raise ValueError(
            f"kept_pairs sets the batch size from a fixed graph's kept fraction; graph={config.graph!r}"
            + (" with relative=true" if config.graph == "exponential" else "")
            + " adapts to each batch instead: set batch_size directly, or use graph 'threshold' / 'exponential'"
        )
    if tuple(config.mix_layers) != (0,):
        raise ValueError(
            f"kept_pairs measures the kept fraction on input distances, but mix_layers={list(config.mix_layers)} "
            f"applies the graph to hidden features, whose distances change as the model trains: set batch_size "
            f"directly, or mix at the input (mix_layers = [0])"
        )
    weights = graph.weights_from_distances(v.graphs.paired_distances(x[i], x[j], metric=graph.metric), same_set=False)
    kept_fraction = float(weights.mean())
    if kept_fraction == 0.0:
        raise ValueError(f"the graph keeps no random pair of training points (eps={config.eps}); kept_pairs cannot be met")
    return max(2, min(n, math.ceil(config.kept_pairs / kept_fraction)))


def effective_batch_size(dataset: Dataset, config: RunConfig) -> int:
    """``batch_size``, or the kept-pairs adjusted size for Local Mixup when ``kept_pairs > 0``."""
    if config.kept_pairs and config.method == "local_mixup":
        return kept_pairs_batch_size(dataset.x_train, config)
    return min(config.batch_size, dataset.x_train.shape[0])


class _Step:
    """The loss of one training step for the configured method."""

    def __init__(self, config: RunConfig, model, dataset: Dataset, stats):
        self.config, self.model, self.stats = config, model, stats
        self.num_classes = dataset.num_classes
        if config.label_smoothing > 0 and dataset.num_classes is None:
            raise ValueError(f"label_smoothing={config.label_smoothing!r} smooths class targets, but dataset "
                             f"{config.dataset!r} is a regression set (float targets); set label_smoothing=0")
        # Per-step value checks read tensors back to the host: on CUDA that stalls every step. There the data
        # were checked when loaded, a NaN loss still ends the run as diverged (one read per epoch), and an
        # epoch whose mean loss is exactly 0 warns (zero_loss_warning): the silent-zero guard moves per epoch.
        self.checks = config.device == "cpu"
        self.mixer = make_mixer(config, dataset.num_classes, check_finite=self.checks)
        self.loss_name = "cross_entropy" if dataset.num_classes is not None else "squared_error"
        num_stages = getattr(model, "num_stages", None)
        if config.method in MIXING_METHODS and config.mix_layers != (0,):
            if num_stages is None:
                raise ValueError(f"model {config.model!r} exposes no stages: manifold mixing (mix_layers) needs a StagedModel")
            bad = [b for b in config.mix_layers if b >= num_stages]
            if bad:
                raise ValueError(f"mix_layers {bad} out of range: model {config.model!r} has boundaries 0..{num_stages - 1}")

    def __call__(self, x: torch.Tensor, y: torch.Tensor, mix_generator: torch.Generator) -> torch.Tensor:
        config, model = self.config, self.model
        if self.mixer is not None:
            layers = config.mix_layers
            layer = layers[0] if len(layers) == 1 else layers[int(torch.randint(len(layers), (1,), generator=mix_generator))]
            hidden = x if layer == 0 else model.features(x, layer)
            batch = self.mixer(hidden, y, generator=mix_generator)
            outputs = model(batch.inputs) if layer == 0 else model.forward_from(batch.inputs, layer)
            return self.mixed_loss(outputs, batch)
        if config.method == "erm":
            outputs = model(x)
            if self.num_classes is None:
                return v.squared_error(outputs, y).mean()
            # torch's label_smoothing is Szegedy et al.'s (1 - s) one-hot + s / C, the mixers' convention.
            return F.cross_entropy(outputs, y, label_smoothing=config.label_smoothing)
        if config.method == "modified_data":
            x_mod, y_mod = modified_data(x, y, stats=self.stats, alpha=config.alpha)
            outputs = model(x_mod)
            if self.num_classes is None:
                return v.squared_error(outputs, y_mod).mean()
            return v.soft_cross_entropy(outputs, y_mod).mean()
        # Without R2 (the Hessian-of-f term), as the paper trains in Fig. 2: with it the objective is
        # unbounded below and training runs away (measured on two moons: loss -974, weight norm 1241).
        return approximate_mixup_loss(model, x, y, alpha=config.alpha, stats=self.stats, loss=self.loss_name,
                                      estimator=config.approx_estimator, generator=mix_generator, include_r2=False)

    def mixed_loss(self, outputs: torch.Tensor, batch: v.MixedBatch) -> torch.Tensor:
        """The configured reduction of the loss on a mixed batch (eq. 2 weighted, or the authors' variant)."""
        if self.config.reduction == "mean_times_mean_weight":  # the Local Mixup authors' loss, not eq. 2
            unweighted = v.mixup_loss(outputs, dataclasses.replace(batch, weights=None), loss=self.loss_name,
                                      check_values=self.checks)
            return unweighted if batch.weights is None else unweighted * batch.weights.to(unweighted.dtype).mean()
        return v.mixup_loss(outputs, batch, loss=self.loss_name, reduction=self.config.reduction,
                            check_values=self.checks)

    def collated_loss(self, batch) -> torch.Tensor:
        """The loss of a batch from the loader loop: a MixedBatch (mixed in the DataLoader), or ``(x, y)``."""
        if isinstance(batch, v.MixedBatch):
            return self.mixed_loss(self.model(batch.inputs), batch)
        return self(*batch, None)


def train(config: RunConfig | dict, *, progress: bool = False, checkpoint: str | os.PathLike | None = None,
          checkpoint_every: int = 1, dataset: Dataset | None = None,
          return_model: bool = False) -> dict[str, Any] | tuple[dict[str, Any], torch.nn.Module]:
    """Train and evaluate one run; return a flat dict of metrics (floats, per-epoch lists).

    Implements the training protocols of Baena et al. 2022 (Sec. V), Greenewald et al. 2023 (Sec. 5)
    and Carratino et al. 2020 (Sec. 5, App. B.3) for the method the config names.

    Parameters
    ----------
    config : RunConfig or dict
        The run. A dict is validated with :meth:`RunConfig.from_dict`.
    progress : bool
        Show a tqdm progress bar over epochs.
    checkpoint : path, optional
        File to save the full training state to every ``checkpoint_every`` epochs (atomically). When
        the file exists and was written for the same config, training resumes from it and ends with
        the same numbers as an uninterrupted run.
    dataset : Dataset, optional
        Pre-loaded data (must be what the config names); loaded from the config when omitted.
    return_model : bool
        Also return the trained model: ``(metrics, model)``.
    """
    config = RunConfig.from_dict(config) if isinstance(config, dict) else config
    check_corrupted_files(config)  # before training, not after the last epoch
    if dataset is None:
        dataset = load_dataset(config.dataset, seed=config.effective_data_seed, **config.dataset_params)
    classification = dataset.num_classes is not None
    num_outputs = dataset.num_classes if classification else (1 if dataset.y_train.ndim == 1 else dataset.y_train.shape[1])
    model = build_model(config.model, input_shape=dataset.input_shape, num_outputs=num_outputs,
                        seed=stream_seed(config.seed, "init"), **config.model_params)
    needs_stats = config.method in ("modified_data", "approx_mixup") or rescaled_applies(config, dataset)
    stats = fit_stats((dataset.x_train, dataset.y_train), num_classes=dataset.num_classes) if needs_stats else None
    if config.loop != "host":  # before the optimiser is built on the parameters
        memory_format = torch.channels_last if _channels_last(config, dataset) else torch.preserve_format
        model.to(config.device, memory_format=memory_format)
    # Only the training step runs compiled: checkpoints and saved weights keep the module's own keys.
    forward = torch.compile(model) if config.compile_model else model
    optimizer = make_optimizer(model.parameters(), config)
    schedule = make_schedule(optimizer, config)
    data_generator = torch.Generator().manual_seed(stream_seed(config.seed, "data"))
    mix_generator = torch.Generator().manual_seed(stream_seed(config.seed, "mix"))
    augment_generator = None
    if config.crop_flip and config.loop == "device":  # drawn where the images are (the loader loop seeds by epoch)
        augment_generator = torch.Generator(device=config.device).manual_seed(stream_seed(config.seed, "augment"))
    step = _Step(config, forward, dataset, stats)
    batch_size = effective_batch_size(dataset, config)
    n_train = dataset.x_train.shape[0]
    steps_per_epoch = n_train // batch_size

    history = {"train_loss": [], "test_error_curve": []}
    start_epoch = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = _read_checkpoint(Path(checkpoint))
        if state is not None:
            start_epoch, history = _load_checkpoint(state, checkpoint, config, model, optimizer, schedule,
                                                    data_generator, mix_generator, augment_generator)

    epochs = range(start_epoch, config.epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc=f"{config.method} seed={config.seed}", unit="epoch", initial=start_epoch,
                      total=config.epochs, leave=False)
    model.train()
    fast_loop = _device_loop(config, step, dataset, batch_size, augment_generator) or _loader_loop(
        config, step, dataset, batch_size)
    # The device loop holds the data on the device anyway; the loader loop is for data that do not fit there, so
    # its eval_every predictions move the test set chunk by chunk (predict does).
    x_test = dataset.x_test.to(fast_loop.device) if config.loop == "device" else dataset.x_test
    diverged_at = None
    for epoch in epochs:
        if config.loop == "device":
            epoch_loss = float(fast_loop.epoch(optimizer, data_generator, mix_generator))  # one read per epoch
        elif config.loop == "loader":  # its mixing streams are seeded by the epoch: nothing carried over
            epoch_loss = float(fast_loop.epoch(optimizer, data_generator, epoch))
        else:
            epoch_loss = _host_epoch(step, optimizer, dataset, batch_size, data_generator, mix_generator)
        schedule.step()
        if epoch_loss == 0.0 and config.method == "local_mixup":  # the one method whose pairs can all weigh 0
            zero_loss_warning(config, epoch + 1)
        history["train_loss"].append(epoch_loss)
        if not math.isfinite(history["train_loss"][-1]):
            diverged_at = epoch + 1  # NaN stays NaN: the rest of the run is not worth training
            break
        if config.eval_every and classification and (epoch + 1) % config.eval_every == 0:
            logits = predict(model, x_test).cpu()
            if not all_finite(logits):
                diverged_at = epoch + 1
                break
            history["test_error_curve"].append(v.metrics.error_rate(logits, dataset.y_test, from_logits=True))
        if progress:
            epochs.set_postfix(loss=f"{history['train_loss'][-1]:.4f}")
        if checkpoint is not None and ((epoch + 1) % checkpoint_every == 0 or epoch + 1 == config.epochs):
            _save_checkpoint(checkpoint, config, epoch + 1, history, model, optimizer, schedule,
                             data_generator, mix_generator, augment_generator)

    # Evaluation runs where the model trained (predict moves each chunk there; outputs come back to the host),
    # so a GPU run is not evaluated at CPU speed; the returned / saved model is on the host.
    test_outputs = train_outputs = None
    if diverged_at is None:
        test_outputs = predict(model, dataset.x_test)
        train_outputs = predict(model, dataset.x_train) if classification else None
        if not all_finite(test_outputs) or (train_outputs is not None and not all_finite(train_outputs)):
            diverged_at = config.epochs
    if diverged_at is not None:
        results = diverged_metrics(config, history, diverged_at, batch_size, steps_per_epoch)
    else:
        results = evaluate_run(model, dataset, config, stats, test_outputs=test_outputs, train_outputs=train_outputs)
        results.update(history)
        # Wall time is not a metric: it differs between machines and executors, and the result store
        # records it beside each row.
        results.update(batch_size=batch_size, steps=steps_per_epoch * config.epochs)
    model.to("cpu", memory_format=torch.contiguous_format)
    return (results, model) if return_model else results


def diverged_metrics(config: RunConfig, history: dict, epoch: int, batch_size: int,
                     steps_per_epoch: int) -> dict[str, Any]:
    """The stored result of a run that diverged (an integration rule, no paper): a diverged run is a result.

    ``epoch`` (1-based) is the first epoch whose mean training loss, or whose test predictions, were not
    finite. The row holds ``diverged = True``, that epoch, the training losses up to it (the last one
    NaN or Inf) and the test-error curve before it, and no test metrics: reports count such runs apart
    instead of averaging NaN, and a rerun of the sweep skips them instead of training them again. The
    batched trainer gives the same row for the same config.
    """
    curve = history["test_error_curve"][: (epoch - 1) // config.eval_every] if config.eval_every else []
    logger.warning("run diverged at epoch %d (training loss %s): stored as diverged; method=%s lr=%g seed=%d",
                   epoch, history["train_loss"][epoch - 1] if len(history["train_loss"]) >= epoch else "finite",
                   config.method, config.lr, config.seed)
    return {"diverged": True, "diverged_epoch": epoch, "train_loss": list(history["train_loss"][:epoch]),
            "test_error_curve": list(curve), "batch_size": batch_size, "steps": steps_per_epoch * epoch}


def evaluate_run(model, dataset: Dataset, config: RunConfig, stats, *, test_outputs: torch.Tensor | None = None,
                 train_outputs: torch.Tensor | None = None) -> dict[str, Any]:
    """Plain (and rescaled, Carratino eq. 22) test metrics, plus the robustness curves the config asks for.

    With ``eval_corrupted``, also the CIFAR-10-C / 100-C averages of Carratino et al. 2020, Fig. 5-6,
    plain and rescaled (:func:`~vicinal.lab.corrupted_eval.run_corrupted_metrics`, where the model is).

    ``test_outputs`` / ``train_outputs``: the model's outputs on the test / training inputs when the
    caller has them already (the batched trainer computes all members' in stacked forwards).
    """
    outputs = predict(model, dataset.x_test) if test_outputs is None else test_outputs
    if dataset.num_classes is None:
        return regression_metrics(outputs, dataset.y_test)
    results = classification_metrics(outputs, dataset.y_test, n_bins=config.n_bins)
    train_outputs = predict(model, dataset.x_train) if train_outputs is None else train_outputs
    results["train_error"] = v.metrics.error_rate(train_outputs, dataset.y_train, from_logits=True)
    rescaled = None
    if rescaled_applies(config, dataset):  # its buffers (training means) go where the model is
        rescaled = RescaledPredictor(model, alpha=config.alpha, stats=stats).to(module_device(model))
        results.update(classification_metrics(predict(rescaled, dataset.x_test), dataset.y_test,
                                              n_bins=config.n_bins, prefix="rescaled_test_"))
    for std in config.noise_stds:
        results[f"noise_error@{std:g}"] = noisy_error(model, dataset.x_test, dataset.y_test, std=std,
                                                      seed=stream_seed(config.seed, "noise"))
    for eps in config.fgsm_eps:
        results[f"fgsm_error@{eps:g}"] = fgsm_error(model, dataset.x_test, dataset.y_test, eps=eps)
    if config.eval_corrupted:
        results.update(run_corrupted_metrics(model, config, rescaled))
    return results


def zero_loss_warning(config: RunConfig, epoch: int) -> None:
    """Warn that a Local Mixup run's mean training loss over epoch ``epoch`` is exactly 0 (an integration rule, no paper).

    Mixed soft targets keep the cross-entropy above 0, so an exact 0 means every pair weighed 0: a locality
    graph (eq. 2's W) that kept no pair, in every batch of the epoch. The run trains nothing from then on.
    """
    warnings.warn(f"epoch {epoch} of a {config.method} run had a mean training loss of exactly 0: no mixed pair "
                  f"carried weight (graph={config.graph!r}, eps={config.eps}, n_neighbors={config.n_neighbors}, "
                  f"decay={config.decay}); the model learns nothing. Use a relative graph (quantile, knn, or "
                  f"exponential with relative=true) or calibrate eps (vicinal.calibrate_eps)", v.NoPairsKeptWarning,
                  stacklevel=2)


def rescaled_applies(config: RunConfig, dataset: Dataset) -> bool:
    """Whether to report rescaled prediction (Carratino eq. 22): classification with ``eval_rescaled``.

    It undoes the shrinkage of mixup-style training; for ERM it is the paper's control (Fig. 4)."""
    return config.eval_rescaled and dataset.num_classes is not None


def _host_epoch(step, optimizer, dataset: Dataset, batch_size: int, data_generator, mix_generator) -> float:
    """One epoch of the host loop: a randperm, consecutive batches, the mean training loss."""
    order = torch.randperm(dataset.x_train.shape[0], generator=data_generator)
    steps_per_epoch = dataset.x_train.shape[0] // batch_size
    total = 0.0
    for b in range(steps_per_epoch):
        idx = order[b * batch_size:(b + 1) * batch_size]
        loss = step(dataset.x_train[idx], dataset.y_train[idx], mix_generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / max(steps_per_epoch, 1)


def _device_loop(config: RunConfig, step, dataset: Dataset, batch_size: int, augment_generator):
    """The :class:`~vicinal.lab.device_loop.DeviceLoop` of a ``loop = "device"`` run, else None.

    It draws the same permutations (CPU data generator) and mixer draws as the host loop, so without
    ``crop_flip`` and autocast (off on the CPU) it trains the same model to float rounding."""
    if config.loop != "device":
        return None
    from .device_loop import DeviceLoop

    _check_crop_flip(config, dataset)
    return DeviceLoop(step, dataset.x_train, dataset.y_train, batch_size=batch_size, device=config.device,
                      pad=4 if config.crop_flip else 0, flip=config.crop_flip, augment_generator=augment_generator,
                      channels_last=_channels_last(config, dataset))


def _loader_loop(config: RunConfig, step: _Step, dataset: Dataset, batch_size: int):
    """The :class:`~vicinal.lab.loader_loop.LoaderLoop` of a ``loop = "loader"`` run, else None.

    Its batch order is the host loop's; its mixing and crop / flip streams are seeded per epoch from the
    run's "mix" and "augment" streams (see that module for what is and is not equal to the host loop)."""
    if config.loop != "loader":
        return None
    from .loader_loop import LoaderLoop

    _check_crop_flip(config, dataset)
    return LoaderLoop(step.collated_loss, dataset.x_train, dataset.y_train, batch_size=batch_size, mixer=step.mixer,
                      mix_seed=stream_seed(config.seed, "mix"), device=config.device, workers=config.workers,
                      pad=4 if config.crop_flip else 0, flip=config.crop_flip,
                      augment_seed=stream_seed(config.seed, "augment") if config.crop_flip else None,
                      channels_last=_channels_last(config, dataset))


def _check_crop_flip(config: RunConfig, dataset: Dataset) -> None:
    if config.crop_flip and len(dataset.input_shape) != 3:
        raise ValueError(f"crop_flip crops and flips images (C, H, W), but dataset {config.dataset!r} has inputs of "
                         f"shape {tuple(dataset.input_shape)}; set crop_flip=false")


def _channels_last(config: RunConfig, dataset: Dataset) -> bool:
    """NHWC images on CUDA only: it is a tensor-core layout, and torch 2.13's CPU convolution backward
    crashes (segmentation fault) on NHWC PreAct ResNet-18 at 64x64 (tests/test_recipes.py, Tiny ImageNet)."""
    return len(dataset.input_shape) == 3 and config.device != "cpu"


def _save_checkpoint(path, config, epoch, history, model, optimizer, schedule, data_generator, mix_generator,
                     augment_generator=None):
    state = {
        "version": CHECKPOINT_VERSION, "config": config.to_dict(), "epoch": epoch, "history": history,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
        "data_generator": data_generator.get_state(), "mix_generator": mix_generator.get_state(),
    }
    if augment_generator is not None:
        state["augment_generator"] = augment_generator.get_state()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a kill leaves the old or the new checkpoint, never half of one


def _read_checkpoint(path: Path) -> dict | None:
    """The saved state, or None after moving a damaged file aside (the run then restarts from scratch).

    Checkpoints are written atomically, so a damaged one came from outside (a full disk, a copy cut
    short); failing on it would fail every rerun of the sweep, and its epochs are lost either way.
    """
    try:
        state = torch.load(path, weights_only=False)
        if not isinstance(state, dict):
            raise TypeError(f"holds a {type(state).__name__}, not a checkpoint dict")
        return state
    except Exception as error:  # torch.load raises EOFError, RuntimeError, UnpicklingError, ...
        aside = path.with_name(path.name + ".damaged")
        os.replace(path, aside)
        logger.warning("checkpoint %s is damaged (%s: %s); moved it to %s and restarting this run from epoch 0",
                       path, type(error).__name__, error, aside)
        return None


def _load_checkpoint(state, path, config, model, optimizer, schedule, data_generator, mix_generator,
                     augment_generator=None):
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"checkpoint {path} has version {state.get('version')}, expected {CHECKPOINT_VERSION}; delete it to restart")
    if state["config"] != config.to_dict():
        raise ValueError(f"checkpoint {path} was written for another configuration; delete it or pick another path")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    data_generator.set_state(state["data_generator"])
    mix_generator.set_state(state["mix_generator"])
    if augment_generator is not None:
        augment_generator.set_state(state["augment_generator"])
    return state["epoch"], state["history"]


def run(config: dict) -> dict[str, Any]:
    """Sweep entry point: ``run_fn(config_dict) -> metrics`` (picklable by reference)."""
    return train(config)


def run_checkpointed(config: dict, *, checkpoint_dir: str) -> dict[str, Any]:
    """Like :func:`run`, checkpointing every epoch to ``checkpoint_dir/<config key>.pt``.

    A sweep killed in the middle of a long run resumes that run from its last finished epoch (with
    the numbers of an uninterrupted run); the checkpoint is removed once the run is done.
    """
    from .store import config_key

    path = Path(checkpoint_dir) / f"{config_key(config)}.pt"
    results = train(config, checkpoint=path)
    path.unlink(missing_ok=True)  # the result store now holds the run
    return results


def run_and_save(config: dict, *, model_dir: str) -> dict[str, Any]:
    """Like :func:`run`, and save the trained weights to ``model_dir/<config key>.pt`` (for figures)."""
    results, model = train(config, return_model=True)
    save_model(model, config, model_dir)
    return results


def save_model(model: torch.nn.Module, config: dict, model_dir: str | os.PathLike) -> Path:
    """Write ``model``'s weights to ``model_dir/<config key>.pt`` atomically (where figures look for them)."""
    from .store import config_key

    path = Path(model_dir) / f"{config_key(config)}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return path
