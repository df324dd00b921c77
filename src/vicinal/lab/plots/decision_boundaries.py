"""Predicted class probabilities of several models over the plane of 2-D data (Local Mixup Fig. 1, k-Mixup Fig. 1)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

from .style import (
    _PathLike, _check_dpi, _check_int, _class_color, _class_labels, _figure, _float_array, _mapping, _png_path,
    _save, _scatter_classes, method_label,
)

__all__ = ["plot_decision_boundaries"]


def plot_decision_boundaries(
    x_train: np.ndarray,
    y_train: np.ndarray,
    predict_fns: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    path: _PathLike,
    *,
    test_errors: Mapping[str, float] | None = None,
    grid_size: int = 200,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot the predictions of several models on 2-D data, side by side on a shared grid.

    Reproduces Local Mixup (Baena et al., 2022) Fig. 1 and k-Mixup (Greenewald et al., 2023)
    Fig. 1: one panel per method showing the predicted class probabilities over the plane,
    with the training points overlaid. With two classes the background is P(class 1) on a
    diverging colour map with the 0.5 contour in black; with more classes it is the colour
    of the predicted class, faded to white where the model is unsure.

    Parameters
    ----------
    x_train : array of shape (n_samples, 2)
        Training inputs.
    y_train : array of shape (n_samples,)
        Integer class labels in ``0 .. n_classes - 1``.
    predict_fns : mapping of str to callable
        Method key to a function mapping a float32 array ``(N, 2)`` to class probabilities
        ``(N, n_classes)`` with values in [0, 1].
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    test_errors : mapping of str to float, optional
        Method key to test error in percent (0 to 100), shown in the panel title. If given,
        it needs an entry for every key of `predict_fns`.
    grid_size : int, default 200
        Number of grid points along each axis (at least 10).
    title : str, optional
        Figure title; by default "Decision boundaries".
    dpi : int, default 100
        Resolution; the PNG is ``(3.6 n_methods + 1.2) x (3.4 a + 1.4)`` inches times `dpi` pixels, with
        ``a`` the data's height/width ratio clipped to [0.4, 2] (1 for square data).

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If the inputs are empty or of mismatched shape, labels are not non-negative integers,
        a predict function returns the wrong shape or values outside [0, 1], a test error is
        missing or outside [0, 100], or `grid_size` < 10.
    TypeError
        If a predict function is not callable, `predict_fns` is not a mapping, or
        `grid_size` is not an int.
    """
    png = _png_path(path)
    points, labels = _labelled_points(x_train, y_train)
    fns = _mapping("predict_fns", predict_fns)
    errors = _test_errors(test_errors, fns)
    grid_size = _check_int("grid_size", grid_size)
    if grid_size < 10:
        raise ValueError(f"grid_size must be >= 10, got {grid_size}")
    n_classes = int(labels.max()) + 1
    grid_x, grid_y, grid_points = _plane_grid(points, grid_size)

    # Equal-aspect panels: size the figure to the data's height/width ratio so the titles and axis
    # labels keep their room (a fixed height clipped them on tall data such as the Swiss Roll).
    data_aspect = float(np.ptp(grid_y) / max(np.ptp(grid_x), 1e-12))
    panel_height = 3.4 * min(max(data_aspect, 0.4), 2.0)
    dpi = _check_dpi(dpi)
    fig = _figure(3.6 * len(fns) + 1.2, round((panel_height + 1.4) * dpi) / dpi, dpi)  # whole pixels
    axes = fig.subplots(1, len(fns), sharex=True, sharey=True, squeeze=False)[0]
    image = None
    for ax, (key, predict) in zip(axes, fns.items()):
        probabilities = _grid_probabilities(key, predict, grid_points, n_classes)
        image = _draw_prediction(ax, grid_x, grid_y, probabilities, n_classes)
        _scatter_classes(ax, points, labels, "class {}", s=12, edgecolors="black", linewidths=0.4)
        ax.set_title(_panel_title(key, errors))
        ax.set_xlabel("x₁")
        ax.set_aspect("equal")
    axes[0].set_ylabel("x₂")
    if n_classes == 2:
        fig.colorbar(image, ax=list(axes), label="P(class 1)", shrink=0.85)
    fig.suptitle(title or "Decision boundaries (training points overlaid)")
    return _save(fig, png)


