"""Several y series against a shared x, with error bands and power-law fits: theory and robustness figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .style import (
    _PathLike, _capitalise, _draw_line, _figure, _float_array, _float_vector, _log_x_axis, _mapping, _png_path,
    _positive_for_log, _save, method_colors, method_label,
)

__all__ = ["plot_series"]


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
        _draw_line(ax, xs, values, colors[name], method_label(name), "o", bands.get(name))
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
    return _float_vector(f"{mapping_name}[{name!r}]", values, "x", n_points)


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
