"""Reliability diagrams with confidence histograms and the ECE of each model (Carratino et al. Fig. 9), and
confidence histograms alone (Carratino et al. Fig. 7)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .style import (
    _PathLike, _figure, _float_array, _float_vector, _mapping, _png_path, _save, method_colors, method_label,
)

__all__ = ["plot_reliability", "plot_confidence_histograms"]


_RELIABILITY_KEYS = ("bin_edges", "confidence", "accuracy", "counts")


def plot_reliability(
    models: Mapping[str, Mapping[str, Sequence[float]]],
    path: _PathLike,
    *,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot reliability diagrams with confidence histograms, one column per model.

    Reproduces the calibration figures of Carratino et al. (2020, Fig. 9): on top, the
    accuracy of each confidence bin as a bar against the diagonal of perfect calibration,
    with the gap to the bin's mean confidence hatched (drawn over any method colour); below,
    the fraction of test samples per bin. The panel title gives the expected calibration error
    ``ECE = sum_b counts_b / n * |accuracy_b - confidence_b|``.

    Parameters
    ----------
    models : mapping of str to mapping
        Method key to a dict with ``"bin_edges"`` (``n_bins + 1`` increasing values in [0, 1]),
        and ``"confidence"`` (mean confidence per bin), ``"accuracy"`` (accuracy per bin, as a
        fraction in [0, 1]) and ``"counts"`` (samples per bin), each of length ``n_bins``.
        Confidence and accuracy may be NaN in bins with zero count.
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    title : str, optional
        Figure title; by default "Reliability diagrams".
    dpi : int, default 100
        Resolution; the PNG is ``(3.4 n_models + 0.6) x 5.2`` inches times `dpi` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If a key is missing, lengths do not match, edges are not increasing in [0, 1],
        counts are negative or all zero, values leave [0, 1], or a non-empty bin has NaN.
    TypeError
        If `models` or an entry is not a mapping.
    """
    png = _png_path(path)
    diagrams = {key: _reliability_data(key, data) for key, data in _mapping("models", models).items()}
    colors = method_colors(list(diagrams))

    fig = _figure(3.4 * len(diagrams) + 0.6, 5.2, dpi)
    axes = fig.subplots(2, len(diagrams), sharex=True, sharey="row", squeeze=False,
                        gridspec_kw={"height_ratios": [3, 1]})
    for column, (key, data) in enumerate(diagrams.items()):
        _draw_reliability(axes[0, column], data, colors[key])
        axes[0, column].set_title(f"{method_label(key)}\nECE {100 * _ece(data):.1f}%")
        _draw_confidence_histogram(axes[1, column], data, colors[key])
        axes[1, column].set_xlabel("confidence")
    axes[0, 0].set_ylabel("accuracy")
    axes[1, 0].set_ylabel("fraction of\nsamples")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title or "Reliability diagrams (bars: accuracy per confidence bin)")
    return _save(fig, png)


