"""Figures for mixup experiments, in the style of the Local Mixup, k-Mixup and Carratino papers.

Every function takes plain data (numpy arrays, lists, dicts), writes one PNG file and
returns the :class:`matplotlib.figure.Figure`. Figures are built with
:class:`~matplotlib.figure.Figure` directly, not with ``pyplot``, so no window opens and no
figure is kept alive by a global registry.

Conventions
-----------
* Repeated runs are passed as *samples* arrays of shape ``(n_seeds, n_points)``: one row per
  seed. Lines show the mean over seeds, bands the 95% confidence interval of the mean
  (Student t). A single seed (``n_seeds == 1``) has no spread estimate and gets no band.
* Methods are identified by keys (``"erm"``, ``"mixup"``, ``"local_mixup"``, ``"kmixup"``,
  ``"rescaled"``, ``"approx_mixup"``, ``"modified_data"``). Each known key has a fixed colour
  and display name in every figure; unknown keys are shown under their own name with
  further colours (see :func:`method_colors`).
"""

from __future__ import annotations

import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path

import matplotlib

if "matplotlib.pyplot" not in sys.modules:
    # Never open a window; a backend the user already chose through pyplot is kept.
    matplotlib.use("Agg")

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullFormatter
from scipy import stats

__all__ = [
    "METHOD_COLORS",
    "METHOD_LABELS",
    "method_label",
    "method_colors",
    "plot_metric_vs_param",
    "plot_heatmap",
    "plot_decision_boundaries",
    "plot_reliability",
    "plot_curves",
    "plot_series",
    "plot_matching_distribution",
]

METHOD_COLORS: dict[str, str] = {
    "erm": "#4d4d4d",
    "mixup": "#1f77b4",
    "local_mixup": "#ff7f0e",
    "kmixup": "#2ca02c",
    "rescaled": "#d62728",
    "approx_mixup": "#9467bd",
    "modified_data": "#8c564b",
}

METHOD_LABELS: dict[str, str] = {
    "erm": "ERM",
    "mixup": "Mixup",
    "local_mixup": "Local Mixup",
    "kmixup": "k-Mixup",
    "rescaled": "Rescaled Mixup",
    "approx_mixup": "Approx. Mixup",
    "modified_data": "ERM on modified data",
}

# Colours for method keys not in METHOD_COLORS, none of them used by a known method.
_EXTRA_COLORS = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#e7ba52")

_CLASS_COLORS = ("#2166ac", "#b2182b", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d")

_PathLike = str | PathLike

_MAX_LABELLED_TICKS = 12  # a log x-axis with at most this many distinct values labels each of them


# --------------------------------------------------------------------------------------
# Method colours and names
# --------------------------------------------------------------------------------------


def method_label(key: str) -> str:
    """Return the display name of a method key.

    Parameters
    ----------
    key : str
        Method key, e.g. ``"local_mixup"``.

    Returns
    -------
    str
        ``METHOD_LABELS[key]`` for a known key (``"Local Mixup"``), the key itself otherwise.

    Raises
    ------
    TypeError
        If `key` is not a string.
    """
    _check_method_key(key)
    return METHOD_LABELS.get(key, key)


def method_colors(keys: Sequence[str]) -> dict[str, str]:
    """Assign a colour to each method key, the same one in every figure.

    Known keys get their colour from :data:`METHOD_COLORS`. An unknown key gets a colour
    from a further palette, chosen from a hash of its name so that it does not depend on
    which other methods share the figure; if two unknown keys in one figure hash to the
    same colour the later one takes the next free colour.

    Parameters
    ----------
    keys : sequence of str
        Method keys shown in one figure.

    Returns
    -------
    dict of str to str
        Hex colour per key.

    Raises
    ------
    TypeError
        If a key is not a string.
    """
    colors: dict[str, str] = {}
    for key in keys:
        _check_method_key(key)
        if key in METHOD_COLORS:
            colors[key] = METHOD_COLORS[key]
    for key in keys:
        if key not in colors:
            colors[key] = _free_extra_color(key, set(colors.values()))
    return colors


def _check_method_key(key: object) -> None:
    if not isinstance(key, str):
        raise TypeError(f"method key must be a str, got {key!r} of type {type(key).__name__}")


def _free_extra_color(key: str, taken: set[str]) -> str:
    start = zlib.crc32(key.encode("utf-8"))
    for offset in range(len(_EXTRA_COLORS)):
        color = _EXTRA_COLORS[(start + offset) % len(_EXTRA_COLORS)]
        if color not in taken:
            return color
    return _EXTRA_COLORS[start % len(_EXTRA_COLORS)]  # more methods than colours: reuse


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------


def _png_path(path: _PathLike) -> Path:
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    png = Path(path)
    if png.suffix.lower() != ".png":
        raise ValueError(f"path must end in '.png', got {str(png)!r}")
    return png


def _mapping(name: str, value: object) -> Mapping:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping (e.g. dict), got {type(value).__name__}")
    if len(value) == 0:
        raise ValueError(f"{name} is empty; expected at least one entry")
    return value


def _float_array(name: str, values: object, ndim: int, allow_nan: bool = False) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numeric array-like, got {type(values).__name__}") from error
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}); expected at least one value")
    bad = np.isinf(array) if allow_nan else ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} must be finite, got {array[bad][0]} at index {np.argwhere(bad)[0].tolist()}")
    return array