def _labelled_points(x_train: object, y_train: object) -> tuple[np.ndarray, np.ndarray]:
    points = _float_array("x_train", x_train, ndim=2)
    if points.shape[1] != 2:
        raise ValueError(f"x_train must have shape (n_samples, 2), got {points.shape}")
    labels = _class_labels("y_train", y_train, "x_train", len(points))
    if len(np.unique(labels)) < 2:
        raise ValueError(f"y_train holds the single class {labels[0]}; expected at least two classes")
    return points, labels


def _test_errors(test_errors: Mapping[str, float] | None, fns: Mapping) -> dict[str, float]:
    if test_errors is None:
        return {}
    errors = _mapping("test_errors", test_errors)
    missing = [key for key in fns if key not in errors]
    if missing:
        raise ValueError(f"test_errors has no entry for method(s) {missing}; expected one per predict_fns key")
    for key, error in errors.items():
        if not 0.0 <= float(error) <= 100.0:
            raise ValueError(f"test_errors[{key!r}] must be a percentage in [0, 100], got {error}")
    return {key: float(error) for key, error in errors.items()}


def _plane_grid(points: np.ndarray, grid_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.1 * np.maximum(high - low, 1e-6)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], grid_size)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], grid_size)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid_points = np.column_stack([grid_x.ravel(), grid_y.ravel()]).astype(np.float32)
    return grid_x, grid_y, grid_points


def _grid_probabilities(key: str, predict: Callable, grid_points: np.ndarray, n_classes: int) -> np.ndarray:
    if not callable(predict):
        raise TypeError(f"predict_fns[{key!r}] must be callable, got {type(predict).__name__}")
    probabilities = np.asarray(predict(grid_points), dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[0] != len(grid_points) or probabilities.shape[1] < n_classes:
        raise ValueError(
            f"predict_fns[{key!r}] must return probabilities of shape ({len(grid_points)}, n_classes >= {n_classes}),"
            f" got {probabilities.shape}"
        )
    if not np.isfinite(probabilities).all() or probabilities.min() < -1e-6 or probabilities.max() > 1 + 1e-6:
        raise ValueError(
            f"predict_fns[{key!r}] must return probabilities in [0, 1], got values in"
            f" [{np.nanmin(probabilities):.3g}, {np.nanmax(probabilities):.3g}] (apply softmax to logits)"
        )
    return probabilities


def _draw_prediction(ax, grid_x: np.ndarray, grid_y: np.ndarray, probabilities: np.ndarray, n_classes: int):
    if n_classes == 2:
        p_one = probabilities[:, 1].reshape(grid_x.shape)
        image = ax.contourf(grid_x, grid_y, p_one, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
        ax.contour(grid_x, grid_y, p_one, levels=[0.5], colors="black", linewidths=1.2)
        return image
    rgb = _class_colour_image(probabilities).reshape(*grid_x.shape, 3)
    extent = (grid_x.min(), grid_x.max(), grid_y.min(), grid_y.max())
    return ax.imshow(rgb, origin="lower", extent=extent, aspect="auto", interpolation="bilinear")


def _class_colour_image(probabilities: np.ndarray) -> np.ndarray:
    n_classes = probabilities.shape[1]
    palette = np.array([mcolors.to_rgb(_class_color(c)) for c in range(n_classes)])
    predicted = probabilities.argmax(axis=1)
    certainty = (probabilities.max(axis=1) - 1 / n_classes) / (1 - 1 / n_classes)
    strength = 0.1 + 0.45 * np.clip(certainty, 0, 1)[:, np.newaxis]
    return strength * palette[predicted] + (1 - strength) * np.ones(3)


def _panel_title(key: str, errors: dict[str, float]) -> str:
    if key not in errors:
        return method_label(key)
    return f"{method_label(key)}\ntest error {errors[key]:.1f}%"
