"""The matching distribution of one point, coloured and sized by k-Mixup's matching weight (k-Mixup Fig. 3)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from .style import (
    _PathLike, _check_int, _class_labels, _figure, _float_array, _float_vector, _png_path, _save, _scatter_classes,
)

__all__ = ["plot_matching_distribution"]


def plot_matching_distribution(
    points: np.ndarray,
    weights: Sequence[float],
    anchor_index: int,
    path: _PathLike,
    *,
    labels: Sequence[int] | None = None,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot the matching distribution of one point: the data set coloured and sized by weight.

    Reproduces k-Mixup (Greenewald et al., 2023) Fig. 3: for a highlighted point ``i``, the
    weight ``D_i(j)`` with which each data point ``j`` is matched to it by k-Mixup's
    optimal-transport coupling. Points of zero weight are drawn small and grey, the others
    coloured and sized by weight, heaviest on top; the anchor is a red star.

    Parameters
    ----------
    points : array of shape (n_samples, 2)
        The data set.
    weights : sequence of float
        Non-negative weight per point, shape ``(n_samples,)``, with a positive total; need
        not sum to one.
    anchor_index : int
        Index of the highlighted point ``i``.
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    labels : sequence of int, optional
        Class label per point; if given, zero-weight points are tinted by class.
    title : str, optional
        Figure title; by default "Matching distribution of point <i>".
    dpi : int, default 100
        Resolution; the PNG is ``5.6 x 4.8`` inches times `dpi` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If shapes do not match, arrays are empty or not finite, a weight is negative, all
        weights are zero, a label is not a non-negative integer, or `anchor_index` is out of
        range.
    TypeError
        If `anchor_index` is not an integer.
    """
    png = _png_path(path)
    data = _float_array("points", points, ndim=2)
    if data.shape[1] != 2:
        raise ValueError(f"points must have shape (n_samples, 2), got {data.shape}")
    weight = _matching_weights(weights, len(data))
    anchor = _anchor(anchor_index, len(data))
    classes = None if labels is None else _class_labels("labels", labels, "points", len(data))

    fig = _figure(5.6, 4.8, dpi)
    ax = fig.add_subplot()
    _draw_background_points(ax, data[weight == 0], None if classes is None else classes[weight == 0])
    scatter = _draw_weighted_points(ax, data, weight)
    ax.scatter(*data[anchor], marker="*", s=320, color="#e41a1c", edgecolors="black", linewidths=0.8,
               label=f"point i = {anchor}", zorder=5)
    fig.colorbar(scatter, ax=ax, label="matching weight $D_i(j)$")
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="best")
    ax.set_title(title or f"Matching distribution of point {anchor}")
    return _save(fig, png)


def _draw_weighted_points(ax, data: np.ndarray, weight: np.ndarray):
    """Scatter the points of positive weight, coloured and sized by weight, heaviest drawn last."""
    order = np.argsort(weight)
    order = order[weight[order] > 0]
    sizes = 12 + 110 * weight[order] / weight.max()
    return ax.scatter(data[order, 0], data[order, 1], c=weight[order], s=sizes, cmap="plasma", vmin=0,
                      vmax=weight.max(), edgecolors="black", linewidths=0.3)


def _matching_weights(weights: object, n_points: int) -> np.ndarray:
    weight = _float_vector("weights", weights, "points", n_points)
    if (weight < 0).any():
        raise ValueError(f"weights must be non-negative, got {weight[weight < 0][0]}")
    if weight.sum() == 0:
        raise ValueError("weights are all zero; expected at least one positive weight")
    return weight


def _anchor(anchor_index: object, n_points: int) -> int:
    anchor = _check_int("anchor_index", anchor_index)
    if not 0 <= anchor < n_points:
        raise ValueError(f"anchor_index must be in [0, {n_points - 1}], got {anchor}")
    return anchor


def _draw_background_points(ax, data: np.ndarray, classes: np.ndarray | None) -> None:
    if len(data) == 0:
        return
    if classes is None:
        ax.scatter(data[:, 0], data[:, 1], s=6, color="#bdbdbd", linewidths=0, label="weight 0")
        return
    _scatter_classes(ax, data, classes, "class {}, weight 0", s=6, alpha=0.25, linewidths=0)