def plot_confidence_histograms(
    histograms: Mapping[str, Sequence[float]],
    path: _PathLike,
    *,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot the histogram of the confidence of test predictions of each model, one panel each.

    Reproduces Carratino et al. (2020, Fig. 7): the fraction of test samples whose top-class
    probability falls in each of ``n_bins`` equal-width bins on [0, 1] (bins ``(lo, hi]``, as in
    :func:`vicinal.metrics.reliability_data`), for ERM, label smoothing, Mixup and approximate Mixup.

    Parameters
    ----------
    histograms : mapping of str to sequence of float
        Panel label (a method key or any name) to the sample counts per bin (e.g. the stored
        ``test_confidence_histogram``, or its sum over seeds); every entry has the same number of bins.
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    title : str, optional
        Figure title; by default "Confidence of the test predictions".
    dpi : int, default 100
        Resolution; the PNG is ``(2.8 n_models + 0.6) x 2.8`` inches times `dpi` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If the entries have different numbers of bins, a count is negative or NaN, or all of an entry's counts are 0.
    TypeError
        If `histograms` is not a mapping.
    """
    png = _png_path(path)
    histograms = _mapping("histograms", histograms)
    first = next(iter(histograms))
    n_bins = len(_float_array(f"histograms[{first!r}]", histograms[first], ndim=1))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    data = {}
    for key, counts in histograms.items():
        counts = _float_vector(f"histograms[{key!r}]", counts, f"histograms[{first!r}]", n_bins)
        if (counts < 0).any() or counts.sum() == 0:
            raise ValueError(f"histograms[{key!r}] must be counts >= 0 with a positive total, got {counts}")
        data[key] = {"bin_edges": edges, "counts": counts}
    colors = method_colors(list(data))
    fig = _figure(2.8 * len(data) + 0.6, 2.8, dpi)
    axes = fig.subplots(1, len(data), sharey=True, squeeze=False)[0]
    for ax, (key, panel) in zip(axes, data.items()):
        _draw_confidence_histogram(ax, panel, colors[key])
        ax.set_title(method_label(key), fontsize=10)
        ax.set_xlabel("confidence")
    axes[0].set_ylabel("fraction of samples")
    fig.suptitle(title or "Confidence of the test predictions")
    return _save(fig, png)


def _reliability_data(key: str, data: object) -> dict[str, np.ndarray]:
    if not isinstance(data, Mapping):
        raise TypeError(f"models[{key!r}] must be a mapping with keys {_RELIABILITY_KEYS}, got {type(data).__name__}")
    missing = [name for name in _RELIABILITY_KEYS if name not in data]
    if missing:
        raise ValueError(f"models[{key!r}] lacks key(s) {missing}; expected {_RELIABILITY_KEYS}")
    edges = _float_array(f"models[{key!r}]['bin_edges']", data["bin_edges"], ndim=1)
    if len(edges) < 2 or (np.diff(edges) <= 0).any() or edges[0] < 0 or edges[-1] > 1:
        raise ValueError(f"models[{key!r}]['bin_edges'] must be >= 2 increasing values in [0, 1], got {edges}")
    counts = _float_vector(f"models[{key!r}]['counts']", data["counts"], "bin_edges minus one", len(edges) - 1)
    if (counts < 0).any() or counts.sum() == 0:
        raise ValueError(f"models[{key!r}]['counts'] must be >= 0 with a positive total, got {counts}")
    binned = {"bin_edges": edges, "counts": counts}
    for name in ("confidence", "accuracy"):
        binned[name] = _bin_fractions(f"models[{key!r}][{name!r}]", data[name], counts)
    return binned


def _bin_fractions(name: str, values: object, counts: np.ndarray) -> np.ndarray:
    fractions = _float_vector(name, values, "counts", len(counts), allow_nan=True)
    if np.isnan(fractions[counts > 0]).any():
        raise ValueError(f"{name} is NaN in a bin with samples; NaN is only allowed where counts == 0")
    finite = fractions[~np.isnan(fractions)]
    if (finite < 0).any() or (finite > 1).any():
        raise ValueError(f"{name} must be fractions in [0, 1], got values in [{finite.min()}, {finite.max()}]")
    return fractions


def _ece(data: dict[str, np.ndarray]) -> float:
    filled = data["counts"] > 0
    weights = data["counts"][filled] / data["counts"].sum()
    return float(np.sum(weights * np.abs(data["accuracy"][filled] - data["confidence"][filled])))


def _draw_reliability(ax, data: dict[str, np.ndarray], color: str) -> None:
    edges, filled = data["bin_edges"], data["counts"] > 0
    left, widths = edges[:-1][filled], np.diff(edges)[filled]
    accuracy, confidence = data["accuracy"][filled], data["confidence"][filled]
    ax.bar(left, accuracy, width=widths, align="edge", color=color, alpha=0.85, edgecolor="black",
           linewidth=0.6, label="accuracy")
    ax.bar(left, confidence - accuracy, bottom=accuracy, width=widths, align="edge", facecolor=(1, 1, 1, 0.45),
           edgecolor="black", hatch="///", linewidth=0.6, label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="black", linewidth=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal", adjustable="box")
    ax.grid(True, alpha=0.3)


def _draw_confidence_histogram(ax, data: dict[str, np.ndarray], color: str) -> None:
    edges = data["bin_edges"]
    ax.bar(edges[:-1], data["counts"] / data["counts"].sum(), width=np.diff(edges), align="edge", color=color,
           alpha=0.85, edgecolor="black", linewidth=0.6)
    ax.set_xlim(0, 1)
    ax.grid(True, alpha=0.3)
