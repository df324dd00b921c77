"""Test-time evaluation of a trained model: error, NLL, calibration, robustness.

Metrics of Carratino et al. 2020 (Sec. 5: error, NLL, ECE; Fig. 7: confidence of the predictions) and the robustness protocol of
Greenewald et al. 2023 (Tables 6-7: additive Gaussian noise, white-box FGSM).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from vicinal import metrics


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a module's first parameter (or buffer) lives; the CPU for a module with neither."""
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, *, batch_size: int = 2048) -> torch.Tensor:
    """Model outputs on ``x`` in eval mode, in chunks (no gradient), as float32 on the CPU.

    Each chunk is moved to the model's device first, so a model left on the GPU after a device-loop
    run is evaluated there (an integration step, no paper).
    """
    was_training = model.training
    model.eval()
    device = module_device(model)
    try:
        return torch.cat([model(chunk.to(device)).float().cpu() for chunk in x.split(batch_size)])
    finally:
        model.train(was_training)


def probability_fn(model: torch.nn.Module):
    """A numpy function (N, d) -> class probabilities (N, C) of ``model``, for decision-boundary plots."""
    def predict_proba(points):
        with torch.no_grad():
            return torch.softmax(model(torch.as_tensor(points, dtype=torch.float32)), dim=1).numpy()
    return predict_proba


#: The names :func:`classification_metrics` stores, without their prefix (run_metrics.py lists them before a run).
CLASSIFICATION_METRICS = ("error", "nll", "ece", "mce", "adaptive_ece", "mean_confidence", "confidence_histogram")


def classification_metrics(logits: torch.Tensor, y: torch.Tensor, *, n_bins: int, prefix: str = "test_") -> dict:
    """Error, NLL, ECE, MCE, adaptive ECE and confidence of logits against index labels, as a flat dict.

    Floats, but for ``confidence_histogram``: the counts of the top-class probability in ``n_bins``
    equal-width bins on [0, 1] (bins ``(lo, hi]``, :func:`vicinal.metrics.reliability_data`), a list of
    ints from which Carratino et al. 2020's Fig. 7 is drawn; ``mean_confidence`` is its mean.
    """
    return {
        f"{prefix}error": metrics.error_rate(logits, y, from_logits=True),
        f"{prefix}nll": metrics.nll(logits, y, from_logits=True),
        f"{prefix}ece": metrics.ece(logits, y, n_bins=n_bins, from_logits=True),
        f"{prefix}mce": metrics.mce(logits, y, n_bins=n_bins, from_logits=True),
        f"{prefix}adaptive_ece": metrics.adaptive_ece(logits, y, n_bins=n_bins, from_logits=True),
        f"{prefix}mean_confidence": metrics.mean_confidence(logits, from_logits=True),
        f"{prefix}confidence_histogram": [int(count) for count in
                                          metrics.reliability_data(logits, y, n_bins=n_bins, from_logits=True).counts],
    }


def regression_metrics(outputs: torch.Tensor, y: torch.Tensor, *, prefix: str = "test_") -> dict:
    """Mean squared error of regression outputs."""
    return {f"{prefix}mse": float(F.mse_loss(outputs.reshape(y.shape), y))}


def noisy_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, std: float, seed: int) -> float:
    """Error under additive Gaussian input noise of standard deviation ``std`` (Greenewald et al. 2023, Table 6)."""
    generator = torch.Generator().manual_seed(seed)
    noisy = x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    return metrics.error_rate(predict(model, noisy), y, from_logits=True)


def fgsm_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, batch_size: int = 2048) -> float:
    """Error under a white-box FGSM attack of size ``eps`` (Goodfellow et al. 2015; Greenewald et al. 2023, Table 7).

    Each input moves by ``eps * sign(grad_x CE(f(x), y))``; the attack uses the model in eval mode.
    """
    return _sign_attack_error(model, x, y, eps=eps, batch_size=batch_size,
                              objective=lambda logits, labels: F.cross_entropy(logits, labels))


def margin_fgsm_error(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
                      batch_size: int = 2048) -> float:
    """Error under a one-step attack on the logit margin (the loss of Carlini and Wagner 2017), no paper of this project.

    Each input moves by ``eps * sign(grad_x (max_{j != y} z_j - z_y))``. Unlike FGSM on the
    cross-entropy, whose gradient vanishes where softmax saturates on confident correct
    predictions, the margin gradient keeps its size, so confident models are not under-attacked
    (gradient masking). Same budget and sign step as :func:`fgsm_error`.
    """
    def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        true = logits.gather(1, labels[:, None]).squeeze(1)
        others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf")).amax(1)
        return (others - true).sum()

    return _sign_attack_error(model, x, y, eps=eps, batch_size=batch_size, objective=margin)


def _sign_attack_error(model, x, y, *, eps: float, batch_size: int, objective) -> float:
    """Error after one step of size ``eps`` along the sign of grad_x objective(model(x), y), in eval mode."""
    was_training = model.training
    model.eval()
    device = module_device(model)
    try:
        wrong = 0
        for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
            xb, yb = xb.to(device).clone().requires_grad_(True), yb.to(device)
            (grad,) = torch.autograd.grad(objective(model(xb), yb), xb)
            with torch.no_grad():
                wrong += int((model(xb + eps * grad.sign()).argmax(1) != yb).sum())
        return wrong / len(y)
    finally:
        model.train(was_training)