def _samples(name: str, values: object, n_points: int) -> np.ndarray:
    array = _float_array(name, values, ndim=2)
    if array.shape[1] != n_points:
        raise ValueError(
            f"{name} must have shape (n_seeds, {n_points}) to match the x values, got {array.shape}"
            " (use values[np.newaxis] for a single seed)"
        )
    return array


def _same_length(name: str, array: np.ndarray, other_name: str, length: int) -> None:
    if len(array) != length:
        raise ValueError(f"{name} has length {len(array)} but {other_name} has length {length}")


def _positive_for_log(name: str, values: np.ndarray) -> None:
    if (values <= 0).any():
        raise ValueError(
            f"{name} must be > 0 on a log axis, got {values[values <= 0][0]}; use a linear axis instead"
        )


def _mean_ci95(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and half-width of its 95% Student-t confidence interval."""
    n_seeds = samples.shape[0]
    mean = samples.mean(axis=0)
    if n_seeds == 1:
        return mean, np.zeros_like(mean)
    sem = samples.std(axis=0, ddof=1) / np.sqrt(n_seeds)
    return mean, stats.t.ppf(0.975, df=n_seeds - 1) * sem


def _check_dpi(dpi: object) -> int:
    if isinstance(dpi, bool) or not isinstance(dpi, (int, np.integer)):
        raise TypeError(f"dpi must be an int, got {dpi!r} of type {type(dpi).__name__}")
    if dpi <= 0:
        raise ValueError(f"dpi must be a positive int, got {dpi}")
    return int(dpi)


def _figure(width: float, height: float, dpi: int) -> Figure:
    return Figure(figsize=(width, height), dpi=_check_dpi(dpi), layout="constrained")


def _save(fig: Figure, png: Path) -> Figure:
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, format="png", dpi=fig.dpi)
    return fig


# --------------------------------------------------------------------------------------
# Metric against a hyper-parameter (Local Mixup Fig. 3)
# --------------------------------------------------------------------------------------


def plot_metric_vs_param(
    param_values: Sequence[float],
    samples: Mapping[str, np.ndarray],
    path: _PathLike,
    *,
    param_name: str = "eps",
    metric_name: str = "test error (%)",
    references: Mapping[str, Sequence[float]] | None = None,
    log_x: bool = False,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot a metric against a hyper-parameter, one line per method with a 95% CI band.

    Reproduces the style of Local Mixup (Baena et al., 2022) Fig. 3: test error as a
    function of the locality threshold ``eps``, with the methods that do not depend on the
    parameter (ERM, Mixup) as horizontal reference lines.

    Parameters
    ----------
    param_values : sequence of float
        Hyper-parameter values on the x-axis, shape ``(n_params,)``.
    samples : mapping of str to array
        Method key to metric values of shape ``(n_seeds, n_params)``.
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    param_name : str, default "eps"
        x-axis label (include the unit if it has one).
    metric_name : str, default "test error (%)"
        y-axis label, with its unit.
    references : mapping of str to sequence of float, optional
        Method key to per-seed metric values ``(n_seeds,)`` drawn as a dashed horizontal line
        at their mean with a shaded 95% CI band.
    log_x : bool, default False
        Use a logarithmic x-axis; then every parameter value must be > 0.
    title : str, optional
        Figure title; by default "<metric> vs <param>".
    dpi : int, default 100
        Resolution; the PNG is ``6.4 x 4.4`` inches times `dpi` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If arrays are empty, non-finite or of mismatched shape, or if `log_x` is set and a
        parameter value is not positive.
    TypeError
        If `samples` or `references` is not a mapping, or `path` is not a path.
    """
    png = _png_path(path)
    x = _float_array("param_values", param_values, ndim=1)
    lines = {key: _samples(f"samples[{key!r}]", values, len(x))
             for key, values in _mapping("samples", samples).items()}
    refs = {} if references is None else _mapping("references", references)
    ref_values = {key: _float_array(f"references[{key!r}]", values, ndim=1) for key, values in refs.items()}
    if log_x:
        _positive_for_log("param_values", x)
    colors = method_colors([*ref_values, *lines])

    fig = _figure(6.4, 4.4, dpi)
    ax = fig.add_subplot()
    for key, values in ref_values.items():
        _draw_reference(ax, values, colors[key], method_label(key))
    for key, values in lines.items():
        _draw_mean_band(ax, x, values, colors[key], method_label(key), marker="o")
    if log_x:
        _log_x_axis(ax, x)
    ax.set_xlabel(param_name)
    ax.set_ylabel(metric_name)
    ax.set_title(title or f"{_capitalise(metric_name)} vs {param_name}\n(mean over seeds, 95% CI)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", frameon=True)
    return _save(fig, png)


def _draw_reference(ax, values: np.ndarray, color: str, label: str) -> None:
    mean, half_width = _mean_ci95(values[:, np.newaxis])
    ax.axhline(mean[0], color=color, linestyle="--", linewidth=1.5, label=f"{label} (reference)")
    if half_width[0] > 0:
        ax.axhspan(mean[0] - half_width[0], mean[0] + half_width[0], color=color, alpha=0.12, linewidth=0)


def _draw_mean_band(ax, x: np.ndarray, samples: np.ndarray, color: str, label: str, marker: str | None) -> None:
    mean, half_width = _mean_ci95(samples)
    ax.plot(x, mean, color=color, label=label, marker=marker, markersize=4, linewidth=1.8)
    if samples.shape[0] > 1:
        ax.fill_between(x, mean - half_width, mean + half_width, color=color, alpha=0.2, linewidth=0)


def _log_x_axis(ax, x: np.ndarray) -> None:
    """Log x-axis; with few distinct x values, label exactly those values in plain numbers."""
    ax.set_xscale("log")
    distinct = np.unique(x)
    if len(distinct) <= _MAX_LABELLED_TICKS:
        ax.set_xticks(distinct, [f"{value:g}" for value in distinct])
        ax.xaxis.set_minor_formatter(NullFormatter())


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------------------
# k x alpha grid (k-Mixup Tables 2 and 9)
# --------------------------------------------------------------------------------------


def plot_heatmap(
    k_values: Sequence[int],
    alpha_values: Sequence[float],
    means: np.ndarray,
    path: _PathLike,
    *,
    ci_half_widths: np.ndarray | None = None,
    metric_name: str = "test error (%)",
    lower_is_better: bool = True,
    decimals: int = 2,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot a k x alpha grid of mean values with the numbers written in the cells.

    Reproduces k-Mixup (Greenewald et al., 2023) Tables 2 and 9 as a heatmap: rows are the
    k-Mixup block size ``k``, columns the Beta parameter ``alpha``. The best cell is
    outlined and its number set in bold.

    Parameters
    ----------
    k_values : sequence of int
        Block sizes, one per row, shape ``(n_k,)``.
    alpha_values : sequence of float
        Beta parameters, one per column, shape ``(n_alpha,)``.
    means : array of shape (n_k, n_alpha)
        Mean metric per cell. NaN marks a cell that was not run; it is drawn grey with "n/a".
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    ci_half_widths : array of shape (n_k, n_alpha), optional
        Half-widths of the 95% CIs, written under the means as "±0.02".
    metric_name : str, default "test error (%)"
        Colour bar label, with its unit.
    lower_is_better : bool, default True
        Which end of the scale is best: picks the best cell, and maps it to the dark end of
        the colour map.
    decimals : int, default 2
        Digits after the decimal point in the cell texts (k-Mixup's tables use 2).
    title : str, optional
        Figure title; by default "<metric> over k and alpha".
    dpi : int, default 100
        Resolution; the PNG is ``(1.1 n_alpha + 2.4) x (0.55 n_k + 1.7)`` inches times `dpi`
        pixels, at least ``4.8 x 3.2`` inches.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If the grid shape does not match ``(len(k_values), len(alpha_values))``, every cell
        is NaN, a value is infinite, a CI half-width is negative or missing where a mean is
        given, or `decimals` is negative.
    TypeError
        If `path` is not a path, an array is not numeric, or `decimals` is not an int.
    """
    png = _png_path(path)
    ks = _float_array("k_values", k_values, ndim=1)
    alphas = _float_array("alpha_values", alpha_values, ndim=1)
    grid = _grid("means", means, (len(ks), len(alphas)))
    if np.isnan(grid).all():
        raise ValueError("means has no finite value; expected at least one cell that was run")
    half_widths = None if ci_half_widths is None else _grid_half_widths(ci_half_widths, grid)
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"decimals must be an int, got {decimals!r} of type {type(decimals).__name__}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")

    width = max(4.8, 1.1 * len(alphas) + 2.4)
    height = max(3.2, 0.55 * len(ks) + 1.7)
    fig = _figure(width, height, dpi)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["viridis" if lower_is_better else "viridis_r"].with_extremes(bad="#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    low, high = np.nanmin(grid), np.nanmax(grid)
    if low == high:  # one value everywhere (e.g. 0 % error): matplotlib would centre a range on it, below 0
        image.set_clim(low, low + (abs(low) or 1.0))
    _write_cell_texts(ax, grid, half_widths, image, lower_is_better, decimals)
    ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_yticks(range(len(ks)), [f"{k:g}" for k in ks])
    ax.set_xlabel("α (Beta parameter)")
    ax.set_ylabel("k (k-Mixup block size)")
    ax.set_title(title or f"{_capitalise(metric_name)} over k and α (best outlined)")
    fig.colorbar(image, ax=ax, label=metric_name)
    return _save(fig, png)


def _grid(name: str, values: object, shape: tuple[int, int]) -> np.ndarray:
    grid = _float_array(name, values, ndim=2, allow_nan=True)
    if grid.shape != shape:
        raise ValueError(f"{name} must have shape (len(k_values), len(alpha_values)) = {shape}, got {grid.shape}")
    return grid


def _grid_half_widths(ci_half_widths: object, grid: np.ndarray) -> np.ndarray:
    half_widths = _grid("ci_half_widths", ci_half_widths, grid.shape)
    run = ~np.isnan(grid)
    if np.isnan(half_widths[run]).any() or (half_widths[run] < 0).any():
        bad = half_widths[run][np.isnan(half_widths[run]) | (half_widths[run] < 0)][0]
        raise ValueError(f"ci_half_widths must be >= 0 in every cell with a mean, got {bad}")
    return half_widths


def _write_cell_texts(ax, grid: np.ndarray, half_widths: np.ndarray | None, image, lower_is_better: bool,
                      decimals: int) -> None:
    best = np.nanargmin(grid) if lower_is_better else np.nanargmax(grid)
    best_row, best_col = np.unravel_index(best, grid.shape)
    for row, col in np.ndindex(grid.shape):
        value = grid[row, col]
        if np.isnan(value):
            ax.text(col, row, "n/a", ha="center", va="center", color="#555555", fontsize=9)
            continue
        text = f"{value:.{decimals}f}"
        if half_widths is not None:
            text += f"\n±{half_widths[row, col]:.{decimals}f}"
        is_best = (row, col) == (best_row, best_col)
        ax.text(col, row, text, ha="center", va="center", fontsize=9, linespacing=1.1,
                color=_text_color_on(image.cmap(image.norm(value))), fontweight="bold" if is_best else "normal")
    ax.add_patch(Rectangle((best_col - 0.5, best_row - 0.5), 1, 1, fill=False, edgecolor="#e41a1c", linewidth=2.5))


def _text_color_on(rgba: tuple[float, float, float, float]) -> str:
    red, green, blue = rgba[:3]
    luminance = 0.299 * red + 0.587 * green + 0.114 * blue
    return "black" if luminance > 0.5 else "white"


# --------------------------------------------------------------------------------------
# Decision boundaries on 2-D data (Local Mixup Fig. 1, k-Mixup Fig. 1)
# --------------------------------------------------------------------------------------


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
    if isinstance(grid_size, bool) or not isinstance(grid_size, (int, np.integer)):
        raise TypeError(f"grid_size must be an int, got {grid_size!r} of type {type(grid_size).__name__}")
    if grid_size < 10:
        raise ValueError(f"grid_size must be >= 10, got {grid_size}")
    n_classes = int(labels.max()) + 1
    grid_x, grid_y, grid_points = _plane_grid(points, int(grid_size))

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
        _draw_labelled_points(ax, points, labels)
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


def _class_labels(name: str, values: object, points_name: str, n_points: int) -> np.ndarray:
    labels = _float_array(name, values, ndim=1)
    _same_length(name, labels, points_name, n_points)
    not_class = (labels < 0) | (labels != np.round(labels))
    if not_class.any():
        raise ValueError(f"{name} must hold non-negative integer class labels, got {labels[not_class][0]}")
    return labels.astype(int)


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


def _class_color(label: int) -> str:
    return _CLASS_COLORS[label % len(_CLASS_COLORS)]


def _draw_labelled_points(ax, points: np.ndarray, labels: np.ndarray) -> None:
    for label in np.unique(labels):
        chosen = points[labels == label]
        ax.scatter(chosen[:, 0], chosen[:, 1], s=12, color=_class_color(int(label)), edgecolors="black",
                   linewidths=0.4, label=f"class {label}")


def _panel_title(key: str, errors: dict[str, float]) -> str:
    if key not in errors:
        return method_label(key)
    return f"{method_label(key)}\ntest error {errors[key]:.1f}%"


# --------------------------------------------------------------------------------------
# Reliability diagrams (Carratino et al. Fig. 9)
# --------------------------------------------------------------------------------------

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


def _reliability_data(key: str, data: object) -> dict[str, np.ndarray]:
    if not isinstance(data, Mapping):
        raise TypeError(f"models[{key!r}] must be a mapping with keys {_RELIABILITY_KEYS}, got {type(data).__name__}")
    missing = [name for name in _RELIABILITY_KEYS if name not in data]
    if missing:
        raise ValueError(f"models[{key!r}] lacks key(s) {missing}; expected {_RELIABILITY_KEYS}")
    edges = _float_array(f"models[{key!r}]['bin_edges']", data["bin_edges"], ndim=1)
    if len(edges) < 2 or (np.diff(edges) <= 0).any() or edges[0] < 0 or edges[-1] > 1:
        raise ValueError(f"models[{key!r}]['bin_edges'] must be >= 2 increasing values in [0, 1], got {edges}")
    counts = _float_array(f"models[{key!r}]['counts']", data["counts"], ndim=1)
    _same_length(f"models[{key!r}]['counts']", counts, "bin_edges minus one", len(edges) - 1)
    if (counts < 0).any() or counts.sum() == 0:
        raise ValueError(f"models[{key!r}]['counts'] must be >= 0 with a positive total, got {counts}")
    binned = {"bin_edges": edges, "counts": counts}
    for name in ("confidence", "accuracy"):
        binned[name] = _bin_fractions(f"models[{key!r}][{name!r}]", data[name], counts)
    return binned


def _bin_fractions(name: str, values: object, counts: np.ndarray) -> np.ndarray:
    fractions = _float_array(name, values, ndim=1, allow_nan=True)
    _same_length(name, fractions, "counts", len(counts))
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


# --------------------------------------------------------------------------------------
# Training curves (k-Mixup Fig. 6)
# --------------------------------------------------------------------------------------


def plot_curves(
    curves: Mapping[str, Mapping[str, np.ndarray]],
    path: _PathLike,
    *,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot per-epoch training curves, mean over seeds with a 95% CI band.

    Reproduces k-Mixup (Greenewald et al., 2023) Fig. 6 (train/test accuracy of k = 1 and
    k = 32 over epochs): one panel per quantity (e.g. "train loss", "train accuracy (%)"),
    one line per method, epochs numbered from 1.

    Parameters
    ----------
    curves : mapping of str to mapping of str to array
        Panel name (the y-axis label, with its unit) to a mapping from method key to values
        of shape ``(n_seeds, n_epochs)``. Methods may differ in ``n_seeds`` and ``n_epochs``.
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    title : str, optional
        Figure title; by default "Training curves".
    dpi : int, default 100
        Resolution; the PNG is ``(4.6 n_panels + 0.4) x 4.0`` inches times `dpi` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If a panel or a curve is empty, not 2-D or not finite.
    TypeError
        If `curves` or a panel is not a mapping.
    """
    png = _png_path(path)
    panels = {name: _panel_curves(name, methods) for name, methods in _mapping("curves", curves).items()}
    colors = method_colors(list(dict.fromkeys(key for methods in panels.values() for key in methods)))

    fig = _figure(4.6 * len(panels) + 0.4, 4.0, dpi)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, methods) in zip(axes, panels.items()):
        for key, samples in methods.items():
            epochs = np.arange(1, samples.shape[1] + 1)
            _draw_mean_band(ax, epochs, samples, colors[key], method_label(key), marker=None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(_capitalise(name))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    fig.suptitle(title or "Training curves (mean over seeds, 95% CI)")
    return _save(fig, png)


def _panel_curves(name: str, methods: object) -> dict[str, np.ndarray]:
    panel = _mapping(f"curves[{name!r}]", methods)
    return {key: _float_array(f"curves[{name!r}][{key!r}]", values, ndim=2) for key, values in panel.items()}


# --------------------------------------------------------------------------------------
# Generic series for theory figures
# --------------------------------------------------------------------------------------


def plot_series(
    x: Sequence[float],
    ys: Mapping[str, Sequence[float]],
    path: _PathLike,
    *,
    x_label: str,
    y_label: str,
    errors: Mapping[str, Sequence[float]] | None = None,
    power_law_fit: Sequence[str] = (),
    log_x: bool = False,
    log_y: bool = False,
    title: str | None = None,
    dpi: int = 100,
) -> Figure:
    """Plot several y series against a shared x, for theory and robustness figures.

    Meant for figures such as Local Mixup (Baena et al., 2022) Fig. 4 (a quantity against
    ``eps``), k-Mixup's cross-cluster matching fraction against ``k`` with a fitted log-log
    slope, bias and variance against K, or robustness error against noise std / FGSM size
    (Carratino et al., 2020, Fig. 8). Method keys get their usual colour and name; any
    other key (e.g. "bias") is shown as written.

    Parameters
    ----------
    x : sequence of float
        Shared x values, shape ``(n_points,)``.
    ys : mapping of str to sequence of float
        Series name to y values of shape ``(n_points,)``.
    path : str or os.PathLike
        Output ``.png`` file; missing parent directories are created.
    x_label, y_label : str
        Axis labels, with units.
    errors : mapping of str to sequence of float, optional
        Series name to non-negative half-widths ``(n_points,)`` drawn as a band ``y ± error``.
    power_law_fit : sequence of str, default ()
        Series to fit with a power law ``y = c x^slope`` by least squares in log-log space;
        the fit is drawn dashed and its slope written in the legend. Needs x > 0 and y > 0.
    log_x, log_y : bool, default False
        Logarithmic axes; then the values on that axis must be > 0.
    title : str, optional
        Figure title; by default "<y_label> vs <x_label>".
    dpi : int, default 100
        Resolution; the PNG is ``6.4 x 4.4`` inches times `dpi` pixels.

    Returns
    -------
    matplotlib.figure.Figure
        The saved figure.

    Raises
    ------
    ValueError
        If lengths do not match, arrays are empty or not finite, an error is negative, a
        name in `errors` or `power_law_fit` is not a series, fewer than two points are
        fitted, or a value is not positive where a log axis or fit needs it.
    TypeError
        If `ys` or `errors` is not a mapping, or `power_law_fit` is a single string.
    """
    png = _png_path(path)
    xs = _float_array("x", x, ndim=1)
    series = {name: _series("ys", name, values, len(xs)) for name, values in _mapping("ys", ys).items()}
    bands = _series_errors(errors, series, len(xs))
    fitted = _fit_names(power_law_fit, series)
    _check_log_axes(xs, series, bands, log_x, log_y)
    colors = method_colors(list(series))

    fig = _figure(6.4, 4.4, dpi)
    ax = fig.add_subplot()
    for name, values in series.items():
        ax.plot(xs, values, color=colors[name], marker="o", markersize=4, linewidth=1.8, label=method_label(name))
        if name in bands:
            ax.fill_between(xs, values - bands[name], values + bands[name], color=colors[name], alpha=0.2,
                            linewidth=0)
        if name in fitted:
            _draw_power_law_fit(ax, xs, values, colors[name], method_label(name))
    if log_x:
        _log_x_axis(ax, xs)
    ax.set_yscale("log" if log_y else "linear")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title or f"{_capitalise(y_label)} vs {x_label}")
    ax.grid(True, which="both" if (log_x or log_y) else "major", alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, png)


def _series(mapping_name: str, name: str, values: object, n_points: int) -> np.ndarray:
    array = _float_array(f"{mapping_name}[{name!r}]", values, ndim=1)
    _same_length(f"{mapping_name}[{name!r}]", array, "x", n_points)
    return array


def _series_errors(errors: Mapping | None, series: dict[str, np.ndarray], n_points: int) -> dict[str, np.ndarray]:
    if errors is None:
        return {}
    bands = {name: _series("errors", name, values, n_points) for name, values in _mapping("errors", errors).items()}
    for name, band in bands.items():
        if name not in series:
            raise ValueError(f"errors has series {name!r} that is not in ys; expected one of {list(series)}")
        if (band < 0).any():
            raise ValueError(f"errors[{name!r}] must be non-negative half-widths, got {band[band < 0][0]}")
    return bands


def _fit_names(power_law_fit: Sequence[str], series: dict[str, np.ndarray]) -> set[str]:
    if isinstance(power_law_fit, str):
        raise TypeError(
            f"power_law_fit must be a sequence of series names, got the string {power_law_fit!r}; wrap it in a list"
        )
    unknown = [name for name in power_law_fit if name not in series]
    if unknown:
        raise ValueError(f"power_law_fit names unknown series {unknown}; expected names from {list(series)}")
    return set(power_law_fit)


def _check_log_axes(xs, series, bands, log_x: bool, log_y: bool) -> None:
    if log_x:
        _positive_for_log("x", xs)
    if log_y:
        for name, values in series.items():
            lower = values - bands.get(name, 0.0)
            _positive_for_log(f"ys[{name!r}] (minus its error band)", lower)


def _draw_power_law_fit(ax, xs: np.ndarray, ys: np.ndarray, color: str, label: str) -> None:
    if len(xs) < 2:
        raise ValueError(f"a power-law fit of {label!r} needs at least 2 points, got {len(xs)}")
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError(f"a power-law fit of {label!r} needs x > 0 and y > 0; got min x {xs.min()}, min y {ys.min()}")
    slope, intercept = np.polyfit(np.log(xs), np.log(ys), deg=1)
    ax.plot(xs, np.exp(intercept) * xs**slope, color=color, linestyle="--", linewidth=1.2,
            label=f"{label} fit: slope {slope:.2f}")


# --------------------------------------------------------------------------------------
# Matching distribution (k-Mixup Fig. 3)
# --------------------------------------------------------------------------------------


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
    weight = _float_array("weights", weights, ndim=1)
    _same_length("weights", weight, "points", n_points)
    if (weight < 0).any():
        raise ValueError(f"weights must be non-negative, got {weight[weight < 0][0]}")
    if weight.sum() == 0:
        raise ValueError("weights are all zero; expected at least one positive weight")
    return weight


def _anchor(anchor_index: object, n_points: int) -> int:
    if isinstance(anchor_index, bool) or not isinstance(anchor_index, (int, np.integer)):
        raise TypeError(f"anchor_index must be an int, got {anchor_index!r}")
    if not 0 <= anchor_index < n_points:
        raise ValueError(f"anchor_index must be in [0, {n_points - 1}], got {anchor_index}")
    return int(anchor_index)


def _draw_background_points(ax, data: np.ndarray, classes: np.ndarray | None) -> None:
    if len(data) == 0:
        return
    if classes is None:
        ax.scatter(data[:, 0], data[:, 1], s=6, color="#bdbdbd", linewidths=0, label="weight 0")
        return
    for label in np.unique(classes):
        chosen = data[classes == label]
        ax.scatter(chosen[:, 0], chosen[:, 1], s=6, color=_class_color(int(label)), alpha=0.25, linewidths=0,
                   label=f"class {label}, weight 0")
