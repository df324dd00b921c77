"""Shared by every figure: method colours and names, input checks, figure creation and saving.

Every figure function of this package takes plain data (numpy arrays, lists, dicts), writes one
PNG file and returns the :class:`matplotlib.figure.Figure`. Figures are built with
:class:`~matplotlib.figure.Figure` directly, not with ``pyplot``, so no window opens and no
figure is kept alive by a global registry. Importing this module selects the non-interactive
Agg backend unless ``pyplot`` is already loaded; every figure module imports it.

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
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import matplotlib

if "matplotlib.pyplot" not in sys.modules:
    # Never open a window; a backend the user already chose through pyplot is kept.
    matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from scipy import stats

__all__ = ["METHOD_COLORS", "METHOD_LABELS", "method_label", "method_colors"]

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


def _float_vector(name: str, values: object, other_name: str, length: int, allow_nan: bool = False) -> np.ndarray:
    """A finite 1-D float array as long as `other_name` (of length `length`)."""
    array = _float_array(name, values, ndim=1, allow_nan=allow_nan)
    if len(array) != length:
        raise ValueError(f"{name} has length {len(array)} but {other_name} has length {length}")
    return array


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


def _check_int(name: str, value: object) -> int:
    """`value` as an int if it is a Python or numpy integer (not a bool), else TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    return int(value)


def _check_dpi(dpi: object) -> int:
    dpi = _check_int("dpi", dpi)
    if dpi <= 0:
        raise ValueError(f"dpi must be a positive int, got {dpi}")
    return dpi


def _figure(width: float, height: float, dpi: int) -> Figure:
    return Figure(figsize=(width, height), dpi=_check_dpi(dpi), layout="constrained")


def _save(fig: Figure, png: Path) -> Figure:
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, format="png", dpi=fig.dpi)
    return fig


# --------------------------------------------------------------------------------------
# Drawing shared by several figures
# --------------------------------------------------------------------------------------


def _draw_mean_band(ax, x: np.ndarray, samples: np.ndarray, color: str, label: str, marker: str | None) -> None:
    """The mean over seeds, with its 95% CI band when there are several seeds."""
    mean, half_width = _mean_ci95(samples)
    _draw_line(ax, x, mean, color, label, marker, half_width if samples.shape[0] > 1 else None)


def _draw_line(ax, x: np.ndarray, y: np.ndarray, color: str, label: str, marker: str | None,
               half_width: np.ndarray | None = None) -> None:
    """A line, with a shaded band ``y ± half_width`` if `half_width` is given."""
    ax.plot(x, y, color=color, label=label, marker=marker, markersize=4, linewidth=1.8)
    if half_width is not None:
        ax.fill_between(x, y - half_width, y + half_width, color=color, alpha=0.2, linewidth=0)


def _log_x_axis(ax, x: np.ndarray) -> None:
    """Log x-axis; with few distinct x values, label exactly those values in plain numbers."""
    ax.set_xscale("log")
    distinct = np.unique(x)
    if len(distinct) <= _MAX_LABELLED_TICKS:
        ax.set_xticks(distinct, [f"{value:g}" for value in distinct])
        ax.xaxis.set_minor_formatter(NullFormatter())


def _capitalise(text: str) -> str:
    """A metric or setting name as a title reads: ``test_error`` -> ``Test error``."""
    text = text.replace("_", " ")
    return text[:1].upper() + text[1:]


def _class_labels(name: str, values: object, points_name: str, n_points: int) -> np.ndarray:
    labels = _float_vector(name, values, points_name, n_points)
    not_class = (labels < 0) | (labels != np.round(labels))
    if not_class.any():
        raise ValueError(f"{name} must hold non-negative integer class labels, got {labels[not_class][0]}")
    return labels.astype(int)


def _class_color(label: int) -> str:
    return _CLASS_COLORS[label % len(_CLASS_COLORS)]


def _scatter_classes(ax, points: np.ndarray, labels: np.ndarray, legend: str, **style) -> None:
    """Scatter 2-D points class by class in the class colours; `legend` is formatted with the class label."""
    for label in np.unique(labels):
        chosen = points[labels == label]
        ax.scatter(chosen[:, 0], chosen[:, 1], color=_class_color(int(label)), label=legend.format(label), **style)
