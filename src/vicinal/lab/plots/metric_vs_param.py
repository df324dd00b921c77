"""A metric against a hyper-parameter (eps, alpha...), one line per method with a 95% CI band (Local Mixup Fig. 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .style import (
    _PathLike, _capitalise, _draw_mean_band, _figure, _float_array, _log_x_axis, _mapping, _mean_ci95, _png_path,
    _positive_for_log, _save, method_colors, method_label,
)

__all__ = ["plot_metric_vs_param"]


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


def _samples(name: str, values: object, n_points: int) -> np.ndarray:
    array = _float_array(name, values, ndim=2)
    if array.shape[1] != n_points:
        raise ValueError(
            f"{name} must have shape (n_seeds, {n_points}) to match the x values, got {array.shape}"
            " (use values[np.newaxis] for a single seed)"
        )
    return array
